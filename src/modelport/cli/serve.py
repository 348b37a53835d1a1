"""``modelport serve``: a REST server for one or more models (native JSON, v2, MLflow)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    refs: Annotated[
        list[str], typer.Argument(help="Models to serve: name (latest), name:VERSION or name@ALIAS.")
    ],
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    lazy: Annotated[
        bool, typer.Option("--lazy/--eager", help="Load models on first request instead of at start.")
    ] = False,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest request body accepted, in MB.")
    ] = 10.0,
    runtime: Annotated[
        str, typer.Option(help="auto (ONNX twin when it passed its parity gate), native or onnx.")
    ] = "auto",
    watch_interval: Annotated[
        float, typer.Option(min=0.0, help="Seconds between alias checks for hot swap (0: off).")
    ] = 2.0,
    log_sample_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of requests written to the prediction log.")
    ] = 1.0,
) -> None:
    """Serve models over HTTP on one port: native JSON, Open Inference Protocol v2 and MLflow scoring.

    Example: modelport serve credit@production fraud:7 --port 8080, then
    POST /models/credit/predict with {"inputs": [{"income": 52000, ...}]}. See /docs once it runs.
    """
    from modelport.serving import serve as run_server

    run_server(
        refs,
        host=host,
        port=port,
        workers=workers,
        eager=not lazy,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        runtime=runtime,
        watch_interval=watch_interval,
        log_sample_rate=log_sample_rate,
    )
