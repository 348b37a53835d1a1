"""From a request to a predict call: traffic policies, a bounded queue per model version, load
shedding at the SLA, and adaptive micro-batching.

Every protocol's request goes through :meth:`Dispatcher.predict`:

1. **Route**: a request for a served model (not one pinning ``name:V``) goes to the canary
   version with the policy's weight — by a stable hash of ``X-Routing-Key`` when the client
   sends one (sticky), else at random — and otherwise to the primary version.
2. **Admit**: the version's :class:`Lane` answers 503 at once (``Overloaded``, with
   ``Retry-After``) when its queue is full or the expected wait (queue depth × the measured
   seconds per request ÷ slots) would exceed the SLA, instead of letting the client time out.
3. **Run**: at most ``slots`` predict calls per version run at once in the thread pool. With
   batching, a free slot takes every waiting request (up to ``max_batch_size`` rows) and scores
   them in one call; it holds a lone request back for company only while requests arrive faster
   than ``max_wait_ms`` apart and usually find others queued or running (never for a client that
   sends one request at a time), and never longer than ``max_wait_ms``. Decoding and validation happen per
   request in the same thread hop, so one bad request fails alone.
4. **Shadow**: a share of the served model's requests is mirrored to the shadow version after the
   caller's answer is ready; its outputs go to the prediction log (role ``shadow``), never to the
   caller. A full shadow queue drops the mirror (counted), so the shadow never slows the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from modelport.errors import ModelportError, Overloaded
from modelport.predictor import Predictor
from modelport.refs import ModelRef
from modelport.schema import Batch, Signature
from modelport.serving.manager import ModelManager, Prediction, decode_batch, score
from modelport.serving.metrics import Metrics
from modelport.serving.settings import ModelPolicy, ServeConfig

log = logging.getLogger(__name__)
Decode = Callable[[Any, Signature], Any] | None
_EWMA = 0.2
# A version whose predict calls take less than this runs them on the event loop: no thread hop
# (which costs more than such a call), as long as the request body is small.
INLINE_MAX_SECONDS = 0.002
INLINE_MAX_BYTES = 32 * 1024
SHADOW_POLICY = ModelPolicy(max_queue=64, concurrency=1)


@dataclass(eq=False)
class _Job:
    predictor: Predictor
    data: Any
    decode: Decode
    future: asyncio.Future[Prediction]
    enqueued: float
    inline: bool = False


class Lane:
    """The queue and predict slots of one model version in one worker process."""

    def __init__(self, name: str, version: int, policy: ModelPolicy, metrics: Metrics | None = None) -> None:
        self.name, self.version, self.policy = name, version, policy
        self.slots = policy.slots
        self.pending: deque[_Job] = deque()
        self.busy = 0
        self.seconds_per_request: float | None = None  # EWMA of a call's time / its requests
        self.call_seconds: float | None = None  # EWMA of a call's time (decides inline vs thread)
        self._flush_scheduled = False
        self.arrival_gap: float | None = None  # EWMA of the time between requests
        self.company = 0.0  # EWMA of how many other requests a new one finds queued or running
        self.running = 0  # requests in calls now
        self._last_arrival = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._metrics = metrics
        self._depth = metrics.queue_depth.labels(name, str(version)) if metrics else None

    # --- admission ---------------------------------------------------------------------------------

    def expected_wait(self, loop_lag: float = 0.0) -> float:
        """Seconds a request arriving now would wait: for a slot, or for the busy event loop."""
        if self.busy < self.slots or self.seconds_per_request is None:
            return loop_lag
        return max(loop_lag, (len(self.pending) + 1) * self.seconds_per_request / self.slots)

    def admit(self, loop_lag: float = 0.0) -> None:
        """Raise :class:`Overloaded` when this request should be shed instead of queued."""
        policy = self.policy
        if len(self.pending) >= policy.max_queue:
            self._shed("queue_full")
            raise Overloaded(
                f"Model '{self.name}' version {self.version} has {len(self.pending)} requests waiting "
                f"(the limit is {policy.max_queue}); retry later.",
                self._retry_after(),
            )
        if policy.sla_ms is not None:
            wait = self.expected_wait(loop_lag)
            if wait * 1000.0 > policy.sla_ms:
                self._shed("sla")
                raise Overloaded(
                    f"Model '{self.name}' version {self.version} is at capacity: the expected wait of "
                    f"{wait * 1000:.0f} ms exceeds the {policy.sla_ms:g} ms SLA; retry later.",
                    self._retry_after(wait),
                )

    def _retry_after(self, wait: float | None = None) -> float:
        return max(1.0, math.ceil(self.expected_wait() if wait is None else wait))

    def _shed(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.shed.labels(self.name, reason).inc()

    # --- queue and dispatch ------------------------------------------------------------------------

    def fast(self, size: int | None) -> bool:
        """Run this request's call on the event loop? (a fast version and a small body)"""
        return (
            self.call_seconds is not None
            and self.call_seconds < INLINE_MAX_SECONDS
            and size is not None
            and size <= INLINE_MAX_BYTES
        )

    async def submit(
        self, predictor: Predictor, data: Any, decode: Decode, size: int | None = None, loop_lag: float = 0.0
    ) -> Prediction:
        """Queue one request (after :meth:`admit`) and wait for its prediction.

        ``size`` is the request body's size in bytes (None: unknown); small requests to a fast
        version are scored on the event loop, without the thread hop.
        """
        self.admit(loop_lag)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._last_arrival:
            gap = now - self._last_arrival
            self.arrival_gap = (
                gap if self.arrival_gap is None else (1 - _EWMA) * self.arrival_gap + _EWMA * gap
            )
        self._last_arrival = now
        pending = self.pending
        self.company = (1 - _EWMA) * self.company + _EWMA * (len(pending) + self.running)
        inline = self.fast(size)
        if inline and not pending and not self.busy and not self.policy.batching:
            # the fast path: no queue, no thread, no future, no job
            started = time.perf_counter()
            try:
                return _execute_one(predictor, data, decode, self._metrics)
            finally:
                self._measured(time.perf_counter() - started, 1)
        job = _Job(predictor, data, decode, loop.create_future(), now, inline)
        pending.append(job)
        self._pump()
        return await job.future

    def _pump(self, force: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if self.policy.sla_ms is not None and self.pending:
            self._expire(loop.time())
        while self.pending and self.busy < self.slots:
            inline = self.pending[0].inline
            # a slow version's calls wait (max_wait) for company; a fast one's merge what arrived in
            # the same turn of the loop and never wait: holding would only idle the loop
            if self.policy.batching and not force and not inline and self._hold(loop):
                break
            if inline:
                # score what waits now together on the loop, once the requests that arrived with
                # this one have been queued too (call_soon runs after them)
                if not self._flush_scheduled:
                    self._flush_scheduled = True
                    loop.call_soon(self._flush_inline)
                break
            jobs = self._take()
            self.busy += 1
            self.running += len(jobs)
            task = loop.create_task(self._run(jobs))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._depth is not None:
            self._depth.set(len(self.pending))

    def _expire(self, now: float) -> None:
        """Answer 503 to queued requests that already waited past the SLA (the estimate at
        admission was too hopeful): their answer would come late, and they hold up the rest."""
        limit = (self.policy.sla_ms or 0.0) / 1000.0
        while self.pending and now - self.pending[0].enqueued > limit:
            job = self.pending.popleft()
            self._shed("sla_late")
            if not job.future.done():
                job.future.set_exception(
                    Overloaded(
                        f"Model '{self.name}' version {self.version} could not start this request within "
                        f"the {self.policy.sla_ms:g} ms SLA; retry later.",
                        self._retry_after(),
                    )
                )

    def _flush_inline(self) -> None:
        self._flush_scheduled = False
        while self.pending and self.pending[0].inline and self.busy < self.slots:
            jobs = self._take()
            self._settle(jobs, self._run_inline(jobs))
        self._pump()

    def _run_inline(self, jobs: list[_Job]) -> list[Prediction | BaseException]:
        started = time.perf_counter()
        results = _execute(jobs, self.policy.max_batch_size, self._metrics)
        self._measured(time.perf_counter() - started, len(jobs))
        return results

    def _measured(self, seconds: float, requests: int) -> None:
        per_request = seconds / requests
        prev = self.seconds_per_request
        self.seconds_per_request = per_request if prev is None else (1 - _EWMA) * prev + _EWMA * per_request
        prev = self.call_seconds
        self.call_seconds = seconds if prev is None else (1 - _EWMA) * prev + _EWMA * seconds

    def _hold(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Hold the waiting requests back for company? (batching only; never past max_wait)."""
        wait = self.policy.max_wait_ms / 1000.0
        if wait <= 0 or len(self.pending) >= self.policy.max_batch_size:
            return False
        if self.arrival_gap is None or self.arrival_gap >= wait or self.company < 0.5:
            # requests arrive too sparsely, or one at a time (a client waiting for each answer):
            # holding this one back would only add latency
            return False
        deadline = self.pending[0].enqueued + wait
        if loop.time() >= deadline:
            return False
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._on_timer)
        return True

    def _on_timer(self) -> None:
        self._timer = None
        self._pump(force=True)  # the oldest request waited max_wait: dispatch it now

    def _take(self) -> list[_Job]:
        """The next call's requests: one, or with batching up to max_batch_size of one predictor."""
        first = self.pending.popleft()
        jobs = [first]
        if self.policy.batching:
            while (
                self.pending
                and len(jobs) < self.policy.max_batch_size
                and self.pending[0].predictor is first.predictor
                and self.pending[0].inline == first.inline
            ):
                jobs.append(self.pending.popleft())
        return jobs

    async def _run(self, jobs: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            results = await run_in_threadpool(_execute, jobs, self.policy.max_batch_size, self._metrics)
        except BaseException as exc:  # noqa: BLE001 - e.g. cancelled at shutdown: fail these, not the lane
            results = [exc] * len(jobs)
        finally:
            self.busy -= 1
            self.running -= len(jobs)
        self._measured(time.perf_counter() - started, len(jobs))
        self._settle(jobs, results)
        self._pump()

    @staticmethod
    def _settle(jobs: list[_Job], results: list[Prediction | BaseException]) -> None:
        for job, result in zip(jobs, results, strict=True):
            if job.future.done():  # the client went away
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)


def _execute(jobs: list[_Job], max_rows: int, metrics: Metrics | None) -> list[Prediction | BaseException]:
    """In a worker thread: decode and validate each request, score them in as few calls as allowed."""
    out: list[Prediction | BaseException | None] = [None] * len(jobs)
    ready: list[tuple[int, Batch]] = []
    for i, job in enumerate(jobs):
        try:
            ready.append((i, decode_batch(job.predictor, job.data, job.decode)))
        except Exception as exc:  # noqa: BLE001 - this request's own 4xx
            out[i] = exc
    group: list[tuple[int, Batch]] = []
    rows = 0
    for item in ready:
        if group and rows + item[1].n_rows > max_rows:
            _score_group(jobs, group, out, metrics)
            group, rows = [], 0
        group.append(item)
        rows += item[1].n_rows
    if group:
        _score_group(jobs, group, out, metrics)
    return [r if r is not None else RuntimeError("request was not scored") for r in out]


def _execute_one(predictor: Predictor, data: Any, decode: Decode, metrics: Metrics | None) -> Prediction:
    """:func:`_execute` for one request on its own: the same steps, raising its error."""
    batch = decode_batch(predictor, data, decode)
    labels, proba = score(predictor, batch)
    mv = predictor.model_version
    if metrics is not None:
        metrics.observe_call(mv, batch.n_rows, 1)
    return Prediction(
        mv, labels, proba, predictor.classes, batch.n_rows, batch=batch, runtime=predictor.runtime
    )


def _score_group(
    jobs: list[_Job],
    group: list[tuple[int, Batch]],
    out: list[Prediction | BaseException | None],
    metrics: Metrics | None,
) -> None:
    predictor = jobs[group[0][0]].predictor
    mv = predictor.model_version
    merged = Batch.concat([b for _, b in group])
    try:
        labels, proba = score(predictor, merged)
    except Exception as exc:  # noqa: BLE001
        if len(group) > 1 and isinstance(exc, ModelportError):  # find the request the model refused
            for item in group:
                _score_group(jobs, [item], out, metrics)
        else:
            for i, _ in group:
                out[i] = exc
        return
    if metrics is not None:
        metrics.observe_call(mv, merged.n_rows, len(group))
    start = 0
    for i, batch in group:
        stop = start + batch.n_rows
        out[i] = Prediction(
            mv,
            labels[start:stop],
            None if proba is None else proba[start:stop],
            predictor.classes,
            batch.n_rows,
            batch=batch,
            runtime=predictor.runtime,
        )
        start = stop


def routing_bucket(key: str) -> float:
    """A stable number in [0, 1) for a routing key: the same key always takes the same version."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class LoopLag:
    """How late the event loop runs callbacks: the wait a new request meets before any handler.

    Measured every ``every`` seconds; rises at once, decays over a few ticks.
    """

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.seconds = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def ensure_started(self) -> None:
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._schedule(loop, loop.time())

    def _schedule(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        due = now + self.every
        self._handle = loop.call_at(due, self._tick, loop, due)

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = loop.time()
        lag = max(0.0, now - due)
        self.seconds = lag if lag > self.seconds else 0.7 * self.seconds + 0.3 * lag
        self._schedule(loop, now)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Dispatcher:
    """Routes, queues, batches and mirrors requests for every model of one app."""

    def __init__(
        self,
        manager: ModelManager,
        config: ServeConfig,
        metrics: Metrics | None = None,
    ) -> None:
        self.manager = manager
        self.config = config
        self.metrics = metrics
        self._lanes: dict[tuple[str, int, bool], Lane] = {}
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self.loop_lag = LoopLag()

    def lane(self, predictor: Predictor, policy: ModelPolicy, shadow: bool = False) -> Lane:
        mv = predictor.model_version
        key = (mv.name, mv.version, shadow)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(mv.name, mv.version, policy, None if shadow else self.metrics)
        return lane

    async def _predictor(self, ref: ModelRef) -> Predictor:
        predictor = self.manager.get_nowait(ref)
        if predictor is None:  # resolve and maybe load: registry I/O, off the event loop
            predictor = await run_in_threadpool(self.manager.get, ref)
        return predictor

    async def predict(
        self,
        ref: str | ModelRef,
        data: Any,
        decode: Decode = None,
        routing_key: str | None = None,
        on_shadow: Callable[[Prediction], None] | None = None,
        size: int | None = None,
    ) -> Prediction:
        """Route, admit, queue and score one request; mirror it to the shadow when configured.

        ``on_shadow`` receives the shadow's prediction (role ``shadow``), after the caller's answer.
        """
        r = self.manager.ref_for(ref)
        policy = self.config.policy(r.name)
        role = "primary"
        served_request = r in self.manager.refs or not self.manager.refs
        if served_request and policy.canary is not None and policy.canary.weight > 0:
            draw = random.random() if routing_key is None else routing_bucket(routing_key)
            if draw < policy.canary.weight:
                r, role = ModelRef.parse(policy.canary.ref), "canary"
        predictor = await self._predictor(r)
        if policy.sla_ms is not None:
            self.loop_lag.ensure_started()
        lane = self.lane(predictor, policy)
        result = await lane.submit(predictor, data, decode, size, self.loop_lag.seconds)
        if role != "primary":
            result = replace(result, role=role)
        shadow = policy.shadow
        if served_request and shadow is not None and shadow.share > 0 and random.random() < shadow.share:
            mirror = self._mirror(ModelRef.parse(shadow.ref), data, decode, on_shadow)
            task = asyncio.get_running_loop().create_task(mirror)
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)
        return result

    async def _mirror(
        self,
        ref: ModelRef,
        data: Any,
        decode: Decode,
        on_shadow: Callable[[Prediction], None] | None,
    ) -> None:
        """Score a copy of a request on the shadow version; log it; never raise."""
        name, version = ref.name, "unknown"
        try:
            predictor = await self._predictor(ref)
            version = str(predictor.model_version.version)
            lane = self.lane(predictor, SHADOW_POLICY, shadow=True)
            result = await lane.submit(predictor, data, decode)  # in the thread pool, never inline
        except Overloaded:
            self._count_shadow(name, version, "dropped")
            return
        except Exception as exc:  # noqa: BLE001 - a shadow failure is counted, never seen by callers
            log.debug("shadow %s failed: %s", ref, exc)
            self._count_shadow(name, version, "failed")
            return
        self._count_shadow(name, version, "scored")
        if on_shadow is not None:
            on_shadow(replace(result, role="shadow"))

    def _count_shadow(self, name: str, version: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.shadow.labels(name, version, result).inc()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait (up to ``timeout``) for queued and running calls, shadows included."""
        self.loop_lag.stop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = any(lane.pending or lane.busy for lane in self._lanes.values()) or self._shadow_tasks
            if not busy:
                return
            await asyncio.sleep(0.01)
