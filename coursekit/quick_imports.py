"""Keep the notebook tools from paying for a jsonschema feature they never use.

nbformat imports jsonschema, and jsonschema checks the ``iri`` string format with ``rfc3987_syntax`` when it is
installed (JupyterLab's ``jupyter-events`` asks for it). That module compiles 38 grammars as it is imported:
about 2.8 CPU-s in every process that reads or runs a notebook (the grader's runner for each submission, each
``python -m coursekit.engine``), about 4.1 instead of 1.3 CPU-s for ``import coursekit.engine``. No notebook schema
uses the ``iri`` format, so :mod:`coursekit.engine`, :mod:`coursekit.instructor` and :mod:`coursekit.authoring`
import this module before nbformat: jsonschema then treats ``rfc3987_syntax`` as not installed and simply does not
check that format. Where jsonschema was already imported, nothing changes. The learner runtime (a lesson's kernel)
never imports this module.
"""

from __future__ import annotations

import sys

#: The module jsonschema looks for to check ``iri`` strings.
IRI_CHECKER = "rfc3987_syntax"


def skip_iri_grammars() -> bool:
    """Make jsonschema, when it is imported later in this process, skip its ``iri`` format check.

    Returns True when that took effect (jsonschema was not imported yet), False otherwise.
    """
    if "jsonschema" in sys.modules:
        return False
    sys.modules.setdefault(IRI_CHECKER, None)  # type: ignore[arg-type] - None makes `import` raise ImportError
    return sys.modules[IRI_CHECKER] is None


skip_iri_grammars()
