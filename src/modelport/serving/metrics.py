"""Prometheus metrics, in a registry of their own per app (tests and apps never share state)."""

from __future__ import annotations

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
        self.in_flight = Gauge(
            "modelport_requests_in_flight", "Prediction requests being served now.", registry=self.registry
        )

    def observe_success(self, mv: ModelVersion, protocol: str, seconds: float, rows: int) -> None:
        version = str(mv.version)
        self.requests.labels(mv.name, version, protocol, "200").inc()
        self.latency.labels(mv.name, version, protocol).observe(seconds)
        self.batch_rows.labels(mv.name, version).observe(rows)

    def observe_error(self, model: str | None, version: str | None, protocol: str, status: int) -> None:
        self.requests.labels(model or UNKNOWN, version or UNKNOWN, protocol, str(status)).inc()

    def observe_load(self, mv: ModelVersion, seconds: float) -> None:
        self.load_seconds.labels(mv.name, str(mv.version)).set(seconds)

    def observe_swap(self, mv: ModelVersion, result: str) -> None:
        self.swaps.labels(mv.name, result).inc()

    def observe_prediction_log(self, model: str, result: str, rows: int) -> None:
        self.prediction_log_rows.labels(model, result).inc(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
