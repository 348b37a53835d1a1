"""A monitoring run: the training reference against production data, per model version and window.

>>> res = mp.monitor("credit@production", window="1d")          # doctest: +SKIP
>>> res.dataset_drift, res.drifted_columns                         # doctest: +SKIP
>>> res.to_html("credit-report.html")                              # doctest: +SKIP

The reference is the sample stored at registration (with the model's own predictions on it, for
prediction drift). The current data is the prediction log (what servers answered and what batch
runs logged) of that version in the window, or a frame passed explicitly. Labels that arrived
(:func:`log_labels`) are joined on the request id for actual performance; for classifiers the
performance of every row is also estimated from the predicted probabilities (CBPE).
"""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from modelport.durations import parse_duration
from modelport.errors import InvalidInput
from modelport.model_version import ModelVersion
from modelport.monitoring.results import DriftResult, Performance
from modelport.monitoring.store import MonitorStore

log = logging.getLogger(__name__)
DEFAULT_SAMPLE = 100_000
INPUT_PREFIX, PROBA_PREFIX = "in_", "proba_"


def _client(client: Any) -> Any:
    from modelport.client import default_client

    return client or default_client()


def store_for(client: Any = None) -> MonitorStore:
    c = _client(client)
    return MonitorStore(c.meta.engine, c.settings.home)


def parse_window(window: str | timedelta) -> timedelta:
    return parse_duration(window, what="window")


def monitor(
    ref: str,
    current: Any = None,
    *,
    window: str | timedelta = "1d",
    since: Any = None,
    until: Any = None,
    drift_share: float = 0.5,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    sample_size: int = DEFAULT_SAMPLE,
    save: bool = True,
    alerts: Mapping[str, Any] | None = None,
    target: str | None = None,
    client: Any = None,
) -> DriftResult:
    """Drift, data quality and performance of ``ref`` in one window (the last ``window`` up to
    ``until``, default now), or on ``current`` (a DataFrame of model inputs) when given.

    ``tests`` overrides the test per column (``{"income": "psi"}``), ``thresholds`` its threshold.
    The result is stored (``save``) for timelines and alerts; ``alerts`` (``{"webhook": url,
    "rules": [...]}``) are evaluated on it. ``target`` names a column of ``current`` holding the
    true outcomes, for the actual performance of an explicit frame.
    """
    c = _client(client)
    mv = c.registry.get(ref)
    end = _utc(until) or datetime.now(UTC)
    start = _utc(since) or end - parse_window(window)
    window_bounds: tuple[str | None, str | None]
    if current is None:
        frame = _logged(c, mv, start, end, sample_size)
        window_bounds = (start.isoformat(), end.isoformat())
    else:
        frame = _explicit(current, mv)
        window_bounds = (None, None)
    if target is not None and target not in frame.columns:
        raise InvalidInput(f"The current data has no target column '{target}'.")
    result = _compute(c, mv, frame, window_bounds, drift_share, tests, thresholds, sample_size, target)
    if save:
        store = MonitorStore(c.meta.engine, c.settings.home)
        store.save(result)
        if alerts:
            evaluate_alerts(result, alerts, store)
    return result


def monitor_windows(
    ref: str, *, window: str | timedelta = "1d", since: Any, until: Any = None, **kwargs: Any
) -> list[DriftResult]:
    """One result per ``window`` from ``since`` to ``until`` (windows without data are skipped)."""
    step = parse_window(window)
    start = _utc(since)
    end = _utc(until) or datetime.now(UTC)
    if start is None or start >= end:
        raise InvalidInput("'since' must be a time before 'until' (ISO dates, e.g. 2026-11-01).")
    results = []
    while start < end:
        stop = min(start + step, end)
        with contextlib.suppress(_NoData):  # a window without data has nothing to say
            results.append(monitor(ref, window=step, since=start, until=stop, **kwargs))
        start = stop
    return results


class _NoData(InvalidInput):
    pass


def log_labels(
    model: str, frame: Any, key: str = "request_id", label: str = "label", client: Any = None
) -> int:
    """Store true outcomes that arrived (``frame[label]`` per ``frame[key]``); returns rows stored.

    >>> mp.log_labels("credit", outcomes, key="request_id", label="defaulted")   # doctest: +SKIP
    """
    from modelport.refs import ModelRef

    name = ModelRef.parse(model).name
    if not isinstance(frame, pd.DataFrame):
        from modelport.schema.frames import to_pandas_frame

        frame = to_pandas_frame(frame)
    return store_for(client).add_labels(name, frame, key, label)


def timeline(model: str, client: Any = None) -> list[dict[str, Any]]:
    """Every stored window of ``model``: drift share, dataset drift, metrics (actual and estimated)."""
    from modelport.audit import events as audit_events
    from modelport.refs import ModelRef

    name = ModelRef.parse(model).name
    c = _client(client)
    kinds = ("phase", "promotion", "rollback", "failure")
    trail = [e for e in audit_events(c.meta.engine, name) if e["kind"] in kinds]
    out: list[dict[str, Any]] = []
    for r in store_for(c).results(name):
        out.append(
            {
                "window_start": r.window_start,
                "window_end": r.window_end,
                "version": r.version,
                "drift_share": r.drift_share,
                "dataset_drift": r.dataset_drift,
                "drifted_columns": r.drifted_columns,
                "metrics": dict(r.performance.metrics) if r.performance else {},
                "labelled_rows": r.performance.labelled_rows if r.performance else 0,
                "estimated_metrics": dict(r.estimated_performance.metrics) if r.estimated_performance else {},
                "events": [],
            }
        )
    for e in trail:  # each retraining event goes to the first window that ends after it
        at = e["at"]
        target = next((w for w in out if w["window_end"] and w["window_end"] >= at), out[-1] if out else None)
        if target is not None:
            target["events"].append(f"{e['kind']}: {e['summary']}")
    return out


# --- the computation ---------------------------------------------------------------------------------


def _logged(
    client: Any, mv: ModelVersion, start: datetime, end: datetime, sample_size: int = DEFAULT_SAMPLE
) -> pd.DataFrame:
    from modelport.predlog.reader import read_prediction_log

    frame = read_prediction_log(
        client.settings.home, mv.name, since=start, until=end, version=mv.version, sample=sample_size
    )
    total = frame.attrs.get("rows_before_sampling", len(frame))
    if len(frame) and "role" in frame:
        frame = frame[frame["role"] != "shadow"]
    if not len(frame):
        raise _NoData(
            f"No predictions of {mv.ref} were logged between {start:%Y-%m-%d %H:%M} "
            f"and {end:%Y-%m-%d %H:%M} UTC."
        )
    rename = {c: c[len(INPUT_PREFIX) :] for c in frame.columns if c.startswith(INPUT_PREFIX)}
    out = frame.rename(columns=rename).reset_index(drop=True)
    out.attrs["rows_before_sampling"] = max(total, len(out))
    return out


def _explicit(current: Any, mv: ModelVersion) -> pd.DataFrame:
    from modelport.schema.frames import to_pandas_frame

    frame = current if isinstance(current, pd.DataFrame) else to_pandas_frame(current)
    if not len(frame):
        raise InvalidInput("The current data is empty.")
    return frame.reset_index(drop=True)


def _compute(
    client: Any,
    mv: ModelVersion,
    frame: pd.DataFrame,
    window: tuple[str | None, str | None],
    drift_share: float,
    tests: Mapping[str, str] | None,
    thresholds: Mapping[str, float] | None,
    sample_size: int,
    target: str | None = None,
) -> DriftResult:
    from modelport.monitoring.drift import column_drift, dataset_drift
    from modelport.monitoring.quality import data_quality

    reference = client.registry.reference_sample(mv)
    if reference is None:
        raise InvalidInput(f"{mv.ref} has no reference sample (register it with sample=...) to compare with.")
    columns = [c for c in mv.signature.names if c in reference.columns]
    note = ""
    total = max(len(frame), int(frame.attrs.get("rows_before_sampling", 0)))
    if total > len(frame):
        note = f"current data sampled to {len(frame):,} of {total:,} rows"
    elif total > sample_size:
        frame = frame.sample(n=sample_size, random_state=0).reset_index(drop=True)
        note = f"current data sampled to {sample_size:,} of {total:,} rows"
    present = [c for c in columns if c in frame.columns]
    drifts, share, drifted = dataset_drift(
        reference[present],
        frame[present],
        columns=present,
        tests=dict(tests or {}),
        thresholds=dict(thresholds or {}),
        drift_share=drift_share,
    )
    for col in drifts:
        col.reference_missing = float(reference[col.column].isna().mean())
        col.current_missing = float(frame[col.column].isna().mean())
    quality = data_quality(
        reference[columns], frame[[c for c in frame.columns if c in columns]], mv.signature
    )
    predictor = client.registry.load(mv)
    ref_scores, score_kind = _scores(predictor, reference[columns])
    cur_scores = _logged_scores(frame, predictor, score_kind)
    if cur_scores is None:  # an explicit frame without predictions: score it
        cur_scores, _ = _scores(predictor, frame[columns])
    prediction = column_drift(
        "prediction",
        pd.Series(ref_scores),
        pd.Series(cur_scores),
        kind=score_kind,
        test=(tests or {}).get("prediction"),
        threshold=(thresholds or {}).get("prediction"),
    )
    actual, estimated = _performance(client, mv, frame, predictor)
    if target is not None:
        actual = _target_performance(predictor, frame, columns, target)
    return DriftResult(
        model=mv.name,
        version=mv.version,
        window_start=window[0],
        window_end=window[1],
        reference_rows=len(reference),
        current_rows=total,
        columns=drifts,
        prediction=prediction,
        drift_share=share,
        drift_share_threshold=drift_share,
        dataset_drift=drifted,
        quality=quality,
        performance=actual,
        estimated_performance=estimated,
        sample_note=note,
        computed_at=datetime.now(UTC).isoformat(),
    )


def _positive(predictor: Any) -> Any:
    classes = predictor.classes
    return classes[1] if classes is not None and len(classes) == 2 else None


def _scores(predictor: Any, data: pd.DataFrame) -> tuple[np.ndarray, str]:
    """What prediction drift compares: P(positive) for binary classifiers, else the prediction."""
    if predictor.task == "classifier" and _positive(predictor) is not None:
        proba = predictor.predict_proba(data)
        return np.asarray(proba)[:, 1].astype(float), "numeric"
    pred = np.asarray(predictor.predict(data))
    kind = "numeric" if pred.dtype.kind in "fiu" and predictor.task != "classifier" else "categorical"
    return pred, kind


def _logged_scores(frame: pd.DataFrame, predictor: Any, kind: str) -> np.ndarray | None:
    pos = _positive(predictor)
    if predictor.task == "classifier" and pos is not None:
        col = f"{PROBA_PREFIX}{pos}"
        return frame[col].to_numpy(dtype=float) if col in frame else None
    return frame["prediction"].to_numpy() if "prediction" in frame else None


def _performance(
    client: Any, mv: ModelVersion, frame: pd.DataFrame, predictor: Any
) -> tuple[Performance | None, Performance | None]:
    from modelport.monitoring.cbpe import cbpe
    from modelport.monitoring.performance import performance

    classes = predictor.classes
    proba_cols = [f"{PROBA_PREFIX}{c}" for c in classes] if classes is not None else []
    has_proba = bool(proba_cols) and all(c in frame for c in proba_cols)
    estimated = None
    if predictor.task == "classifier" and classes is not None:
        if has_proba:
            proba_all = frame[proba_cols].to_numpy(dtype=float)
        else:  # an explicit frame: the model's own probabilities
            cols = [c for c in mv.signature.names if c in frame.columns]
            proba_all = np.asarray(predictor.predict_proba(frame[cols]), dtype=float)
        estimated = cbpe(proba_all, list(classes))
    actual = None
    if "request_id" in frame and "prediction" in frame:
        labels = MonitorStore(client.meta.engine, client.settings.home).labels(mv.name)
        if len(labels):
            joined = frame.merge(labels, left_on=frame["request_id"].astype(str), right_on="key", how="inner")
            if len(joined):
                y_true = _like(joined["label"], classes)
                proba = joined[proba_cols].to_numpy(dtype=float) if has_proba else None
                actual = performance(
                    predictor.task or "regressor",
                    y_true,
                    joined["prediction"].to_numpy(),
                    proba,
                    list(classes) if classes is not None else None,
                )
    return actual, estimated


def _target_performance(predictor: Any, frame: pd.DataFrame, columns: list[str], target: str) -> Performance:
    """Actual performance of an explicit frame that carries its outcomes in ``target``."""
    from modelport.monitoring.performance import performance

    labelled = frame[frame[target].notna()]
    data = labelled[columns]
    proba = None
    if predictor.task == "classifier":
        proba = np.asarray(predictor.predict_proba(data))
        classes = list(predictor.classes)
        y_pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)] if len(proba) else np.array([])
        y_pred = pd.Series(y_pred).infer_objects().to_numpy()
    else:
        classes, y_pred = None, np.asarray(predictor.predict(data))
    y_true = _like(labelled[target], classes)
    return performance(predictor.task or "regressor", y_true, y_pred, proba, classes)


def _like(labels: pd.Series, classes: Sequence[Any] | None) -> np.ndarray:
    """Labels in the type of the model's classes (labels from CSV arrive as text)."""
    if classes and all(isinstance(c, int | np.integer) for c in classes):
        return pd.to_numeric(labels, errors="coerce").to_numpy()
    if classes and all(isinstance(c, str) for c in classes):
        return labels.astype(str).to_numpy()
    return labels.to_numpy()


# --- alerts --------------------------------------------------------------------------------------------


def evaluate_alerts(
    result: DriftResult, alerts: Mapping[str, Any], store: MonitorStore
) -> list[dict[str, Any]]:
    """Check each rule on ``result``; POST a webhook once when a rule starts firing (an incident).

    Rules: ``{dataset_drift: true}``, ``{column_drift: income}``, ``{prediction_drift: true}``,
    ``{metric_below: {metric: roc_auc, value: 0.7}}`` (actual, else estimated performance),
    ``{missing_share_above: {column: income, value: 0.2}}``. The body is JSON with a Slack-compatible
    ``text`` field plus ``model``, ``version``, ``rule`` and ``detail``.
    """
    sent = []
    webhook = alerts.get("webhook")
    for rule in alerts.get("rules", []):
        firing, detail = _fires(rule, result)
        key = json.dumps(rule, sort_keys=True, default=str)
        if store.incident(result.model, key, firing, detail) and webhook:
            body = {
                "text": f":rotating_light: modelport alert for {result.model}:{result.version} — {detail}",
                "model": result.model,
                "version": result.version,
                "rule": rule,
                "detail": detail,
                "window_start": result.window_start,
                "window_end": result.window_end,
            }
            _post(str(webhook), body)
            sent.append(body)
    return sent


def _fires(rule: Mapping[str, Any], r: DriftResult) -> tuple[bool, str]:
    if "dataset_drift" in rule:
        return bool(r.dataset_drift) == bool(rule["dataset_drift"]) and r.dataset_drift, (
            f"dataset drift: {r.drift_share:.0%} of columns drifted ({', '.join(r.drifted_columns)})"
        )
    if "column_drift" in rule:
        col = next((c for c in r.columns if c.column == rule["column_drift"]), None)
        if col is None:
            return False, f"column {rule['column_drift']} not monitored"
        return (
            col.drifted,
            f"column {col.column} drifted ({col.test} {col.statistic:.4g} vs {col.threshold:g})",
        )
    if "prediction_drift" in rule:
        p = r.prediction
        return bool(
            p and p.drifted
        ), f"prediction drift ({p.test} {p.statistic:.4g})" if p else "no predictions"
    if "metric_below" in rule:
        spec = rule["metric_below"]
        metric, floor = spec["metric"], float(spec["value"])
        perf = r.performance or r.estimated_performance
        value = perf.metrics.get(metric) if perf else None
        if value is None:
            return False, f"{metric} not available"
        kind = "estimated " if perf is r.estimated_performance else ""
        return value < floor, f"{kind}{metric} {value:.4f} below {floor:g}"
    if "missing_share_above" in rule:
        spec = rule["missing_share_above"]
        col = next((c for c in r.columns if c.column == spec["column"]), None)
        share = col.current_missing if col is not None and col.current_missing is not None else 0.0
        limit = float(spec["value"])
        return share > limit, f"column {spec['column']} is {share:.1%} missing (above {limit:.0%})"
    raise InvalidInput(f"Unknown alert rule {dict(rule)}; see modelport.monitoring.monitor.evaluate_alerts.")


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body, default=str).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # the user's own webhook URL
            resp.read()
    except OSError as exc:  # a failed delivery is logged; the incident stays open (not resent)
        log.error("alert webhook %s failed: %s", url, exc)


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    elif not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
