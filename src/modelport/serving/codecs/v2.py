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

import math
import struct
from collections.abc import Callable
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
from modelport.serving.wire import json_response, parse_json
from modelport.version import __version__

if TYPE_CHECKING:
    from modelport.predictor import Prediction

PROTOCOL = "v2"
DATATYPES = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
_COLUMN_DATATYPES = {"bool": "BOOL", "float32": "FP32", "float64": "FP64", "string": "BYTES"}


def datatype_of(column_type: str) -> str:
    """The v2 datatype for a signature column type."""
    if column_type in _COLUMN_DATATYPES:
        return _COLUMN_DATATYPES[column_type]
    if column_type.startswith(("int", "uint")):
        return column_type.upper()
    return "BYTES"


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


def _datatype_of_array(arr: np.ndarray) -> str:
    kind = arr.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iuf":
        return {"f": "FP", "i": "INT", "u": "UINT"}[kind] + str(arr.dtype.itemsize * 8)
    return "BYTES"


def _ref_text(params: dict[str, str]) -> str:
    name = params["name"]
    version = params.get("version")
    return f"{name}:{version}" if version is not None else name


def _ref(request: Request) -> ModelRef:
    request.state.ref = request.path_params["name"]
    return request.app.state.service.parse_ref(_ref_text(request.path_params))


# --- decoding -----------------------------------------------------------------------------------


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _tensor(inp: Any, binary: bytes | None) -> tuple[str, np.ndarray]:
    if not isinstance(inp, dict) or not isinstance(inp.get("name"), str):
        raise InvalidInput(
            "Every item of 'inputs' must be an object with 'name', 'shape', 'datatype', 'data'."
        )
    name = inp["name"]
    datatype, shape = inp.get("datatype"), inp.get("shape")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise InvalidInput(f"Input '{name}': datatype must be one of {', '.join(DATATYPES)}.")
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise InvalidInput(f"Input '{name}': 'shape' must be a list of non-negative integers.")
    count = math.prod(shape)
    if binary is None and not isinstance(inp.get("data"), list):
        raise InvalidInput(f"Input '{name}': 'data' must be a list (or send it as binary data).")
    dtype = DATATYPES[datatype]
    if binary is not None and datatype != "BYTES" and len(binary) != count * np.dtype(dtype).itemsize:
        raise InvalidInput(
            f"Input '{name}': its binary data is {len(binary)} bytes; shape {shape} of {datatype} "
            f"takes {count * np.dtype(dtype).itemsize}."
        )
    try:
        if binary is not None:
            arr = _from_bytes(binary) if datatype == "BYTES" else np.frombuffer(binary, dtype=dtype)
        elif datatype == "BYTES":
            arr = np.array(_flatten(inp["data"]), dtype=object)
        else:
            arr = np.asarray(inp["data"], dtype=dtype).reshape(-1)
        if datatype == "BYTES":
            text = [v.decode("utf-8") if isinstance(v, bytes) else v for v in arr]
            arr = np.empty(len(text), dtype=object)
            arr[:] = text
        arr = arr.reshape(shape)
    except (ValueError, TypeError, OverflowError, struct.error):
        raise InvalidInput(
            f"Input '{name}': its data is not {count} {datatype} values of shape {shape}."
        ) from None
    return name, arr


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise ValueError("data must be a list")
    out: list[Any] = []
    for v in data:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out


def _from_bytes(buf: bytes) -> np.ndarray:
    """A BYTES tensor's binary form: each element is a 4-byte little-endian length, then its bytes."""
    items: list[bytes] = []
    offset = 0
    while offset < len(buf):
        if offset + 4 > len(buf):
            raise ValueError("truncated BYTES length prefix")
        (n,) = struct.unpack_from("<I", buf, offset)
        offset += 4
        if offset + n > len(buf):
            raise ValueError("truncated BYTES element")
        items.append(buf[offset : offset + n])
        offset += n
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def tensors(payload: Any, binary: bytes) -> list[tuple[str, np.ndarray]]:
    """The request's input tensors (JSON ``data`` or binary extension chunks, in order)."""
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("The body must be an inference request with a non-empty 'inputs' list.")
    out = []
    offset = 0
    for inp in inputs:
        params = inp.get("parameters") if isinstance(inp, dict) else None
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        chunk = None
        if size is not None:
            if not _is_count(size) or offset + size > len(binary):
                raise InvalidInput(
                    "An input's 'binary_data_size' runs past the end of the request body "
                    "(send the JSON header's length in Inference-Header-Content-Length)."
                )
            chunk = binary[offset : offset + size]
            offset += size
        out.append(_tensor(inp, chunk))
    if offset != len(binary):
        raise InvalidInput(
            f"The request body holds {len(binary) - offset} bytes of binary data that no input's "
            "'binary_data_size' accounts for."
        )
    return out


def decode(request_data: tuple[Any, bytes], signature: Signature) -> Any:
    """Rows for ``prepare``: a tensor, a dict of per-column arrays, or a 2-d matrix split by position."""
    payload, binary = request_data
    if not binary and signature.tensor is None:
        whole = _column_matrix(payload, signature)
        if whole is not None:
            return whole
        columns = _column_lists(payload, signature)
        if columns is not None:
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


_NUMERIC = frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"})


def _column_matrix(payload: Any, signature: Signature) -> np.ndarray | None:
    """One input per column (JSON data, numbers) for an all-float model, as one 2-d array in
    signature order, without a tensor per column; None when the request is anything else (the
    general path then decodes it, with its errors)."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    names = signature.names
    if not isinstance(inputs, list) or len(inputs) != len(names) or len(names) < 2:
        return None
    if any(c.type not in tabular.FLOATS for c in signature.columns or ()):
        return None  # (a model with other column types: the per-column lists or the general path)
    try:  # whole-request checks, a set each, instead of a Python step per check and input
        by_name = {inp["name"]: inp["data"] for inp in inputs}
        shapes = {tuple(inp["shape"]) for inp in inputs}
        datatypes = {inp["datatype"] for inp in inputs}
        plain = not any("parameters" in inp for inp in inputs)
    except (KeyError, TypeError):
        return None
    if not plain or len(shapes) != 1 or not datatypes <= _NUMERIC or by_name.keys() != set(names):
        return None
    (shape,) = shapes
    if not shape or not (len(shape) == 1 or shape[1:] == (1,)):
        return None
    columns = list(map(by_name.__getitem__, names))
    if set(map(type, columns)) != {list} or {len(c) for c in columns} != {shape[0]} or not shape[0]:
        return None
    try:
        matrix = np.array(columns, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    return tabular.float_matrix(matrix.T, signature) if matrix.ndim == 2 else None


_FAMILY = {"FP": "float", "IN": "int", "UI": "uint", "BO": "bool", "BY": "string"}
_VALUE_TYPES = {"float": frozenset({float, int}), "int": frozenset({int}), "uint": frozenset({int})}


def _column_lists(payload: Any, signature: Signature) -> dict[str, list[Any]] | None:
    """One JSON input per signature column, each a flat list whose datatype is its column's kind
    and whose values are of that kind, as the plain lists ``prepare`` validates (what a tensor per
    column would have become, without building one); None for anything else, which the general
    path decodes with its own errors."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    columns = {c.name: c for c in signature.columns or ()}
    if not isinstance(inputs, list) or len(inputs) != len(columns):
        return None
    out: dict[str, list[Any]] = {}
    for inp in inputs:
        if type(inp) is not dict or "parameters" in inp:
            return None
        name, datatype, shape, data = inp.get("name"), inp.get("datatype"), inp.get("shape"), inp.get("data")
        column = columns.get(name) if type(name) is str else None
        if column is None or name in out or type(data) is not list or type(shape) is not list:
            return None
        if len(shape) not in (1, 2) or shape[0] != len(data) or shape[1:] not in ([], [1]):
            return None
        family = _FAMILY.get(datatype[:2]) if type(datatype) is str and datatype in DATATYPES else None
        kind = column.type
        kind = "string" if kind == "category" else kind.rstrip("0123456789")
        if family is None or family != kind:
            return None
        types = set(map(type, data))
        allowed = _VALUE_TYPES.get(family, frozenset({bool}) if family == "bool" else frozenset({str}))
        if not types <= allowed:
            return None
        out[str(name)] = data
    return out if out and len({len(d) for d in out.values()}) == 1 else None


def _output(name: str, arr: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes]:
    """One output tensor as JSON ``data``, or as its binary-extension bytes (``binary_data_size``)."""
    datatype = _datatype_of_array(arr)
    if datatype == "FP16":
        arr, datatype = arr.astype(np.float32), "FP32"
    out: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": datatype}
    if not binary:
        flat = arr.reshape(-1)
        out["data"] = flat if datatype != "BYTES" else [_text(v) for v in flat.tolist()]
        return out, b""
    if datatype == "BYTES":
        raw = b"".join(
            struct.pack("<I", len(b)) + b for b in (_text(v).encode() for v in arr.reshape(-1).tolist())
        )
    else:
        raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
    out["parameters"] = {"binary_data_size": len(raw)}
    return out, raw


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _wants_binary(spec: dict[str, Any] | None, default: bool) -> bool:
    params = spec.get("parameters") if spec is not None else None
    flag = params.get("binary_data") if isinstance(params, dict) else None
    return flag if isinstance(flag, bool) else default


def _requested(payload: dict[str, Any], available: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The output names to send, in order, and the request's spec of each it names."""
    wanted = payload.get("outputs")
    if wanted is None or wanted == []:
        return available, {}
    if not isinstance(wanted, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in wanted
    ):
        raise InvalidInput("'outputs' must be a list of objects, each with a 'name'.")
    specs = {o["name"]: o for o in wanted}
    unknown = [n for n in specs if n not in available]
    if unknown:
        raise InvalidInput(
            f"Unknown output {unknown[0][:100]!r}; this model's outputs are {', '.join(available)}."
        )
    return [n for n in available if n in specs], specs


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
        names, specs = _requested(payload, list(arrays))
        params = payload.get("parameters")
        default = isinstance(params, dict) and params.get("binary_data_output") is True
        outputs, chunks = [], []
        for name in names:
            out, raw = _output(name, arrays[name], _wants_binary(specs.get(name), default))
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
        label_type = _datatype_of_array(np.asarray(classes))
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
