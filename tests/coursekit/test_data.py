"""coursekit.data: the shipped Pima CSV, its checksum, the errors for a missing or altered copy, and the
DataFrame built on the driver (the same rows, partition and splits as Spark's own CSV reader gave)."""

from __future__ import annotations

import csv
import shutil

import pytest
from spark_fixtures import course_spark  # noqa: F401 - the shared Spark fixture

from coursekit import data
from coursekit.errors import CourseSetupError, DatasetMissingError
from coursekit.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "datasets" / data.PIMA_FILE


@pytest.fixture
def datasets_dir(tmp_path, monkeypatch):
    """An empty COURSE_DATASETS_DIR (and a throw-away COURSE_DATA_DIR)."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    monkeypatch.setenv("COURSE_DATASETS_DIR", str(folder))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    return folder


def test_shipped_csv_matches_the_datasheet():
    assert data.file_sha256(SHIPPED) == data.PIMA_SHA256
    with SHIPPED.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == data.FEATURES + [data.LABEL]
    assert len(rows) - 1 == data.PIMA_ROWS
    assert {row[-1] for row in rows[1:]} == {"0", "1"}
    assert all(len(row) == len(data.FEATURES) + 1 for row in rows)


def test_schema_names_every_column_in_csv_order():
    names = [part.split()[0] for part in data._SCHEMA.split(", ")]
    assert names == data.FEATURES + [data.LABEL]


def test_missing_dataset_names_the_git_fix(datasets_dir):
    with pytest.raises(DatasetMissingError) as caught:
        data.dataset_path()
    message = str(caught.value)
    assert f"git checkout -- datasets/{data.PIMA_FILE}" in message
    assert "COURSE_DATASETS_DIR" in message and str(datasets_dir) in message
    assert isinstance(caught.value, CourseSetupError)


def test_intact_copy_verifies(datasets_dir):
    shutil.copy(SHIPPED, datasets_dir / data.PIMA_FILE)
    assert data.dataset_path() == datasets_dir / data.PIMA_FILE
    assert data.verify_dataset() == datasets_dir / data.PIMA_FILE


def test_tampered_copy_fails_the_checksum(datasets_dir):
    copy = datasets_dir / data.PIMA_FILE
    copy.write_text(SHIPPED.read_text(encoding="utf-8").replace("\n5,86,", "\n6,86,", 1), encoding="utf-8")
    digest = data.file_sha256(copy)
    assert digest != data.PIMA_SHA256
    assert data.dataset_path() == copy  # present, so only the checksum complains
    with pytest.raises(DatasetMissingError) as caught:
        data.verify_dataset()
    message = str(caught.value)
    assert "was changed" in message and digest[:12] in message
    assert f"git checkout -- datasets/{data.PIMA_FILE}" in message


def test_file_sha256_is_hex_sha256(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert data.file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_driver_table_has_the_schema_types_and_the_csv_values(datasets_dir):
    shutil.copy(SHIPPED, datasets_dir / data.PIMA_FILE)
    table = data.read_pima_table()
    assert table.column_names == data.FEATURES + [data.LABEL]
    assert table.num_rows == data.PIMA_ROWS
    types = {field.name: str(field.type) for field in table.schema}
    assert types == {name: "double" if name in ("bmi", "ped") else "int32" for name in table.column_names}
    with SHIPPED.open(newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    row = table.slice(0, 1).to_pylist()[0]
    assert row == {name: (float if types[name] == "double" else int)(value) for name, value in first.items()}


def test_driver_table_checks_the_checksum_first(datasets_dir):
    (datasets_dir / data.PIMA_FILE).write_text("npreg\n1\n", encoding="utf-8")
    with pytest.raises(DatasetMissingError, match="was changed"):
        data.read_pima_table()


def _spark_csv(spark):
    """The DataFrame as load_pima built it before issue 11: executors read the CSV file themselves."""
    return spark.read.csv(str(data.verify_dataset()), header=True, schema=data._SCHEMA)


def test_load_pima_gives_the_rows_partition_and_splits_of_spark_csv_reader(course_spark):  # noqa: F811
    spark = course_spark.spark
    old, new = _spark_csv(spark), data.load_pima(spark)
    assert new.schema == old.schema
    assert new.rdd.getNumPartitions() == old.rdd.getNumPartitions() == 1
    assert new.collect() == old.collect()
    # randomSplit seeds each partition separately: the lessons' splits (and AUCs) stay what the solutions stored.
    for before, after in zip(old.randomSplit([0.7, 0.3], seed=42), new.randomSplit([0.7, 0.3], seed=42), strict=True):
        assert after.collect() == before.collect()


def test_load_pima_never_sends_executors_to_the_file(course_spark, tmp_path, monkeypatch):  # noqa: F811
    folder = tmp_path / "datasets"
    folder.mkdir()
    shutil.copy(SHIPPED, folder / data.PIMA_FILE)
    monkeypatch.setenv("COURSE_DATASETS_DIR", str(folder))
    frame = data.load_pima(course_spark.spark)
    (folder / data.PIMA_FILE).unlink()  # as on a worker host: the driver's disk is not there
    assert frame.count() == data.PIMA_ROWS
    assert "FileScan" not in frame._jdf.queryExecution().executedPlan().toString()


def test_spark_3_gets_the_same_rows_as_pandas(course_spark, monkeypatch):  # noqa: F811
    """Spark 3.5 (older Databricks runtimes) cannot take an Arrow table: it gets pandas, with the same rows and splits."""
    spark = course_spark.spark
    handed: list[type] = []

    class Spark35:
        version = "3.5.2"

        def createDataFrame(self, data, schema):  # noqa: N802 - Spark's name
            handed.append(type(data))
            return spark.createDataFrame(data, schema=schema)

    older, newer = data.load_pima(Spark35()), data.load_pima(spark)  # type: ignore[arg-type]
    assert handed[0].__name__ == "DataFrame" and handed[0].__module__.startswith("pandas")
    assert older.schema == newer.schema and older.collect() == newer.collect()
    for a, b in zip(older.randomSplit([0.7, 0.3], seed=42), newer.randomSplit([0.7, 0.3], seed=42), strict=True):
        assert a.collect() == b.collect()
