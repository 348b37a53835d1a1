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
import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from modelport.errors import Overloaded
from modelport.predictor import Predictor
from modelport.refs import ModelRef
from modelport.serving.lanes import Decode, Lane, LoopLag, Reply
from modelport.serving.manager import ModelManager, Prediction
from modelport.serving.metrics import Metrics
from modelport.serving.settings import ModelPolicy, ServeConfig

log = logging.getLogger(__name__)
__all__ = ["SHADOW_POLICY", "Decode", "Dispatcher", "Lane", "LoopLag", "routing_bucket"]

SHADOW_POLICY = ModelPolicy(max_queue=64, concurrency=1)


def routing_bucket(key: str) -> float:
    """A stable number in [0, 1) for a routing key: the same key always takes the same version."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


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
        r, role, policy, served = self._route(ref, routing_key)
        predictor = await self._predictor(r)
        if policy.sla_ms is not None:
            self.loop_lag.ensure_started()
        lane = self.lane(predictor, policy)
        result = await lane.submit(predictor, data, decode, size, self.loop_lag.seconds)
        return self._routed(result, role, policy, served, data, decode, on_shadow)

    def predict_soon(
        self,
        ref: str | ModelRef,
        data: Any,
        decode: Decode,
        routing_key: str | None,
        on_shadow: Callable[[Prediction], None] | None,
        size: int | None,
        ok: Callable[[Prediction], None],
        failed: Callable[[BaseException], None],
    ) -> bool:
        """:meth:`predict` without a coroutine, for a request its version scores on the event loop:
        queued (merged with this turn's other arrivals where the policy merges), its prediction
        given to ``ok`` or its error to ``failed``; False when it must take :meth:`predict`."""
        r, role, policy, served = self._route(ref, routing_key)
        predictor = self.manager.get_nowait(r)
        if predictor is None:
            return False
        if policy.sla_ms is not None:
            self.loop_lag.ensure_started()

        def routed(result: Prediction) -> None:
            ok(self._routed(result, role, policy, served, data, decode, on_shadow))

        reply = Reply(routed, failed)
        return self.lane(predictor, policy).submit_soon(
            predictor, data, decode, size, self.loop_lag.current(), reply
        )

    def _route(self, ref: str | ModelRef, routing_key: str | None) -> tuple[ModelRef, str, ModelPolicy, bool]:
        """The version that answers (the canary's by its weight), its role, the name's policy, and
        whether the request is for a served ref (only those are split and mirrored)."""
        r = self.manager.ref_for(ref)
        policy = self.config.policy(r.name)
        served = r in self.manager.refs or not self.manager.refs
        if served and policy.canary is not None and policy.canary.weight > 0:
            draw = random.random() if routing_key is None else routing_bucket(routing_key)
            if draw < policy.canary.weight:
                return ModelRef.parse(policy.canary.ref), "canary", policy, served
        return r, "primary", policy, served

    def _routed(
        self,
        result: Prediction,
        role: str,
        policy: ModelPolicy,
        served: bool,
        data: Any,
        decode: Decode,
        on_shadow: Callable[[Prediction], None] | None,
    ) -> Prediction:
        if role != "primary":
            result = replace(result, role=role)
        shadow = policy.shadow
        if served and shadow is not None and shadow.share > 0 and random.random() < shadow.share:
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
