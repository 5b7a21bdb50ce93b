"""Stored predictions: what inference produced per image, kept so that metrics can be computed
later, elsewhere, or from shards merged together; and the official WIDER submission format."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .adapters.retinaface import Detections
from .errors import EvaluateError


def _atomic_savez(path: Path, **arrays) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_detections(path: Path, detections: dict[str, Detections], meta: dict[str, Any]) -> None:
    """One .npz: image paths, per-image counts, and the concatenated boxes, scores, landmarks."""
    names = sorted(detections)
    counts = np.array([len(detections[n].scores) for n in names], dtype=np.int64)
    cat = lambda attr, shape: (np.concatenate([getattr(detections[n], attr) for n in names])  # noqa: E731
                               if names else np.zeros(shape))
    _atomic_savez(path, kind=np.array("detections"), meta=np.array(json.dumps(meta, sort_keys=True)),
                  names=np.array(names, dtype=str), counts=counts, boxes=cat("boxes", (0, 4)),
                  scores=cat("scores", (0,)), landmarks=cat("landmarks", (0, 5, 2)))


def save_embeddings(path: Path, embeddings: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    names = sorted(embeddings)
    _atomic_savez(path, kind=np.array("embeddings"), meta=np.array(json.dumps(meta, sort_keys=True)),
                  names=np.array(names, dtype=str),
                  embeddings=np.stack([embeddings[n] for n in names]) if names else np.zeros((0, 0)))


def load_predictions(paths: list[Path], meta: dict[str, Any]) -> dict[str, Any]:
    """Predictions from one or more stored files (shards are merged); their `meta` (model, dataset,
    adapter settings) must agree with every key of `meta`, and no image may appear in two shards."""
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            data = np.load(path, allow_pickle=False)
            kind, stored = str(data["kind"]), json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise EvaluateError(f"{path}: not a stored predictions file ({exc})") from None
        diff = sorted(k for k in meta if stored.get(k) != meta[k])
        if diff:
            raise EvaluateError(f"{path}: predictions were made with other settings ({', '.join(diff)} differ)")
        names = [str(n) for n in data["names"]]
        if kind == "detections":
            counts, boxes, scores, marks = data["counts"], data["boxes"], data["scores"], data["landmarks"]
            ends = np.cumsum(counts)
            items = {n: Detections(boxes[s:e], scores[s:e], marks[s:e]) for n, s, e in zip(names, ends - counts, ends)}
        else:
            items = dict(zip(names, data["embeddings"]))
        twice = set(items) & set(merged)
        if twice:
            raise EvaluateError(f"{path}: {len(twice)} images also in an earlier shard, e.g. {sorted(twice)[0]}")
        merged.update(items)
    return merged


def write_submission(folder: Path, detections: dict[str, Detections]) -> None:
    """The official per-image format: `<event>/<stem>.txt` holding the image name, the count,
    then `x y w h score` lines (w = x2 - x1); values written exactly (shortest round-trip)."""
    for path, det in detections.items():
        target = Path(folder) / Path(path).with_suffix(".txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        xywh = np.concatenate([det.boxes[:, :2], det.boxes[:, 2:] - det.boxes[:, :2]], axis=1)
        lines = [Path(path).stem, str(len(det.scores))]
        lines += [" ".join(repr(float(v)) for v in (*box, score)) for box, score in zip(xywh, det.scores)]
        target.write_text("\n".join(lines) + "\n")


def read_submission(folder: Path, paths: list[str]) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Per image of `paths`, (x y w h boxes, scores) read from the official format. A missing file
    counts as no prediction, as in the official code; the missing ones are returned too."""
    out, missing = [], []
    for path in paths:
        file = Path(folder) / Path(path).with_suffix(".txt")
        if not file.is_file():
            missing.append(str(file))
            out.append((np.zeros((0, 4)), np.zeros(0)))
            continue
        lines = file.read_text().splitlines()
        try:
            count = int(lines[1])
            rows = np.array([[float(v) for v in line.split()[:5]] for line in lines[2:2 + count]]).reshape(-1, 5)
            if len(rows) != count:
                raise ValueError
        except (IndexError, ValueError):
            raise EvaluateError(f"{file}: expected the image name, a count, then that many 'x y w h score' "
                                f"lines") from None
        out.append((rows[:, :4], rows[:, 4]))
    return out, missing
