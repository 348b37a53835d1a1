"""The HTML monitoring report: summary, columns table, per-column charts, timelines, embedded JSON."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import numpy as np

from modelport.monitoring.report import render_html
from modelport.monitoring.results import (
    ColumnDrift,
    DriftResult,
    Histogram,
    Performance,
    QualityIssue,
)

XSS = "<script>alert(1)</script>"


def _numeric(name: str, rng: np.random.Generator, shift: float, *, test: str = "ks") -> ColumnDrift:
    ref = rng.normal(0, 1, 2000)
    cur = rng.normal(shift, 1, 1500)
    edges = np.quantile(ref, np.linspace(0, 1, 11))
    rc, _ = np.histogram(ref, edges)
    cc, _ = np.histogram(np.clip(cur, edges[0], edges[-1]), edges)
    drifted = shift > 0.2
    stat = 1e-12 if drifted else 0.43
    if test == "wasserstein":
        stat = 0.35 if drifted else 0.02
    return ColumnDrift(
        column=name,
        kind="numeric",
        test=test,
        statistic=stat,
        threshold=0.05 if test == "ks" else 0.1,
        drifted=drifted,
        reference_count=2000,
        current_count=1500,
        histogram=Histogram(
            reference=[float(v) for v in rc],
            current=[float(v) for v in cc],
            edges=[float(v) for v in edges],
        ),
    )


def _categorical(
    name: str, cats: list[str], ref: list[float], cur: list[float], drifted: bool
) -> ColumnDrift:
    return ColumnDrift(
        column=name,
        kind="categorical",
        test="chisquare",
        statistic=0.0004 if drifted else 0.61,
        threshold=0.05,
        drifted=drifted,
        reference_count=int(sum(ref)),
        current_count=int(sum(cur)),
        histogram=Histogram(reference=ref, current=cur, categories=cats),
    )


def make_result(n_numeric: int = 3, *, bins_seed: int = 0) -> DriftResult:
    """A realistic result: numeric and categorical columns (one named like an XSS attempt), a
    prediction drift, quality issues, actual and estimated performance."""
    rng = np.random.default_rng(bins_seed)
    columns = [
        _numeric(
            f"num_{i}" if i else "income",
            rng,
            0.6 if i % 2 == 0 else 0.0,
            test="ks" if i % 3 else "wasserstein",
        )
        for i in range(n_numeric)
    ]
    columns.append(
        _categorical(
            "region", ["north", "south", "east", "west"], [500, 600, 400, 500], [300, 900, 200, 100], True
        )
    )
    columns.append(_categorical(XSS, ["a&b", '"q"', "<i>"], [10, 20, 30], [11, 19, 30], False))
    columns.append(
        ColumnDrift(
            column="empty_col",
            kind="numeric",
            test="ks",
            statistic=float("nan"),
            threshold=0.05,
            drifted=False,
            reference_count=100,
            current_count=0,
            histogram=None,
            note="current column is empty",
        )
    )
    prediction = _categorical("prediction", ["0", "1"], [1400, 600], [900, 600], True)
    return DriftResult(
        model="credit",
        version=4,
        window_start="2024-05-01T00:00:00+00:00",
        window_end="2024-05-02T00:00:00+00:00",
        reference_rows=2000,
        current_rows=1500,
        columns=columns,
        prediction=prediction,
        drift_share=sum(c.drifted for c in columns) / len(columns),
        drift_share_threshold=0.5,
        dataset_drift=sum(c.drifted for c in columns) / len(columns) >= 0.5,
        quality=[
            QualityIssue("income", "missing_share", "12.0% missing (reference 1.0%)", 0.12, 0.01, "warning"),
            QualityIssue("region", "new_category", "new categories: 'mars'", 0.02, None, "error"),
        ],
        performance=Performance(
            task="classifier", metrics={"roc_auc": 0.81, "accuracy": 0.77}, labelled_rows=640
        ),
        estimated_performance=Performance(
            task="classifier", metrics={"roc_auc": 0.79, "accuracy": 0.75}, labelled_rows=0, estimated=True
        ),
        sample_note="current sampled to 1,500 of 3,000 rows",
        computed_at="2024-05-02T00:05:00+00:00",
    )


def make_timeline(n: int = 8) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        share = [0.1, 0.15, 0.2, 0.6, 0.7, 0.2, 0.1, 0.15][i % 8]
        out.append(
            {
                "window_start": f"2024-05-{i + 1:02d}T00:00:00+00:00",
                "window_end": f"2024-05-{i + 2:02d}T00:00:00+00:00",
                "version": 3 if i < 5 else 4,
                "drift_share": share,
                "dataset_drift": share >= 0.5,
                "metrics": {"roc_auc": 0.82 - 0.02 * (i % 5)} if i % 3 != 2 else {},
                "estimated_metrics": {"roc_auc": 0.81 - 0.015 * (i % 5)},
                "events": ["retrained: credit:4 promoted"] if i == 5 else [],
            }
        )
    return out


def embedded_json(html: str, element_id: str = "modelport-result") -> Any:
    m = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert m, f"no {element_id} block"
    return json.loads(m.group(1))


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _parse(html: str) -> _Collector:
    p = _Collector()
    p.feed(html)
    return p


def _rows(html: str) -> dict[str, str]:
    """data-column of each columns-table row -> the row's HTML."""
    table = html[html.index('id="columns-table"') : html.index("</table>", html.index('id="columns-table"'))]
    return dict(re.findall(r'<tr class="[^"]*" data-column="([^"]*)">(.*?)</tr>', table, re.S))


def test_report_sections_rows_and_verdicts() -> None:
    result = make_result()
    html = render_html(result.to_dict(), make_timeline())
    assert html.startswith("<!DOCTYPE html>")
    rows = _rows(html)
    names = [c.column for c in result.columns]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert set(rows) == {*(n if n != XSS else escaped for n in names), "prediction"}
    for c in result.columns:
        row = rows[c.column if c.column != XSS else escaped]
        assert ('class="pill bad">Drift<' in row) == c.drifted
        assert ('class="pill good">OK<' in row) == (not c.drifted)
        assert f">{c.test}<" in row
        assert ("p-value" in row) == c.is_p_value and ("distance" in row) == (not c.is_p_value)
    assert "1.00e-12" in rows["income"] or "1.00e-12" in html  # tiny p-values readable
    assert "current column is empty" in rows["empty_col"]
    # the prediction row comes first, highlighted, in its own (unsorted) body
    assert re.search(r'<tbody class="fixed">\s*<tr class="pred drifted" data-column="prediction">', html)
    # summary
    assert "Dataset drift" in html and "of 6 columns drifted" in html
    assert "current sampled to 1,500 of 3,000 rows" in html
    assert "2 issues" in html and "1 error(s), 1 warning(s)" in html
    assert 'class="pill est"' in html and "estimated without labels" in html and "640 labelled rows" in html
    # quality table
    assert "missing_share" in html and "new_category" in html and "new categories: &#39;mars&#39;" in html


def test_one_chart_per_column_with_legend_and_axes() -> None:
    result = make_result()
    html = render_html(result.to_dict(), make_timeline())
    tags = _parse(html).tags
    dist = [a for t, a in tags if t == "svg" and "dist" in (a.get("class") or "").split()]
    with_hist = [c for c in [result.prediction, *result.columns] if c is not None and c.histogram]
    assert [a["data-column"] for a in dist] == [c.column for c in with_hist]  # parser unescapes
    assert "No distribution data for this column." in html  # the empty column
    for chart in re.findall(r'<svg class="chart dist".*?</svg>', html, re.S):
        assert "reference (n=" in chart and "current (n=" in chart and "share of rows" in chart
        assert chart.count("<rect") >= 4
    assert "income (bin edges)" in html and "region (categories)" in html
    # timelines: drift share with threshold, a metric chart with actual (solid) and estimated (dashed)
    assert html.count('class="chart timeline drift-timeline"') == 1
    assert html.count('class="chart timeline metric-timeline"') == 1
    assert "threshold 50%" in html and "roc_auc (actual)" in html and "roc_auc (estimated)" in html
    assert 'stroke-dasharray="7 4"' in html
    assert ">v4<" in html  # the version change marker
    assert "retrained: credit:4 promoted" in html and 'id="events-table"' in html


def test_embedded_json_round_trips() -> None:
    result = make_result()
    timeline = make_timeline()
    html = render_html(result.to_dict(), timeline)
    data = embedded_json(html)
    expected = result.to_dict()
    expected["columns"][-1]["statistic"] = None  # NaN is not JSON: null in the page
    assert data == expected
    assert embedded_json(html, "modelport-timeline") == timeline
    assert DriftResult.from_dict(data).drifted_columns == result.drifted_columns
    # to_html writes the same document
    assert result.to_html(timeline=timeline) == html


def test_round_trip_exact_without_non_finite_values() -> None:
    result = make_result()
    result.columns = [c for c in result.columns if c.column != "empty_col"]
    html = render_html(result.to_dict(), [])
    assert embedded_json(html) == json.loads(result.to_json()) == result.to_dict()


def test_self_contained_no_network_references() -> None:
    html = render_html(make_result().to_dict(), make_timeline())
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    for tag, attrs in _parse(html).tags:
        if tag == "script":
            assert "src" not in attrs
            assert attrs.get("type") in (None, "application/json")
        if tag in ("link", "img", "iframe", "object", "embed", "image", "use"):
            raise AssertionError(f"external-capable <{tag}> in the report: {attrs}")
        for key in ("src", "href", "xlink:href"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith("#"), (tag, key, value)  # only in-page anchors
    assert "@import" not in html and "url(" not in html


def test_escaping_of_user_provided_strings() -> None:
    result = make_result()
    result.model = 'credit"><img src=x onerror=alert(2)>'
    result.quality.append(QualityIssue(XSS, "schema", XSS))
    html = render_html(result.to_dict(), [{**make_timeline(1)[0], "events": [XSS]}])
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # in the embedded JSON, "<" is escaped so the block cannot be closed early
    block = re.search(r'id="modelport-result">(.*?)</script>', html, re.S)
    assert block and "<" not in block.group(1)
    assert embedded_json(html)["columns"][-2]["column"] == XSS
    scripts = [a for t, a in _parse(html).tags if t == "script"]
    assert len(scripts) == 3  # the two JSON blocks and the inline sort/download script


def test_missing_pieces() -> None:
    bare = DriftResult(
        model="m", version=1, window_start=None, window_end=None, reference_rows=0, current_rows=0, columns=[]
    )
    html = render_html(bare.to_dict(), [])
    assert "No columns were compared." in html and "explicit data (no window)" in html
    assert "not monitored" in html and "no labels and no estimate" in html
    assert "No data quality issues." in html and "No stored windows yet" in html
    assert "<svg" not in html
    assert embedded_json(html) == bare.to_dict()
    # a single window, no metrics, unparsable times, odd histograms
    weird = make_result()
    weird.performance = None
    weird.columns[0].histogram = Histogram(reference=[1, 2, 3], current=[4], edges=[0.0, 1.0])  # wrong edges
    weird.columns[1].histogram = Histogram(reference=[], current=[])
    weird.columns[2].histogram = Histogram(reference=[0, 0], current=[0, 0], edges=[0, 1, 2])
    one = {"window_end": "not a time", "version": 1, "drift_share": 0.2, "dataset_drift": False}
    html = render_html(weird.to_dict(), [one])
    assert html.count('class="chart timeline drift-timeline"') == 1
    assert "No performance metrics in the stored windows" in html and "No events recorded." in html
    assert "No distribution data for this column." in html


def test_many_categories_fold_into_other() -> None:
    cats = [f"c{i}" for i in range(60)]
    col = _categorical(
        "city", cats, [float(60 - i) for i in range(60)], [float(i + 1) for i in range(60)], True
    )
    result = make_result()
    result.columns = [col]
    html = render_html(result.to_dict(), [])
    chart = re.search(r'<svg class="chart dist"[^>]*data-column="city".*?</svg>', html, re.S)
    assert chart and "other (37)" in chart.group(0)  # 23 largest shown, 37 folded
    assert ">c0<" in chart.group(0) and ">c59<" in chart.group(0)  # largest in ref, in cur


def test_size_for_twenty_columns() -> None:
    result = make_result(n_numeric=18)
    assert len(result.columns) >= 20
    html = render_html(result.to_dict(), make_timeline(30))
    assert len(html.encode()) < 300_000, len(html.encode())


def test_shares_as_the_drift_module_writes_them() -> None:
    """Histograms of shares (20 bins, top 20 categories + "other") are drawn as they are."""
    result = make_result()
    edges = [float(i) for i in range(21)]
    result.columns[0].histogram = Histogram(
        reference=[0.05] * 20, current=[0.1] * 10 + [0.0] * 10, edges=edges
    )
    cats = [f"k{i}" for i in range(20)] + ["other"]
    result.columns[3].histogram = Histogram(reference=[1 / 21] * 21, current=[1 / 21] * 21, categories=cats)
    html = render_html(result.to_dict(), [])
    chart = re.search(r'<svg class="chart dist"[^>]*data-column="income".*?</svg>', html, re.S)
    assert chart and "[0, 1): reference 5.0%, current 10.0%" in chart.group(0)
    assert "[19, 20]: reference 5.0%, current 0.0%" in chart.group(0)  # the last bin is closed
    chart = re.search(r'<svg class="chart dist"[^>]*data-column="region".*?</svg>', html, re.S)
    assert chart and ">other<" in chart.group(0) and "other (" not in chart.group(0)


def test_versions_side_by_side_get_a_line_each() -> None:
    timeline = []
    for day in range(1, 5):
        for version, share in ((3, 0.1), (4, 0.6)):
            timeline.append(
                {
                    "window_start": f"2024-05-0{day}T00:00:00+00:00",
                    "window_end": f"2024-05-0{day + 1}T00:00:00+00:00",
                    "version": version,
                    "drift_share": share,
                    "dataset_drift": share >= 0.5,
                    "metrics": {"rmse": 1234.5 * version},
                    "estimated_metrics": {},
                    "events": [],
                }
            )
    html = render_html(make_result().to_dict(), timeline)
    drift = re.search(r'<svg class="chart timeline drift-timeline".*?</svg>', html, re.S)
    assert drift and ">v3<" in drift.group(0) and ">v4<" in drift.group(0)
    assert drift.group(0).count('<path d="M') == 2  # one line per version, not a zigzag
    assert 'class="ver"' not in drift.group(0)
    assert "one line per model version" in html
    metric = re.search(r'<svg class="chart timeline metric-timeline".*?</svg>', html, re.S)
    assert metric and ">v3 actual<" in metric.group(0) and "3,703.5" in metric.group(0)


def test_script_in_a_column_name_or_category_is_text() -> None:
    """A column named like a script and a category holding one reach the page as text: in the
    columns table, the distribution card, the chart's labels, tooltips and data attributes."""
    result = make_result()
    hostile = "<script>alert('cat')</script>"
    result.columns = [
        _categorical(XSS, [hostile, "b"], [10, 20], [20, 10], True),
        _categorical("plain", ["x", hostile], [5, 5], [5, 6], False),
    ]
    result.prediction = None
    html = render_html(result.to_dict(), [{**make_timeline(1)[0], "events": [hostile]}])
    parsed = _parse(html)
    scripts = [a for t, a in parsed.tags if t == "script"]
    assert len(scripts) == 3  # the two JSON blocks and the inline script, none injected
    assert "<script>alert" not in html
    assert html.count("&lt;script&gt;alert(&#39;cat&#39;)&lt;/script&gt;") >= 4  # ticks, tooltips, event
    charts = [a for t, a in parsed.tags if t == "svg" and "dist" in (a.get("class") or "")]
    assert [a["data-column"] for a in charts] == [XSS, "plain"]  # the parser unescapes the attribute
    assert set(_rows(html)) == {"&lt;script&gt;alert(1)&lt;/script&gt;", "plain"}
    assert embedded_json(html)["columns"][0]["histogram"]["categories"][0] == hostile
