"""Numbers a lesson states come from the code: a change on either side fails here.

Lesson 5's table of settings must show the ranges ``Tuner.train_and_log`` accepts and
the tuning panel's sliders span (one source: ``coursekit.tuning.BOUNDS``), and the
choices its dropdowns offer.
"""

from __future__ import annotations

import json
import re

import pytest

from nbrun import REPO
from coursekit.tuning import BOUNDS, FEATURE_SUBSET_STRATEGIES, IMPURITIES, ForestParams, TuningError


def _markdown(stem: str) -> str:
    cells = json.loads((REPO / "solutions" / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def settings_table(markdown: str) -> dict[str, str]:
    """``setting -> last column`` of lesson 5's table of settings."""
    rows = re.findall(r"^\| `(\w+)` \| (.*) \| ([^|]*) \|$", markdown, flags=re.M)
    return {name: rng.strip() for name, _what, rng in rows}


def test_lesson5_table_shows_the_ranges_the_code_accepts() -> None:
    table = settings_table(_markdown("05_tune_interactively"))
    assert set(table) == set(ForestParams.__dataclass_fields__)
    for name, (low, high) in BOUNDS.items():
        shown = re.fullmatch(r"([\d.]+)–([\d.]+)", table[name])
        assert shown, f"{name}: {table[name]!r} is not a range"
        assert (float(shown[1]), float(shown[2])) == (low, high), f"lesson 5 says {name} {table[name]}, the code {low}–{high}"
        # The edges are accepted, one step beyond is refused with the same numbers.
        ForestParams(**{name: type(getattr(ForestParams(), name))(low)}).validate()
        step = 0.01 if isinstance(low, float) else 1
        with pytest.raises(TuningError, match=f"between {low:g} and {high:g}"):
            ForestParams(**{name: type(getattr(ForestParams(), name))(high + step)}).validate()


def test_lesson5_names_every_choice_of_the_dropdowns() -> None:
    table = _markdown("05_tune_interactively")
    strategy_row = next(line for line in table.splitlines() if line.startswith("| `featureSubsetStrategy`"))
    assert sorted(re.findall(r"`(\w+)`", strategy_row)[1:]) == sorted(FEATURE_SUBSET_STRATEGIES)
    impurity_row = next(line for line in table.splitlines() if line.startswith("| `impurity`"))
    assert sorted(re.findall(r"`(\w+)`", impurity_row)[1:]) == sorted(IMPURITIES)
