"""The report's charts: grouped bar charts and timelines drawn as inline SVG, in Python."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from modelport.monitoring.report_format import (
    CUR_COLOR,
    DRIFT_COLOR,
    MAX_CATEGORIES,
    REF_COLOR,
    _e,
    _finite,
    _fmt,
    _int,
    _pct,
    _short,
    _tick_pct,
)

# --- SVG charts --------------------------------------------------------------------------------------


def _svg_open(width: int, height: int, css_class: str, label: str, extra: str = "") -> str:
    return (
        f'<svg class="{css_class}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(label)}"{extra}>'
    )


def _legend(x0: float, y0: float, items: Sequence[tuple[str, str, bool]], max_x: float) -> tuple[str, int]:
    """Swatches (label, color, dashed) in rows from (x0, y0), wrapped before ``max_x``: (svg, rows)."""
    out = []
    x, y, rows = x0, y0, 1
    for label, color, dashed in items:
        dx = 22.0 if dashed else 14.0
        w = dx + 6.5 * len(label) + 14
        if x > x0 and x + w > max_x:
            x, y, rows = x0, y + 16, rows + 1
        if dashed:
            out.append(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 18:.1f}" y2="{y - 4:.1f}" stroke="{color}" '
                'stroke-width="2" stroke-dasharray="5 3"/>'
            )
        else:
            out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" rx="2" fill="{color}"/>')
        out.append(f'<text x="{x + dx:.1f}" y="{y:.1f}" class="lg">{_e(label)}</text>')
        x += w
    return "".join(out), rows


def _as_shares(values: list[float]) -> list[float]:
    """Counts become shares of their sum; values that already are shares (each <= 1, summing to
    at most 1, as modelport.monitoring.drift writes them) are kept as they are."""
    total = sum(values)
    if total <= 1 + 1e-6 and all(0 <= v <= 1 for v in values):
        return values
    return [v / total if total > 0 else 0.0 for v in values]


def _bars(hist: dict[str, Any]) -> tuple[list[str], list[str], list[float], list[float], bool]:
    """(axis labels, group titles, reference shares, current shares, numeric) of a histogram."""
    ref = [_finite(v) or 0.0 for v in hist.get("reference") or []]
    cur = [_finite(v) or 0.0 for v in hist.get("current") or []]
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
        labels = [_short(v) for v in edges]
        titles = [f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])}{']' if i == n - 1 else ')'}" for i in range(n)]
        return labels, titles, ref_s, cur_s, True
    labels = [f"bin {i + 1}" for i in range(n)]
    return labels, labels, ref_s, cur_s, False


def _nice_scale(lo: float, hi: float, intervals: int = 5) -> tuple[float, float, list[float]]:
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


def _bar_chart(col: dict[str, Any], index: int) -> str:
    """Grouped bars of the reference vs current share per bin/category of one column."""
    name = str(col.get("column", ""))
    hist = col.get("histogram")
    if not isinstance(hist, dict):
        return '<div class="nochart">No distribution data for this column.</div>'
    labels, titles, ref_s, cur_s, numeric = _bars(hist)
    n = len(ref_s)
    if n == 0:
        return '<div class="nochart">No distribution data for this column.</div>'
    rotate = not numeric and (n > 5 or max((len(s) for s in labels), default=0) > 8)
    width, left, right, top = 520, 54, 14, 30
    bottom = 78 if rotate else 44
    height = 170 + bottom
    pw, ph = width - left - right, height - top - bottom
    _, ymax, yticks = _nice_scale(0.0, max(max(ref_s + cur_s), 0.01))
    out = [
        _svg_open(
            width,
            height,
            "chart dist",
            f"Distribution of {name}: reference vs current",
            f' data-column="{_e(name)}" data-index="{index}"',
        )
    ]
    out.append(
        _legend(
            left,
            16,
            [
                (f"reference (n={_int(col.get('reference_count'))})", REF_COLOR, False),
                (f"current (n={_int(col.get('current_count'))})", CUR_COLOR, False),
            ],
            width - right,
        )[0]
    )
    for v in yticks:  # grid and y ticks
        y = top + ph - ph * v / ymax
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{left - 5}" y="{y + 3.5:.1f}" class="tk" text-anchor="end">{_tick_pct(v)}</text>'
        )
    gw = pw / n
    bw = gw * (0.4 if n > 1 else 0.25)
    for i in range(n):
        x0 = left + gw * i + (gw - 2 * bw) / 2
        out.append(f"<g><title>{_e(titles[i])}: reference {_pct(ref_s[i])}, current {_pct(cur_s[i])}</title>")
        for j, (share, color) in enumerate(((ref_s[i], REF_COLOR), (cur_s[i], CUR_COLOR))):
            h = ph * min(share / ymax, 1.0)
            if h >= 0.05:
                out.append(
                    f'<rect x="{x0 + j * bw:.1f}" y="{top + ph - h:.1f}" width="{max(bw - 0.5, 0.5):.1f}" '
                    f'height="{h:.1f}" fill="{color}"/>'
                )
        out.append("</g>")
    base = top + ph
    out.append(f'<line x1="{left}" y1="{base}" x2="{left + pw}" y2="{base}" class="axis"/>')
    if numeric:  # labels at (a subset of) the bin edges
        step = max(1, math.ceil((n + 1) / 6))
        idx = list(range(0, n + 1, step))
        if idx[-1] != n:  # the last edge is always labelled
            idx[-1 if len(idx) > 1 else len(idx) :] = [n]
        for i in idx:
            x = left + gw * i
            out.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" class="axis"/>')
            out.append(
                f'<text x="{x:.1f}" y="{base + 15}" class="tk" text-anchor="middle">{_e(labels[i])}</text>'
            )
        xlabel = f"{name} (bin edges)"
    else:
        for i in range(n):
            x = left + gw * (i + 0.5)
            text = labels[i] if len(labels[i]) <= 12 else labels[i][:11] + "…"
            if rotate:
                out.append(
                    f'<text class="tk" text-anchor="end" transform="translate({x + 3:.1f},{base + 10}) '
                    f'rotate(-40)">{_e(text)}</text>'
                )
            else:
                out.append(
                    f'<text x="{x:.1f}" y="{base + 15}" class="tk" text-anchor="middle">{_e(text)}</text>'
                )
        xlabel = f"{name} (categories)"
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 6}" class="ax" text-anchor="middle">{_e(xlabel)}</text>'
    )
    out.append(
        f'<text class="ax" text-anchor="middle" transform="translate(12,{top + ph / 2:.1f}) rotate(-90)">'
        "share of rows</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _y_range(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08
    lo2, hi2 = lo - pad, hi + pad
    if lo >= 0 > lo2:
        lo2 = 0.0
    if lo >= 0 and hi <= 1 < hi2:
        hi2 = 1.0
    return lo2, hi2


def _line_chart(
    *,
    css_class: str,
    label: str,
    xs: Sequence[float],
    xlabels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str, bool]],
    y_range: tuple[float, float],
    y_fmt: Any,
    y_title: str,
    threshold: float | None = None,
    point_colors: Sequence[str] | None = None,
    versions: Sequence[Any] = (),
    version_marks: bool = True,
    connect: bool = False,
    events: Sequence[Sequence[str]] = (),
) -> str:
    """Lines over time: ``series`` is (name, values aligned with ``xs``, color, dashed); a None is
    a gap in the line, or skipped when ``connect`` (series that only have some of the windows)."""
    width, right, left, bottom = 600, 20, 56, 46
    legend: list[tuple[str, str, bool]] = [(name, color, dashed) for name, _, color, dashed in series]
    if threshold is not None:
        legend.append((f"threshold {_pct(threshold, 0)}", DRIFT_COLOR, True))
    legend_svg, rows = _legend(left, 16, legend, width - right)
    top = 14 + 16 * rows
    height = top + 184 + bottom
    pw, ph = width - left - right, height - top - bottom
    lo, hi, yticks = _nice_scale(*y_range, intervals=4)
    x_lo, x_hi = min(xs), max(xs)

    def px(v: float) -> float:
        return left + pw / 2 if x_hi == x_lo else left + 8 + (pw - 16) * (v - x_lo) / (x_hi - x_lo)

    def py(v: float) -> float:
        return top + ph - ph * (min(max(v, lo), hi) - lo) / (hi - lo)

    out = [_svg_open(width, height, f"chart {css_class}", label), legend_svg]
    for v in yticks:
        y = py(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{left - 5}" y="{y + 3.5:.1f}" class="tk" text-anchor="end">{_e(y_fmt(v))}</text>'
        )
    base = top + ph
    out.append(f'<line x1="{left}" y1="{base}" x2="{left + pw}" y2="{base}" class="axis"/>')
    n = len(xs)
    distinct = list({x: i for i, x in reversed(list(enumerate(xs)))}.values())  # first index per x
    step = max(1, math.ceil(len(distinct) / 6))
    ticks = distinct[::step]
    if ticks[-1] != distinct[-1]:  # the last window is always labelled
        ticks[-1 if len(ticks) > 1 else len(ticks) :] = [distinct[-1]]
    for i in ticks:
        x = px(xs[i])
        half = 3.0 * len(xlabels[i])  # about half the label's width at 10px: kept inside the chart
        tx = min(max(x, half + 2), width - half - 2)
        out.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" class="axis"/>')
        out.append(
            f'<text x="{tx:.1f}" y="{base + 16}" class="tk" text-anchor="middle">{_e(xlabels[i])}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 6}" class="ax" text-anchor="middle">'
        "window end (UTC)</text>"
    )
    out.append(
        f'<text class="ax" text-anchor="middle" transform="translate(13,{top + ph / 2:.1f}) rotate(-90)">'
        f"{_e(y_title)}</text>"
    )
    for i in range(1, len(versions) if version_marks else 0):  # a new model version from here on
        if versions[i] != versions[i - 1]:
            x = (px(xs[i - 1]) + px(xs[i])) / 2
            out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{base}" class="ver"/>')
            out.append(f'<text x="{x + 3:.1f}" y="{top + 10}" class="vl">v{_e(versions[i])}</text>')
    if threshold is not None:
        y = py(threshold)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{DRIFT_COLOR}" '
            'stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
    for name, values, color, dashed in series:
        path: list[str] = []
        pen = False
        for xv, yv in zip(xs, values, strict=False):
            if yv is None:
                pen = pen and connect
                continue
            path.append(f"{'L' if pen else 'M'}{px(xv):.1f} {py(yv):.1f}")
            pen = True
        dash = ' stroke-dasharray="7 4"' if dashed else ""
        out.append(f'<path d="{"".join(path)}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for i, (xv, yv) in enumerate(zip(xs, values, strict=False)):
            if yv is None:
                continue
            fill = point_colors[i] if point_colors else ("#fff" if dashed else color)
            out.append(
                f'<circle cx="{px(xv):.1f}" cy="{py(yv):.1f}" r="3.5" fill="{fill}" stroke="{color}" '
                'stroke-width="1.5">'
                f"<title>{_e(xlabels[i])} · v{_e(versions[i] if i < len(versions) else '')} · {_e(name)}: "
                f"{_e(y_fmt(yv))}</title></circle>"
            )
    for i, evs in enumerate(events):
        if evs and i < n:
            x = px(xs[i])
            out.append(
                f'<path d="M{x:.1f} {base - 9:.1f}l5 5-5 5-5-5z" class="ev">'
                f"<title>{_e('; '.join(evs))}</title></path>"
            )
    out.append("</svg>")
    return "".join(out)
