"""The service layer of the server: which models are served, loading them, predicting.

The serving service (:mod:`.service`) takes each request's predictor from here; no codec loads or
validates anything itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from modelport.errors import ModelNotFound
from modelport.model_version import ModelVersion
from modelport.predictor import Predictor
from modelport.refs import ModelRef
from modelport.registry import Registry

log = logging.getLogger(__name__)
# A load's footprint is the process's RSS growth; the allocator may reuse freed pages, so count at least this.
_MIN_FOOTPRINT = 64 * 1024


class ModelManager:
    """Resolves references, loads each version once (lazily or eagerly) and predicts. Thread-safe.

    ``refs`` are the models this server serves; a request may name one of them by its bare name
    (``credit`` means the ref given, e.g. ``credit@production``) or pin another version or alias of
    the same model (``credit:3``). An empty ``refs`` serves every model in the registry.
    Moving aliases are re-resolved at most every ``resolve_ttl`` seconds. With ``eager``, :attr:`ready`
    stays false until :meth:`load_all` has run.

    Hot swap: while :meth:`start_watching` runs, a daemon thread re-resolves every served moving ref
    (an alias, or a bare name meaning the latest version) every ``resolve_ttl`` seconds. When one
    points at a new version, the thread loads it off the request path, swaps the ref's predictor in
    one assignment under the lock, and only then drops the old one; requests always take the
    predictor mapped now and never wait for a swap's load. A load that fails keeps the old version
    serving (logged, reported to ``on_swap`` as ``"failure"``, retried with a backoff).

    >>> manager = ModelManager(client.registry, ["credit@production"])   # doctest: +SKIP
    >>> manager.get("credit").predict([{"income": 52000, ...}])           # doctest: +SKIP
    """

    def __init__(
        self,
        registry: Registry,
        refs: Sequence[str] = (),
        *,
        runtime: str = "auto",
        resolve_ttl: float = 2.0,
        eager: bool = False,
        on_load: Callable[[ModelVersion, float], None] | None = None,
        on_swap: Callable[[ModelVersion, str], None] | None = None,
        idle_unload_s: float | None = None,
        memory_budget_bytes: int | None = None,
        on_unload: Callable[[ModelVersion, str], None] | None = None,
        threads: int | None = None,
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.threads = threads  # onnxruntime intra-op threads of each loaded version (None: its default)
        self.resolve_ttl = resolve_ttl
        self.refs = [ModelRef.parse(r) for r in refs]
        self._default = {r.name: r for r in reversed(self.refs)}  # the first ref of a name wins
        self._served = set(self.refs)
        self._on_load = on_load
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self._predictors: dict[tuple[str, int], Predictor] = {}
        self._resolved: dict[ModelRef, tuple[float, ModelVersion]] = {}
        self._eager_done = not (eager and self.refs)
        self._on_swap = on_swap
        # served ref -> the predictor answering it now; read without the lock, replaced under it
        self._current: dict[ModelRef, Predictor] = {}
        self._retry: dict[tuple[str, int], tuple[float, float]] = {}  # failed load -> (retry at, delay)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        # scale down: versions unused for idle_unload_s, or beyond the memory budget (LRU first)
        self.idle_unload_s = idle_unload_s
        self.memory_budget_bytes = memory_budget_bytes
        self._on_unload = on_unload
        self._last_used: dict[tuple[str, int], float] = {}
        self._footprint: dict[tuple[str, int], int] = {}  # bytes each load added to the process
        self._janitor: threading.Thread | None = None
        # called by the watcher after each hot-swap check (e.g. following the store's traffic routes)
        self.watch_hooks: list[Callable[[], object]] = []

    @property
    def names(self) -> list[str]:
        return list(self._default)

    def ref_for(self, ref: str | ModelRef) -> ModelRef:
        """The served reference a request's ``name``, ``name:V`` or ``name@ALIAS`` stands for."""
        parsed = ModelRef.parse(ref)
        if not self.refs:
            return parsed
        default = self._default.get(parsed.name)
        if default is None:
            raise ModelNotFound(
                f"Model '{parsed.name}' is not served here. Served: {', '.join(self.names)}. "
                "See GET /v2/models or /openapi.json."
            )
        return default if parsed.version is None and parsed.alias is None else parsed

    def first_ref(self) -> ModelRef:
        if not self.refs:
            raise ModelNotFound("This server was started without a model; name one with ?model=NAME.")
        return self.refs[0]

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference points at now (pinned versions are cached for good).

        While watching, a served ref resolves to the version that answers it now.
        """
        r = self.ref_for(ref)
        if self.watching:
            current = self._current.get(r)
            if current is not None:
                return current.model_version
        return self._resolve(r)

    def _resolve(self, r: ModelRef) -> ModelVersion:
        now = time.monotonic()
        hit = self._resolved.get(r)
        if hit is not None and (r.version is not None or now - hit[0] < self.resolve_ttl):
            return hit[1]
        mv = self.registry.get(r)
        self._resolved[r] = (now, mv)
        return mv

    def get_nowait(self, ref: str | ModelRef) -> Predictor | None:
        """The predictor for ``ref`` if answering needs no registry call and no load, else None.

        True for a served ref while watching (the watcher keeps it current) and for a pinned
        version already loaded. Safe on the event loop: no I/O, no lock.
        """
        r = self.ref_for(ref)
        if self.watching and r in self._served:
            predictor = self._current.get(r)
        elif r.version is not None:
            predictor = self._predictors.get((r.name, r.version))
        else:
            return None
        if predictor is not None:
            mv = predictor.model_version
            self._last_used[(mv.name, mv.version)] = time.monotonic()
        return predictor

    def get(self, ref: str | ModelRef) -> Predictor:
        """The loaded predictor for a reference, loading it on first use."""
        fast = self.get_nowait(ref)
        if fast is not None:  # the hot path: no registry call, no lock
            return fast
        r = self.ref_for(ref)
        served = r in self._served
        predictor = self._load(self._resolve(r))
        self._last_used[(predictor.model_version.name, predictor.model_version.version)] = time.monotonic()
        if served and self._current.get(r) is not predictor:
            with self._lock:
                if not self.watching:
                    self._current[r] = predictor
                else:  # never overwrite a swap the watcher made meanwhile
                    predictor = self._current.setdefault(r, predictor)
        return predictor

    def _load(self, mv: ModelVersion) -> Predictor:
        """The predictor of one version, loaded once however many threads ask at once."""
        key = (mv.name, mv.version)
        predictor = self._predictors.get(key)
        if predictor is not None:
            return predictor
        with self._lock:
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:  # one load per version, even when many requests arrive at once
            predictor = self._predictors.get(key)
            if predictor is None:
                started = time.perf_counter()
                rss = _rss()
                predictor = self.registry.load(mv, runtime=self.runtime, threads=self.threads)
                elapsed = time.perf_counter() - started
                self._footprint[key] = max(_rss() - rss, _MIN_FOOTPRINT)
                log.info(
                    "loaded %s (%s runtime) in %.2fs, +%.1f MB",
                    mv.ref,
                    predictor.runtime,
                    elapsed,
                    self._footprint[key] / 2**20,
                )
                self._last_used[key] = time.monotonic()
                self._predictors[key] = predictor
                if self._on_load is not None:
                    self._on_load(mv, elapsed)
                self._enforce_budget(keep=key)
        return predictor

    # --- scale down: idle unload and memory budget ------------------------------------------------

    def footprint(self, mv: ModelVersion) -> int:
        """Bytes the process grew by when ``mv`` was loaded (0 if not loaded)."""
        return self._footprint.get((mv.name, mv.version), 0)

    def unload(self, mv: ModelVersion, reason: str = "manual") -> bool:
        """Drop a loaded version; requests holding it finish, the next one loads it again."""
        key = (mv.name, mv.version)
        with self._lock:
            predictor = self._predictors.pop(key, None)
            if predictor is None:
                return False
            for r, current in list(self._current.items()):
                if current is predictor:
                    del self._current[r]
            self._footprint.pop(key, None)
            self._last_used.pop(key, None)
        log.info("unloaded %s (%s)", mv.ref, reason)
        if self._on_unload is not None:
            self._on_unload(mv, reason)
        return True

    def housekeep(self, now: float | None = None) -> list[ModelVersion]:
        """Unload versions idle for ``idle_unload_s`` and enforce the memory budget; returns them."""
        now = time.monotonic() if now is None else now
        unloaded = []
        if self.idle_unload_s is not None:
            for key, predictor in list(self._predictors.items()):
                idle = now - self._last_used.get(key, now) >= self.idle_unload_s
                if idle and self.unload(predictor.model_version, "idle"):
                    unloaded.append(predictor.model_version)
        unloaded += self._enforce_budget()
        return unloaded

    def _enforce_budget(self, keep: tuple[str, int] | None = None) -> list[ModelVersion]:
        budget = self.memory_budget_bytes
        unloaded: list[ModelVersion] = []
        if budget is None:
            return unloaded
        by_age = sorted(self._predictors.items(), key=lambda kv: self._last_used.get(kv[0], 0.0))
        total = sum(self._footprint.get(k, 0) for k, _ in by_age)
        for key, predictor in by_age:
            if total <= budget:
                break
            if key == keep or len(self._predictors) <= 1:
                continue  # never the version just loaded, never the last one
            size = self._footprint.get(key, 0)
            if self.unload(predictor.model_version, "memory"):
                unloaded.append(predictor.model_version)
                total -= size
        if total > budget:
            log.warning(
                "loaded models use %.0f MB, above the budget of %.0f MB", total / 2**20, budget / 2**20
            )
        return unloaded

    def start_housekeeping(self, interval: float | None = None) -> None:
        """Start the daemon thread that unloads idle versions (when a limit is configured)."""
        if self._janitor is not None or (self.idle_unload_s is None and self.memory_budget_bytes is None):
            return
        every = interval or min(max((self.idle_unload_s or 20.0) / 4, 0.05), 5.0)
        self._stop.clear()
        thread = threading.Thread(
            target=self._housekeep_loop, args=(every,), name="modelport-janitor", daemon=True
        )
        self._janitor = thread
        thread.start()

    def _housekeep_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.housekeep()
            except Exception:  # the janitor must survive anything
                log.exception("unloading idle models failed")

    # --- hot swap ---------------------------------------------------------------------------------

    @property
    def watching(self) -> bool:
        return self._watcher is not None

    def start_watching(self, interval: float | None = None) -> None:
        """Start the daemon thread that hot-swaps moving refs every ``interval`` (``resolve_ttl``)."""
        if self._watcher is not None:
            return
        every = self.resolve_ttl if interval is None else interval
        self._stop.clear()
        thread = threading.Thread(target=self._watch, args=(every,), name="modelport-watcher", daemon=True)
        with self._lock:
            self._watcher = thread
        thread.start()

    def stop_watching(self, timeout: float = 10.0) -> None:
        """Stop the watcher (waits up to ``timeout`` for a load in progress)."""
        thread = self._watcher
        if thread is None:
            if self._janitor is not None:
                self._stop.set()
                self._janitor.join(timeout)
                self._janitor = None
            return
        self._stop.set()
        thread.join(timeout)
        if self._janitor is not None:
            self._janitor.join(timeout)
            self._janitor = None
        with self._lock:
            self._watcher = None

    def _watch(self, interval: float) -> None:
        log.info("watching %s for new versions every %.1fs", [str(r) for r in self.refs], interval)
        self._run_hooks()  # at once: e.g. stored traffic routes apply from the start
        while not self._stop.wait(max(interval, 0.01)):
            try:
                self.refresh()
            except Exception:  # the watcher must survive anything; requests keep the old versions
                log.exception("hot swap check failed")
            self._run_hooks()

    def _run_hooks(self) -> None:
        for hook in list(self.watch_hooks):
            try:
                hook()
            except Exception:  # a failing hook never stops the watcher
                log.exception("watch hook %r failed", hook)

    def refresh(self) -> list[ModelVersion]:
        """Check each loaded moving ref once; swap in new versions. Returns the versions swapped in."""
        swapped = []
        for r in list(self._current):
            if r.version is not None or self._stop.is_set():
                continue
            mv = self._swap(r)
            if mv is not None:
                swapped.append(mv)
        return swapped

    def _swap(self, r: ModelRef) -> ModelVersion | None:
        old = self._current[r]
        try:
            mv = self.registry.get(r)
        except Exception as exc:  # noqa: BLE001 - e.g. the alias was deleted: keep serving what we have
            log.warning("cannot re-resolve %s, still serving %s: %s", r, old.model_version.ref, exc)
            return None
        self._resolved[r] = (time.monotonic(), mv)
        if mv.version == old.model_version.version:
            return None
        key = (mv.name, mv.version)
        now = time.monotonic()
        retry = self._retry.get(key)
        if retry is not None and now < retry[0]:
            return None
        try:
            new = self._load(mv)
        except Exception as exc:  # noqa: BLE001 - any failed load keeps the old version serving
            delay = min(300.0, max(self.resolve_ttl, 1.0) * 2 if retry is None else retry[1] * 2)
            self._retry[key] = (now + delay, delay)
            log.error(
                "hot swap of %s to %s failed, still serving %s (retry in %.0fs): %s",
                r,
                mv.ref,
                old.model_version.ref,
                delay,
                exc,
            )
            if self._on_swap is not None:
                self._on_swap(mv, "failure")
            return None
        self._retry.pop(key, None)
        with self._lock:
            if self._current.get(r) is not old:  # someone swapped first; let the next check decide
                return None
            self._current[r] = new  # the swap: requests from now on get the new version
            in_use = {(p.model_version.name, p.model_version.version) for p in self._current.values()}
            old_key = (old.model_version.name, old.model_version.version)
            if old_key not in in_use:
                self._predictors.pop(old_key, None)  # in-flight requests still hold their reference
                self._footprint.pop(old_key, None)
                self._last_used.pop(old_key, None)
        log.info("hot swapped %s: %s -> %s", r, old.model_version.ref, mv.ref)
        if self._on_swap is not None:
            self._on_swap(mv, "success")
        return mv

    def load_all(self) -> None:
        """Load every served ref now (eager mode); raises the first failure."""
        for r in self.refs:
            self.get(r)
        self._eager_done = True

    @property
    def ready(self) -> bool:
        """True once the eager load finished (always true for a lazy server)."""
        return self._eager_done

    def is_loaded(self, mv: ModelVersion) -> bool:
        return (mv.name, mv.version) in self._predictors

    def loaded(self) -> list[ModelVersion]:
        return [p.model_version for p in list(self._predictors.values())]


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)
