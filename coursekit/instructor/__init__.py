"""What an instructor runs: the grader, its sandbox and reports, the class server and class progress.

``python -m coursekit.instructor.grade``, ``python -m coursekit.instructor.progress`` and
``python -m coursekit.instructor.class_server`` are its commands. It builds on the learner runtime,
the exercises and :mod:`coursekit.engine`; nothing below it imports it.
"""

from coursekit import quick_imports  # noqa: F401 - first, before any nbformat import (see that module)
