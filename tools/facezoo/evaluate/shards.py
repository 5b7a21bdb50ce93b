"""Shards of a run: its keys cut in order into pieces, each named by a digest of what it computes;
and the --resume folder, which keeps every finished shard's predictions so that a later run of
the same model on the same data skips it.

A resume folder holds `run.json` (what the run is: model, its sha256, dataset, shard size, and a
digest of the job's settings) and one `shard-NNNNNN-DIGEST.npz` per finished shard, in the stored
predictions format (predictions.py) with the shard's digest and its broken images in `meta`."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facezoo.common.safeio import TEMP_PREFIX, read_text_limited, sweep_stale_temps, write_atomic

from .adapters.retinaface import Detections
from .errors import EvaluateError
from .predictions import load_predictions, save_detections, save_embeddings

MANIFEST = "run.json"
SHARD_FILE = re.compile(r"shard-(\d{6})-([0-9a-f]{16})\.npz")
MAX_MANIFEST = 1 << 16


def cut(keys: list[Any], size: int) -> list[list[Any]]:
    """The keys in their order, in pieces of `size` (the last may be shorter)."""
    return [keys[i:i + size] for i in range(0, len(keys), size)]


def key_path(key: Any) -> str:
    """The image path of a key: the key itself, or the first item of a (path, variant...) tuple."""
    return key if isinstance(key, str) else key[0]


def key_name(key: Any) -> str:
    """A key as a stored prediction's name: its path, with a variant after '#' (e.g. 'a/b.jpg#True'
    for LFW's flipped copy of a/b.jpg)."""
    return key if isinstance(key, str) else "#".join([key[0], *(str(v) for v in key[1:])])


def run_digest(identity: dict[str, Any], job: Any) -> str:
    """What a run computes: the model and dataset (`identity`, JSON) and the job's settings."""
    text = json.dumps(identity, sort_keys=True).encode()
    return hashlib.sha256(text + pickle.dumps(job, protocol=4)).hexdigest()


def shard_digest(run: str, keys: list[Any]) -> str:
    """What one shard computes: the run's digest and the shard's keys."""
    return hashlib.sha256(json.dumps([run, [key_name(k) for k in keys]]).encode()).hexdigest()


def _save(path: Path, results: dict[str, Any], meta: dict[str, Any]) -> None:
    values = list(results.values())
    if values and isinstance(values[0], np.ndarray):
        save_embeddings(path, results, meta)
    elif all(isinstance(v, Detections) for v in values):
        save_detections(path, results, meta)
    else:
        raise TypeError(f"no stored format for predictions of type {type(values[0]).__name__}")


@dataclass
class ResumeStore:
    """The --resume folder of one run (`identity`: JSON-able, with the run's digest under 'run')."""

    folder: Path
    identity: dict[str, Any]

    def open(self) -> None:
        """Make the folder, or check that it holds shards of this very run (or nothing), and record
        the run in run.json. Another run's folder is refused, naming what it holds."""
        folder = self.folder
        folder.mkdir(exist_ok=True)
        sweep_stale_temps(folder)  # what a client killed with -9 left mid-write
        manifest = folder / MANIFEST
        if manifest.exists() or manifest.is_symlink():
            stored = self._manifest(manifest)
            if stored != self.identity:
                differ = sorted(k for k in set(stored) | set(self.identity) if stored.get(k) != self.identity.get(k))
                raise EvaluateError(f"{folder}: --resume holds shards of another run ({stored.get('model')} on "
                                    f"{stored.get('dataset')}; {', '.join(differ)} differ); give a new or empty "
                                    f"folder")
            return
        with os.scandir(folder) as entries:
            other = next((e.name for e in entries if not e.name.startswith(TEMP_PREFIX)), None)
        if other is not None:
            raise EvaluateError(f"{folder}: --resume holds {other!r} but no {MANIFEST}: not a folder of this run's "
                                f"shards; give a new or empty folder")
        write_atomic(manifest, json.dumps(self.identity, indent=1, sort_keys=True) + "\n")

    def _manifest(self, path: Path) -> dict[str, Any]:
        text = read_text_limited(path, MAX_MANIFEST, "--resume run record", EvaluateError)
        try:
            stored = json.loads(text)
        except ValueError as exc:
            raise EvaluateError(f"{path}: --resume run record is not JSON ({exc})") from None
        if not isinstance(stored, dict):
            raise EvaluateError(f"{path}: --resume run record: expected a JSON object")
        return stored

    def path(self, index: int, digest: str) -> Path:
        return self.folder / f"shard-{index:06d}-{digest[:16]}.npz"

    def load(self, index: int, keys: list[Any], digest: str) -> tuple[dict[Any, Any], list[tuple[Any, str]]] | None:
        """The stored predictions and broken images of a finished shard, or None when it is not
        stored (a shard file of the same index with other keys is stale: it is recomputed)."""
        path = self.path(index, digest)
        if not (path.exists() or path.is_symlink()):
            return None
        loaded = load_predictions([path], {"shard": digest})
        with np.load(path, allow_pickle=False) as arrays:  # validated just above
            meta = json.loads(str(arrays["meta"]))
        by_name = {key_name(k): k for k in keys}
        broken = meta.get("broken")
        if not (isinstance(broken, list) and all(isinstance(b, list) and len(b) == 2 and b[0] in by_name
                                                 and isinstance(b[1], str) for b in broken)):
            raise EvaluateError(f"{path}: meta 'broken': expected [image, reason] pairs of the shard's images")
        unknown = sorted(set(loaded) - set(by_name))
        missing = set(by_name) - set(loaded) - {b[0] for b in broken}
        if unknown or missing:
            raise EvaluateError(f"{path}: shard {index} should hold {len(keys)} images, it has "
                                f"{'an unknown one, ' + unknown[0] if unknown else 'no ' + sorted(missing)[0]}")
        return {by_name[n]: v for n, v in loaded.items()}, [(by_name[n], reason) for n, reason in broken]

    def save(self, index: int, keys: list[Any], digest: str, results: dict[Any, Any],
             broken: list[tuple[Any, str]]) -> None:
        """Store a finished shard (atomically); a stale file of the same index goes."""
        meta = {"shard": digest, "index": index, "run": self.identity.get("run"),
                "broken": [[key_name(k), reason] for k, reason in broken]}
        path = self.path(index, digest)
        _save(path, {key_name(k): v for k, v in results.items()}, meta)
        for stale in self.folder.glob(f"shard-{index:06d}-*.npz"):
            if stale != path and SHARD_FILE.fullmatch(stale.name):
                stale.unlink(missing_ok=True)
