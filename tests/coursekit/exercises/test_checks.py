"""coursekit.exercises.checks: the blank placeholder, float comparison and how exercises report."""

from __future__ import annotations

import math

import pytest

from coursekit.exercises.checks import (
    BLANK,
    CheckResult,
    Exercise,
    Outcome,
    close_to,
    correct,
    format_result,
    incorrect,
    is_blank,
    not_attempted,
    unsupported,
)


class Demo(Exercise):
    key = "qx"
    title = "Demo exercise"
    hints = ("first nudge", "second nudge", "the answer, nearly")
    solution_code = "\n    answer = 42\n"

    def evaluate(self, answer: object = None) -> CheckResult:
        if is_blank(answer):
            return not_attempted("answer is still blank.")
        if answer == "boom":
            raise KeyError("model_type")
        return correct("well done.") if answer == 42 else incorrect(f"answer is {answer!r}, not the expected number.")


class NoHints(Demo):
    hints = ()


def test_blank_is_a_falsy_singleton_that_prints_as_the_placeholder():
    assert type(BLANK)() is BLANK
    assert repr(BLANK) == str(BLANK) == "____"
    assert not BLANK


@pytest.mark.parametrize("value", [BLANK, None, ...])
def test_is_blank_for_unanswered_values(value):
    assert is_blank(value)


@pytest.mark.parametrize("value", ["", "____", 0, 0.0, [], False])
def test_is_blank_is_false_for_real_answers_even_falsy_ones(value):
    assert not is_blank(value)


def test_close_to_uses_an_absolute_tolerance():
    assert close_to(0.1 + 0.2, 0.3)
    assert close_to(0.80, 0.81, tolerance=0.02)
    assert not close_to(0.80, 0.81)
    assert not close_to(math.nan, math.nan, tolerance=1.0)
    assert not close_to(math.inf, math.inf, tolerance=1.0)


def test_result_helpers_and_correct_property():
    assert correct().outcome is Outcome.CORRECT and correct().correct
    assert incorrect("x").outcome is Outcome.INCORRECT and not incorrect("x").correct
    assert not_attempted("x").outcome is Outcome.NOT_ATTEMPTED and not not_attempted("x").correct
    assert Outcome.NOT_ATTEMPTED == "not attempted"


def test_result_passes_through_evaluate():
    assert Demo().result(42) == CheckResult(Outcome.CORRECT, "well done.")
    assert Demo().result(BLANK).outcome is Outcome.NOT_ATTEMPTED
    assert Demo().result(7).outcome is Outcome.INCORRECT


def test_result_turns_an_exception_into_a_friendly_incorrect(capsys):
    result = Demo().result("boom")
    assert result.outcome is Outcome.INCORRECT
    assert "KeyError" in result.message and "model_type" in result.message
    assert "Re-run the cells above" in result.message
    assert "Traceback" not in result.message
    assert "Traceback" not in capsys.readouterr().err


def test_check_prints_badge_key_title_and_message(capsys):
    Demo().check(42)
    assert capsys.readouterr().out == "✅ Correct — qx: Demo exercise. well done.\n"
    Demo().check(7)
    out = capsys.readouterr().out
    assert out.startswith("❌ Not yet — qx: Demo exercise.") and "not the expected number" in out
    Demo().check()
    assert capsys.readouterr().out.startswith("⏳ Not attempted — qx:")


def test_check_never_shows_a_traceback(capsys):
    Demo().check("boom")
    captured = capsys.readouterr()
    assert captured.out.startswith("❌ Not yet — qx:")
    assert "Traceback" not in captured.out + captured.err


def test_format_result_without_message_has_no_trailing_space():
    assert format_result("q9", "Title", correct()) == "✅ Correct — q9: Title."


@pytest.mark.parametrize(
    ("level", "shown"),
    [(1, "hint 1/3: first nudge (more: qx.hint(2))"), (2, "hint 2/3: second nudge (more: qx.hint(3))"),
     (0, "hint 1/3: first nudge"), (-5, "hint 1/3: first nudge"), (3, "hint 3/3: the answer, nearly"),
     (99, "hint 3/3: the answer, nearly")],
)
def test_hint_levels_clamp_to_the_available_hints(capsys, level, shown):
    Demo().hint(level)
    assert capsys.readouterr().out.startswith(f"💡 qx {shown}")


def test_last_hint_does_not_offer_more(capsys):
    Demo().hint(3)
    assert "more:" not in capsys.readouterr().out


def test_hint_without_hints_says_so(capsys):
    NoHints().hint(2)
    assert "no hint" in capsys.readouterr().out


def test_solution_shows_the_stripped_code(capsys):
    Demo().solution()
    assert capsys.readouterr().out == "📖 qx solution:\nanswer = 42\n"


# --- what a learner sees in JupyterLab: an HTML block, with text and the grader's copy unchanged ---


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_check_displays_html_text_and_the_machine_readable_copy(monkeypatch):
    import json

    from coursekit.exercises import checks

    shown = []

    class Shell:  # stands in for the running IPython kernel
        pass

    monkeypatch.setattr("IPython.get_ipython", lambda: Shell())
    monkeypatch.setattr("IPython.display.display", lambda data, raw=False: shown.append((data, raw)))
    Demo().check(7)
    ((data, raw),) = shown
    assert raw is True
    assert set(data) == {"text/plain", "text/html", checks.CHECK_MIMETYPE}
    # The text and the grader's copy are exactly what they were before the HTML block existed.
    assert data["text/plain"] == "❌ Not yet — qx: Demo exercise. answer is 7, not the expected number."
    assert json.loads(data[checks.CHECK_MIMETYPE]) == {"exercise": "qx", "outcome": "incorrect"}
    assert 'data-outcome="incorrect"' in data["text/html"] and "✗ Not yet" in data["text/html"]
    assert "answer is 7, not the expected number." in data["text/html"]


@pytest.mark.parametrize(
    ("result", "words"),
    [(correct("fine."), "✓ Correct"), (incorrect("no."), "✗ Not yet"), (not_attempted("blank."), "… Not attempted"),
     (unsupported("Spark Connect: not here."), "– Not checkable here")],
)
def test_html_result_has_words_and_readable_contrast(result, words):
    from coursekit.exercises.checks import HTML_BADGES, format_result_html

    block = format_result_html("q1", "Log parameters", result)
    assert words in block, "the words stay: colour is never the only signal"
    colours = {colour for _symbol, _words, colour in HTML_BADGES.values()}
    assert len(colours) == len(HTML_BADGES), "one colour per outcome"
    _symbol, _words, colour = HTML_BADGES[result.outcome]
    assert f"background:{colour};color:#ffffff" in block
    assert _contrast(colour, "#ffffff") >= 4.5, "label text must meet WCAG AA on its own background"
    # The symbols are in every common font (no emoji font needed): none outside the BMP, no variation selectors.
    assert all(ord(ch) < 0x2800 and ch != "\ufe0f" for ch in words)


def test_html_result_escapes_the_message():
    from coursekit.exercises.checks import format_result_html

    block = format_result_html("q2", "Tag <a run>", incorrect("Tag user is '<script>alert(1)</script>' & more."))
    assert "<script>" not in block and "&lt;script&gt;" in block and "&amp; more" in block
    assert "Tag &lt;a run&gt;" in block


def test_unsupported_is_neither_right_nor_wrong():
    result = unsupported("Spark Connect: MLflow cannot log this model here.")
    assert result.outcome is Outcome.UNSUPPORTED and result.outcome == "unsupported" and not result.correct
    assert format_result("q1", "Log the model", result).startswith("⚪ Not checkable here — q1")
