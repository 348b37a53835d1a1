"""The advisor: its rules on synthetic profiles, then one real profile measured end to end."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

import modelport as mp
from modelport.advisor import BundleProfile, Profile, RuntimeProfile, Target, profile, recommend
from modelport.advisor.queueing import erlang_c, wait_quantile
from modelport.advisor.rules import HTTP_ALLOWANCE_S, MEMORY_MARGIN, UTILISATION_CAP
from modelport.cli.advise import advise, report
from modelport.cli.app import _Group
from tests.unit.test_registry import credit_pipeline

MB = 1024**2


def runtime(
    name: str = "native", latency: float = 0.004, p99: float | None = None, **kw: object
) -> RuntimeProfile:
    base: dict[str, object] = {
        "runtime": name,
        "load_seconds": 0.5,
        "load_rss_bytes": 40 * MB,
        "process_rss_bytes": 200 * MB,
        "latency_p50_s": latency,
        "latency_p99_s": p99 if p99 is not None else latency * 1.5,
        "latency_mean_s": latency,
        "throughput": {1000: 50_000.0, 10000: 100_000.0},
        "cpu_seconds_per_row": 1e-5,
        "microbatch_gain": 1.2,
    }
    return RuntimeProfile(**{**base, **kw})  # type: ignore[arg-type]


def synthetic(*runtimes: RuntimeProfile, onnx: str = "none", bundle: BundleProfile | None = None) -> Profile:
    return Profile(
        ref="credit:3",
        flavor="sklearn",
        task="classifier",
        artifact_bytes=50_000,
        model_bytes=20_000,
        cpu_count=8,
        runtimes={rt.runtime: rt for rt in runtimes or (runtime(),)},
        onnx=onnx,
        bundle=bundle,
    )


def tiny_bundle(rss: int = 70 * MB) -> BundleProfile:
    return BundleProfile(model_bytes=4_000, bundle_bytes=90_000, runtime_rss_bytes=rss)


# --- targets ---------------------------------------------------------------------------------


def test_target_parsing() -> None:
    t = Target.parse(rate="300/s", p99="25ms", rows_per_day="20M", device_memory="256MB")
    assert (t.rate, t.p99, t.rows_per_day, t.device_memory) == (300.0, 0.025, 20_000_000, 256_000_000)
    t = Target.parse(rate="20/min", p99="0.5s", rows_per_day="500k", device_memory="1GiB")
    assert (t.rate, t.p99, t.rows_per_day, t.device_memory) == (pytest.approx(1 / 3), 0.5, 500_000, 2**30)
    assert Target.parse(rate="5000/h", p99="800us").p99 == pytest.approx(0.0008)
    assert Target.parse(device_memory="512Mi").device_memory == 512 * MB


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("rate", "fast", "--rate must be a number with a unit"),
        ("rate", "300/fortnight", "--rate: unknown unit"),
        ("rate", "0/s", "--rate must be greater than 0"),
        ("p99", "25 parsecs", "--p99: '25 parsecs' is not a duration"),
        ("p99", "-3ms", "--p99: '-3ms' is not a duration"),
        ("p99", "0ms", "--p99 must be greater than 0"),
        ("rows_per_day", "20X", "--rows-per-day: unknown suffix"),
        ("device_memory", "256 potatoes", "--device-memory: unknown unit"),
    ],
)
def test_bad_target_values_are_clear_errors(field: str, text: str, message: str) -> None:
    kwargs: dict[str, Any] = {field: text}
    with pytest.raises(mp.InvalidInput, match=message):
        Target.parse(**kwargs)


def test_an_empty_target_is_refused() -> None:
    with pytest.raises(mp.InvalidInput, match="Give a target"):
        recommend(synthetic(), Target())


# --- queueing --------------------------------------------------------------------------------


def test_erlang_c_matches_closed_forms() -> None:
    assert erlang_c(1, 0.6) == pytest.approx(0.6)  # M/M/1: P(wait) = utilisation
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # M/M/2 at a = 1: 2ρ²/(1+ρ) with ρ = 0.5
    # M/M/1: P(W > t) = ρ e^{-(μ-λ)t}  ->  t99 = ln(100 ρ) / (μ - λ)
    assert wait_quantile(1, 100, 0.005) == pytest.approx(math.log(50) / 100)
    assert wait_quantile(2, 500, 0.005) == math.inf  # overloaded


# --- rules on synthetic profiles ---------------------------------------------------------------


def test_a_rate_beyond_one_workers_capacity_asks_for_more_replicas() -> None:
    prof = synthetic(runtime(latency=0.004, p99=0.006))  # one worker: 1 / (4 ms + 1 ms) = 200/s
    per_worker = 1 / (0.004 + HTTP_ALLOWANCE_S)
    small = recommend(prof, Target.parse(rate="20/s", p99="25ms"))
    assert small.mode == "real-time" and small.capacity is not None
    assert (small.capacity["replicas"], small.capacity["workers"]) == (1, 1)
    big = recommend(prof, Target.parse(rate="300/s", p99="25ms"), cores_per_replica=2)
    assert big.mode == "real-time" and big.capacity is not None
    workers = big.capacity["replicas"] * big.capacity["workers"]
    assert workers * per_worker * UTILISATION_CAP >= 300 and big.capacity["replicas"] >= 2
    assert big.capacity["utilisation"] <= UTILISATION_CAP and big.capacity["estimated_p99_ms"] <= 25
    assert big.capacity["cpu"] == big.capacity["workers"] == 2
    assert big.capacity["memory_mb"] >= 2 * 200 * MEMORY_MARGIN
    replicas = [
        recommend(prof, Target.parse(rate=f"{r}/s", p99="25ms")).capacity["replicas"]  # type: ignore[index]
        for r in (100, 1_000, 10_000)
    ]
    assert replicas == sorted(replicas) and replicas[-1] > 30
    assert any(r.factor == "peak load & SLA" and "M/M/c" in r.text for r in big.reasons)


def test_a_tight_p99_needs_more_workers_than_the_rate_alone() -> None:
    prof = synthetic(runtime(latency=0.004, p99=0.006))
    loose = recommend(prof, Target.parse(rate="150/s", p99="1s")).capacity
    tight = recommend(prof, Target.parse(rate="150/s", p99="9ms")).capacity
    assert loose is not None and tight is not None
    assert tight["replicas"] * tight["workers"] > loose["replicas"] * loose["workers"]
    assert tight["estimated_p99_ms"] <= 9


def test_a_slow_model_with_a_strict_p99_points_to_a_compiled_runtime() -> None:
    prof = synthetic(
        runtime("native", latency=0.030, p99=0.045), runtime("onnx", latency=0.002, p99=0.003), onnx="passed"
    )
    rec = recommend(prof, Target.parse(rate="100/s", p99="25ms"))
    assert (rec.mode, rec.runtime) == ("real-time", "onnx")
    assert rec.capacity is not None and rec.capacity["runtime"] == "onnx"
    assert any("native would not make it" in r.text for r in rec.reasons)
    assert [o.meets for o in rec.options] == [False, True]


def test_a_slow_model_with_a_strict_p99_and_no_compiled_twin_points_to_batch() -> None:
    prof = synthetic(runtime("native", latency=0.030, p99=0.045))
    rec = recommend(prof, Target.parse(rate="100/s", p99="25ms"))
    assert rec.mode == "batch" and rec.capacity is None
    why = " ".join(r.text for r in rec.reasons)
    assert "no runtime answers within p99 25 ms" in why and "modelport compile credit:3" in why
    assert rec.batch is not None and rec.batch["rows_per_day"] == 100 * 86_400  # the rate, sustained


def test_a_failed_twin_is_named_when_the_p99_is_out_of_reach() -> None:
    rec = recommend(synthetic(runtime(latency=0.030, p99=0.045), onnx="failed"), Target.parse(p99="25ms"))
    assert rec.mode == "batch" and any("failed the parity gate" in r.text for r in rec.reasons)


def test_a_tiny_model_and_a_device_limit_point_to_edge() -> None:
    prof = synthetic(runtime("native"), runtime("onnx", latency=0.0002), onnx="passed", bundle=tiny_bundle())
    rec = recommend(prof, Target.parse(device_memory="256MB"))
    assert (rec.mode, rec.runtime) == ("edge", "onnx")
    assert rec.edge is not None and rec.edge["fits"] and rec.edge["needed_bytes"] == 70 * MB
    assert any(r.factor == "hardware responsibility" and "fits in 256 MB" in r.text for r in rec.reasons)


def test_a_bundle_too_big_for_the_device_is_not_edge() -> None:
    prof = synthetic(runtime("onnx", latency=0.0002), onnx="passed", bundle=tiny_bundle(rss=300 * MB))
    rec = recommend(prof, Target.parse(device_memory="256MB", rate="10/s", p99="50ms"))
    assert rec.mode == "real-time" and rec.edge is not None and not rec.edge["fits"]
    assert any("does NOT fit in 256 MB" in r.text for r in rec.reasons)


def test_no_onnx_twin_rules_edge_out() -> None:
    rec = recommend(synthetic(runtime("native")), Target.parse(device_memory="1GiB"))
    assert rec.mode != "edge" and rec.edge is not None and not rec.edge["fits"]
    assert "modelport compile credit:3" in rec.edge["reason"]


def test_int8_is_suggested_when_it_shrinks_the_model() -> None:
    bundle = replace(tiny_bundle(), model_bytes=400_000, int8_model_bytes=110_000)
    prof = synthetic(runtime("onnx"), onnx="passed", bundle=bundle)
    rec = recommend(prof, Target.parse(device_memory="256MB"))
    assert rec.edge is not None and rec.edge["quantize"] == "int8" and "--quantize int8" in rec.edge["reason"]


def test_a_daily_volume_is_batch_with_core_hours_from_cpu_per_row() -> None:
    prof = synthetic(
        runtime("native", cpu_seconds_per_row=2e-5), runtime("onnx", cpu_seconds_per_row=5e-6), onnx="passed"
    )
    rec = recommend(prof, Target.parse(rows_per_day="20M"), cores_per_replica=4)
    assert (rec.mode, rec.runtime, rec.capacity) == ("batch", "onnx", None)
    assert rec.batch is not None
    assert rec.batch["core_hours_per_day"] == pytest.approx(20e6 * 5e-6 / 3600, rel=1e-3)
    assert rec.batch["hours_on_one_replica"] == pytest.approx(rec.batch["core_hours_per_day"] / 4, rel=1e-2)


def test_results_that_may_wait_are_batch() -> None:
    rec = recommend(synthetic(), Target.parse(rate="300/s", p99="10min"))
    assert rec.mode == "batch" and any("not time-critical" in r.text for r in rec.reasons)
    assert rec.capacity is not None  # the real-time alternative is still sized, for comparison


def test_micro_batching_is_recommended_only_where_it_was_measured_to_pay() -> None:
    target = Target.parse(rate="100/s", p99="50ms")
    assert recommend(synthetic(runtime(microbatch_gain=3.0)), target).batching
    assert not recommend(synthetic(runtime(microbatch_gain=1.1)), target).batching


def test_reasons_use_the_seeds_terms_and_json_has_capacity() -> None:
    rec = recommend(synthetic(runtime(microbatch_gain=2.0)), Target.parse(rate="300/s", p99="25ms"))
    factors = {r.factor for r in rec.reasons}
    assert {"prediction frequency", "time-critical results", "peak load & SLA", "hardware responsibility",
            "model complexity"} <= factors  # fmt: skip
    d = json.loads(json.dumps(rec.to_dict()))
    assert {"replicas", "workers", "cpu", "memory_mb"} <= set(d["capacity"])


# --- one real profile, end to end -------------------------------------------------------------


@pytest.fixture(scope="module")
def credit_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("advise") / "mphome"
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setenv("MODELPORT_HOME", str(home))
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        model, X, _ = credit_pipeline()
        mp.register(model, "credit", sample=X)
        assert mp.compile("credit:1").passed
        yield home


@pytest.fixture(scope="module")
def real_profile(credit_home: Path) -> Profile:
    return profile("credit:1", repeats=100)


@pytest.mark.slow
def test_a_real_profile_measures_both_runtimes_and_the_bundle(real_profile: Profile) -> None:
    p = real_profile
    assert (p.ref, p.flavor, p.task, p.onnx, p.notes) == ("credit:1", "sklearn", "classifier", "passed", [])
    assert set(p.runtimes) == {"native", "onnx"} and p.artifact_bytes > p.model_bytes > 0
    for rp in p.runtimes.values():
        assert rp.load_seconds is not None and rp.load_seconds > 0
        assert rp.process_rss_bytes is not None and rp.process_rss_bytes > 20 * MB
        assert 0 < rp.latency_p50_s <= rp.latency_p99_s < 1
        assert set(rp.throughput) == {1000, 10000} and all(v > 0 for v in rp.throughput.values())
        assert rp.cpu_seconds_per_row is not None and rp.microbatch_gain is not None
    assert p.bundle is not None and p.bundle.bundle_bytes > p.bundle.model_bytes > 0
    assert p.bundle.runtime_rss_bytes is not None and 10 * MB < p.bundle.runtime_rss_bytes < 1024 * MB


@pytest.mark.slow
def test_recommendations_on_the_real_profile_follow_its_measurements(real_profile: Profile) -> None:
    option = {o.runtime: o for o in recommend(real_profile, Target.parse(rate="1/s")).options}
    fastest = max(option.values(), key=lambda o: o.worker_rate)
    rate = fastest.worker_rate * 3  # three workers' worth flat out
    rec = recommend(real_profile, Target.parse(rate=f"{rate}/s", p99="1s"), cores_per_replica=1)
    assert rec.mode == "real-time" and rec.capacity is not None and rec.capacity["replicas"] >= 5
    rec = recommend(real_profile, Target.parse(device_memory="1GiB", rows_per_day="20M"))
    assert rec.mode == "edge" and rec.batch is not None and rec.batch["core_hours_per_day"] > 0
    out = io.StringIO()
    Console(file=out, width=120).print(report(real_profile, Target.parse(device_memory="1GiB"), rec))
    text = out.getvalue()
    assert "Recommendation: EDGE on onnx" in text and "native" in text and "hardware responsibility" in text


def _cli() -> typer.Typer:
    cli = typer.Typer(cls=_Group)  # the root group's error handling, with this command alone
    cli.command("advise")(advise)
    cli.command("noop")(lambda: None)
    return cli


@pytest.mark.slow
def test_cli_json(credit_home: Path) -> None:
    res = CliRunner().invoke(
        _cli(), ["advise", "credit:1", "--rate", "50/s", "--p99", "1s", "--runtime", "native",
                 "--repeats", "30", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["mode"] == "real-time" and out["runtime"] == "native"
    assert set(out["profile"]["runtimes"]) == {"native"}
    assert {"replicas", "workers", "cpu", "memory_mb"} <= set(out["capacity"])
    assert out["target"]["rate"] == 50.0 and out["target"]["p99"] == 1.0


def test_cli_bad_target_is_one_line_error(credit_home: Path) -> None:
    res = CliRunner().invoke(_cli(), ["advise", "credit:1", "--rate", "lots"])
    assert res.exit_code == 1 and "Error: --rate must be a number with a unit" in res.stderr
    res = CliRunner().invoke(_cli(), ["advise", "credit:1"])
    assert res.exit_code == 1 and "Give a target" in res.stderr
