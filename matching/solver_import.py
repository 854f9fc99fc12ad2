"""CP-SAT's Python module, imported without pandas.

Why: ``ortools.sat.python.cp_model`` imports pandas at its top for its optional
``*_series`` helpers, which Aiguillage never uses; pandas alone costs 0.8 s of the
``allocate-file`` start-up (2.4 s in all). When pandas is not loaded yet, a placeholder with
the two names cp_model's annotations read (``Index``, ``Series``) stands in during that
import only, then is removed, so a later ``import pandas`` anywhere gets the real one.
"""

from __future__ import annotations

import sys
import types

if "pandas" in sys.modules:
    from ortools.sat.python import cp_model
else:
    _placeholder = types.ModuleType("pandas")
    _placeholder.Index = type("Index", (), {})  # type: ignore[attr-defined]
    _placeholder.Series = type("Series", (), {})  # type: ignore[attr-defined]
    sys.modules["pandas"] = _placeholder
    try:
        from ortools.sat.python import cp_model
    finally:
        if sys.modules.get("pandas") is _placeholder:
            del sys.modules["pandas"]

__all__ = ["cp_model"]
