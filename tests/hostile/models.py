"""Converted registry models for hostile cases that need a real IR: downloaded from ../shared's
mirror and converted once per machine user into a cache folder (guarded by a file lock), so the
many cases that use them cost one conversion."""
from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
MIRROR = PROJECT.parent / "shared" / "data" / "mirror"  # cases call conftest.shared_path for a skip
BIN = Path(sys.executable).parent


def _dynamic_input(name: str) -> bool:
    """Whether the registry model also converts to a dynamic-size IR (<name>-dynamic.xml)."""
    from facezoo.registry import load_registry

    return any(m.name == name and m.conversion and m.conversion.dynamic_input for m in load_registry())


def converted_root(name: str) -> Path:
    """The converter's output root (`<root>/public/<name>/FP32/<name>.xml`) of a mirror model,
    made on first use. The cache is keyed by the interpreter, so a new venv converts afresh."""
    from conftest import shared_path  # skips the case, naming what is missing, without ../shared

    shared_path("data", "mirror", name)
    key = f"{os.getuid()}-{hashlib.sha256(sys.executable.encode()).hexdigest()[:12]}"
    root = Path(tempfile.gettempdir()) / f"facezoo-hostile-models-{key}"
    root.mkdir(parents=True, exist_ok=True)
    xml = root / "ir" / "public" / name / "FP32" / f"{name}.xml"
    wanted = [xml] + ([xml.with_name(f"{name}-dynamic.xml")] if _dynamic_input(name) else [])
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(p.is_file() for p in wanted):  # a cache from before the model had a dynamic IR converts again
            env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
            for argv in ([BIN / "omz_downloader", "--name", name, "--mirror", MIRROR, "-o", root / "dl"],
                         [BIN / "omz_converter", "--name", name, "-d", root / "dl", "-o", root / "ir",
                          "--precisions", "FP32"]):
                proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    raise RuntimeError(f"preparing {name} for hostile cases failed: {proc.stderr[-500:]}")
    return root / "ir"
