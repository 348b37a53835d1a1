"""What a server serves and how: per-model policies (batching, queue, SLA, canary, shadow) and
server options, from Python, CLI flags or a ``serve.yaml`` file.

```yaml
# serve.yaml — every key is optional except models
models:
  - credit@production                       # a plain reference takes the defaults below
  - ref: fraud@production
    batching: {max_batch_size: 128, max_wait_ms: 5}
    sla_ms: 50                                # shed (503 + Retry-After) past this expected wait
    canary: {ref: fraud:8, weight: 0.1}      # 10 % of traffic; sticky per X-Routing-Key
    shadow: {ref: fraud@challenger, share: 0.5}
port: 8080
workers: 2
batching: false                              # default policy of every model: any policy key
max_queue: 512
idle_unload_s: 600                           # unload a version unused this long
memory_budget_mb: 2048                       # unload least recently used versions beyond this
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInput
from modelport.files import read_yaml_mapping
from modelport.refs import ModelRef

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Canary:
    """Send ``weight`` (0-1) of a served model's traffic to another version of the same model."""

    ref: str
    weight: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise InvalidInput(f"canary weight must be between 0 and 1 (10% = 0.1), got {self.weight}.")


@dataclass(frozen=True)
class Shadow:
    """Mirror ``share`` (0-1) of the traffic to ``ref``; its outputs are logged, never returned."""

    ref: str
    share: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise InvalidInput(f"shadow share must be between 0 and 1, got {self.share}.")


@dataclass(frozen=True)
class ModelPolicy:
    """How one model's requests are queued, merged and routed in each worker process.

    - ``coalesce`` (on by default): requests for a version that are already waiting when a predict
      call starts (e.g. those that arrived in the same turn of the event loop) go into that one
      call, up to ``max_batch_size`` rows; no request ever waits for company. Off: one call per
      request.
    - ``batching``: also hold a request back for company, at most ``max_wait_ms``, and only while
      requests arrive faster than that (a lone request is never held back).
    - ``max_queue``: requests waiting per model; beyond it a request gets 503 at once.
    - ``sla_ms``: when the expected wait in the queue exceeds it, 503 with ``Retry-After`` at once.
    - ``concurrency``: predict calls running at once (default 1 with batching, else 2).
    """

    batching: bool = False
    coalesce: bool = True
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    max_queue: int = 1024
    sla_ms: float | None = None
    concurrency: int | None = None
    canary: Canary | None = None
    shadow: Shadow | None = None

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue < 1:
            raise InvalidInput("max_batch_size and max_queue must be at least 1.")
        if self.max_wait_ms < 0 or (self.sla_ms is not None and self.sla_ms <= 0):
            raise InvalidInput("max_wait_ms must be >= 0 and sla_ms > 0.")
        if self.concurrency is not None and self.concurrency < 1:
            raise InvalidInput("concurrency must be at least 1.")

    @property
    def merges(self) -> bool:
        """Do waiting requests share predict calls?"""
        return self.batching or self.coalesce

    @property
    def slots(self) -> int:
        if self.concurrency is not None:
            return self.concurrency
        return 1 if self.batching else 2


_POLICY_KEYS = {f.name for f in dataclasses.fields(ModelPolicy)}


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``modelport serve`` needs; JSON-round-trips to reach worker processes."""

    refs: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    eager: bool = True
    runtime: str = "auto"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    watch_interval: float = 2.0
    log_sample_rate: float = 1.0
    idle_unload_s: float | None = None
    memory_budget_mb: float | None = None
    threads: int | None = None  # per worker: onnxruntime intra-op and native thread pools (None: theirs)
    tune_process: bool = False  # a worker process of its own: freeze the GC, short GIL switch (serve())
    defaults: ModelPolicy = field(default_factory=ModelPolicy)
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)  # model name -> its policy

    def __post_init__(self) -> None:
        for ref in self.refs:
            ModelRef.parse(ref)
        if self.runtime not in ("auto", "native", "onnx"):
            raise InvalidInput(f"runtime must be auto, native or onnx, got '{self.runtime}'.")
        if not 0.0 <= self.log_sample_rate <= 1.0:
            raise InvalidInput(f"log_sample_rate must be between 0 and 1, got {self.log_sample_rate}.")
        names = {ModelRef.parse(r).name for r in self.refs}
        for name, policy in self.models.items():
            if policy.canary is not None and ModelRef.parse(policy.canary.ref).name != name:
                raise InvalidInput(
                    f"The canary of '{name}' must be another version of '{name}', got '{policy.canary.ref}'."
                )
            if policy.shadow is not None:
                ModelRef.parse(policy.shadow.ref)
            if self.refs and name not in names:
                raise InvalidInput(f"A policy names model '{name}', which is not served.")

    def policy(self, name: str) -> ModelPolicy:
        return self.models.get(name, self.defaults)

    def replace(self, **changes: Any) -> ServeConfig:
        """A copy with ``changes``; policy keys (``batching``, ``sla_ms`` ...) change every model."""
        policy_changes = {k: changes.pop(k) for k in list(changes) if k in _POLICY_KEYS}
        if not policy_changes:
            return dataclasses.replace(self, **changes)
        defaults = dataclasses.replace(self.defaults, **policy_changes)
        models = {n: dataclasses.replace(p, **policy_changes) for n, p in self.models.items()}
        return dataclasses.replace(self, defaults=defaults, models=models, **changes)

    def with_policy(self, name: str, **changes: Any) -> ServeConfig:
        """A copy where model ``name``'s policy has ``changes`` (e.g. ``canary=Canary(...)``)."""
        models = dict(self.models)
        models[name] = dataclasses.replace(self.policy(name), **changes)
        return dataclasses.replace(self, models=models)

    def with_route(self, kind: str, spec: str) -> ServeConfig:
        """Add a canary or shadow from ``REF=SHARE`` (``fraud:8=10%``, ``fraud@challenger=0.5``)."""
        ref, value = route_spec(kind, spec)
        route = Canary(ref, value) if kind == "canary" else Shadow(ref, value)
        return self.with_policy(ModelRef.parse(ref).name, **{kind: route})

    # --- (de)serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServeConfig:
        """From :meth:`to_dict` output or a parsed ``serve.yaml`` (both shapes)."""
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)} | _POLICY_KEYS | {"max_body_mb"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(
                f"Unknown serve setting(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}."
            )
        if "max_body_mb" in data:
            data["max_body_bytes"] = int(float(data.pop("max_body_mb")) * 1024 * 1024)
        base = dict(data.pop("defaults", None) or {})
        base.update({k: data.pop(k) for k in list(data) if k in _POLICY_KEYS})
        defaults = _policy(base, "defaults")
        refs = list(data.pop("refs", ()) or ())
        models: dict[str, ModelPolicy] = {}
        raw_models = data.pop("models", None) or {}
        if isinstance(raw_models, Mapping):  # to_dict's shape: name -> policy
            models = {name: _policy({**_as_dict(defaults), **p}, name) for name, p in raw_models.items()}
        elif isinstance(raw_models, Sequence) and not isinstance(raw_models, str):
            for entry in raw_models:  # serve.yaml's shape: refs, or {ref: ..., policy keys}
                if isinstance(entry, str):
                    refs.append(entry)
                    continue
                if not isinstance(entry, Mapping) or "ref" not in entry:
                    raise InvalidInput(f"Each entry of 'models' is a reference or has 'ref': got {entry!r}.")
                entry = dict(entry)
                ref = str(entry.pop("ref"))
                refs.append(ref)
                models[ModelRef.parse(ref).name] = _policy({**_as_dict(defaults), **entry}, ref)
        else:
            raise InvalidInput("'models' must be a list of references or of {ref: ..., settings}.")
        try:
            return cls(refs=tuple(refs), defaults=defaults, models=models, **data)
        except TypeError as exc:
            raise InvalidInput(f"Invalid serve settings: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> ServeConfig:
        """Read a ``serve.yaml`` (or JSON) file."""
        data = read_yaml_mapping(path, "Serve config file", "settings")
        return cls.from_dict(data)


def route_spec(kind: str, spec: str) -> tuple[str, float]:
    """``REF=SHARE`` (``fraud:8=10%``, ``fraud@challenger=0.5``) -> (ref, share between 0 and 1)."""
    ref, sep, share = spec.rpartition("=")
    if not sep or not ref:
        example = "credit:4=10%" if kind == "canary" else "credit@challenger=0.5"
        raise InvalidInput(f"--{kind} takes REF=SHARE, e.g. {example}; got '{spec}'.")
    value = _share(share, f"--{kind} {spec}")
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(f"--{kind} {spec}: the share must be between 0 and 1 (10% = 0.1).")
    ModelRef.parse(ref)
    return ref, value


def _as_dict(policy: ModelPolicy) -> dict[str, Any]:
    return {f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)}


def _policy(raw: Mapping[str, Any], where: str) -> ModelPolicy:
    data = dict(raw)
    unknown = sorted(set(data) - _POLICY_KEYS)
    if unknown:
        raise InvalidInput(
            f"Unknown setting(s) for '{where}': {', '.join(unknown)}. "
            f"Known: {', '.join(sorted(_POLICY_KEYS))}."
        )
    batching = data.get("batching")
    if isinstance(batching, Mapping):  # batching: {max_batch_size: 128, max_wait_ms: 5}
        extra = sorted(set(batching) - {"max_batch_size", "max_wait_ms", "enabled"})
        if extra:
            raise InvalidInput(f"Unknown batching setting(s) for '{where}': {', '.join(extra)}.")
        data.update({k: v for k, v in batching.items() if k != "enabled"})
        data["batching"] = bool(batching.get("enabled", True))
    for key, kind, share in (("canary", Canary, "weight"), ("shadow", Shadow, "share")):
        value = data.get(key)
        if isinstance(value, Mapping):
            value = dict(value)
            if isinstance(value.get(share), str):
                value[share] = _share(value[share], f"{where}.{key}.{share}")
            try:
                data[key] = kind(**value)
            except TypeError as exc:
                raise InvalidInput(f"Invalid {key} for '{where}': {exc}") from None
        elif value is not None and not isinstance(value, kind):
            raise InvalidInput(f"'{key}' of '{where}' must be a mapping with 'ref' and '{share}'.")
    return ModelPolicy(**data)


def _share(text: str, where: str) -> float:
    """``"10%"`` or ``"0.1"`` -> 0.1."""
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise InvalidInput(
            f"{where} must be a number between 0 and 1 or a percentage, got '{text}'."
        ) from None
