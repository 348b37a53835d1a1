"""JSON schemas of the serving protocols' bodies: the shared components (errors, the v2 request,
response and metadata) and, per served model version, the native request and response built from its
signature. :mod:`.docs` assembles them into ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from modelport.model_version import ModelVersion
from modelport.schema import ColumnSpec

_JSON_TYPES = {"bool": "boolean", "string": "string", "category": "string", "datetime": "string"}
_INT_BOUNDS = {
    f"{kind}{bits}": ((0, 2**bits - 1) if kind == "uint" else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    for kind in ("int", "uint")
    for bits in (8, 16, 32, 64)
}
V2_DATATYPES = (
    "BOOL",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)
_SCALAR = {"type": ["string", "number", "boolean", "null"]}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _column_schema(c: ColumnSpec) -> dict[str, Any]:
    """A column's JSON schema: what the server accepts for it (not only what the sample held).

    Integer and boolean columns must have a value in every row; the others also take ``null``
    (a missing value; whether the model copes is its own matter, answered with a 422 if not).
    """
    t = _JSON_TYPES.get(c.type, "number" if c.type.startswith("float") else "integer")
    nullable = c.nullable or t not in ("integer", "boolean")
    schema: dict[str, Any] = {
        "type": [t, "null"] if nullable else t,
        "x-modelport-type": c.type,
        "x-modelport-nullable": c.nullable,
    }
    if c.type in _INT_BOUNDS:
        schema["minimum"], schema["maximum"] = _INT_BOUNDS[c.type]
    if c.categories is not None:
        schema["examples"] = list(c.categories[:10])
    return schema


def request_schema(mv: ModelVersion) -> dict[str, Any]:
    """The JSON schema of a native predict request for this version's signature.

    ``inputs`` is a list of row objects, ``{"columns": [...], "data": [[...]]}`` or a list of
    positional rows in signature order. (An object of column lists is read too.)
    """
    sig = mv.signature
    if sig.tensor is not None:
        return {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "description": f"a tensor {sig.tensor.to_dict()} as nested lists",
                }
            },
        }
    cols = [_column_schema(c) for c in sig.columns or ()]
    row = {
        "type": "object",
        "properties": {c.name: s for c, s in zip(sig.columns or (), cols, strict=True)},
        "required": sig.names,
        "description": "One row; columns the model does not use are ignored.",
    }
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 1},
            "data": {"type": "array", "minItems": 1, "items": {"type": "array", "items": _SCALAR}},
            "index": {"type": "array"},
        },
        "description": "pandas' orient='split'; every row has one value per column.",
    }
    positional = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "array", "prefixItems": cols, "minItems": len(cols), "maxItems": len(cols)},
        "description": f"Rows of values in the order {', '.join(sig.names)}.",
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": {"oneOf": [{"type": "array", "items": row, "minItems": 1}, split, positional]}
        },
    }


def response_schema(mv: ModelVersion) -> dict[str, Any]:
    """The JSON schema of a native predict response (probabilities and classes for classifiers)."""
    props: dict[str, Any] = {
        "model": {"type": "string", "const": mv.name},
        "version": {"type": "integer", "minimum": 1},
        "request_id": {"type": "string"},
        "predictions": {"type": "array", "description": "one prediction per row (null where not finite)"},
        "probabilities": {
            "type": "array",
            "items": {"type": "array", "items": {"type": ["number", "null"]}},
            "description": "classifiers: one row of class probabilities per input row",
        },
        "classes": {"type": "array", "items": _SCALAR, "description": "the column order of probabilities"},
    }
    if mv.task == "regressor":
        props["predictions"]["items"] = {"type": ["number", "null"]}
    return {
        "type": "object",
        "required": ["model", "version", "request_id", "predictions"],
        "properties": props,
    }


def components(models: list[ModelVersion]) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error", "details"],
            "properties": {
                "error": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "per-column problems, e.g. {'column': 'age', 'error': 'missing'}",
                },
            },
        },
        "V2Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "MlflowError": {
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
        },
        "V2InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {
                    "type": "object",
                    "properties": {
                        "content_type": {"type": "string"},
                        "binary_data_output": {"type": "boolean"},
                    },
                },
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "items": _v2_tensor(
                        {
                            "type": "object",
                            "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                        }
                    ),
                    "description": "one [rows, columns] tensor in signature order, or one tensor per column",
                },
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "parameters": {
                                "type": "object",
                                "properties": {"binary_data": {"type": "boolean"}},
                            },
                        },
                    },
                },
            },
        },
        "V2InferResponse": {
            "type": "object",
            "required": ["model_name", "model_version", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {
                    "type": "array",
                    "items": _v2_tensor({"type": "object"}),
                },
            },
        },
        "V2ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": ref("V2TensorMetadata")},
                "outputs": {"type": "array", "items": ref("V2TensorMetadata")},
                "parameters": {"type": "object"},
            },
        },
        "V2TensorMetadata": {
            "type": "object",
            "required": ["name", "datatype", "shape"],
            "properties": {
                "name": {"type": "string"},
                "datatype": {"enum": list(V2_DATATYPES)},
                "shape": {"type": "array", "items": {"type": "integer"}},
            },
        },
        "V2ModelReady": {
            "type": "object",
            "required": ["name", "ready"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "ready": {"type": "boolean"},
            },
        },
    }
    for mv in models:
        schemas[f"{mv.name}_request"] = request_schema(mv)
        schemas[f"{mv.name}_response"] = response_schema(mv)
    return schemas


def _v2_tensor(parameters: dict[str, Any]) -> dict[str, Any]:
    """A v2 tensor (input or output) with its ``parameters`` schema."""
    return {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"enum": list(V2_DATATYPES)},
            "data": {"type": "array"},
            "parameters": parameters,
        },
    }
