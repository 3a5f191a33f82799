"""The tuning panel works in real JupyterLab: headless Chromium opens lesson 5, runs it, presses the button.

This is the learner's path end to end: the README's lab command, the course kernel,
the ipywidgets front end, one click, one MLflow run in the store.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from nbrun import REPO
from coursekit.lesson05 import EXPERIMENT
from coursekit.ports import first_free
from coursekit.tuning import SOURCE, SOURCE_TAG
from coursekit.ui_tour import VIEWPORT, launch

pytestmark = pytest.mark.notebook
TOKEN = "course-browser-token"


def _wait_http(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "JupyterLab exited early"
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - loopback only
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer {url}")


def _attempts(store: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.{SOURCE_TAG} = '{SOURCE}'")


def test_pressing_train_and_log_in_jupyterlab_logs_one_run(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    workdir, store = tmp_path / "lessons", tmp_path / "data"
    workdir.mkdir()
    shutil.copy(REPO / "lessons" / "05_tune_interactively.ipynb", workdir)
    port = first_free(18988)
    env = {
        **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, "COURSE_DATA_DIR": str(store), "COURSE_LAB_PORT": str(port), "COURSE_LAB_NO_BROWSER": "1",
        "COURSE_LAB_ROOT": str(workdir),  # a copy, so autosave never touches the shipped lesson
    }
    log_file = (tmp_path / "lab.log").open("wb")
    lab = subprocess.Popen(
        ["bash", "scripts/lab.sh", f"--IdentityProvider.token={TOKEN}"],
        cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", lab)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport=VIEWPORT)
            try:
                before = _drive(page, port, store)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))  # kept by pytest for diagnosis
                raise
            page.screenshot(path=str(tmp_path / "panel.png"))
            browser.close()
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(timeout=60)
        log_file.close()
    runs = _attempts(store)
    assert len(runs) == before + 1, "one click logs exactly one run"
    newest = max(runs, key=lambda r: r.info.start_time)
    assert newest.info.status == "FINISHED"
    assert newest.data.tags["attempt"] == str(before + 1)
    assert 0.5 < newest.data.metrics["AUC"] <= 1.0
    assert (tmp_path / "panel.png").stat().st_size > 10_000


def _drive(page, port: int, store: Path) -> int:
    """Open lesson 5, run all cells, press Train & log once; return the attempt count before the click."""
    page.goto(f"http://127.0.0.1:{port}/lab/tree/05_tune_interactively.ipynb?token={TOKEN}")
    page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
    page.get_by_text("MLflow + Spark course").first.wait_for(timeout=60_000)  # the course kernel is selected
    # Run only once the kernel has started and reports idle; a busy machine can take a while.
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=180_000)
    page.wait_for_timeout(1_000)
    page.get_by_role("menuitem", name="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).first.click()
    button = page.get_by_role("button", name="Train & log")
    button.first.wait_for(timeout=180_000)
    # "Run All" also ran the lesson's own demo click; wait until the kernel is idle again.
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=180_000)
    before = len(_attempts(store))
    button.first.click()
    page.get_by_text(f"Attempt {before + 1} logged").first.wait_for(timeout=120_000)
    return before
