"""Every hostile case of every area, run as the real console script (see harness.py)."""
from __future__ import annotations

import importlib

import pytest

from harness import run_case

AREAS = ("registry", "download", "convert", "accuracy", "signals")
CASES = []
for _area in AREAS:
    try:
        CASES += importlib.import_module(f"cases_{_area}").CASES
    except ModuleNotFoundError as exc:
        if exc.name != f"cases_{_area}":
            raise


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.area}-{c.id}" for c in CASES])
def test_hostile(case, tmp_path, record_property):
    verdict = run_case(case, tmp_path)
    record_property("hostile_outcome", verdict.outcome)
    assert verdict.outcome == "refused cleanly", f"{verdict.outcome}: {verdict.detail}"
