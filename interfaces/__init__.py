"""Ways in: the HTTP API and the `farmacy` command."""
