"""The fitted numbers of the estimates (``rtl/calibration.json``), read once.

Every coefficient that an estimate before synthesis uses — the cores' logic models, what the
host link adds, the Fmax a core's build is expected to reach — lives in that one data file,
which the calibration benches rewrite (``python -m bench.calibrate_logic --write``); no fitted
figure is written in code.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

__all__ = ["PATH", "calibration", "write_calibration"]

#: The data file.
PATH = Path(__file__).with_name("calibration.json")


@cache
def calibration() -> dict:
    """The data file's contents (read once per process)."""
    return json.loads(PATH.read_text())


def write_calibration(section: str, key: str, value) -> None:
    """Replace ``[section][key]`` of the data file with ``value`` (a bench's refit)."""
    data = json.loads(PATH.read_text())
    data.setdefault(section, {})[key] = value
    PATH.write_text(json.dumps(data, indent=1) + "\n")
    calibration.cache_clear()
