"""The monitoring report: one self-contained HTML file built from a :class:`DriftResult` dict.

The result becomes a typed view (:class:`ReportView`: plain text and numbers, the charts as
geometry from ``report_charts``), which the Jinja2 templates shipped in
``modelport/monitoring/templates`` render with autoescaping on: no user-provided string (a
column name, a category, an event) reaches the page unescaped. Everything is inline — CSS, the
SVG charts, the result itself as JSON in a ``<script type="application/json"
id="modelport-result">`` block — so the file opens without a network and carries the same data
as ``DriftResult.to_json``. No JS library, font or image is loaded; a few lines of inline JS only
make the tables sortable and the JSON downloadable.

>>> html = render_html(result.to_dict(), timeline)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from modelport.monitoring.report_charts import (
    BarChart,
    LineChart,
    SeriesData,
    bar_chart,
    line_chart,
    y_range,
)
from modelport.monitoring.report_format import (
    DRIFT_COLOR,
    METRIC_COLORS,
    OK_COLOR,
    finite,
    fmt,
    int_text,
    num,
    parse_time,
    pct,
    result_json_for_html,
    rule,
    tick_pct,
    when,
)
from modelport.monitoring.results import P_VALUE_TESTS

__all__ = ["ReportView", "build_view", "render_html", "result_json_for_html"]

# --- the typed view the templates render -------------------------------------------------------------


@dataclass(frozen=True)
class PerfView:
    estimated: bool
    task: str
    note: str
    metrics: tuple[tuple[str, str], ...]  # (name, formatted value), sorted by name


@dataclass(frozen=True)
class PredictionSummary:
    drifted: bool
    test: str
    statistic: str
    p_value: bool
    rule: str


@dataclass(frozen=True)
class Summary:
    dataset_drift: bool
    drifted_columns: int
    columns: int
    share: str
    comparison: str  # "≥" or "<" the threshold
    threshold: str
    prediction: PredictionSummary | None
    quality_issues: int
    quality_errors: int
    current_rows: str
    reference_rows: str
    sample_note: str
    performance: tuple[PerfView, ...]


@dataclass(frozen=True)
class ColumnRow:
    name: str
    kind: str
    test: str
    statistic: str
    statistic_sort: str  # data-v: repr of the finite statistic, "" when there is none
    p_value: bool
    rule: str
    threshold_sort: float
    drifted: bool
    note: str
    counts: str
    count_sort: float
    anchor: int | None  # the index of its distribution card, when it has one
    prediction: bool


@dataclass(frozen=True)
class DistributionCard:
    index: int
    name: str
    kind: str
    test: str
    statistic: str
    drifted: bool
    prediction: bool
    chart: BarChart | None


@dataclass(frozen=True)
class QualityRow:
    severity: str
    column: str
    check: str
    message: str
    current: str
    reference: str


@dataclass(frozen=True)
class MetricTimeline:
    name: str
    chart: LineChart


@dataclass(frozen=True)
class EventRow:
    window_end: str
    version: str
    event: str


@dataclass(frozen=True)
class Timelines:
    split: bool  # versions monitored side by side: one line per version
    drift: LineChart
    metrics: tuple[MetricTimeline, ...]
    events: tuple[EventRow, ...]


@dataclass(frozen=True)
class ReportView:
    model: str
    version: str
    window: str  # "" when the result came from explicit data
    computed_at: str
    dataset_drift: bool
    json_name: str
    summary: Summary
    prediction_row: ColumnRow | None
    column_rows: tuple[ColumnRow, ...]
    distributions: tuple[DistributionCard, ...]
    quality: tuple[QualityRow, ...]
    timelines: Timelines | None  # None: no stored windows yet
    result_json: Markup
    timeline_json: Markup


# --- building it -------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _perf(perf: Any, estimated_default: bool) -> PerfView | None:
    if not isinstance(perf, dict):
        return None
    estimated = bool(perf.get("estimated", estimated_default))
    metrics = perf.get("metrics") or {}
    rows = int_text(perf.get("labelled_rows"))
    note = "estimated without labels (CBPE)" if estimated else f"{rows} labelled rows"
    return PerfView(
        estimated=estimated,
        task=_text(perf.get("task", "")),
        note=note,
        metrics=tuple((str(k), fmt(v)) for k, v in sorted(metrics.items())),
    )


def _summary(r: dict[str, Any]) -> Summary:
    columns = r.get("columns") or []
    share = finite(r.get("drift_share")) or 0.0
    thr = finite(r.get("drift_share_threshold"))
    pred = r.get("prediction")
    prediction = None
    if isinstance(pred, dict):
        test = str(pred.get("test"))
        prediction = PredictionSummary(
            drifted=bool(pred.get("drifted")),
            test=_text(pred.get("test")),
            statistic=fmt(pred.get("statistic")),
            p_value=pred.get("test") in P_VALUE_TESTS,
            rule=rule(test, pred.get("threshold")),
        )
    quality = r.get("quality") or []
    perf = (_perf(r.get("performance"), False), _perf(r.get("estimated_performance"), True))
    return Summary(
        dataset_drift=bool(r.get("dataset_drift")),
        drifted_columns=sum(1 for c in columns if c.get("drifted")),
        columns=len(columns),
        share=pct(share),
        comparison="≥" if thr is not None and share >= thr else "<",
        threshold=pct(thr),
        prediction=prediction,
        quality_issues=len(quality),
        quality_errors=sum(1 for q in quality if q.get("severity") == "error"),
        current_rows=int_text(r.get("current_rows")),
        reference_rows=int_text(r.get("reference_rows")),
        sample_note=_text(r.get("sample_note")),
        performance=tuple(p for p in perf if p is not None),
    )


def _column_row(c: dict[str, Any], anchor: int | None, is_pred: bool) -> ColumnRow:
    test = str(c.get("test", ""))
    stat = finite(c.get("statistic"))
    return ColumnRow(
        name=_text(c.get("column")),
        kind=_text(c.get("kind")),
        test=test,
        statistic=fmt(c.get("statistic")),
        statistic_sort="" if stat is None else repr(stat),
        p_value=test in P_VALUE_TESTS,
        rule=rule(test, c.get("threshold")),
        threshold_sort=finite(c.get("threshold")) or 0,
        drifted=bool(c.get("drifted")),
        note=_text(c.get("note")),
        counts=f"{int_text(c.get('reference_count'))} / {int_text(c.get('current_count'))}",
        count_sort=finite(c.get("current_count")) or 0,
        anchor=anchor,
        prediction=is_pred,
    )


def _distributions(r: dict[str, Any]) -> tuple[DistributionCard, ...]:
    cols: list[tuple[dict[str, Any], bool]] = []
    if isinstance(r.get("prediction"), dict):
        cols.append((r["prediction"], True))
    cols += [(c, False) for c in r.get("columns") or []]
    return tuple(
        DistributionCard(
            index=i,
            name=_text(c.get("column")),
            kind=_text(c.get("kind")),
            test=_text(c.get("test")),
            statistic=fmt(c.get("statistic")),
            drifted=bool(c.get("drifted")),
            prediction=is_pred,
            chart=bar_chart(c, i),
        )
        for i, (c, is_pred) in enumerate(cols)
    )


def _quality(r: dict[str, Any]) -> tuple[QualityRow, ...]:
    order = {"error": 0, "warning": 1}
    quality = sorted(r.get("quality") or [], key=lambda q: order.get(str(q.get("severity")), 2))
    return tuple(
        QualityRow(
            severity=_text(q.get("severity")),
            column=_text(q.get("column")),
            check=_text(q.get("check")),
            message=_text(q.get("message")),
            current=fmt(q.get("current")),
            reference=fmt(q.get("reference")),
        )
        for q in quality
    )


def _timelines(r: dict[str, Any], timeline: list[dict[str, Any]]) -> Timelines | None:
    points = [t for t in timeline if isinstance(t, dict)]
    if not points:
        return None
    times = [parse_time(t.get("window_end") or t.get("window_start")) for t in points]
    if all(t is not None for t in times):
        order = sorted(range(len(points)), key=lambda i: (times[i], num(points[i].get("version")) or 0))
        points = [points[i] for i in order]
        stamps = [times[i] for i in order]
        xs = [t.timestamp() for t in stamps if t is not None]
        fmt_ = "%m-%d %H:%M" if xs[-1] - xs[0] < 3 * 86400 else "%Y-%m-%d"
        xlabels = [t.astimezone(UTC).strftime(fmt_) for t in stamps if t is not None]
    else:
        xs = [float(i) for i in range(len(points))]
        xlabels = [when(t.get("window_end")) or f"#{i + 1}" for i, t in enumerate(points)]
    versions = [t.get("version") for t in points]
    events = [[str(e) for e in (t.get("events") or [])] for t in points]
    # Versions monitored side by side (canary, shadow) get a line each; otherwise one line with a
    # marker where a new version took over.
    vkeys = list(dict.fromkeys(str(v) for v in versions))
    split = len(vkeys) > 1 and len(set(xs)) < len(xs)

    def per_version(values: list[float | None], name: str, color: str, dashed: bool) -> list[SeriesData]:
        if not split:
            return [SeriesData(name, values, color, dashed)] if any(v is not None for v in values) else []
        out: list[SeriesData] = []
        for j, key in enumerate(vkeys):
            mine = [v if str(versions[i]) == key else None for i, v in enumerate(values)]
            if any(v is not None for v in mine):
                suffix = " estimated" if dashed else (" actual" if name.endswith("(actual)") else "")
                out.append(SeriesData(f"v{key}{suffix}", mine, METRIC_COLORS[j % len(METRIC_COLORS)], dashed))
        return out

    common: dict[str, Any] = {
        "xs": xs,
        "xlabels": xlabels,
        "versions": versions,
        "version_marks": not split,
        "connect": split,
        "events": events,
    }
    shares = [finite(t.get("drift_share")) for t in points]
    drift = line_chart(
        css_class="timeline drift-timeline",
        label="Share of drifted columns per window",
        series=per_version(shares, "share of drifted columns", METRIC_COLORS[0], False),
        y_range=(0.0, 1.0),
        y_fmt=tick_pct,
        y_title="drifted columns",
        threshold=finite(r.get("drift_share_threshold")),
        point_colors=[DRIFT_COLOR if t.get("dataset_drift") else OK_COLOR for t in points],
        **common,
    )
    names: list[str] = []
    for t in points:
        for key in ("metrics", "estimated_metrics"):
            for k in t.get(key) or {}:
                if str(k) not in names:
                    names.append(str(k))
    metrics = []
    for m_i, name in enumerate(names):
        actual = [finite((t.get("metrics") or {}).get(name)) for t in points]
        est = [finite((t.get("estimated_metrics") or {}).get(name)) for t in points]
        values = [v for v in actual + est if v is not None]
        if not values:
            continue
        color = METRIC_COLORS[m_i % len(METRIC_COLORS)]
        series = per_version(actual, f"{name} (actual)", color, False)
        series += per_version(est, f"{name} (estimated)", color, True)
        chart = line_chart(
            css_class="timeline metric-timeline",
            label=f"{name} per window, actual and estimated",
            series=series,
            y_range=y_range(values),
            y_fmt=fmt,
            y_title=name,
            **common,
        )
        metrics.append(MetricTimeline(name, chart))
    rows = tuple(
        EventRow(when(t.get("window_end") or t.get("window_start")), _text(t.get("version")), e)
        for t, evs in zip(points, events, strict=True)
        for e in evs
    )
    return Timelines(split=split, drift=drift, metrics=tuple(metrics), events=rows)


def build_view(result: dict[str, Any], timeline: list[dict[str, Any]]) -> ReportView:
    """The typed view of one :meth:`DriftResult.to_dict` and its ``timeline`` (see :func:`render_html`)."""
    r = result
    model, version = _text(r.get("model", "")), _text(r.get("version", ""))
    start, end = r.get("window_start"), r.get("window_end")
    columns = r.get("columns") or []
    pred = r.get("prediction")
    offset = 1 if isinstance(pred, dict) else 0
    return ReportView(
        model=model,
        version=version,
        window=f"{when(start)} → {when(end)}" if start or end else "",
        computed_at=when(r.get("computed_at")) if r.get("computed_at") else "",
        dataset_drift=bool(r.get("dataset_drift")),
        json_name=f"{model}-v{version}-drift.json".replace("/", "_"),
        summary=_summary(r),
        prediction_row=_column_row(pred, 0, True) if isinstance(pred, dict) else None,
        column_rows=tuple(_column_row(c, i + offset, False) for i, c in enumerate(columns)),
        distributions=_distributions(r),
        quality=_quality(r),
        timelines=_timelines(r, timeline),
        # JSON made safe for a <script> element (<, >, & escaped): nothing in it can close the block
        result_json=Markup(result_json_for_html(r)),
        timeline_json=Markup(result_json_for_html(timeline)),
    )


# --- rendering ---------------------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("modelport.monitoring", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2", "svg.j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["f1"] = lambda v: f"{v:.1f}"
    return env


def render_html(result: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    """The report of one :meth:`DriftResult.to_dict` with the ``timeline`` of stored windows
    (``window_start``, ``window_end``, ``version``, ``drift_share``, ``dataset_drift``, ``metrics``,
    ``estimated_metrics``, ``events``), as one self-contained HTML document."""
    return _environment().get_template("report.html.j2").render(view=build_view(result, timeline))
