"""The root ``modelport`` command and the one place where errors become exit codes.

Every command runs inside :class:`_Group.invoke`: a :class:`~modelport.errors.ModelportError`
(or an unreadable file) becomes one red line on stderr and exit code 1, never a traceback;
warnings become one yellow line each. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import warnings
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from modelport import __version__
from modelport.cli import (
    advise,
    alias,
    batch,
    compile,
    demo,
    edge,
    models,
    monitor,
    package,
    predict,
    register,
    retrain,
    scheduler,
    serve,
    traffic,
)
from modelport.cli.output import print_error, print_warning
from modelport.errors import ModelportError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class _Group(TyperGroup):
    """The root group; subcommands run inside its ``invoke``, so this handler sees them all."""

    def invoke(self, ctx: Any) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except ModelportError as exc:
                print_error(exc.message)
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # stdout closed early (`| head`): typer handles it
                    raise
                print_error(_os_error_message(exc))
            except KeyboardInterrupt:
                print_error("Interrupted.")
                raise typer.Exit(EXIT_INTERRUPTED) from None
        raise typer.Exit(EXIT_ERROR)


def _os_error_message(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"File not found: {exc.filename}"
    if isinstance(exc, IsADirectoryError) and exc.filename:
        return f"Expected a file, got a folder: {exc.filename}"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"Permission denied: {exc.filename}"
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _show_warning(message: Any, category: Any, *_args: Any, **_kwargs: Any) -> None:
    print_warning(str(message))


app = typer.Typer(
    cls=_Group,
    name="modelport",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models.app, name="models")
app.add_typer(alias.app, name="alias")
app.add_typer(batch.app, name="batch")
app.add_typer(monitor.app, name="monitor")
app.add_typer(monitor.labels_app, name="labels")
app.add_typer(retrain.app, name="retrain")
app.add_typer(traffic.app, name="traffic")
app.command("register")(register.register)
app.command("predict")(predict.predict)
app.command("compile")(compile.compile_command)
app.command("export")(edge.export_command)
app.command("edge-run")(edge.edge_run_command)
app.command("package")(package.package)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("scheduler")(scheduler.scheduler)
app.command("advise")(advise.advise)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"modelport {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Register trained models, version and promote them, and predict with them.

    Models are named `name` (latest version), `name:VERSION` or `name@ALIAS`. The store is MODELPORT_HOME
    (default ~/.modelport): a SQLite file and an artifacts folder.
    """


def main() -> Any:
    """Console-script entry point (``modelport = "modelport.cli:main"``)."""
    return app()
