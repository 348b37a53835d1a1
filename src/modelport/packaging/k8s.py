"""Kubernetes manifests for serving a packaged image: Deployment, Service, HorizontalPodAutoscaler
(autoscaling/v2, CPU target), PodDisruptionBudget (policy/v1) and, for a batch job file, a CronJob
with the job file in a ConfigMap. ``kubectl apply -k deploy/credit/`` applies them all.

The image is the one ``--target docker`` builds (its ``CMD`` serves the model); ``--image`` names it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from modelport.errors import InvalidInput
from modelport.packaging import Staged
from modelport.packaging.docker import APP_HOME

JOBS_DIR = "/jobs"
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


class _Dumper(yaml.SafeDumper):
    """Plain YAML without &anchors/*aliases for dicts that appear twice (label selectors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def k8s_name(name: str) -> str:
    """A DNS-1123 label from a model name (lowercase letters, digits and '-', at most 63)."""
    out = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].rstrip("-")
    return out or "model"


def write_k8s(
    staged: Staged,
    *,
    image: str | None = None,
    replicas: int = 2,
    max_replicas: int | None = None,
    cpu: str = "500m",
    memory: str = "512Mi",
    cpu_limit: str | None = "1",
    memory_limit: str | None = None,
    cpu_target: int = 70,
    port: int = 8080,
    workers: int = 1,
    batch_job: Path | None = None,
    namespace: str | None = None,
    **unused: Any,
) -> None:
    """Write the manifests and a kustomization.yaml listing them into ``staged.dir``."""
    if unused:
        raise InvalidInput(f"Options not used by --target k8s: {', '.join(sorted(unused))}.")
    for label, value in (("--cpu", cpu), ("--memory", memory), ("--cpu-limit", cpu_limit)):
        if value is not None and not _QUANTITY.match(value):
            raise InvalidInput(f"{label} must be a Kubernetes quantity (500m, 1, 512Mi); got {value!r}.")
    if memory_limit is not None and not _QUANTITY.match(memory_limit):
        raise InvalidInput(f"--memory-limit must be a Kubernetes quantity (1Gi); got {memory_limit!r}.")
    max_replicas = max_replicas or max(replicas * 4, 2)
    if replicas < 1 or max_replicas < replicas or not 1 <= cpu_target <= 100:
        raise InvalidInput(
            "--replicas must be at least 1, --max-replicas at least --replicas and --cpu-target 1–100; "
            f"got {replicas}, {max_replicas} and {cpu_target}."
        )
    mv = staged.mv
    name = k8s_name(mv.name)
    image = image or f"{name}:{mv.version}"
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "modelport"}
    meta = {"name": name, "labels": {**labels, "modelport.io/version": str(mv.version)}}
    if namespace:
        meta["namespace"] = namespace
    limits = {"memory": memory_limit or memory}  # memory limit = request: no overcommit, no surprise OOM
    if cpu_limit:
        limits["cpu"] = cpu_limit
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}
    container = {
        "name": "server",
        "image": image,
        "env": [{"name": "PORT", "value": str(port)}, {"name": "WORKERS", "value": str(workers)}],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": _probe("/readyz", 5, 10, 3),
        "livenessProbe": _probe("/healthz", 30, 15, 3),
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    docs: dict[str, dict[str, Any]] = {
        "deployment.yaml": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"terminationGracePeriodSeconds": 40, "containers": [container]},
                },
            },
        },
        "service.yaml": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        },
        "hpa.yaml": {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": replicas,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": cpu_target},
                        },
                    }
                ],
            },
        },
        "pdb.yaml": {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            # maxUnavailable, not minAvailable: with one replica, minAvailable 1 would block node drains
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        },
    }
    if batch_job is not None:
        docs.update(_batch_docs(staged, batch_job, name, image, meta, resources))
    for file, doc in docs.items():
        (staged.dir / file).write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(docs),
    }
    (staged.dir / "kustomization.yaml").write_text(yaml.dump(kustomization, Dumper=_Dumper, sort_keys=False))


def _probe(path: str, delay: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "initialDelaySeconds": delay,
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _batch_docs(
    staged: Staged,
    path: Path,
    name: str,
    image: str,
    meta: dict[str, Any],
    resources: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    from modelport.batch.jobs import load_job

    job = load_job(path)
    if not job.schedule:
        raise InvalidInput(f"The batch job {path} has no 'schedule'; a CronJob needs one (e.g. '0 2 * * *').")
    if job.model_name != staged.mv.name:
        raise InvalidInput(
            f"The batch job {path} scores model '{job.model_name}', but this image holds "
            f"'{staged.mv.ref}'. Package that model, or point the job at {staged.mv.name}."
        )
    job_name = k8s_name(f"{name}-{job.name}")[:52].rstrip("-")  # CronJob names: at most 52 characters
    job_meta = {**meta, "name": job_name}
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": job_meta,
        "data": {path.name: path.read_text()},
    }
    container = {
        "name": "batch",
        "image": image,
        "workingDir": APP_HOME,
        "command": ["modelport", "batch", "run", f"{JOBS_DIR}/{path.name}"],
        "resources": resources,
        "volumeMounts": [{"name": "job", "mountPath": JOBS_DIR, "readOnly": True}],
    }
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": job_meta,
        "spec": {
            "schedule": job.schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": job_name}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [container],
                            "volumes": [{"name": "job", "configMap": {"name": job_name}}],
                        },
                    },
                }
            },
        },
    }
    return {"batch-job-configmap.yaml": config, "batch-cronjob.yaml": cron}
