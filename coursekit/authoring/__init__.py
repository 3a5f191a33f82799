"""What a maintainer runs: lesson generation from the solutions, output refresh, the MLflow UI tour.

``python -m coursekit.authoring.generate`` and ``python -m coursekit.authoring.refresh`` are its
commands; ``scripts/ui_screenshots.py`` drives :mod:`~coursekit.authoring.ui_tour`. It builds on the
learner runtime and :mod:`coursekit.engine`; nothing below it imports it.
"""

from coursekit import quick_imports  # noqa: F401 - first, before any nbformat import (see that module)
