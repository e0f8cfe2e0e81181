"""The fallback household load shape: the FlexiHome default data's hourly per-unit profile,
scaled by contracted power (kVA -> W), read from the shared reference file when present."""
from __future__ import annotations

import json
from pathlib import Path

BUILTIN_LOAD_PER_UNIT = [0.21, 0.11, 0.10, 0.09, 0.10, 0.22, 0.37, 0.58, 0.54, 0.45, 0.37, 0.39,
                         0.44, 0.44, 0.30, 0.29, 0.41, 0.49, 0.60, 0.59, 0.51, 0.42, 0.28, 0.25]


def load_per_unit_hourly(reference_file: Path | None) -> tuple[list[float], str]:
    """(24 per-unit values, where they come from)."""
    if reference_file is not None:
        try:
            values = json.loads(reference_file.read_text())["load_profile_per_unit_hourly"]
            if len(values) == 24:
                return [float(v) for v in values], "FlexiHome default data"
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return list(BUILTIN_LOAD_PER_UNIT), "built-in FlexiHome load shape"
