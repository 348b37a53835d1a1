"""``/openapi.json`` built from each served model's signature, and a plain HTML page that shows it.

The document describes every route the server answers, with the request and response bodies
of each protocol: native JSON (``/models/{name}/predict``, a schema per model from its
signature), the Open Inference Protocol v2 (``/v2/...``) and MLflow scoring (``/invocations``),
plus the operational endpoints. Errors are documented per protocol: native
``{"error": str, "details": [...]}``, v2 ``{"error": str}``, MLflow
``{"error_code": str, "message": str}``.
"""

from __future__ import annotations

import html
from typing import Any

from modelport.model_version import ModelVersion
from modelport.schema import ColumnSpec
from modelport.version import __version__

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
_JSON = "application/json"
_SCALAR = {"type": ["string", "number", "boolean", "null"]}


def _ref(name: str) -> dict[str, str]:
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


def _components(models: list[ModelVersion]) -> dict[str, Any]:
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
                "inputs": {"type": "array", "items": _ref("V2TensorMetadata")},
                "outputs": {"type": "array", "items": _ref("V2TensorMetadata")},
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


def _json(schema: dict[str, Any] | None, description: str) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema} if schema is not None else {}
    return {"description": description, "content": {_JSON: content}}


def _errors(error: str, codes: tuple[int, ...]) -> dict[str, Any]:
    what = {
        400: "The request is malformed (not JSON, wrong layout, a bad model reference).",
        404: "The model, version or alias is not served here.",
        413: "The request body is larger than the server's limit.",
        415: "The Content-Type is not one this endpoint reads.",
        422: "The input does not match the model's signature, or the model rejected it.",
        503: "The model store is unavailable or the server is overloaded (see Retry-After).",
    }
    return {str(code): _json(_ref(error), what[code]) for code in codes}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": schema}}}


_VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Echoed in the response and the prediction log when printable and at most 200 chars.",
}
_HEADER_LENGTH = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "schema": {"type": "integer", "minimum": 0},
    "description": "Binary tensor extension: the length of the JSON header; raw tensor bytes follow it.",
}
_PREDICT_ERRORS = (400, 404, 413, 422, 503)


def _v2_model_paths(base: str, name: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    extra: dict[str, Any] = {"parameters": params} if params else {}
    infer_ok = _json(_ref("V2InferResponse"), "The outputs (binary outputs follow the JSON header).")
    infer_ok["content"]["application/octet-stream"] = {}
    infer_ok["headers"] = {
        "Inference-Header-Content-Length": {
            "description": "present when outputs are binary: the length of the JSON header",
            "schema": {"type": "integer"},
        }
    }
    return {
        base: {
            "get": _op(
                f"v2 metadata of {name}",
                {
                    "200": _json(_ref("V2ModelMetadata"), "Inputs, outputs, versions."),
                    **_errors("V2Error", (400, 404, 503)),
                },
                **extra,
            )
        },
        f"{base}/ready": {
            "get": _op(
                f"v2 readiness of {name}",
                {"200": _json(_ref("V2ModelReady"), "Loaded."), **_errors("V2Error", (400, 404, 503))},
                **extra,
            )
        },
        f"{base}/infer": {
            "post": _op(
                f"Open Inference Protocol v2 infer on {name}",
                {"200": infer_ok, **_errors("V2Error", _PREDICT_ERRORS)},
                parameters=[*params, _HEADER_LENGTH],
                requestBody=_body(_ref("V2InferRequest")),
            )
        },
    }


def openapi(models: list[ModelVersion]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for mv in models:
        n = mv.name
        paths[f"/models/{n}/predict"] = {
            "post": _op(
                f"Predict with {n} (version {mv.version}, {mv.task or 'model'})",
                {"200": _json(_ref(f"{n}_response"), "Predictions."), **_errors("Error", _PREDICT_ERRORS)},
                parameters=[_REQUEST_ID],
                requestBody=_body(_ref(f"{n}_request")),
            )
        }
        paths.update(_v2_model_paths(f"/v2/models/{n}", n, []))
        paths.update(_v2_model_paths(f"/v2/models/{n}/versions/{{version}}", f"a version of {n}", [_VERSION]))
    records = {"type": "array", "items": {"type": "object"}}
    mlflow_in = {
        "type": "object",
        "oneOf": [
            {"required": ["dataframe_split"], "properties": {"dataframe_split": {"type": "object"}}},
            {"required": ["dataframe_records"], "properties": {"dataframe_records": records}},
            {"required": ["instances"], "properties": {"instances": {}}},
            {"required": ["inputs"], "properties": {"inputs": {}}},
        ],
        "properties": {"params": {"type": "object"}},
        "description": "exactly one of dataframe_split, dataframe_records, instances, inputs",
    }
    mlflow_ok = {
        "type": "object",
        "required": ["predictions"],
        "properties": {"predictions": {"type": "array"}},
    }
    mlflow_errors = _errors("MlflowError", (400, 404, 413, 503))
    mlflow_errors["415"] = {
        "description": "Only application/json and text/csv are read.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    paths["/invocations"] = {
        "post": _op(
            "MLflow-compatible scoring (the first served model, or ?model=NAME)",
            {"200": _json(mlflow_ok, "Predictions."), **mlflow_errors},
            parameters=[{"name": "model", "in": "query", "required": False, "schema": {"type": "string"}}],
            requestBody={
                "required": True,
                "content": {_JSON: {"schema": mlflow_in}, "text/csv": {"schema": {"type": "string"}}},
            },
        )
    }
    text = {"text/plain": {"schema": {"type": "string"}}}
    boolean = {"type": "boolean"}

    def obj(**props: Any) -> dict[str, Any]:
        return {"type": "object", "required": list(props), "properties": props}

    ready = obj(ready=boolean, loaded={"type": "array", "items": {"type": "string"}})
    simple = {
        "/healthz": ("Liveness", {"200": _json(obj(status={"type": "string"}), "Alive.")}),
        "/readyz": (
            "Readiness: every served model loaded",
            {"200": _json(ready, "Ready."), "503": _json(ready, "Still loading.")},
        ),
        "/metrics": (
            "Prometheus metrics",
            {"200": {"description": "Text exposition format.", "content": text}},
        ),
        "/openapi.json": ("This document", {"200": _json({"type": "object"}, "OpenAPI 3.1.")}),
        "/docs": (
            "An HTML page of the served models",
            {"200": {"description": "HTML.", "content": {"text/html": {}}}},
        ),
        "/ping": (
            "MLflow health check",
            {"200": _json(None, "Healthy (the body is a newline, as MLflow's).")},
        ),
        "/health": (
            "MLflow health check",
            {"200": _json(None, "Healthy (the body is a newline, as MLflow's).")},
        ),
        "/version": ("The server version", {"200": {"description": "Version.", "content": text}}),
        "/v2": (
            "v2 server metadata",
            {
                "200": _json(
                    obj(name={"type": "string"}, version={"type": "string"}, extensions={"type": "array"}),
                    "Server.",
                )
            },
        ),
        "/v2/health/live": ("v2 liveness", {"200": _json(obj(live=boolean), "Alive.")}),
        "/v2/health/ready": (
            "v2 readiness",
            {"200": _json(obj(ready=boolean), "Ready."), "503": _json(obj(ready=boolean), "Still loading.")},
        ),
    }
    for path, (summary, responses) in simple.items():
        paths[path] = {"get": _op(summary, responses)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelport", "version": __version__},
        "paths": paths,
        "components": {"schemas": _components(models)},
    }


def html_page(models: list[ModelVersion]) -> str:
    parts = ["<!doctype html><meta charset=utf-8><title>modelport</title>", "<h1>modelport server</h1>"]
    parts.append(
        "<p>Endpoints: <code>POST /models/{name}/predict</code>, <code>POST /v2/models/{name}/infer</code>, "
        "<code>POST /invocations</code>, <code>GET /healthz</code>, <code>/readyz</code>, "
        "<code>/metrics</code>, <a href='/openapi.json'>/openapi.json</a>.</p>"
    )
    for mv in models:
        e = html.escape
        parts.append(f"<h2>{e(mv.name)} <small>version {mv.version} · {e(mv.task or '')}</small></h2>")
        parts.append(f"<p><code>POST /models/{e(mv.name)}/predict</code></p>")
        parts.append("<table border=1 cellpadding=4><tr><th>column</th><th>type</th><th>nullable</th></tr>")
        for c in mv.signature.columns or ():
            parts.append(
                f"<tr><td>{e(c.name)}</td><td>{e(c.type)}</td><td>{'yes' if c.nullable else 'no'}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)


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
