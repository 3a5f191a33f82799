"""Folder fingerprints: every edit, new file and deletion is visible; nothing else is."""

from __future__ import annotations

import os
from pathlib import Path

from coursekit.instructor.fingerprint import changed_paths, content_digest, stat_snapshot


def _tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "pkg" / "sub" / "b.py").write_text("b = 2\n")
    return root / "pkg"


def test_content_digest_is_stable_and_sees_every_change(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    first = content_digest(pkg)
    assert content_digest(pkg) == first
    (pkg / "a.py").write_text("a = 2\n")
    edited = content_digest(pkg)
    assert edited != first
    (pkg / "sub" / "__pycache__").mkdir()
    (pkg / "sub" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"forged")
    assert content_digest(pkg) != edited  # a planted bytecode file counts too
    (pkg / "sub" / "__pycache__" / "b.cpython-311.pyc").unlink()
    (pkg / "sub" / "__pycache__").rmdir()
    assert content_digest(pkg) == edited
    (pkg / "sub" / "b.py").rename(pkg / "sub" / "c.py")
    assert content_digest(pkg) != edited  # same bytes, other name


def test_stat_snapshots_find_created_modified_and_deleted_files(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    before = stat_snapshot([pkg, tmp_path / "missing"])
    assert sorted(before) == [str(pkg / "a.py"), str(pkg / "sub" / "b.py")]
    assert changed_paths(before, stat_snapshot([pkg])) == []
    (pkg / "a.py").write_text("a = 1000\n")
    (pkg / "new.txt").write_text("x")
    (pkg / "sub" / "b.py").unlink()
    assert changed_paths(before, stat_snapshot([pkg])) == sorted(str(pkg / n) for n in ("a.py", "new.txt", "sub/b.py"))


def test_a_same_size_rewrite_is_seen_through_its_modification_time(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    before = stat_snapshot([pkg])
    (pkg / "a.py").write_text("a = 9\n")
    stat = (pkg / "a.py").stat()
    os.utime(pkg / "a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert changed_paths(before, stat_snapshot([pkg])) == [str(pkg / "a.py")]


def test_a_single_file_can_be_watched(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    before = stat_snapshot([pkg / "a.py"])
    assert list(before) == [str(pkg / "a.py")]
    assert content_digest(pkg / "a.py") != content_digest(pkg / "sub" / "b.py")
