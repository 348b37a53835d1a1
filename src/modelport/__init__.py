"""modelport: take a trained model to production and keep it healthy there.

>>> import modelport as mp                                            # doctest: +SKIP
>>> mv = mp.register(model, "credit", sample=X_train, alias="production")  # doctest: +SKIP
>>> mp.load("credit@production").predict(X_new)                      # doctest: +SKIP

Names are imported on first use, so that ``import modelport.edge`` (the edge runtime) needs
only numpy and onnxruntime, while ``import modelport`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelport.errors import (
    AliasNotFound,
    ArtifactTampered,
    CompileWarning,
    DependencyMismatchWarning,
    ExtraColumnsWarning,
    FlavorError,
    InvalidInput,
    InvalidReference,
    ModelNotFound,
    ModelportError,
    Overloaded,
    RegistrationError,
    SchemaMismatch,
    StoreError,
)
from modelport.lazy import lazy_attribute
from modelport.version import __version__

if TYPE_CHECKING:
    from modelport import batch
    from modelport.api import (
        compile,
        delete_alias,
        get,
        list_models,
        list_versions,
        load,
        prediction_log,
        reference_sample,
        register,
        set_alias,
    )
    from modelport.client import Client, default_client
    from modelport.config import Settings
    from modelport.model_version import ModelVersion
    from modelport.monitoring.monitor import log_labels, monitor
    from modelport.predictor import Predictor
    from modelport.schema import ColumnSpec, Signature, TensorSpec
    from modelport.serving import ServeConfig, serve
    from modelport.store.metadata import ModelSummary
    from modelport.traffic_routes import clear_traffic, set_traffic, traffic

# The functions of modelport.api, imported on first use.
_API_FUNCTIONS = (
    "compile",
    "delete_alias",
    "get",
    "list_models",
    "list_versions",
    "load",
    "prediction_log",
    "reference_sample",
    "register",
    "set_alias",
)

_LAZY = {
    "Client": "modelport.client",
    "default_client": "modelport.client",
    "Settings": "modelport.config",
    "ModelVersion": "modelport.model_version",
    "Predictor": "modelport.predictor",
    "ColumnSpec": "modelport.schema",
    "Signature": "modelport.schema",
    "TensorSpec": "modelport.schema",
    "ModelSummary": "modelport.store.metadata",
    "serve": "modelport.serving",
    "monitor": "modelport.monitoring.monitor",
    "log_labels": "modelport.monitoring.monitor",
    "ServeConfig": "modelport.serving",
    "set_traffic": "modelport.traffic_routes",
    "clear_traffic": "modelport.traffic_routes",
    "traffic": "modelport.traffic_routes",
    **dict.fromkeys(_API_FUNCTIONS, "modelport.api"),
}

__all__ = [
    "AliasNotFound",
    "ArtifactTampered",
    "Client",
    "ColumnSpec",
    "CompileWarning",
    "DependencyMismatchWarning",
    "ExtraColumnsWarning",
    "FlavorError",
    "InvalidInput",
    "InvalidReference",
    "ModelNotFound",
    "ModelSummary",
    "ModelVersion",
    "ModelportError",
    "Overloaded",
    "Predictor",
    "RegistrationError",
    "SchemaMismatch",
    "ServeConfig",
    "Settings",
    "Signature",
    "StoreError",
    "TensorSpec",
    "__version__",
    "batch",
    "clear_traffic",
    "compile",
    "default_client",
    "delete_alias",
    "get",
    "list_models",
    "list_versions",
    "load",
    "log_labels",
    "monitor",
    "prediction_log",
    "reference_sample",
    "register",
    "serve",
    "set_alias",
    "set_traffic",
    "traffic",
]


_SUBMODULES = ("batch",)  # mp.batch.run(...): imported on first use


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"modelport.{name}")
    return lazy_attribute(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted(__all__)
