"""Soak: lesson 5's solution under plain papermill, many runs two at a time, and no cell stalls.

    .venv/bin/python benchmarks/soak.py                       # 2 loops x 10 runs = 20 runs, 300 s per-cell limit
    .venv/bin/python benchmarks/soak.py --runs 15 --parallel 2 --execution-timeout 120
    .venv/bin/python benchmarks/soak.py --full-jit            # do not set COURSE_SPARK_QUICK_JIT=1

Lesson 5 once stalled under plain papermill (3 stalls in 42 runs): an ipywidgets Output-widget
capture made nbclient send on the shell socket while it awaited the cell's execute_reply
(nbclient #312, jupyter_client #1059), and the cell sat until the timeout. The capture is gone;
this soak is the evidence. It runs the installed ``papermill`` command line itself (its default
engine, not coursekit's polling runner) with ``-k mlflow-spark-course``, ``--cwd solutions``,
``--execution-timeout`` (a stall is bounded and shows as a failed run) and ``--no-progress-bar``.

``--parallel`` loops run at once; each does ``--runs`` consecutive runs against its own store
(``COURSE_DATA_DIR`` in a per-loop temp folder, kept across that loop's runs, so every run after
the first also proves the notebook runs again on a used store). ``MLFLOW_TRACKING_URI``,
``SPARK_REMOTE`` and ``MLFLOW_EXPERIMENT_*`` are unset; ``COURSE_SPARK_QUICK_JIT=1`` as in the
test suite unless ``--full-jit``.

Every run records its exit status, wall time, per-cell durations from papermill's own cell
metadata, error outputs and the check outcomes (all must be "correct"). Per code cell (by index):
median, max, max/median. The strict criterion: no cell over 3x its median. Cells that exceed it
only because their median is tiny (median < ``--noise-median`` s and duration - median <
``--noise-excess`` s) are listed separately, never dropped; the verdict states both views. Each
cell over 3x also names what the other loops were running meanwhile and the load average then.
Results are printed and written to benchmarks/results/soak.json; a failed run's output notebook
and papermill log are copied to benchmarks/results/soak-failures/. A measurement, not a test: it
exits 0 whatever it finds (2 for wrong usage).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coursekit.exercises.checks import CHECK_MIMETYPE  # noqa: E402
from coursekit.settings import KERNEL_NAME  # noqa: E402

NOTEBOOK = REPO / "solutions" / "05_tune_interactively.ipynb"
PANEL_NEEDLES = ("TuningPanel", ".click(", "panel.")
STALL_FACTOR = 3.0
RESULTS = REPO / "benchmarks" / "results"


def _timestamp(value: str | None) -> float | None:
    """Seconds since the epoch of one of papermill's ISO timestamps."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _label(source: str) -> str:
    """First meaningful line of a cell, short."""
    for line in source.splitlines():
        line = line.strip()
        if line and not line.startswith(("###", "#>")):
            return line if len(line) <= 60 else line[:57] + "..."
    return "(empty)"


def _commit() -> str | None:
    """The checked-out commit, for the record."""
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def expected_exercises(notebook: Path) -> list[str]:
    """Exercise keys whose check output the stored solution holds."""
    return sorted(check_outcomes(nbformat.read(notebook, as_version=4)))


def check_outcomes(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Exercise key -> outcome, from the machine-readable output every check emits."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            payload = out.get("data", {}).get(CHECK_MIMETYPE)
            if payload is None:
                continue
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    continue
            if isinstance(payload, dict) and "exercise" in payload:
                found[str(payload["exercise"])] = str(payload.get("outcome"))
    return found


def read_run(output: Path) -> dict[str, Any]:
    """Per-cell durations, error outputs and check outcomes of one executed notebook."""
    nb = nbformat.read(output, as_version=4)
    cells: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("papermill", {})
        cells[index] = {
            "duration_s": meta.get("duration"),
            "start": _timestamp(meta.get("start_time")),
            "end": _timestamp(meta.get("end_time")),
            "exception": bool(meta.get("exception")),
            "status": meta.get("status"),
        }
        errors += [f"cell {index}: {out.get('ename')}: {out.get('evalue')}"
                   for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    return {"cells": cells, "errors": errors, "checks": check_outcomes(nb)}


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds so far), from /proc (empty where there is no /proc)."""
    table: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            data = entry.read_text()
            rest = data[data.rindex(")") + 2:].split()
            table[int(entry.parent.name)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / tick)
        except (OSError, ValueError, IndexError):
            continue
    return table


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:100]
    except OSError:
        return "?"


class LoadSampler(threading.Thread):
    """Every few seconds: the 1-minute load average, and the share of the machine's CPUs used by this soak
    (this process and its descendants) and by everything else (other people's jobs), from /proc."""

    def __init__(self, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every, self.stop = every, threading.Event()
        self.samples: list[tuple[float, float, float | None, float | None]] = []  # (time, load1, ours, foreign)
        self.foreign_cpu_s: dict[str, float] = {}

    def run(self) -> None:
        cpus = os.cpu_count() or 1
        before, then = _processes(), time.time()
        self.samples.append((then, os.getloadavg()[0], None, None))
        while not self.stop.wait(self.every):
            now, table = time.time(), _processes()
            children: dict[int, list[int]] = {}
            for pid, (parent, _) in table.items():
                children.setdefault(parent, []).append(pid)
            ours, todo = set(), [os.getpid()]
            while todo:
                pid = todo.pop()
                ours.add(pid)
                todo += children.get(pid, [])
            used = {"ours": 0.0, "foreign": 0.0}
            for pid, (_, cpu) in table.items():
                delta = cpu - before.get(pid, (0, 0.0))[1]  # a process new since the last sample: all its CPU
                if delta <= 0:
                    continue
                used["ours" if pid in ours else "foreign"] += delta
                if pid not in ours:
                    name = _command(pid) or f"pid {pid}"
                    self.foreign_cpu_s[name] = self.foreign_cpu_s.get(name, 0.0) + delta
            span = (now - then) * cpus
            self.samples.append((now, os.getloadavg()[0], used["ours"] / span, used["foreign"] / span))
            before, then = table, now

    def at(self, moment: float) -> float | None:
        """The load average sampled nearest ``moment``."""
        if not self.samples:
            return None
        return min(self.samples, key=lambda s: abs(s[0] - moment))[1]

    def foreign_share(self, start: float, end: float) -> float | None:
        """Mean share of all CPUs used by other jobs over the samples covering [start, end]."""
        shares = [s[3] for s in self.samples if s[3] is not None and start <= s[0] <= end + self.every]
        return round(sum(shares) / len(shares), 2) if shares else None

    def top_foreign(self, count: int = 6) -> list[dict[str, Any]]:
        """Other jobs' commands that used the most CPU during the soak."""
        top = sorted(self.foreign_cpu_s.items(), key=lambda kv: -kv[1])[:count]
        return [{"command": name, "cpu_s": round(cpu, 1)} for name, cpu in top]


def run_loop(loop: int, args: argparse.Namespace, papermill: Path, base: Path, exercises: list[str],
             runs: list[dict[str, Any]], lock: threading.Lock) -> None:
    """``args.runs`` consecutive papermill runs against this loop's own, persisting store."""
    store = base / f"loop{loop}" / "store"
    outdir = base / f"loop{loop}" / "out"
    store.mkdir(parents=True)
    outdir.mkdir(parents=True)
    env = dict(os.environ)
    for name in list(env):
        if name in ("MLFLOW_TRACKING_URI", "SPARK_REMOTE") or name.startswith("MLFLOW_EXPERIMENT_"):
            env.pop(name)
    env["COURSE_DATA_DIR"] = str(store)
    if args.full_jit:
        env.pop("COURSE_SPARK_QUICK_JIT", None)
    else:
        env["COURSE_SPARK_QUICK_JIT"] = "1"
    for number in range(1, args.runs + 1):
        output = outdir / f"run{number:02d}.ipynb"
        log = outdir / f"run{number:02d}.log"
        command = [str(papermill), str(NOTEBOOK), str(output), "-k", args.kernel, "--cwd", str(NOTEBOOK.parent),
                   "--execution-timeout", str(args.execution_timeout), "--no-progress-bar"]
        started = time.time()
        t0 = time.perf_counter()
        with open(log, "wb") as sink:
            # No timeout of our own: papermill's per-cell limit bounds a stall.
            status = subprocess.run(command, env=env, stdout=sink, stderr=subprocess.STDOUT, check=False).returncode
        wall = time.perf_counter() - t0
        row: dict[str, Any] = {"loop": loop, "run": number, "exit_status": status, "wall_s": round(wall, 2),
                               "started": started, "ended": time.time()}
        try:
            row.update(read_run(output))
        except Exception as problem:  # noqa: BLE001 - a missing/corrupt output is itself a finding
            row.update({"cells": {}, "errors": [f"output notebook unreadable: {problem}"], "checks": {}})
        wrong = {k: v for k, v in row["checks"].items() if v != "correct"}
        missing = [k for k in exercises if k not in row["checks"]]
        row["checks_all_correct"] = not wrong and not missing
        row["failed"] = status != 0 or bool(row["errors"]) or not row["checks_all_correct"]
        if row["failed"]:
            keep = RESULTS / "soak-failures"
            keep.mkdir(parents=True, exist_ok=True)
            for path in (output, log):
                if path.exists():
                    shutil.copy(path, keep / f"loop{loop}-{path.name}")
            row["log_tail"] = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        with lock:
            runs.append(row)
            done = len(runs)
        checks = ", ".join(f"{k}={v}" for k, v in sorted(row["checks"].items())) or "no checks"
        print(f"[{done:>2}/{args.runs * args.parallel}] loop {loop} run {number:>2}: exit {status}, {wall:6.1f} s, "
              f"{checks}{', ERRORS ' + '; '.join(row['errors']) if row['errors'] else ''}"
              f"  (load {os.getloadavg()[0]:.2f})", flush=True)


def _stats(values: list[float]) -> dict[str, float]:
    median = statistics.median(values)
    return {"n": len(values), "median_s": round(median, 3), "max_s": round(max(values), 3),
            "max_over_median": round(max(values) / median, 2) if median > 0 else None}


def analyse(runs: list[dict[str, Any]], sources: dict[int, str], args: argparse.Namespace,
            sampler: LoadSampler) -> dict[str, Any]:
    """Per-cell statistics, the cells over 3x their median, and who ran beside them."""
    per_cell: dict[int, list[float]] = {}
    for row in runs:
        for index, cell in row["cells"].items():
            if cell["duration_s"] is not None:
                per_cell.setdefault(index, []).append(float(cell["duration_s"]))
    cells = {}
    for index in sorted(per_cell):
        source = sources.get(index, "")
        cells[index] = {"label": _label(source), "panel": any(n in source for n in PANEL_NEEDLES), **_stats(per_cell[index])}
    over: list[dict[str, Any]] = []
    for row in runs:
        for index, cell in row["cells"].items():
            duration = cell["duration_s"]
            if duration is None or index not in cells:
                continue
            median = statistics.median(per_cell[index])  # unrounded, as in the table's max/median
            if duration <= STALL_FACTOR * median:
                continue
            noise = median < args.noise_median and duration - median < args.noise_excess
            beside = []
            if cell["start"] and cell["end"]:
                for other in runs:
                    if other["loop"] == row["loop"]:
                        continue
                    for j, oc in other["cells"].items():
                        if oc["start"] and oc["end"] and oc["start"] < cell["end"] and oc["end"] > cell["start"]:
                            beside.append(f"loop {other['loop']} run {other['run']} cell {j} "
                                          f"({_label(sources.get(j, ''))})")
            over.append({
                "loop": row["loop"], "run": row["run"], "cell": index, "label": cells[index]["label"],
                "duration_s": round(duration, 3), "median_s": round(median, 3),
                "ratio": round(duration / median, 2) if median else None,
                "excess_over_median_s": round(duration - median, 3), "noise_floor": noise,
                "at_timeout": duration >= 0.95 * args.execution_timeout or cell["exception"],
                "load_1min_then": round(load, 2) if cell["start"] and (load := sampler.at(cell["start"])) is not None
                else None,
                "other_jobs_cpu_share_then": sampler.foreign_share(cell["start"], cell["end"])
                if cell["start"] and cell["end"] else None,
                "other_loops_meanwhile": beside[:8],
            })
    return {"cells": cells, "over_3x": over}


def main(argv: list[str] | None = None) -> int:
    """Run the soak, print the summary and the verdict, write soak.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="consecutive runs per loop (default 10)")
    parser.add_argument("--parallel", type=int, default=2, help="loops running at once (default 2)")
    parser.add_argument("--execution-timeout", type=int, default=300, help="papermill's per-cell limit, s (default 300)")
    parser.add_argument("--full-jit", action="store_true", help="do not set COURSE_SPARK_QUICK_JIT=1 (learners' setting)")
    parser.add_argument("--kernel", default=KERNEL_NAME, help=f"kernel name (default {KERNEL_NAME})")
    parser.add_argument("--noise-median", type=float, default=0.5, help="noise floor: a median below this, s (default 0.5)")
    parser.add_argument("--noise-excess", type=float, default=1.0,
                        help="noise floor: duration - median below this, s (default 1.0)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.parallel < 1 or args.execution_timeout < 1:
        parser.error("--runs, --parallel and --execution-timeout must be positive")
    papermill = REPO / ".venv" / "bin" / "papermill"
    if not papermill.exists():
        papermill = Path(sys.executable).parent / "papermill"
    if not papermill.exists():
        parser.error(f"no papermill command at {papermill}; run scripts/setup.sh")

    source_nb = nbformat.read(NOTEBOOK, as_version=4)
    sources = {i: c.source for i, c in enumerate(source_nb.cells) if c.cell_type == "code"}
    exercises = expected_exercises(NOTEBOOK)
    total = args.runs * args.parallel
    print(f"soak: {NOTEBOOK.relative_to(REPO)}, {args.parallel} loops x {args.runs} runs = {total}, plain papermill "
          f"(default engine), per-cell limit {args.execution_timeout} s, "
          f"COURSE_SPARK_QUICK_JIT={'unset' if args.full_jit else '1'}; checks expected: {', '.join(exercises)}", flush=True)
    load_before = os.getloadavg()
    sampler = LoadSampler()
    sampler.start()
    runs: list[dict[str, Any]] = []
    lock = threading.Lock()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-soak-") as tmp:
        loops = [threading.Thread(target=run_loop, args=(i + 1, args, papermill, Path(tmp), exercises, runs, lock))
                 for i in range(args.parallel)]
        for thread in loops:
            thread.start()
        for thread in loops:
            thread.join()
    elapsed = time.perf_counter() - t0
    sampler.stop.set()
    load_after = os.getloadavg()
    runs.sort(key=lambda r: (r["loop"], r["run"]))

    found = analyse(runs, sources, args, sampler)
    walls = [r["wall_s"] for r in runs]
    failures = [r for r in runs if r["failed"]]
    strict = [o for o in found["over_3x"] if not o["noise_floor"]]
    noise = [o for o in found["over_3x"] if o["noise_floor"]]
    worst = max(found["cells"].items(), key=lambda kv: kv[1]["max_over_median"] or 0, default=(None, {}))
    worst_above = max(((i, c) for i, c in found["cells"].items() if c["median_s"] >= args.noise_median),
                      key=lambda kv: kv[1]["max_over_median"] or 0, default=(None, {}))
    loads = [s[1] for s in sampler.samples]
    foreign = [s[3] for s in sampler.samples if s[3] is not None]
    ours = [s[2] for s in sampler.samples if s[2] is not None]
    report: dict[str, Any] = {
        "notebook": str(NOTEBOOK.relative_to(REPO)), "runner": f"{papermill} (plain papermill, default engine)",
        "versions": {p: importlib.metadata.version(p) for p in ("papermill", "nbclient", "jupyter_client", "ipykernel",
                                                                 "ipywidgets", "pyspark", "mlflow")},
        "commit": _commit(), "started": datetime.fromtimestamp(time.time() - elapsed).isoformat(timespec="seconds"),
        "parallel": args.parallel, "runs_per_loop": args.runs, "execution_timeout_s": args.execution_timeout,
        "quick_jit": not args.full_jit, "cpu_count": os.cpu_count(),
        "total_runs": len(runs), "failures": len(failures), "elapsed_s": round(elapsed, 1),
        "wall_per_run_s": {"median": round(statistics.median(walls), 1), "max": round(max(walls), 1),
                           "min": round(min(walls), 1)} if walls else {},
        "load_avg_before": [round(x, 2) for x in load_before], "load_avg_after": [round(x, 2) for x in load_after],
        "load_1min_during": {"median": round(statistics.median(loads), 2), "max": round(max(loads), 2)} if loads else {},
        "cpu_share_during": {  # fraction of all the machine's CPUs, sampled every 5 s
            "this_soak": {"median": round(statistics.median(ours), 2), "max": round(max(ours), 2)} if ours else {},
            "other_jobs": {"median": round(statistics.median(foreign), 2), "max": round(max(foreign), 2)}
            if foreign else {},
            "other_jobs_top": sampler.top_foreign(),
        },
        "cells": {str(k): v for k, v in found["cells"].items()},
        "panel_cells": {str(k): v for k, v in found["cells"].items() if v["panel"]},
        "worst_cell": {"cell": worst[0], **worst[1]} if worst[0] is not None else None,
        "worst_cell_median_above_noise_floor": {"cell": worst_above[0], **worst_above[1]} if worst_above[0] is not None else None,
        "over_3x_strict": strict, "over_3x_noise_floor_only": noise,
        "stall_criterion_strict_pass": not found["over_3x"],
        "stall_criterion_noise_floor_pass": not strict,
        "noise_floor": {"median_below_s": args.noise_median, "excess_below_s": args.noise_excess},
        "runs": [{k: v for k, v in r.items() if k not in ("cells",)} | {"cell_durations_s": {
            str(i): (round(c["duration_s"], 3) if c["duration_s"] is not None else None) for i, c in r["cells"].items()}}
            for r in runs],
    }

    print()
    print(f"{'cell':>4}  {'n':>3} {'median':>8} {'max':>8} {'max/med':>7}  source")
    for index, c in found["cells"].items():
        ratio = f"{c['max_over_median']:.2f}" if c["max_over_median"] is not None else "-"
        flag = " PANEL" if c["panel"] else ""
        print(f"{index:>4}  {c['n']:>3} {c['median_s']:>7.2f}s {c['max_s']:>7.2f}s {ratio:>7}  {c['label']}{flag}")
    print()
    for title, rows in (("over 3x its median, beyond the noise floor", strict),
                        ("over 3x only because the median is tiny (noise floor)", noise)):
        print(f"cells {title}: {len(rows)}")
        for o in rows:
            print(f"  loop {o['loop']} run {o['run']:>2} cell {o['cell']:>2}: {o['duration_s']:.2f} s vs median "
                  f"{o['median_s']:.2f} s (x{o['ratio']}, +{o['excess_over_median_s']:.2f} s)"
                  f"{' AT TIMEOUT' if o['at_timeout'] else ''}; load {o['load_1min_then']}, other jobs' CPU share "
                  f"{o['other_jobs_cpu_share_then']}; beside: "
                  f"{'; '.join(o['other_loops_meanwhile']) or 'nothing'}")
    for r in failures:
        print(f"FAILED loop {r['loop']} run {r['run']}: exit {r['exit_status']}, errors {r['errors']}, checks {r['checks']}")
    w = report["wall_per_run_s"]
    print(f"\nruns {len(runs)}, failures {len(failures)}; wall per run median {w.get('median')} s, max {w.get('max')} s; "
          f"elapsed {elapsed:.0f} s; load before {report['load_avg_before']}, during (1-min) "
          f"{report['load_1min_during']}, after {report['load_avg_after']} on {os.cpu_count()} cpus")
    cpu = report["cpu_share_during"]
    print(f"CPU share of the machine: this soak {cpu['this_soak']}, other jobs {cpu['other_jobs']}")
    for job in cpu["other_jobs_top"]:
        print(f"  other job {job['cpu_s']:>7.1f} CPU s  {job['command']}")
    if worst[0] is not None:
        print(f"worst cell: {worst[0]} ({worst[1]['label']}) max/median {worst[1]['max_over_median']}")
    if worst_above[0] is not None:
        print(f"worst cell with median >= {args.noise_median} s: {worst_above[0]} ({worst_above[1]['label']}) "
              f"max/median {worst_above[1]['max_over_median']}")
    for index, c in report["panel_cells"].items():
        print(f"panel cell {index} ({c['label']}): median {c['median_s']:.2f} s, max {c['max_s']:.2f} s")
    strict_pass = report["stall_criterion_strict_pass"] and not failures
    noise_pass = report["stall_criterion_noise_floor_pass"] and not failures
    print(f"VERDICT: {len(runs) - len(failures)}/{len(runs)} runs clean; strict (no cell > 3x its median): "
          f"{'PASS' if strict_pass else 'FAIL'} ({len(found['over_3x'])} over); noise-floor view (ignoring cells with "
          f"median < {args.noise_median} s and excess < {args.noise_excess} s): {'PASS' if noise_pass else 'FAIL'} "
          f"({len(strict)} over, {len(noise)} at the noise floor)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {(RESULTS / 'soak.json').relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
