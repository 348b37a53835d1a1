"""A batch job whose features come from a real Feast store (local provider, file offline store,
SQLite online store): point-in-time joins, only new entity rows scored, entities without features.

Feast needs pandas<3, so this runs in its own environment, tests/feature_store/.venv, which ``make test``
builds from tests/feature_store/requirements.txt and runs after the main suite. In the main environment
(no Feast) it is skipped.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

feast = pytest.importorskip("feast", reason="Feast runs in tests/feature_store/.venv (make test builds it)")
pytest.importorskip("sklearn")

import modelport as mp  # noqa: E402
from modelport.batch.feast import FeastEnricher  # noqa: E402
from modelport.errors import InvalidInput  # noqa: E402

T0 = pd.Timestamp("2026-03-01", tz="UTC")
CHANGE = T0 + pd.Timedelta(days=10)  # entities 0-4 get new feature values at this time
FEATURES = ["annual_income", "debt_to_income", "revolving_utilization", "delinquencies_2y"]
REFS = [f"credit_stats:{f}" for f in FEATURES]
N = 80  # entities 0..79 have features; 999 never has


def feature_rows() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    first = pd.DataFrame(
        {
            "application_id": np.arange(N, dtype=np.int64),
            "annual_income": np.round(rng.lognormal(10.8, 0.4, N), -2),
            "debt_to_income": np.round(rng.uniform(0.02, 0.5, N), 3),
            "revolving_utilization": np.round(rng.uniform(0, 1, N), 3),
            "delinquencies_2y": rng.poisson(0.5, N).astype(np.int64),
            "event_timestamp": T0,
        }
    )
    later = first.iloc[:5].copy()  # a worse profile from CHANGE on: rows before it keep the old one
    later["debt_to_income"] = 0.95
    later["revolving_utilization"] = 1.0
    later["delinquencies_2y"] = later["delinquencies_2y"] + 4
    later["event_timestamp"] = CHANGE
    rows = pd.concat([first, later], ignore_index=True)
    rows["created"] = rows["event_timestamp"]
    return rows


def make_repo(root: Path) -> Any:
    Entity, FeatureView, Field, FileSource = feast.Entity, feast.FeatureView, feast.Field, feast.FileSource
    Float64, Int64 = feast.types.Float64, feast.types.Int64

    root.mkdir()
    (root / "feature_store.yaml").write_text(
        yaml.safe_dump(
            {
                "project": "credit",
                "provider": "local",
                "registry": str(root / "registry.db"),
                "online_store": {"type": "sqlite", "path": str(root / "online.db")},
                "offline_store": {"type": "file"},
                "entity_key_serialization_version": 3,
            }
        )
    )
    feature_rows().to_parquet(root / "credit_stats.parquet")
    application = Entity(name="application", join_keys=["application_id"], value_type=feast.ValueType.INT64)
    source = FileSource(
        path=str(root / "credit_stats.parquet"),
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    )
    view = FeatureView(
        name="credit_stats",
        entities=[application],
        ttl=timedelta(days=60),
        schema=[
            Field(name="annual_income", dtype=Float64),
            Field(name="debt_to_income", dtype=Float64),
            Field(name="revolving_utilization", dtype=Float64),
            Field(name="delinquencies_2y", dtype=Int64),
        ],
        source=source,
    )
    service = feast.FeatureService(name="credit_v1", features=[view])
    store = feast.FeatureStore(repo_path=str(root))
    store.apply([application, view, service])
    return store


def train_model() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    n = 400
    X = pd.DataFrame(
        {
            "annual_income": np.round(rng.lognormal(10.8, 0.4, n), -2),
            "debt_to_income": rng.uniform(0.0, 1.0, n),
            "revolving_utilization": rng.uniform(0, 1, n),
            "delinquencies_2y": rng.poisson(1.0, n).astype(np.int64),
        }
    )
    z = -1 + 3 * X["debt_to_income"] + 1.5 * X["revolving_utilization"] + 0.5 * X["delinquencies_2y"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z + X["annual_income"] / 60_000))).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    mp.register(model, "credit", sample=X, alias="production")
    return model


def entity_rows(ids: list[int], times: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"application_id": np.asarray(ids, dtype=np.int64), "event_timestamp": times})


def as_of(features: pd.DataFrame, entities: pd.DataFrame, ttl: pd.Timedelta) -> pd.DataFrame:
    """The expected point-in-time join, computed by hand: the latest feature row at or before each
    entity row's time (and within the TTL)."""
    out = []
    for key, ts in zip(entities["application_id"], entities["event_timestamp"], strict=True):
        rows = features[(features["application_id"] == key) & (features["event_timestamp"] <= ts)]
        rows = rows[rows["event_timestamp"] >= ts - ttl]
        out.append(rows.sort_values("event_timestamp").iloc[-1][FEATURES] if len(rows) else None)
    return pd.DataFrame([r if r is not None else pd.Series(index=FEATURES) for r in out])


def write_job(tmp_path: Path, engine: str = "local", **features: Any) -> Path:
    spec: dict[str, Any] = {
        "name": f"credit-feast-{engine}",
        "engine": engine,
        "model": "credit@production",
        "source": {"kind": "parquet", "path": "entities/", "watermark": "event_timestamp"},
        "key": "application_id",
        "passthrough": ["event_timestamp"],
        "output": {"kind": "parquet", "path": "scores/"},
        "features": {"kind": "feast", "repo": "feature_repo/", "timestamp": "event_timestamp", **features},
    }
    if engine == "ray":
        spec["ray"] = {"num_cpus": 2}
        spec["batch_size"] = 40  # several chunks, so several Feast lookups on the actors
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    (tmp_path / "entities").mkdir(exist_ok=True)
    return path


@pytest.mark.parametrize("by", ["features", "service"])
def test_feast_features_point_in_time_new_rows_only(tmp_path: Path, home: Path, by: str) -> None:
    make_repo(tmp_path / "feature_repo")
    model = train_model()
    path = write_job(tmp_path, **({"features": REFS} if by == "features" else {"service": "credit_v1"}))

    # Run 1: every entity a day after T0 (entities 0-4 must get their OLD values), one entity with
    # no features at all (999), and one row from before entity 1's first feature row (no future leak).
    day1 = [T0 + pd.Timedelta(days=1, minutes=i) for i in range(N)]
    first = entity_rows([*range(N), 999, 1], [*day1, T0 + pd.Timedelta(days=1), T0 - pd.Timedelta(hours=1)])
    first.to_parquet(tmp_path / "entities" / "a.parquet")
    r1 = mp.batch.run(path)
    assert r1.state == "published"
    assert (r1.stats["rows_in"], r1.rows_out, r1.stats["rows_rejected"]) == (N + 2, N, 2)

    # Run 2: new rows arrive — entities 0-4 after the change (NEW values) and between the watermark
    # and the change (still old values), 10 more entities; the rows of run 1 are still in the folder.
    mid = [T0 + pd.Timedelta(days=5, minutes=i) for i in range(5)]
    late = [CHANGE + pd.Timedelta(days=1, minutes=i) for i in range(15)]
    second = entity_rows([*range(5), *range(5), *range(10, 20)], [*mid, *late])
    second.to_parquet(tmp_path / "entities" / "b.parquet")
    r2 = mp.batch.run(path)
    assert (r2.stats["rows_in"], r2.rows_out, r2.stats["rows_rejected"]) == (20, 20, 0)  # only new rows
    assert mp.batch.run(path).rows_out == 0

    out = pd.read_parquet(tmp_path / "scores")
    assert len(out) == N + 20 and set(out["run_id"]) == {r1.run_id, r2.run_id}
    scored = pd.concat([first.iloc[:N], second], ignore_index=True)
    expected_features = as_of(feature_rows(), scored, pd.Timedelta(days=60))
    assert expected_features.notna().all().all()
    expected = model.predict_proba(expected_features.astype({"delinquencies_2y": "int64"}))[:, 1]
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    got = (
        out.set_index(["application_id", "event_timestamp"])
        .loc[list(zip(scored["application_id"], scored["event_timestamp"], strict=True)), "proba_1"]
        .to_numpy()
    )
    np.testing.assert_allclose(got, expected, rtol=1e-9)

    # Point in time: entity 0 before the change scored on the old profile, after it on the new one.
    old = feature_rows().iloc[[0]][FEATURES]
    new = feature_rows().iloc[[N]][FEATURES]
    p_old, p_new = model.predict_proba(old)[0, 1], model.predict_proba(new)[0, 1]
    assert abs(p_new - p_old) > 0.05
    by_time = out[out["application_id"] == 0].set_index("event_timestamp")["proba_1"]
    assert by_time[day1[0]] == pytest.approx(p_old) and by_time[mid[0]] == pytest.approx(p_old)
    assert by_time[late[0]] == pytest.approx(p_new)

    # No feature values (an unknown entity, or a time before the entity's first features): the
    # signature's columns are not nullable, so the empty integer feature rejects the row by name.
    rejects = pd.read_parquet(tmp_path / "scores" / "_rejects")
    assert sorted(rejects["application_id"].astype(int)) == [1, 999]
    for reason in rejects["reject_reason"]:
        assert "delinquencies_2y" in reason and "without missing values" in reason, reason


def test_enricher_keeps_rows_order_and_index(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    enricher = FeastEnricher({"kind": "feast", "repo": str(tmp_path / "repo"), "features": REFS[:2]})
    assert enricher.needs() == ["application_id", "event_timestamp"]
    assert enricher.provides() == ["annual_income", "debt_to_income"]
    # Unsorted times, a repeated entity, a naive timestamp column (taken as UTC), a gappy index.
    times = [CHANGE + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=1), CHANGE - pd.Timedelta(hours=1)]
    frame = pd.DataFrame(
        {
            "application_id": [0, 0, 0, 999, 3],
            "event_timestamp": pd.to_datetime([*times, T0, CHANGE + pd.Timedelta(days=1)]).tz_localize(None),
            "other": list("abcde"),
        },
        index=[40, 10, 30, 20, 50],
    )
    got = enricher.enrich(frame)
    assert list(got.index) == [40, 10, 30, 20, 50] and list(got["other"]) == list("abcde")
    rows = feature_rows()
    old = rows.loc[0, "debt_to_income"]
    assert list(got["debt_to_income"].iloc[:3]) == [0.95, old, old]  # new after CHANGE, old before
    assert np.isnan(got.loc[20, "annual_income"]) and got.loc[50, "debt_to_income"] == 0.95
    assert got["annual_income"].dtype == np.float64

    full = FeastEnricher(
        {"kind": "feast", "repo": str(tmp_path / "repo"), "service": "credit_v1", "full_feature_names": True}
    )
    assert full.provides() == [f"credit_stats__{f}" for f in FEATURES]
    ints = full.enrich(frame)["credit_stats__delinquencies_2y"]
    assert ints.iloc[0] == rows.loc[N, "delinquencies_2y"] and ints.loc[20] is None  # ints stay ints
    assert full.enrich(frame.iloc[:0]).columns[-1] == "credit_stats__delinquencies_2y"

    with pytest.raises(InvalidInput, match="no feature 'nope'"):
        FeastEnricher({"kind": "feast", "repo": str(tmp_path / "repo"), "features": ["credit_stats:nope"]})
    with pytest.raises(InvalidInput, match="exactly one of"):
        FeastEnricher({"kind": "feast", "repo": str(tmp_path / "repo")})


def test_the_ray_engine_joins_the_same_features(tmp_path: Path, home: Path) -> None:
    """engine: ray — each actor opens the feature store once and joins features to its chunks."""
    pytest.importorskip("ray", reason="the Feast environment installs ray for this test")
    train_model()
    times = [T0 + pd.Timedelta(days=1, minutes=i) for i in range(N)] + [CHANGE + pd.Timedelta(days=1)] * 5
    entities = entity_rows([*range(N), *range(5)], times)
    outputs = {}
    for engine in ("local", "ray"):
        folder = tmp_path / engine
        folder.mkdir()
        make_repo(folder / "feature_repo")
        path = write_job(folder, engine=engine, features=REFS)
        entities.to_parquet(folder / "entities" / "a.parquet")
        result = mp.batch.run(path)
        assert (result.state, result.rows_out) == ("published", N + 5), engine
        out = pd.read_parquet(folder / "scores").drop(columns=["run_id"])
        out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
        outputs[engine] = out.sort_values(["application_id", "event_timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(outputs["ray"], outputs["local"], check_like=True)
    late = outputs["ray"][outputs["ray"]["event_timestamp"] > CHANGE]
    assert len(late) == 5 and late["proba_1"].nunique() == 5  # the new profiles, point in time
