"""On-demand predictions over HTTP: native JSON, Open Inference Protocol v2 and MLflow scoring.

>>> from modelport.serving import serve
>>> serve(["credit@production"], port=8080)   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidInput
from modelport.lazy import lazy_attribute
from modelport.serving.background import HTTP_PROTOCOL

if TYPE_CHECKING:
    from modelport.predictor import Prediction
    from modelport.serving.app import app_from_config, create_app
    from modelport.serving.manager import ModelManager
    from modelport.serving.settings import Canary, ModelPolicy, ServeConfig, Shadow

# Imported on first use (PEP 562), so that a batch run, which needs only ``prediction_log``, does
# not pay for the ASGI app, Starlette and the protocols.
_LAZY = {
    "app_from_config": "modelport.serving.app",
    "create_app": "modelport.serving.app",
    "ModelManager": "modelport.serving.manager",
    "Prediction": "modelport.predictor",
    "Canary": "modelport.serving.settings",
    "ModelPolicy": "modelport.serving.settings",
    "ServeConfig": "modelport.serving.settings",
    "Shadow": "modelport.serving.settings",
}

__all__ = [
    "Canary",
    "ModelManager",
    "ModelPolicy",
    "Prediction",
    "ServeConfig",
    "Shadow",
    "app_from_config",
    "create_app",
    "serve",
]


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def serve(
    refs: Sequence[str] = (),
    host: str | None = None,
    port: int | None = None,
    *,
    config: ServeConfig | str | Path | None = None,
    workers: int | None = None,
    log_level: str = "info",
    **settings: Any,
) -> None:
    """Serve ``refs`` with uvicorn (uvloop + httptools) until interrupted; SIGTERM drains in-flight requests.

    ``config`` is a :class:`ServeConfig` or the path of a ``serve.yaml``; ``refs``, ``host``,
    ``port``, ``workers`` and ``settings`` (any :class:`ServeConfig` field or model policy key,
    e.g. ``batching=True, sla_ms=50``; ``None`` values are ignored) override it. With
    ``workers > 1`` each worker process builds its own app from the same settings.

    >>> mp.serve(["credit@production"], port=8080, batching=True)   # doctest: +SKIP
    """
    import uvicorn

    from modelport.client import default_client
    from modelport.serving.app import app_from_config, create_app
    from modelport.serving.settings import ServeConfig

    cfg = config if isinstance(config, ServeConfig) else ServeConfig.load(config) if config else ServeConfig()
    changes = {k: v for k, v in settings.items() if v is not None}
    for key, value in (("refs", tuple(refs)), ("host", host), ("port", port), ("workers", workers)):
        if value:
            changes[key] = value
    cfg = cfg.replace(**changes)
    if not cfg.refs:
        raise InvalidInput("Name a model to serve, as an argument or under 'models' in the config.")
    client = default_client()
    for ref in _all_refs(cfg):  # fail fast, with the registry's message, before any worker starts
        client.registry.get(ref)
    common: dict[str, Any] = {
        "host": cfg.host,
        "port": cfg.port,
        "loop": "uvloop",
        "http": HTTP_PROTOCOL,
        "log_level": log_level,
        "timeout_graceful_shutdown": 30,
        "access_log": False,  # per-request stdout lines cost more than the prediction; see issue 4 logging
    }
    # Each worker process gets its share of the cores for onnxruntime and the native thread pools
    # (every runtime defaults to all cores per process, and workers would oversubscribe them), and
    # tunes its collector and GIL switch once started: both are fields of the settings it is handed.
    share = max(1, (os.cpu_count() or 1) // cfg.workers)
    cfg = cfg.replace(tune_process=True, threads=cfg.threads or share)
    if cfg.workers > 1:
        # Each worker process (spawned) builds its app from the settings handed to it: the factory
        # and its arguments travel pickled with uvicorn's Config, not through the environment.
        from uvicorn.supervisors import Multiprocess

        factory = functools.partial(app_from_config, cfg.to_dict(), client.settings)
        server_config = uvicorn.Config(factory, factory=True, workers=cfg.workers, **common)
        Multiprocess(server_config, sockets=[server_config.bind_socket()]).run()
    else:
        uvicorn.run(create_app(client, config=cfg), **common)


def _all_refs(cfg: ServeConfig) -> list[str]:
    refs = list(cfg.refs)
    for policy in cfg.models.values():
        refs += [route.ref for route in (policy.canary, policy.shadow) if route is not None]
    return refs
