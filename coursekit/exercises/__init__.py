"""The exercises' checks: the learner's instant feedback, and what the grader re-asks.

:mod:`~coursekit.exercises.checks` is the exercise base (``q1.check()``, outcomes, hints),
:mod:`~coursekit.exercises.store` the read-only questions the checks ask of the MLflow store,
:mod:`~coursekit.exercises.verdicts` the verdicts several lessons share, and ``lessonNN`` one module
per lesson (``from coursekit.exercises.lesson01 import q1``). Part of the learner runtime: it imports
nothing from :mod:`coursekit.instructor` or :mod:`coursekit.authoring`.
"""
