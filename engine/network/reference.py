"""The network's 2024 activity-report figures, packaged with the engine.

Why a packaged copy: the synthetic network and the reports are calibrated on these figures,
and an installed Aiguillage must not depend on a checkout's neighbouring folders.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def reference_2024() -> dict[str, Any]:
    text = (
        resources.files("engine.network").joinpath("data/convergence-2024.json").read_text("utf-8")
    )
    return json.loads(text)
