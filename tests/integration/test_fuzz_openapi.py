"""Fuzzing the live ``/openapi.json`` with schemathesis: no generated input may produce a 5xx.

A real server (uvicorn on loopback) serves a classifier with numeric and categorical columns and a
numeric regressor. Its OpenAPI document is fuzzed twice:

* with the schemathesis CLI (``st run``): the examples, coverage (boundary and type-mutation
  cases, deterministic) and fuzzing phases, positive and negative data;
* with schemathesis' Python API (``APIOperation.as_strategy`` under Hypothesis), positive and
  negative data per operation.

Both check for server errors and that every response conforms to what the document declares
(status codes, content types, headers, body schemas). A counting wrapper around the app proves
that every operation in the document was exercised, so neither test can pass vacuously.
(``schemathesis.pytest.from_fixture`` is not used: with pytest 9 it fails on ``Node._nodeid``.)
"""

from __future__ import annotations

import re
import subprocess
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import numpy as np
import pandas as pd
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sklearn.linear_model import LinearRegression

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from tests.integration.answering import CountsAnswers
from tests.unit.test_registry import credit_pipeline

MAX_BODY = 64 * 1024
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CLI_CHECKS = ",".join(c.__name__ for c in CHECKS)


class CountingApp(CountsAnswers):
    """The ASGI app, recording (method, path, status) of every HTTP request it answers."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.seen: Counter[tuple[str, str, int]] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [0]

        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.seen[(scope["method"], scope["path"], status[0])] += 1

    def answered(self, scope: Any, answer: Any) -> None:
        # the HTTP protocol answers predictions itself: counted here too, so fuzzing covers both transports
        self.seen[(scope["method"], scope["path"], answer[0])] += 1

    def reset(self) -> None:
        self.seen.clear()
        self.fast = 0

    def per_operation(self, spec: dict[str, Any]) -> Counter[str]:
        """Requests per documented operation ("GET /v2/models/credit/versions/{version}")."""
        patterns = [
            (
                f"{method.upper()} {path}",
                method.upper(),
                re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"),
            )
            for path, item in spec["paths"].items()
            for method in item
        ]
        out: Counter[str] = Counter()
        for (method, path, _), n in self.seen.items():
            for label, m, rx in patterns:
                if m == method and rx.match(path):
                    out[label] += n
                    break
        return out

    def server_errors(self) -> list[tuple[str, str, int]]:
        return [k for k in self.seen if k[2] >= 500 or k[2] == 0]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, CountingApp]]:
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setenv("MODELPORT_HOME", str(tmp_path_factory.mktemp("fuzz") / "mphome"))
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        model, X, _ = credit_pipeline()
        mp.register(model, "credit", sample=X, alias="production")
        rng = np.random.default_rng(1)
        P = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50), "n": rng.integers(0, 9, 50)})
        mp.register(LinearRegression().fit(P, P.a * 2 + P.n), "price", sample=P)
        app = CountingApp(
            create_app(
                Client(Settings.from_env()),
                ["credit@production", "price"],
                max_body_bytes=MAX_BODY,
            )
        )
        with BackgroundServer(app) as srv:
            yield srv, app


@pytest.fixture(scope="module")
def spec(fuzz_server: tuple[BackgroundServer, CountingApp]) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{fuzz_server[0].url}/openapi.json").json()
    return doc


def test_document_covers_every_route(spec: dict[str, Any]) -> None:
    ops = {f"{m.upper()} {p}" for p, item in spec["paths"].items() for m in item}
    for name in ("credit", "price"):
        for base in (f"/v2/models/{name}", f"/v2/models/{name}/versions/{{version}}"):
            assert {f"GET {base}", f"GET {base}/ready", f"POST {base}/infer"} <= ops
        assert f"POST /models/{name}/predict" in ops
    assert {"POST /invocations", "GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json"} <= ops
    assert {"GET /docs", "GET /ping", "GET /health", "GET /version", "GET /v2", "GET /v2/health/live"} <= ops
    predict = spec["paths"]["/models/credit/predict"]["post"]["responses"]
    assert set(predict) == {"200", "400", "404", "413", "422", "503"}
    assert predict["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "details"] and error["properties"]["details"]["type"] == "array"
    columns = spec["components"]["schemas"]["credit_request"]["properties"]["inputs"]["oneOf"][0]["items"]
    assert columns["required"] == ["income", "debt_ratio", "age", "home", "purpose"]
    assert columns["properties"]["age"]["type"] == "integer"  # ints must be present in every row
    assert spec["paths"]["/invocations"]["post"]["responses"]["415"]["content"] == {
        "text/plain": {"schema": {"type": "string"}}
    }


def test_schemathesis_cli_all_phases(
    fuzz_server: tuple[BackgroundServer, CountingApp], spec: dict[str, Any]
) -> None:
    """``st run``: examples + coverage + fuzzing phases, positive and negative data, deterministic."""
    server, app = fuzz_server
    app.reset()
    st = Path(sys.executable).with_name("st")
    cmd = [
        str(st),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        CLI_CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--max-examples",
        "30",
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
    assert not app.server_errors(), app.server_errors()
    _assert_every_operation_exercised(app, spec, minimum_each=1, minimum_total=1000)
    assert app.fast > 0  # some predictions were answered from the HTTP protocol


def test_python_api_positive_and_negative(
    fuzz_server: tuple[BackgroundServer, CountingApp], spec: dict[str, Any]
) -> None:
    """Each operation's Hypothesis strategy, positive then negative data, every response validated."""
    server, app = fuzz_server
    app.reset()
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    schema.config.update(base_url=server.url)
    failures: list[str] = []
    cases = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            op = result.ok()
            for mode in schemathesis.GenerationMode:
                try:
                    cases += _fuzz(op, mode, session)
                except hypothesis.errors.Unsatisfiable:
                    # an operation without parameters or body has no invalid input to generate
                    if mode.is_positive or op.body or any(True for _ in op.iter_parameters()):
                        failures.append(f"{op.label} ({mode}): no cases could be generated")
                except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
                    failures.append(
                        f"{op.label} ({mode}): {''.join(traceback.format_exception_only(exc))[:4000]}"
                    )
    assert not failures, "\n\n".join(failures)
    assert not app.server_errors(), app.server_errors()
    assert cases >= 250
    _assert_every_operation_exercised(app, spec, minimum_each=1, minimum_total=250, predicted=1)


def _fuzz(op: Any, mode: schemathesis.GenerationMode, session: requests.Session) -> int:
    count = [0]

    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(session=session, checks=CHECKS, timeout=20)
        count[0] += 1

    runner: Callable[[], None] = run
    runner()
    return count[0]


def _assert_every_operation_exercised(
    app: CountingApp, spec: dict[str, Any], minimum_each: int, minimum_total: int, predicted: int = 2
) -> None:
    per_op = app.per_operation(spec)
    documented = {f"{m.upper()} {p}" for p, item in spec["paths"].items() for m in item}
    thin = {op: per_op[op] for op in documented if per_op[op] < minimum_each}
    assert not thin, f"operations hardly exercised: {thin}"
    assert sum(app.seen.values()) >= minimum_total, sum(app.seen.values())
    # the fuzzing reached the models, not only the request validation
    ok = {path for (method, path, status) in app.seen if status == 200 and method == "POST"}
    assert len(ok & {"/models/credit/predict", "/models/price/predict"}) >= predicted, ok
