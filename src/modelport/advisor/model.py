"""What the advisor measures (:class:`Profile`) and what it is asked to meet (:class:`Target`).

Both are plain dataclasses, so :func:`~modelport.advisor.recommend` can be fed a synthetic profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from modelport.advisor.units import parse_bytes, parse_count, parse_duration, parse_rate
from modelport.errors import InvalidInput


@dataclass(frozen=True)
class RuntimeProfile:
    """One runtime ("native" or "onnx") of one model version, measured on this machine.

    ``load_seconds``/``process_rss_bytes`` come from a fresh process (framework import included):
    what a new worker pays. ``latency_*`` are 1-row predict calls on reference rows in this
    process; ``throughput`` maps a batch size to rows/s and ``cpu_seconds_per_row`` is the CPU time
    (all threads) per row at the largest batch. ``microbatch_gain`` is 32 one-row calls' time over
    one 32-row call's time.
    """

    runtime: str
    load_seconds: float | None
    load_rss_bytes: int | None  # growth of the process's RSS from loading the model
    process_rss_bytes: int | None  # a worker's whole RSS after loading and one prediction
    latency_p50_s: float
    latency_p99_s: float
    latency_mean_s: float
    throughput: dict[int, float] = field(default_factory=dict)
    cpu_seconds_per_row: float | None = None
    microbatch_gain: float | None = None

    @property
    def best_throughput(self) -> float:
        return max(self.throughput.values()) if self.throughput else 1.0 / self.latency_mean_s


@dataclass(frozen=True)
class BundleProfile:
    """The edge bundle of the ONNX twin: its size and the memory its own runtime needs."""

    model_bytes: int  # model.onnx, fp32
    bundle_bytes: int  # the whole folder: model, manifest, runtime code
    int8_model_bytes: int | None = None  # when int8 passed its gate
    int8_note: str = ""
    runtime_rss_bytes: int | None = None  # a fresh process running the bundle (Python+numpy+ORT+model)


@dataclass(frozen=True)
class Profile:
    ref: str
    flavor: str
    task: str | None
    artifact_bytes: int  # every stored file of the version (model, reference sample, ...)
    model_bytes: int  # the model files alone
    cpu_count: int
    runtimes: dict[str, RuntimeProfile]
    onnx: str = "none"  # the ONNX twin: "passed", "failed" or "none"
    bundle: BundleProfile | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for rt in d["runtimes"].values():
            rt["throughput"] = {str(k): v for k, v in rt["throughput"].items()}
        return d


@dataclass(frozen=True)
class Target:
    """What the deployment must meet. Build from CLI text with :meth:`parse`.

    ``rate``: requests per second at peak; ``p99``: seconds; ``rows_per_day``: batch volume;
    ``device_memory``: bytes of memory on the edge device; ``rows_per_request``: rows in each request.
    """

    rate: float | None = None
    p99: float | None = None
    rows_per_day: int | None = None
    device_memory: int | None = None
    rows_per_request: int = 1

    def __post_init__(self) -> None:
        for name in ("rate", "p99", "rows_per_day", "device_memory"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InvalidInput(f"{name} must be greater than 0, got {value!r}.")
        if self.rows_per_request < 1:
            raise InvalidInput(f"rows_per_request must be at least 1, got {self.rows_per_request!r}.")

    @classmethod
    def parse(
        cls,
        rate: str | None = None,
        p99: str | None = None,
        rows_per_day: str | None = None,
        device_memory: str | None = None,
        rows_per_request: int = 1,
    ) -> Target:
        """``Target.parse(rate="300/s", p99="25ms", rows_per_day="20M", device_memory="256MB")``."""
        return cls(
            rate=parse_rate(rate) if rate is not None else None,
            p99=parse_duration(p99) if p99 is not None else None,
            rows_per_day=parse_count(rows_per_day) if rows_per_day is not None else None,
            device_memory=parse_bytes(device_memory) if device_memory is not None else None,
            rows_per_request=rows_per_request,
        )

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.rate, self.p99, self.rows_per_day, self.device_memory))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
