"""The queue and predict slots of one model version in one worker process, and how late the event
loop runs: the state machine of the serving service (:mod:`modelport.serving.service`) that admits,
queues, coalesces, batches and times predict calls. Every answer goes to a :class:`Reply`; nothing
here awaits, so the HTTP protocol, the ASGI entry and gRPC later all share it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from modelport.errors import Overloaded
from modelport.predictor import Prediction, Predictor
from modelport.serving.calls import Decode, execute, execute_one, timed_execute
from modelport.serving.metrics import Metrics
from modelport.serving.settings import ModelPolicy

log = logging.getLogger(__name__)
_EWMA = 0.2
# A version whose predict calls take less than this runs them on the event loop: no thread hop
# (which costs more than such a call), as long as the request body is small.
INLINE_MAX_SECONDS = 0.002
INLINE_MAX_BYTES = 64 * 1024
# What a call costs is its time when nothing gets in its way: on a busy machine a call is often
# preempted, and in a thread it also waits for the GIL (up to the switch interval while the
# loop is busy). So the decision follows a low estimate of the call's time (inside the call, without
# the thread hop): it drops at once to a faster call and rises by LOW_RISE of the gap to a slower
# one, the gap capped at OUTLIER_CAP (one preempted call does not send a fast version to the
# threads; a version that became slow is there within a few calls). A model that sleeps or waits
# is slow in every call, and stays in the threads. While the estimate is under PROBE_MAX_SECONDS,
# one call every PROBE_EVERY seconds runs on the loop anyway, to measure it without the GIL wait.
LOW_RISE = 0.05
OUTLIER_CAP = 0.02
PROBE_MAX_SECONDS = 0.02
PROBE_EVERY = 1.0
# Coalescing waits one turn of the loop for requests that arrived with this one. After LONELY calls
# in a row found none (a client waiting for each answer), requests are scored at once, but for
# every LONELY-th, which still waits its turn to see whether company came back.
LONELY = 8


class Reply:
    """Where a queued request's answer goes when no coroutine waits for it (the HTTP protocol's
    fast path): ``ok(prediction)`` or ``failed(error)``, called once, on the event loop. A callback
    that raises is logged; it never stops the lane."""

    __slots__ = ("_done", "_failed", "_ok")

    def __init__(self, ok: Callable[[Prediction], None], failed: Callable[[BaseException], None]) -> None:
        self._ok, self._failed, self._done = ok, failed, False

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Prediction) -> None:
        self._done = True
        try:
            self._ok(result)
        except Exception:
            log.exception("answering a request failed")

    def set_exception(self, exc: BaseException) -> None:
        self._done = True
        try:
            self._failed(exc)
        except Exception:
            log.exception("answering a failed request failed")


@dataclass(eq=False)
class Job:
    """One request in a lane: its predictor, payload and decoder, and where its answer goes."""

    predictor: Predictor
    data: Any
    decode: Decode
    future: Reply
    enqueued: float
    inline: bool = False


class Lane:
    """The queue and predict slots of one model version in one worker process."""

    def __init__(
        self,
        name: str,
        version: int,
        policy: ModelPolicy,
        metrics: Metrics | None = None,
        *,
        on_loop: bool = True,
    ) -> None:
        self.name, self.version, self.policy = name, version, policy
        self.on_loop = on_loop  # may a fast version's calls run on the event loop? (shadows: never)
        self.slots = policy.slots
        self.pending: deque[Job] = deque()
        self.busy = 0
        self.seconds_per_call: float | None = None  # EWMA of a call's time (with its merged requests)
        self.call_seconds: float | None = None  # low estimate of a call's time (decides inline vs thread)
        self._probe_at = 0.0
        self._flush_scheduled = False
        self._lonely = 0  # inline calls in a row that had one request
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
        """Seconds a request arriving now would wait before its call starts: how late the event
        loop already runs, plus the calls ahead of it (those running, and those the queued requests
        make) times the measured seconds per call, shared by the slots that run calls at once.
        When the policy merges, queued requests make one call per ``max_batch_size`` of them: a
        queue that coalesces is short however many wait in it, and the estimate must not shed what
        one more merged call answers. A free slot, or nothing measured yet: the loop's lateness."""
        per_call = self.seconds_per_call
        queued = len(self.pending)
        merges = self.policy.merges
        if per_call is None or (
            self.busy < self.slots and (queued == 0 or (merges and queued < self.policy.max_batch_size))
        ):
            return loop_lag
        calls = (-(-queued // self.policy.max_batch_size) if merges else queued) + self.busy
        return loop_lag + calls * per_call / self.slots

    def admit(self, loop_lag: float = 0.0) -> None:
        """Raise :class:`Overloaded` when this request should be shed instead of queued.

        ``loop_lag`` (how late the event loop runs) counts only for a version scored on the loop,
        whose queue the loop's backlog is. A version scored in the thread pool waits for its slots,
        which its own queue measures; the loop's lateness there is mostly other requests' parsing
        and the 503s themselves, and shedding more because of it would only shed more (a closed-loop
        client sends its next request as soon as it has the 503)."""
        policy = self.policy
        if not self.scored_on_loop:
            loop_lag = 0.0
        if len(self.pending) >= policy.max_queue:
            self._shed("queue_full")
            raise Overloaded(
                f"Model '{self.name}' version {self.version} has {len(self.pending)} requests waiting "
                f"(the limit is {policy.max_queue}); retry later.",
                self._retry_after(),
                self.expected_wait(),
            )
        if policy.sla_ms is not None:
            wait = self.expected_wait(loop_lag)
            if wait * 1000.0 > policy.sla_ms:
                self._shed("sla")
                raise Overloaded(
                    f"Model '{self.name}' version {self.version} is at capacity: the expected wait of "
                    f"{wait * 1000:.0f} ms exceeds the {policy.sla_ms:g} ms SLA; retry later.",
                    self._retry_after(wait),
                    wait,
                )

    @property
    def scored_on_loop(self) -> bool:
        """Are this version's calls (small ones) run on the event loop?"""
        low = self.call_seconds
        return self.on_loop and low is not None and low < INLINE_MAX_SECONDS

    def _retry_after(self, wait: float | None = None) -> float:
        return max(1.0, math.ceil(self.expected_wait() if wait is None else wait))

    def _shed(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.observe_shed(self.name, reason)

    # --- queue and dispatch ------------------------------------------------------------------------

    def fast(self, size: int | None, now: float = 0.0) -> bool:
        """Run this request's call on the event loop? (a fast version and a small body)"""
        if size is None or size > INLINE_MAX_BYTES:
            return False
        low = self.call_seconds
        if low is None:
            return False
        if low < INLINE_MAX_SECONDS:
            return True
        if low < PROBE_MAX_SECONDS and now >= self._probe_at:
            self._probe_at = now + PROBE_EVERY  # probe: time one call on the loop
            return True
        return False

    def submit(self, predictor: Predictor, data: Any, decode: Decode, size: int | None, reply: Reply) -> None:
        """Score one request that passed :meth:`admit`; its prediction or error goes to ``reply``.

        A small request to a fast version is scored on the event loop: at once when nothing waits
        and the policy does not merge (or the client is alone, see LONELY), else once this turn's
        arrivals are queued too, merged with them when the policy merges. Anything else waits for a
        slot and is scored in the thread pool, merged with what waits when the policy merges (and
        held back for company with batching)."""
        now = asyncio.get_running_loop().time()
        self._arrived(now)
        inline = self.on_loop and self.fast(size, now)
        if inline and not self.pending and not self.busy and (not self.policy.merges or self._lone_call()):
            try:
                result = self._call_inline(predictor, data, decode)
            except Exception as exc:  # noqa: BLE001 - this request's own error, answered by the codec
                reply.set_exception(exc)
            else:
                reply.set_result(result)
            return
        self.pending.append(Job(predictor, data, decode, reply, now, inline))
        self._pump()

    def _lone_call(self) -> bool:
        """Merging, but score this request at once? (see LONELY)"""
        n = self._lonely
        if n < LONELY or n % LONELY == 0:
            return False  # (its flush counts it)
        self._lonely = n + 1
        return True

    def _arrived(self, now: float) -> None:
        if self._last_arrival:
            gap = now - self._last_arrival
            self.arrival_gap = (
                gap if self.arrival_gap is None else (1 - _EWMA) * self.arrival_gap + _EWMA * gap
            )
        self._last_arrival = now
        self.company = (1 - _EWMA) * self.company + _EWMA * (len(self.pending) + self.running)

    def _call_inline(self, predictor: Predictor, data: Any, decode: Decode) -> Prediction:
        started = time.perf_counter()
        try:
            return execute_one(predictor, data, decode, self._metrics)
        finally:
            self._measured(time.perf_counter() - started)

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
            self._lonely = self._lonely + 1 if len(jobs) == 1 else 0
            self._settle(jobs, self._run_inline(jobs))
        self._pump()

    def _run_inline(self, jobs: list[Job]) -> list[Prediction | BaseException]:
        started = time.perf_counter()
        results = execute(jobs, self.policy.max_batch_size, self._metrics)
        self._measured(time.perf_counter() - started)
        return results

    def _measured(self, seconds: float) -> None:
        call = self.seconds_per_call
        self.seconds_per_call = seconds if call is None else (1 - _EWMA) * call + _EWMA * seconds
        low = self.call_seconds
        if low is None or seconds < low:
            self.call_seconds = seconds
        else:
            self.call_seconds = low + LOW_RISE * min(seconds - low, OUTLIER_CAP)

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

    def _take(self) -> list[Job]:
        """The next call's requests: one, or when merging up to max_batch_size of one predictor."""
        first = self.pending.popleft()
        jobs = [first]
        if self.policy.merges:
            while (
                self.pending
                and len(jobs) < self.policy.max_batch_size
                and self.pending[0].predictor is first.predictor
                and self.pending[0].inline == first.inline
            ):
                jobs.append(self.pending.popleft())
        return jobs

    async def _run(self, jobs: list[Job]) -> None:
        started = time.perf_counter()
        try:
            # timed in the thread: the hop and the wait for the loop are not the call's cost
            results, seconds = await run_in_threadpool(
                timed_execute, jobs, self.policy.max_batch_size, self._metrics
            )
        except BaseException as exc:  # noqa: BLE001 - e.g. cancelled at shutdown: fail these, not the lane
            results, seconds = [exc] * len(jobs), time.perf_counter() - started
        finally:
            self.busy -= 1
            self.running -= len(jobs)
        self._measured(seconds)
        self._settle(jobs, results)
        self._pump()

    @staticmethod
    def _settle(jobs: list[Job], results: list[Prediction | BaseException]) -> None:
        for job, result in zip(jobs, results, strict=True):
            if job.future.done():  # the client went away
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)


class LoopLag:
    """How late the event loop runs now: the time since a tick, scheduled every ``every`` seconds,
    became due (0 while it is not due). A request handled in a long turn of the loop sees how long
    the turn has run so far; a burst is admitted until its turn has used the SLA and the rest is shed,
    so that a turn never runs much past the SLA and a server in overload still answers at about its
    capacity (a lateness that decayed over ticks instead shed whole turns after a long one).
    :attr:`seconds` keeps the last tick's lateness, for reports."""

    def __init__(self, every: float = 0.01) -> None:
        self.every = every
        self.seconds = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._due = math.inf  # time.monotonic() when the next tick is due

    def ensure_started(self) -> None:
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._schedule(loop, loop.time())

    def current(self) -> float:
        """Seconds the next tick is overdue now (0 when it is not due yet)."""
        late = time.monotonic() - self._due
        return late if late > 0.0 else 0.0

    def _schedule(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        due = now + self.every
        self._due = time.monotonic() + self.every
        self._handle = loop.call_at(due, self._tick, loop, due)

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = loop.time()
        self.seconds = max(0.0, now - due)
        self._schedule(loop, now)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._due = math.inf
