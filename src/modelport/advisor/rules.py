"""From a measured :class:`Profile` and a :class:`Target` to a deployment mode and its capacity.

:func:`recommend` is pure: it reads numbers and returns numbers and reasons, so its rules are
tested on synthetic profiles. The rules, in order:

1. **Edge** when a device memory is given and the ONNX bundle's runtime fits in it (measured RSS of
   a fresh process running the bundle, else an estimate): the device owns the hardware.
2. **Batch** when results may wait (p99 of a minute or more), when no runtime answers one request
   within the p99 at all (its own p99 service time plus an HTTP allowance exceeds it), or when
   only a daily volume is given.
3. **Real-time** otherwise, on the runtime that needs the fewest workers: workers come from an
   M/M/c queue on the measured mean service time, at most 70 % busy, with the p99 wait plus the
   measured p99 service time within the target; one worker process per core, ``cores_per_replica``
   workers per replica.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from modelport.advisor.model import Profile, RuntimeProfile, Target
from modelport.advisor.queueing import wait_quantile, workers_needed
from modelport.advisor.units import fmt_bytes, fmt_count, fmt_rate, fmt_seconds
from modelport.errors import InvalidInput

UTILISATION_CAP = 0.7  # headroom for bursts that a Poisson model underrates, and for a lost worker
HTTP_ALLOWANCE_S = 0.001  # JSON decoding and the HTTP round trip on the server, not measured here
MEMORY_MARGIN = 1.25  # request buffers and allocator slack on top of a worker's measured RSS
BATCH_P99_S = 60.0  # results that may wait a minute are not time-critical
MICROBATCH_WORTH = 1.5  # a measured gain below this is not worth the waiting it adds
EDGE_BASE_RSS = 60 * 1024**2  # Python + numpy + onnxruntime when the bundle's RSS was not measured
SECONDS_PER_DAY = 86_400

# The seed's terms for why a mode fits.
FREQUENCY = "prediction frequency"
TIME_CRITICAL = "time-critical results"
PEAK_LOAD = "peak load & SLA"
HARDWARE = "hardware responsibility"
COMPLEXITY = "model complexity"


@dataclass(frozen=True)
class Reason:
    factor: str
    text: str


@dataclass(frozen=True)
class RuntimeOption:
    """How one runtime would serve the target in real time."""

    runtime: str
    service_mean_s: float
    service_p99_s: float
    worker_rate: float  # requests/s one worker completes flat out
    workers: int | None  # None: the p99 is out of reach
    estimated_p99_s: float | None

    @property
    def meets(self) -> bool:
        return self.workers is not None


@dataclass
class Recommendation:
    mode: str  # "real-time", "batch" or "edge"
    runtime: str
    reasons: list[Reason] = field(default_factory=list)
    # Serving resources for the k8s packager (replicas, workers, cpu, memory_mb) whenever a rate or
    # p99 is given and reachable, also when ``mode`` is batch or edge (the real-time alternative).
    capacity: dict[str, Any] | None = None
    options: list[RuntimeOption] = field(default_factory=list)
    batch: dict[str, Any] | None = None
    edge: dict[str, Any] | None = None
    batching: bool = False  # real-time: turn the server's micro-batching on (it measurably pays)
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = [asdict(r) for r in self.reasons]
        return d


def recommend(profile: Profile, target: Target, cores_per_replica: int = 2) -> Recommendation:
    """Pick real-time, batch or edge for ``target`` from the measurements in ``profile``.

    >>> rec = recommend(profile, Target.parse(rate="300/s", p99="25ms"))   # doctest: +SKIP
    >>> rec.mode, rec.capacity["replicas"]                                  # doctest: +SKIP
    ('real-time', 2)
    """
    if target.empty:
        raise InvalidInput("Give a target: --rate and --p99, --rows-per-day, or --device-memory.")
    if cores_per_replica < 1:
        raise InvalidInput(f"cores_per_replica must be at least 1, got {cores_per_replica}.")
    if not profile.runtimes:
        raise InvalidInput(f"The profile of '{profile.ref}' has no measured runtime.")
    reasons: list[Reason] = [Reason(COMPLEXITY, _complexity(profile))]
    options = [_option(rp, target) for rp in profile.runtimes.values()]
    best = min(options, key=lambda o: (not o.meets, o.workers or 0, o.estimated_p99_s or o.service_p99_s))
    edge = _edge(profile, target) if target.device_memory is not None else None
    online = target.rate is not None or target.p99 is not None

    if edge is not None and edge["fits"]:
        mode, runtime = "edge", "onnx"
    elif target.p99 is not None and target.p99 >= BATCH_P99_S:
        mode, runtime = "batch", _batch_runtime(profile)
        reasons.append(
            Reason(
                TIME_CRITICAL,
                f"results may wait {fmt_seconds(target.p99)}: not time-critical, so "
                "score what arrived in scheduled batches instead of keeping servers up",
            )
        )
    elif online and not best.meets:
        mode, runtime = "batch", _batch_runtime(profile)
        reasons.append(Reason(TIME_CRITICAL, _unreachable(profile, options, target)))
    elif online or target.rows_per_day is None:
        mode, runtime = "real-time", best.runtime
        if target.p99 is not None:
            reasons.append(Reason(TIME_CRITICAL, _reachable(best, options, target)))
    else:
        mode, runtime = "batch", _batch_runtime(profile)
        reasons.append(
            Reason(
                TIME_CRITICAL,
                "only a daily volume is given, no per-request deadline: scheduled "
                "batch jobs score it with the whole table at once, at the best throughput",
            )
        )

    rec = Recommendation(mode=mode, runtime=runtime, reasons=reasons, options=options, edge=edge)
    rows_per_day = target.rows_per_day
    if target.rate is not None:
        sustained = target.rate * SECONDS_PER_DAY * target.rows_per_request
        reasons.insert(
            0,
            Reason(
                FREQUENCY,
                f"{fmt_rate(target.rate)} at peak, {target.rows_per_request} row(s) per request "
                f"({fmt_count(sustained)} rows/day if sustained)",
            ),
        )
        if rows_per_day is None and mode == "batch":
            rows_per_day = int(sustained)
    elif rows_per_day is not None:
        reasons.insert(0, Reason(FREQUENCY, f"{fmt_count(rows_per_day)} rows/day, no request rate"))
    if online and best.meets:  # also beside batch or edge: the real-time alternative, for comparison
        _size_serving(rec, profile, target, best, cores_per_replica)
    if rows_per_day is not None:
        rec.batch = _batch(profile, rows_per_day, cores_per_replica)
    _hardware(rec, profile, target, cores_per_replica)
    if edge is not None:
        reasons.append(Reason(HARDWARE, edge["reason"]))
    rec.assumptions = [
        f"one worker process per core, {cores_per_replica} per replica; timings are from this "
        f"machine's cores ({profile.cpu_count})",
        f"M/M/c queue (Poisson arrivals) on the mean 1-row service time, at most "
        f"{UTILISATION_CAP:.0%} busy; estimated p99 = p99 queue wait + measured p99 service time "
        f"+ {HTTP_ALLOWANCE_S * 1e3:.0f} ms HTTP allowance",
        f"memory per replica = workers × a fresh worker's measured RSS × {MEMORY_MARGIN}",
    ]
    return rec


def _option(rp: RuntimeProfile, target: Target) -> RuntimeOption:
    extra = (target.rows_per_request - 1) * _seconds_per_row(rp)  # more rows: the per-row cost on top
    mean = rp.latency_mean_s + extra + HTTP_ALLOWANCE_S
    p99 = rp.latency_p99_s + extra + HTTP_ALLOWANCE_S
    sized = workers_needed(target.rate or 1e-9, mean, p99, target.p99, UTILISATION_CAP)
    workers, estimate = sized if sized is not None else (None, None)
    return RuntimeOption(rp.runtime, mean, p99, 1.0 / mean, workers, estimate)


def _seconds_per_row(rp: RuntimeProfile) -> float:
    return 1.0 / rp.best_throughput


def _batch_runtime(profile: Profile) -> str:
    return min(profile.runtimes.values(), key=_cpu_per_row).runtime


def _cpu_per_row(rp: RuntimeProfile) -> float:
    return rp.cpu_seconds_per_row if rp.cpu_seconds_per_row else _seconds_per_row(rp)


def _size_serving(
    rec: Recommendation, profile: Profile, target: Target, opt: RuntimeOption, cores: int
) -> None:
    assert opt.workers is not None
    rate = target.rate or 0.0
    workers = min(cores, opt.workers)
    replicas = math.ceil(opt.workers / workers)
    rp = profile.runtimes[opt.runtime]
    utilisation = rate / (replicas * workers * opt.worker_rate)
    est = wait_quantile(replicas * workers, rate, opt.service_mean_s) + opt.service_p99_s
    rss = rp.process_rss_bytes
    note = ""
    if rss is None:
        rss = EDGE_BASE_RSS * 3 + 3 * profile.model_bytes
        note = " (memory estimated: the worker's RSS was not measured)"
    memory_mb = _round_up(workers * rss * MEMORY_MARGIN / 1024**2, 16)
    rec.capacity = {
        "runtime": opt.runtime,
        "replicas": replicas,
        "workers": workers,
        "cpu": workers,
        "memory_mb": memory_mb,
        "utilisation": round(utilisation, 3),
        "worker_rate": round(opt.worker_rate, 2),
        "estimated_p99_ms": round(est * 1e3, 2),
        "batching": rp.microbatch_gain is not None and rp.microbatch_gain >= MICROBATCH_WORTH,
    }
    if target.rate is not None and rec.mode == "real-time":
        rec.reasons.append(
            Reason(
                PEAK_LOAD,
                f"one {opt.runtime} worker completes {fmt_rate(opt.worker_rate)}; {fmt_rate(rate)} at "
                f"≤{UTILISATION_CAP:.0%} busy"
                + (f" within p99 {fmt_seconds(target.p99)}" if target.p99 is not None else "")
                + f" needs {opt.workers} worker(s) = {replicas} replica(s) × {workers}, "
                f"{utilisation:.0%} busy, estimated p99 {fmt_seconds(est)} (M/M/c){note}",
            )
        )
    gain = rp.microbatch_gain
    rec.batching = rec.mode == "real-time" and rec.capacity["batching"]
    if gain is None or target.rate is None or rec.mode != "real-time":
        return
    if rec.batching:
        text = (
            f"micro-batching pays: a 32-row call costs 1/{gain:.1f} of 32 one-row calls; serve with "
            "--batching for headroom at peaks (the sizing above assumes none)"
        )
    else:
        text = f"micro-batching gains little here (×{gain:.1f} at 32 rows): leave it off"
    rec.reasons.append(Reason(PEAK_LOAD, text))


def _batch(profile: Profile, rows_per_day: int, cores: int) -> dict[str, Any]:
    rp = min(profile.runtimes.values(), key=_cpu_per_row)
    cpu_per_row = _cpu_per_row(rp)
    core_hours = rows_per_day * cpu_per_row / 3600
    return {
        "runtime": rp.runtime,
        "rows_per_day": rows_per_day,
        "rows_per_core_second": round(1 / cpu_per_row, 1),
        "core_hours_per_day": round(core_hours, 4),
        "hours_on_one_replica": round(core_hours / cores, 4),
        "cores_per_replica": cores,
        "load_seconds": rp.load_seconds,
    }


def _edge(profile: Profile, target: Target) -> dict[str, Any]:
    device = target.device_memory or 0
    b = profile.bundle
    if b is None:
        why = {"failed": "its ONNX twin failed the parity gate", "passed": "the bundle was not measured"}
        reason = (
            f"edge ruled out: {why.get(profile.onnx, 'it has no ONNX twin')}, and a bundle needs "
            f"one (`modelport compile {profile.ref}`)"
        )
        return {"fits": False, "device_memory": device, "needed_bytes": None, "reason": reason}
    measured = b.runtime_rss_bytes is not None
    needed = b.runtime_rss_bytes if measured else EDGE_BASE_RSS + 3 * b.model_bytes
    assert needed is not None
    fits = needed <= device and b.bundle_bytes <= device
    how = "measured RSS of a fresh process running the bundle" if measured else "estimated"
    verdict = "fits" if fits else "does NOT fit"
    reason = (
        f"edge bundle {fmt_bytes(b.bundle_bytes)} (model.onnx {fmt_bytes(b.model_bytes)}) needs "
        f"{fmt_bytes(needed)} of memory ({how}): {verdict} in {fmt_bytes(device)}"
    )
    quantize = None
    if b.int8_model_bytes is not None and b.int8_model_bytes < b.model_bytes:
        quantize = "int8"
        reason += f"; --quantize int8 shrinks model.onnx to {fmt_bytes(b.int8_model_bytes)}"
    elif b.int8_note:
        reason += f"; int8: {b.int8_note}"
    return {
        "fits": fits,
        "device_memory": device,
        "needed_bytes": needed,
        "needed_measured": measured,
        "bundle_bytes": b.bundle_bytes,
        "model_bytes": b.model_bytes,
        "quantize": quantize,
        "reason": reason,
    }


def _hardware(rec: Recommendation, profile: Profile, target: Target, cores: int) -> None:
    if rec.mode == "edge":
        onnx = profile.runtimes.get("onnx")
        text = "each device runs its own predictions: no servers to run, the device owner updates the bundle"
        if onnx is not None and target.p99 is not None:
            text += (
                f"; 1-row p99 here {fmt_seconds(onnx.latency_p99_s)} vs {fmt_seconds(target.p99)} "
                "(a device CPU is usually slower: check there)"
            )
        rec.reasons.append(Reason(HARDWARE, text))
    elif rec.mode == "batch" and rec.batch is not None:
        b = rec.batch
        rec.reasons.append(
            Reason(
                HARDWARE,
                "a scheduled job, no always-on servers: "
                f"{fmt_count(b['rows_per_day'])} rows/day on {b['runtime']} ≈ "
                f"{b['core_hours_per_day']:.3g} core-hours/day "
                f"({b['hours_on_one_replica']:.3g} h on {cores} cores)",
            )
        )
    elif rec.mode == "real-time" and rec.capacity is not None:
        c = rec.capacity
        rec.reasons.append(
            Reason(
                HARDWARE,
                f"you run always-on servers: {c['replicas']} replica(s) × {c['cpu']} CPU, "
                f"{c['memory_mb']} MB each (add one for failover)",
            )
        )


def _complexity(profile: Profile) -> str:
    kind = f"{profile.flavor} {profile.task or ''}".strip()
    parts = [f"{kind}, model files {fmt_bytes(profile.model_bytes)}"]
    for rp in profile.runtimes.values():
        load = f"load {fmt_seconds(rp.load_seconds)}, " if rp.load_seconds is not None else ""
        rss = f"{fmt_bytes(rp.process_rss_bytes)} per worker, " if rp.process_rss_bytes is not None else ""
        parts.append(
            f"{rp.runtime}: {load}{rss}1-row p99 {fmt_seconds(rp.latency_p99_s)}, "
            f"{fmt_count(rp.best_throughput)} rows/s in batches"
        )
    return "; ".join(parts)


def _reachable(best: RuntimeOption, options: list[RuntimeOption], target: Target) -> str:
    text = (
        f"answers due within p99 {fmt_seconds(target.p99)}: {best.runtime} serves one request in "
        f"{fmt_seconds(best.service_p99_s)} at p99 (HTTP allowance included)"
    )
    missed = [o.runtime for o in options if not o.meets]
    if missed:
        text += f"; {', '.join(missed)} would not make it"
    return text


def _unreachable(profile: Profile, options: list[RuntimeOption], target: Target) -> str:
    fastest = min(options, key=lambda o: o.service_p99_s)
    text = (
        f"no runtime answers within p99 {fmt_seconds(target.p99)} even with idle workers (fastest: "
        f"{fastest.runtime}, {fmt_seconds(fastest.service_p99_s)} per request at p99): score ahead of "
        "time in batch and look results up"
    )
    if profile.onnx == "none":
        text += f", or compile an ONNX twin (`modelport compile {profile.ref}`) and advise again"
    elif profile.onnx == "failed":
        text += "; its ONNX twin failed the parity gate, so a compiled runtime is not an option yet"
    return text


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)
