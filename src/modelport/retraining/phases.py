"""Shadow and canary phases: a challenger that passed the holdout gate meets live traffic before
it is promoted.

:func:`start` stores a traffic route (source ``retraining``) that every server watching the model
follows: a **shadow** mirrors ``share`` of the requests to the challenger (its answers are logged,
never returned), a **canary** answers ``share`` of them with it. Each later ``retrain run`` of the
policy calls :func:`advance`, which compares the two versions on the labelled requests logged since
the phase began — for a shadow on the very same requests, for a canary on the requests each one
answered — and, once the phase's duration has passed with at least ``min_live_labels`` labelled rows,
promotes the challenger only if its live metric is at least the champion's plus the margin. Without
enough labels by ``max_duration`` the champion stays. Either way the route ends; every step is
audited (``phase``, ``promotion``, ``decision``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

import modelport.audit as audit
from modelport.model_version import ModelVersion
from modelport.refs import ModelRef
from modelport.retraining.policy import Policy
from modelport.traffic_routes import Route, active_routes, clear_routes, set_route

SOURCE = "retraining"
INPUT_PREFIX, PROBA_PREFIX = "in_", "proba_"


@dataclass
class Live:
    """The two versions on the labelled live requests of a phase."""

    rows: int = 0  # labelled rows each version is judged on (the smaller of the two for a canary)
    champion: float | None = None
    challenger: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self, metric: str) -> str:
        if self.champion is None or self.challenger is None:
            return f"{self.rows} labelled live row(s)"
        return (
            f"live {metric} {self.challenger:.4f} vs the champion's {self.champion:.4f} "
            f"on {self.rows} labelled row(s)"
        )


def current(client: Any, p: Policy) -> Route | None:
    """The policy's phase in progress, if any."""
    for route in active_routes(client.meta.engine, [ModelRef.parse(p.model).name]):
        if route.source == SOURCE and route.details.get("alias") == p.alias:
            return route
    return None


def start(
    p: Policy,
    client: Any,
    champion: ModelVersion,
    challenger: ModelVersion,
    reasons: list[str],
    metrics: dict[str, float],
) -> tuple[Route, str]:
    """Route live traffic to the challenger (audited); returns the route and its summary."""
    now = datetime.now(UTC)
    details = {
        "alias": p.alias,
        "champion": champion.ref,
        "challenger": challenger.ref,
        "metric": p.metric,
        "holdout": metrics,
        "reasons": reasons,
        "min_live_labels": p.min_live_labels,
        "give_up_at": (now + p.phase_limit).isoformat(),
    }
    route = set_route(
        client.meta.engine,
        champion.name,
        p.promote,
        challenger.ref,
        p.share,
        source=SOURCE,
        ends_at=now + p.phase,
        details=details,
    )
    summary = (
        f"{route.describe()} for {p.promote_duration} (holdout {p.metric} "
        f"{metrics.get(f'challenger_{p.metric}', float('nan')):.4f} vs "
        f"{metrics.get(f'champion_{p.metric}', float('nan')):.4f}); promoted on its live {p.metric} "
        f"once ≥ {p.min_live_labels} labelled rows"
    )
    audit.record(client.meta.engine, champion.name, "phase", summary, **details)
    return route, summary


def advance(p: Policy, client: Any, route: Route) -> tuple[str, str, Live]:
    """Judge a phase in progress: ``("observing" | "promoted" | "rejected", summary, live)``."""
    engine = client.meta.engine
    name = route.model
    info = route.details
    champion = client.registry.get(f"{name}@{p.alias}")
    live = compare(client, p, route, champion)
    now = datetime.now(UTC)
    if champion.ref != info["champion"]:  # someone moved the alias meanwhile: the phase is moot
        clear_routes(engine, name, route.kind)
        summary = f"ended the {route.kind} phase of {route.ref}: @{p.alias} moved to {champion.ref} meanwhile"
        audit.record(engine, name, "decision", summary, **info)
        return "rejected", summary, live
    if route.ends_at is not None and now < route.ends_at:
        until = route.ends_at.strftime("%Y-%m-%d %H:%M:%S")
        return "observing", f"{route.describe()} until {until} UTC; so far {live.summary(p.metric)}", live
    if live.rows < p.min_live_labels or live.champion is None or live.challenger is None:
        give_up = datetime.fromisoformat(info["give_up_at"])
        if now < give_up:
            return (
                "observing",
                f"{route.describe()}: waiting for labels ({live.rows} of {p.min_live_labels} labelled "
                f"rows) until {give_up:%Y-%m-%d %H:%M:%S} UTC",
                live,
            )
        why = f"only {live.rows} labelled live row(s) (< {p.min_live_labels})"
        return _keep(client, route, champion, why, live)
    gain = p.improvement(live.challenger, live.champion)
    if gain < p.live_min_improvement:
        why = f"{live.summary(p.metric)} (improvement {gain:+.4f} < {p.live_min_improvement:g})"
        return _keep(client, route, champion, why, live)
    version = int(route.ref.rsplit(":", 1)[1])
    client.registry.set_alias(name, version, p.alias, reason=f"{route.kind} phase passed"[:500])
    clear_routes(engine, name, route.kind)  # after the move: the canary's share never flips back
    summary = f"promoted {route.ref} to @{p.alias} after its {route.kind} phase: {live.summary(p.metric)}"
    audit.record(engine, name, "promotion", summary, **info, live=live.details)
    return "promoted", summary, live


def _keep(client: Any, route: Route, champion: ModelVersion, why: str, live: Live) -> tuple[str, str, Live]:
    """End the phase without promoting (audited)."""
    clear_routes(client.meta.engine, route.model, route.kind)
    summary = f"kept {champion.ref} after the {route.kind} phase of {route.ref}: {why}"
    audit.record(client.meta.engine, route.model, "decision", summary, **route.details, live=live.details)
    return "rejected", summary, live


def compare(client: Any, p: Policy, route: Route, champion: ModelVersion) -> Live:
    """Champion and challenger on the labelled requests logged since the phase began."""
    from modelport.monitoring.store import MonitorStore
    from modelport.predlog.reader import read_prediction_log

    log = read_prediction_log(client.settings.home, route.model, since=route.started_at)
    labels = MonitorStore(client.meta.engine, client.settings.home).labels(route.model)
    challenger_version = int(route.ref.rsplit(":", 1)[1])
    if not len(log) or not len(labels):
        return Live()
    log = log.assign(request_id=log["request_id"].astype(str))
    # rows of one request keep their order in every version's log: (request id, row number) pairs them
    log["row"] = log.groupby(["request_id", "version", "role"], sort=False).cumcount()
    old = log[(log["version"] == champion.version) & (log["role"] == "primary")]
    new = log[(log["version"] == challenger_version) & (log["role"] == route.kind)]
    if route.kind == "shadow":  # the very same requests
        pairs = old[["request_id", "row"]].merge(new[["request_id", "row"]], on=["request_id", "row"])
        old = old.merge(pairs, on=["request_id", "row"])
        new = new.merge(pairs, on=["request_id", "row"])
    old = old.merge(labels, left_on="request_id", right_on="key")
    new = new.merge(labels, left_on="request_id", right_on="key")
    details: dict[str, Any] = {"champion_rows": len(old), "challenger_rows": len(new)}
    if route.kind == "canary":
        for who, frame in (("champion", old), ("challenger", new)):
            if len(frame):
                latency = frame["latency_ms"].to_numpy(dtype=float)
                details[f"{who}_latency_p50_ms"] = float(np.percentile(latency, 50))
                details[f"{who}_latency_p99_ms"] = float(np.percentile(latency, 99))
    rows = min(len(old), len(new))
    if rows == 0:
        return Live(rows, details=details)
    a, b = _metric(old, p.metric), _metric(new, p.metric)
    details.update({f"champion_{p.metric}": a, f"challenger_{p.metric}": b})
    return Live(rows, a, b, details)


def _metric(frame: pd.DataFrame, metric: str) -> float | None:
    """``metric`` of logged predictions (and probabilities) against the joined ``label`` column."""
    from modelport.monitoring.performance import classification_metrics, regression_metrics

    proba_cols = [c for c in frame.columns if c.startswith(PROBA_PREFIX) and frame[c].notna().all()]
    if proba_cols:
        names = [c[len(PROBA_PREFIX) :] for c in proba_cols]
        numeric = all(n.lstrip("-").isdigit() for n in names)
        classes: list[Any] = [int(n) for n in names] if numeric else names
        y = pd.to_numeric(frame["label"], errors="coerce") if numeric else frame["label"].astype(str)
        keep = pd.notna(y).to_numpy()
        proba = frame[proba_cols].to_numpy(dtype=float)[keep]
        pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        y_true = np.asarray(y)[keep].astype(np.int64) if numeric else np.asarray(y)[keep]
        values = classification_metrics(y_true, pd.Series(pred).infer_objects().to_numpy(), proba, classes)
    else:
        y_reg = pd.to_numeric(frame["label"], errors="coerce").to_numpy(dtype=float)
        pred_reg = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(dtype=float)
        keep = ~(np.isnan(y_reg) | np.isnan(pred_reg))
        values = regression_metrics(y_reg[keep], pred_reg[keep])
    value = values.get(metric)
    return None if value is None or not np.isfinite(value) else float(value)
