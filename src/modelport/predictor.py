"""The object every deployment mode predicts with (validation + the flavor's loaded model), and the
:class:`Prediction` a served or batch call produces with it (read by the prediction log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.errors import ModelportError
from modelport.flavors.base import LoadedModel, labels_from_proba
from modelport.model_version import ModelVersion
from modelport.schema import Batch, prepare


class Predictor:
    """Validated predictions from one model version.

    >>> p = modelport.load("credit@production")          # doctest: +SKIP
    >>> p.predict(df)                                     # doctest: +SKIP
    array([0, 1, 0])
    """

    def __init__(
        self,
        model_version: ModelVersion,
        loaded: LoadedModel,
        runtime: str = "native",
        threads: int | None = None,
    ) -> None:
        self.model_version = model_version
        self.runtime = runtime
        self.threads = threads  # the compute threads it was loaded with (None: the framework's default)
        self.signature = model_version.signature
        self._model = loaded

    @property
    def loaded(self) -> LoadedModel:
        """The flavor's loaded model this predictor calls (e.g. the ONNX flavor's session wrapper)."""
        return self._model

    @property
    def raw(self) -> Any:
        """The runtime's model object (an sklearn Pipeline, an xgboost Booster, an ORT session...)."""
        return self._model.raw

    @property
    def task(self) -> str | None:
        return self.model_version.task

    @property
    def classes(self) -> list[Any] | None:
        """Class labels in the column order of :meth:`predict_proba` (classifiers only)."""
        return self._model.classes

    def prepare(self, data: Any) -> Batch:
        """Validate and coerce ``data`` against the signature (raises ``SchemaMismatch``)."""
        return prepare(data, self.signature)

    def predict(self, data: Any) -> np.ndarray:
        """Predictions (class labels for classifiers) for pandas, polars, pyarrow, numpy or dicts."""
        return self.predict_batch(prepare(data, self.signature))

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, shape (rows, classes), in the order of :attr:`classes`."""
        return self.predict_proba_batch(prepare(data, self.signature))

    def predict_batch(self, batch: Batch) -> np.ndarray:
        if batch.n_rows == 0:
            return np.empty(0)
        return self._model.predict(batch)

    def predict_proba_batch(self, batch: Batch) -> np.ndarray:
        if self.task != "classifier":
            raise ModelportError(
                f"Model '{self.model_version.ref}' is a {self.task or 'model without a task'}; "
                "predict_proba is only for classifiers. Use predict()."
            )
        if batch.n_rows == 0:
            return np.empty((0, len(self.classes or ())))
        return self._model.predict_proba(batch)

    def predict_with_proba(self, batch: Batch) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels and probabilities from one model call where the flavor allows it."""
        if self.task != "classifier":
            return self.predict_batch(batch), None
        proba = self.predict_proba_batch(batch)
        return labels_from_proba(proba, self.classes), proba

    def __repr__(self) -> str:
        mv = self.model_version
        return f"<Predictor {mv.ref} flavor={mv.flavor} runtime={self.runtime}>"


@dataclass(frozen=True)
class Prediction:
    """What one predict call produced, and which version produced it."""

    model_version: ModelVersion
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any] | None
    rows: int
    batch: Batch | None = None  # the validated inputs (for the prediction log)
    runtime: str = "native"
    role: str = "primary"  # primary, canary or shadow: which traffic policy chose this version
