"""Local-volume locations: a directory on this machine stands in for the mounted volume."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .base import Location, ObjectInfo, ObjectNotFound, StorageError, clean_prefix


class LocalLocation(Location):
    def __init__(self, *, root: Path, mount_path: str, prefix: str | None) -> None:
        self.prefix = clean_prefix(prefix)
        self.root = root / self.prefix if self.prefix else root  # the directory behind url
        mount = "/" + mount_path.strip("/") if mount_path.strip("/") else ""
        self.url = f"local://{mount}/{self.prefix}/" if self.prefix else f"local://{mount}/"

    def _path(self, rel: str) -> Path:
        rel = rel.lstrip("/")
        path = (self.root / rel).resolve()
        # Relative paths must stay inside the location, as they would inside a mounted volume.
        if self.root.resolve() not in (path, *path.parents):
            raise StorageError("InvalidStorage", f"path {rel!r} escapes {self.url}")
        return path

    def put(self, rel: str, data: bytes) -> None:
        path = self._path(rel)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write-then-rename so a reader never sees half an object.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError("StorageUnavailable", f"failed to write {self.url_of(rel)}: {exc}") from exc

    def get(self, rel: str) -> bytes:
        try:
            return self._path(rel).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(self.url_of(rel)) from exc
        except OSError as exc:
            raise StorageError("StorageUnavailable", f"failed to read {self.url_of(rel)}: {exc}") from exc

    def exists(self, rel: str) -> bool:
        return self._path(rel).is_file()

    def list(self, rel_prefix: str = "") -> list[ObjectInfo]:
        if not self.root.is_dir():
            return []
        found = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                full = Path(dirpath) / name
                rel = full.relative_to(self.root).as_posix()
                if rel.startswith(rel_prefix.lstrip("/")):
                    found.append(ObjectInfo(rel=rel, size=full.stat().st_size))
        return sorted(found, key=lambda info: info.rel)

    def delete(self, rels: Iterable[str]) -> int:
        deleted = 0
        for rel in dict.fromkeys(rels):
            try:
                self._path(rel).unlink()
                deleted += 1
            except FileNotFoundError:
                pass
        return deleted

    def ensure_bucket(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
