"""The lane state machine (serving.lanes) and the one serving path (serving.service), in process:
no sockets. Every wait is on the event loop's own turns or on a reply, never a sleep."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.errors import Overloaded
from modelport.predictor import Predictor
from modelport.serving import create_app
from modelport.serving.lanes import INLINE_MAX_SECONDS, Lane, Reply
from modelport.serving.settings import ModelPolicy
from tests.integration.slow_model import SlowDoubler, frame


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mpatch:
        path = str(tmp_path_factory.mktemp("lanes") / "mphome")
        mpatch.setenv("MODELPORT_HOME", path)
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        mp.register(SlowDoubler(0.0).fit(frame()), "fast", sample=frame())
        mp.register(SlowDoubler(0.02).fit(frame()), "slow", sample=frame())
        yield path


class Calls:
    """A predictor whose predict calls are counted (rows of each call)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.rows: list[int] = []
        self.threads: list[str] = []
        original = predictor.predict_with_proba

        def counted(batch: Any) -> Any:
            self.rows.append(batch.n_rows)
            self.threads.append(threading.current_thread().name)
            return original(batch)

        predictor.predict_with_proba = counted  # type: ignore[method-assign]


def _submit(lane: Lane, predictor: Predictor, x: Any, answers: list[Any], size: int | None = 20) -> Reply:
    reply = Reply(answers.append, answers.append)
    lane.admit()
    lane.submit(predictor, [{"x": x}], None, size, reply)
    return reply


def test_requests_of_one_turn_are_coalesced_into_one_call_each_answered_its_own(home: str) -> None:
    calls = Calls(mp.load("fast"))

    async def scenario() -> list[Any]:
        lane = Lane("fast", 1, ModelPolicy())  # coalescing, the default
        lane._measured(0.0001)  # a fast version: scored on the event loop
        answers: list[Any] = []
        replies = [_submit(lane, calls.predictor, float(i), answers) for i in range(10)]
        assert not any(r.done() for r in replies)  # they wait for this turn's other arrivals
        await asyncio.sleep(0)
        assert all(r.done() for r in replies)
        return answers

    answers = asyncio.run(scenario())
    assert calls.rows == [10]  # one call for the ten
    assert [a.predictions.tolist() for a in answers] == [[2.0 * i] for i in range(10)]
    assert calls.threads == [threading.main_thread().name]  # on the event loop, no thread hop


def test_without_coalescing_each_request_is_its_own_call(home: str) -> None:
    calls = Calls(mp.load("fast"))

    async def scenario() -> None:
        lane = Lane("fast", 1, ModelPolicy(coalesce=False))
        lane._measured(0.0001)
        answers: list[Any] = []
        replies = [_submit(lane, calls.predictor, float(i), answers) for i in range(4)]
        assert all(r.done() for r in replies)  # at once: nothing to wait for

    asyncio.run(scenario())
    assert calls.rows == [1, 1, 1, 1]


def test_a_slow_version_is_scored_in_the_thread_pool_and_merges_what_waits(home: str) -> None:
    calls = Calls(mp.load("slow"))

    async def scenario() -> list[Any]:
        lane = Lane("slow", 1, ModelPolicy(concurrency=1))
        lane._measured(0.02)  # slower than INLINE_MAX_SECONDS: never on the loop
        assert lane.call_seconds is not None and lane.call_seconds > INLINE_MAX_SECONDS
        answers: list[Any] = []
        done = asyncio.Event()
        replies = []
        for i in range(5):
            reply = Reply(lambda r: (answers.append(r), done.set()), answers.append)
            lane.admit()
            lane.submit(calls.predictor, [{"x": float(i)}], None, 20, reply)
            replies.append(reply)
        while not all(r.done() for r in replies):
            done.clear()
            await asyncio.wait_for(done.wait(), 30)
        return answers

    answers = asyncio.run(scenario())
    assert calls.rows == [1, 4]  # the first took the slot; the four that waited went in one call
    assert all(t != threading.main_thread().name for t in calls.threads)
    assert sorted(a.predictions[0] for a in answers) == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_a_bad_request_in_a_merged_call_fails_alone(home: str) -> None:
    calls = Calls(mp.load("fast"))

    async def scenario() -> list[Any]:
        lane = Lane("fast", 1, ModelPolicy())
        lane._measured(0.0001)
        answers: list[Any] = []
        _submit(lane, calls.predictor, 1.0, answers)
        _submit(lane, calls.predictor, "not a number", answers)
        _submit(lane, calls.predictor, 3.0, answers)
        await asyncio.sleep(0)
        return answers

    answers = asyncio.run(scenario())
    assert [type(a).__name__ for a in answers] == ["Prediction", "SchemaMismatch", "Prediction"]
    assert [a.predictions.tolist() for a in answers if not isinstance(a, Exception)] == [[2.0], [6.0]]


def test_admission_sheds_on_a_full_queue_and_on_the_expected_wait(home: str) -> None:
    predictor = mp.load("slow")

    async def scenario() -> None:
        lane = Lane("slow", 1, ModelPolicy(max_queue=2, concurrency=1))
        lane._measured(0.05)
        answers: list[Any] = []
        for i in range(3):  # one running, two queued
            _submit(lane, predictor, float(i), answers)
        with pytest.raises(Overloaded, match="limit is 2"):
            lane.admit()
        sla = Lane("slow", 1, ModelPolicy(sla_ms=120, concurrency=1, coalesce=False))
        sla._measured(0.05)
        sla.admit()  # a free slot: admitted
        _submit(sla, predictor, 0.0, answers)  # running
        _submit(sla, predictor, 1.0, answers)  # waits for the running call: 50 ms
        _submit(sla, predictor, 2.0, answers)  # and for the queued one: 100 ms
        assert sla.expected_wait() == pytest.approx(0.15)
        with pytest.raises(Overloaded, match="SLA") as shed:
            sla.admit()
        assert shed.value.retry_after >= 1
        # a lane that coalesces: the queue makes one call per max_batch_size requests
        merging = Lane("slow", 1, ModelPolicy(sla_ms=120, concurrency=1, max_batch_size=64))
        merging._measured(0.05)
        for i in range(40):  # one running, 39 queued: one merged call after it
            _submit(merging, predictor, float(i), answers)
        assert merging.expected_wait() == pytest.approx(0.10)
        merging.admit()  # still within the SLA
        # how late the event loop already runs counts for a version scored on the loop ...
        on_loop = Lane("fast", 1, ModelPolicy(sla_ms=10))
        on_loop._measured(0.0001)
        with pytest.raises(Overloaded):
            on_loop.admit(loop_lag=0.02)
        # ... not for one scored in the thread pool, whose own queue says how long it waits
        in_threads = Lane("slow", 1, ModelPolicy(sla_ms=10))
        in_threads._measured(0.05)
        in_threads.admit(loop_lag=0.02)

    asyncio.run(scenario())


def test_every_protocol_goes_through_the_one_service_in_process(home: str) -> None:
    """The ASGI entry (no sockets): native, v2 per column, v2 one [N, F] tensor and /invocations
    reach the same lane; their answers agree."""
    app = create_app(Client(Settings.from_env()), ["fast"], log_sample_rate=0.0, watch_interval=0)

    async def scenario() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers = [
                await client.post("/models/fast/predict", json={"inputs": [{"x": 2.0}, {"x": 3.0}]}),
                await client.post(
                    "/v2/models/fast/infer",
                    json={"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [2.0, 3.0]}]},
                ),
                await client.post(
                    "/v2/models/fast/infer",
                    json={"inputs": [{"name": "input", "shape": [2, 1], "datatype": "FP64", "data": [2, 3]}]},
                ),
                await client.post("/invocations", json={"dataframe_records": [{"x": 2.0}, {"x": 3.0}]}),
                await client.get("/v2/models/fast"),
            ]
            return answers

    native, v2_cols, v2_tensor, mlflow, meta = asyncio.run(_with_lifespan(app, scenario))
    assert native.json()["predictions"] == [4.0, 6.0]
    assert v2_cols.json()["outputs"][0]["data"] == [4.0, 6.0]
    assert v2_tensor.json()["outputs"][0]["data"] == [4.0, 6.0]
    assert mlflow.json()["predictions"] == [4.0, 6.0]
    assert meta.json()["parameters"]["tensor_input"] == {
        "name": "input",
        "datatype": "FP64",
        "shape": [-1, 1],
        "columns": ["x"],
    }
    lanes = app.state.service.lanes()
    assert len(lanes) == 1  # one version, one lane, whatever the protocol


async def _with_lifespan(app: Any, scenario: Any) -> Any:
    """Run ``scenario`` inside the app's lifespan (startup: eager load; shutdown: drain)."""
    started, stop = asyncio.Event(), asyncio.Event()
    messages = asyncio.Queue[Any]()
    await messages.put({"type": "lifespan.startup"})

    async def receive() -> Any:
        message = await messages.get()
        return message

    async def send(message: Any) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"].startswith("lifespan.startup.failed"):
            raise RuntimeError(message)
        elif message["type"] == "lifespan.shutdown.complete":
            stop.set()

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    )
    await asyncio.wait_for(started.wait(), 60)
    try:
        return await scenario()
    finally:
        await messages.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(stop.wait(), 60)
        await task


def test_the_loops_lateness_is_how_overdue_its_tick_is_now_not_an_average() -> None:
    """A long turn makes the requests handled late in it see the delay; once the loop has caught up,
    the next requests see none (a decaying average would shed them too)."""
    import time

    from modelport.serving.lanes import LoopLag

    async def scenario() -> tuple[float, float]:
        lag = LoopLag(every=0.01)
        lag.ensure_started()
        await asyncio.sleep(0)
        time.sleep(0.05)  # a long turn of the loop: the tick is overdue by ~40 ms now
        during = lag.current()
        for _ in range(100):  # let the tick run (a few turns), then look again
            await asyncio.sleep(0.001)
            if lag.seconds > 0:
                break
        after = lag.current()
        lag.stop()
        return during, after

    during, after = asyncio.run(scenario())
    assert during >= 0.035
    assert after < during
