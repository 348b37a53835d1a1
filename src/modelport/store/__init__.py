"""Storage: the metadata database (SQLAlchemy) and the artifact store (local folder / fsspec)."""

from modelport.store.artifacts import ArtifactStore
from modelport.store.metadata import MetadataStore

__all__ = ["ArtifactStore", "MetadataStore"]
