"""``modelport traffic``: canary and shadow routes that running servers follow without a restart."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from modelport.cli.output import console, print_json
from modelport.cli.render import titled_table

app = typer.Typer(
    help="Canary and shadow routes that running servers follow (no restart).", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ModelArg = Annotated[str, typer.Argument(help="The served model's name, e.g. credit.")]


@app.command("set")
def set_route(
    model: ModelArg,
    canary: Annotated[
        str | None, typer.Option("--canary", help="REF=SHARE: answer SHARE of the traffic with REF.")
    ] = None,
    shadow: Annotated[
        str | None, typer.Option("--shadow", help="REF=SHARE: mirror SHARE of the traffic to REF.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Route a share of MODEL's traffic to a canary version, or mirror it to a shadow.

    Examples: modelport traffic set credit --canary credit:5=10% ;
    modelport traffic set credit --shadow credit@challenger=100%
    """
    import modelport as mp
    from modelport.serving.settings import route_spec

    if (canary is None) == (shadow is None):
        raise typer.BadParameter("Give exactly one of --canary REF=SHARE or --shadow REF=SHARE.")
    kind, spec = ("canary", canary) if canary is not None else ("shadow", shadow)
    assert spec is not None
    ref, share = route_spec(kind, spec)
    route = mp.set_traffic(model, share=share, **{kind: ref})
    if as_json:
        print_json(route.to_dict())
        return
    console().print(f"[green]✓[/] {escape(route.describe())} (servers follow within their watch interval)")


@app.command("clear")
def clear(
    model: ModelArg,
    kind: Annotated[str | None, typer.Option("--kind", help="canary or shadow (default: both).")] = None,
) -> None:
    """End MODEL's stored routes; servers go back to their own settings."""
    import modelport as mp

    ended = mp.clear_traffic(model, kind)
    console().print(f"Ended {len(ended)} route(s) of {escape(model)}.")


@app.command("show")
def show(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The active stored routes."""
    import modelport as mp

    routes = mp.traffic(model)
    if as_json:
        print_json([r.to_dict() for r in routes])
        return
    table = titled_table("Traffic routes")
    for col in ("model", "kind", "version", "share", "since", "set by"):
        table.add_column(col)
    for r in routes:
        since = r.started_at.isoformat()[:19].replace("T", " ")
        table.add_row(r.model, r.kind, r.ref, f"{r.share:.0%}", since, r.source)
    console().print(table)
