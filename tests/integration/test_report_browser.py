"""The HTML report in a real browser (Debian's chromium driven by Playwright): it renders its
charts and tables from the file alone, without any network request."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from tests.unit.test_report import XSS, make_result, make_timeline

CHROMIUM = Path("/usr/bin/chromium")


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing (Debian package chromium); CI must run the browser test")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser test needs it")


def _png_colors(data: bytes) -> set[tuple[int, ...]]:
    """Distinct pixel colors of an 8-bit RGB/RGBA PNG (Chromium's screenshots), no imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = depth = ctype = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and ctype in (2, 6), (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colors: set[tuple[int, ...]] = set()
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:  # a sample of the rows is plenty
            colors.update(tuple(line[i : i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return colors


def test_report_opens_in_chromium_and_shows_its_charts(tmp_path: Path) -> None:
    _require_chromium()
    if os.environ.get("CI"):
        import playwright.sync_api as sync_api  # CI must have it: fail, never skip
    else:
        sync_api = pytest.importorskip(
            "playwright.sync_api", reason="the playwright package is not installed"
        )

    result = make_result()
    path = tmp_path / "report.html"
    result.to_html(path, timeline=make_timeline())
    charted = [c for c in [result.prediction, *result.columns] if c is not None and c.histogram]

    requests: list[str] = []
    blocked: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.add_init_script("window.__alerts = []; window.alert = m => window.__alerts.push(String(m));")

            def route(r: object) -> None:
                url = r.request.url  # type: ignore[attr-defined]
                requests.append(url)
                if url.startswith("file://"):
                    r.continue_()  # type: ignore[attr-defined]
                else:
                    blocked.append(url)
                    r.abort()  # type: ignore[attr-defined]

            page.route("**/*", route)
            page.goto(path.as_uri())
            page.wait_for_load_state("load")

            # every column with chart data has a visible chart with a real size
            charts = page.locator("svg.dist")
            assert charts.count() == len(charted)
            for i, col in enumerate(charted):
                chart = charts.nth(i)
                assert chart.get_attribute("data-column") == col.column
                chart.scroll_into_view_if_needed()
                assert chart.is_visible()
                box = chart.bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 100, (col.column, box)
                assert chart.locator("rect").count() >= 4
            # the timelines draw too
            for css in ("svg.drift-timeline", "svg.metric-timeline"):
                box = page.locator(css).first.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100, css

            # the verdict cells are rendered: one per row, drift / OK as in the result
            verdicts = page.locator("#columns-table td.verdict .pill").all_inner_texts()
            expected = [result.prediction, *result.columns]
            assert [v.strip() for v in verdicts] == ["Drift" if c and c.drifted else "OK" for c in expected]
            drift_pill = page.locator("#columns-table td.verdict .pill.bad").first
            assert drift_pill.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(201, 48, 44)"
            assert page.locator("#dataset-verdict").inner_text().strip() in (
                "Dataset drift detected",
                "No dataset drift",
            )
            # the hostile column name is text, not a script
            assert page.locator(f'#columns-table tr[data-column="{XSS}"]').count() == 1
            assert page.evaluate("() => window.__alerts") == []

            # the embedded JSON is readable by the page itself
            model = page.evaluate(
                "() => JSON.parse(document.getElementById('modelport-result').textContent).model"
            )
            assert model == result.model

            # sorting by the verdict column puts drifted columns together, the prediction row stays first
            page.locator("#columns-table th", has_text="Verdict").click()
            page.locator("#columns-table th", has_text="Verdict").click()
            rows = page.locator("#columns-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.column)")
            assert rows[0] == "prediction"
            flags = [next(c.drifted for c in result.columns if c.column == name) for name in rows[1:]]
            assert flags == sorted(flags, reverse=True)

            page.evaluate("() => window.scrollTo(0, 0)")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert not errors, errors
        finally:
            browser.close()

    assert not blocked, f"the report tried to reach the network: {blocked}"
    assert requests and all(u.startswith("file://") for u in requests)
    data = shot.read_bytes()
    assert len(data) > 20_000
    colors = _png_colors(data)
    assert len(colors) > 20, f"blank screenshot? {len(colors)} colors"
    # the series colors of the charts are on screen
    assert (0x5B, 0x7B, 0xB2) in colors and (0xEF, 0x8A, 0x2B) in colors
    keep = os.environ.get("MODELPORT_REPORT_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(data)
