"""The payment port's HTTP adapter: how Farmacy calls a card processor (a real one, or the
simulated one in ops/payment_simulator/)."""
