"""The server's HTML page is a template that escapes what the models' signatures hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.serving.docs import html_page, openapi


def test_the_docs_page_shows_each_column_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELPORT_DB_URL", raising=False)
    monkeypatch.delenv("MODELPORT_ARTIFACTS", raising=False)
    X = pd.DataFrame({"<script>alert(1)</script>": np.arange(20.0), "b": np.ones(20)})
    mp.register(LinearRegression().fit(X, X.b), "price", sample=X)
    mv = Client(Settings.from_env()).registry.get("price")
    page = html_page([mv])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<h2>price <small>version 1" in page and "<td>float64</td>" in page
    spec = openapi([mv])
    assert "/models/price/predict" in spec["paths"] and "price_request" in spec["components"]["schemas"]
