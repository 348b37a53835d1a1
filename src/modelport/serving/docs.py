"""``/openapi.json`` built from each served model's signature, and a plain HTML page that shows it."""

from __future__ import annotations

import html
from typing import Any

from modelport import __version__
from modelport.model_version import ModelVersion
from modelport.schema import ColumnSpec

_JSON_TYPES = {"bool": "boolean", "string": "string", "category": "string", "datetime": "string"}


def _column_schema(c: ColumnSpec) -> dict[str, Any]:
    t = _JSON_TYPES.get(c.type, "number" if c.type.startswith("float") else "integer")
    schema: dict[str, Any] = {"type": [t, "null"] if c.nullable else t, "x-modelport-type": c.type}
    if c.categories is not None:
        schema["examples"] = list(c.categories[:10])
    return schema


def request_schema(mv: ModelVersion) -> dict[str, Any]:
    """The JSON schema of a native predict request for this version's signature."""
    sig = mv.signature
    if sig.tensor is not None:
        return {
            "type": "object",
            "required": ["inputs"],
            "properties": {"inputs": {"type": "array", "description": f"tensor {sig.tensor.to_dict()}"}},
        }
    row = {
        "type": "object",
        "properties": {c.name: _column_schema(c) for c in sig.columns or ()},
        "required": sig.names,
    }
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"type": "array", "items": {"type": "string", "enum": sig.names}},
            "data": {"type": "array", "items": {"type": "array"}},
        },
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {"inputs": {"oneOf": [{"type": "array", "items": row, "minItems": 1}, split]}},
    }


def _op(summary: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK"},
            "4XX": {"description": "Bad input: a JSON error naming the problem."},
        },
    }
    if schema is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return op


def openapi(models: list[ModelVersion]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for mv in models:
        schemas[f"{mv.name}_request"] = request_schema(mv)
        ref = {"$ref": f"#/components/schemas/{mv.name}_request"}
        paths[f"/models/{mv.name}/predict"] = {
            "post": _op(f"Predict with {mv.name} (version {mv.version}, {mv.task or 'model'})", ref)
        }
        paths[f"/v2/models/{mv.name}/infer"] = {
            "post": _op(f"Open Inference Protocol v2 infer on {mv.name}", {})
        }
        paths[f"/v2/models/{mv.name}"] = {"get": _op(f"v2 metadata of {mv.name}")}
    paths["/invocations"] = {"post": _op("MLflow-compatible scoring", {"type": "object"})}
    for path in ("/healthz", "/readyz", "/metrics", "/ping", "/health", "/version", "/v2", "/v2/health/live"):
        paths[path] = {"get": _op(path.strip("/"))}
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelport", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
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
