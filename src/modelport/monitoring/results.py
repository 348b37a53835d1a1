"""What a monitoring run finds: per-column drift, data quality, performance — as plain dataclasses
that serialise to JSON (stored per model version and window, drawn as timelines and reports)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Drift tests (see modelport.monitoring.stats): the statistic each reports and how it is compared.
P_VALUE_TESTS = ("ks", "chisquare", "z")  # drift when p-value < threshold (KS: <=)
DISTANCE_TESTS = ("wasserstein", "jensenshannon", "psi")  # drift when distance >= threshold


@dataclass
class Histogram:
    """Chart data: for numeric columns ``edges`` (len k+1) and counts per bin; for categorical
    columns ``categories`` and counts. Counts of reference and current share the same bins."""

    reference: list[float]
    current: list[float]
    edges: list[float] | None = None
    categories: list[str] | None = None


@dataclass
class ColumnDrift:
    column: str
    kind: str  # "numeric" or "categorical"
    test: str  # one of P_VALUE_TESTS + DISTANCE_TESTS
    statistic: float  # the p-value (tests) or the distance (distances)
    threshold: float
    drifted: bool
    reference_count: int  # non-null values compared
    current_count: int
    histogram: Histogram | None = None
    note: str = ""  # e.g. "current column is empty"
    reference_missing: float | None = None  # share of nulls
    current_missing: float | None = None

    @property
    def is_p_value(self) -> bool:
        return self.test in P_VALUE_TESTS


@dataclass
class QualityIssue:
    column: str
    check: str  # missing_share, out_of_range, new_category, schema, empty_column
    message: str
    current: float | None = None  # e.g. the current missing share or the share out of range
    reference: float | None = None
    severity: str = "warning"  # "warning" or "error"


@dataclass
class Performance:
    task: str  # classifier / regressor
    metrics: dict[str, float]
    labelled_rows: int
    estimated: bool = False  # True for CBPE estimates (no labels yet)


@dataclass
class DriftResult:
    """One model version, one window: reference (training sample) vs current data."""

    model: str
    version: int
    window_start: str | None  # ISO times (UTC), None for an explicit frame
    window_end: str | None
    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    prediction: ColumnDrift | None = None
    drift_share: float = 0.0  # share of drifted columns
    drift_share_threshold: float = 0.5
    dataset_drift: bool = False
    quality: list[QualityIssue] = field(default_factory=list)
    performance: Performance | None = None
    estimated_performance: Performance | None = None
    sample_note: str = ""  # "current sampled to 100,000 of 1,000,000 rows", when sampled
    computed_at: str = ""

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drifted_columns"] = self.drifted_columns
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), default=str, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftResult:
        data = {k: v for k, v in data.items() if k != "drifted_columns"}

        def col(d: dict[str, Any] | None) -> ColumnDrift | None:
            if d is None:
                return None
            d = dict(d)
            h = d.pop("histogram", None)
            return ColumnDrift(**d, histogram=Histogram(**h) if h else None)

        data["columns"] = [col(c) for c in data.get("columns", [])]
        data["prediction"] = col(data.get("prediction"))
        data["quality"] = [QualityIssue(**q) for q in data.get("quality", [])]
        for key in ("performance", "estimated_performance"):
            if data.get(key) is not None:
                data[key] = Performance(**data[key])
        return cls(**data)

    def to_html(self, path: Any = None, timeline: list[dict[str, Any]] | None = None) -> str:
        """A self-contained HTML report (no network needed to view it); written to ``path`` if given."""
        from pathlib import Path

        from modelport.monitoring.report import render_html

        html = render_html(self.to_dict(), timeline or [])
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html
