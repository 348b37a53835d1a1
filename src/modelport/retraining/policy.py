"""Retraining policies: when to retrain a model, on which data, how to judge the challenger and
how to promote it.

```yaml
# policies/credit.yaml (paths relative to this file)
model: credit
alias: production
train:
  entrypoint: credit_training:train          # def train(df: pandas.DataFrame) -> fitted model
  data: {kind: parquet, path: data/labelled/, window: 180d, time_column: applied_at}
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
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInput
from modelport.files import read_yaml_mapping
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
        if self.promote != "direct":
            raise InvalidInput("promote.mode 'direct' is supported; shadow and canary phases are not yet.")
        if self.persistence < 1:
            raise InvalidInput("trigger.persistence must be at least 1 window.")

    @property
    def higher_is_better(self) -> bool:
        return self.metric in METRICS_HIGHER

    def improvement(self, challenger: float, champion: float) -> float:
        return challenger - champion if self.higher_is_better else champion - challenger


def load_policy(path: str | Path) -> Policy:
    from modelport.batch.jobs import resolve_path

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
    promote = _section(data, "promote", {"mode"})
    source = dict(train.get("data") or {})
    if source.get("kind", "parquet") != "parquet" or not source.get("path"):
        raise InvalidInput("train.data needs {kind: parquet, path: ...} (labelled training data).")
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
            data_path=resolve_path(str(source["path"]), p.resolve().parent),
            label=str(train["label"]),
            time_column=source.get("time_column"),
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
