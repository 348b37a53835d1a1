"""On-demand predictions over HTTP: native JSON, Open Inference Protocol v2 and MLflow scoring.

>>> from modelport.serving import serve
>>> serve(["credit@production"], port=8080)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from modelport.serving.app import ENV_OPTIONS, ENV_REFS, app_from_env, create_app
from modelport.serving.manager import ModelManager, Prediction

__all__ = ["ModelManager", "Prediction", "app_from_env", "create_app", "serve"]


def serve(
    refs: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    workers: int = 1,
    eager: bool = True,
    max_body_bytes: int | None = None,
    log_level: str = "info",
    runtime: str = "auto",
    watch_interval: float = 2.0,
    log_sample_rate: float = 1.0,
) -> None:
    """Serve ``refs`` with uvicorn (uvloop + httptools) until interrupted.

    With ``workers > 1`` each worker process builds its own app from the environment.
    ``watch_interval`` (seconds; 0 turns it off) is how often served aliases are checked for hot
    swap; ``log_sample_rate`` is the share of requests written to the prediction log (0 = none).
    """
    import uvicorn

    from modelport.client import default_client

    client = default_client()
    for ref in refs:  # fail fast, with the registry's message, before any worker starts
        client.registry.get(ref)
    options: dict[str, Any] = {
        "eager": eager,
        "runtime": runtime,
        "resolve_ttl": watch_interval or 2.0,
        "watch": watch_interval > 0,
        "log_predictions": log_sample_rate > 0,
        "log_sample_rate": log_sample_rate,
    }
    if max_body_bytes is not None:
        options["max_body_bytes"] = max_body_bytes
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": log_level,
        "timeout_graceful_shutdown": 30,
        "access_log": False,  # per-request stdout lines cost more than the prediction; see issue 4 logging
    }
    if workers > 1:
        os.environ[ENV_REFS] = json.dumps(list(refs))
        os.environ[ENV_OPTIONS] = json.dumps(options)
        uvicorn.run("modelport.serving:app_from_env", factory=True, workers=workers, **common)
    else:
        uvicorn.run(create_app(client, refs, **options), **common)
