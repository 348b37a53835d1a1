"""The registry: register versions, move aliases, and hand out Predictors.

Registration writes everything into a staging folder, checks that the saved model loads and
predicts, hashes every file, publishes the folder atomically and only then commits the database
row; a failure at any step leaves no visible version.

Fast by default: where the flavor has an ONNX converter, registration also builds the version's
ONNX twin and gates it on parity with the native model on the reference sample
(:mod:`modelport.compiled`) before an alias given with it moves, and ``load(runtime="auto")``
runs the twin when it passed. A model that does not convert or fails the gate keeps the native
runtime, with a :class:`~modelport.errors.CompileWarning` that says why; registration never
fails because of it. A version without a stored twin (registered with ``compile=False`` or by an
older modelport) gets one at its first ``runtime="auto"`` load. ``Registry(...,
auto_compile=False)`` (``Settings.auto_compile``) turns both off.
"""

from __future__ import annotations

import platform
import shutil
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import modelport.compiled as compiled
import modelport.flavors as flavors
from modelport.errors import (
    CompileWarning,
    DependencyMismatchWarning,
    ExtraColumnsWarning,
    FlavorError,
    ModelNotFound,
    ModelportError,
    RegistrationError,
    SchemaMismatch,
)
from modelport.flavors.base import LoadedModel, check_threads, installed_version
from modelport.lineage import caller_dir, git_info
from modelport.model_version import ModelVersion
from modelport.parity import ParityReport, Tolerance
from modelport.predictor import Predictor
from modelport.profile import fingerprint_frame, profile_frame
from modelport.refs import ModelRef, check_name
from modelport.schema import Batch, Signature, infer_signature, prepare, to_pandas_frame
from modelport.store import ArtifactStore, MetadataStore
from modelport.store.artifacts import hash_tree
from modelport.store.metadata import ModelSummary

REFERENCE_ROWS = 100_000
MODEL_DIR = compiled.MODEL_DIR  # a version's folder: model/ (the flavor's files) + reference.parquet
REFERENCE_FILE = "reference.parquet"
RUNTIMES = ("auto", "native", "onnx")


class Registry:
    """Model versions in a metadata store plus an artifact store.

    ``auto_compile``: build the ONNX twin at registration (unless ``register(compile=False)``) and
    at the first ``runtime="auto"`` load of a version that has none.
    """

    def __init__(self, meta: MetadataStore, artifacts: ArtifactStore, *, auto_compile: bool = True) -> None:
        self.meta = meta
        self.artifacts = artifacts
        self.auto_compile = auto_compile

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
        compile: bool | None = None,
    ) -> ModelVersion:
        """Register ``model`` as the next version of ``name`` (see :func:`modelport.register`).

        ``compile``: build and gate the ONNX twin now (default: ``self.auto_compile``); when it is
        built, ``alias`` moves only after the twin is stored, so a server following the alias
        starts on the compiled runtime.
        """
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
        twin = self.auto_compile if compile is None else compile
        uri = self.artifacts.publish(staging, name)
        try:
            version = self.meta.insert_version({**record, "artifact_uri": uri}, alias=None if twin else alias)
        except BaseException:
            self.artifacts.delete(uri)
            raise
        ref = ModelRef(name, version)
        if twin:  # gated on the sample itself: tensor models keep no reference sample
            held_out = (
                batch.rows(0, reference_rows)
                if batch is not None and batch.n_rows > reference_rows
                else batch
            )
            self._auto_compile(self.meta.resolve(ref), None, held_out, announce=True)
            if alias is not None:
                self.meta.set_alias(name, alias, version, "set at registration")
        return self.meta.resolve(ref)

    def get(self, ref: str | ModelRef) -> ModelVersion:
        return self.meta.resolve(ref)

    def load(
        self, ref: str | ModelRef | ModelVersion, runtime: str = "auto", threads: int | None = None
    ) -> Predictor:
        """A Predictor. ``runtime``: "native" (the framework), "onnx" (the compiled twin, which
        must have passed its parity gate) or "auto" (the twin when it passed, else native; a
        version without a twin gets one built and stored first, see ``auto_compile``).

        ``threads``: the model's compute threads — onnxruntime's intra-op threads, and for the
        native frameworks scikit-learn's ``n_jobs`` + OpenMP, XGBoost's ``nthread``, LightGBM's
        ``num_threads`` (torch's count is process-wide and left alone). ``None``: the runtime's
        default (every core), too many when several workers share the machine.
        """
        if runtime not in RUNTIMES:
            raise ModelportError(f"Unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}.")
        threads = check_threads(threads)
        mv = ref if isinstance(ref, ModelVersion) else self.meta.resolve(ref)
        if runtime == "native":
            return self._load_native(mv, threads)
        record = self.meta.get_compiled(mv.name, mv.version, compiled.RUNTIME)
        native = None
        if record is None and runtime == "auto" and self.auto_compile:
            native = self._load_native(mv, threads)
            record = self._auto_compile(mv, native, None, announce=False)
        twin = self._load_twin(mv, record, runtime == "onnx", threads)
        if twin is not None:
            return twin
        return native if native is not None else self._load_native(mv, threads)

    def runtime_for(self, ref: str | ModelRef | ModelVersion, runtime: str = "auto") -> str:
        """The runtime ``load(ref, runtime)`` runs, "onnx" or "native", without loading it (a
        missing twin is built first on the "auto" path, as ``load`` would), so that a caller can
        choose its workers and threads before it loads."""
        if runtime not in RUNTIMES:
            raise ModelportError(f"Unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}.")
        if runtime != "auto":
            return runtime
        mv = ref if isinstance(ref, ModelVersion) else self.meta.resolve(ref)
        record = self.meta.get_compiled(mv.name, mv.version, compiled.RUNTIME)
        if record is None and self.auto_compile:
            record = self._auto_compile(mv, None, None, announce=False)
        return compiled.RUNTIME if record is not None and record["passed"] else "native"

    def compile(
        self, ref: str | ModelRef | ModelVersion, *, data: Any = None, tolerance: Tolerance | None = None
    ) -> ParityReport:
        """(Re)build the version's ONNX twin, gate it on ``data`` (default: the reference sample)
        and store it in place of any stored one; the parity report.

        Raises :class:`~modelport.flavors.base.ConversionUnsupported` when the model cannot be
        converted; the native runtime keeps working either way.
        """
        mv = ref if isinstance(ref, ModelVersion) else self.meta.resolve(ref)
        native = self._load_native(mv, None)
        rows = data if data is not None else self.reference_sample(mv)
        batch = prepare(rows, mv.signature) if rows is not None else None
        record = compiled.build(self.artifacts, mv, native, batch, tolerance or Tolerance())
        return compiled.report_of(compiled.store(self.meta, self.artifacts, mv, record, replace=True))

    def parity_report(self, ref: str | ModelRef | ModelVersion) -> ParityReport | None:
        """The parity report of the version's stored ONNX twin (None: it has none)."""
        mv = ref if isinstance(ref, ModelVersion) else self.meta.resolve(ref)
        record = self.meta.get_compiled(mv.name, mv.version, compiled.RUNTIME)
        return None if record is None else compiled.report_of(record)

    def _auto_compile(
        self, mv: ModelVersion, native: Predictor | None, batch: Batch | None, *, announce: bool
    ) -> dict[str, Any] | None:
        """Build, gate (on ``batch``, default the reference sample) and store the twin of ``mv``
        without ever raising; the stored record.

        A model that does not convert gets a record of why (so loads don't try again); a twin that
        fails the gate is stored for inspection. Either way a CompileWarning says why the version
        keeps the native runtime. ``announce``: also warn when the ONNX packages are missing.
        """
        missing = compiled.missing_packages()
        if missing:
            if announce:
                warnings.warn(
                    f"'{mv.ref}' runs natively: the compiled runtime needs {missing} "
                    "(pip install 'modelport[onnx]').",
                    CompileWarning,
                    stacklevel=3,
                )
            return None
        tolerance = Tolerance()
        try:
            native = native or self._load_native(mv, None)
            if batch is None:
                rows = self.reference_sample(mv)
                batch = prepare(rows, mv.signature) if rows is not None else None
            try:
                record = compiled.build(self.artifacts, mv, native, batch, tolerance)
            except Exception as exc:  # noqa: BLE001 - any converter failure: the model stays native
                reason = exc.message if isinstance(exc, ModelportError) else f"{type(exc).__name__}: {exc}"
                record = compiled.unsupported(mv, reason, tolerance)
            record = compiled.store(self.meta, self.artifacts, mv, record, replace=False)
        except Exception as exc:  # noqa: BLE001 - never stops a registration or a load
            warnings.warn(
                f"'{mv.ref}' runs natively: its ONNX twin could not be built or stored: {exc}",
                CompileWarning,
                stacklevel=3,
            )
            return None
        if not record["passed"]:
            warnings.warn(
                f"'{mv.ref}' runs natively: {compiled.why_not(record)}. See `modelport compile {mv.ref}`.",
                CompileWarning,
                stacklevel=3,
            )
        return record

    def _load_native(self, mv: ModelVersion, threads: int | None) -> Predictor:
        flavor_mod = flavors.get(mv.flavor)
        fmt = int(mv.flavor_info.get("format_version", 1))
        if fmt > flavor_mod.FORMAT_VERSION:
            raise FlavorError(
                f"'{mv.ref}' was saved with {mv.flavor} format {fmt}; this modelport reads up to "
                f"{flavor_mod.FORMAT_VERSION}. Upgrade modelport."
            )
        _warn_on_version_drift(mv)
        root = self.artifacts.local_copy(mv.artifact_uri, mv.files, f"'{mv.ref}'")
        loaded = _load_flavor(flavor_mod, root / MODEL_DIR, mv.flavor_info, mv.ref, threads)
        return Predictor(mv, loaded, threads=threads)

    def _load_twin(
        self, mv: ModelVersion, twin: dict[str, Any] | None, required: bool, threads: int | None
    ) -> Predictor | None:
        if twin is None or not twin["passed"]:
            if not required:
                return None
            why = compiled.why_not(twin) if twin else "it has no ONNX twin"
            raise ModelNotFound(
                f"Cannot load '{mv.ref}' with runtime='onnx': {why}. Run `modelport compile {mv.ref}` "
                "(see its parity report), or use runtime='native'."
            )
        try:
            loaded: LoadedModel = compiled.open_twin(self.artifacts, mv, twin, threads)
        except ModelportError as exc:
            if required:
                raise
            warnings.warn(f"Using the native runtime: {exc.message}", RuntimeWarning, stacklevel=3)
            return None
        return Predictor(mv, loaded, runtime=compiled.RUNTIME, threads=threads)

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


def _load_flavor(
    flavor_mod: ModuleType, path: Path, info: dict[str, Any], ref: str, threads: int | None = None
) -> Any:
    try:
        return flavor_mod.load(path, info, threads=threads)
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
