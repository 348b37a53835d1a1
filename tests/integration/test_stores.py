"""The same registry code on PostgreSQL and on fsspec artifact stores; concurrent registration."""

from __future__ import annotations

import hashlib
import multiprocessing as mp_proc
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import modelport as mp
from modelport.store.migrations import MIGRATIONS


def tiny_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    return LogisticRegression().fit(X, y), X


def _register_in_child(env: dict[str, str], queue) -> None:
    os.environ.update(env)
    import modelport

    model, X = tiny_model()
    try:
        queue.put(modelport.register(model, "race", sample=X).version)
    except Exception as exc:  # noqa: BLE001 - report any failure to the parent
        queue.put(repr(exc))


def register_concurrently(env: dict[str, str], n: int = 8) -> list[object]:
    ctx = mp_proc.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_register_in_child, args=(env, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return results


def check_round_trip() -> None:
    model, X = tiny_model()
    mv = mp.register(model, "credit", sample=X, alias="production", metrics={"auc": 0.9})
    assert mv.version == 1
    mp.register(model, "credit", sample=X)
    mp.set_alias("credit", 2, "production")
    p = mp.load("credit@production")
    assert p.model_version.version == 2
    np.testing.assert_allclose(p.predict_proba(X), model.predict_proba(X))
    assert [s.name for s in mp.list_models()] == ["credit"]
    with pytest.raises(mp.AliasNotFound):
        mp.load("credit@staging")


@pytest.mark.postgres
def test_postgres_round_trip(pg_home: Path) -> None:
    client = mp.default_client()
    assert client.meta.engine.dialect.name == "postgresql"
    check_round_trip()


@pytest.mark.postgres
def test_postgres_eight_processes_get_consecutive_versions(pg_home: Path, pg_url: str) -> None:
    env = {"MODELPORT_HOME": str(pg_home), "MODELPORT_DB_URL": pg_url}
    results = register_concurrently(env)
    assert sorted(results) == list(range(1, 9)), results


def test_sqlite_eight_processes_get_consecutive_versions(home: Path) -> None:
    results = register_concurrently({"MODELPORT_HOME": str(home)})
    assert sorted(results) == list(range(1, 9)), results
    assert [v.version for v in mp.list_versions("race")] == list(range(1, 9))
    # every version is complete: files present and verified
    for v in range(1, 9):
        assert mp.load(f"race:{v}").predict(np.zeros((1, 3))).shape == (1,)


def test_migrations_are_recorded_once(home: Path) -> None:
    from sqlalchemy import select

    from modelport.store import db
    from modelport.store.migrations import migrate

    client = mp.default_client()
    assert migrate(client.meta.engine) == []
    with client.meta.engine.connect() as conn:
        names = list(conn.execute(select(db.migrations.c.name)).scalars())
    assert names == [name for name, _ in MIGRATIONS]


@pytest.mark.parametrize("scheme", ["file", "memory"])
def test_fsspec_artifact_store(home: Path, tmp_path: Path, monkeypatch, scheme: str) -> None:
    url = f"file://{tmp_path / 'remote'}" if scheme == "file" else f"memory://mp-{tmp_path.name}"
    monkeypatch.setenv("MODELPORT_ARTIFACTS", url)
    check_round_trip()
    mv = mp.get("credit:1")
    assert mv.artifact_uri.startswith(url)
    # the local cache is verified: corrupting it forces a fresh, verified download
    key = hashlib.sha256(mp.get("credit:2").artifact_uri.encode()).hexdigest()[:24]
    target = home / "cache" / key / "model" / "model.joblib"
    assert target.is_file()
    target.write_bytes(b"garbage")
    model, X = tiny_model()
    np.testing.assert_array_equal(mp.load("credit:2").predict(X), model.predict(X))
    if scheme == "file":
        remote = Path(mv.artifact_uri.removeprefix("file://")) / "model" / "model.joblib"
        remote.write_bytes(b"tampered")
        # registration's parity gate loaded credit:1 once, into the verified cache: drop it, so
        # that this load downloads the tampered file
        shutil.rmtree(home / "cache" / hashlib.sha256(mv.artifact_uri.encode()).hexdigest()[:24])
        with pytest.raises(mp.ArtifactTampered):
            mp.load("credit:1", runtime="native")  # (runtime="auto" runs the twin, its own files)
