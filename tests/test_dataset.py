"""The shipped dataset is what the datasheet says, and RandomForest settings visibly change AUC on it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from coursekit.data import FEATURES, LABEL, PIMA_ROWS, PIMA_SHA256, file_sha256, load_pima
from coursekit.settings import REPO_ROOT

DATASHEET = REPO_ROOT / "datasets" / "DATASHEET.md"
CSV = REPO_ROOT / "datasets" / "pima_diabetes.csv"


def test_datasheet_records_the_real_checksum_rows_and_columns() -> None:
    sheet = DATASHEET.read_text(encoding="utf-8")
    assert file_sha256(CSV) == PIMA_SHA256
    assert PIMA_SHA256 in sheet
    assert f"**Rows** | {PIMA_ROWS}" in sheet
    for column in [*FEATURES, LABEL]:
        assert f"| `{column}` |" in sheet
    for heading in ("**Source**", "**Licence**"):
        assert heading in sheet
    assert CSV.stat().st_size <= 5_000_000


def test_csv_matches_the_schema_and_class_balance_in_the_datasheet() -> None:
    with CSV.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [*FEATURES, LABEL]
    assert len(rows) == PIMA_ROWS
    positives = sum(int(r[LABEL]) for r in rows)
    assert {r[LABEL] for r in rows} == {"0", "1"}
    assert f"{positives} diabetic" in DATASHEET.read_text(encoding="utf-8")


@pytest.mark.notebook
def test_random_forest_settings_change_auc_by_at_least_two_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler

    from coursekit.spark import get_spark

    spark = get_spark()
    train, test = load_pima(spark).randomSplit([0.7, 0.3], seed=42)
    evaluator = BinaryClassificationEvaluator(labelCol=LABEL)
    aucs = {}
    for trees, depth in [(3, 10), (10, 2), (50, 5)]:
        forest = RandomForestClassifier(labelCol=LABEL, numTrees=trees, maxDepth=depth, seed=42)
        model = Pipeline(stages=[VectorAssembler(inputCols=FEATURES, outputCol="features"), forest]).fit(train)
        aucs[(trees, depth)] = evaluator.evaluate(model.transform(test))
    spread = max(aucs.values()) - min(aucs.values())
    assert spread >= 0.02, aucs
    # The extremes quoted in the datasheet are reproduced (same seed, same split).
    sheet = DATASHEET.read_text(encoding="utf-8")
    quoted = [float(x) for x in re.findall(r"\*\*(0\.\d{3})\*\*", sheet)]
    assert aucs[(3, 10)] == pytest.approx(quoted[0], abs=0.0015)
    assert aucs[(10, 2)] == pytest.approx(quoted[1], abs=0.0015)
