"""``modelport register``: register a model file as the next version of a model."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from rich.markup import escape

import modelport as mp
from modelport import flavors
from modelport.cli.output import console, key_values, print_json
from modelport.cli.tabular import read_frame
from modelport.errors import FlavorError, ModelportError, RegistrationError


def register(
    model_file: Annotated[
        Path, typer.Argument(help="The trained model file (.joblib/.pkl, .json/.ubj, .txt, .pt, .onnx …).")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name; a new version is added.")],
    sample: Annotated[
        Path | None,
        typer.Option(
            "--sample",
            "-s",
            help="Training rows (.parquet or .csv): give the input signature and the monitoring "
            "reference. Strongly recommended.",
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="A column of the sample that is not a model input (the label)."),
    ] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", "-a", help="Point this alias at the new version.")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="A metric, KEY=NUMBER (repeatable).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="A tag, KEY=VALUE (repeatable).")
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d", help="Free text.")] = "",
    flavor: Annotated[
        str | None,
        typer.Option(
            "--flavor", help=f"The framework, when the suffix does not say: {', '.join(flavors.names())}."
        ),
    ] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="The version this one was derived from (lineage).")
    ] = None,
    compile_twin: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile",
            help="Build the ONNX twin now and gate it on parity with the model on the sample "
            "(where a converter exists); --no-compile leaves it to the first load.",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new version as JSON.")] = False,
) -> None:
    """Register a model file as the next version of NAME.

    The model is saved into the store, loaded back and checked on the sample before the version is published.
    Where a converter exists, its ONNX twin is built and gated on parity, so that `modelport serve`
    runs the compiled runtime; a model that fails the gate keeps the native runtime (a warning says why).

    Example: modelport register model.joblib --name credit --sample train.parquet --alias production
    """
    metrics = _metrics(_pairs(metric, "metric"))
    tags = _pairs(tag, "tag")
    flavor_mod = _flavor_for(model_file, flavor)
    df = read_frame(sample) if sample is not None else None
    if df is not None and target:
        missing = [c for c in target if c not in df.columns]
        if missing:
            raise RegistrationError(f"--target column(s) {', '.join(missing)} not in {sample}.")
        df = df.drop(columns=target)
    model = _read_model(flavor_mod, model_file)
    mv = mp.register(
        model,
        name,
        sample=df,
        metrics=metrics,
        tags=tags,
        description=description,
        alias=alias,
        flavor=flavor,
        parent=parent,
        compile=None if compile_twin else False,
    )
    if as_json:
        print_json(mv.to_dict())
        return
    out = console()
    aliases = f" [cyan]@{', @'.join(mv.aliases)}[/]" if mv.aliases else ""
    out.print(f"[green]✓[/] Registered [bold]{mv.ref}[/]{aliases} ({mv.flavor} {mv.task or ''})".rstrip())
    columns = len(mv.signature.columns or ()) if mv.signature.columns is not None else "tensor"
    ref_rows = mv.reference.get("sample_rows")
    out.print(f"  signature: {columns} columns · reference: {f'{ref_rows:,} rows' if ref_rows else 'none'}")
    out.print(f"  metrics: {escape(key_values(mv.metrics))} · tags: {escape(key_values(mv.tags))}")
    twin = mv.compiled.get("onnx")
    if twin is not None:
        runtime = "onnx (its twin passed the parity gate)" if twin["passed"] else "native (see the warning)"
        out.print(f"  runtime: {runtime}")
    out.print(f"  Next: [bold]modelport models show {mv.ref}[/]")


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RegistrationError(f"--{what} {item!r} must look like KEY=VALUE.")
        out[key.strip()] = value.strip()
    return out


def _metrics(pairs: dict[str, str]) -> dict[str, float]:
    out = {}
    for key, value in pairs.items():
        try:
            out[key] = float(value)
        except ValueError:
            raise RegistrationError(f"--metric {key}={value!r}: the value must be a number.") from None
    return out


def _flavor_for(path: Path, flavor: str | None) -> ModuleType:
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    return flavors.for_file(path, flavor)


def _read_model(flavor_mod: ModuleType, path: Path) -> object:
    try:
        return flavor_mod.read_file(path)
    except ModelportError:
        raise
    except Exception as exc:  # any reader failure means "not a model file of this kind"
        raise FlavorError(f"Cannot read {path} as a {flavor_mod.NAME} model: {exc}") from exc
