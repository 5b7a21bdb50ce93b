"""Hostile cases import their harness from this folder; the session ends with a one-line tally."""
from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import OUTCOMES  # noqa: E402

_tally: collections.Counter = collections.Counter()


def pytest_runtest_logreport(report):
    if report.when == "call":
        for key, value in report.user_properties:
            if key == "hostile_outcome":
                _tally[value] += 1


def pytest_terminal_summary(terminalreporter):
    if _tally:
        total = sum(_tally.values())
        parts = ", ".join(f"{_tally.get(o, 0)} {o}" for o in OUTCOMES)
        terminalreporter.write_line(f"hostile inputs: {total} cases: {parts}")
