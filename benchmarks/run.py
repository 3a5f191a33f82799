"""Benchmark: wall time of each solution notebook and the fixed costs inside it.

    .venv/bin/python benchmarks/run.py            # all solutions + micro-benchmarks
    .venv/bin/python benchmarks/run.py --infer    # also time log_model *without* pip_requirements (~15 s)

Each notebook runs with papermill in a fresh kernel against a fresh store, with
its default (learner) parameters. Per-cell times come from papermill's own
cell metadata; cells are grouped by what they do (Spark start, fits, model
logging). Results are printed and written to benchmarks/results/latest.json.
This is a measurement, not a test: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coursekit.generate import KERNEL_NAME, pairs  # noqa: E402

GROUPS = {
    "setup (Spark start + store)": ("classroom.start(",),
    "model logging": ("log_model(",),
    "fits": (".fit(",),
}


def _group(source: str) -> str:
    for name, needles in GROUPS.items():
        if any(n in source for n in needles):
            return name
    return "other cells"


def bench_notebook(path: Path) -> dict[str, object]:
    """Execute one notebook and return its wall time and grouped cell times."""
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        os.environ["COURSE_DATA_DIR"] = tmp
        out = Path(tmp) / path.name
        start = time.perf_counter()
        papermill.execute_notebook(str(path), str(out), kernel_name=KERNEL_NAME, cwd=str(path.parent), progress_bar=False)
        wall = time.perf_counter() - start
        nb = nbformat.read(out, as_version=4)
    groups: dict[str, float] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            duration = cell.metadata.get("papermill", {}).get("duration") or 0.0
            groups[_group(cell.source)] = groups.get(_group(cell.source), 0.0) + duration
    return {"notebook": path.name, "wall_s": round(wall, 2), "cells_s": {k: round(v, 2) for k, v in groups.items()}}


def bench_fixed_costs(infer: bool) -> dict[str, float]:
    """Time Spark start, one fit, and log_model in this process, as the notebooks do them."""
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        os.environ["COURSE_DATA_DIR"] = tmp
        import mlflow
        import mlflow.spark
        import pyspark
        from pyspark.ml import Pipeline
        from pyspark.ml.classification import RandomForestClassifier
        from pyspark.ml.feature import VectorAssembler

        from coursekit.data import FEATURES, LABEL, load_pima
        from coursekit.spark import get_spark
        from coursekit.tracking import configure_tracking, ensure_experiment

        costs: dict[str, float] = {}
        t = time.perf_counter()
        spark = get_spark()
        costs["spark_start_s"] = time.perf_counter() - t
        train = load_pima(spark)
        pipeline = Pipeline(stages=[
            VectorAssembler(inputCols=FEATURES, outputCol="features"),
            RandomForestClassifier(labelCol=LABEL, numTrees=20, maxDepth=5, seed=42),
        ])
        fits = []
        for _ in range(3):
            t = time.perf_counter()
            model = pipeline.fit(train)
            fits.append(time.perf_counter() - t)
        costs["first_fit_s"], costs["fit_median_s"] = fits[0], statistics.median(fits[1:])
        configure_tracking()
        ensure_experiment("benchmark")
        mlflow.set_experiment("benchmark")
        requirements = [f"mlflow=={mlflow.__version__}", f"pyspark=={pyspark.__version__}"]
        times = []
        for _ in range(3):
            with mlflow.start_run():
                t = time.perf_counter()
                mlflow.spark.log_model(model, "rf_model", pip_requirements=requirements)
                times.append(time.perf_counter() - t)
        costs["log_model_explicit_reqs_median_s"] = statistics.median(times)
        if infer:
            with mlflow.start_run():
                t = time.perf_counter()
                mlflow.spark.log_model(model, "rf_model")
                costs["log_model_inferred_reqs_s"] = time.perf_counter() - t
        spark.stop()
    return {k: round(v, 2) for k, v in costs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the course notebooks")
    parser.add_argument("--infer", action="store_true", help="also time log_model with requirement inference")
    parser.add_argument("notebooks", nargs="*", help="solution stems to run (default: all)")
    args = parser.parse_args()
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count()}, "notebooks": []}
    for solution, _ in pairs():
        if args.notebooks and solution.stem not in args.notebooks:
            continue
        row = bench_notebook(solution)
        results["notebooks"].append(row)  # type: ignore[union-attr]
        cells = ", ".join(f"{k} {v:.1f}s" for k, v in row["cells_s"].items())  # type: ignore[union-attr]
        print(f"{row['notebook']:<28} {row['wall_s']:>6.1f}s  ({cells})")
    results["fixed_costs"] = bench_fixed_costs(args.infer)
    for key, value in results["fixed_costs"].items():  # type: ignore[union-attr]
        print(f"{key:<34} {value:>6.2f}s")
    out = REPO / "benchmarks" / "results" / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
