"""``modelport retrain``: check a policy's triggers, retrain and promote, show the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelport.cli.output import console, print_json
from modelport.cli.render import titled_table

app = typer.Typer(help="Retrain when monitoring says so; promote only a better model.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
PolicyArg = Annotated[Path, typer.Argument(help="The retraining policy file (YAML).")]


@app.command("check")
def check(policy: PolicyArg, as_json: JsonOption = False) -> None:
    """Would the policy retrain now, and why. Example: modelport retrain check policies/credit.yaml"""
    from modelport.retraining.loop import check as check_policy

    decision = check_policy(policy)
    if as_json:
        print_json({"trigger": decision.trigger, "reasons": decision.reasons, **decision.details})
        return
    phase = decision.details.get("phase")
    if phase:
        until = f" until {phase['until']:%Y-%m-%d %H:%M:%S} UTC" if phase.get("until") else ""
        console().print(
            f"[cyan]A {escape(phase['route'])}{until}[/]: `retrain run` judges it on the labelled live "
            "requests instead of retraining."
        )
    elif decision.trigger:
        console().print("[yellow]Would retrain:[/] " + escape("; ".join(decision.reasons)))
    else:
        console().print(f"No trigger fires for {escape(decision.details['champion'])}.")


@app.command("run")
def run(
    policy: PolicyArg,
    force: Annotated[bool, typer.Option("--force", help="Retrain even if no trigger fires.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Train a challenger, compare it with the champion on the same holdout, promote only a better one.

    Example: modelport retrain run policies/credit.yaml
    """
    from modelport.retraining.loop import run as run_policy

    outcome = run_policy(policy, force=force)
    if as_json:
        print_json(outcome.to_dict())
    else:
        style = {"promoted": "green", "observing": "cyan", "rejected": "yellow", "failed": "red"}.get(
            outcome.state, "dim"
        )
        console().print(f"[{style}]{outcome.state}[/]: {escape(outcome.message or '')}")
    if outcome.state == "failed":
        raise typer.Exit(1)


@app.command("history")
def history(
    model: Annotated[str, typer.Argument(help="The model name.")],
    as_json: JsonOption = False,
) -> None:
    """Every check, run, decision, promotion, rollback and failure, with its reasons."""
    from modelport.retraining.loop import history as events

    rows = events(model)
    if as_json:
        print_json(rows)
        return
    table = titled_table(f"Retraining history of {escape(model)}")
    for col in ("at", "event", "summary"):
        table.add_column(col)
    for e in rows:
        table.add_row(e["at"][:19].replace("T", " "), e["kind"], escape(e["summary"]))
    console().print(table)
