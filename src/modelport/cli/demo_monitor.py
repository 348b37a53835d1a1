"""The demo's monitoring step: a calm week, then production drifts (incomes fall and are reported
less reliably, a new loan purpose appears); the outcomes that arrive show performance dropping."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def calm_then_drift(home: Path, ref: str, seed: int) -> dict[str, Any]:
    import modelport as mp
    from modelport.monitoring.monitor import timeline
    from modelport_examples.credit import FEATURES, generate_applications

    calm = generate_applications(3_000, seed=seed + 30_000)[[*FEATURES, "default"]]
    drifted = drifted_applications(3_000, seed)
    before = mp.monitor(ref, current=calm, target="default")
    after = mp.monitor(ref, current=drifted, target="default")
    report = home / "demo" / "credit-monitoring.html"
    after.to_html(report, timeline=timeline(ref))
    return {"before": before, "after": after, "report": report, "calm": calm, "drifted": drifted}


def drifted_applications(n: int, seed: int) -> Any:
    """Applications after the world changed: lower incomes, a new purpose (crypto) that defaults far
    more often, and for a third of the applicants the old relation of features and outcome gone."""
    import numpy as np

    from modelport_examples.credit import FEATURES, generate_applications

    drifted = generate_applications(n, seed=seed + 30_001)[[*FEATURES, "default"]]
    rng = np.random.default_rng(seed)
    drifted["annual_income"] = (drifted["annual_income"] * rng.uniform(0.2, 0.9, len(drifted))).round(-2)
    crypto = rng.uniform(size=len(drifted)) < 0.2
    drifted.loc[crypto, "purpose"] = "crypto"
    drifted.loc[crypto, "default"] = (rng.uniform(size=int(crypto.sum())) < 0.6).astype(int)
    changed = rng.uniform(size=len(drifted)) < 0.35
    drifted.loc[changed, "default"] = rng.permutation(drifted.loc[changed, "default"].to_numpy())
    return drifted
