"""Tensors on the Open Inference Protocol v2 wire: datatypes, JSON ``data`` or Triton's binary
tensor extension in (a BYTES element is a 4-byte little-endian length, then its bytes) and out,
and which outputs a request asks for, in which form."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from modelport.errors import InvalidInput

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


def array_datatype(arr: np.ndarray) -> str:
    kind = arr.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iuf":
        return {"f": "FP", "i": "INT", "u": "UINT"}[kind] + str(arr.dtype.itemsize * 8)
    return "BYTES"


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def decode_tensor(inp: Any, binary: bytes | None) -> tuple[str, np.ndarray]:
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
        out.append(decode_tensor(inp, chunk))
    if offset != len(binary):
        raise InvalidInput(
            f"The request body holds {len(binary) - offset} bytes of binary data that no input's "
            "'binary_data_size' accounts for."
        )
    return out


def encode_tensor(name: str, arr: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes]:
    """One output tensor as JSON ``data``, or as its binary-extension bytes (``binary_data_size``)."""
    datatype = array_datatype(arr)
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


def wants_binary(spec: dict[str, Any] | None, default: bool) -> bool:
    params = spec.get("parameters") if spec is not None else None
    flag = params.get("binary_data") if isinstance(params, dict) else None
    return flag if isinstance(flag, bool) else default


def requested_outputs(
    payload: dict[str, Any], available: list[str]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
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
