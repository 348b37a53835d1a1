"""``modelport serve``: a REST server for one or more models (native JSON, v2, MLflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    refs: Annotated[
        list[str] | None,
        typer.Argument(help="Models to serve: name (latest), name:VERSION or name@ALIAS (or in --config)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="serve.yaml with server settings and per-model policies."),
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="Interface to listen on [127.0.0.1].")] = None,
    port: Annotated[
        int | None, typer.Option("--port", "-p", min=1, max=65535, help="TCP port [8080].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, help="Worker processes [1].")
    ] = None,
    lazy: Annotated[
        bool | None, typer.Option("--lazy/--eager", help="Load models on first request instead of at start.")
    ] = None,
    max_body_mb: Annotated[
        float | None,
        typer.Option("--max-body-mb", min=0.001, help="Largest request body accepted, in MB [10]."),
    ] = None,
    runtime: Annotated[
        str | None, typer.Option(help="auto (ONNX twin when it passed its parity gate), native or onnx.")
    ] = None,
    watch_interval: Annotated[
        float | None, typer.Option(min=0.0, help="Seconds between alias checks for hot swap (0: off) [2].")
    ] = None,
    log_sample_rate: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Share of requests written to the prediction log [1]."),
    ] = None,
    batching: Annotated[
        bool | None,
        typer.Option("--batching/--no-batching", help="Merge concurrent requests into one predict call."),
    ] = None,
    coalesce: Annotated[
        bool | None,
        typer.Option(
            "--coalesce/--no-coalesce",
            help="Score requests that are already waiting together, never waiting for more [on].",
        ),
    ] = None,
    max_batch_size: Annotated[
        int | None, typer.Option(min=1, help="Rows per merged predict call [64].")
    ] = None,
    max_wait_ms: Annotated[
        float | None, typer.Option(min=0.0, help="Longest a request waits for company when batching [2].")
    ] = None,
    max_queue: Annotated[
        int | None, typer.Option(min=1, help="Requests waiting per model before 503s [1024].")
    ] = None,
    sla_ms: Annotated[
        float | None,
        typer.Option(min=0.001, help="Answer 503 + Retry-After when the expected wait exceeds this."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Predict calls at once per model and worker [2; 1 with batching]."),
    ] = None,
    canary: Annotated[
        list[str] | None,
        typer.Option(help="REF=SHARE: send a share of a model's traffic to another version (credit:4=10%)."),
    ] = None,
    shadow: Annotated[
        list[str] | None,
        typer.Option(help="REF=SHARE: mirror a share of traffic to REF, log it, never return it."),
    ] = None,
    idle_unload_s: Annotated[
        float | None, typer.Option(min=0.0, help="Unload a version unused for this many seconds.")
    ] = None,
    memory_budget_mb: Annotated[
        float | None, typer.Option(min=1.0, help="Unload least recently used versions beyond this memory.")
    ] = None,
) -> None:
    """Serve models over HTTP on one port: native JSON, Open Inference Protocol v2 and MLflow scoring.

    Example: modelport serve credit@production fraud:7 --port 8080 --batching, then
    POST /models/credit/predict with {"inputs": [{"income": 52000, ...}]}. See /docs once it runs.
    Flags override the --config file; policy flags (--batching, --sla-ms ...) apply to every model.
    """
    from modelport.serving import ServeConfig
    from modelport.serving import serve as run_server

    cfg = ServeConfig.load(config) if config else ServeConfig()
    for spec in canary or ():
        cfg = cfg.with_route("canary", spec)
    for spec in shadow or ():
        cfg = cfg.with_route("shadow", spec)
    run_server(
        refs or (),
        host=host,
        port=port,
        config=cfg,
        workers=workers,
        eager=None if lazy is None else not lazy,
        max_body_bytes=None if max_body_mb is None else int(max_body_mb * 1024 * 1024),
        runtime=runtime,
        watch_interval=watch_interval,
        log_sample_rate=log_sample_rate,
        batching=batching,
        coalesce=coalesce,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        sla_ms=sla_ms,
        concurrency=concurrency,
        idle_unload_s=idle_unload_s,
        memory_budget_mb=memory_budget_mb,
    )
