"""The hand-written peer of bench_serving.py: Starlette + onnxruntime, no validation.

``uvicorn _bare_onnx_app:app --loop uvloop --http httptools`` with ``BARE_ONNX`` = the .onnx file.
``POST /predict`` takes ``{"inputs": [row objects]}`` (one graph input per column, as skl2onnx
pipelines have) or ``{"inputs": [[numbers]]}`` (one tensor input) and returns every graph output.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_opts = ort.SessionOptions()
_opts.intra_op_num_threads = int(os.environ.get("BARE_THREADS", "1"))
_session = ort.InferenceSession(os.environ["BARE_ONNX"], _opts, providers=["CPUExecutionProvider"])
_inputs = [(i.name, "string" in i.type) for i in _session.get_inputs()]
_tensor_dtype = np.float64 if "double" in _session.get_inputs()[0].type else np.float32
_outputs = [o.name for o in _session.get_outputs()]
_INLINE_ROWS = 8  # tiny batches run on the event loop; larger ones in the thread pool


def _feeds(rows: list[Any]) -> dict[str, Any]:
    if len(_inputs) == 1 and not isinstance(rows[0], dict):
        return {_inputs[0][0]: np.asarray(rows, dtype=_tensor_dtype)}
    return {
        name: np.array([r[name] for r in rows], dtype=object if is_str else np.float64).reshape(-1, 1)
        for name, is_str in _inputs
    }


def _run(rows: list[Any]) -> bytes:
    out = _session.run(_outputs, _feeds(rows))
    return orjson.dumps(dict(zip(_outputs, out, strict=True)), option=orjson.OPT_SERIALIZE_NUMPY)


async def predict(request: Request) -> Response:
    rows = orjson.loads(await request.body())["inputs"]
    body = _run(rows) if len(rows) <= _INLINE_ROWS else await run_in_threadpool(_run, rows)
    return Response(body, media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health)])
