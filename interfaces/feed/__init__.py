"""The feed on NATS JetStream: the relay that publishes it, and a reference consumer."""
