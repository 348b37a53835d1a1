"""The parity gate: does a converted model predict what the original predicts?

Both models score the same held-out rows (by default the reference sample stored at
registration). Numeric outputs (probabilities, regression values) are compared element-wise with
a tolerance relative to ``max(1, |native|)`` — relative for large values, absolute below 1, so
probabilities near zero don't inflate it; classifier labels must agree on at least
``min_label_agreement`` of the rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelport.errors import ModelportError
from modelport.predictor import Predictor
from modelport.schema import Batch


@dataclass(frozen=True)
class Tolerance:
    """Gate thresholds. Defaults: |Δ| ≤ 1e-5 relative, ≥ 99.99 % identical labels."""

    rtol: float = 1e-5
    min_label_agreement: float = 0.9999

    def __post_init__(self) -> None:
        if not self.rtol >= 0:
            raise ModelportError(f"rtol must be >= 0, got {self.rtol}.")
        if not 0 <= self.min_label_agreement <= 1:
            raise ModelportError(
                f"min_label_agreement is a share of rows between 0 and 1, got {self.min_label_agreement}."
            )


@dataclass
class ParityReport:
    """What the gate measured, and its verdict. Stored with the compiled twin."""

    ref: str
    runtime: str
    task: str | None
    rows: int
    max_abs_diff: float | None
    max_rel_diff: float | None
    label_agreement: float | None
    tolerance: Tolerance
    passed: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParityReport:
        return cls(**{**d, "tolerance": Tolerance(**d["tolerance"])})

    def summary(self) -> str:
        """One line: the verdict and the numbers that decided it."""
        verdict = "PASSED" if self.passed else "FAILED"
        parts = [f"parity {verdict} on {self.rows:,} rows"]
        if self.max_rel_diff is not None:
            parts.append(f"max |Δ| {self.max_abs_diff:.3g} (relative {self.max_rel_diff:.3g})")
        if self.label_agreement is not None:
            parts.append(f"labels agree {self.label_agreement:.4%}")
        return ", ".join(parts) + ("" if self.passed else f": {'; '.join(self.reasons)}")


def check_parity(
    ref: str,
    native: Predictor,
    twin: Predictor,
    batch: Batch | None,
    tolerance: Tolerance,
    notes: list[str],
    model_bytes: int,
) -> ParityReport:
    """Score ``batch`` with both predictors and judge the twin against ``tolerance``."""
    task = native.task
    base: dict[str, Any] = {"ref": ref, "runtime": twin.runtime, "task": task, "tolerance": tolerance}
    if batch is None or batch.n_rows == 0:
        return ParityReport(
            **base, rows=0, max_abs_diff=None, max_rel_diff=None, label_agreement=None, passed=False,
            reasons=["no held-out rows to compare on (register with sample=, or pass data=)"],
            notes=notes, model_bytes=model_bytes,
        )  # fmt: skip
    reasons: list[str] = []
    agreement = None
    if task == "classifier":
        expected, got = native.predict_proba_batch(batch), twin.predict_proba_batch(batch)
        labels_native, labels_twin = native.predict_batch(batch), twin.predict_batch(batch)
        agreement = float(np.mean(np.asarray(labels_native) == np.asarray(labels_twin)))
        if agreement < tolerance.min_label_agreement:
            reasons.append(
                f"labels agree on {agreement:.4%} of rows, below {tolerance.min_label_agreement:.4%}"
            )
    else:
        expected, got = native.predict_batch(batch), twin.predict_batch(batch)
    abs_diff, rel_diff = _diffs(expected, got, reasons)
    if rel_diff is not None and rel_diff > tolerance.rtol:
        reasons.append(f"max relative difference {rel_diff:.3g} above {tolerance.rtol:.3g}")
    return ParityReport(
        **base, rows=batch.n_rows, max_abs_diff=abs_diff, max_rel_diff=rel_diff, label_agreement=agreement,
        passed=not reasons, reasons=reasons, notes=notes, model_bytes=model_bytes,
    )  # fmt: skip


def _diffs(expected: Any, got: Any, reasons: list[str]) -> tuple[float | None, float | None]:
    a = np.asarray(expected, dtype=np.float64)
    b = np.asarray(got, dtype=np.float64)
    if a.size == b.size and a.shape != b.shape:
        b = b.reshape(a.shape)
    if a.shape != b.shape:
        reasons.append(f"output shapes differ: native {a.shape}, converted {b.shape}")
        return None, None
    nan_mismatch = np.isnan(a) != np.isnan(b)
    if nan_mismatch.any():
        reasons.append(f"{int(nan_mismatch.sum())} output(s) are NaN in only one of the models")
    diff = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    if not diff.size:
        return 0.0, 0.0
    rel = diff / np.maximum(1.0, np.abs(np.nan_to_num(a)))
    return float(diff.max()), float(rel.max())
