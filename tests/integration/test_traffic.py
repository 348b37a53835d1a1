"""Traffic under load over real HTTP: micro-batching, load shedding at the SLA, bounded queues,
canary and shadow routing, scale-down (idle unload, memory budget) and serve.yaml."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.errors import InvalidInput
from modelport.serving import ModelManager, ServeConfig, create_app
from modelport.serving.background import BackgroundServer
from modelport.serving.lanes import INLINE_MAX_BYTES, LONELY, Lane, Reply
from modelport.serving.service import routing_bucket
from modelport.serving.settings import ModelPolicy
from tests.integration.slow_model import SlowDoubler, frame
from tests.integration.test_serving import _counter, _records
from tests.unit.test_registry import credit_pipeline


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """slow:1 (50 ms a call, any batch size), credit:1 (@production) and credit:2."""
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setenv("MODELPORT_HOME", str(tmp_path_factory.mktemp("traffic") / "mphome"))
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        mp.register(SlowDoubler(0.05).fit(frame()), "slow", sample=frame())
        mp.register(SlowDoubler(0.0).fit(frame()), "fast", sample=frame())
        model, X, _ = credit_pipeline()
        mp.register(model, "credit", sample=X, alias="production")
        mp.register(model, "credit", sample=X)
        yield {"rows": {"inputs": _records(X.head(2))}}


def _app(refs: list[str], **settings: Any) -> Any:
    settings.setdefault("log_sample_rate", 0.0)
    return create_app(Client(Settings.from_env()), refs, **settings)


def _concurrently(
    url: str, bodies: list[Any], headers: list[dict[str, str]] | None = None
) -> list[httpx.Response]:
    """POST each (path, body) to /models/{path}/predict at the same moment, one thread each."""
    heads = headers or [{}] * len(bodies)
    start = threading.Barrier(len(bodies))

    def post(i: int) -> httpx.Response:
        path, body = bodies[i]
        with httpx.Client(base_url=url, timeout=30) as client:
            start.wait()
            return client.post(f"/models/{path}/predict", json=body, headers=heads[i])

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, range(len(bodies))))


def _metrics(url: str) -> str:
    return httpx.get(f"{url}/metrics").text


# --- micro-batching ------------------------------------------------------------------------------


def test_batching_merges_concurrent_requests_and_answers_each_its_own(store: dict[str, Any]) -> None:
    app = _app(["slow"], batching=True, max_batch_size=64, max_wait_ms=20)
    with BackgroundServer(app) as srv:
        httpx.post(f"{srv.url}/models/slow/predict", json={"inputs": [{"x": 0.0}]})  # warm the lane
        bodies = [("slow", {"inputs": [{"x": float(i)}, {"x": float(i) + 0.5}]}) for i in range(16)]
        answers = _concurrently(srv.url, bodies)
        assert [r.status_code for r in answers] == [200] * 16
        for i, r in enumerate(answers):
            assert r.json()["predictions"] == [2.0 * i, 2.0 * i + 1.0]  # each request gets its own rows
        text = _metrics(srv.url)
    calls = _counter(text, "modelport_batch_requests_count", model="slow")
    merged = _counter(text, "modelport_batch_requests_sum", model="slow")
    assert merged == 17
    assert calls <= 8, f"16 concurrent requests took {calls} predict calls"  # 50 ms calls: they queue up
    assert _counter(text, "modelport_batch_rows_sum", model="slow") == 33


def test_without_batching_or_coalescing_every_request_is_its_own_call(store: dict[str, Any]) -> None:
    with BackgroundServer(_app(["slow"], batching=False, coalesce=False)) as srv:
        answers = _concurrently(srv.url, [("slow", {"inputs": [{"x": float(i)}]}) for i in range(6)])
        assert all(r.status_code == 200 for r in answers)
        text = _metrics(srv.url)
    assert _counter(text, "modelport_batch_requests_count", model="slow") == 6


def test_coalescing_merges_only_what_already_waits(store: dict[str, Any]) -> None:
    """The default: requests queued behind 50 ms calls share the next call; none waits for company."""
    with BackgroundServer(_app(["slow"], concurrency=1)) as srv:
        bodies = [("slow", {"inputs": [{"x": float(i)}]}) for i in range(8)]
        answers = _concurrently(srv.url, bodies)
        assert [r.json()["predictions"] for r in answers] == [[2.0 * i] for i in range(8)]
        text = _metrics(srv.url)
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for _ in range(3):  # one at a time: each alone, and at once
                r = client.post("/models/slow/predict", json={"inputs": [{"x": 1.0}]})
                assert r.status_code == 200 and r.elapsed.total_seconds() < 2.0
    calls = _counter(text, "modelport_batch_requests_count", model="slow")
    assert _counter(text, "modelport_batch_requests_sum", model="slow") == 8
    assert calls < 8, f"8 concurrent requests took {calls} calls"


def test_a_bad_request_in_a_batch_fails_alone(store: dict[str, Any]) -> None:
    with BackgroundServer(_app(["slow"], batching=True, max_wait_ms=50)) as srv:
        bodies: list[Any] = [("slow", {"inputs": [{"x": float(i)}]}) for i in range(8)]
        bodies[3] = ("slow", {"inputs": [{"x": "not a number"}]})
        bodies[5] = ("slow", {"rows": []})
        answers = _concurrently(srv.url, bodies)
    codes = [r.status_code for r in answers]
    assert codes[3] == 422 and "x" in answers[3].json()["error"]
    assert codes[5] == 400
    assert "not a number" not in answers[3].text  # error bodies never echo input values
    assert [c for i, c in enumerate(codes) if i not in (3, 5)] == [200] * 6
    assert answers[7].json()["predictions"] == [14.0]


def test_a_lone_request_is_not_held_back_for_company(store: dict[str, Any]) -> None:
    """With a 3 s max wait, sparse requests would each take 3 s if held: they must not be."""
    with (
        BackgroundServer(_app(["slow"], batching=True, max_wait_ms=3000)) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        for i in range(4):
            r = client.post("/models/slow/predict", json={"inputs": [{"x": float(i)}]})
            assert r.status_code == 200
            assert r.elapsed.total_seconds() < 2.0


def test_fast_models_are_scored_on_the_event_loop_without_a_thread_hop(store: dict[str, Any]) -> None:
    with BackgroundServer(_app(["fast"])) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        SlowDoubler.threads.clear()
        for i in range(6):
            r = client.post("/models/fast/predict", json={"inputs": [{"x": float(i)}]})
            assert r.json()["predictions"] == [2.0 * i]
        loop_thread = srv.thread.name
        # the first call runs in the thread pool and is timed; fast ones then run on the loop
        assert SlowDoubler.threads[-1] == loop_thread, SlowDoubler.threads
        big = {"inputs": [{"x": float(i)} for i in range(10_000)]}  # a large body: the thread pool
        assert len(json.dumps(big)) > INLINE_MAX_BYTES
        assert client.post("/models/fast/predict", json=big).json()["predictions"][-1] == 19998.0
        assert SlowDoubler.threads[-1] != loop_thread


def test_batching_merges_on_the_event_loop_too(store: dict[str, Any]) -> None:
    """Requests that arrive in one turn of the loop share one call on the loop. The loop is held
    while they are sent, so that they are all readable at once however slow this machine is."""
    with BackgroundServer(_app(["fast"], batching=True, max_wait_ms=5)) as srv:
        httpx.post(f"{srv.url}/models/fast/predict", json={"inputs": [{"x": 0.0}]})
        conns = [http.client.HTTPConnection(srv.host, srv.port, timeout=30) for _ in range(24)]
        for conn in conns:  # accepted by the server before its loop is held
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        with _loop_held(srv):
            for i, conn in enumerate(conns):
                body = json.dumps({"inputs": [{"x": float(i)}]})
                conn.request("POST", "/models/fast/predict", body, {"Content-Type": "application/json"})
        answers = [json.loads(conn.getresponse().read()) for conn in conns]
        assert [a["predictions"] for a in answers] == [[2.0 * i] for i in range(24)]
        text = _metrics(srv.url)
        for conn in conns:
            conn.close()
    calls = _counter(text, "modelport_batch_requests_count", model="fast")
    assert _counter(text, "modelport_batch_requests_sum", model="fast") == 25
    assert calls <= 3, f"24 requests that arrived together took {calls} calls"


@contextmanager
def _loop_held(srv: BackgroundServer) -> Iterator[None]:
    """Block the server's event loop until the block exits (what arrives meanwhile waits in the
    sockets and is read in the loop's next turn)."""
    held, released = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        released.wait(30)

    srv.server.servers[0].get_loop().call_soon_threadsafe(hold)
    assert held.wait(30)
    try:
        yield
    finally:
        time.sleep(0.1)  # the last bytes reach the server's socket
        released.set()


def test_coalescing_scores_a_lone_client_at_once_and_merges_again_when_company_comes(
    store: dict[str, Any],
) -> None:
    """A client that waits for each answer gains nothing from waiting a turn of the loop for
    company: after LONELY lone calls its requests are scored at once (but every LONELY-th, which
    looks for company); a burst in one turn then merges again."""
    predictor = mp.load("fast")

    async def scenario() -> tuple[list[bool], list[bool], list[Any]]:
        lane = Lane("fast", 1, ModelPolicy())  # coalescing, the default
        lane._measured(0.0001)  # a fast version: scored on the loop
        answers: list[Any] = []

        def submit(x: float) -> Reply:
            reply = Reply(answers.append, answers.append)
            lane.submit(predictor, [{"x": x}], None, 20, reply)
            return reply

        alone = []
        for i in range(3 * LONELY):  # one at a time: answered at once, or a turn later
            alone.append(submit(float(i)).done())
            await asyncio.sleep(0)
        burst = [submit(float(i)) for i in range(2 * LONELY)]  # arrive in the same turn
        await asyncio.sleep(0)
        after = [submit(float(i)) for i in range(3)]
        together = [r.done() for r in after]
        await asyncio.sleep(0)
        assert all(r.done() for r in burst + after)
        return alone, together, answers

    alone, together, answers = asyncio.run(scenario())
    assert alone[:LONELY] == [False] * LONELY  # a turn's wait each, while company may come
    lone = alone[LONELY:]
    assert lone.count(False) == len(lone) // LONELY and sum(lone) == len(lone) - len(lone) // LONELY
    assert together == [False, False, False]  # the burst merged: merging again
    assert [a.predictions.tolist() for a in answers[: 3 * LONELY]] == [[2.0 * i] for i in range(3 * LONELY)]


# --- peak load: SLA shedding and bounded queues ----------------------------------------------------


def test_sla_sheds_with_retry_after_instead_of_queueing(store: dict[str, Any]) -> None:
    app = _app(["slow"], sla_ms=120, concurrency=1, coalesce=False)  # one call per request
    with BackgroundServer(app) as srv:
        for _ in range(3):  # measure the service time (50 ms a request)
            httpx.post(f"{srv.url}/models/slow/predict", json={"inputs": [{"x": 1.0}]})
        answers = _concurrently(srv.url, [("slow", {"inputs": [{"x": 1.0}]})] * 24)
        text = _metrics(srv.url)
        mlflow = _concurrently_mlflow(srv.url, 12)
    codes = Counter(r.status_code for r in answers)
    assert set(codes) == {200, 503}, codes
    assert 2 <= codes[200] <= 12, codes  # ~ SLA / service time admitted, the rest shed at once
    shed = [r for r in answers if r.status_code == 503]
    for r in shed:
        assert int(r.headers["Retry-After"]) >= 1
        assert "SLA" in r.json()["error"]
        slowest_accepted = max(x.elapsed.total_seconds() for x in answers if x.status_code == 200)
        assert r.elapsed.total_seconds() < slowest_accepted
    assert _counter(text, "modelport_shed_requests_total", model="slow") == codes[503]  # sla or sla_late
    assert _counter(text, model="slow", status="503") == codes[503]
    assert {r.status_code for r in mlflow} <= {200, 503}
    for r in mlflow:
        if r.status_code == 503:
            assert r.json()["error_code"] and r.headers["Retry-After"]


def _concurrently_mlflow(url: str, n: int) -> list[httpx.Response]:
    start = threading.Barrier(n)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=30) as client:
            start.wait()
            return client.post("/invocations", json={"dataframe_records": [{"x": 1.0}]})

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(post, range(n)))


def test_a_full_queue_answers_503_at_once(store: dict[str, Any]) -> None:
    with BackgroundServer(_app(["slow"], max_queue=2, concurrency=1)) as srv:
        answers = _concurrently(srv.url, [("slow", {"inputs": [{"x": 1.0}]})] * 12)
        text = _metrics(srv.url)
    codes = Counter(r.status_code for r in answers)
    assert set(codes) == {200, 503} and codes[200] >= 3, codes
    assert all("waiting" in r.json()["error"] for r in answers if r.status_code == 503)
    assert _counter(text, "modelport_shed_requests_total", model="slow", reason="queue_full") == codes[503]


# --- canary and shadow -----------------------------------------------------------------------------


def test_canary_splits_traffic_by_weight_and_sticks_to_a_routing_key(store: dict[str, Any]) -> None:
    cfg = ServeConfig().with_route("canary", "credit:2=30%")
    app = create_app(Client(Settings.from_env()), ["credit@production"], config=cfg, log_sample_rate=0.0)
    rows = store["rows"]
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        versions = [client.post("/models/credit/predict", json=rows).json()["version"] for _ in range(200)]
        share = versions.count(2) / len(versions)
        assert 0.15 <= share <= 0.45, share
        for key in ("user-1", "user-2", "user-3", "user-42"):
            sticky = {"X-Routing-Key": key}
            seen = {
                client.post("/models/credit/predict", json=rows, headers=sticky).json()["version"]
                for _ in range(10)
            }
            assert seen == {2 if routing_bucket(key) < 0.3 else 1}, (key, seen)
        pinned = {client.post("/models/credit:1/predict", json=rows).json()["version"] for _ in range(30)}
        assert pinned == {1}  # a request that pins a version is never rerouted
        body = _v2_credit(client, rows)
        r = client.post("/v2/models/credit/infer", json=body, headers={"X-Routing-Key": "user-42"})
        assert r.status_code == 200
        assert r.json()["model_version"] == str(2 if routing_bucket("user-42") < 0.3 else 1)
        text = client.get("/metrics").text
    assert _counter(text, "modelport_routed_requests_total", model="credit", version="2", role="canary") >= 30


def _v2_credit(client: httpx.Client, rows: dict[str, Any]) -> dict[str, Any]:
    dtypes = {i["name"]: i["datatype"] for i in client.get("/v2/models/credit").json()["inputs"]}
    records = rows["inputs"]
    inputs = [
        {"name": c, "shape": [len(records)], "datatype": t, "data": [r[c] for r in records]}
        for c, t in dtypes.items()
    ]
    return {"inputs": inputs, "parameters": {"content_type": "pd"}}


def test_shadow_is_scored_and_logged_but_never_returned(store: dict[str, Any], tmp_path: Path) -> None:
    cfg = ServeConfig().with_route("shadow", "credit:2=1.0")
    app = create_app(Client(Settings.from_env()), ["credit@production"], config=cfg, log_sample_rate=1.0)
    rows = store["rows"]
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        ids = []
        for i in range(10):
            r = client.post("/models/credit/predict", json=rows, headers={"X-Request-ID": f"shadow-test-{i}"})
            assert r.status_code == 200 and r.json()["version"] == 1
            ids.append(f"shadow-test-{i}")
    # the app has shut down: shadows drained and the log flushed
    log = mp.prediction_log("credit")
    mine = log[log["request_id"].isin(ids)]
    shadow = mine[mine["role"] == "shadow"]
    primary = mine[mine["role"] == "primary"]
    assert set(primary["version"]) == {1} and set(shadow["version"]) == {2}
    assert sorted(set(shadow["request_id"])) == sorted(ids)
    assert len(shadow) == len(primary) == 20


# --- scale down ------------------------------------------------------------------------------------


def test_idle_versions_are_unloaded_and_reloaded_on_demand(store: dict[str, Any]) -> None:
    manager = ModelManager(Client(Settings.from_env()).registry, ["credit@production"], idle_unload_s=60)
    first = manager.get("credit:1")
    assert manager.is_loaded(first.model_version)
    assert manager.housekeep() == []  # used just now
    assert manager.housekeep(now=time.monotonic() + 61) == [first.model_version]
    assert not manager.is_loaded(first.model_version)
    again = manager.get("credit:1")
    assert again is not first and manager.is_loaded(again.model_version)


def test_memory_budget_unloads_the_least_recently_used(store: dict[str, Any]) -> None:
    unloaded: list[tuple[int, str]] = []
    manager = ModelManager(
        Client(Settings.from_env()).registry,
        ["credit"],
        memory_budget_bytes=1,
        on_unload=lambda mv, why: unloaded.append((mv.version, why)),
    )
    one = manager.get("credit:1")
    assert manager.footprint(one.model_version) >= 64 * 1024  # RSS growth, at least 64 KiB
    two = manager.get("credit:2")
    assert unloaded == [(1, "memory")]
    assert not manager.is_loaded(one.model_version) and manager.is_loaded(two.model_version)


def test_idle_unload_in_a_running_server(store: dict[str, Any]) -> None:
    with BackgroundServer(_app(["credit@production"], idle_unload_s=0.3, watch_interval=0)) as srv:
        rows = store["rows"]
        assert httpx.post(f"{srv.url}/models/credit/predict", json=rows).status_code == 200
        deadline = time.monotonic() + 10
        while httpx.get(f"{srv.url}/readyz").json()["loaded"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(f"{srv.url}/readyz").json() == {"ready": True, "loaded": []}
        assert httpx.post(f"{srv.url}/models/credit/predict", json=rows).status_code == 200  # loads again
        text = _metrics(srv.url)
    assert _counter(text, "modelport_model_unloads_total", model="credit", reason="idle") >= 1


# --- serve.yaml ------------------------------------------------------------------------------------


def test_serve_yaml(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(
        """
models:
  - credit@production
  - ref: fraud@production
    batching: {max_batch_size: 128, max_wait_ms: 5}
    sla_ms: 50
    canary: {ref: "fraud:8", weight: 10%}
    shadow: {ref: fraud@challenger, share: 0.5}
port: 9000
workers: 2
max_queue: 300
idle_unload_s: 600
max_body_mb: 1
"""
    )
    cfg = ServeConfig.load(path)
    assert cfg.refs == ("credit@production", "fraud@production") and cfg.port == 9000 and cfg.workers == 2
    assert cfg.max_body_bytes == 1024 * 1024 and cfg.idle_unload_s == 600
    fraud = cfg.policy("fraud")
    assert fraud.batching and fraud.max_batch_size == 128 and fraud.max_wait_ms == 5 and fraud.sla_ms == 50
    assert fraud.max_queue == 300  # a top-level policy key is every model's default
    assert fraud.canary is not None and fraud.canary.weight == pytest.approx(0.1)
    assert fraud.shadow is not None and fraud.shadow.ref == "fraud@challenger"
    assert cfg.policy("credit").batching is False and cfg.policy("credit").max_queue == 300
    assert ServeConfig.from_dict(cfg.to_dict()) == cfg  # what worker processes receive
    assert cfg.replace(batching=True).policy("credit").batching  # a CLI flag applies to every model


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [credit]\nprot: 80\n", "Unknown serve setting(s): prot"),
        ("models: [{ref: credit, batchng: true}]\n", "Unknown setting(s) for 'credit': batchng"),
        ("models: [{ref: credit, canary: {ref: 'fraud:2', weight: 0.1}}]\n", "another version of 'credit'"),
        ("models: [{ref: credit, canary: {ref: 'credit:2', weight: 2}}]\n", "between 0 and 1"),
        ("models: [{ref: credit, sla_ms: -1}]\n", "sla_ms"),
        ("models: [credit\n", "not valid YAML"),
    ],
)
def test_serve_yaml_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=None) as err:
        ServeConfig.load(path)
    assert message in err.value.message
