"""The composition root of the server: client -> model manager -> service -> Starlette app.

Nothing is built at import time; :func:`create_app` wires one app, :func:`app_from_env` builds one
from the environment for ``uvicorn --factory`` worker processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from modelport.client import Client
from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.model_version import ModelVersion
from modelport.prediction_log_reader import log_root
from modelport.serving import docs
from modelport.serving.http import DEFAULT_MAX_BODY_BYTES, Service, json_response, safe_message, service
from modelport.serving.manager import ModelManager
from modelport.serving.metrics import Metrics
from modelport.serving.prediction_log import PredictionLogger
from modelport.serving.protocols import mlflow, native, v2

log = logging.getLogger(__name__)
ENV_REFS = "MODELPORT_SERVE_REFS"
ENV_OPTIONS = "MODELPORT_SERVE_OPTIONS"


def create_app(
    client: Client,
    refs: Sequence[str],
    *,
    eager: bool = True,
    runtime: str = "auto",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    resolve_ttl: float = 2.0,
    watch: bool = True,
    log_predictions: bool = True,
    log_sample_rate: float = 1.0,
) -> Starlette:
    """An ASGI app serving ``refs`` over the native, v2 and MLflow protocols on one port.

    With ``watch``, a background thread hot-swaps a served alias to its new version (loaded off
    the request path) within ``resolve_ttl`` seconds of the alias moving; see :class:`ModelManager`.

    With ``log_predictions``, each successful prediction (a ``log_sample_rate`` share of requests)
    is written asynchronously as Parquet under ``MODELPORT_HOME/prediction_logs``; read it with
    ``mp.prediction_log(name)``. See :mod:`modelport.serving.prediction_log`.

    >>> app = create_app(Client(Settings.from_env()), ["credit@production"])   # doctest: +SKIP
    >>> uvicorn.run(app, port=8080)                                            # doctest: +SKIP
    """
    metrics = Metrics()
    manager = ModelManager(
        client.registry,
        refs,
        runtime=runtime,
        resolve_ttl=resolve_ttl,
        eager=eager,
        on_load=metrics.observe_load,
        on_swap=metrics.observe_swap,
    )
    logger = (
        PredictionLogger(
            log_root(client.settings.home),
            sample_rate=log_sample_rate,
            on_rows=metrics.observe_prediction_log,
        )
        if log_predictions
        else None
    )
    svc = Service(manager, metrics, max_body_bytes, logger)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if eager:
            await run_in_threadpool(manager.load_all)
        if watch:
            manager.start_watching()
        if logger is not None:
            logger.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop_watching)
            if logger is not None:
                await run_in_threadpool(logger.close)  # flush what is queued

    routes = [
        *native.routes(),
        *v2.routes(),
        *mlflow.routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        Route("/docs", docs_endpoint, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ModelportError: modelport_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
    app.state.service = svc
    return app


def app_from_env() -> Starlette:
    """Build the app in a uvicorn worker process from ``MODELPORT_SERVE_*`` and the store settings."""
    refs = json.loads(os.environ.get(ENV_REFS, "[]"))
    options = json.loads(os.environ.get(ENV_OPTIONS, "{}"))
    return create_app(Client(Settings.from_env()), refs, **options)


# --- errors: the one place a ModelportError becomes an HTTP response ------------------------------


def _error_response(request: Request, status: int, exc: ModelportError) -> Response:
    protocol = getattr(request.state, "protocol", None)
    message, details = safe_message(exc)
    svc = service(request)
    if protocol is not None:
        name = getattr(request.state, "ref", None) or ""
        served = name.split("@")[0].split(":")[0]
        mv: ModelVersion | None = getattr(request.state, "model_version", None)
        svc.metrics.observe_error(
            served if served in svc.manager.names else None,
            str(mv.version) if mv else None,
            protocol,
            status,
        )
    headers = {}
    rid = request.headers.get("x-request-id")
    if rid and len(rid) <= 200 and rid.isprintable():
        headers["X-Request-ID"] = rid
    if protocol == mlflow.PROTOCOL:
        if status == 415:  # MLflow answers an unknown content type in plain text
            return PlainTextResponse(message, 415, headers)
        code, body = mlflow.error_body(exc, message)
        return json_response(body, code, headers)
    if protocol == v2.PROTOCOL:
        return json_response({"error": message}, status, headers)
    return json_response({"error": message, "details": details}, status, headers)


async def modelport_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelportError)
    return _error_response(request, exc.status, exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error_response(request, exc.status_code, ModelportError(str(exc.detail)))


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(request, 500, ModelportError("Internal server error; see the server log."))


# --- operational endpoints -----------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    manager = service(request).manager
    loaded = [mv.ref for mv in manager.loaded()]
    return json_response({"ready": manager.ready, "loaded": loaded}, 200 if manager.ready else 503)


async def metrics_endpoint(request: Request) -> Response:
    m = service(request).metrics
    return Response(m.render(), media_type=m.content_type)


def _served(request: Request) -> list[ModelVersion]:
    manager = service(request).manager
    return [manager.resolve(r) for r in manager.refs]


async def openapi_endpoint(request: Request) -> Response:
    models = await run_in_threadpool(_served, request)
    return json_response(docs.openapi(models))


async def docs_endpoint(request: Request) -> Response:
    models = await run_in_threadpool(_served, request)
    return HTMLResponse(docs.html_page(models))
