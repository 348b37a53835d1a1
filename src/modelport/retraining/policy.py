"""Retraining policies: when to retrain a model, on which data, how to judge the challenger and
how to promote it.

```yaml
# policies/credit.yaml (paths relative to this file)
model: credit
alias: production
train:
  entrypoint: credit_training:train          # def train(df: pandas.DataFrame) -> fitted model
  data: {kind: parquet, path: data/labelled/, window: 180d, time_column: applied_at}
  # or data: {kind: prediction_log, window: 90d}: the logged requests joined with their labels
  label: defaulted
  timeout: 600                               # seconds; the training runs in its own process
trigger:                                     # any of these
  dataset_drift: true
  metric_drop: {metric: roc_auc, by: 0.02}
  schedule: "0 3 * * 0"
  min_new_labels: 1000
  persistence: 2                             # drift in this many consecutive windows
evaluate: {metric: roc_auc, holdout: 0.2, min_improvement: 0.002}   # latest 20% by time
promote: {mode: direct}
# or: {mode: shadow, duration: 1d, min_live_labels: 200}   ("shadow for 1d then direct")
# or: {mode: canary, share: 10%, duration: 1d}             ("canary 10% for 1d")
```

A shadow or canary phase routes live traffic to the challenger through the servers' traffic
routes (:mod:`modelport.traffic_routes`) for ``duration``, then promotes it only if its live
``evaluate.metric`` on the labelled requests of the phase is at least the champion's plus
``promote.min_improvement`` (default 0), with at least ``min_live_labels`` labelled rows; it waits
for labels up to ``max_duration`` (default 3 × ``duration``), then keeps the champion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from modelport.durations import parse_duration
from modelport.errors import InvalidInput
from modelport.files import read_yaml_mapping, resolve_path
from modelport.refs import ModelRef

METRICS_HIGHER = ("roc_auc", "accuracy", "precision", "recall", "f1", "r2")
METRICS_LOWER = ("log_loss", "mae", "rmse")


@dataclass(frozen=True)
class Policy:
    model: str
    alias: str
    entrypoint: str  # module:function, importable from the policy file's folder
    data_path: str
    label: str
    time_column: str | None = None
    window: str | None = None  # train on the latest window of data (e.g. 180d)
    timeout: float = 600.0
    dataset_drift: bool = False
    metric_drop: Mapping[str, Any] | None = None  # {metric, by}
    schedule: str | None = None
    min_new_labels: int | None = None
    persistence: int = 1
    metric: str = "roc_auc"
    holdout: float = 0.2
    min_improvement: float = 0.0
    promote: str = "direct"
    promote_duration: str = "1d"
    promote_share: float | None = None  # default: all traffic for a shadow, 10 % for a canary
    min_live_labels: int = 100
    max_duration: str | None = None
    live_min_improvement: float = 0.0
    data_kind: str = "parquet"  # or prediction_log
    name: str = ""
    base: Path = field(default=Path("."))
    path: Path | None = None

    def __post_init__(self) -> None:
        ModelRef.parse(self.model)
        if ":" not in self.entrypoint:
            raise InvalidInput(f"train.entrypoint must be module:function, got '{self.entrypoint}'.")
        if self.metric not in METRICS_HIGHER + METRICS_LOWER:
            known = ", ".join(METRICS_HIGHER + METRICS_LOWER)
            raise InvalidInput(f"evaluate.metric must be one of {known}; got '{self.metric}'.")
        if not 0.0 < self.holdout < 1.0:
            raise InvalidInput("evaluate.holdout must be a share between 0 and 1 (latest rows by time).")
        if self.promote not in ("direct", "shadow", "canary"):
            raise InvalidInput(f"promote.mode must be direct, shadow or canary; got '{self.promote}'.")
        if self.promote_share is not None and not 0.0 < self.promote_share <= 1.0:
            raise InvalidInput(f"promote.share must be above 0 and at most 1, got {self.promote_share}.")
        if self.min_live_labels < 1:
            raise InvalidInput("promote.min_live_labels must be at least 1.")
        if self.promote != "direct" and self.phase_limit < self.phase:  # parses both durations
            raise InvalidInput("promote.max_duration must be at least promote.duration.")
        if self.data_kind not in ("parquet", "prediction_log"):
            raise InvalidInput("train.data.kind must be parquet or prediction_log.")
        if self.persistence < 1:
            raise InvalidInput("trigger.persistence must be at least 1 window.")

    @property
    def higher_is_better(self) -> bool:
        return self.metric in METRICS_HIGHER

    def improvement(self, challenger: float, champion: float) -> float:
        return challenger - champion if self.higher_is_better else champion - challenger

    @property
    def share(self) -> float:
        if self.promote_share is not None:
            return self.promote_share
        return 0.1 if self.promote == "canary" else 1.0

    @property
    def phase(self) -> timedelta:
        return parse_duration(self.promote_duration, what="promote.duration")

    @property
    def phase_limit(self) -> timedelta:
        return (
            parse_duration(self.max_duration, what="promote.max_duration")
            if self.max_duration
            else 3 * self.phase
        )


def load_policy(path: str | Path) -> Policy:
    p = Path(path)
    data = read_yaml_mapping(p, "Policy file", "model, alias, train, trigger ...")
    data = dict(data)
    data.pop("kind", None)
    data.pop("timezone", None)
    unknown = sorted(
        set(data) - {"model", "alias", "train", "trigger", "evaluate", "promote", "name", "schedule"}
    )
    if unknown:
        raise InvalidInput(f"Unknown policy setting(s): {', '.join(unknown)}.")
    train = _section(data, "train", {"entrypoint", "data", "label", "timeout"})
    trigger = _section(
        data, "trigger", {"dataset_drift", "metric_drop", "schedule", "min_new_labels", "persistence"}
    )
    evaluate = _section(data, "evaluate", {"metric", "holdout", "min_improvement"})
    promote = _promote(data.get("promote"))
    source = dict(train.get("data") or {})
    kind = source.get("kind", "parquet")
    if kind not in ("parquet", "prediction_log") or (kind == "parquet" and not source.get("path")):
        raise InvalidInput(
            "train.data needs {kind: parquet, path: ...} (labelled training data) or "
            "{kind: prediction_log, window: ...} (logged requests joined with their labels)."
        )
    for required in ("model", "alias"):
        if required not in data:
            raise InvalidInput(f"A policy needs '{required}'.")
    if "entrypoint" not in train or "label" not in train:
        raise InvalidInput(
            "A policy needs train.entrypoint (module:function) and train.label (the outcome column)."
        )
    holdout = evaluate.get("holdout", 0.2)
    if isinstance(holdout, str):  # "latest 20% by time"
        digits = "".join(ch for ch in holdout if ch.isdigit() or ch == ".")
        holdout = float(digits) / 100.0 if "%" in holdout else float(digits)
    try:
        return Policy(
            model=str(data["model"]),
            alias=str(data["alias"]),
            entrypoint=str(train["entrypoint"]),
            data_path=resolve_path(str(source["path"]), p.resolve().parent) if kind == "parquet" else "",
            data_kind=str(kind),
            label=str(train["label"]),
            time_column=source.get("time_column") or ("timestamp" if kind == "prediction_log" else None),
            window=source.get("window"),
            timeout=float(train.get("timeout", 600)),
            dataset_drift=bool(trigger.get("dataset_drift", False)),
            metric_drop=trigger.get("metric_drop"),
            schedule=trigger.get("schedule") or data.get("schedule"),
            min_new_labels=trigger.get("min_new_labels"),
            persistence=int(trigger.get("persistence", 1)),
            metric=str(evaluate.get("metric", "roc_auc")),
            holdout=float(holdout),
            min_improvement=float(evaluate.get("min_improvement", 0.0)),
            promote=str(promote.get("mode", "direct")),
            promote_duration=str(promote.get("duration", "1d")),
            promote_share=_fraction(promote.get("share", promote.get("weight"))),
            min_live_labels=int(promote.get("min_live_labels", 100)),
            max_duration=promote.get("max_duration"),
            live_min_improvement=float(promote.get("min_improvement", 0.0)),
            name=str(data.get("name") or f"retrain-{data['model']}"),
            base=p.resolve().parent,
            path=p,
        )
    except TypeError as exc:
        raise InvalidInput(f"Invalid policy: {exc}") from None


def _section(data: Mapping[str, Any], key: str, known: set[str]) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"'{key}' must be a mapping.")
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidInput(
            f"Unknown {key} setting(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}."
        )
    return dict(value)


_PROMOTE = re.compile(
    r"^(direct|shadow|canary)(?:\s+(\d+(?:\.\d+)?%|0?\.\d+))?(?:\s+for\s+(\S+))?(?:\s+then\s+\w+)?$"
)
_PROMOTE_KEYS = {"mode", "duration", "share", "weight", "min_live_labels", "max_duration", "min_improvement"}


def _promote(value: Any) -> dict[str, Any]:
    """``{mode: ..., ...}`` or the short forms ``"shadow for 1d then direct"``, ``"canary 10% for 2d"``."""
    if isinstance(value, str):
        m = _PROMOTE.match(value.strip())
        if not m:
            raise InvalidInput(
                f"promote '{value}' is not understood; use e.g. direct, 'shadow for 1d then direct' or "
                "'canary 10% for 1d' (or a mapping with mode, duration, share)."
            )
        out: dict[str, Any] = {"mode": m.group(1)}
        if m.group(2):
            out["share"] = m.group(2)
        if m.group(3):
            out["duration"] = m.group(3)
        return out
    return _section({"promote": value}, "promote", _PROMOTE_KEYS)


def _fraction(value: Any) -> float | None:
    """``"10%"``, ``0.1`` or ``"0.1"`` -> 0.1 (None stays None)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise InvalidInput(
            f"promote.share must be a share (0.1) or a percentage (10%), got '{value}'."
        ) from None
