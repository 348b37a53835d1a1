"""The public Python API, re-exported by ``modelport`` (``import modelport as mp``)."""

from __future__ import annotations

from typing import Any

from modelport.client import default_client
from modelport.model_version import ModelVersion
from modelport.predictor import Predictor
from modelport.schema import Signature
from modelport.store.metadata import ModelSummary


def register(
    model: Any,
    name: str,
    *,
    sample: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    description: str = "",
    alias: str | None = None,
    flavor: str | None = None,
    parent: str | None = None,
    flavor_options: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    compile: bool | None = None,
) -> ModelVersion:
    """Register ``model`` as the next version of ``name``.

    ``sample`` (training rows) gives the signature and becomes the monitoring reference.
    ``flavor`` forces a framework instead of detecting it; ``flavor_options`` go to that
    flavor's ``save`` (e.g. ``{"task": "classifier", "classes": [...]}`` for PyTorch).
    ``lineage`` adds to the recorded lineage (e.g. the training data window and trigger).

    Where the framework has an ONNX converter, the version's ONNX twin is built and gated on
    parity with the model on the sample (see :func:`compile`), so that :func:`load` and the
    server run it; a model that does not convert or fails the gate keeps the native runtime (a
    :class:`CompileWarning` says why). ``compile=False`` skips it (the first ``load`` builds it
    then); ``Settings.auto_compile`` (``MODELPORT_AUTO_COMPILE=0``) turns it off everywhere.

    >>> mv = mp.register(pipe, "credit", sample=X_train, metrics={"auc": 0.91},
    ...                  tags={"team": "risk"}, alias="production")   # doctest: +SKIP
    >>> mv.ref                                                          # doctest: +SKIP
    'credit:1'
    """
    return default_client().registry.register(
        model,
        name,
        sample=sample,
        signature=signature,
        metrics=metrics,
        tags=tags,
        description=description,
        alias=alias,
        flavor=flavor,
        parent=parent,
        flavor_options=flavor_options,
        lineage=lineage,
        compile=compile,
    )


def load(ref: str, runtime: str = "auto", threads: int | None = None) -> Predictor:
    """A :class:`Predictor` for ``name`` (latest), ``name:VERSION`` or ``name@ALIAS``.

    ``runtime``: "auto" (default) runs the compiled ONNX twin when one passed its parity gate
    (see :func:`compile`; a version without a twin gets one built at its first load) and the
    native framework otherwise; "native" or "onnx" force one. ``threads``: the model's compute
    threads (onnxruntime intra-op threads; scikit-learn n_jobs/OpenMP, XGBoost nthread, LightGBM
    num_threads); default: the runtime's own (every core).

    >>> mp.load("credit@production", threads=1).predict(df)   # doctest: +SKIP
    """
    return default_client().registry.load(ref, runtime=runtime, threads=threads)


def compile(ref: str, *, data: Any = None, rtol: float = 1e-5, min_label_agreement: float = 0.9999) -> Any:
    """Convert a version to ONNX, gate it on parity and store the twin with the version.

    Registration does this already where a converter exists; call it to rebuild a twin (e.g. on
    other rows or with another tolerance). Returns the :class:`~modelport.parity.ParityReport`.
    Parity is checked on ``data`` (default: the reference sample stored at registration). Once a
    twin passed, ``load(ref)`` runs it.

    >>> report = mp.compile("credit:3")   # doctest: +SKIP
    >>> report.passed, report.max_rel_diff   # doctest: +SKIP
    (True, 1.2e-07)
    """
    from modelport.parity import Tolerance

    return default_client().registry.compile(
        ref, data=data, tolerance=Tolerance(rtol=rtol, min_label_agreement=min_label_agreement)
    )


def get(ref: str) -> ModelVersion:
    """The :class:`ModelVersion` record a reference points at (no model is loaded)."""
    return default_client().registry.get(ref)


def set_alias(name: str, version: int, alias: str) -> ModelVersion:
    """Point ``name@alias`` at ``version``. ``mp.set_alias("credit", 3, "production")``."""
    return default_client().registry.set_alias(name, version, alias)


def delete_alias(name: str, alias: str) -> int:
    """Remove ``name@alias``; returns the version it pointed at."""
    return default_client().registry.delete_alias(name, alias)


def list_models() -> list[ModelSummary]:
    """Every registered model with its latest version and aliases."""
    return default_client().registry.list_models()


def list_versions(name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest first."""
    return default_client().registry.list_versions(name)


def reference_sample(ref: str) -> Any:
    """The training reference sample stored with a version, as a pandas DataFrame."""
    return default_client().registry.reference_sample(ref)


def prediction_log(name: str, since: Any = None, until: Any = None) -> Any:
    """The requests a server logged for ``name`` (one row per input row), as a pandas DataFrame.

    ``since``/``until`` (datetimes, dates or ISO strings; naive ones are UTC) bound the timestamp.
    Columns: ``request_id, timestamp, model, version, runtime, protocol, latency_ms``, ``in_<column>``
    per input column, ``prediction`` and ``proba_<class>`` for classifiers.

    >>> mp.prediction_log("credit", since="2026-01-01")   # doctest: +SKIP
    """
    from modelport.predlog.reader import read_prediction_log

    return read_prediction_log(default_client().settings.home, name, since=since, until=until)
