"""The Open Inference Protocol v2 (KServe / Triton / MLServer), REST binding.

Inputs are tensors: one 2-d input holding every column in signature order, or one input per
column named after it (what MLServer's pandas codec sends with ``"parameters": {"content_type": "pd"}``).
Triton's binary tensor data extension is supported both ways, so ``tritonclient.http`` works with
its defaults: a request with ``Inference-Header-Content-Length: N`` is an N-byte JSON header
followed by the raw bytes of each input whose ``parameters`` hold ``binary_data_size`` (in input
order; a BYTES element is a 4-byte little-endian length and then its bytes). An output requested
with ``"parameters": {"binary_data": true}`` (or every output, given the request parameter
``"binary_data_output": true``) is sent the same way after the JSON header, whose length is then
the response's ``Inference-Header-Content-Length``.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.errors import InvalidInput, SchemaMismatch
from modelport.refs import ModelRef
from modelport.schema import Signature
from modelport.serving.codecs import Answer, Codec, Incoming, Parsed, json_answer, tabular
from modelport.serving.codecs.v2_tensors import (
    DATATYPES,
    array_datatype,
    datatype_of,
    encode_tensor,
    requested_outputs,
    tensors,
    wants_binary,
)
from modelport.serving.wire import json_response, parse_json
from modelport.version import __version__

if TYPE_CHECKING:
    from modelport.predictor import Prediction

PROTOCOL = "v2"


def tensor_input(signature: Signature) -> dict[str, Any] | None:
    """The single 2-d input an all-numeric tabular model also takes (columns in signature order),
    as model metadata describes it; None for a model with a text, boolean or tensor input."""
    columns = signature.columns or ()
    if signature.tensor is not None or not columns:
        return None
    if any(not c.type.startswith(("float", "int", "uint")) for c in columns):
        return None
    return {
        "name": "input",
        "datatype": "FP64" if any(c.type == "float64" for c in columns) else "FP32",
        "shape": [-1, len(columns)],
        "columns": [c.name for c in columns],
    }


def _ref_text(params: dict[str, str]) -> str:
    name = params["name"]
    version = params.get("version")
    return f"{name}:{version}" if version is not None else name


def _ref(request: Request) -> ModelRef:
    request.state.ref = request.path_params["name"]
    return request.app.state.service.parse_ref(_ref_text(request.path_params))


def decode(request_data: tuple[Any, bytes], signature: Signature) -> Any:
    """Rows for ``prepare``: a tensor, a dict of per-column arrays, or a 2-d matrix split by position."""
    payload, binary = request_data
    if not binary and signature.tensor is None:
        columns = _column_lists(payload, signature)
        if columns is not None:  # an all-float model takes them as one matrix
            floats = all(c.type in tabular.FLOATS for c in signature.columns or ())
            if floats:
                matrix = np.array([columns[n] for n in signature.names], dtype=np.float64).T
                whole = tabular.float_matrix(matrix, signature)
                if whole is not None:
                    return whole
            return columns
    named = tensors(payload, binary)
    if signature.tensor is not None:
        if len(named) != 1:
            raise SchemaMismatch(f"This model takes one tensor input; got {len(named)}.")
        return named[0][1]
    names = signature.names
    params = payload.get("parameters")
    pandas_style = isinstance(params, dict) and params.get("content_type") == "pd"
    if pandas_style or len(named) > 1 or named[0][0] in names:
        cols = {}
        for name, arr in named:
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1:
                raise SchemaMismatch(f"Input '{name}' is one column: its shape must be [rows] or [rows, 1].")
            cols[name] = arr
        lengths = {len(a) for a in cols.values()}
        if len(lengths) > 1:
            raise SchemaMismatch(f"The column inputs have different lengths: {sorted(lengths)}.")
        return cols
    matrix = named[0][1]
    if matrix.ndim == 1 and len(names) == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise SchemaMismatch(
            f"Send one input of shape [rows, {len(names)}] (columns {', '.join(names)} in that order), "
            "or one input per column named after it."
        )
    whole = tabular.float_matrix(matrix, signature)  # an all-numeric model takes the tensor as it is
    return whole if whole is not None else {n: matrix[:, i] for i, n in enumerate(names)}


_FAMILY = {"FP": "float", "IN": "int", "UI": "uint", "BO": "bool", "BY": "string"}
_VALUE_TYPES = {
    "float": frozenset({float, int}),
    "int": frozenset({int}),
    "uint": frozenset({int}),
    "bool": frozenset({bool}),
    "string": frozenset({str}),
}
# per signature (held, so that its id is not reused): its names, and the names of each column kind
_KINDS: dict[int, tuple[Signature, list[str], dict[str, list[str]]]] = {}


def _kinds(signature: Signature) -> tuple[list[str], dict[str, list[str]]]:
    hit = _KINDS.get(id(signature))
    if hit is None or hit[0] is not signature:
        by_kind: dict[str, list[str]] = {}
        for c in signature.columns or ():
            kind = "string" if c.type == "category" else c.type.rstrip("0123456789")
            by_kind.setdefault(kind, []).append(c.name)
        if len(_KINDS) > 256:
            _KINDS.clear()
        hit = _KINDS[id(signature)] = (signature, signature.names, by_kind)
    return hit[1], hit[2]


def _column_lists(payload: Any, signature: Signature) -> dict[str, list[Any]] | None:
    """One JSON input per signature column, each a flat list whose datatype is its column's kind
    and whose values are of that kind, as the plain lists ``prepare`` validates (what a tensor per
    column would have become, without building one); None for anything else, which the general
    path decodes with its own errors. Checked a set at a time over the whole request, not a Python
    step per input and check."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    names, by_kind = _kinds(signature)
    if not isinstance(inputs, list) or len(inputs) != len(names) or not names:
        return None
    try:
        by_name = {inp["name"]: inp for inp in inputs}
        shapes = {tuple(inp["shape"]) for inp in inputs}
        plain = not any("parameters" in inp for inp in inputs)
    except (KeyError, TypeError):
        return None
    if not plain or len(by_name) != len(names) or by_name.keys() != set(names):
        return None
    data = {n: by_name[n].get("data") for n in names}
    rows = len(next(iter(data.values()))) if type(next(iter(data.values()))) is list else -1
    if rows <= 0 or not shapes <= {(rows,), (rows, 1)} or set(map(type, data.values())) != {list}:
        return None
    if {len(d) for d in data.values()} != {rows}:
        return None
    for kind, columns in by_kind.items():
        datatypes = {by_name[n].get("datatype") for n in columns}
        if not all(type(t) is str and t in DATATYPES and _FAMILY[t[:2]] == kind for t in datatypes):
            return None
        allowed = _VALUE_TYPES.get(kind)
        if allowed is None or not set(map(type, chain.from_iterable(data[n] for n in columns))) <= allowed:
            return None
    return data


# --- the codec ------------------------------------------------------------------------------------


def _split_body(incoming: Incoming) -> tuple[Any, bytes]:
    """The JSON inference header and the binary tensor data after it (the binary extension)."""
    body = incoming.body
    header_len = incoming.header("inference-header-content-length")
    if header_len is None:
        return parse_json(body), b""
    header_len = header_len.strip()
    if not header_len.isdigit() or not header_len.isascii():
        raise InvalidInput("Inference-Header-Content-Length must be a non-negative integer.")
    n = int(header_len)
    if n > len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length ({n if n < 10**12 else 'huge'}) is larger than the "
            f"request body ({len(body)} bytes)."
        )
    return parse_json(body[:n]), body[n:]


class V2Codec(Codec):
    name = PROTOCOL

    def ref(self, incoming: Incoming, first_ref: Callable[[], ModelRef]) -> str:
        return _ref_text(incoming.params)

    def parse(self, incoming: Incoming) -> Parsed:
        payload, binary = _split_body(incoming)
        if not isinstance(payload, dict):
            raise InvalidInput("The body must be a JSON inference request object with 'inputs'.")
        given = payload.get("id")
        sane = isinstance(given, str) and 0 < len(given) <= 200 and given.isprintable()
        own = given if sane else None
        return Parsed((payload, binary), payload, own)  # the log and the answer use the request's id

    def decode(self, payload: Any, signature: Signature) -> Any:
        return decode(payload, signature)

    def encode(self, result: Prediction, parsed: Parsed, request_id: str) -> Answer:
        payload = parsed.context
        arrays = {"predictions": result.predictions}
        if result.probabilities is not None:
            arrays["probabilities"] = result.probabilities
        names, specs = requested_outputs(payload, list(arrays))
        params = payload.get("parameters")
        default = isinstance(params, dict) and params.get("binary_data_output") is True
        outputs, chunks = [], []
        for name in names:
            out, raw = encode_tensor(name, arrays[name], wants_binary(specs.get(name), default))
            outputs.append(out)
            chunks.append(raw)
        mv = result.model_version
        given = payload.get("id")
        rid = given if isinstance(given, str) else request_id
        body = {"model_name": mv.name, "model_version": str(mv.version), "id": rid, "outputs": outputs}
        header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        extra = [(b"x-model-version", mv.ref.encode()), (b"x-request-id", request_id.encode("latin-1"))]
        if not any(chunks):
            return json_answer(200, header, extra)
        content = b"".join([header, *chunks])
        return (
            200,
            [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", b"application/octet-stream"),
                (b"inference-header-content-length", str(len(header)).encode()),
                *extra,
            ],
            content,
        )

    def error_body(
        self, status: int, message: str, details: list[dict[str, object]]
    ) -> tuple[int, bytes, bytes]:
        return status, b"application/json", orjson.dumps({"error": message})


CODEC = V2Codec()


# --- the other endpoints (metadata, readiness) ----------------------------------------------------


async def model_metadata(request: Request) -> Response:
    request.state.protocol = PROTOCOL
    predictor = await run_in_threadpool(request.app.state.service.manager.get, _ref(request))
    mv = predictor.model_version
    sig = predictor.signature
    if sig.tensor is not None:
        inputs = [
            {"name": "input", "datatype": datatype_of(sig.tensor.dtype), "shape": list(sig.tensor.shape)}
        ]
    else:
        inputs = [{"name": c.name, "datatype": datatype_of(c.type), "shape": [-1]} for c in sig.columns or ()]
    parameters: dict[str, Any] = {"content_type": "pd", "task": mv.task, "runtime": predictor.runtime}
    numeric = tensor_input(sig)
    if numeric is not None:  # KServe, MLServer and Triton FIL clients send one [N, F] tensor
        parameters["tensor_input"] = numeric
    classes = predictor.classes
    if classes is not None:
        label_type = array_datatype(np.asarray(classes))
        outputs = [
            {"name": "predictions", "datatype": label_type, "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes)]},
        ]
    else:
        outputs = [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]
    return json_response(
        {
            "name": mv.name,
            "versions": [str(mv.version)],
            "platform": f"modelport-{mv.flavor}",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": parameters,
        }
    )


async def model_ready(request: Request) -> Response:
    request.state.protocol = PROTOCOL
    ref = _ref(request)
    predictor = await run_in_threadpool(request.app.state.service.manager.get, ref)
    mv = predictor.model_version
    return json_response({"name": mv.name, "version": str(mv.version), "ready": True})


async def server_metadata(request: Request) -> Response:
    return json_response({"name": "modelport", "version": __version__, "extensions": ["binary_tensor_data"]})


async def live(request: Request) -> Response:
    return json_response({"live": True})


async def ready(request: Request) -> Response:
    ok = request.app.state.service.manager.ready
    return json_response({"ready": ok}, status_code=200 if ok else 503)


def routes() -> list[Route]:
    out = [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        out += [
            Route(base, model_metadata, methods=["GET"]),
            Route(base + "/ready", model_ready, methods=["GET"]),
        ]
    return out
