"""Drive the real MLflow UI in headless Chromium: the lesson 4 walkthrough, with screenshots.

Used by ``scripts/ui_screenshots.py`` (writes the pictures lesson 4 shows) and by
``tests/test_ui_browser.py`` (asserts on the same pages in CI). The browser is
Debian's Chromium (``/usr/bin/chromium``, or ``COURSE_CHROMIUM``); nothing
downloads a browser.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from coursekit.errors import CourseSetupError

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

log = logging.getLogger(__name__)

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 900}
WAIT_MS = 60_000


def chromium_path() -> str:
    """The Chromium binary to drive; raises a one-line fix when there is none."""
    path = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise CourseSetupError(
            "Browser tests need Chromium, which is not installed: sudo apt-get install chromium "
            "(or set COURSE_CHROMIUM to a Chromium/Chrome binary)."
        )
    return path


def launch(playwright: Playwright) -> Browser:
    """Start headless Chromium with flags that keep it off the network."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)


@dataclass
class TourResult:
    """What the walkthrough saw on the real pages."""

    table_runs: list[str] = field(default_factory=list)
    filtered_runs: list[str] = field(default_factory=list)
    compared_runs: list[str] = field(default_factory=list)
    parallel_axes: list[str] = field(default_factory=list)
    diff_only_hides: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


def _close_assistant(page: Page) -> None:
    # The MLflow Assistant side panel opens by default and would cover the tables.
    close = page.get_by_role("button", name="Close")
    if close.count():
        close.first.click()


def _run_names(page: Page, prefix: str) -> list[str]:
    names = page.get_by_role("link").filter(has_text=prefix).all_inner_texts()
    return [n.strip() for n in names if n.strip().startswith(prefix)]


def _shot(page: Page, out_dir: Path | None, name: str, result: TourResult) -> None:
    if out_dir is None:
        return
    path = out_dir / name
    page.screenshot(path=str(path))
    result.screenshots.append(path)


def _select_runs(page: Page, names: list[str]) -> None:
    for name in names:
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
        row.get_by_role("checkbox").first.click()


def _search(page: Page, filter_string: str) -> None:
    box = page.get_by_test_id("search-box")
    box.fill(filter_string)
    box.press("Enter")


def _wait_for_names(page: Page, prefix: str, expected: set[str]) -> list[str]:
    # The table re-renders after a search; poll until it shows exactly the expected runs.
    names: list[str] = []
    for _ in range(WAIT_MS // 250):
        names = _run_names(page, prefix)
        if set(names) == expected:
            break
        page.wait_for_timeout(250)
    return names


def walk(
    page: Page, experiment_url: str, *, prefix: str, all_runs: set[str], filter_string: str,
    filter_expected: set[str], compare: list[str], out_dir: Path | None = None,
) -> TourResult:
    """Run the lesson 4 walkthrough on an open page; take screenshots into ``out_dir`` if given.

    ``all_runs`` are the run names the table must list, ``filter_string`` is typed
    into the search box and should leave ``filter_expected``, and the runs named
    in ``compare`` are ticked and compared.
    """
    result = TourResult()
    page.goto(experiment_url)
    page.get_by_role("link", name=sorted(all_runs)[0], exact=True).first.wait_for(timeout=WAIT_MS)
    _close_assistant(page)
    result.table_runs = _wait_for_names(page, prefix, all_runs)
    _shot(page, out_dir, "04-runs-table.png", result)

    _search(page, filter_string)
    result.filtered_runs = _wait_for_names(page, prefix, filter_expected)
    _shot(page, out_dir, "04-search-filter.png", result)

    _search(page, "")
    _wait_for_names(page, prefix, all_runs)
    _select_runs(page, compare)
    page.get_by_role("button", name="Compare").first.click()
    page.get_by_text("Run details").first.wait_for(timeout=WAIT_MS)
    plot = page.locator(".js-plotly-plot .parcoords")
    plot.first.wait_for(timeout=WAIT_MS)
    result.parallel_axes = [t.strip() for t in page.locator(".parcoords .axis-title").all_text_contents()]
    name_row = page.get_by_role("row").filter(has_text="Run Name:")
    result.compared_runs = [n for n in compare if name_row.filter(has_text=n).count()]
    _close_assistant(page)
    _shot(page, out_dir, "04-compare-parallel.png", result)

    params = page.get_by_text("Parameters", exact=True).last
    params.scroll_into_view_if_needed()
    before = set(page.get_by_role("row").all_inner_texts())
    page.get_by_role("switch").first.click()
    page.wait_for_timeout(500)
    after = set(page.get_by_role("row").all_inner_texts())
    result.diff_only_hides = sorted(row.split("\t")[0].strip() for row in before - after)
    params.scroll_into_view_if_needed()
    _shot(page, out_dir, "04-compare-diff.png", result)
    return result


def take_tour(experiment_url: str, out_dir: Path | None = None, **kwargs: object) -> TourResult:
    """Open a browser, run :func:`walk`, close the browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            return walk(page, experiment_url, out_dir=out_dir, **kwargs)  # type: ignore[arg-type]
        finally:
            browser.close()
