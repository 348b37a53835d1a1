"""Simulated loan applications and the credit-default model the demo trains on them.

>>> from modelport_examples.credit import generate_applications, train_credit_model
>>> df = generate_applications(5_000, seed=1)        # doctest: +SKIP
>>> model, auc = train_credit_model(df)               # doctest: +SKIP

The data are synthetic but shaped like real consumer-lending data: a lognormal income, a
debt-to-income ratio, employment length with gaps, mixed categorical fields, and a default label
drawn from a logistic relation with noise, so that a good model reaches an AUC around 0.75-0.8
rather than a suspicious 0.99.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TARGET = "default"
ID_COLUMN = "application_id"
CATEGORICAL = ["home_ownership", "purpose"]
FEATURES = [
    "age",
    "annual_income",
    "employment_length",
    "home_ownership",
    "purpose",
    "loan_amount",
    "term_months",
    "debt_to_income",
    "credit_history_years",
    "delinquencies_2y",
    "open_accounts",
    "revolving_utilization",
    "inquiries_6m",
]
NUMERIC = [f for f in FEATURES if f not in CATEGORICAL]

_PURPOSES = {  # share of applications, effect on the default log-odds
    "debt_consolidation": (0.44, 0.15),
    "credit_card": (0.20, 0.05),
    "home_improvement": (0.09, -0.15),
    "major_purchase": (0.05, -0.05),
    "car": (0.07, -0.20),
    "medical": (0.04, 0.35),
    "small_business": (0.04, 0.70),
    "educational": (0.02, 0.30),
    "other": (0.05, 0.20),
}
_HOME_EFFECT = {"RENT": 0.25, "OWN": -0.10, "MORTGAGE": -0.20, "OTHER": 0.30}


def generate_applications(n: int, seed: int = 0, *, with_label: bool = True) -> pd.DataFrame:
    """``n`` loan applications: an id, the :data:`FEATURES` and (optionally) the ``default`` label.

    Missing values appear where they do in practice: employment length (~7%, more often for
    the self-employed "OTHER" home owners) and income (~3%, not stated).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)

    age = np.clip(rng.normal(41, 12, n), 21, 75).astype(np.int64)
    employment = np.floor(np.minimum(age - 18, rng.gamma(2.0, 3.5, n)))

    rent_p = np.clip(0.65 - 0.009 * (age - 21), 0.18, 0.65)
    u = rng.uniform(size=n)
    home = np.where(
        u < rent_p,
        "RENT",
        np.where(u < rent_p + 0.11, "OWN", np.where(u < rent_p + 0.15, "OTHER", "MORTGAGE")),
    )

    log_income = 10.85 + 0.012 * (np.minimum(age, 55) - 40) + 0.015 * employment
    income = np.round(rng.lognormal(log_income, 0.55), -2)
    purposes = list(_PURPOSES)
    shares = np.array([s for s, _ in _PURPOSES.values()])
    purpose = rng.choice(purposes, size=n, p=shares / shares.sum())
    loan = np.round(np.clip(rng.lognormal(np.log(income * 0.17), 0.5), 1_000, 40_000) / 25) * 25
    term = rng.choice(np.array([36, 60], dtype=np.int64), size=n, p=[0.7, 0.3])
    dti = np.round(rng.beta(2.2, 6.0, n) * 0.6, 3)
    history = np.round(np.clip(age - 18 - rng.uniform(0, 6, n), 0.5, None), 1)
    delinquencies = rng.poisson(0.2 + 0.6 * dti).astype(np.int64)
    accounts = (rng.poisson(8, n) + 1).astype(np.int64)
    utilization = np.round(np.clip(rng.beta(2.0, 3.0, n) * 1.1, 0, 1.2), 3)
    inquiries = rng.poisson(0.8, n).astype(np.int64)

    emp_missing = rng.uniform(size=n) < np.where(home == "OTHER", 0.25, 0.06)
    z = (
        -2.45
        + 6.5 * (dti - 0.16)
        + 1.4 * np.log((loan / income) / 0.17)
        + 0.7 * delinquencies
        + 2.4 * (utilization - 0.45)
        - 0.03 * (history - 10)
        - 0.04 * (np.minimum(employment, 15) - 5)
        + 0.3 * emp_missing
        + np.array([_PURPOSES[p][1] for p in purpose])
        + np.array([_HOME_EFFECT[h] for h in home])
        + 0.35 * (term == 60)
        + 0.12 * inquiries
        + rng.normal(0, 0.4, n)
    )
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(np.int64)

    employment[emp_missing] = np.nan
    income[rng.uniform(size=n) < 0.03] = np.nan
    ids = rng.integers(100_000, 900_000) + np.arange(n)
    df = pd.DataFrame(
        {
            ID_COLUMN: [f"APP-{i}" for i in ids],
            "age": age,
            "annual_income": income,
            "employment_length": employment,
            "home_ownership": home.astype(object),
            "purpose": purpose.astype(object),
            "loan_amount": loan,
            "term_months": term,
            "debt_to_income": dti,
            "credit_history_years": history,
            "delinquencies_2y": delinquencies,
            "open_accounts": accounts,
            "revolving_utilization": utilization,
            "inquiries_6m": inquiries,
        }
    )
    if with_label:
        df[TARGET] = label
    return df


def split_applications(
    df: pd.DataFrame, *, seed: int = 0, test_size: float = 0.25
) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any]:
    """``X_train, X_test, y_train, y_test``: the features and label, stratified on the label."""
    from sklearn.model_selection import train_test_split

    X, y = df[FEATURES], df[TARGET].to_numpy()
    parts = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    return parts[0], parts[1], parts[2], parts[3]


def build_credit_pipeline(seed: int = 0) -> Any:
    """An unfitted scikit-learn Pipeline: impute + scale numerics, one-hot categoricals, boosted trees."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    prep = ColumnTransformer([("num", numeric, NUMERIC), ("cat", categorical, CATEGORICAL)])
    model = HistGradientBoostingClassifier(
        learning_rate=0.08,
        max_iter=200,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        early_stopping=True,
        n_iter_no_change=15,
        random_state=seed,
    )
    return Pipeline([("prep", prep), ("model", model)])


def train_credit_model(df: pd.DataFrame, *, seed: int = 0, test_size: float = 0.25) -> tuple[Any, float]:
    """Fit :func:`build_credit_pipeline` on a split of ``df``; returns ``(pipeline, test_auc)``.

    Use :func:`split_applications` with the same ``seed`` to get the exact training rows (e.g.
    as the ``sample`` to register).
    """
    from sklearn.metrics import roc_auc_score

    X_train, X_test, y_train, y_test = split_applications(df, seed=seed, test_size=test_size)
    pipeline = build_credit_pipeline(seed).fit(X_train, y_train)
    auc = float(roc_auc_score(y_test, pipeline.predict_proba(X_test)[:, 1]))
    return pipeline, auc
