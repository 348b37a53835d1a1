"""Executing predict calls: a request's payload decoded and validated, requests merged into as
few calls as allowed, the results split back per request; a model's refusal becomes a 422.

The lanes (:mod:`.lanes`) decide when and where (event loop or thread pool) this runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.errors import ModelportError
from modelport.predictor import Prediction, Predictor
from modelport.schema import Batch, Signature
from modelport.serving.errors import PredictionFailed
from modelport.serving.metrics import Metrics

if TYPE_CHECKING:
    from modelport.serving.lanes import Job

log = logging.getLogger(__name__)
Decode = Callable[[Any, Signature], Any] | None  # a codec's decode: payload -> rows for prepare


def decode_batch(
    predictor: Predictor, data: Any, decode: Callable[[Any, Signature], Any] | None = None
) -> Batch:
    """A request's payload as a validated batch for ``predictor`` (raises 4xx errors)."""
    if decode is not None:
        data = decode(data, predictor.signature)
    return predictor.prepare(data)


def score(predictor: Predictor, batch: Batch) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels and probabilities; a model's refusal of the values becomes a 422 that quotes none."""
    try:
        return predictor.predict_with_proba(batch)
    except ModelportError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        # The library message may quote input values, which error bodies must never echo.
        log.warning("%s rejected an input: %s", predictor.model_version.ref, exc)
        raise PredictionFailed(
            f"Model '{predictor.model_version.ref}' could not score this input "
            f"({type(exc).__name__}); check the values against GET /openapi.json."
        ) from exc


def execute(jobs: list[Job], max_rows: int, metrics: Metrics | None) -> list[Prediction | BaseException]:
    """In a worker thread: decode and validate each request, score them in as few calls as allowed."""
    out: list[Prediction | BaseException | None] = [None] * len(jobs)
    ready: list[tuple[int, Batch]] = []
    for i, job in enumerate(jobs):
        try:
            ready.append((i, decode_batch(job.predictor, job.data, job.decode)))
        except Exception as exc:  # noqa: BLE001 - this request's own 4xx
            out[i] = exc
    group: list[tuple[int, Batch]] = []
    rows = 0
    for item in ready:
        if group and rows + item[1].n_rows > max_rows:
            _score_group(jobs, group, out, metrics)
            group, rows = [], 0
        group.append(item)
        rows += item[1].n_rows
    if group:
        _score_group(jobs, group, out, metrics)
    return [r if r is not None else RuntimeError("request was not scored") for r in out]


def timed_execute(
    jobs: list[Job], max_rows: int, metrics: Metrics | None
) -> tuple[list[Prediction | BaseException], float]:
    started = time.perf_counter()
    results = execute(jobs, max_rows, metrics)
    return results, time.perf_counter() - started


def execute_one(predictor: Predictor, data: Any, decode: Decode, metrics: Metrics | None) -> Prediction:
    """:func:`execute` for one request on its own: the same steps, raising its error."""
    batch = decode_batch(predictor, data, decode)
    labels, proba = score(predictor, batch)
    mv = predictor.model_version
    if metrics is not None:
        metrics.observe_call(mv, batch.n_rows, 1)
    return Prediction(
        mv, labels, proba, predictor.classes, batch.n_rows, batch=batch, runtime=predictor.runtime
    )


def _score_group(
    jobs: list[Job],
    group: list[tuple[int, Batch]],
    out: list[Prediction | BaseException | None],
    metrics: Metrics | None,
) -> None:
    predictor = jobs[group[0][0]].predictor
    mv = predictor.model_version
    merged = Batch.concat([b for _, b in group])
    try:
        labels, proba = score(predictor, merged)
    except Exception as exc:  # noqa: BLE001
        if len(group) > 1 and isinstance(exc, ModelportError):  # find the request the model refused
            for item in group:
                _score_group(jobs, [item], out, metrics)
        else:
            for i, _ in group:
                out[i] = exc
        return
    if metrics is not None:
        metrics.observe_call(mv, merged.n_rows, len(group))
    start = 0
    for i, batch in group:
        stop = start + batch.n_rows
        out[i] = Prediction(
            mv,
            labels[start:stop],
            None if proba is None else proba[start:stop],
            predictor.classes,
            batch.n_rows,
            batch=batch,
            runtime=predictor.runtime,
        )
        start = stop
