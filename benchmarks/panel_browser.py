"""Benchmark: click-to-new-plot latency of lesson 5's tuning panel in real JupyterLab (headless Chromium).

    .venv/bin/python benchmarks/panel_browser.py            # 12 real clicks after a warm-up click
    .venv/bin/python benchmarks/panel_browser.py --clicks 20

The README's lab command serves a copy of lesson 5 with its own store; a fresh browser
profile runs every cell, then presses **Train & log** with a different numTrees/maxDepth
each time (typed into the sliders' value boxes, as a person does). Latency is measured
from the click until a new plot picture has loaded on the page. The first click is reported
apart (JVM warm-up); median and p95 are over the rest. Results go to
``benchmarks/results/panel_browser.json``. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from lab_session import PanelDriver, lab_session  # noqa: E402

SETTINGS = [(20, 5), (30, 4), (40, 3), (50, 6), (10, 8), (60, 3), (25, 5), (35, 2), (45, 4), (15, 7), (55, 5),
            (70, 3), (5, 6), (80, 4), (12, 9), (65, 2), (28, 6), (90, 3), (8, 10), (42, 5), (33, 7)]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=12, help="timed clicks after the warm-up click (default 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="course-bench-lab-") as tmp, \
            lab_session(Path(tmp), "05_tune_interactively.ipynb", "panel-benchmark") as lab:
        lab.open_and_run_all("05_tune_interactively.ipynb")
        panel = PanelDriver(lab)
        lab.wait_idle()
        start = panel.board_rows()
        latencies = []
        for i in range(args.clicks + 1):
            trees, depth = SETTINGS[i % len(SETTINGS)]
            panel.set_slider("numTrees", trees)
            panel.set_slider("maxDepth", depth)
            latencies.append(panel.click_and_time(start + i + 1))
        lab.shot("panel-after-benchmark.png", panel.root)
    warm = latencies[1:]
    result = {
        "first_click_s": round(latencies[0], 2),
        "median_s": round(statistics.median(warm), 2),
        "p95_s": round(percentile(warm, 0.95), 2),
        "max_s": round(max(warm), 2),
        "clicks_after_warmup": len(warm),
        "latencies_s": [round(x, 3) for x in latencies],
    }
    print("click-to-new-plot in JupyterLab:", ", ".join(f"{k}={v}" for k, v in result.items() if k != "latencies_s"))
    out = REPO / "benchmarks" / "results" / "panel_browser.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
