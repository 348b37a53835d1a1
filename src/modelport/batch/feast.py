"""Point-in-time features from a Feast feature store for the new rows of a batch job.

```yaml
source:   {kind: parquet, path: entities/, watermark: event_timestamp}   # entity keys + event time
key: application_id
features:
  kind: feast
  repo: feature_repo/            # the folder with feature_store.yaml (relative to the job file)
  features: ["credit_stats:annual_income", "credit_stats:debt_to_income"]   # or  service: credit_v1
  timestamp: event_timestamp     # the source column with each row's event time (the default)
  full_feature_names: false      # true: columns are named credit_stats__annual_income
```

Each chunk of new rows becomes an entity frame (the join keys of the referenced feature views
plus the event time, in UTC) for ``FeatureStore.get_historical_features``; Feast's point-in-time
join gives every row the feature values as they were at its event time, and the result is joined
back to the chunk by row number (same rows, order and index). A row whose entity has no feature
values yet (or whose key or time is empty) gets empty features; validation and the model then
decide whether it is scored or rejected. Feast is an optional dependency (``pip install feast``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from modelport.errors import FlavorError, InvalidInput

_ROW = "__modelport_row"
_EVENT_TS = "event_timestamp"  # the entity-frame column Feast takes as the event time
_VERSION = re.compile(r"@v\d+$")
_INT_TYPES = ("INT32", "INT64")
_KNOWN = {"kind", "repo", "features", "service", "timestamp", "full_feature_names"}


def _import_feast() -> Any:
    try:
        import feast
    except ImportError as exc:
        raise FlavorError(
            "A job with 'features: {kind: feast}' needs Feast: pip install feast "
            "(it runs beside pandas<3; see tests/feast/requirements.txt for a working set)."
        ) from exc
    return feast


class FeastEnricher:
    """Joins point-in-time Feast features to each chunk of new rows (see the module docstring)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        unknown = sorted(set(spec) - _KNOWN)
        if unknown:
            raise InvalidInput(
                f"Unknown features setting(s): {', '.join(unknown)}. Known: {', '.join(sorted(_KNOWN))}."
            )
        if not spec.get("repo"):
            raise InvalidInput("features: {kind: feast} needs 'repo': the folder with feature_store.yaml.")
        refs, service = spec.get("features"), spec.get("service")
        if bool(refs) == bool(service):
            raise InvalidInput(
                "features: {kind: feast} needs exactly one of 'features' (a list of 'view:feature' "
                "references) or 'service' (a feature service name)."
            )
        if refs is not None and (
            isinstance(refs, str) or not all(isinstance(r, str) and ":" in r for r in refs)
        ):
            raise InvalidInput("features.features must be a list of 'view:feature' references.")
        self.repo = str(spec["repo"])
        self.timestamp = str(spec.get("timestamp") or _EVENT_TS)
        self.full_feature_names = bool(spec.get("full_feature_names", False))
        self.service_name = str(service) if service else None
        self.refs = [str(r) for r in refs] if refs else []
        self._store: Any = None
        self._keys: dict[str, str] = {}  # entity-frame column -> Feast value type name
        self._request: list[str] = []  # request-source columns of on-demand feature views
        self._outputs: dict[str, str] = {}  # output column -> Feast value type name
        self._resolve()

    # -- the Enricher protocol -------------------------------------------------------------------

    def needs(self) -> list[str]:
        cols = [*self._keys, *(c for c in self._request if c not in self._keys)]
        return cols if self.timestamp in cols else [*cols, self.timestamp]

    def provides(self) -> list[str]:
        return list(self._outputs)

    def enrich(self, frame: pd.DataFrame) -> pd.DataFrame:
        n = len(frame)
        out = frame.copy()
        if not n:
            for col in self._outputs:
                out[col] = pd.Series(dtype=float)
            return out
        entity, valid = self._entity_frame(frame)
        values = pd.DataFrame(index=pd.RangeIndex(n), columns=list(self._outputs), dtype=object)
        if valid.any():
            hist = (
                self.store()
                .get_historical_features(
                    entity_df=entity[valid].reset_index(drop=True),
                    features=self._feature_arg(),
                    full_feature_names=self.full_feature_names,
                )
                .to_df()
            )
            missing = [c for c in self._outputs if c not in hist.columns]
            if missing:
                got = ", ".join(map(str, hist.columns))
                raise InvalidInput(f"Feast returned no column(s) {', '.join(missing)}; it returned {got}.")
            hist = hist.drop_duplicates(_ROW, keep="last").set_index(_ROW)
            values = hist[list(self._outputs)].reindex(pd.RangeIndex(n))
        for col, vtype in self._outputs.items():
            out[col] = _column(values[col], vtype, frame.index)
        return out

    # -- internals -------------------------------------------------------------------------------

    def store(self) -> Any:
        if self._store is None:
            feast = _import_feast()
            try:
                self._store = feast.FeatureStore(repo_path=self.repo)
            except Exception as exc:  # Feast raises many kinds for a bad repo
                raise InvalidInput(f"Could not open the Feast repo '{self.repo}': {exc}") from exc
        return self._store

    def __getstate__(self) -> dict[str, Any]:  # ray actors: reopen the store where they run
        state = dict(self.__dict__)
        state["_store"] = None
        return state

    def _feature_arg(self) -> Any:
        if self.service_name:
            return self.store().get_feature_service(self.service_name)
        return self.refs

    def _resolve(self) -> None:
        """Join keys, request columns and output columns of the referenced views, from the registry."""
        store = self.store()
        feast = _import_feast()
        wanted: list[tuple[str, str, list[str], Mapping[str, str]]] = []  # view, prefix, features, keymap
        try:
            if self.service_name:
                service = store.get_feature_service(self.service_name)
                for p in service.feature_view_projections:
                    wanted.append((p.name, p.name_to_use(), [f.name for f in p.features], p.join_key_map))
            else:
                by_view: dict[str, list[str]] = {}
                for ref in self.refs:
                    view, feature = ref.split(":", 1)
                    by_view.setdefault(view, []).append(feature)
                for view, feats in by_view.items():
                    wanted.append((_VERSION.sub("", view), view, feats, {}))
            for name, prefix, feats, keymap in wanted:
                fv = store.registry.get_any_feature_view(name, store.project)
                types = {f.name: _type_name(f.dtype) for f in getattr(fv, "features", [])}
                for feat in feats:
                    if feat not in types:
                        raise InvalidInput(f"Feature view '{name}' has no feature '{feat}'.")
                    self._outputs[f"{prefix}__{feat}" if self.full_feature_names else feat] = types[feat]
                if isinstance(fv, feast.OnDemandFeatureView):
                    for rs in fv.source_request_sources.values():
                        self._request.extend(f.name for f in rs.schema if f.name not in self._request)
                    for proj in fv.source_feature_view_projections.values():
                        src = store.registry.get_any_feature_view(proj.name, store.project)
                        self._add_keys(src, proj.join_key_map)
                else:
                    self._add_keys(fv, keymap)
        except InvalidInput:
            raise
        except Exception as exc:  # Feast's not-found errors have no common base
            raise InvalidInput(f"Feast repo '{self.repo}': {exc}") from exc
        if self.timestamp in self._outputs:
            raise InvalidInput(f"features.timestamp '{self.timestamp}' is also a feature name.")

    def _add_keys(self, fv: Any, keymap: Mapping[str, str]) -> None:
        for col in getattr(fv, "entity_columns", []):
            self._keys.setdefault(keymap.get(col.name, col.name), _type_name(col.dtype))

    def _entity_frame(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The entity rows for Feast (keys typed as Feast declares them, UTC event time) and which
        rows can be looked up at all (no empty key or time)."""
        data: dict[str, Any] = {}
        valid = np.ones(len(frame), dtype=bool)
        for col, vtype in self._keys.items():
            values = frame[col].reset_index(drop=True)
            if vtype in _INT_TYPES:
                values = pd.to_numeric(values, errors="coerce")
                whole = values.notna() & (values == np.floor(values))
                valid &= whole.to_numpy()
                values = values.where(whole, 0).astype("int64")
            elif vtype == "STRING":
                valid &= values.notna().to_numpy()
                values = values.astype(str)
            else:
                valid &= values.notna().to_numpy()
            data[col] = values
        for col in self._request:
            if col not in data:
                data[col] = frame[col].reset_index(drop=True)
        ts = frame[self.timestamp].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(ts):
            ts = pd.to_datetime(ts, utc=True)
        else:
            ts = pd.to_datetime(ts, errors="coerce", utc=True, format="mixed")
        valid &= ts.notna().to_numpy()
        data[_EVENT_TS] = ts
        data[_ROW] = np.arange(len(frame))
        return pd.DataFrame(data), valid


def _type_name(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype)).upper()


def _column(values: pd.Series, vtype: str, index: pd.Index) -> pd.Series:
    """One feature column with a stable dtype: Feast turns an integer feature into floats where a
    row has no value, so integers stay int64 when all are present and become Python ints with
    ``None`` for the missing ones otherwise (validation then names the empty rows)."""
    if vtype in _INT_TYPES:
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().all():
            return pd.Series(numbers.to_numpy().astype("int64"), index=index)
        objs = [None if pd.isna(v) else int(v) for v in numbers]
        return pd.Series(objs, index=index, dtype=object)
    if values.dtype == object and vtype in ("FLOAT32", "FLOAT64"):
        return pd.Series(pd.to_numeric(values, errors="coerce").to_numpy(), index=index)
    return pd.Series(values.to_numpy(), index=index, dtype=values.dtype)
