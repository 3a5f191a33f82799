"""No code of the kit or its notebooks captures output into an ipywidgets ``Output`` widget.

A capture (``with out:`` or ``@out.capture()``) belongs to whatever message the kernel is
handling. From a thread started by a real button click it lands nowhere (lesson 5's plots
froze after the first click), and under nbclient/papermill its echo on the shell channel can
make the client miss the cell's reply and wait out the whole cell timeout (nbclient #312,
jupyter_client #1059). Widgets are updated by setting their values instead.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from nbrun import REPO


FILES = sorted((REPO / "coursekit").rglob("*.py")) + sorted(REPO.glob("solutions/*.ipynb")) + sorted(REPO.glob("lessons/*.ipynb"))


def _code(path: Path) -> list[tuple[str, str]]:
    """(where, code) of a module, or of each code cell of a notebook."""
    if path.suffix == ".py":
        return [(str(path.relative_to(REPO)), path.read_text(encoding="utf-8"))]
    found = []
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] == "code":
            # IPython magics and shell escapes are not Python; blank them out for the parser.
            lines = "".join(cell["source"]).splitlines()
            code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)
            found.append((f"{path.relative_to(REPO)} cell {i}", code))
    return found


def output_captures(code: str) -> list[str]:
    """``with`` blocks and ``.capture`` decorators that capture into an ``Output`` widget, as source lines."""
    tree = ast.parse(code)
    outputs: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "Output":
                outputs.update(ast.unparse(target) for target in node.targets)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                expr = ast.unparse(item.context_expr)
                if expr in outputs or "Output(" in expr:
                    found.append(f"with {expr}:")
        if isinstance(node, ast.Attribute) and node.attr == "capture":
            found.append(ast.unparse(node))
    return found


def test_the_detector_finds_captures() -> None:
    code = (
        "import ipywidgets as widgets\nself.plots = widgets.Output()\nout = Output()\n"
        "with self.plots:\n    print(1)\nwith out:\n    pass\nwith widgets.Output():\n    pass\n"
        "@out.capture()\ndef f():\n    pass\n"
    )
    assert output_captures(code) == ["with self.plots:", "with out:", "with widgets.Output():", "out.capture"]
    assert output_captures("import io\nwith open('x') as f:\n    pass\nimage.value = b''\n") == []


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_no_output_widget_capture(path: Path) -> None:
    for where, code in _code(path):
        assert output_captures(code) == [], f"{where} captures output into a widget: set a widget's value instead"
