"""``modelport models``: list models, show one version, list a model's versions."""

from __future__ import annotations

from typing import Annotated

import typer

import modelport as mp
from modelport.cli.output import console, print_json
from modelport.cli.render import models_table, version_detail, versions_table

app = typer.Typer(help="List registered models and inspect their versions.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("list")
def list_models(as_json: JsonOption = False) -> None:
    """List every model: latest version, number of versions, aliases, flavor, last update."""
    models = mp.list_models()
    if as_json:
        print_json([m.to_dict() for m in models])
    elif not models:
        home = mp.Settings.from_env().home
        console().print(f"No models registered in {home} yet. Try [bold]modelport demo[/].")
    else:
        console().print(models_table(models))


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="name (latest), name:VERSION or name@ALIAS.")],
    as_json: JsonOption = False,
) -> None:
    """Show one version: aliases, flavor, metrics, tags, signature, requirements, lineage, files.

    Example: modelport models show credit@production
    """
    mv = mp.get(ref)
    if as_json:
        print_json(mv.to_dict())
    else:
        console().print(version_detail(mv))


@app.command("versions")
def versions(
    name: Annotated[str, typer.Argument(help="The model name.")],
    as_json: JsonOption = False,
) -> None:
    """List every version of a model, oldest first."""
    found = mp.list_versions(name)
    if as_json:
        print_json([mv.to_dict() for mv in found])
    else:
        console().print(versions_table(name, found))
