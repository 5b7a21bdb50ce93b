"""LFW-style verification: pair images (a folder and a pairs file, or an insightface .bin) ->
embeddings of each image and of its mirror image (stored per image) -> 10-fold accuracy and
TAR@FAR under the metric's protocol (facezoo, insightface or omz_subsets)."""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .adapters.alignment import align_face
from .adapters.retinaface import Detections, decode, rescale
from .config import DatasetDefinition, DatasetSpec
from .dataset_files import checked_file, reading_stored, subsample, unknown_names
from .dataset_files import sha256_of
from .datasets.insightface_bin import check_headers, decode as decode_bin_image, image_name, read_bin
from .datasets.landmarks import check_landmarks, parse_landmarks
from .datasets.lfw import Pairs, make_pairs, parse_pairs
from .errors import EvaluateError
from .images import read_image, to_input
from .jobs import Executor, ModelRef, Progress, open_launcher
from .launchers.base import Launcher
from .metrics.verification import (insightface_distances, insightface_val, kfold, omz_distances, omz_lfw_units,
                                   omz_subsets, pair_distances, tar_at_far, verification_accuracy)
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


@dataclass(frozen=True)
class BinEmbedJob:
    """An (image index name, flipped) key -> that face of an insightface .bin (aligned already),
    decoded on demand, at the model's size -> its embedding. Each process reads the .bin once.
    Not described for the input cache: its key would hash the whole .bin for every face."""

    folder: Path  # the folder holding the .bin (a cluster worker finds it there)
    bin: str
    shape: tuple[int, ...]
    max_image_pixels: int
    output: str

    def load(self, key: tuple[str, bool]) -> tuple[np.ndarray, None]:
        name, flipped = key
        image = decode_bin_image(read_bin(Path(self.folder) / self.bin), int(name), max_pixels=self.max_image_pixels)
        blob = to_input(image, self.shape)
        return (np.ascontiguousarray(blob[..., ::-1]) if flipped else blob), None

    def post(self, key: tuple[str, bool], info: None, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs[self.output].reshape(-1).astype(np.float64)


FLIPPED = "#flipped"  # a mirror image's name in stored predictions: <image name>#flipped


def needs_mirror(metrics, adapter: dict[str, Any]) -> bool:
    """Whether any metric uses mirror images: insightface's protocol always sums them in,
    facezoo's when the adapter's `flip` is on (its default); Open Model Zoo's never."""
    return any(m.protocol == "insightface" or (m.protocol == "facezoo" and adapter.get("flip", True)) for m in metrics)


def _bin_pairs(path: Path, hashes: dict[str, str], check: bool, max_pixels: int) -> Pairs:
    """The pairs of a .bin: images named by index, two per pair in order, insightface's folds."""
    bins = read_bin(path)
    hashes["bin"] = sha256_of(path)
    if check:  # every header now, before inference (with --skip_broken, bad images are skipped as read)
        check_headers(bins, max_pixels)
    names = [image_name(i) for i in range(len(bins.images))]
    return Pairs(names[0::2], names[1::2], bins.same.copy(), kfold(len(bins)))


def evaluate_lfw(executor: Executor | None, adapter: dict[str, Any], spec: DatasetSpec,
                 definition: DatasetDefinition, options: RunOptions, meta: dict[str, Any],
                 progress: Progress | None, warnings: list[str], hashes: dict[str, str],
                 timings: dict[str, float], aligner: ModelRef | None = None) -> tuple[int, list[MetricResult], dict, list]:
    root = Path(options.dataset_root)
    folder = root / definition.images
    if definition.bin:
        if definition.alignment != "none":
            raise EvaluateError(f"dataset {definition.name}: an insightface .bin holds aligned faces; its "
                                f"alignment must be none")
        pairs = _bin_pairs(root / definition.bin, hashes, not options.skip_broken, options.max_image_pixels)
    elif definition.pairs:
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
    mirror = needs_mirror(spec.metrics, adapter)
    views = (False, True) if mirror else (False,)
    meta = {**meta, "views": "image+mirror" if mirror else "image"}
    reuse = reading_stored(options)
    broken: list = []
    if reuse:
        stored = load_predictions(list(options.stored_predictions), meta, "embeddings")
        unknown_names(stored, {n + (FLIPPED if f else "") for n in names for f in views}, "images")
        raw = {(k.removesuffix(FLIPPED), k.endswith(FLIPPED)): v for k, v in stored.items()}
    else:
        if executor is None:
            raise EvaluateError("no stored predictions and no model to run")
        absent = [] if definition.bin else [path for path in names if not (folder / path).exists()]
        if absent:
            which = next(i for i, (a, b) in enumerate(zip(pairs.first, pairs.second)) if absent[0] in (a, b))
            raise EvaluateError(f"{folder / absent[0]}: image not found (named by pair {which + 1})")
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
        keys = [(n, f) for n in names for f in views]
        began = time.perf_counter()
        if definition.bin:
            job = BinEmbedJob(root, definition.bin, shape, options.max_image_pixels, output)
        else:
            job = EmbedJob(folder, shape, options.max_image_pixels, definition.alignment, landmarks, aligner, output)
        raw, broken = executor.run(job, keys, options.skip_broken, progress)
        broken = [(key[0], message) for key, message in broken if not key[1]]  # once per image, not per flip
        timings["inference_s"] = time.perf_counter() - began
        for path in options.stored_predictions:
            save_embeddings(path, {n + (FLIPPED if f else ""): v for (n, f), v in raw.items()}, meta)
    readable = {n for n in names if all((n, f) in raw for f in views)}
    usable = np.array([a in readable and b in readable for a, b in zip(pairs.first, pairs.second)])
    if not usable.any():
        example = f", e.g. {broken[0][1]}" if broken else ""
        raise EvaluateError(f"no pair has both images readable ({len(broken)} images broken{example})")
    if not usable.all():
        warnings.append(f"{int((~usable).sum())} pairs skipped: an image could not be read")
    began = time.perf_counter()
    results, curves = [], {}
    for m in spec.metrics:
        result, roc = _metric(m, adapter, pairs, usable, raw, bool(definition.bin))
        results.append(result)
        curves["roc"] = roc
    timings["metrics_s"] = time.perf_counter() - began
    return len(names), results, curves, broken


def _metric(m, adapter: dict[str, Any], pairs: Pairs, usable: np.ndarray, raw: dict[tuple[str, bool], np.ndarray],
            from_bin: bool) -> tuple[MetricResult, dict]:
    """One metric under its protocol, from each image's embedding and its mirror image's."""
    def stacked(names: list[str], mirror: bool) -> np.ndarray:
        chosen = [n for n, u in zip(names, usable) if u]
        plain = np.stack([raw[(n, False)] for n in chosen])
        return plain + np.stack([raw[(n, True)] for n in chosen]) if mirror else plain

    same, count = pairs.same[usable], int(usable.sum())
    protocol = {} if m.protocol == "facezoo" else {"protocol": m.protocol}
    if m.protocol == "omz_subsets":  # the image alone, Open Model Zoo's grouping of the pairs into annotations
        distances = omz_distances(stacked(pairs.first, False), stacked(pairs.second, False))
        units, once = ((np.arange(len(pairs)), np.ones(len(pairs), dtype=bool)) if from_bin
                       else omz_lfw_units(pairs.first, pairs.second, pairs.same))
        counted = once[usable]
        r = omz_subsets(distances[counted], same[counted], units[usable][counted])
        _, far, tar = tar_at_far(distances, same, m.far)
        return with_reference(m, r.mean, std=r.std, subsets=r.subset_accuracy.tolist(),
                              thresholds=r.subset_threshold.tolist(), pairs=int(counted.sum()), **protocol), \
            {"far": far, "tar": tar}
    mirror = m.protocol == "insightface" or adapter.get("flip", True)
    first, second = stacked(pairs.first, mirror), stacked(pairs.second, mirror)
    if m.protocol == "insightface":
        distances, folds = insightface_distances(first, second), kfold(count)
    else:
        distances, folds = pair_distances(first, second), pairs.fold[usable]
    result = verification_accuracy(distances, same, folds, m.far)
    roc = {"far": result.roc_far, "tar": result.roc_tar}
    if m.type == "lfw_accuracy":
        return with_reference(m, result.mean, std=result.std, folds=result.fold_accuracy.tolist(),
                              thresholds=result.fold_threshold.tolist(), pairs=count, **protocol), roc
    if m.protocol == "insightface":
        val = insightface_val(distances, same, folds, m.far)
        return with_reference(m, val.val, std=val.std, far=m.far, far_measured=val.far,
                              thresholds=val.fold_threshold.tolist(), pairs=count, **protocol), roc
    return with_reference(m, result.tar_at_far, far=m.far, pairs=count), roc


# The decoding threads align faces concurrently; OpenVINO 2026.4's bindings deadlock about one run
# in ten when two threads create infer requests on one compiled model at once, so they take turns.
_detecting = threading.Lock()


def detect_landmarks(detector: Launcher, image: np.ndarray, path: str) -> np.ndarray:
    """Five landmarks of the most confident face the detector finds (for LFW alignment)."""
    shape = detector.input.shape
    found: list[Detections] = []
    blob = to_input(image, shape)
    with _detecting:
        detector.infer([(path, blob)], lambda _, outputs: found.append(decode(outputs, (shape[3], shape[2]))))
    det = rescale(found[0], image.shape[1] / shape[3], image.shape[0] / shape[2])
    if not len(det.scores):
        raise EvaluateError(f"{path}: the aligning detector found no face")
    return check_landmarks(det.landmarks[int(np.argmax(det.scores))], f"{path}: the aligning detector's face")
