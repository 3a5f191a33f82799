"""Drive the course's real JupyterLab in headless Chromium, as a learner does (tests and benchmarks share it).

``LabSession`` starts the README's lab command on a copy of a lesson, with its own MLflow
store and a fresh browser profile; ``PanelDriver`` sets lesson 5's tuning panel controls the
way a person does (typing into a slider's value box, choosing from a dropdown) and presses
its buttons.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from coursekit.authoring.ui_tour import VIEWPORT, launch
from coursekit.ports import first_free

REPO = Path(__file__).resolve().parent.parent
TOKEN = "course-browser-token"
ARTIFACTS = REPO / ".ci-artifacts"


def _wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("JupyterLab exited early")
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - loopback only
                return
        except (OSError, http.client.HTTPException):
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer {url}")


@dataclass
class LabSession:
    """A running JupyterLab (the README's command) and a page in a fresh Chromium profile."""

    page: Any
    port: int
    store: Path
    shots: Path

    def shot(self, name: str, locator: Any | None = None) -> Path:
        """Screenshot the page (or one element) into the artifacts folder."""
        path = self.shots / name
        (locator or self.page).screenshot(path=str(path))
        return path

    def open_and_run_all(self, notebook: str) -> None:
        """Open ``notebook``, wait for the course kernel to be idle, then Run > Run All Cells."""
        page = self.page
        page.goto(f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={TOKEN}")
        page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
        page.get_by_text("MLflow + Spark course").first.wait_for(timeout=60_000)
        self.wait_idle()
        page.wait_for_timeout(1_000)
        page.get_by_role("menuitem", name="Run").first.click()
        page.get_by_text("Run All Cells", exact=True).first.click()

    def wait_idle(self, timeout_ms: int = 240_000) -> None:
        """Wait until the kernel reports idle (after Run All: every cell has run)."""
        self.page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=timeout_ms)

    def use_theme(self, name: str) -> None:
        """Settings > Theme > ``name`` (e.g. "JupyterLab Dark"), as a person switches it."""
        page = self.page
        page.get_by_role("menuitem", name="Settings").first.click()
        page.get_by_text("Theme", exact=True).first.hover()
        page.get_by_text(name, exact=True).first.click()
        page.wait_for_function(
            "want => document.body.dataset.jpThemeName === want", arg=name, timeout=30_000
        )
        page.wait_for_timeout(500)

    def contrast(self, locator: Any) -> float:
        """WCAG contrast of an element's text colour against the notebook's background colour."""
        return float(locator.evaluate(
            """el => {
                const rgb = s => s.match(/[\d.]+/g).slice(0, 3).map(Number);
                const lum = c => { const [r, g, b] = c.map(v => { v /= 255;
                    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
                    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
                const fg = lum(rgb(getComputedStyle(el).color));
                const panel = el.closest('.jp-Notebook') || document.body;
                const bg = lum(rgb(getComputedStyle(panel).backgroundColor));
                const [hi, lo] = fg > bg ? [fg, bg] : [bg, fg];
                return (hi + 0.05) / (lo + 0.05);
            }"""
        ))

    def runs(self, experiment: str, filter_string: str = "") -> list[Any]:
        """The runs of ``experiment`` in this session's store (all statuses)."""
        client = MlflowClient(tracking_uri=f"sqlite:///{self.store / 'mlflow.db'}")
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return []
        return list(client.search_runs([found.experiment_id], filter_string=filter_string, max_results=1000))


@contextmanager
def lab_session(tmp_path: Path, lesson: str, shots: str) -> Iterator[LabSession]:
    """JupyterLab via ``scripts/lab.sh`` on a copy of ``lessons/<lesson>`` and a page in a fresh profile.

    Screenshots go to ``.ci-artifacts/<shots>/`` (git-ignored; CI keeps them). On failure a
    ``failure.png`` is kept there too.
    """
    from playwright.sync_api import sync_playwright

    workdir, store = tmp_path / "lessons", tmp_path / "data"
    workdir.mkdir()
    shutil.copy(REPO / "lessons" / lesson, workdir)  # a copy, so autosave never touches the shipped lesson
    shot_dir = ARTIFACTS / shots
    shot_dir.mkdir(parents=True, exist_ok=True)
    port = first_free(18988)
    env = {
        **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        "COURSE_DATA_DIR": str(store), "COURSE_LAB_PORT": str(port), "COURSE_LAB_NO_BROWSER": "1",
        "COURSE_LAB_ROOT": str(workdir), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
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
            context = browser.new_context(viewport=VIEWPORT)  # a fresh profile: no state from earlier tests
            page = context.new_page()
            session = LabSession(page=page, port=port, store=store, shots=shot_dir)
            try:
                yield session
            except BaseException:
                page.screenshot(path=str(shot_dir / "failure.png"))
                raise
            finally:
                context.close()
                browser.close()
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            lab.wait(timeout=60)
        log_file.close()


class PanelDriver:
    """Lesson 5's tuning panel on screen: set controls as a person does, press buttons, read what shows."""

    def __init__(self, session: LabSession) -> None:
        self.session = session
        self.page = session.page
        button = self.page.get_by_role("button", name="Train & log")
        button.first.wait_for(timeout=240_000)
        # The panel is the widget box that holds the button (the innermost such box is the button column).
        self.root = self.page.locator(".widget-vbox").filter(has=self.page.locator("img")).filter(
            has=button).last
        self.train_button = self.root.get_by_role("button", name="Train & log")
        self.model_button = self.root.get_by_role("button", name="Log model for the best attempt")

    def set_slider(self, name: str, value: float) -> None:
        """Type ``value`` into the slider's value box and press Enter."""
        slider = self.root.locator(".widget-slider").filter(has=self.page.locator(".widget-label", has_text=name)).first
        readout = slider.locator(".widget-readout")
        readout.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(str(value))
        self.page.keyboard.press("Enter")
        self.page.wait_for_function(
            "([el, v]) => Number(el.textContent) === v", arg=[readout.element_handle(), value], timeout=10_000
        )

    def choose(self, name: str, option: str) -> None:
        """Pick ``option`` in the dropdown labelled ``name``."""
        dropdown = self.root.locator(".widget-dropdown").filter(has=self.page.locator("label", has_text=name)).first
        dropdown.locator("select").select_option(option)

    def picture(self) -> bytes:
        """The bytes of the plot image the page is showing (read back from the browser, not from the kernel)."""
        numbers = self.root.locator("img").last.evaluate(
            """async img => {
                await img.decode();
                const data = await (await fetch(img.src)).arrayBuffer();
                return Array.from(new Uint8Array(data));
            }"""
        )
        return bytes(numbers)

    def picture_src(self) -> str:
        return str(self.root.locator("img").last.get_attribute("src") or "")

    def board_rows(self) -> int:
        """Rows of the leaderboard table on screen (without its header)."""
        return max(self.root.locator(".widget-html table tr").count() - 1, 0)

    def status(self) -> str:
        return str(self.root.locator(".widget-html").first.inner_text())

    def wait_attempt(self, number: int, timeout_ms: int = 120_000) -> None:
        """Wait until the status says attempt ``number`` is logged (the picture is updated just before)."""
        self.root.get_by_text(f"Attempt {number} logged").first.wait_for(timeout=timeout_ms)
        self.page.wait_for_function(
            "b => !b.disabled", arg=self.train_button.element_handle(), timeout=timeout_ms
        )

    def click_and_time(self, number: int) -> float:
        """Press Train & log; seconds until a new picture is on screen for attempt ``number``."""
        before = self.picture_src()
        started = time.perf_counter()
        self.train_button.click()
        self.page.wait_for_function(
            "([img, old]) => img.getAttribute('src') !== old && img.complete && img.naturalWidth > 0",
            arg=[self.root.locator("img").last.element_handle(), before], timeout=120_000, polling=50,
        )
        elapsed = time.perf_counter() - started
        self.wait_attempt(number)
        return elapsed

    def truncated_labels(self) -> list[str]:
        """Texts of labels and buttons in the panel whose text does not fit (scrollWidth > clientWidth)."""
        return list(self.root.evaluate(
            """root => [...root.querySelectorAll('.widget-label, button, .widget-readout, select')]
                .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)
                .map(el => (el.textContent || el.value || '').trim())"""
        ))


def digest(data: bytes) -> str:
    """Short hash of picture bytes, for messages."""
    return hashlib.sha256(data).hexdigest()[:12]
