"""``modelport alias``: point an alias (e.g. production) at a version, or remove it."""

from __future__ import annotations

from typing import Annotated

import typer

import modelport as mp
from modelport.cli.output import console, print_json
from modelport.errors import AliasNotFound, InvalidReference

app = typer.Typer(help="Move and remove aliases such as credit@production.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("set")
def set_alias(
    name: Annotated[str, typer.Argument(help="The model name.")],
    version: Annotated[int, typer.Argument(help="The version the alias should point at.", min=1)],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. production.")],
    as_json: JsonOption = False,
) -> None:
    """Point NAME@ALIAS at VERSION (creating the alias or moving it).

    Example: modelport alias set credit 3 production
    """
    previous = _current(name, alias)
    mv = mp.set_alias(name, version, alias)
    if as_json:
        print_json({"name": name, "alias": alias, "version": mv.version, "previous_version": previous})
        return
    was = f" (was {name}:{previous})" if previous is not None else " (new alias)"
    console().print(f"[green]✓[/] [cyan]{name}@{alias}[/] → [bold]{mv.ref}[/]{was}")


@app.command("rm")
def remove_alias(
    name: Annotated[str, typer.Argument(help="The model name.")],
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
    as_json: JsonOption = False,
) -> None:
    """Remove NAME@ALIAS (the version it pointed at stays registered).

    Example: modelport alias rm credit staging
    """
    version = mp.delete_alias(name, alias)
    if as_json:
        print_json({"name": name, "alias": alias, "removed_from_version": version})
        return
    console().print(f"[green]✓[/] Removed [cyan]{name}@{alias}[/] (it pointed at {name}:{version})")


def _current(name: str, alias: str) -> int | None:
    """The version the alias points at now, for the message (None when it is new)."""
    try:
        return mp.get(f"{name}@{alias}").version
    except (AliasNotFound, InvalidReference):  # set_alias gives the precise message
        return None


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="The model name.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. production.")],
    as_json: JsonOption = False,
) -> None:
    """Point NAME@ALIAS back at the version it pointed at before its last move (audited).

    Example: modelport alias rollback credit production
    """
    from modelport.retraining.loop import rollback as roll_back

    current = _current(name, alias)
    mv = roll_back(name, alias)
    if as_json:
        print_json({"name": name, "alias": alias, "version": mv.version, "previous_version": current})
        return
    console().print(f"[green]✓[/] [cyan]{name}@{alias}[/] → [bold]{mv.ref}[/] (was {name}:{current})")
