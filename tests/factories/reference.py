"""The FlexiHome reference data (`../shared/reference/flexihome-default-data.json`, or FLEXIHOME_REFERENCE)."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

EASY_CARE = "Hotpoint_FabricCare_WPR4LLLG8NWD4/easy_care"
REPO = Path(__file__).resolve().parents[2]


def reference_path() -> Path:
    env = os.environ.get("FLEXIHOME_REFERENCE")
    if env:
        return Path(env)
    for base in (REPO.parent, *REPO.parents):
        candidate = base / "shared" / "reference" / "flexihome-default-data.json"
        if candidate.exists():
            return candidate
    raise FileNotFoundError("flexihome-default-data.json not found (set FLEXIHOME_REFERENCE)")


@lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    with open(reference_path()) as f:
        return json.load(f)
