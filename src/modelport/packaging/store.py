"""A baked store: a MODELPORT_HOME holding one model version, shipped inside a package.

``bake_store`` copies the version's verified artifact folder (and its ONNX twin when the package
serves it) into ``dest/artifacts/NAME/KEY`` and writes a fresh ``dest/modelport.db`` with the same
name, version number, metadata and the aliases that point at it. Artifact URIs are stored relative
to ``dest`` ("artifacts/credit/…"), so the store can move: a container runs with its working
directory at the store (``WORKDIR``), and :func:`open_baked` resolves them against the store folder
wherever it was unpacked (a Lambda task root, a Cloud Function source folder).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from modelport.client import Client
from modelport.config import Settings
from modelport.model_version import ModelVersion
from modelport.registry import Registry
from modelport.store import ArtifactStore, MetadataStore, db
from modelport.store.artifacts import hash_tree

DB_FILE = "modelport.db"
ARTIFACTS = "artifacts"
_VERSION_COLUMNS = (
    "flavor",
    "task",
    "description",
    "signature",
    "tags",
    "metrics",
    "flavor_info",
    "environment",
    "requirements",
    "files",
    "lineage",
    "reference",
)


def bake_store(registry: Registry, mv: ModelVersion, dest: Path, *, twin: bool) -> None:
    """Write a self-contained store for ``mv`` at ``dest`` (which must not exist yet).

    ``twin``: also copy the version's ONNX twin (it must exist) so ``--runtime onnx`` can serve it.
    """
    dest.mkdir(parents=True)
    src = registry.artifacts.local_copy(mv.artifact_uri, mv.files, f"'{mv.ref}'")
    uri = _copy_tree(src, dest, mv.name, mv.files)
    as_dict = mv.to_dict()
    record = {k: as_dict[k] for k in _VERSION_COLUMNS}
    meta = MetadataStore(f"sqlite:///{dest / DB_FILE}")
    try:
        # MetadataStore.insert_version allocates the next number; a baked store keeps the original
        # one (credit:3 stays credit:3), so the row is written with the store's own table.
        with meta.engine.begin() as conn:
            conn.execute(db.models.insert().values(name=mv.name, description="", created_at=mv.created_at))
            conn.execute(
                db.versions.insert().values(
                    **record, name=mv.name, version=mv.version, created_at=mv.created_at, artifact_uri=uri
                )
            )
        for alias in mv.aliases:
            meta.set_alias(mv.name, alias, mv.version, "copied into a package")
        if twin:
            stored = registry.meta.get_compiled(mv.name, mv.version, "onnx")
            assert stored is not None
            twin_src = registry.artifacts.local_copy(
                stored["artifact_uri"], stored["files"], f"the ONNX twin of '{mv.ref}'"
            )
            twin_uri = _copy_tree(twin_src, dest, mv.name, stored["files"])
            keep = ("files", "info", "report", "passed")
            meta.put_compiled(
                mv.name, mv.version, "onnx", {**{k: stored[k] for k in keep}, "artifact_uri": twin_uri}
            )
    finally:
        meta.engine.dispose()  # checkpoints the WAL into modelport.db: the store is one file + artifacts
    for leftover in (dest / f"{DB_FILE}-wal", dest / f"{DB_FILE}-shm"):
        leftover.unlink(missing_ok=True)


def _copy_tree(src: Path, dest: Path, name: str, files: dict[str, str]) -> str:
    rel = f"{ARTIFACTS}/{name}/{uuid.uuid4().hex}"
    target = dest / rel
    for path in files:  # only the registered files, never stray ones
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / path, target / path)
    copied = hash_tree(target)
    if copied != files:
        raise AssertionError(f"copying the artifacts of {name} into {dest} changed them")
    return rel


class BakedArtifacts(ArtifactStore):
    """An artifact store that resolves the relative URIs of a baked store against its folder."""

    def __init__(self, url: str, cache_dir: Path, base: Path) -> None:
        super().__init__(url, cache_dir)
        self.base = base

    def local_copy(self, uri: str, files: dict[str, str], what: str) -> Path:
        if "://" not in uri and not Path(uri).is_absolute():
            uri = str(self.base / uri)
        return super().local_copy(uri, files, what)


class BakedClient(Client):
    """A :class:`Client` over a baked store that may sit on a read-only file system.

    The SQLite file is copied into ``home`` (a fresh temporary folder by default: on AWS Lambda
    only /tmp is writable, and SQLite needs to write beside its database even to read it); the
    artifacts are read where they are and verified against their checksums as always.
    """

    def __init__(self, store: Path, home: Path | None = None) -> None:
        store = store.resolve()
        home = home or Path(tempfile.mkdtemp(prefix="modelport-"))
        home.mkdir(parents=True, exist_ok=True)
        if (home / DB_FILE).resolve() != (store / DB_FILE):
            shutil.copyfile(store / DB_FILE, home / DB_FILE)
        # a package runs the runtime it was built with: it never compiles (its store may be read-only)
        settings = Settings(
            home=home, db_url=f"sqlite:///{home / DB_FILE}", artifacts_url=str(home), auto_compile=False
        )
        super().__init__(settings)
        self.artifacts = BakedArtifacts(str(home), self.settings.cache_dir, store)
        self.registry = Registry(self.meta, self.artifacts, auto_compile=False)


def open_baked(store: Path, home: Path | None = None) -> Client:
    """A client for a baked store (see :class:`BakedClient`)."""
    return BakedClient(store, home)
