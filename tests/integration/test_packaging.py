"""Packages for docker, k8s, lambda and cloud-function, each checked by running what it ships.

docker: the Dockerfile passes hadolint, and its requirements.txt + the modelport wheel are installed
into a fresh virtual environment (offline, from the local mirror) where the image's CMD serves the
baked store. k8s: the manifests validate against the Kubernetes schemas. lambda: the handler answers
API Gateway v2 events in-process. cloud-function: the real functions-framework serves main.py.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import modelport as mp
from modelport.packaging import package
from tests.unit.test_registry import credit_pipeline

BIN = Path(sys.executable).parent
K8S_VERSION = "1.30.0"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """credit:2 (a scikit-learn pipeline, alias production) in its own MODELPORT_HOME, without ONNX
    twins: packages run the native runtime unless a test compiles one."""
    home = tmp_path_factory.mktemp("pkg") / "home"
    mpatch = pytest.MonkeyPatch()
    mpatch.setenv("MODELPORT_HOME", str(home))
    mpatch.delenv("MODELPORT_DB_URL", raising=False)
    mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X, compile=False)
    mv = mp.register(model, "credit", sample=X, alias="production", compile=False)
    from modelport.client import default_client

    rows = json.loads(X.head(3).to_json(orient="records"))
    expected = model.predict(X.head(3)).tolist()
    yield {"registry": default_client().registry, "mv": mv, "rows": rows, "expected": expected, "home": home}
    mpatch.undo()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}: {proc.stdout.read()!r}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def _predictions(body: dict[str, Any]) -> list[Any]:
    return [p if not isinstance(p, dict) else p.get("label", p) for p in body["predictions"]]


# --- docker ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_ctx(store: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docker") / "credit"
    result = package(store["registry"], "credit@production", "docker", out)
    assert result.runtime == "native" and result.ref == "credit:2"
    return out


def test_docker_context_is_complete_and_lints_clean(docker_ctx: Path) -> None:
    names = {p.relative_to(docker_ctx).as_posix() for p in docker_ctx.rglob("*") if p.is_file()}
    assert {"Dockerfile", ".dockerignore", "requirements.txt", "package.json", "store/modelport.db"} <= names
    assert any(n.startswith("wheels/modelport-") and n.endswith(".whl") for n in names)
    assert not any(n.endswith(("-wal", "-shm")) for n in names)
    text = (docker_ctx / "Dockerfile").read_text()
    assert "FROM python:3." in text and "-slim" in text and "USER 10001" in text
    assert "HEALTHCHECK" in text and "/healthz" in text and "EXPOSE 8080" in text
    done = subprocess.run([BIN / "hadolint", str(docker_ctx / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    reqs = (docker_ctx / "requirements.txt").read_text().splitlines()
    pins = [r for r in reqs if r and not r.startswith("#")]
    assert all("==" in r for r in pins)
    names_lower = {r.split("==")[0].lower() for r in pins}
    assert {"scikit-learn", "numpy", "pandas", "starlette", "uvicorn"} <= names_lower
    assert not names_lower & {"skl2onnx", "onnxmltools", "onnx", "torch", "pytest", "mypy", "ruff"}


@pytest.fixture(scope="module")
def image_venv(docker_ctx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the Dockerfile's RUN steps install, in a fresh venv, offline from the local mirror."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = next((docker_ctx / "wheels").glob("modelport-*.whl"))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
    # the machine's pip configuration: the local package mirror, no other network
    subprocess.run([*pip, "-r", str(docker_ctx / "requirements.txt")], check=True, timeout=300)
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, timeout=120)
    return venv


def test_docker_cmd_serves_the_baked_store_in_a_fresh_venv(
    docker_ctx: Path, image_venv: Path, tmp_path: Path
) -> None:
    dockerfile = (docker_ctx / "Dockerfile").read_text()
    cmd = json.loads(next(line[4:] for line in dockerfile.splitlines() if line.startswith("CMD [")))
    workdir = tmp_path / "srv"
    shutil.copytree(docker_ctx / "store", workdir)  # COPY store/ /srv/modelport/ + WORKDIR
    port = _free_port()
    env = {
        "PATH": f"{image_venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MODELPORT_HOME": str(workdir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
    }
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/readyz", proc)
        status, body = _http("POST", f"{base}/models/credit/predict", {"inputs": _rows()})
        assert status == 200, body
        assert len(body["predictions"]) == 3
        status, body = _http("POST", f"{base}/models/credit/predict", {"inputs": [{"income": "a lot"}]})
        assert 400 <= status < 500 and "error" in body
        health = dockerfile.split("HEALTHCHECK", 1)[1].split("CMD ", 1)[1].splitlines()[0]
        subprocess.run(json.loads(health), env=env, check=True, timeout=10)  # the image's HEALTHCHECK
    finally:
        proc.terminate()
        proc.wait(30)
    # only the runtime closure: no ONNX converters, torch or test tools in the image
    site = next((image_venv / "lib").glob("python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert "scikit_learn" in installed and not installed & {"skl2onnx", "onnxmltools", "torch", "pytest"}
    size = subprocess.run(["du", "-sh", str(image_venv)], capture_output=True, text=True).stdout.split()[0]
    print(f"\nimage venv footprint: {size}")


def _rows() -> list[dict[str, Any]]:
    return [
        {"income": 52000.0, "debt_ratio": 0.3, "age": 41, "home": "RENT", "purpose": "car"},
        {"income": None, "debt_ratio": 0.7, "age": 23, "home": "OWN", "purpose": "edu"},
        {"income": 91000.0, "debt_ratio": 0.1, "age": 60, "home": "MORTGAGE", "purpose": "home"},
    ]


def test_onnx_twin_package_drops_the_framework(store: dict[str, Any], tmp_path: Path) -> None:
    registry = store["registry"]
    mp.compile("credit:1")
    result = package(registry, "credit:1", "docker", tmp_path / "onnx", runtime="auto")
    assert result.runtime == "onnx" and result.notes
    names = {r.split("==")[0].lower() for r in result.requirements}
    assert "onnxruntime" in names and not names & {"scikit-learn", "scipy", "skl2onnx", "onnx"}
    assert "--runtime onnx" in (tmp_path / "onnx" / "Dockerfile").read_text()
    from modelport.packaging.store import open_baked

    client = open_baked(tmp_path / "onnx" / "store", tmp_path / "h")
    predictor = client.registry.load("credit:1", runtime="onnx")
    assert predictor.runtime == "onnx" and len(predictor.predict(_rows())) == 3


# --- k8s -------------------------------------------------------------------------------------------


def test_k8s_manifests_validate(store: dict[str, Any], tmp_path: Path) -> None:
    import kubernetes_validate

    job = tmp_path / "jobs" / "nightly.yaml"
    job.parent.mkdir()
    job.write_text(
        "name: credit-nightly\nmodel: credit@production\n"
        "source: {kind: parquet, path: data/, watermark: updated_at}\nkey: id\n"
        "output: {kind: parquet, path: scores/}\nschedule: '0 2 * * *'\n"
    )
    out = tmp_path / "deploy"
    package(
        store["registry"],
        "credit:2",
        "k8s",
        out,
        image="registry.example/credit:2",
        replicas=3,
        batch_job=job,
    )
    docs = {
        p.name: yaml.safe_load(p.read_text()) for p in out.glob("*.yaml") if p.name != "kustomization.yaml"
    }
    assert set(docs) == {
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
        "pdb.yaml",
        "batch-cronjob.yaml",
        "batch-job-configmap.yaml",
    }
    for name, doc in docs.items():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True), name
    container = docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/credit:2"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert docs["hpa.yaml"]["apiVersion"] == "autoscaling/v2" and docs["hpa.yaml"]["spec"]["minReplicas"] == 3
    assert docs["pdb.yaml"]["apiVersion"] == "policy/v1"
    cron = docs["batch-cronjob.yaml"]["spec"]
    assert cron["schedule"] == "0 2 * * *" and cron["concurrencyPolicy"] == "Forbid"
    batch = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert batch["command"] == ["modelport", "batch", "run", "/jobs/nightly.yaml"]
    assert yaml.safe_load(out.joinpath("kustomization.yaml").read_text())["resources"]
    bad = {**docs["deployment.yaml"], "spec": {**docs["deployment.yaml"]["spec"], "replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


# --- lambda ----------------------------------------------------------------------------------------


def _apigw_v2(method: str, path: str, body: Any = None) -> dict[str, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "test",
            },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795000000000,
        },
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


def _lambda_body(response: dict[str, Any]) -> Any:
    body = response["body"]
    return json.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body)


def test_lambda_handler_answers_api_gateway_events(store: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "credit-lambda"
    package(store["registry"], "credit@production", "lambda", out)
    assert {"handler.py", "requirements.txt", "README.md", "store/modelport.db"} <= {
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
    }
    assert any(line.startswith("mangum==") for line in (out / "requirements.txt").read_text().splitlines())
    spec = importlib.util.spec_from_file_location("credit_lambda_handler", out / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ctx: Any = None
    ok = module.handler(_apigw_v2("POST", "/models/credit/predict", {"inputs": _rows()}), ctx)
    assert ok["statusCode"] == 200, ok
    assert len(_lambda_body(ok)["predictions"]) == 3
    again = module.handler(_apigw_v2("POST", "/models/credit/predict", {"inputs": _rows()[:1]}), ctx)
    assert again["statusCode"] == 200
    bad = module.handler(_apigw_v2("POST", "/models/credit/predict", {"inputs": [{"income": "x"}]}), ctx)
    assert 400 <= bad["statusCode"] < 500 and "error" in _lambda_body(bad)
    health = module.handler(_apigw_v2("GET", "/healthz"), ctx)
    assert health["statusCode"] == 200 and _lambda_body(health) == {"status": "ok"}


# --- cloud-function --------------------------------------------------------------------------------


def test_cloud_function_serves_with_functions_framework(store: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "credit-gcf"
    package(store["registry"], "credit@production", "cloud-function", out)
    reqs = (out / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("functions-framework==") for r in reqs) and reqs[-1].startswith("./wheels/")
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("MODELPORT_HOME", None)
    cmd = [str(BIN / "functions-framework"), "--target=serve", f"--port={port}", "--host=127.0.0.1"]
    proc = subprocess.Popen(cmd, cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/healthz", proc)
        status, body = _http("POST", f"{base}/models/credit/predict", {"inputs": _rows()})
        assert status == 200 and len(body["predictions"]) == 3, body
        status, body = _http("POST", f"{base}/models/credit/predict", {"inputs": [{"income": "x"}]})
        assert 400 <= status < 500 and "error" in body
        status, body = _http("GET", f"{base}/readyz")
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(30)


def test_k8s_sized_by_the_advisor(store: dict[str, Any], tmp_path: Path) -> None:
    """modelport advise --json, then modelport package --target k8s --advice: the capacity lands in
    the manifests."""
    import shlex

    from typer.testing import CliRunner

    from modelport.cli import app

    runner = CliRunner()
    advised = runner.invoke(app, shlex.split("advise credit:2 --rate 2000/s --p99 1s --repeats 30 --json"))
    assert advised.exit_code == 0, advised.output
    advice = tmp_path / "advice.json"
    advice.write_text(advised.stdout)
    capacity = json.loads(advised.stdout)["capacity"]
    out = tmp_path / "deploy"
    done = runner.invoke(app, shlex.split(f"package credit:2 --target k8s --output {out} --advice {advice}"))
    assert done.exit_code == 0, done.output
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    assert deployment["spec"]["replicas"] == capacity["replicas"]
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["memory"] == f"{capacity['memory_mb']}Mi"
    assert str(resources["requests"]["cpu"]) == str(capacity["cpu"])
