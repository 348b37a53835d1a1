"""The ``modelport`` command line: Typer commands over the public Python API.

Each command module only parses arguments, calls :mod:`modelport` and renders the result;
:mod:`modelport.cli.app` assembles them and holds the one error handler.
"""

from modelport.cli.app import app, main

__all__ = ["app", "main"]
