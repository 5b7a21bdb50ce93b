"""LFW-style verification: pair images -> embeddings (stored per image) -> 10-fold accuracy and TAR@FAR."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .adapters.alignment import align_face
from .adapters.retinaface import Detections, decode, rescale
from .config import DatasetDefinition, DatasetSpec
from .dataset_files import checked_file, reading_stored, subsample, unknown_names
from .datasets.landmarks import check_landmarks, parse_landmarks
from .datasets.lfw import Pairs, make_pairs, parse_pairs
from .errors import EvaluateError
from .images import read_image, to_input
from .jobs import Executor, ModelRef, Progress, open_launcher
from .launchers.base import Launcher
from .metrics.verification import VerificationResult, pair_distances, verification_accuracy
from .predictions import load_predictions, save_embeddings
from .results import MetricResult, RunOptions, with_reference


@dataclass(frozen=True)
class EmbedJob:
    """An (image path, flipped) key -> an aligned face at the model's size -> its embedding."""

    folder: Path
    shape: tuple[int, ...]  # the network input, N C H W
    max_image_pixels: int
    alignment: str | None  # None (already aligned), "landmarks" or "detector"
    landmarks: dict[str, np.ndarray] | None  # five points per image, for "landmarks"
    aligner: ModelRef | None  # the detector, for "detector"
    output: str  # the embedding output

    def load(self, key: tuple[str, bool]) -> tuple[np.ndarray, None]:
        path, flipped = key
        image = read_image(self.folder / path, max_pixels=self.max_image_pixels)
        if self.alignment == "landmarks":
            image = align_face(image, self.landmarks[path], self.shape[2])
        elif self.alignment == "detector":
            image = align_face(image, detect_landmarks(open_launcher(self.aligner), image, path), self.shape[2])
        blob = to_input(image, self.shape)
        return (np.ascontiguousarray(blob[..., ::-1]) if flipped else blob), None

    def preprocessing(self, key: tuple[str, bool]) -> tuple[Path, str] | None:
        """The file `load(key)` reads, and all else its result depends on (the input cache's key);
        None when a detector aligns the face (its result depends on that model too)."""
        path, flipped = key
        if self.alignment == "detector":
            return None
        points = self.landmarks[path].tolist() if self.alignment == "landmarks" else None
        return self.folder / path, (f"embed to_input shape={self.shape} max_pixels={self.max_image_pixels} "
                                    f"flipped={flipped} alignment={self.alignment} landmarks={points}")

    def post(self, key: tuple[str, bool], info: None, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs[self.output].reshape(-1).astype(np.float64)


def evaluate_lfw(executor: Executor | None, adapter: dict[str, Any], spec: DatasetSpec,
                 definition: DatasetDefinition, options: RunOptions, meta: dict[str, Any],
                 progress: Progress | None, warnings: list[str], hashes: dict[str, str],
                 timings: dict[str, float], aligner: ModelRef | None = None) -> tuple[int, list[MetricResult], dict, list]:
    root = Path(options.dataset_root)
    folder = root / definition.images
    if definition.pairs:
        pairs_path, text = checked_file(root, definition.pairs, "pairs", definition.pairs_sha256, options.strict,
                                         warnings, hashes)
        pairs = parse_pairs(text, str(pairs_path))
    else:
        if not folder.is_dir():
            raise EvaluateError(f"{folder}: image folder not found (dataset root -s {root})")
        text = make_pairs(folder, definition.generate_pairs_folds)
        hashes["pairs (generated)"] = hashlib.sha256(text.encode()).hexdigest()
        pairs = parse_pairs(text, f"pairs generated from {folder}")
    size = subsample(options, len(pairs), "pairs")
    if size < len(pairs):
        keep = np.arange(len(pairs)) < size
        pairs = Pairs(pairs.first[:size], pairs.second[:size], pairs.same[keep], pairs.fold[keep])
    names = sorted(set(pairs.first) | set(pairs.second))
    reuse = reading_stored(options)
    broken: list = []
    if reuse:
        embeddings = load_predictions(list(options.stored_predictions), meta, "embeddings")
        unknown_names(embeddings, set(names), "images")
    else:
        if executor is None:
            raise EvaluateError("no stored predictions and no model to run")
        for path in names:
            if not (folder / path).exists():
                which = [i for i, (a, b) in enumerate(zip(pairs.first, pairs.second)) if path in (a, b)][0]
                raise EvaluateError(f"{folder / path}: image not found (named by pair {which + 1})")
        shape = executor.input.shape
        landmarks = None
        if definition.alignment == "landmarks":
            if not definition.landmarks:
                raise EvaluateError(f"dataset {definition.name}: alignment 'landmarks' needs a landmarks file")
            landmarks_path, text = checked_file(root, definition.landmarks, "landmarks", None, options.strict,
                                                 warnings, hashes)
            landmarks = parse_landmarks(text, str(landmarks_path))
            absent = [n for n in names if n not in landmarks]
            if absent:
                raise EvaluateError(f"{landmarks_path}: no landmarks for {absent[0]} ({len(absent)} of "
                                    f"{len(names)} images have none)")
        if definition.alignment == "detector" and aligner is None:
            raise EvaluateError(f"dataset {definition.name}: alignment 'detector' needs --aligner_model")

        output = (adapter.get("outputs") or [None])[0]
        if output is None:
            if len(executor.outputs) != 1:
                raise EvaluateError(f"the model has {len(executor.outputs)} outputs; name the embedding in "
                                    f"the adapter's 'outputs'")
            output = executor.outputs[0]
        elif output not in executor.outputs:
            raise EvaluateError(f"{spec.name}: adapter output {output!r} is not an output of the model "
                                f"(it has: {', '.join(executor.outputs)})")
        flip = adapter.get("flip", True)
        keys = [(n, f) for n in names for f in ((False, True) if flip else (False,))]
        began = time.perf_counter()
        job = EmbedJob(folder, shape, options.max_image_pixels, definition.alignment, landmarks, aligner, output)
        raw, broken = executor.run(job, keys, options.skip_broken, progress)
        broken = [(key[0], message) for key, message in broken if not key[1]]  # once per image, not per flip
        timings["inference_s"] = time.perf_counter() - began
        embeddings = {}
        for n in names:
            parts = [raw[(n, f)] for f in ((False, True) if flip else (False,)) if (n, f) in raw]
            if len(parts) == (2 if flip else 1):
                embeddings[n] = np.sum(parts, axis=0)
        for path in options.stored_predictions:
            save_embeddings(path, embeddings, meta)
    usable = np.array([a in embeddings and b in embeddings for a, b in zip(pairs.first, pairs.second)])
    if not usable.any():
        example = f", e.g. {broken[0][1]}" if broken else ""
        raise EvaluateError(f"no pair has both images readable ({len(broken)} images broken{example})")
    if not usable.all():
        warnings.append(f"{int((~usable).sum())} pairs skipped: an image could not be read")
    began = time.perf_counter()
    first = np.stack([embeddings[a] for a, u in zip(pairs.first, usable) if u])
    second = np.stack([embeddings[b] for b, u in zip(pairs.second, usable) if u])
    distances = pair_distances(first, second)
    results, curves = [], {}
    for m in spec.metrics:
        result: VerificationResult = verification_accuracy(distances, pairs.same[usable], pairs.fold[usable], m.far)
        if m.type == "lfw_accuracy":
            results.append(with_reference(m, result.mean, std=result.std, folds=result.fold_accuracy.tolist(),
                                      thresholds=result.fold_threshold.tolist(), pairs=int(usable.sum())))
        else:
            results.append(with_reference(m, result.tar_at_far, far=m.far, pairs=int(usable.sum())))
        curves["roc"] = {"far": result.roc_far, "tar": result.roc_tar}
    timings["metrics_s"] = time.perf_counter() - began
    return len(names), results, curves, broken


def detect_landmarks(detector: Launcher, image: np.ndarray, path: str) -> np.ndarray:
    """Five landmarks of the most confident face the detector finds (for LFW alignment)."""
    shape = detector.input.shape
    found: list[Detections] = []
    detector.infer([(path, to_input(image, shape))],
                   lambda _, outputs: found.append(decode(outputs, (shape[3], shape[2]))))
    det = rescale(found[0], image.shape[1] / shape[3], image.shape[0] / shape[2])
    if not len(det.scores):
        raise EvaluateError(f"{path}: the aligning detector found no face")
    return check_landmarks(det.landmarks[int(np.argmax(det.scores))], f"{path}: the aligning detector's face")
