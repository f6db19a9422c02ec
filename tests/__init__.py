"""The test tree: one folder per package, one file per module (see docs/layout.md, Tests)."""

from pathlib import Path

#: The project root (the folder holding ``tests/``), for tests that read committed files.
ROOT = Path(__file__).resolve().parents[1]
