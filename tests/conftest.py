"""Shared fixtures: an isolated modelport home per test, a real PostgreSQL schema, tiny models."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PG_ADMIN_URL = os.environ.get("MODELPORT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# Tests must never depend on the developer's own ~/.modelport.
os.environ.setdefault("MODELPORT_HOME", "/nonexistent-set-by-fixture")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MODELPORT_HOME (SQLite + local artifacts) for this test."""
    h = tmp_path / "mphome"
    monkeypatch.setenv("MODELPORT_HOME", str(h))
    monkeypatch.delenv("MODELPORT_DB_URL", raising=False)
    monkeypatch.delenv("MODELPORT_ARTIFACTS", raising=False)
    return h


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema in database `test`, dropped afterwards."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    import psycopg

    schema = f"mp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_home(home: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Like ``home`` but with metadata in PostgreSQL."""
    monkeypatch.setenv("MODELPORT_DB_URL", pg_url)
    return home


def loan_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Small mixed-type tabular data (numeric with gaps + categorical) and a binary label."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.8, 0.5, n)
    debt = rng.uniform(0, 0.8, n)
    age = rng.integers(18, 80, n)
    home_own = rng.choice(["RENT", "OWN", "MORTGAGE"], n)
    purpose = rng.choice(["car", "debt", "home", "edu"], n)
    logit = -2 + 3 * debt - (income - 50000) / 40000 + (home_own == "RENT") * 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    income[rng.uniform(size=n) < 0.05] = np.nan
    X = pd.DataFrame({"income": income, "debt_ratio": debt, "age": age, "home": home_own, "purpose": purpose})
    return X, y
