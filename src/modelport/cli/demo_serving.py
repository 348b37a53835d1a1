"""The demo's on-demand step: serve credit@production on loopback and call it through every protocol.

Uses only the standard library as the client (urllib), as a team's existing code would.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from typing import Any


def call_every_protocol(ref: str, rows: Any) -> list[dict[str, Any]]:
    """Start a server for ``ref``, send ``rows`` (a DataFrame) via native JSON, v2 and MLflow."""
    from modelport.client import default_client
    from modelport.serving import create_app
    from modelport.serving.background import BackgroundServer

    name = ref.split("@")[0].split(":")[0]
    records = [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict("records")]
    columns = list(rows.columns)
    v2_types = {c: ("BYTES" if rows[c].dtype.kind in "OUT" or str(rows[c].dtype) == "str" else
                    "INT64" if rows[c].dtype.kind in "iu" else "FP64") for c in columns}  # fmt: skip
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("native JSON", f"/models/{name}/predict", {"inputs": records}),
        (
            "Open Inference v2",
            f"/v2/models/{name}/infer",
            {
                "parameters": {"content_type": "pd"},
                "inputs": [
                    {
                        "name": c,
                        "shape": [len(records)],
                        "datatype": v2_types[c],
                        "data": [r[c] for r in records],
                    }
                    for c in columns
                ],
            },
        ),
        ("MLflow", "/invocations", {"dataframe_records": records}),
    ]
    results = []
    with BackgroundServer(create_app(default_client(), [ref])) as srv:
        for protocol, path, body in calls:
            t0 = time.perf_counter()
            reply = _post(srv.url + path, body)
            results.append(
                {"protocol": protocol, "path": path, "ms": (time.perf_counter() - t0) * 1e3, "reply": reply}
            )
    return results


def first_prediction(result: dict[str, Any]) -> Any:
    reply = result["reply"]
    if "outputs" in reply:
        out = {o["name"]: o for o in reply["outputs"]}
        return out["predictions"]["data"][0]
    return reply["predictions"][0]


def _post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    return None if isinstance(v, float) and math.isnan(v) else v
