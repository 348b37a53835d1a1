"""Artifact storage: a local folder by default, any fsspec URL when configured.

Publishing is atomic: a version's files are written to a staging folder and moved into place
(a rename on a local disk) before the database row that points at them is committed, so no
reader ever sees a half-written version. Files from remote stores are downloaded into a local
cache; every load verifies each file's sha256 against the registered value.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from modelport.errors import ArtifactTampered, StoreError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by POSIX relative path."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = sha256_file(p)
    return out


def verify_tree(root: Path, files: dict[str, str], what: str) -> None:
    """Raise :class:`ArtifactTampered` unless every recorded file is present and unchanged."""
    for rel, expected in files.items():
        p = root / rel
        if not p.is_file():
            raise ArtifactTampered(f"Artifact file {rel!r} of {what} is missing from {root}.")
        actual = sha256_file(p)
        if actual != expected:
            raise ArtifactTampered(
                f"Artifact file {rel!r} of {what} was modified after registration "
                f"(sha256 {actual[:12]}…, registered {expected[:12]}…). Refusing to load it; "
                "re-register the model from a trusted copy."
            )


class ArtifactStore:
    """Where model files live. ``url`` is a folder path or an fsspec URL (``s3://…``, ``file://…``)."""

    def __init__(self, url: str, cache_dir: Path) -> None:
        self.url = url.rstrip("/")
        self.cache_dir = cache_dir
        self.is_local = "://" not in url
        if self.is_local:
            self.root = Path(url).expanduser()
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the artifact folder {self.root}: {exc.strerror}. "
                    "Set MODELPORT_HOME or MODELPORT_ARTIFACTS to a writable folder."
                ) from exc

    def new_staging_dir(self) -> Path:
        """An empty folder to write a version into; on local stores it sits on the same disk."""
        base = self.root / ".staging" if self.is_local else self.cache_dir / ".staging"
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="v-", dir=base))

    def publish(self, staging: Path, name: str) -> str:
        """Move a finished staging folder into the store; returns the artifact URI."""
        key = f"{name}/{uuid.uuid4().hex}"
        if self.is_local:
            dest = self.root / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, dest)
            return str(dest)
        fs, root = self._fs()
        dest_url = f"{self.url}/{key}"
        try:
            fs.put(str(staging) + "/", f"{root}/{key}", recursive=True)
        except Exception as exc:
            raise StoreError(f"Could not upload artifacts to {dest_url}: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dest_url

    def delete(self, uri: str) -> None:
        """Remove a published folder (used to roll back a registration that failed later)."""
        if "://" not in uri:
            shutil.rmtree(uri, ignore_errors=True)
            return
        fs, path = self._fs(uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def local_copy(self, uri: str, files: dict[str, str], what: str) -> Path:
        """A verified local folder with the version's files (downloaded once for remote stores)."""
        if "://" not in uri:
            root = Path(uri)
            verify_tree(root, files, what)
            return root
        fs, path = self._fs(uri)
        local = self.cache_dir / hashlib.sha256(uri.encode()).hexdigest()[:24]
        try:
            verify_tree(local, files, what)
            return local
        except ArtifactTampered:
            pass
        tmp = Path(tempfile.mkdtemp(prefix="dl-", dir=self._ensure_cache()))
        try:
            for rel in files:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                fs.get(f"{path}/{rel}", str(tmp / rel))
        except FileNotFoundError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ArtifactTampered(f"Artifact files of {what} are missing at {uri}: {exc}") from exc
        verify_tree(tmp, files, what)
        shutil.rmtree(local, ignore_errors=True)
        os.replace(tmp, local)
        return local

    def _ensure_cache(self) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.cache_dir

    def _fs(self, url: str | None = None) -> tuple[Any, str]:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url or self.url)
        return fs, path.rstrip("/")
