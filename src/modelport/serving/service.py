"""The one serving path: every prediction request of every protocol, from whichever transport,
goes through :meth:`Service.handle`.

1. **Target**: the codec names the model reference (from the path, or ``?model=``); a request for a
   served model (not one pinning ``name:V``) goes to the canary version with the policy's weight
   (by a stable hash of ``X-Routing-Key`` when the client sends one, else at random), otherwise to
   the primary version.
2. **Admit**, before the body is parsed (the cheapest 503 there is): the version's :class:`Lane`
   sheds with 503 + ``Retry-After`` when its queue is full or the expected wait (how late the event
   loop runs now, plus the requests ahead times the measured seconds per request) exceeds the SLA.
3. **Parse** with the codec; **score** in the lane: on the event loop for a fast version and a small
   body, else in the thread pool; coalesced with the requests waiting for the same version, and with
   ``batching`` held back for company (see :mod:`.lanes`). Decoding and validation are per request,
   so one bad request fails alone.
4. **Answer** with the codec; then count it (metrics) and queue it for the prediction log.
5. **Shadow**: a share of the served model's requests is mirrored to the shadow version after the
   caller's answer; its outputs go to the prediction log (role ``shadow``), never to the caller.

Errors anywhere become the codec's error answer through :func:`error_answer`, the one error mapper.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from modelport.errors import ModelNotFound, ModelportError, Overloaded, SchemaMismatch
from modelport.predictor import Prediction, Predictor
from modelport.predlog.writer import PredictionLogger
from modelport.refs import ModelRef
from modelport.serving.codecs import Answer, Codec, Incoming, Parsed
from modelport.serving.lanes import Lane, LoopLag, Reply
from modelport.serving.manager import ModelManager
from modelport.serving.metrics import Metrics
from modelport.serving.settings import ModelPolicy, ServeConfig
from modelport.serving.wire import client_request_id, new_request_id, safe_message

log = logging.getLogger(__name__)

SHADOW_POLICY = ModelPolicy(max_queue=64, concurrency=1)
# Versions are stored as 64-bit integers; a larger one cannot exist (and SQLite cannot even be asked).
MAX_VERSION = 2**63 - 1
_REF_CACHE_SIZE = 1024
SHED_PAUSE_MIN, SHED_PAUSE_MAX = 0.005, 1.0  # seconds
Respond = Callable[[Answer], None]


def routing_bucket(key: str) -> float:
    """A stable number in [0, 1) for a routing key: the same key always takes the same version."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(slots=True)
class _Call:
    """One request on its way through the service."""

    codec: Codec
    incoming: Incoming
    respond: Respond
    started: float
    client_rid: str | None
    name: str | None = None  # the served model's name, once known (for error metrics)
    version: str | None = None
    parsed: Parsed | None = None
    request_id: str = ""
    role: str = "primary"
    policy: ModelPolicy | None = None
    served: bool = False


class Service:
    """The serving service of one app: routing, lanes, predict, answers, metrics and the log."""

    def __init__(
        self,
        manager: ModelManager,
        config: ServeConfig,
        metrics: Metrics,
        prediction_log: PredictionLogger | None = None,
    ) -> None:
        self.manager = manager
        self.config = config  # replaced whole by the route follower (stored canaries and shadows)
        self.metrics = metrics
        self.prediction_log = prediction_log
        self.max_body_bytes = config.max_body_bytes
        self.loop_lag = LoopLag()
        self._lanes: dict[tuple[str, int, bool], Lane] = {}
        self._refs: dict[str, ModelRef] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # seconds the transport holds back the next request of a connection that was just shed (a
        # closed-loop client sends it the moment it has the 503; see :attr:`shed_pause`)
        self.shed_pause = 0.0

    # --- the path ---------------------------------------------------------------------------------

    def handle(self, codec: Codec, params: dict[str, str], scope: Any, body: bytes, respond: Respond) -> None:
        """Answer one prediction request: ``respond(answer)`` is called once, now or later on the
        event loop (which must be running). ``scope`` is the request's ASGI scope."""
        call = self._call(codec, params, scope, body, respond)
        headers = call.incoming.headers
        incoming = call.incoming
        try:
            ref = self.parse_ref(codec.ref(incoming, self.manager.first_ref))
            call.name = ref.name
            target = self._route(ref, headers.get("x-routing-key"), call)
            predictor = self.manager.get_nowait(target)
            lane = None
            if predictor is not None:
                lane = self._lane(predictor, call.policy or self.config.policy(ref.name))
                self._admit(lane)  # before parsing: a shed costs no JSON
            call.parsed = codec.parse(incoming)
            call.request_id = call.parsed.request_id or call.client_rid or new_request_id()
            if predictor is None or lane is None:  # resolve and maybe load: registry I/O, off the loop
                self._spawn(self._load_and_submit(target, call))
            else:
                self._submit(lane, predictor, call)
        except Exception as exc:  # noqa: BLE001 - every error is answered by the codec
            self._failed(call, exc)

    def refuse(self, codec: Codec, scope: Any, exc: BaseException, respond: Respond) -> None:
        """Answer a prediction request that failed before it could be handled (e.g. a body over
        the limit) with the codec's error, counted as every other error is."""
        self._failed(self._call(codec, {}, scope, b"", respond), exc)

    def _call(self, codec: Codec, params: dict[str, str], scope: Any, body: bytes, respond: Respond) -> _Call:
        """A request taken in: counted in flight until :meth:`_answered` or :meth:`_failed`."""
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = Incoming(params, scope.get("query_string", b""), headers, body)
        self.metrics.requests_in_flight += 1
        return _Call(codec, incoming, respond, started, client_request_id(headers.get("x-request-id")))

    def _route(self, ref: ModelRef, routing_key: str | None, call: _Call) -> ModelRef:
        """The version that answers (the canary's by its weight); sets the call's role and policy."""
        r = self.manager.ref_for(ref)
        policy = call.policy = self.config.policy(r.name)
        served = call.served = r in self.manager.refs or not self.manager.refs
        if served and policy.canary is not None and policy.canary.weight > 0:
            draw = random.random() if routing_key is None else routing_bucket(routing_key)
            if draw < policy.canary.weight:
                call.role = "canary"
                return ModelRef.parse(policy.canary.ref)
        return r

    def _lane(self, predictor: Predictor, policy: ModelPolicy, shadow: bool = False) -> Lane:
        mv = predictor.model_version
        key = (mv.name, mv.version, shadow)
        lane = self._lanes.get(key)
        if lane is None:
            metrics = None if shadow else self.metrics
            lane = self._lanes[key] = Lane(mv.name, mv.version, policy, metrics, on_loop=not shadow)
        elif lane.policy is not policy and not shadow:
            lane.policy = policy  # the stored routes changed the policy object; its limits are the same
        return lane

    def _admit(self, lane: Lane) -> None:
        if lane.policy.sla_ms is not None:
            self.loop_lag.ensure_started()
            lane.admit(self.loop_lag.current())
        else:
            lane.admit(0.0)

    async def _load_and_submit(self, target: ModelRef, call: _Call) -> None:
        try:
            predictor = await run_in_threadpool(self.manager.get, target)
            lane = self._lane(predictor, call.policy or self.config.policy(target.name))
            self._admit(lane)
            self._submit(lane, predictor, call)
        except Exception as exc:  # noqa: BLE001 - answered by the codec
            self._failed(call, exc)

    def _submit(self, lane: Lane, predictor: Predictor, call: _Call) -> None:
        call.version = str(predictor.model_version.version)
        parsed = call.parsed
        assert parsed is not None
        reply = Reply(lambda result: self._answered(call, result), lambda exc: self._failed(call, exc))
        lane.submit(predictor, parsed.payload, call.codec.decode, len(call.incoming.body), reply)

    def _answered(self, call: _Call, result: Prediction) -> None:
        if call.role != "primary":
            result = replace(result, role=call.role)
        parsed = call.parsed
        assert parsed is not None
        try:
            answer = call.codec.encode(result, parsed, call.request_id)
        except Exception as exc:  # noqa: BLE001 - e.g. an unknown output asked for: the codec's 4xx
            self._failed(call, exc)
            return
        elapsed = time.perf_counter() - call.started
        self.metrics.requests_in_flight -= 1
        try:
            call.respond(answer)  # the answer goes out first; counting and logging it can follow
        finally:
            codec = call.codec.name
            self.metrics.observe_success(result.model_version, codec, elapsed, result.role)
            if self.prediction_log is not None:  # enqueue only: never blocks, never raises
                self.prediction_log.log(result, call.request_id, codec, elapsed)
            shadow = call.policy.shadow if call.policy is not None else None
            if call.served and shadow is not None and shadow.share > 0 and random.random() < shadow.share:
                self._spawn(self._mirror(ModelRef.parse(shadow.ref), call))

    def _failed(self, call: _Call, exc: BaseException) -> None:
        self.metrics.requests_in_flight -= 1
        if isinstance(exc, Overloaded):
            # The 503 goes out at once; the transport reads the connection's next request only
            # after about the wait that made it shed (at most SHED_PAUSE_MAX): a client that retries
            # at once would otherwise keep the event loop answering 503s, and the predict calls
            # waiting for the GIL, so that shedding cost the goodput it was meant to keep.
            self.shed_pause = min(max(exc.wait, SHED_PAUSE_MIN), SHED_PAUSE_MAX)
        answer = error_answer(call.codec, exc, call.client_rid)
        name = call.name if call.name in self.manager.names or not self.manager.refs else None
        self.metrics.observe_error(name, call.version if name else None, call.codec.name, answer[0])
        call.respond(answer)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- shadows ----------------------------------------------------------------------------------

    async def _mirror(self, ref: ModelRef, call: _Call) -> None:
        """Score a copy of a request on the shadow version (in the thread pool); log it; never raise."""
        name, version = ref.name, "unknown"
        parsed = call.parsed
        assert parsed is not None
        try:
            predictor = self.manager.get_nowait(ref)
            if predictor is None:
                predictor = await run_in_threadpool(self.manager.get, ref)
            version = str(predictor.model_version.version)
            lane = self._lane(predictor, SHADOW_POLICY, shadow=True)
            lane.admit(0.0)
            done: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
            reply = Reply(done.set_result, done.set_exception)
            lane.submit(predictor, parsed.payload, call.codec.decode, None, reply)
            result = await done
        except Overloaded:
            self._count_shadow(name, version, "dropped")
            return
        except Exception as exc:  # noqa: BLE001 - a shadow failure is counted, never seen by callers
            log.debug("shadow %s failed: %s", ref, exc)
            self._count_shadow(name, version, "failed")
            return
        self._count_shadow(name, version, "scored")
        if self.prediction_log is not None:
            self.prediction_log.log(replace(result, role="shadow"), call.request_id, call.codec.name, 0.0)

    def _count_shadow(self, name: str, version: str, result: str) -> None:
        self.metrics.shadow.labels(name, version, result).inc()

    # --- helpers ----------------------------------------------------------------------------------

    def parse_ref(self, text: str) -> ModelRef:
        """``text`` parsed, from a small cache (the same few refs arrive again and again);
        :class:`ModelNotFound` (404) for a version number no store can hold."""
        cache = self._refs
        ref = cache.get(text)
        if ref is None:
            ref = ModelRef.parse(text)
            if ref.version is not None and ref.version > MAX_VERSION:
                raise ModelNotFound(f"Model '{ref.name}' has no such version (versions are below 2**63).")
            if len(cache) >= _REF_CACHE_SIZE:
                cache.clear()
            cache[text] = ref
        return ref

    def lanes(self) -> list[Lane]:
        return list(self._lanes.values())

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait (up to ``timeout``) for queued and running calls, loads and shadows included."""
        self.loop_lag.stop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = any(lane.pending or lane.busy for lane in self._lanes.values()) or self._tasks
            if not busy:
                return
            await asyncio.sleep(0.01)


def error_answer(codec: Codec, exc: BaseException, client_rid: str | None) -> Answer:
    """The one error mapper: any exception as ``codec``'s error answer (status, headers, body).

    A :class:`ModelportError` keeps its status (messages never quote input values); a number out of
    range for its column is a 422; anything else is logged and answered 500 without details.
    """
    if isinstance(exc, OverflowError):
        exc = SchemaMismatch(
            "A number in the input is out of range for its column's type (integers must fit in 64 bits)."
        )
    if not isinstance(exc, ModelportError):
        if isinstance(exc, Exception):
            log.error("unhandled error while serving a prediction", exc_info=exc)
        exc = ModelportError("Internal server error; see the server log.")
    message, details = safe_message(exc)
    status, content_type, content = codec.error_body(exc.status, message, details)
    headers = [(b"content-length", str(len(content)).encode()), (b"content-type", content_type)]
    if isinstance(exc, Overloaded):
        headers.append((b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode()))
    if client_rid is not None:
        headers.append((b"x-request-id", client_rid.encode("latin-1")))
    return status, headers, content
