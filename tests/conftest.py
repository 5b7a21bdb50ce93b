"""Shared test helpers: where ../shared is, and small registries written on the fly."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import yaml

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
