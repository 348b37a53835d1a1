"""The composition root of the server: client -> model manager -> service -> app.

Nothing is built at import time; :func:`create_app` wires one app, :func:`app_from_config` builds one
in a worker process of ``--workers N`` from the serialized :class:`ServeConfig` it is handed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from modelport.client import Client
from modelport.config import Settings
from modelport.errors import ModelportError
from modelport.model_version import ModelVersion
from modelport.predlog.reader import log_root
from modelport.predlog.writer import PredictionLogger
from modelport.serving import asgi, docs
from modelport.serving.asgi import ModelportApp
from modelport.serving.codecs import by_name, mlflow, v2
from modelport.serving.manager import ModelManager
from modelport.serving.metrics import Metrics
from modelport.serving.routes import RouteFollower
from modelport.serving.service import Service, error_answer
from modelport.serving.settings import ServeConfig
from modelport.serving.wire import client_request_id, json_response

log = logging.getLogger(__name__)


def tune_process(threads: int | None) -> None:
    """In a server's worker process (``ServeConfig.tune_process``), once the app has started: the
    native libraries' thread pools (OpenMP, BLAS) get ``threads`` threads each (None: as they are),
    what exists now (modules, models)
    is moved out of the collector's sight, and young collections run less often. A full
    collection over every object of the loaded libraries otherwise stalls the event loop for tens
    of ms now and then (seen as the p99 of a busy server). And the event loop waits at most
    SWITCH_INTERVAL for the GIL while a background thread (the prediction log's writer building a
    table, the hot-swap watcher) holds it, instead of CPython's 5 ms."""
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
    gc.collect()
    gc.freeze()
    _, mid, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, mid, old)
    sys.setswitchinterval(SWITCH_INTERVAL)


GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)
SWITCH_INTERVAL = 0.0005  # seconds (CPython's default: 0.005)


def create_app(
    client: Client,
    refs: Sequence[str] = (),
    *,
    config: ServeConfig | None = None,
    **settings: Any,
) -> Starlette:
    """An ASGI app serving ``refs`` over the native, v2 and MLflow protocols on one port.

    ``config`` (a :class:`ServeConfig`, e.g. from ``serve.yaml``) holds server options and
    per-model policies; ``settings`` override its fields (``eager``, ``runtime``,
    ``max_body_bytes``, ``watch_interval``, ``log_sample_rate``, ``idle_unload_s``,
    ``memory_budget_mb``) or set a policy key for every model (``batching``, ``max_batch_size``,
    ``max_wait_ms``, ``max_queue``, ``sla_ms``, ``concurrency``, ``canary``, ``shadow``).

    Every ``watch_interval`` seconds (0: never) a background thread hot-swaps a served alias to its
    new version, loaded off the request path; see :class:`ModelManager`. A ``log_sample_rate``
    share of predictions is written asynchronously as Parquet under ``MODELPORT_HOME/prediction_logs``
    (``mp.prediction_log(name)``). Requests pass the traffic policies, queues and micro-batching of
    :mod:`modelport.serving.service`.

    >>> app = create_app(Client(Settings.from_env()), ["credit@production"], batching=True)  # doctest: +SKIP
    >>> uvicorn.run(app, port=8080)                                                           # doctest: +SKIP
    """
    config = config or ServeConfig()
    if refs:
        settings["refs"] = tuple(refs)
    config = config.replace(**settings)
    metrics = Metrics()
    budget = config.memory_budget_mb
    manager = ModelManager(
        client.registry,
        config.refs,
        runtime=config.runtime,
        resolve_ttl=config.watch_interval or 2.0,
        eager=config.eager,
        on_load=metrics.observe_load,
        on_swap=metrics.observe_swap,
        idle_unload_s=config.idle_unload_s,
        memory_budget_bytes=None if budget is None else int(budget * 2**20),
        on_unload=metrics.observe_unload,
        threads=config.threads,
    )
    logger = (
        PredictionLogger(
            log_root(client.settings.home),
            sample_rate=config.log_sample_rate,
            on_rows=metrics.observe_prediction_log,
        )
        if config.log_sample_rate > 0
        else None
    )
    svc = Service(manager, config, metrics, logger)
    manager.watch_hooks.append(RouteFollower(client.meta.engine, manager, svc, config).poll)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if config.eager:
            await run_in_threadpool(manager.load_all)
        if config.watch_interval > 0:
            manager.start_watching()
        manager.start_housekeeping()
        if logger is not None:
            logger.start()
        if config.tune_process:
            tune_process(config.threads)
        try:
            yield
        finally:
            await svc.drain()  # shadows still running; requests in flight were drained by uvicorn
            await run_in_threadpool(manager.stop_watching)
            if logger is not None:
                await run_in_threadpool(logger.close)  # flush what is queued

    routes = [
        *asgi.routes(),
        *v2.routes(),
        *mlflow.routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        Route("/docs", docs_endpoint, methods=["GET"]),
    ]
    app = ModelportApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ModelportError: modelport_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
    app.state.service = svc
    app.state.config = config
    app.state.client = client
    return app


def app_from_config(config: Mapping[str, Any], settings: Settings) -> Starlette:
    """Build the app in a uvicorn worker process from the serialized :class:`ServeConfig` and the
    store settings that ``serve()`` handed it (the factory of ``--workers N``)."""
    return create_app(Client(settings), config=ServeConfig.from_dict(config))


# --- errors of the other endpoints: the service's one error mapper, in the request's protocol -------


def _error_response(request: Request, exc: BaseException) -> Response:
    protocol = getattr(request.state, "protocol", None)
    svc = service(request)
    status, headers, content = error_answer(
        by_name(protocol), exc, client_request_id(request.headers.get("x-request-id"))
    )
    if protocol is not None:
        name = getattr(request.state, "ref", None) or ""
        served = name.split("@")[0].split(":")[0]
        known = served if served in svc.manager.names else None
        svc.metrics.observe_error(known, None, protocol, status)
    return Response(content, status, {k.decode(): v.decode("latin-1") for k, v in headers})


async def modelport_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelportError)
    return _error_response(request, exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = ModelportError(str(exc.detail))
    error.status = exc.status_code
    return _error_response(request, error)


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(request, exc)


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


# --- operational endpoints -----------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    manager = service(request).manager
    loaded = [mv.ref for mv in manager.loaded()]
    return json_response({"ready": manager.ready, "loaded": loaded}, 200 if manager.ready else 503)


_MONITORING_TTL = 30.0  # seconds between reads of the stored monitoring results


async def metrics_endpoint(request: Request) -> Response:
    svc = service(request)
    m = svc.metrics
    now = time.monotonic()
    if now - getattr(request.app.state, "monitoring_read", -1e9) > _MONITORING_TTL:
        request.app.state.monitoring_read = now
        await run_in_threadpool(_export_monitoring, request.app.state.client, svc)
    return Response(m.render(), media_type=m.content_type)


def _export_monitoring(client: Client, svc: Service) -> None:
    """The latest stored monitoring result of each served model version, as gauges."""
    from modelport.monitoring.monitor import store_for

    try:
        store = store_for(client)
        for mv in svc.manager.loaded():
            result = store.latest(mv.name, mv.version)
            if result is not None:
                svc.metrics.observe_monitoring(result)
    except Exception:  # metrics must answer even when the store does not
        log.warning("could not read monitoring results for /metrics", exc_info=True)


def _served(request: Request) -> list[ModelVersion]:
    manager = service(request).manager
    return [manager.resolve(r) for r in manager.refs]


async def openapi_endpoint(request: Request) -> Response:
    models = await run_in_threadpool(_served, request)
    return json_response(docs.openapi(models))


async def docs_endpoint(request: Request) -> Response:
    models = await run_in_threadpool(_served, request)
    return HTMLResponse(docs.html_page(models))
