"""The one gateway to the shipped dataset: path, checksum, and a typed Spark DataFrame."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from coursekit.errors import DatasetMissingError
from coursekit.settings import Settings, load_settings

if TYPE_CHECKING:
    import pyarrow as pa
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


def _schema_types() -> dict[str, str]:
    """Column name -> ``INT`` or ``DOUBLE``, in CSV order, from :data:`_SCHEMA`."""
    return dict(part.split() for part in _SCHEMA.split(", "))


def read_pima_table(settings: Settings | None = None) -> pa.Table:
    """The checked CSV as an Arrow table on the driver: INT columns as int32, DOUBLE columns as float64.

    Python's ``int`` and ``float`` parse every value exactly as Spark's CSV reader does (both round
    correctly), so the numbers are the same to the last bit; the checksum guarantees the header and
    that no cell is empty.
    """
    import pyarrow as pa

    path = verify_dataset(settings)
    with path.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    arrays = []
    for name, values in zip(header, zip(*rows, strict=True), strict=True):
        parse, arrow_type = (int, pa.int32()) if _schema_types()[name] == "INT" else (float, pa.float64())
        arrays.append(pa.array([parse(value) for value in values], type=arrow_type))
    return pa.Table.from_arrays(arrays, names=header)


def load_pima(spark: SparkSession, settings: Settings | None = None) -> DataFrame:
    """The Pima diabetes data as a Spark DataFrame with an explicit schema, in one partition.

    The CSV is read on the driver (it is 532 rows) and handed to Spark as Arrow data, so executors
    on other hosts never need the file, nor a Python worker, and Spark Connect gets the same rows.
    One partition, as ``spark.read.csv`` gave for this file: ``randomSplit`` seeds each partition on
    its own, so the splits, and every AUC in the lessons, depend on it.
    """
    table = read_pima_table(settings)
    # Spark 4 takes an Arrow table as it is; Spark 3.5 (older Databricks runtimes) takes the same columns as pandas.
    data = table if int(str(spark.version).split(".")[0]) >= 4 else table.to_pandas()
    return spark.createDataFrame(data, schema=_SCHEMA).coalesce(1)
