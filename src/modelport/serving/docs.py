"""``/openapi.json`` built from each served model's signature, and the HTML page (a Jinja2
template, autoescaped) that shows it.

The document describes every route the server answers, with the request and response bodies
of each protocol: native JSON (``/models/{name}/predict``, a schema per model from its
signature), the Open Inference Protocol v2 (``/v2/...``) and MLflow scoring (``/invocations``),
plus the operational endpoints. Errors are documented per protocol: native
``{"error": str, "details": [...]}``, v2 ``{"error": str}``, MLflow
``{"error_code": str, "message": str}``.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from modelport.model_version import ModelVersion
from modelport.serving.schemas import components, ref
from modelport.version import __version__

_JSON = "application/json"


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
    return {str(code): _json(ref(error), what[code]) for code in codes}


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
    infer_ok = _json(ref("V2InferResponse"), "The outputs (binary outputs follow the JSON header).")
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
                    "200": _json(ref("V2ModelMetadata"), "Inputs, outputs, versions."),
                    **_errors("V2Error", (400, 404, 503)),
                },
                **extra,
            )
        },
        f"{base}/ready": {
            "get": _op(
                f"v2 readiness of {name}",
                {"200": _json(ref("V2ModelReady"), "Loaded."), **_errors("V2Error", (400, 404, 503))},
                **extra,
            )
        },
        f"{base}/infer": {
            "post": _op(
                f"Open Inference Protocol v2 infer on {name}",
                {"200": infer_ok, **_errors("V2Error", _PREDICT_ERRORS)},
                parameters=[*params, _HEADER_LENGTH],
                requestBody=_body(ref("V2InferRequest")),
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
                {"200": _json(ref(f"{n}_response"), "Predictions."), **_errors("Error", _PREDICT_ERRORS)},
                parameters=[_REQUEST_ID],
                requestBody=_body(ref(f"{n}_request")),
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
        "components": {"schemas": components(models)},
    }


_TEMPLATES = Environment(
    loader=PackageLoader("modelport.serving", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)


def html_page(models: list[ModelVersion]) -> str:
    """The server's HTML page: its endpoints, and each served model's columns."""
    return _TEMPLATES.get_template("docs.html.j2").render(models=models)
