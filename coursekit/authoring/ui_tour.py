"""Drive the real MLflow UI in headless Chromium: the lesson 4 and lesson 6 walkthroughs, with screenshots.

Used by ``scripts/ui_screenshots.py`` (writes the pictures lessons 4 and 6 show) and by
``tests/test_notebooks.py`` (asserts on the same pages in CI, over the solutions' first-run store). The browser is
Debian's Chromium (``/usr/bin/chromium``, or ``COURSE_CHROMIUM``); nothing
downloads a browser.

Lesson 4: the runs table, the search box, Compare (:func:`walk`). Lesson 6: a parent run unfolded in the
runs table to show its child runs, then the parent's own page with its "Child runs" (:func:`walk_tree`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from coursekit.errors import CourseSetupError
from coursekit.tracking import RUNS_VIEW

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

log = logging.getLogger(__name__)

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 900}
WAIT_MS = 60_000
RUN_PAGE_HEIGHT = 1100


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


def _shot(page: Page, out_dir: Path | None, name: str, result: TourResult | TreeResult) -> None:
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


@dataclass
class TreeResult:
    """What the parent/child walkthrough saw on the real pages.

    ``table_before`` and ``table_after`` are the run names of the runs table, top to bottom, before and after
    the parent was unfolded; ``children_shown`` are the names that unfolding revealed right under the parent.
    ``page_children`` are the run names the parent's own page lists under "Child runs", and ``page_params``
    the parameter names of its Parameters table.
    """

    parent_listed: bool = False
    table_before: list[str] = field(default_factory=list)
    table_after: list[str] = field(default_factory=list)
    children_shown: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    page_title: str = ""
    page_children: list[str] = field(default_factory=list)
    page_params: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


# The run names of the runs table in row order: each row's run link (a link to #/experiments/<id>/runs/<run id>),
# ordered by the row's aria-rowindex (the grid renders its pinned and scrolling halves as separate rows).
_TABLE_JS = """rows => rows.map(r => {
  const a = r.querySelector('a[href*="/runs/"]');
  return a ? [Number(r.getAttribute('aria-rowindex')), a.textContent.trim()] : null;
}).filter(Boolean)"""


def _table_names(page: Page) -> list[str]:
    found: dict[int, str] = {}
    for index, name in page.get_by_role("row").evaluate_all(_TABLE_JS):
        found.setdefault(index, name)
    return [found[i] for i in sorted(found)]


def _revealed_under(before: list[str], after: list[str], parent: str) -> list[str]:
    """The names that appeared right below ``parent`` (the rows between it and the next row seen before)."""
    if parent not in after:
        return []
    shown = []
    for name in after[after.index(parent) + 1:]:
        if name in before:
            break
        shown.append(name)
    return shown


def _toggle_columns(page: Page, names: list[str]) -> None:
    # Columns opens a popover with a search box over a tree of checkable column names; a click on a name
    # ticks or unticks it. A search highlights the matched part (best_X shows "best_" + X), so the item is
    # the span whose whole text is the column's name.
    page.get_by_role("button", name="Columns").click()
    dialog = page.get_by_role("dialog")
    search = dialog.get_by_placeholder("Search columns")
    for name in names:
        search.fill(name)
        item = dialog.locator("span", has=page.get_by_text(name, exact=True))
        item.filter(has_text=re.compile(rf"^{re.escape(name)}$")).first.click()
    search.fill("")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden", timeout=WAIT_MS)


def _fit_columns(page: Page, names: list[str]) -> None:
    # A double click on a column header's right edge fits the column to its content (the grid's autosize),
    # so neither the children's names nor long param names are cut off.
    for name in names:
        box = page.get_by_role("columnheader", name=name, exact=True).first.bounding_box()
        if box is not None:
            page.mouse.dblclick(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    page.mouse.move(0, 0)  # no hover highlight in the picture


def walk_tree(
    page: Page, experiment_url: str, *, parent: str, children: set[str], columns: list[str] | None = None,
    hide_columns: list[str] | None = None, out_dir: Path | None = None,
) -> TreeResult:
    """Unfold ``parent`` in the runs table, then open its page; take screenshots into ``out_dir`` if given.

    ``children`` are the run names expected under the parent (the walk waits for them, then reports what it
    saw); ``columns`` (metric or param names) are added to the table with its Columns button first, so the
    children's rows show them, and ``hide_columns`` (e.g. ``Dataset``) are taken off to make room for them.
    """
    result = TreeResult()
    page.goto(experiment_url)
    parent_link = page.get_by_role("link", name=parent, exact=True).first
    parent_link.wait_for(timeout=WAIT_MS)
    _close_assistant(page)
    result.parent_listed = parent_link.is_visible()
    result.table_before = _table_names(page)
    if columns or hide_columns:
        _toggle_columns(page, [*(hide_columns or []), *(columns or [])])

    # The expand control is the one (unlabelled, +/- icon) button in the parent's Run Name cell.
    page.get_by_role("gridcell").filter(has=parent_link).get_by_role("button").click()
    for _ in range(WAIT_MS // 250):
        result.table_after = _table_names(page)
        result.children_shown = _revealed_under(result.table_before, result.table_after, parent)
        if set(result.children_shown) >= children:
            break
        page.wait_for_timeout(250)
    _fit_columns(page, ["Run Name", *(columns or [])])
    result.columns = list(dict.fromkeys(h.strip() for h in page.get_by_role("columnheader").all_inner_texts() if h.strip()))
    page.wait_for_timeout(300)
    _shot(page, out_dir, "06-search-tree.png", result)

    # The run link drops the UI's Model training view (the page would show the GenAI sidebar): open it with it.
    # A taller window shows more of the search's Parameters table next to its child runs.
    href = parent_link.get_attribute("href") or ""
    page.set_viewport_size({"width": VIEWPORT["width"], "height": RUN_PAGE_HEIGHT})
    page.goto(experiment_url.split("#")[0] + href + "?" + RUNS_VIEW)
    listed = page.get_by_test_id("key-value-Child runs").get_by_role("link")
    listed.first.wait_for(timeout=WAIT_MS)
    _close_assistant(page)
    result.page_title = page.get_by_role("heading", level=2).first.inner_text().strip()
    result.page_children = [n.strip() for n in listed.all_inner_texts()]
    page.get_by_role("row").nth(1).wait_for(timeout=WAIT_MS)  # the Parameters table: a header row, then one per param
    rows = page.get_by_role("row").all_inner_texts()
    result.page_params = [r.split("\n")[0].strip() for r in rows[1:] if r.strip()]
    page.get_by_role("row").last.scroll_into_view_if_needed()  # the table scrolls inside: show its end (best_…)
    page.wait_for_timeout(300)
    _shot(page, out_dir, "06-parent-run.png", result)
    return result


def _in_browser(walker: Callable[..., object], experiment_url: str, out_dir: Path | None, kwargs: dict[str, object]) -> object:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            return walker(page, experiment_url, out_dir=out_dir, **kwargs)
        finally:
            browser.close()


def take_tour(experiment_url: str, out_dir: Path | None = None, **kwargs: object) -> TourResult:
    """Open a browser, run :func:`walk`, close the browser."""
    return _in_browser(walk, experiment_url, out_dir, kwargs)  # type: ignore[return-value]


def take_tree_tour(experiment_url: str, out_dir: Path | None = None, **kwargs: object) -> TreeResult:
    """Open a browser, run :func:`walk_tree`, close the browser."""
    return _in_browser(walk_tree, experiment_url, out_dir, kwargs)  # type: ignore[return-value]
