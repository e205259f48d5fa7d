"""`python -m interfaces.cli` is the same as the `farmacy` command."""

from interfaces.cli.main import app

app(prog_name="farmacy")
