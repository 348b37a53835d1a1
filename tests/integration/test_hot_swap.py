"""Hot swap over real HTTP: an alias moves under load, the server switches versions, no request fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from tests.integration.test_serving import _records
from tests.unit.test_registry import credit_pipeline

POLL = 0.25  # the server's watch_interval: how often the watcher re-resolves credit@production
LOAD_SECONDS = 3.0
MAX_REQUESTS_PER_THREAD = 3000


@pytest.fixture(scope="module", params=["unbatched", "batched"])
def swap_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """credit:1 (@production), credit:2 and credit:3 (artifact tampered with) behind one server,
    with and without micro-batching."""
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setenv("MODELPORT_HOME", str(tmp_path_factory.mktemp("hotswap") / "mphome"))
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        model, X, _ = credit_pipeline()
        mp.register(model, "credit", sample=X, alias="production")
        mp.register(model, "credit", sample=X)
        # no twin at registration: the server's first load of credit:3 reads its tampered files
        v3 = mp.register(model, "credit", sample=X, compile=False)
        model_files = [p for p in (Path(v3.artifact_uri) / "model").rglob("*") if p.is_file()]
        assert model_files, v3.artifact_uri
        for f in model_files:
            f.write_bytes(b"junk")
        batching = request.param == "batched"
        app = create_app(
            Client(Settings.from_env()), ["credit@production"], watch_interval=POLL, batching=batching
        )
        with BackgroundServer(app) as server:
            yield {"url": server.url, "rows": {"inputs": _records(X.head(4))}}


def _swaps(client: httpx.Client, result: str) -> float:
    prefix = f'modelport_model_swaps_total{{model="credit",result="{result}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def _hammer(url: str, rows: dict[str, Any], stop: threading.Event, out: list[tuple[float, int, Any]]) -> None:
    """Predict in a loop until ``stop``; record (time answered, status, version or error)."""
    with httpx.Client(base_url=url, timeout=20) as client:
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if stop.is_set():
                return
            try:
                r = client.post("/models/credit/predict", json=rows)
                version = r.json()["version"] if r.status_code == 200 else r.text
                out.append((time.monotonic(), r.status_code, version))
            except Exception as exc:  # noqa: BLE001 - a transport error is a failed request too
                out.append((time.monotonic(), -1, repr(exc)))


def _under_load(server: dict[str, Any], action: Any) -> tuple[list[list[tuple[float, int, Any]]], float]:
    """4 threads predict for LOAD_SECONDS; ``action()`` runs a third of the way in (returns its time)."""
    stop = threading.Event()
    results: list[list[tuple[float, int, Any]]] = [[] for _ in range(4)]
    threads = [
        threading.Thread(target=_hammer, args=(server["url"], server["rows"], stop, out)) for out in results
    ]
    for t in threads:
        t.start()
    time.sleep(LOAD_SECONDS / 3)
    at = time.monotonic()
    action()
    time.sleep(LOAD_SECONDS * 2 / 3)
    stop.set()
    for t in threads:
        t.join(30)
    return results, at


def test_alias_move_swaps_without_failures(swap_server: dict[str, Any]) -> None:
    with httpx.Client(base_url=swap_server["url"]) as c:
        before = _swaps(c, "success")
        assert c.post("/models/credit/predict", json=swap_server["rows"]).json()["version"] == 1
    results, moved_at = _under_load(swap_server, lambda: mp.set_alias("credit", 2, "production"))
    everything = [r for out in results for r in out]
    failed = [r for r in everything if r[1] != 200]
    assert not failed, failed[:5]
    assert len(everything) > 40
    for out in results:  # each thread's answers: version 1, then version 2, never back
        versions = [v for _, _, v in out]
        assert versions == sorted(versions), versions
        assert versions[-1] == 2
    first_v2 = min(t for t, _, v in everything if v == 2)
    assert any(v == 1 for _, _, v in everything)
    assert first_v2 - moved_at < 6 * POLL + 1.0, first_v2 - moved_at
    assert all(v == 2 for t, _, v in everything if t > first_v2 + 0.5)  # the swap is one switch
    with httpx.Client(base_url=swap_server["url"]) as c:
        assert _swaps(c, "success") == before + 1
        assert "credit:1" not in c.get("/readyz").json()["loaded"]  # the old predictor was dropped
        assert c.get("/v2/models/credit").json()["versions"] == ["2"]


def test_failed_load_keeps_the_old_version(swap_server: dict[str, Any]) -> None:
    with httpx.Client(base_url=swap_server["url"]) as c:
        assert c.post("/models/credit/predict", json=swap_server["rows"]).json()["version"] == 2
        before = _swaps(c, "failure")
    results, _ = _under_load(swap_server, lambda: mp.set_alias("credit", 3, "production"))
    everything = [r for out in results for r in out]
    assert everything and all(status == 200 and v == 2 for _, status, v in everything), everything[:5]
    with httpx.Client(base_url=swap_server["url"]) as c:
        assert _swaps(c, "failure") >= before + 1
        assert c.post("/models/credit/predict", json=swap_server["rows"]).json()["version"] == 2
