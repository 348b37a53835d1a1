"""The registry: register versions, move aliases, and hand out Predictors.

Registration writes everything into a staging folder, checks that the saved model loads and
predicts, hashes every file, publishes the folder atomically and only then commits the database
row; a failure at any step leaves no visible version.
"""

from __future__ import annotations

import platform
import shutil
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import modelport.flavors as flavors
from modelport.errors import (
    DependencyMismatchWarning,
    ExtraColumnsWarning,
    FlavorError,
    ModelNotFound,
    ModelportError,
    RegistrationError,
    SchemaMismatch,
)
from modelport.flavors.base import installed_version
from modelport.lineage import caller_dir, git_info
from modelport.model_version import ModelVersion
from modelport.predictor import Predictor
from modelport.profile import fingerprint_frame, profile_frame
from modelport.refs import ModelRef, check_name
from modelport.schema import Signature, infer_signature, prepare, to_pandas_frame
from modelport.store import ArtifactStore, MetadataStore
from modelport.store.artifacts import hash_tree
from modelport.store.metadata import ModelSummary

REFERENCE_ROWS = 100_000
MODEL_DIR = "model"
REFERENCE_FILE = "reference.parquet"
RUNTIMES = ("auto", "native", "onnx")


class Registry:
    """Model versions in a metadata store plus an artifact store."""

    def __init__(self, meta: MetadataStore, artifacts: ArtifactStore) -> None:
        self.meta = meta
        self.artifacts = artifacts

    def register(
        self,
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
        reference_rows: int = REFERENCE_ROWS,
        lineage: dict[str, Any] | None = None,
    ) -> ModelVersion:
        check_name(name)
        if alias is not None:
            check_name(alias, "alias")
        flavor_mod = flavors.get(flavor) if flavor else flavors.detect(model)
        unknown = sorted(set(flavor_options or {}) - set(flavor_mod.OPTIONS))
        if unknown:
            allowed = ", ".join(flavor_mod.OPTIONS) or "none"
            raise RegistrationError(
                f"Unknown flavor option(s) for {flavor_mod.NAME}: {', '.join(unknown)}; allowed: {allowed}."
            )
        if signature is None and sample is not None:
            sample = _model_features(model, sample)
        sig = _signature(signature, sample, model, flavor_mod)
        parent_ref = str(self.meta.resolve(parent).ref) if parent else None
        batch = prepare(sample, sig) if sample is not None else None
        staging = self.artifacts.new_staging_dir()
        try:
            (staging / MODEL_DIR).mkdir()
            try:
                saved = flavor_mod.save(model, staging / MODEL_DIR, batch, **(flavor_options or {}))
            except ModelportError:
                raise
            except Exception as exc:
                raise RegistrationError(f"Saving the {flavor_mod.NAME} model failed: {exc}") from exc
            _smoke_test(flavor_mod, staging / MODEL_DIR, saved.info, batch)
            reference, fingerprint = _write_reference(sample, sig, staging, reference_rows)
            packages = tuple(dict.fromkeys((*flavor_mod.PACKAGES, *saved.packages)))
            framework = {p: v for p in packages if (v := installed_version(p))}
            record = {
                "name": name,
                "flavor": flavor_mod.NAME,
                "task": saved.task,
                "description": description,
                "signature": sig.to_dict(),
                "tags": {str(k): str(v) for k, v in (tags or {}).items()},
                "metrics": _metrics(metrics),
                "flavor_info": {**saved.info, "format_version": flavor_mod.FORMAT_VERSION},
                "environment": {
                    "python": platform.python_version(),
                    "platform": sys.platform,
                    "packages": framework,
                },
                "requirements": [f"{p}=={v}" for p, v in framework.items()],
                "lineage": {
                    "data_fingerprint": fingerprint,
                    "training_rows": batch.n_rows if batch is not None else None,
                    "git": git_info(caller_dir()),
                    "parent": parent_ref,
                    **(lineage or {}),  # e.g. a retraining's data window, trigger and code reference
                },
                "reference": reference,
            }
            record["files"] = hash_tree(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        uri = self.artifacts.publish(staging, name)
        try:
            version = self.meta.insert_version({**record, "artifact_uri": uri}, alias=alias)
        except BaseException:
            self.artifacts.delete(uri)
            raise
        return self.meta.resolve(ModelRef(name, version))

    def get(self, ref: str | ModelRef) -> ModelVersion:
        return self.meta.resolve(ref)

    def load(
        self, ref: str | ModelRef | ModelVersion, runtime: str = "auto", threads: int | None = None
    ) -> Predictor:
        """A Predictor. ``runtime``: "native" (the framework), "onnx" (the compiled twin, which
        must have passed its parity gate) or "auto" (the twin when it passed, else native)."""
        if runtime not in RUNTIMES:
            raise ModelportError(f"Unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}.")
        mv = ref if isinstance(ref, ModelVersion) else self.meta.resolve(ref)
        if runtime != "native":
            twin = self._load_twin(mv, required=runtime == "onnx")
            if twin is not None:
                return twin
        return self._load_native(mv)

    def _load_native(self, mv: ModelVersion) -> Predictor:
        flavor_mod = flavors.get(mv.flavor)
        fmt = int(mv.flavor_info.get("format_version", 1))
        if fmt > flavor_mod.FORMAT_VERSION:
            raise FlavorError(
                f"'{mv.ref}' was saved with {mv.flavor} format {fmt}; this modelport reads up to "
                f"{flavor_mod.FORMAT_VERSION}. Upgrade modelport."
            )
        _warn_on_version_drift(mv)
        root = self.artifacts.local_copy(mv.artifact_uri, mv.files, f"'{mv.ref}'")
        return Predictor(mv, _load_flavor(flavor_mod, root / MODEL_DIR, mv.flavor_info, mv.ref))

    def _load_twin(self, mv: ModelVersion, required: bool) -> Predictor | None:
        twin = self.meta.get_compiled(mv.name, mv.version, "onnx")
        if twin is None or not twin["passed"]:
            if not required:
                return None
            why = "its ONNX twin failed the parity gate" if twin else "it has no ONNX twin"
            raise ModelNotFound(
                f"Cannot load '{mv.ref}' with runtime='onnx': {why}. Run `modelport compile {mv.ref}` "
                "(see its parity report), or use runtime='native'."
            )
        try:
            root = self.artifacts.local_copy(
                twin["artifact_uri"], twin["files"], f"the ONNX twin of '{mv.ref}'"
            )
            loaded = _load_flavor(flavors.get("onnx"), root / MODEL_DIR, twin["info"], mv.ref)
        except ModelportError as exc:
            if required:
                raise
            warnings.warn(f"Using the native runtime: {exc.message}", RuntimeWarning, stacklevel=3)
            return None
        return Predictor(mv, loaded, runtime="onnx")

    def reference_sample(self, ref: str | ModelRef | ModelVersion) -> Any:
        """The stored reference sample (a pandas DataFrame), or None for tensor models."""
        import pandas as pd

        mv = ref if isinstance(ref, ModelVersion) else self.meta.resolve(ref)
        if REFERENCE_FILE not in mv.files:
            return None
        root = self.artifacts.local_copy(mv.artifact_uri, mv.files, f"'{mv.ref}'")
        return pd.read_parquet(root / REFERENCE_FILE)

    def set_alias(self, name: str, version: int, alias: str, reason: str = "") -> ModelVersion:
        check_name(alias, "alias")
        self.meta.set_alias(name, alias, int(version), reason)
        return self.meta.resolve(ModelRef(name, int(version)))

    def delete_alias(self, name: str, alias: str, reason: str = "") -> int:
        return self.meta.delete_alias(name, alias, reason)

    def list_models(self) -> list[ModelSummary]:
        return self.meta.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self.meta.list_versions(name)


def _signature(given: Any, sample: Any, model: Any, flavor_mod: ModuleType) -> Signature:
    if isinstance(given, Signature):
        return given
    if isinstance(given, dict):
        return Signature.from_dict(given)
    if sample is not None:
        return infer_signature(sample)
    from_model = getattr(flavor_mod, "signature_from_model", None)
    sig = from_model(model) if from_model else None
    if sig is None:
        raise RegistrationError(
            "Cannot infer the input signature: pass sample=<training rows> (recommended: it also "
            "becomes the monitoring reference) or signature={...}."
        )
    return sig


def _load_flavor(flavor_mod: ModuleType, path: Path, info: dict[str, Any], ref: str) -> Any:
    try:
        return flavor_mod.load(path, info)
    except ModelportError:
        raise
    except Exception as exc:
        raise FlavorError(f"Loading '{ref}' ({flavor_mod.NAME}) failed: {exc}") from exc


def _model_features(model: Any, sample: Any) -> Any:
    """Keep only the columns the model was fitted on (``feature_names_in_``), in its order.

    A training frame often carries the label or an id column; those must not become required
    inputs. Columns the model needs but the sample lacks are a registration error.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return sample
    names = [str(n) for n in names]
    df = to_pandas_frame(sample)
    cols = [str(c) for c in df.columns]
    missing = [n for n in names if n not in cols]
    if missing:
        raise RegistrationError(f"The sample lacks column(s) the model was fitted on: {', '.join(missing)}.")
    if cols == names:
        return sample
    extra = [c for c in cols if c not in names]
    if extra:
        warnings.warn(
            f"Sample column(s) the model does not use are left out of the signature: "
            f"{', '.join(extra[:20])}.",
            ExtraColumnsWarning,
            stacklevel=4,
        )
    return df[names]


def _smoke_test(flavor_mod: ModuleType, path: Path, info: dict[str, Any], batch: Any) -> None:
    """Load the saved model back and predict a few rows before anything is published."""
    try:
        loaded = flavor_mod.load(path, info)
        if batch is not None and batch.n_rows:
            loaded.predict(batch.rows(0, 5))
    except ModelportError:
        raise
    except Exception as exc:
        raise RegistrationError(
            f"The saved {flavor_mod.NAME} model does not load and predict on the sample: {exc}"
        ) from exc


def _write_reference(
    sample: Any, sig: Signature, staging: Path, cap: int
) -> tuple[dict[str, Any], str | None]:
    if sample is None or sig.columns is None:
        return {}, None
    df = to_pandas_frame(sample)
    if sig.names != [str(c) for c in df.columns]:
        missing = [n for n in sig.names if n not in df.columns]
        if missing:
            raise SchemaMismatch(f"The sample lacks signature column(s): {', '.join(missing)}.")
        df = df[sig.names]
    fingerprint = fingerprint_frame(df)
    total = len(df)
    if total > cap:
        df = df.sample(n=cap, random_state=0).sort_index()
    df = df.reset_index(drop=True)
    tmp = staging / (REFERENCE_FILE + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.rename(staging / REFERENCE_FILE)
    profile = profile_frame(df)
    return {"file": REFERENCE_FILE, "sample_rows": len(df), "source_rows": total, **profile}, fingerprint


def _metrics(metrics: dict[str, Any] | None) -> dict[str, float]:
    out = {}
    for k, v in (metrics or {}).items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError) as exc:
            raise RegistrationError(f"Metric {k!r} must be a number, got {v!r}.") from exc
    return out


def _warn_on_version_drift(mv: ModelVersion) -> None:
    registered = mv.environment.get("packages", {})
    drift = []
    for pkg, version in registered.items():
        now = installed_version(pkg)
        if now != version:
            drift.append(f"{pkg} {version} at registration, {now or 'not installed'} now")
    if drift:
        warnings.warn(
            f"'{mv.ref}' was registered with other package versions: {'; '.join(drift)}. "
            "Predictions may differ; pin the registered versions (see `modelport models show "
            f"{mv.ref} --json`, field requirements).",
            DependencyMismatchWarning,
            stacklevel=3,
        )
