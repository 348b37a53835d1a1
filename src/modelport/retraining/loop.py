"""Check a policy's triggers, retrain, judge champion against challenger, promote only a better one.

``run(policy)``:

1. **Check** the triggers on the stored monitoring results of the champion (the version the alias
   points at) and on the labels that arrived: dataset drift in the last ``persistence`` windows,
   the metric dropping by ``by`` from the champion's registered value, ``min_new_labels`` labels
   since the last run, or the ``schedule`` having fired since the last run.
2. **Train** the user's ``train(df)`` in its own process, with a time limit, on the labelled data
   (the latest ``window`` of it), holding out the latest ``holdout`` share by time. A failure is
   recorded and changes nothing that serves.
3. **Register** the challenger with lineage (parent version, data window and rows, trigger
   reasons, the code's module, function and sha256, holdout metrics).
4. **Gate**: champion and challenger are scored on the same holdout; promotion needs the margin,
   the champion's signature, and — where the champion runs a compiled twin — a passing parity gate.
5. **Promote** by moving the alias (servers watching it hot-swap) — at once (``promote: direct``), or
   after a shadow or canary phase on live traffic (:mod:`modelport.retraining.phases`): while a phase
   is in progress, ``run`` judges it instead of retraining. Every step lands in the audit trail
   (``retrain history``).

The training data is a Parquet dataset of labelled rows, or (``kind: prediction_log``) the requests
that were logged, joined with the labels that arrived for them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import modelport.audit as audit
from modelport.durations import parse_duration
from modelport.errors import InvalidInput, ModelportError
from modelport.model_version import ModelVersion
from modelport.retraining import phases
from modelport.retraining.policy import Policy, load_policy


@dataclass
class Decision:
    trigger: bool
    reasons: list[str]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    state: str  # skipped, failed, rejected, observing (a shadow or canary phase), promoted
    reasons: list[str]
    champion: str
    challenger: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reasons": self.reasons,
            "champion": self.champion,
            "challenger": self.challenger,
            "metrics": self.metrics,
            "message": self.message,
        }


def _client(client: Any) -> Any:
    from modelport.client import default_client

    return client or default_client()


def _policy(policy: Policy | str | Path) -> Policy:
    return policy if isinstance(policy, Policy) else load_policy(policy)


def check(policy: Policy | str | Path, client: Any = None, record: bool = True) -> Decision:
    """Would the policy retrain now, and why (recorded in the audit trail)."""
    from modelport.monitoring.store import MonitorStore

    p, c = _policy(policy), _client(client)
    champion = c.registry.get(f"{p.model}@{p.alias}")
    store = MonitorStore(c.meta.engine, c.settings.home)
    windows = store.results(champion.name, champion.version)
    recent = windows[-p.persistence :] if len(windows) >= p.persistence else []
    last_run = _last_run(c, champion.name)
    reasons: list[str] = []
    if p.dataset_drift and recent and all(r.dataset_drift for r in recent):
        cols = sorted({col for r in recent for col in r.drifted_columns})
        reasons.append(
            f"dataset drift in the last {len(recent)} window(s) (latest {recent[-1].drift_share:.0%} "
            f"of columns: {', '.join(cols)})"
        )
    if p.metric_drop and recent:
        metric, by = str(p.metric_drop["metric"]), float(p.metric_drop["by"])
        # the value registered with the champion (roc_auc is often registered as "auc"), else its
        # first monitored window
        baseline = champion.metrics.get(metric, champion.metrics.get(_SYNONYMS.get(metric, metric)))
        if baseline is None and windows:
            baseline = _metric(windows[0], metric)
        values = [_metric(r, metric) for r in recent]
        if baseline is not None and values and all(v is not None and baseline - v >= by for v in values):
            reasons.append(f"{metric} fell from {baseline:.4f} to {values[-1]:.4f} (by ≥ {by:g})")
    if p.min_new_labels:
        labels = store.labels(champion.name)
        new = labels if last_run is None else labels[labels["received_at"] > pd.Timestamp(last_run)]
        if len(new) >= p.min_new_labels:
            reasons.append(f"{len(new):,} new labels since the last run (≥ {p.min_new_labels:,})")
    if p.schedule:
        from modelport.scheduler.cron import CronSchedule

        since = last_run or champion.created_at
        due = CronSchedule.parse(p.schedule).next_after(since)
        if due <= datetime.now(UTC):
            reasons.append(f"scheduled ({p.schedule}; due {due:%Y-%m-%d %H:%M} UTC)")
    decision = Decision(bool(reasons), reasons, {"champion": champion.ref, "windows": len(windows)})
    route = phases.current(c, p)
    if route is not None:  # `run` judges the phase instead of retraining
        decision.details["phase"] = {"route": route.describe(), "until": route.ends_at, **route.details}
    if record:
        summary = "; ".join(reasons) if reasons else "no trigger fired"
        audit.record(
            c.meta.engine, champion.name, "check", summary, triggered=decision.trigger, reasons=reasons
        )
    return decision


def run(policy: Policy | str | Path, *, force: bool = False, client: Any = None) -> Outcome:
    """Check, and when triggered (or ``force``), retrain and promote only a better challenger."""
    p, c = _policy(policy), _client(client)
    route = phases.current(c, p)
    if route is not None:  # a shadow or canary phase in progress: judge it, do not retrain
        state, summary, live = phases.advance(p, c, route)
        info = route.details
        return Outcome(
            state, list(info.get("reasons", [])), info["champion"], route.ref, live.details, summary
        )
    decision = check(p, c)
    champion = c.registry.get(f"{p.model}@{p.alias}")
    reasons = decision.reasons or (["forced"] if force else [])
    if not decision.trigger and not force:
        return Outcome("skipped", [], champion.ref, message="no trigger fired")
    audit.record(c.meta.engine, champion.name, "run", "; ".join(reasons), champion=champion.ref)
    try:
        train, holdout, window = _data(p, c)
        model, code = _train(p, train)
    except ModelportError as exc:
        audit.record(c.meta.engine, champion.name, "failure", exc.message, champion=champion.ref)
        return Outcome("failed", reasons, champion.ref, message=exc.message)
    names = list(champion.signature.names)
    missing = [n for n in names if n not in holdout.columns]
    if missing:
        message = f"the training data lacks the champion's input column(s) {', '.join(missing)}"
        audit.record(c.meta.engine, champion.name, "failure", message, champion=champion.ref)
        return Outcome("failed", reasons, champion.ref, message=message)
    y = holdout[p.label].to_numpy()
    champion_score = _score(c.registry.load(champion), holdout[names], y, p.metric)
    lineage = {
        "retraining": {
            "trigger": reasons,
            "data": {
                "source": p.data_path or p.data_kind,
                "window": window,
                "rows": len(train),
                "holdout_rows": len(holdout),
            },
            "code": code,
            "champion": champion.ref,
            "policy": str(p.path) if p.path else None,
        }
    }
    try:
        mv = c.registry.register(
            model,
            champion.name,
            sample=train[names],
            tags={"retrained": "true", "trigger": "; ".join(reasons)[:200]},
            description=f"Retrained from {champion.ref}: {'; '.join(reasons)}",
            parent=champion.ref,
            lineage=lineage,
        )
    except ModelportError as exc:
        audit.record(c.meta.engine, champion.name, "failure", f"registration failed: {exc.message}")
        return Outcome("failed", reasons, champion.ref, message=exc.message)
    challenger_score = _score(c.registry.load(mv, runtime="native"), holdout[names], y, p.metric)
    metrics = {f"champion_{p.metric}": champion_score, f"challenger_{p.metric}": challenger_score}
    verdict = _gate(p, c, champion, mv, champion_score, challenger_score)
    details = {
        "champion": champion.ref,
        "challenger": mv.ref,
        **metrics,
        "min_improvement": p.min_improvement,
    }
    if verdict:
        audit.record(c.meta.engine, champion.name, "decision", f"kept {champion.ref}: {verdict}", **details)
        return Outcome("rejected", reasons, champion.ref, mv.ref, metrics, verdict)
    if p.promote != "direct":
        _, summary = phases.start(p, c, champion, mv, reasons, metrics)
        return Outcome("observing", reasons, champion.ref, mv.ref, metrics, summary)
    c.registry.set_alias(champion.name, mv.version, p.alias, reason=f"retrained: {'; '.join(reasons)}"[:500])
    summary = (
        f"promoted {mv.ref} to @{p.alias}: {p.metric} {challenger_score:.4f} vs {champion_score:.4f} "
        f"on the same holdout"
    )
    audit.record(c.meta.engine, champion.name, "promotion", summary, **details)
    return Outcome("promoted", reasons, champion.ref, mv.ref, metrics, summary)


def rollback(model: str, alias: str, client: Any = None) -> ModelVersion:
    """Point ``model@alias`` back at the version it pointed at before its last move (audited)."""
    c = _client(client)
    history = [e for e in c.meta.alias_history(model) if e["alias"] == alias]
    if not history or history[-1]["previous_version"] is None:
        raise InvalidInput(f"{model}@{alias} has no earlier version to roll back to.")
    last = history[-1]
    previous = int(last["previous_version"])
    mv = c.registry.set_alias(model, previous, alias, reason=f"rollback from {model}:{last['version']}")
    audit.record(
        c.meta.engine, model, "rollback", f"rolled @{alias} back from {model}:{last['version']} to {mv.ref}"
    )
    return mv


def history(model: str, client: Any = None) -> list[dict[str, Any]]:
    return audit.events(_client(client).meta.engine, model)


# --- helpers ---------------------------------------------------------------------------------------------


_SYNONYMS = {"roc_auc": "auc", "auc": "roc_auc"}


def _columns(mv: ModelVersion) -> Any:
    """What callers must send: column names and types (new categories are compatible), or the tensor."""
    sig = mv.signature
    if sig.columns is None:
        return sig.to_dict()
    return [(c.name, c.type) for c in sig.columns]


def _last_run(client: Any, model: str) -> datetime | None:
    runs = audit.events(client.meta.engine, model, ("run",))
    return datetime.fromisoformat(runs[-1]["at"]) if runs else None


def _metric(result: Any, metric: str) -> float | None:
    for perf in (result.performance, result.estimated_performance):
        if perf is not None and perf.metrics.get(metric) is not None:
            return float(perf.metrics[metric])
    return None


def _data(p: Policy, client: Any) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The labelled data of the window, split into training rows and the latest holdout by time."""
    if p.data_kind == "prediction_log":
        frame = _logged_with_labels(p, client)
    else:
        path = Path(p.data_path)
        if not path.exists():
            raise InvalidInput(f"The training data {p.data_path} does not exist.")
        frame = pd.read_parquet(path)
    if p.label not in frame.columns:
        raise InvalidInput(f"The training data has no label column '{p.label}'.")
    frame = frame[frame[p.label].notna()]
    window: dict[str, Any] = {"rows": len(frame)}
    if p.time_column:
        times = pd.to_datetime(frame[p.time_column], utc=True)
        if p.window:
            start = times.max() - parse_duration(p.window, what="train.data.window")
            frame, times = frame[times >= start], times[times >= start]
        order = np.argsort(times.to_numpy(), kind="stable")
        frame = frame.iloc[order]
        window.update(start=str(times.min()), end=str(times.max()), rows=len(frame))
    cut = round(len(frame) * (1 - p.holdout))
    train, holdout = frame.iloc[:cut], frame.iloc[cut:]
    if len(train) < 10 or len(holdout) < 10:
        raise InvalidInput(f"Too little labelled data to retrain: {len(frame)} rows in the window.")
    return train.reset_index(drop=True), holdout.reset_index(drop=True), window


def _logged_with_labels(p: Policy, client: Any) -> pd.DataFrame:
    """The requests servers and batch runs logged (canary answers included, shadow copies not),
    joined with the labels that arrived for them; the label column is named ``p.label``."""
    from modelport.monitoring.store import MonitorStore
    from modelport.predlog.reader import read_prediction_log

    name = p.model.split("@")[0].split(":")[0]
    since = None
    if p.window:
        since = datetime.now(UTC) - parse_duration(p.window, what="train.data.window")
    log = read_prediction_log(client.settings.home, name, since=since)
    if "role" in log:
        log = log[log["role"] != "shadow"]
    labels = MonitorStore(client.meta.engine, client.settings.home).labels(name)
    if not len(log) or not len(labels):
        raise InvalidInput(f"No logged predictions of {name} with labels to retrain on (see mp.log_labels).")
    inputs = {c: c[len("in_") :] for c in log.columns if c.startswith("in_")}
    frame = log[["request_id", "timestamp", *inputs]].rename(columns=inputs)
    frame = frame.assign(request_id=frame["request_id"].astype(str))
    joined = frame.merge(labels[["key", "label"]], left_on="request_id", right_on="key")
    return joined.drop(columns=["key"]).rename(columns={"label": p.label})


def _train(p: Policy, train: pd.DataFrame) -> tuple[Any, dict[str, Any]]:
    """Run the user's training function in its own process, with the policy's time limit."""
    import joblib

    module = p.entrypoint.partition(":")[0]
    source = p.base / (module.replace(".", "/") + ".py")
    code: dict[str, Any] = {
        "entrypoint": p.entrypoint,
        "file": str(source) if source.exists() else None,
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest() if source.exists() else None,
    }
    with tempfile.TemporaryDirectory(prefix="mp-retrain-") as tmp:
        data, out = Path(tmp) / "train.parquet", Path(tmp) / "model.joblib"
        train.to_parquet(data, index=False)
        argv = [
            sys.executable,
            "-m",
            "modelport.retraining.train_child",
            p.entrypoint,
            str(p.base),
            str(data),
            str(out),
        ]
        started = time.perf_counter()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=p.timeout)
        except subprocess.TimeoutExpired:
            raise InvalidInput(
                f"Training {p.entrypoint} did not finish within {p.timeout:g} s; it was stopped."
            ) from None
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise InvalidInput(
                f"Training {p.entrypoint} failed (exit {proc.returncode}): {' | '.join(tail) or 'no output'}"
            )
        code["seconds"] = round(time.perf_counter() - started, 2)
        return joblib.load(out), code


def _score(predictor: Any, data: pd.DataFrame, y: np.ndarray, metric: str) -> float:
    from modelport.monitoring.performance import classification_metrics, regression_metrics

    if predictor.task == "classifier":
        proba = np.asarray(predictor.predict_proba(data))
        classes = list(predictor.classes)
        pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        y_like = pd.Series(y).astype(type(classes[0])).to_numpy() if classes else y
        values = classification_metrics(y_like, pd.Series(pred).infer_objects().to_numpy(), proba, classes)
    else:
        values = regression_metrics(y, np.asarray(predictor.predict(data)))
    if metric not in values:
        raise InvalidInput(f"Cannot compute {metric} on the holdout (got {', '.join(values)}).")
    return float(values[metric])


def _gate(
    p: Policy, client: Any, champion: ModelVersion, challenger: ModelVersion, old: float, new: float
) -> str:
    """Why the challenger may not be promoted ("" when it may)."""
    if _columns(challenger) != _columns(champion):
        return "the challenger's signature differs from the champion's (servers would reject its inputs)"
    gain = p.improvement(new, old)
    if gain < p.min_improvement:
        return (
            f"{p.metric} {new:.4f} vs the champion's {old:.4f} on the same holdout: "
            f"improvement {gain:+.4f} < {p.min_improvement:g}"
        )
    twin = champion.compiled.get("onnx")
    if twin and twin.get("passed"):
        try:  # registration built and gated the challenger's twin already, unless compiling was off
            report = client.registry.parity_report(challenger.ref) or client.registry.compile(challenger.ref)
        except ModelportError as exc:
            return f"the champion runs a compiled twin, and the challenger does not compile: {exc.message}"
        if not report.passed:
            return f"the challenger's ONNX twin failed its parity gate ({report.summary()})"
    return ""
