"""The report's charts as typed geometry: grouped bar charts and timelines.

Python computes where everything goes (numbers and plain-text labels); the ``charts.html.j2``
macros turn these objects into inline SVG, escaping every label. Nothing here builds markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelport.monitoring.report_format import (
    CUR_COLOR,
    DRIFT_COLOR,
    MAX_CATEGORIES,
    REF_COLOR,
    finite,
    fmt,
    int_text,
    pct,
    short,
    tick_pct,
)

# --- the primitives the templates draw ---------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A straight line: styled by a CSS class, or by an explicit stroke (dashed when ``dash``)."""

    x1: float
    y1: float
    x2: float
    y2: float
    css: str = ""
    stroke: str = ""
    dash: str = ""


@dataclass(frozen=True)
class Label:
    """A text label at (x, y), turned by ``rotate`` degrees around that point when not 0."""

    x: float
    y: float
    text: str
    css: str = "tk"
    anchor: str = "middle"
    rotate: float = 0.0


@dataclass(frozen=True)
class LegendItem:
    x: float
    y: float
    label: str
    color: str
    dashed: bool


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str


@dataclass(frozen=True)
class BarGroup:
    """The bars of one bin or category, with the tooltip that names it."""

    title: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class BarChart:
    """Reference vs current share per bin/category of one column."""

    width: int
    height: int
    label: str
    column: str
    index: int
    legend: tuple[LegendItem, ...]
    grid: tuple[Line, ...]
    axes: tuple[Line, ...]
    labels: tuple[Label, ...]
    groups: tuple[BarGroup, ...]


@dataclass(frozen=True)
class PathStep:
    x: float
    y: float
    move: bool  # M (start a stretch) rather than L (continue it)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    fill: str
    title: str


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    dashed: bool
    path: tuple[PathStep, ...]
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Marker:
    """An event diamond centred at (x, y) with the events as its tooltip."""

    x: float
    y: float
    title: str


@dataclass(frozen=True)
class LineChart:
    """Lines over time, with a threshold, model-version changes and event markers."""

    width: int
    height: int
    css_class: str
    label: str
    legend: tuple[LegendItem, ...]
    grid: tuple[Line, ...]
    axes: tuple[Line, ...]
    labels: tuple[Label, ...]
    version_lines: tuple[Line, ...]
    threshold: Line | None
    series: tuple[Series, ...]
    markers: tuple[Marker, ...] = field(default=())


@dataclass(frozen=True)
class SeriesData:
    """One line of a timeline: values aligned with the chart's xs (None: no value there)."""

    name: str
    values: Sequence[float | None]
    color: str
    dashed: bool


# --- layout ------------------------------------------------------------------------------------------


def _legend(
    x0: float, y0: float, items: Sequence[tuple[str, str, bool]], max_x: float
) -> tuple[tuple[LegendItem, ...], int]:
    """Swatches (label, color, dashed) in rows from (x0, y0), wrapped before ``max_x``: (items, rows)."""
    out = []
    x, y, rows = x0, y0, 1
    for label, color, dashed in items:
        dx = 22.0 if dashed else 14.0
        w = dx + 6.5 * len(label) + 14
        if x > x0 and x + w > max_x:
            x, y, rows = x0, y + 16, rows + 1
        out.append(LegendItem(x, y, label, color, dashed))
        x += w
    return tuple(out), rows


def _as_shares(values: list[float]) -> list[float]:
    """Counts become shares of their sum; values that already are shares (each <= 1, summing to
    at most 1, as modelport.monitoring.drift writes them) are kept as they are."""
    total = sum(values)
    if total <= 1 + 1e-6 and all(0 <= v <= 1 for v in values):
        return values
    return [v / total if total > 0 else 0.0 for v in values]


def _bars(hist: dict[str, Any]) -> tuple[list[str], list[str], list[float], list[float], bool]:
    """(axis labels, group titles, reference shares, current shares, numeric) of a histogram."""
    ref = [finite(v) or 0.0 for v in hist.get("reference") or []]
    cur = [finite(v) or 0.0 for v in hist.get("current") or []]
    n = max(len(ref), len(cur))
    ref += [0.0] * (n - len(ref))
    cur += [0.0] * (n - len(cur))
    ref_s, cur_s = _as_shares(ref), _as_shares(cur)
    edges = hist.get("edges")
    cats = hist.get("categories")
    if cats is not None:
        labels = [str(c) for c in cats][:n] + [f"#{i}" for i in range(len(cats), n)]
        if n > MAX_CATEGORIES:
            order = sorted(range(n), key=lambda i: -max(ref_s[i], cur_s[i]))
            keep = sorted(order[: MAX_CATEGORIES - 1])
            rest = [i for i in range(n) if i not in set(keep)]
            other = f"other ({len(rest)})"
            labels = [labels[i] for i in keep] + [other]
            ref_s = [ref_s[i] for i in keep] + [sum(ref_s[i] for i in rest)]
            cur_s = [cur_s[i] for i in keep] + [sum(cur_s[i] for i in rest)]
        return labels, labels, ref_s, cur_s, False
    if edges is not None and len(edges) == n + 1:
        labels = [short(v) for v in edges]
        titles = [f"[{fmt(edges[i])}, {fmt(edges[i + 1])}{']' if i == n - 1 else ')'}" for i in range(n)]
        return labels, titles, ref_s, cur_s, True
    labels = [f"bin {i + 1}" for i in range(n)]
    return labels, labels, ref_s, cur_s, False


def nice_scale(lo: float, hi: float, intervals: int = 5) -> tuple[float, float, list[float]]:
    """An axis from ``lo`` to ``hi`` widened to round ticks (steps of 1, 2, 2.5 or 5 x 10^k)."""
    if hi - lo <= 1e-12:
        pad = abs(hi) * 0.05 or 0.05
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / intervals
    mag = 10.0 ** math.floor(math.log10(raw))
    step = 10 * mag
    for m in (1.0, 2.0, 2.5, 5.0):
        if m * mag >= raw * (1 - 1e-9):
            step = m * mag
            break
    lo2 = math.floor(lo / step + 1e-9) * step
    hi2 = math.ceil(hi / step - 1e-9) * step
    ticks = [lo2 + i * step for i in range(round((hi2 - lo2) / step) + 1)]
    return lo2, hi2, ticks


def bar_chart(col: dict[str, Any], index: int) -> BarChart | None:
    """Grouped bars of the reference vs current share per bin/category of one column (None: no data)."""
    name = str(col.get("column", ""))
    hist = col.get("histogram")
    if not isinstance(hist, dict):
        return None
    labels, titles, ref_s, cur_s, numeric = _bars(hist)
    n = len(ref_s)
    if n == 0:
        return None
    rotate = not numeric and (n > 5 or max((len(s) for s in labels), default=0) > 8)
    width, left, right, top = 520, 54, 14, 30
    bottom = 78 if rotate else 44
    height = 170 + bottom
    pw, ph = width - left - right, height - top - bottom
    _, ymax, yticks = nice_scale(0.0, max(max(ref_s + cur_s), 0.01))
    legend, _ = _legend(
        left,
        16,
        [
            (f"reference (n={int_text(col.get('reference_count'))})", REF_COLOR, False),
            (f"current (n={int_text(col.get('current_count'))})", CUR_COLOR, False),
        ],
        width - right,
    )
    grid: list[Line] = []
    texts: list[Label] = []
    for v in yticks:
        y = top + ph - ph * v / ymax
        grid.append(Line(left, y, left + pw, y, css="grid"))
        texts.append(Label(left - 5, y + 3.5, tick_pct(v), anchor="end"))
    gw = pw / n
    bw = gw * (0.4 if n > 1 else 0.25)
    groups = []
    for i in range(n):
        x0 = left + gw * i + (gw - 2 * bw) / 2
        bars = []
        for j, (share, color) in enumerate(((ref_s[i], REF_COLOR), (cur_s[i], CUR_COLOR))):
            h = ph * min(share / ymax, 1.0)
            if h >= 0.05:
                bars.append(Bar(x0 + j * bw, top + ph - h, max(bw - 0.5, 0.5), h, color))
        title = f"{titles[i]}: reference {pct(ref_s[i])}, current {pct(cur_s[i])}"
        groups.append(BarGroup(title, tuple(bars)))
    base = top + ph
    axes = [Line(left, base, left + pw, base, css="axis")]
    if numeric:  # labels at (a subset of) the bin edges
        step = max(1, math.ceil((n + 1) / 6))
        idx = list(range(0, n + 1, step))
        if idx[-1] != n:  # the last edge is always labelled
            idx[-1 if len(idx) > 1 else len(idx) :] = [n]
        for i in idx:
            x = left + gw * i
            axes.append(Line(x, base, x, base + 4, css="axis"))
            texts.append(Label(x, base + 15, labels[i]))
        xlabel = f"{name} (bin edges)"
    else:
        for i in range(n):
            x = left + gw * (i + 0.5)
            text = labels[i] if len(labels[i]) <= 12 else labels[i][:11] + "…"
            if rotate:
                texts.append(Label(x + 3, base + 10, text, anchor="end", rotate=-40))
            else:
                texts.append(Label(x, base + 15, text))
        xlabel = f"{name} (categories)"
    texts.append(Label(left + pw / 2, height - 6, xlabel, css="ax"))
    texts.append(Label(12, top + ph / 2, "share of rows", css="ax", rotate=-90))
    return BarChart(
        width=width,
        height=height,
        label=f"Distribution of {name}: reference vs current",
        column=name,
        index=index,
        legend=legend,
        grid=tuple(grid),
        axes=tuple(axes),
        labels=tuple(texts),
        groups=tuple(groups),
    )


def y_range(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08
    lo2, hi2 = lo - pad, hi + pad
    if lo >= 0 > lo2:
        lo2 = 0.0
    if lo >= 0 and hi <= 1 < hi2:
        hi2 = 1.0
    return lo2, hi2


def line_chart(
    *,
    css_class: str,
    label: str,
    xs: Sequence[float],
    xlabels: Sequence[str],
    series: Sequence[SeriesData],
    y_range: tuple[float, float],
    y_fmt: Callable[[float], str],
    y_title: str,
    threshold: float | None = None,
    point_colors: Sequence[str] | None = None,
    versions: Sequence[Any] = (),
    version_marks: bool = True,
    connect: bool = False,
    events: Sequence[Sequence[str]] = (),
) -> LineChart:
    """Lines over time; a None value is a gap in its line, or skipped when ``connect`` (series
    that only have some of the windows)."""
    width, right, left, bottom = 600, 20, 56, 46
    items: list[tuple[str, str, bool]] = [(s.name, s.color, s.dashed) for s in series]
    if threshold is not None:
        items.append((f"threshold {pct(threshold, 0)}", DRIFT_COLOR, True))
    legend, rows = _legend(left, 16, items, width - right)
    top = 14 + 16 * rows
    height = top + 184 + bottom
    pw, ph = width - left - right, height - top - bottom
    lo, hi, yticks = nice_scale(*y_range, intervals=4)
    x_lo, x_hi = min(xs), max(xs)

    def px(v: float) -> float:
        return left + pw / 2 if x_hi == x_lo else left + 8 + (pw - 16) * (v - x_lo) / (x_hi - x_lo)

    def py(v: float) -> float:
        return top + ph - ph * (min(max(v, lo), hi) - lo) / (hi - lo)

    grid: list[Line] = []
    texts: list[Label] = []
    for v in yticks:
        y = py(v)
        grid.append(Line(left, y, left + pw, y, css="grid"))
        texts.append(Label(left - 5, y + 3.5, y_fmt(v), anchor="end"))
    base = top + ph
    axes = [Line(left, base, left + pw, base, css="axis")]
    n = len(xs)
    distinct = list({x: i for i, x in reversed(list(enumerate(xs)))}.values())  # first index per x
    step = max(1, math.ceil(len(distinct) / 6))
    ticks = distinct[::step]
    if ticks[-1] != distinct[-1]:  # the last window is always labelled
        ticks[-1 if len(ticks) > 1 else len(ticks) :] = [distinct[-1]]
    for i in ticks:
        x = px(xs[i])
        half = 3.0 * len(xlabels[i])  # about half the label's width at 10px: kept inside the chart
        axes.append(Line(x, base, x, base + 4, css="axis"))
        texts.append(Label(min(max(x, half + 2), width - half - 2), base + 16, xlabels[i]))
    texts.append(Label(left + pw / 2, height - 6, "window end (UTC)", css="ax"))
    texts.append(Label(13, top + ph / 2, y_title, css="ax", rotate=-90))
    version_lines: list[Line] = []
    for i in range(1, len(versions) if version_marks else 0):  # a new model version from here on
        if versions[i] != versions[i - 1]:
            x = (px(xs[i - 1]) + px(xs[i])) / 2
            version_lines.append(Line(x, top, x, base, css="ver"))
            texts.append(Label(x + 3, top + 10, f"v{versions[i]}", css="vl", anchor="start"))
    limit = None
    if threshold is not None:
        y = py(threshold)
        limit = Line(left, y, left + pw, y, stroke=DRIFT_COLOR, dash="5 3")
    drawn = []
    for s in series:
        path: list[PathStep] = []
        points: list[Point] = []
        pen = False
        for i, (xv, yv) in enumerate(zip(xs, s.values, strict=False)):
            if yv is None:
                pen = pen and connect
                continue
            path.append(PathStep(px(xv), py(yv), move=not pen))
            pen = True
            fill = point_colors[i] if point_colors else ("#fff" if s.dashed else s.color)
            version = versions[i] if i < len(versions) else ""
            title = f"{xlabels[i]} · v{version} · {s.name}: {y_fmt(yv)}"
            points.append(Point(px(xv), py(yv), fill, title))
        drawn.append(Series(s.name, s.color, s.dashed, tuple(path), tuple(points)))
    markers = tuple(
        Marker(px(xs[i]), base - 4, "; ".join(evs)) for i, evs in enumerate(events) if evs and i < n
    )
    return LineChart(
        width=width,
        height=height,
        css_class=css_class,
        label=label,
        legend=legend,
        grid=tuple(grid),
        axes=tuple(axes),
        labels=tuple(texts),
        version_lines=tuple(version_lines),
        threshold=limit,
        series=tuple(drawn),
        markers=markers,
    )
