"""Benchmark: wall time of each solution notebook, the fixed costs inside it, and the tuning panel's latency.

    .venv/bin/python benchmarks/run.py            # all solutions + micro-benchmarks + widget latency
    .venv/bin/python benchmarks/run.py --infer    # also time log_model *without* pip_requirements (~15 s)
    .venv/bin/python benchmarks/run.py 01_first_run --no-widget   # one notebook only

Each notebook runs with the course engine (coursekit.engine: papermill with polling) in a fresh kernel against a fresh store, with
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coursekit.authoring.generate import pairs
from coursekit.engine import execute_notebook  # noqa: E402

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
        execute_notebook(path, out)
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


WIDGET_CELLS = [
    "from coursekit import classroom\n"
    "from coursekit.data import load_pima\n"
    "from coursekit.tuning import Tuner, prepare_data\n"
    "from coursekit.tuning_panel import TuningPanel\n"
    "room = classroom.start('benchmark-widget')\n"
    "train, test = prepare_data(load_pima(room.spark), seed=42)\n"
    "panel = TuningPanel(Tuner(train, test, 'benchmark-widget'))\n"
    "panel",
    "import json, time\n"
    "settings = [(20, 5), (30, 4), (40, 3), (50, 6), (10, 8), (60, 3), (25, 5), (35, 2), (45, 4), (15, 7), (55, 5), (70, 3), (5, 6)]\n"
    "latencies = []\n"
    "for trees, depth in settings:\n"
    "    panel.controls['numTrees'].value = trees\n"
    "    panel.controls['maxDepth'].value = depth\n"
    "    start = time.perf_counter()\n"
    "    assert panel.click()\n"
    "    panel.wait()\n"
    "    assert panel.last_error is None, panel.last_error\n"
    "    latencies.append(time.perf_counter() - start)\n"
    "print('LATENCIES', json.dumps(latencies))",
]


def bench_widget() -> dict[str, float]:
    """Click → run logged → leaderboard and plots redrawn, measured inside a real course kernel.

    The first click warms up the JVM and is reported apart; median and p95 are over the rest.
    """
    cells = [nbformat.v4.new_code_cell(src) for src in WIDGET_CELLS]
    nb = nbformat.v4.new_notebook(cells=cells)
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        os.environ["COURSE_DATA_DIR"] = tmp
        source, out = Path(tmp) / "widget.ipynb", Path(tmp) / "widget-out.ipynb"
        nbformat.write(nb, source)
        execute_notebook(source, out, cwd=tmp)
        executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    latencies = json.loads(text.split("LATENCIES", 1)[1])
    warm = sorted(latencies[1:])
    p95 = warm[min(len(warm) - 1, round(0.95 * (len(warm) - 1)))]
    return {
        "first_click_s": round(latencies[0], 2),
        "median_s": round(statistics.median(warm), 2),
        "p95_s": round(p95, 2),
        "max_s": round(warm[-1], 2),
        "clicks_after_warmup": len(warm),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the course notebooks")
    parser.add_argument("--infer", action="store_true", help="also time log_model with requirement inference")
    parser.add_argument("--no-widget", action="store_true", help="skip the tuning panel latency benchmark")
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
    if not args.no_widget:
        results["tuning_panel"] = bench_widget()
        print("tuning panel click latency:", ", ".join(f"{k}={v}" for k, v in results["tuning_panel"].items()))
    out = REPO / "benchmarks" / "results" / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
