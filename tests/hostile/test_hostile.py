"""Every hostile case of every area, run as the real console script (see harness.py)."""
from __future__ import annotations

import importlib
from pathlib import Path

import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import run_case  # noqa: E402

AREAS = ("registry", "download", "convert", "accuracy", "quantize", "signals")
CASES = []
for _module in sorted(Path(__file__).parent.glob("cases_*.py")):
    CASES += importlib.import_module(_module.stem).CASES


def test_every_case_names_a_known_area_and_the_suite_is_large_enough():
    assert {c.area for c in CASES} <= set(AREAS)


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.area}-{c.id}" for c in CASES])
def test_hostile(case, tmp_path, record_property):
    verdict = run_case(case, tmp_path)
    record_property("hostile_outcome", verdict.outcome)
    assert verdict.outcome == "refused cleanly", f"{verdict.outcome}: {verdict.detail}"
