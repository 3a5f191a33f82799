"""Fingerprints of folders, to notice when a graded notebook changed files it should not touch.

Two strengths, because they guard different things:

* :func:`content_digest` hashes every byte of a small tree (a submission's own copy of the
  ``coursekit`` package): any edit, new file or deleted file changes it.
* :func:`stat_snapshot` records size and modification time of every file under larger trees
  (the repository's ``coursekit/`` and ``solutions/``, the submissions folder, the gradebook
  folder). It is cheap enough to take after every cell; :func:`changed_paths` compares two.

Neither prevents a write (the grader often runs as root); they make writes visible.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

#: path -> (size, mtime in ns); a missing root maps to nothing.
Snapshot = dict[str, tuple[int, int]]


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        found.extend(Path(folder) / name for name in sorted(names))
    return found


def content_digest(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes under ``root`` (``__pycache__`` included)."""
    digest = hashlib.sha256()
    for path in _files(root):
        digest.update(str(path.relative_to(root) if path != root else path.name).encode())
        digest.update(b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


def stat_snapshot(roots: Iterable[Path]) -> Snapshot:
    """Size and modification time of every file under ``roots`` (missing roots are skipped)."""
    snapshot: Snapshot = {}
    for root in roots:
        if not root.exists():
            continue
        for path in _files(root):
            try:
                stat = path.stat()
            except OSError:
                continue
            snapshot[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return snapshot


def changed_paths(before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]) -> list[str]:
    """Paths created, deleted or modified between two snapshots, sorted."""
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
