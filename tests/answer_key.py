"""The grader's answer-key runs: the documented grading command on the solutions or on the shipped lessons."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class AnswerKey:
    """What ``python -m coursekit.instructor.grade …`` produced."""

    done: subprocess.CompletedProcess[str]
    out: Path
    rows: list[dict[str, str]]

    def executed(self, learner: str, lesson: str) -> Path:
        """The executed notebook the grader kept for ``learner`` ("solutions" or "lessons") and ``lesson``."""
        return self.out / "notebooks" / learner / f"{lesson}.ipynb"


def grade_answer_key(out: Path, *flags: str) -> AnswerKey:
    """Run ``python -m coursekit.instructor.grade FLAGS --out OUT --jobs N`` and read its gradebook.

    ``flags`` are ``--solutions``, ``--lessons``, ``--start-store DB``. N is 2, or 1 under several pytest-xdist
    workers: they already keep 2 cores busy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    jobs = "1" if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1 else "2"
    done = subprocess.run(
        [sys.executable, "-m", "coursekit.instructor.grade", *flags, "--out", str(out), "--jobs", jobs],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    rows: list[dict[str, str]] = []
    if (out / "gradebook.csv").is_file():
        with (out / "gradebook.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    return AnswerKey(done, out, rows)
