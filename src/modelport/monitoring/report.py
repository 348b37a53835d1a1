"""The monitoring report: one self-contained HTML file built from a :class:`DriftResult` dict.

Everything is inline — CSS, the charts (SVG drawn here, in Python), the result itself as JSON in a
``<script type="application/json" id="modelport-result">`` block — so the file opens without a
network and carries the same data as ``DriftResult.to_json``. No JS library, font or image is
loaded; a few lines of inline JS only make the tables sortable and the JSON downloadable.

>>> html = render_html(result.to_dict(), timeline)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from modelport.monitoring.report_charts import _bar_chart, _line_chart, _y_range
from modelport.monitoring.report_format import (
    DRIFT_COLOR,
    METRIC_COLORS,
    OK_COLOR,
    _e,
    _finite,
    _fmt,
    _int,
    _num,
    _parse_time,
    _pct,
    _rule,
    _tick_pct,
    _verdict,
    _when,
    result_json_for_html,
)
from modelport.monitoring.results import P_VALUE_TESTS

__all__ = ["render_html", "result_json_for_html"]

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
