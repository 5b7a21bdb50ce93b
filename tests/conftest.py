"""Shared test helpers: where ../shared is, and small registries written on the fly."""
from __future__ import annotations

import collections
import hashlib
import os
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent (../shared is provided beside the project in CI)")
    return path


def file_entry(name: str, data: bytes, sources: list) -> dict:
    return {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "sources": sources}


def write_model(models_root: Path, name: str, files: list[dict], **extra) -> Path:
    """Write models_root/public/<name>/model.yml (+ card) and return the model directory."""
    directory = models_root / "public" / name
    directory.mkdir(parents=True, exist_ok=True)
    doc = {"description": f"test model {name}", "task_type": "detection", "framework": "mxnet",
           "license": "https://example.invalid/LICENSE", "files": files, **extra}
    (directory / "model.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (directory / f"{name}.md").write_text(f"# {name}\n")
    return directory


# Hypothesis settings for the parser fuzzers (tests/fuzz/): 'ci' (default) keeps the whole fuzz run
# under two minutes on a 2-core machine; FACEZOO_FUZZ=deep runs many more examples locally.
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("deep", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("deep" if os.environ.get("FACEZOO_FUZZ") == "deep" else "ci")

# The hostile-input suite (tests/hostile/) records each case's outcome; the session ends with a tally.
HOSTILE_OUTCOMES = ("refused cleanly", "traceback", "wrong success", "wrong exit", "bad message",
                    "partial output", "touched input", "hang")
_hostile_tally: collections.Counter = collections.Counter()


def pytest_runtest_logreport(report):
    if report.when == "call":
        for key, value in report.user_properties:
            if key == "hostile_outcome":
                _hostile_tally[value] += 1


def pytest_terminal_summary(terminalreporter):
    if _hostile_tally:
        total = sum(_hostile_tally.values())
        parts = ", ".join(f"{_hostile_tally.get(o, 0)} {o}" for o in HOSTILE_OUTCOMES)
        terminalreporter.write_line(f"hostile inputs: {total} cases: {parts}")
