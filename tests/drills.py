"""Shared pieces of the reliability drills: their scale, and the figures they print.

`make test` runs them small; `make drill` sets DRILL_SCALE and prints a table of the figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FIGURES = Path(__file__).resolve().parent.parent / "test-artifacts" / "drills"


def scale() -> int:
    return max(1, int(os.environ.get("DRILL_SCALE", "1")))


def report(drill: str, **figures) -> None:
    """Print one line of figures and keep them for `make drill`'s table."""
    print(f"\n[drill] {drill}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{drill}.json").write_text(json.dumps(figures))


def print_table() -> None:
    rows = sorted(FIGURES.glob("*.json")) if FIGURES.exists() else []
    if not rows:
        print("no drill figures found")
        return
    print(f"\n{'drill':<28} figures")
    print("-" * 100)
    for path in rows:
        figures = json.loads(path.read_text())
        print(f"{path.stem:<28} " + ", ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    print_table()
