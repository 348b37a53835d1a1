"""Prometheus metrics, in a registry of their own per app (tests and apps never share state)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from modelport.model_version import ModelVersion

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
UNKNOWN = "unknown"


class Metrics:
    """Request counts and latencies per model, version, protocol; batch sizes; load times; swaps."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._success: dict[tuple[str, int, str, str], tuple[Any, Any, Any]] = {}
        self._calls: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._shed: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.requests = Counter(
            "modelport_requests",
            "Prediction requests by model, version, protocol and HTTP status.",
            ["model", "version", "protocol", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelport_request_duration_seconds",
            "Time from a parsed request to its predictions, successful requests only.",
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "modelport_batch_rows",
            "Rows per predict call.",
            ["model", "version"],
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        self.load_seconds = Gauge(
            "modelport_model_load_seconds",
            "How long loading a model version took.",
            ["model", "version"],
            registry=self.registry,
        )
        self.swaps = Counter(
            "modelport_model_swaps",
            "Hot swaps of a served alias to a new version, by result (success or failure).",
            ["model", "result"],
            registry=self.registry,
        )
        self.prediction_log_rows = Counter(
            "modelport_prediction_log_rows",
            "Prediction rows for the prediction log, by result (logged, dropped, failed).",
            ["model", "result"],
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "modelport_batch_requests",
            "Requests merged into one predict call (1 without micro-batching).",
            ["model", "version"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "modelport_queue_depth",
            "Requests waiting for a predict slot, per model version (this worker).",
            ["model", "version"],
            registry=self.registry,
        )
        self.shed = Counter(
            "modelport_shed_requests",
            "Requests answered 503 at once because the queue was full or the SLA could not be met.",
            ["model", "reason"],
            registry=self.registry,
        )
        self.routed = Counter(
            "modelport_routed_requests",
            "Requests by the traffic policy that chose their version (primary, canary, shadow).",
            ["model", "version", "role"],
            registry=self.registry,
        )
        self.shadow = Counter(
            "modelport_shadow_requests",
            "Mirrored requests to a shadow version, by result (scored, dropped, failed).",
            ["model", "version", "result"],
            registry=self.registry,
        )
        self.loaded = Gauge(
            "modelport_model_loaded",
            "1 while a model version is loaded in this worker.",
            ["model", "version"],
            registry=self.registry,
        )
        self.unloads = Counter(
            "modelport_model_unloads",
            "Versions unloaded to scale down, by reason (idle, memory).",
            ["model", "reason"],
            registry=self.registry,
        )
        self.drift_share = Gauge(
            "modelport_drift_share",
            "Share of drifted input columns in the latest monitoring window.",
            ["model", "version"],
            registry=self.registry,
        )
        self.dataset_drift = Gauge(
            "modelport_dataset_drift",
            "1 when the latest monitoring window found dataset drift.",
            ["model", "version"],
            registry=self.registry,
        )
        self.column_drift = Gauge(
            "modelport_column_drift_score",
            "The latest drift statistic per column (p-value for tests, distance for distances).",
            ["model", "version", "column", "test"],
            registry=self.registry,
        )
        self.performance = Gauge(
            "modelport_model_performance",
            "The latest performance per metric (estimated=true: CBPE, before labels arrive).",
            ["model", "version", "metric", "estimated"],
            registry=self.registry,
        )
        # A plain count the request path updates without the gauge's lock; read at scrape time.
        self.requests_in_flight = 0
        self.in_flight = Gauge(
            "modelport_requests_in_flight", "Prediction requests being served now.", registry=self.registry
        )
        self.in_flight.set_function(lambda: self.requests_in_flight)

    def observe_success(self, mv: ModelVersion, protocol: str, seconds: float, role: str = "primary") -> None:
        key = (mv.name, mv.version, protocol, role)
        children = self._success.get(key)
        if children is None:  # label lookups cost microseconds: once per series, not per request
            version = str(mv.version)
            children = self._success[key] = (
                self.requests.labels(mv.name, version, protocol, "200"),
                self.latency.labels(mv.name, version, protocol),
                self.routed.labels(mv.name, version, role),
            )
        children[0].inc()
        children[1].observe(seconds)
        children[2].inc()

    def observe_call(self, mv: ModelVersion, rows: int, requests: int) -> None:
        key = (mv.name, mv.version)
        children = self._calls.get(key)
        if children is None:
            version = str(mv.version)
            children = self._calls[key] = (
                self.batch_rows.labels(mv.name, version),
                self.batch_requests.labels(mv.name, version),
            )
        children[0].observe(rows)
        children[1].observe(requests)

    def observe_shed(self, model: str, reason: str, protocol: str | None = None) -> None:
        """A request shed (503) for ``reason``; with ``protocol``, also counted as its 503 answer."""
        key = (model, reason, protocol or "")
        children = self._shed.get(key)
        if children is None:
            children = self._shed[key] = (
                self.shed.labels(model, reason),
                self.requests.labels(model, UNKNOWN, protocol, "503") if protocol else None,
            )
        children[0].inc()
        if children[1] is not None:
            children[1].inc()

    def observe_unload(self, mv: ModelVersion, reason: str) -> None:
        self.unloads.labels(mv.name, reason).inc()
        self.loaded.labels(mv.name, str(mv.version)).set(0)

    def observe_error(self, model: str | None, version: str | None, protocol: str, status: int) -> None:
        self.requests.labels(model or UNKNOWN, version or UNKNOWN, protocol, str(status)).inc()

    def observe_load(self, mv: ModelVersion, seconds: float) -> None:
        self.load_seconds.labels(mv.name, str(mv.version)).set(seconds)
        self.loaded.labels(mv.name, str(mv.version)).set(1)

    def observe_swap(self, mv: ModelVersion, result: str) -> None:
        self.swaps.labels(mv.name, result).inc()

    def observe_prediction_log(self, model: str, result: str, rows: int) -> None:
        self.prediction_log_rows.labels(model, result).inc(rows)

    def observe_monitoring(self, result: Any) -> None:
        """Export a stored monitoring result (a :class:`DriftResult`)."""
        model, version = result.model, str(result.version)
        self.drift_share.labels(model, version).set(result.drift_share)
        self.dataset_drift.labels(model, version).set(1.0 if result.dataset_drift else 0.0)
        for col in [*result.columns, *([result.prediction] if result.prediction else [])]:
            self.column_drift.labels(model, version, col.column, col.test).set(col.statistic)
        for perf in (result.performance, result.estimated_performance):
            if perf is not None:
                for metric, value in perf.metrics.items():
                    if value is not None:
                        self.performance.labels(model, version, metric, str(perf.estimated).lower()).set(
                            value
                        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
