"""``modelport package``: a container build context, Kubernetes manifests or a serverless function."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from modelport.cli.output import console, err_console, print_json


def package(
    ref: Annotated[str, typer.Argument(help="name (latest), name:VERSION or name@ALIAS.")],
    target: Annotated[str, typer.Option("--target", "-t", help="docker, k8s, lambda or cloud-function.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The folder to create (new or empty).")],
    runtime: Annotated[
        str,
        typer.Option(
            help="auto (the ONNX twin, without the framework, when it passed parity), native or onnx."
        ),
    ] = "auto",
    wheel: Annotated[
        Path | None, typer.Option(help="The modelport wheel to ship [built from the source tree].")
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="docker, k8s: the server's port.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="docker, k8s: worker processes per container.")] = 1,
    image: Annotated[str | None, typer.Option(help="k8s: the container image [NAME:VERSION].")] = None,
    replicas: Annotated[int, typer.Option(min=1, help="k8s: replicas (the autoscaler's minimum).")] = 2,
    max_replicas: Annotated[
        int | None, typer.Option(min=1, help="k8s: the autoscaler's maximum [4 × replicas].")
    ] = None,
    cpu: Annotated[str, typer.Option(help="k8s: CPU request per pod.")] = "500m",
    memory: Annotated[str, typer.Option(help="k8s: memory request per pod (also its limit).")] = "512Mi",
    cpu_limit: Annotated[str | None, typer.Option(help="k8s: CPU limit per pod.")] = "1",
    cpu_target: Annotated[
        int, typer.Option(min=1, max=100, help="k8s: the autoscaler's target CPU utilization, %.")
    ] = 70,
    batch_job: Annotated[
        Path | None, typer.Option(help="k8s: a batch job file to run as a CronJob on its schedule.")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="k8s: the namespace of every object.")] = None,
    advice: Annotated[
        Path | None,
        typer.Option(
            help="k8s: `modelport advise --json` output; its capacity sets replicas, workers, cpu, memory."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Package a model version for a platform, with the model baked in.

    docker: a build context (Dockerfile, .dockerignore, requirements.txt, the modelport wheel, the
    store); k8s: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget (+ CronJob with
    --batch-job) and kustomization.yaml; lambda: handler.py (Mangum); cloud-function: main.py
    (functions-framework). Only the runtime packages the model needs are pinned.

    Example: modelport package credit:3 --target docker --output build/credit/
    """
    from modelport.client import default_client
    from modelport.packaging import package as make_package

    options: dict[str, Any] = {}
    if target == "docker":
        options = {"port": port, "workers": workers}
    elif target == "k8s":
        if advice is not None:
            replicas, workers, cpu, memory = _from_advice(advice, replicas, workers, cpu, memory)
        options = {
            "image": image,
            "replicas": replicas,
            "max_replicas": max_replicas,
            "cpu": cpu,
            "memory": memory,
            "cpu_limit": cpu_limit,
            "cpu_target": cpu_target,
            "port": port,
            "workers": workers,
            "batch_job": batch_job,
            "namespace": namespace,
        }
    with err_console().status(f"Packaging {ref} for {target}…"):
        result = make_package(
            default_client().registry, ref, target, output, runtime=runtime, wheel=wheel, **options
        )
    if as_json:
        print_json(result.to_dict())
        return
    out = console()
    what = f" · runtime {result.runtime}" if result.runtime else ""
    out.print(f"[green]✓[/] {escape(result.ref)} → [bold]{escape(str(result.path))}[/] ({target}{what})")
    for file in result.files:
        if not file.startswith(("store/", "wheels/")):
            out.print(f"  {escape(file)}")
    if result.requirements:
        out.print(f"  {len(result.requirements)} pinned runtime packages; the model is baked into store/")
    for note in result.notes:
        out.print(f"  note: {escape(note)}")


def _from_advice(path: Path, replicas: int, workers: int, cpu: str, memory: str) -> tuple[int, int, str, str]:
    """Replicas, workers, CPU and memory from the advisor's capacity (when it has one)."""
    import json

    from modelport.errors import InvalidInput

    try:
        capacity = json.loads(path.read_text()).get("capacity")
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Cannot read the advice {path}: {exc}") from None
    if not capacity:
        raise InvalidInput(f"The advice {path} has no serving capacity (its p99 target was out of reach).")
    return (
        int(capacity["replicas"]),
        int(capacity["workers"]),
        str(capacity["cpu"]),
        f"{int(capacity['memory_mb'])}Mi",
    )
