"""The HTTP API: a Litestar app over the write side (`create_app`)."""
