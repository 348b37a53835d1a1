"""The closed loop, scripted: a stable period triggers nothing; a shift in the data-generating
process with labels arriving triggers retraining, a better challenger is promoted (while a server
under load hot-swaps with 0 failed requests); a worse challenger is never promoted; a crashing
training function changes nothing that serves; rollback restores the previous version."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.retraining.loop import check, history, rollback, run
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from tests.integration.test_hot_swap import _under_load
from tests.integration.test_serving import _records

T0 = pd.Timestamp("2026-10-01", tz="UTC")
TRAINING = """
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

FEATURES = ["income", "debt_ratio", "age", "home", "purpose"]


def train(df):
    pre = ColumnTransformer(
        [("num", SimpleImputer(), ["income", "debt_ratio", "age"]),
         ("cat", OneHotEncoder(handle_unknown="ignore"), ["home", "purpose"])]
    )
    return make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(df[FEATURES], df["defaulted"])
"""
WORSE = """
from sklearn.dummy import DummyClassifier

def train(df):
    X = df[["income", "debt_ratio", "age", "home", "purpose"]]
    return DummyClassifier(strategy="prior").fit(X, df["defaulted"])
"""
CRASH = """
def train(df):
    raise RuntimeError("the feature store is down")
"""


def applications(n: int, seed: int, shifted: bool, start: pd.Timestamp) -> pd.DataFrame:
    """Loan applications with outcomes; ``shifted``: incomes fall, applicants are older, and age now
    drives default (the world changed)."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.8 - (0.6 if shifted else 0.0), 0.5, n)
    debt = rng.uniform(0, 0.8, n)
    age = rng.integers(18, 80, n) + (15 if shifted else 0)
    home = rng.choice(["RENT", "OWN", "MORTGAGE"], n)
    purpose = rng.choice(["car", "debt", "home", "edu"] if not shifted else ["debt", "edu"], n)
    if shifted:  # older applicants now default far more often; debt matters less
        logit = -3 + 1.5 * debt - (income - 25_000) / 40_000 + 0.09 * (age - 50)
    else:
        logit = -2 + 3 * debt - (income - 50_000) / 40_000 + (home == "RENT") * 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "income": income,
            "debt_ratio": debt,
            "age": age,
            "home": home,
            "purpose": purpose,
            "defaulted": y,
            "applied_at": start + pd.to_timedelta(np.arange(n), unit="min"),
        }
    )


def policy(tmp_path: Path, entrypoint: str = "credit_training:train", **trigger: Any) -> Path:
    spec = {
        "model": "credit",
        "alias": "production",
        "train": {
            "entrypoint": entrypoint,
            "data": {
                "kind": "parquet",
                "path": "labelled.parquet",
                "window": "180d",
                "time_column": "applied_at",
            },
            "label": "defaulted",
            "timeout": 120,
        },
        "trigger": trigger or {"dataset_drift": True, "metric_drop": {"metric": "roc_auc", "by": 0.05}},
        "evaluate": {"metric": "roc_auc", "holdout": "latest 20% by time", "min_improvement": 0.002},
        "promote": {"mode": "direct"},
    }
    path = tmp_path / f"policy-{entrypoint.split(':')[0]}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def loop(home: Path, tmp_path: Path) -> dict[str, Any]:
    for name, code in (("credit_training", TRAINING), ("worse", WORSE), ("crash", CRASH)):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
    stable = applications(3000, seed=1, shifted=False, start=T0)
    import importlib.util

    spec = importlib.util.spec_from_file_location("credit_training_test", tmp_path / "credit_training.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    champion = module.train(stable.iloc[:2400])
    features = ["income", "debt_ratio", "age", "home", "purpose"]
    from modelport.monitoring.performance import classification_metrics

    proba = champion.predict_proba(stable.iloc[2400:][features])
    auc = classification_metrics(stable.iloc[2400:]["defaulted"].to_numpy(), proba.argmax(1), proba, [0, 1])[
        "roc_auc"
    ]
    mp.register(champion, "credit", sample=stable[features], alias="production", metrics={"roc_auc": auc})
    stable.to_parquet(tmp_path / "labelled.parquet", index=False)
    return {"stable": stable, "features": features, "auc": auc}


def test_the_closed_loop(loop: dict[str, Any], tmp_path: Path) -> None:
    features = loop["features"]
    main = policy(tmp_path)
    # a stable period: monitoring sees no drift and no drop; nothing retrains
    calm = applications(1500, seed=2, shifted=False, start=T0 + pd.Timedelta(days=5))
    res = mp.monitor("credit@production", current=calm[[*features, "defaulted"]], target="defaulted")
    assert not res.dataset_drift
    assert not check(main).trigger
    assert run(main).state == "skipped"
    assert mp.get("credit@production").version == 1

    # the data-generating process shifts; labels arrive with the new data
    shifted = applications(4000, seed=3, shifted=True, start=T0 + pd.Timedelta(days=10))
    pd.concat([loop["stable"], calm, shifted]).to_parquet(tmp_path / "labelled.parquet", index=False)
    seen = mp.monitor("credit@production", current=shifted[[*features, "defaulted"]], target="defaulted")
    assert seen.dataset_drift and seen.performance is not None
    decision = check(main)
    assert decision.trigger and any("dataset drift" in r for r in decision.reasons)
    assert any("roc_auc fell" in r for r in decision.reasons), decision.reasons

    # a worse challenger is never promoted; a crashing training changes nothing
    worse = run(policy(tmp_path, "worse:train"), force=True)
    assert worse.state == "rejected" and mp.get("credit@production").version == 1
    crashed = run(policy(tmp_path, "crash:train"), force=True)
    assert crashed.state == "failed" and "feature store is down" in crashed.message
    assert mp.get("credit@production").version == 1

    # the real policy: the challenger beats the champion on the same holdout and is promoted while a
    # server watching the alias answers under load
    app = create_app(
        Client(Settings.from_env()), ["credit@production"], watch_interval=0.25, log_sample_rate=0
    )
    with BackgroundServer(app) as srv:
        server = {"url": srv.url, "rows": {"inputs": _records(shifted[features].head(3))}}
        outcome: dict[str, Any] = {}
        results, _ = _under_load(server, lambda: outcome.update(result=run(main)))
    promoted = outcome["result"]
    assert promoted.state == "promoted", promoted.message
    champion_auc, challenger_auc = (
        promoted.metrics["champion_roc_auc"],
        promoted.metrics["challenger_roc_auc"],
    )
    assert challenger_auc > champion_auc + 0.002
    answers = [r for out in results for r in out]
    assert answers and all(status == 200 for _, status, _ in answers)  # 0 failed requests
    new_version = int(promoted.challenger.split(":")[1])
    assert {v for _, _, v in answers} == {1, new_version}  # the server switched during the load
    new = mp.get("credit@production")
    assert new.ref == promoted.challenger and new.lineage["parent"] == "credit:1"
    lineage = new.lineage["retraining"]
    assert (
        lineage["data"]["rows"] > 0 and lineage["code"]["sha256"] and lineage["trigger"] == promoted.reasons
    )

    # the audit trail has every step; rollback restores the champion
    kinds = [e["kind"] for e in history("credit")]
    assert kinds.count("promotion") == 1 and "failure" in kinds and "decision" in kinds and "check" in kinds
    assert rollback("credit", "production").version == 1
    assert history("credit")[-1]["kind"] == "rollback"
    print(  # the scenario's timeline, for the record
        f"\nchampion roc_auc {loop['auc']:.3f} at registration; "
        f"after the shift {seen.performance.metrics['roc_auc']:.3f}"
        f"; challenger {challenger_auc:.3f} vs champion {champion_auc:.3f} on the holdout"
    )


def test_policy_errors_name_the_problem(loop: dict[str, Any], tmp_path: Path) -> None:
    from modelport.errors import InvalidInput
    from modelport.retraining.policy import load_policy

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: credit\nalias: production\ntrain: {entrypoint: x, label: y, data: {path: d}}\n")
    with pytest.raises(InvalidInput, match="module:function"):
        load_policy(bad)
    bad.write_text("model: credit\nalias: production\ntrainer: {}\n")
    with pytest.raises(InvalidInput, match="Unknown policy setting"):
        load_policy(bad)


def test_the_scheduler_runs_retraining_policies(loop: dict[str, Any], tmp_path: Path) -> None:
    from modelport.scheduler import Scheduler

    path = policy(tmp_path)
    spec = yaml.safe_load(path.read_text())
    path.write_text(
        yaml.safe_dump({"kind": "retrain", "name": "credit-retrain", "schedule": "0 3 * * 0", **spec})
    )
    (ran,) = Scheduler(tmp_path).run_once()  # `modelport retrain run FILE` in a subprocess
    assert (ran.kind, ran.exit_code) == ("retrain", 0)
    assert [e["kind"] for e in history("credit")] == ["check"]  # checked; nothing triggered
