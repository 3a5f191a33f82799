"""The one gateway to the shipped dataset: path, checksum, and a typed Spark DataFrame."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from coursekit.errors import DatasetMissingError
from coursekit.settings import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PIMA_FILE = "pima_diabetes.csv"
PIMA_SHA256 = "fd374ead340bbb74245cfdb501e0462caeaafdfa0840ac54d07096d59587c367"
PIMA_ROWS = 532
FEATURES = ["npreg", "glu", "bp", "skin", "bmi", "ped", "age"]
LABEL = "diabetic"
_SCHEMA = ", ".join(
    [f"{name} INT" for name in ("npreg", "glu", "bp", "skin")]
    + ["bmi DOUBLE", "ped DOUBLE", "age INT", f"{LABEL} INT"]
)


def dataset_path(settings: Settings | None = None) -> Path:
    """Path of the Pima diabetes CSV; raises :class:`DatasetMissingError` if it is absent."""
    settings = settings or load_settings()
    path = settings.datasets_dir / PIMA_FILE
    if not path.is_file():
        raise DatasetMissingError(
            f"The course dataset {path} is missing: restore it with "
            f"`git checkout -- datasets/{PIMA_FILE}` (or set COURSE_DATASETS_DIR to the folder that has it)."
        )
    return path


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, the checksum recorded in the datasheet."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_dataset(settings: Settings | None = None) -> Path:
    """Return the dataset path after checking its checksum against the datasheet."""
    path = dataset_path(settings)
    digest = file_sha256(path)
    if digest != PIMA_SHA256:
        raise DatasetMissingError(
            f"The course dataset {path} was changed (sha256 {digest[:12]}…): restore it with "
            f"`git checkout -- datasets/{PIMA_FILE}`."
        )
    return path


def load_pima(spark: SparkSession, settings: Settings | None = None) -> DataFrame:
    """Read the Pima diabetes data as a Spark DataFrame with an explicit schema."""
    path = verify_dataset(settings)
    return spark.read.csv(str(path), header=True, schema=_SCHEMA)
