"""The unit every part of modelport passes around: one registered version of a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelport.schema import Signature


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version and everything recorded about it.

    ``files`` maps each artifact file (relative path) to its sha256; ``reference`` holds the
    reference-sample summary statistics (``reference["columns"]``) and row count, the sample
    itself is the artifact file ``reference.parquet``. ``compiled`` maps a runtime ("onnx") to
    whether its twin passed the parity gate (see ``modelport compile``).
    """

    name: str
    version: int
    flavor: str
    created_at: datetime
    artifact_uri: str
    signature: Signature
    task: str | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    flavor_info: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    compiled: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name:version``, the reference that always points at exactly this version."""
        return f"{self.name}:{self.version}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        """Rebuild from :meth:`to_dict` output (e.g. an edge bundle's manifest)."""
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(
            **{
                **fields,
                "created_at": datetime.fromisoformat(d["created_at"]),
                "signature": Signature.from_dict(d["signature"]),
                "aliases": tuple(d.get("aliases", ())),
                "requirements": tuple(d.get("requirements", ())),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``modelport models show --json`` prints)."""
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "flavor": self.flavor,
            "task": self.task,
            "created_at": self.created_at.isoformat(),
            "description": self.description,
            "tags": dict(self.tags),
            "metrics": dict(self.metrics),
            "signature": self.signature.to_dict(),
            "flavor_info": dict(self.flavor_info),
            "environment": dict(self.environment),
            "requirements": list(self.requirements),
            "files": dict(self.files),
            "lineage": dict(self.lineage),
            "reference": dict(self.reference),
            "compiled": dict(self.compiled),
            "artifact_uri": self.artifact_uri,
        }
