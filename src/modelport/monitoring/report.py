"""The monitoring report: one self-contained HTML file built from a :class:`DriftResult` dict.

Everything is inline — CSS, the charts (SVG drawn here, in Python), the result itself as JSON in a
``<script type="application/json" id="modelport-result">`` block — so the file opens without a
network and carries the same data as ``DriftResult.to_json``. No JS library, font or image is
loaded; a few lines of inline JS only make the tables sortable and the JSON downloadable.

>>> html = render_html(result.to_dict(), timeline)   # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from modelport.monitoring.results import P_VALUE_TESTS

__all__ = ["render_html", "result_json_for_html"]

REF_COLOR = "#5b7bb2"
CUR_COLOR = "#ef8a2b"
DRIFT_COLOR = "#c9302c"
OK_COLOR = "#2b8a3e"
WARN_COLOR = "#b7791f"
METRIC_COLORS = ("#3b6fb6", "#8e44ad", "#16a085", "#c0392b", "#d35400", "#2c3e50")
MAX_CATEGORIES = 24  # categorical charts show the largest ones and fold the rest into "other"


# --- formatting --------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _finite(value: Any) -> float | None:
    f = _num(value)
    return f if f is not None and math.isfinite(f) else None


def _fmt(value: Any) -> str:
    """A statistic, threshold or metric: 4 significant digits, scientific for tiny p-values."""
    f = _num(value)
    if f is None:
        return "—" if value is None else str(value)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    if f == 0:
        return "0"
    if abs(f) < 1e-3 or abs(f) >= 1e6:
        return f"{f:.2e}"
    if abs(f) >= 1e3:
        return f"{f:,.1f}".removesuffix(".0")
    return f"{f:.4g}"


def _short(value: Any) -> str:
    """An axis label: 3 significant digits, k/M suffixes."""
    f = _num(value)
    if f is None or math.isnan(f):
        return "—" if f is None else "NaN"
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(f) >= div:
            return f"{f / (1e3 if suffix == 'k' else div):.3g}{suffix}"
    if abs(f) >= 1e3:
        return f"{f:.0f}"
    if f != 0 and abs(f) < 1e-3:
        return f"{f:.1e}"
    return f"{f:.3g}"


def _int(value: Any) -> str:
    f = _finite(value)
    return "—" if f is None else f"{int(f):,}"


def _pct(value: Any, digits: int = 1) -> str:
    f = _finite(value)
    return "—" if f is None else f"{f * 100:.{digits}f}%"


def _tick_pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _when(value: Any) -> str:
    t = _parse_time(value)
    if t is None:
        return "" if value is None else str(value)
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _rule(test: str, threshold: Any) -> str:
    if test == "ks":
        return f"p ≤ {_fmt(threshold)}"
    if test in P_VALUE_TESTS:
        return f"p < {_fmt(threshold)}"
    return f"d ≥ {_fmt(threshold)}"


def _verdict(drifted: bool, *, yes: str = "Drift", no: str = "OK") -> str:
    return f'<span class="pill {"bad" if drifted else "good"}">{yes if drifted else no}</span>'


# --- JSON --------------------------------------------------------------------------------------------


def _clean(obj: Any) -> Any:
    """Plain JSON: non-finite floats become null, numpy scalars plain numbers, the rest strings."""
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return _clean(item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def result_json_for_html(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and line separators escaped."""
    text = json.dumps(_clean(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


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


# --- sections ----------------------------------------------------------------------------------------


def _card(title: str, body: str, css: str = "") -> str:
    return f'<div class="card {css}"><div class="ct">{_e(title)}</div>{body}</div>'


def _perf_block(perf: dict[str, Any] | None, estimated_default: bool) -> str:
    if not isinstance(perf, dict):
        return ""
    estimated = bool(perf.get("estimated", estimated_default))
    metrics = perf.get("metrics") or {}
    rows = (
        "".join(
            f'<tr><td>{_e(k)}</td><td class="num">{_fmt(v)}</td></tr>' for k, v in sorted(metrics.items())
        )
        or '<tr><td colspan="2" class="muted">no metrics</td></tr>'
    )
    if estimated:
        head = '<span class="pill est" title="estimated without labels (CBPE)">estimated</span>'
        note = "estimated without labels (CBPE)"
    else:
        head = '<span class="pill act">actual</span>'
        note = f"{_int(perf.get('labelled_rows'))} labelled rows"
    task = _e(perf.get("task", ""))
    return (
        f'<div class="perf{" estimated" if estimated else ""}">{head} '
        f'<span class="muted">{task} · {_e(note)}</span>'
        f'<table class="mini">{rows}</table></div>'
    )


def _summary(r: dict[str, Any]) -> str:
    columns = r.get("columns") or []
    drifted = [c for c in columns if c.get("drifted")]
    share = _finite(r.get("drift_share")) or 0.0
    thr = _finite(r.get("drift_share_threshold"))
    dataset_drift = bool(r.get("dataset_drift"))
    cards = []
    verdict = "Dataset drift detected" if dataset_drift else "No dataset drift"
    cmp_ = "≥" if thr is not None and share >= thr else "<"
    cards.append(
        _card(
            "Dataset drift",
            f'<div class="big {"bad" if dataset_drift else "good"}" id="dataset-verdict">{verdict}</div>'
            f"<div>{len(drifted)} of {len(columns)} columns drifted</div>"
            f'<div class="muted">share {_pct(share)} {cmp_} threshold {_pct(thr)}</div>',
            "bad" if dataset_drift else "good",
        )
    )
    pred = r.get("prediction")
    if isinstance(pred, dict):
        pd_ = bool(pred.get("drifted"))
        cards.append(
            _card(
                "Prediction drift",
                f'<div class="big {"bad" if pd_ else "good"}">{"Drift" if pd_ else "No drift"}</div>'
                f"<div>{_e(pred.get('test'))}: {_fmt(pred.get('statistic'))} "
                f"({'p-value' if pred.get('test') in P_VALUE_TESTS else 'distance'})</div>"
                f'<div class="muted">drift if {_e(_rule(str(pred.get("test")), pred.get("threshold")))}'
                "</div>",
                "bad" if pd_ else "good",
            )
        )
    else:
        cards.append(_card("Prediction drift", '<div class="big muted">not monitored</div>'))
    quality = r.get("quality") or []
    errors = sum(1 for q in quality if q.get("severity") == "error")
    qcss = "bad" if errors else ("warn" if quality else "good")
    cards.append(
        _card(
            "Data quality",
            f'<div class="big {qcss}">{len(quality)} issue{"" if len(quality) == 1 else "s"}</div>'
            f'<div class="muted">{errors} error(s), {len(quality) - errors} warning(s)</div>',
            qcss,
        )
    )
    sample = r.get("sample_note") or ""
    cards.append(
        _card(
            "Rows",
            f'<div class="big">{_int(r.get("current_rows"))}</div><div>current</div>'
            f'<div class="muted">{_int(r.get("reference_rows"))} reference</div>'
            + (f'<div class="note">{_e(sample)}</div>' if sample else ""),
        )
    )
    perf = _perf_block(r.get("performance"), False) + _perf_block(r.get("estimated_performance"), True)
    cards.append(
        _card("Performance", perf or '<div class="muted">no labels and no estimate for this window</div>')
    )
    return f'<section id="summary"><div class="cards">{"".join(cards)}</div></section>'


def _column_row(c: dict[str, Any], index: int | None, is_pred: bool) -> str:
    test = str(c.get("test", ""))
    p_value = test in P_VALUE_TESTS
    drifted = bool(c.get("drifted"))
    note = c.get("note") or ""
    stat = _finite(c.get("statistic"))
    name = _e(c.get("column"))
    link = f'<a href="#dist-{index}">{name}</a>' if index is not None else name
    badge = ' <span class="pill pred">prediction</span>' if is_pred else ""
    return (
        f'<tr class="{"pred " if is_pred else ""}{"drifted" if drifted else "ok"}" data-column="{name}">'
        f'<td class="name">{link}{badge}</td><td>{_e(c.get("kind"))}</td><td>{_e(test)}</td>'
        f'<td class="num" data-v="{"" if stat is None else repr(stat)}">{_fmt(c.get("statistic"))} '
        f'<span class="muted">{"p-value" if p_value else "distance"}</span></td>'
        f'<td class="num" data-v="{_finite(c.get("threshold")) or 0}">'
        f"{_e(_rule(test, c.get('threshold')))}</td>"
        f'<td class="verdict" data-v="{int(drifted)}">{_verdict(drifted)}'
        + (f'<div class="note">{_e(note)}</div>' if note else "")
        + f'</td><td class="num" data-v="{_finite(c.get("current_count")) or 0}">'
        f"{_int(c.get('reference_count'))} / {_int(c.get('current_count'))}</td></tr>"
    )


def _columns_table(r: dict[str, Any]) -> str:
    columns = r.get("columns") or []
    pred = r.get("prediction")
    head = (
        '<table class="sortable" id="columns-table"><thead><tr><th>Column</th><th>Kind</th><th>Test</th>'
        "<th>Statistic</th><th>Drift if</th><th>Verdict</th><th>Values ref / cur</th></tr></thead>"
    )
    pred_body = f'<tbody class="fixed">{_column_row(pred, 0, True)}</tbody>' if isinstance(pred, dict) else ""
    offset = 1 if isinstance(pred, dict) else 0
    rows = "".join(_column_row(c, i + offset, False) for i, c in enumerate(columns))
    if not columns:
        rows = '<tr><td colspan="7" class="muted">No columns were compared.</td></tr>'
    return (
        '<section id="columns"><h2>Columns</h2><p class="muted">p-value tests (ks, chisquare, z) flag drift '
        "when the p-value is below the threshold, distances (wasserstein, jensenshannon, psi) when the "
        "distance reaches it. Click a header to sort.</p>"
        f'<div class="tw">{head}{pred_body}<tbody>{rows}</tbody></table></div></section>'
    )


def _distributions(r: dict[str, Any]) -> str:
    cols: list[tuple[dict[str, Any], bool]] = []
    if isinstance(r.get("prediction"), dict):
        cols.append((r["prediction"], True))
    cols += [(c, False) for c in r.get("columns") or []]
    if not cols:
        return '<section id="distributions"><h2>Distributions</h2><p class="muted">No columns.</p></section>'
    cards = []
    for i, (c, is_pred) in enumerate(cols):
        drifted = bool(c.get("drifted"))
        badge = ' <span class="pill pred">prediction</span>' if is_pred else ""
        info = f"{_e(c.get('kind'))} · {_e(c.get('test'))} {_fmt(c.get('statistic'))}"
        title = (
            f'<div class="dh"><span class="cn">{_e(c.get("column"))}</span>{badge} {_verdict(drifted)}'
            f'<span class="muted"> {info}</span></div>'
        )
        css = f"{' pred' if is_pred else ''}{' drifted' if drifted else ''}"
        cards.append(f'<div class="dist-card{css}" id="dist-{i}">{title}{_bar_chart(c, i)}</div>')
    return (
        '<section id="distributions"><h2>Distributions: reference vs current</h2>'
        f'<div class="grid">{"".join(cards)}</div></section>'
    )


def _quality(r: dict[str, Any]) -> str:
    quality = r.get("quality") or []
    if not quality:
        return (
            '<section id="quality"><h2>Data quality</h2><p class="muted">No data quality issues.</p>'
            "</section>"
        )
    order = {"error": 0, "warning": 1}
    rows = "".join(
        f'<tr class="{_e(q.get("severity"))}">'
        f'<td><span class="pill {"bad" if q.get("severity") == "error" else "wrn"}">'
        f"{_e(q.get('severity'))}</span></td><td>{_e(q.get('column'))}</td><td>{_e(q.get('check'))}</td>"
        f'<td>{_e(q.get("message"))}</td><td class="num">{_fmt(q.get("current"))}</td>'
        f'<td class="num">{_fmt(q.get("reference"))}</td></tr>'
        for q in sorted(quality, key=lambda q: order.get(str(q.get("severity")), 2))
    )
    return (
        '<section id="quality"><h2>Data quality</h2><div class="tw">'
        '<table class="sortable" id="quality-table"><thead><tr>'
        "<th>Severity</th><th>Column</th><th>Check</th><th>Message</th><th>Current</th><th>Reference</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _timelines(r: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    head = '<section id="timelines"><h2>Timelines</h2>'
    points = [t for t in timeline if isinstance(t, dict)]
    if not points:
        return (
            head
            + '<p class="muted">No stored windows yet: the timelines appear as windows are monitored.</p>'
            + "</section>"
        )
    times = [_parse_time(t.get("window_end") or t.get("window_start")) for t in points]
    if all(t is not None for t in times):
        order = sorted(range(len(points)), key=lambda i: (times[i], _num(points[i].get("version")) or 0))
        points = [points[i] for i in order]
        stamps = [times[i] for i in order]
        xs = [t.timestamp() for t in stamps if t is not None]
        span = xs[-1] - xs[0]
        fmt = "%m-%d %H:%M" if span < 3 * 86400 else "%Y-%m-%d"
        xlabels = [t.astimezone(UTC).strftime(fmt) for t in stamps if t is not None]
    else:
        xs = [float(i) for i in range(len(points))]
        xlabels = [_when(t.get("window_end")) or f"#{i + 1}" for i, t in enumerate(points)]
    versions = [t.get("version") for t in points]
    events = [[str(e) for e in (t.get("events") or [])] for t in points]
    thr = _finite(r.get("drift_share_threshold"))
    shares = [_finite(t.get("drift_share")) for t in points]
    # Versions monitored side by side (canary, shadow) get a line each; otherwise one line with a
    # marker where a new version took over.
    vkeys = list(dict.fromkeys(str(v) for v in versions))
    split = len(vkeys) > 1 and len(set(xs)) < len(xs)

    def per_version(
        values: list[float | None], name: str, color: str, dashed: bool
    ) -> list[tuple[str, Sequence[float | None], str, bool]]:
        if not split:
            return [(name, values, color, dashed)] if any(v is not None for v in values) else []
        out: list[tuple[str, Sequence[float | None], str, bool]] = []
        for j, key in enumerate(vkeys):
            mine = [v if str(versions[i]) == key else None for i, v in enumerate(values)]
            if any(v is not None for v in mine):
                suffix = " estimated" if dashed else (" actual" if name.endswith("(actual)") else "")
                out.append((f"v{key}{suffix}", mine, METRIC_COLORS[j % len(METRIC_COLORS)], dashed))
        return out

    parts = [head, '<div class="tl-grid"><div class="chart-wrap"><h3>Drift share</h3>']
    parts.append(
        _line_chart(
            css_class="timeline drift-timeline",
            label="Share of drifted columns per window",
            xs=xs,
            xlabels=xlabels,
            series=per_version(shares, "share of drifted columns", METRIC_COLORS[0], False),
            y_range=(0.0, 1.0),
            y_fmt=_tick_pct,
            y_title="drifted columns",
            threshold=thr,
            point_colors=[DRIFT_COLOR if t.get("dataset_drift") else OK_COLOR for t in points],
            versions=versions,
            version_marks=not split,
            connect=split,
            events=events,
        )
    )
    parts.append(
        '<p class="muted small">Points: red = dataset drift, green = none; '
        + (
            "one line per model version (monitored side by side); "
            if split
            else "dotted verticals: a new model version; "
        )
        + "◆: events.</p></div>"
    )
    names: list[str] = []
    for t in points:
        for key in ("metrics", "estimated_metrics"):
            for k in t.get(key) or {}:
                if k not in names:
                    names.append(str(k))
    for m_i, name in enumerate(names):
        actual = [_finite((t.get("metrics") or {}).get(name)) for t in points]
        est = [_finite((t.get("estimated_metrics") or {}).get(name)) for t in points]
        values = [v for v in actual + est if v is not None]
        if not values:
            continue
        color = METRIC_COLORS[m_i % len(METRIC_COLORS)]
        series = per_version(actual, f"{name} (actual)", color, False)
        series += per_version(est, f"{name} (estimated)", color, True)
        parts.append(f'<div class="chart-wrap"><h3>Performance: {_e(name)}</h3>')
        parts.append(
            _line_chart(
                css_class="timeline metric-timeline",
                label=f"{name} per window, actual and estimated",
                xs=xs,
                xlabels=xlabels,
                series=series,
                y_range=_y_range(values),
                y_fmt=_fmt,
                y_title=name,
                versions=versions,
                version_marks=not split,
                connect=split,
                events=events,
            )
        )
        parts.append("</div>")
    parts.append("</div>")
    if not names:
        parts.append(
            '<p class="muted">No performance metrics in the stored windows (no labels, no estimates).</p>'
        )
    rows = "".join(
        f"<tr><td>{_e(_when(t.get('window_end') or t.get('window_start')))}</td>"
        f"<td>v{_e(t.get('version'))}</td>"
        f"<td>{_e(e)}</td></tr>"
        for t, evs in zip(points, events, strict=True)
        for e in evs
    )
    parts.append("<h3>Events</h3>")
    if rows:
        parts.append(
            '<table id="events-table"><thead><tr><th>Window end</th><th>Version</th><th>Event</th></tr>'
            "</thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    else:
        parts.append('<p class="muted">No events recorded.</p>')
    parts.append("</section>")
    return "".join(parts)


CSS = """
:root{--bad:#c9302c;--good:#2b8a3e;--warn:#b7791f;--ink:#1f2933;--muted:#6b7785;--line:#e3e8ee;--bg:#f5f7fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);
 padding:18px 28px 10px;border-top:5px solid var(--good)}
header.drift{border-top-color:var(--bad)}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}h3{font-size:15px;margin:18px 0 6px}
nav a{margin-right:14px;color:#3b6fb6;text-decoration:none;font-size:13px}
main{padding:6px 28px 40px;max-width:1320px}
.muted{color:var(--muted)}.small{font-size:12px}.note{font-size:12px;color:var(--warn)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:12px;margin-top:16px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;
 padding:12px 14px;border-left:4px solid #9aa5b1}
.card.bad{border-left-color:var(--bad)}.card.good{border-left-color:var(--good)}
.card.warn{border-left-color:var(--warn)}
.ct{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin-bottom:4px}
.big{font-size:19px;font-weight:600}.big.bad{color:var(--bad)}.big.good{color:var(--good)}
.big.warn{color:var(--warn)}
.perf{margin-top:4px}.perf+.perf{margin-top:8px;padding-top:8px;border-top:1px dashed var(--line)}
.perf.estimated table{border:1px dashed #b39ddb}
table{border-collapse:collapse;background:#fff;width:100%;border:1px solid var(--line)}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600;font-size:12px;white-space:nowrap}
table.sortable th{cursor:pointer}table.sortable th:after{content:" ⇅";color:#a0aab4;font-size:10px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.mini{width:auto;border:0;margin-top:4px}table.mini td{padding:1px 12px 1px 0;border:0}
tr.pred td{background:#fff8e6}tr.pred td.name{border-left:4px solid #f0b429}
tr.drifted td.name a,tr.drifted td.name{font-weight:600}
td.name a{color:inherit}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.pill.bad{background:var(--bad)}.pill.good{background:var(--good)}.pill.wrn{background:var(--warn)}
.pill.pred{background:#f0b429;color:#3d2c00}.pill.est{background:#7e57c2}.pill.act{background:#3b6fb6}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(460px,100%),1fr));gap:12px}
.dist-card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.dist-card.drifted{border-top:3px solid var(--bad)}.dist-card.pred{background:#fffdf5}
.dh{margin-bottom:4px}.cn{font-weight:600;margin-right:6px}
.nochart{padding:30px 0;text-align:center;color:var(--muted)}
svg.chart{max-width:100%;height:auto;display:block}
svg .grid{stroke:#edf0f3}svg .axis{stroke:#9aa5b1}
svg text{font-family:inherit}svg .tk{font-size:10px;fill:#52606d}svg .ax{font-size:11px;fill:#52606d}
svg .lg{font-size:11px;fill:#1f2933}svg .ver{stroke:#7e57c2;stroke-dasharray:2 3}
svg .vl{font-size:10px;fill:#7e57c2}
svg .ev{fill:#f0b429;stroke:#8d6e00}
.tw{overflow-x:auto}
.tl-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(520px,100%),1fr));gap:12px}
svg.timeline,svg.dist{width:100%}
.chart-wrap{background:#fff;border:1px solid var(--line);border-radius:8px;
 padding:8px 14px;}
button{font:inherit;padding:5px 12px;border:1px solid #9aa5b1;border-radius:6px;
 background:#fff;cursor:pointer}
footer{color:var(--muted);font-size:12px;margin-top:30px}
"""

JS = """
(function(){
function val(c){var v=c.getAttribute('data-v');return v===null?c.textContent.trim():v;}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var b=t.tBodies[t.tBodies.length-1],rows=Array.prototype.slice.call(b.rows);
  var asc=th.getAttribute('data-asc')!=='1';
  th.setAttribute('data-asc',asc?'1':'0');
  rows.sort(function(r,s){var p=r.cells[i],q=s.cells[i],d;
   if(p.hasAttribute('data-v')&&q.hasAttribute('data-v')){var a=parseFloat(val(p)),c=parseFloat(val(q));
    d=(isNaN(a)?-Infinity:a)-(isNaN(c)?-Infinity:c);if(isNaN(d))d=0;}
   else d=val(p).localeCompare(val(q));
   return asc?d:-d;});
  rows.forEach(function(r){b.appendChild(r);});});});});
var btn=document.getElementById('download-json');
if(btn){btn.addEventListener('click',function(){
 var s=document.getElementById('modelport-result').textContent,a=document.createElement('a');
 a.href=URL.createObjectURL(new Blob([s],{type:'application/json'}));a.download=btn.getAttribute('data-name');
 a.click();});}
})();
"""


def render_html(result: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    """The report of one :meth:`DriftResult.to_dict` with the ``timeline`` of stored windows
    (``window_start``, ``window_end``, ``version``, ``drift_share``, ``dataset_drift``, ``metrics``,
    ``estimated_metrics``, ``events``), as one self-contained HTML document."""
    r = result
    model = str(r.get("model", ""))
    version = r.get("version", "")
    start, end = r.get("window_start"), r.get("window_end")
    window = (
        f"window {_e(_when(start))} → {_e(_when(end))} UTC" if start or end else "explicit data (no window)"
    )
    computed = f" · computed {_e(_when(r.get('computed_at')))} UTC" if r.get("computed_at") else ""
    drift = bool(r.get("dataset_drift"))
    fname = f"{model}-v{version}-drift.json".replace("/", "_")
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>Drift report · {_e(model)} v{_e(version)}</title><style>{CSS}</style></head><body>",
            f'<header class="{"drift" if drift else "ok"}">'
            f'<h1>{_e(model)} <span class="muted">v{_e(version)}</span>'
            f' — monitoring report</h1><div class="muted">{window}{computed}</div>'
            '<nav><a href="#summary">Summary</a><a href="#columns">Columns</a><a href="#distributions">'
            'Distributions</a><a href="#quality">Data quality</a><a href="#timelines">Timelines</a>'
            f'<button id="download-json" data-name="{_e(fname)}">Download JSON</button></nav></header><main>',
            _summary(r),
            _columns_table(r),
            _distributions(r),
            _quality(r),
            _timelines(r, timeline),
            "<footer>modelport · self-contained report: the result is embedded as JSON "
            "(script#modelport-result), the timeline as script#modelport-timeline.</footer></main>",
            f'<script type="application/json" id="modelport-result">{result_json_for_html(r)}</script>',
            '<script type="application/json" id="modelport-timeline">'
            f"{result_json_for_html(timeline)}</script>",
            f"<script>{JS}</script></body></html>\n",
        ]
    )
