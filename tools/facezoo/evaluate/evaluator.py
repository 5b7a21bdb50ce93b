"""accuracy_check's work: dataset + converted model -> stored predictions -> metrics vs references."""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facezoo.common.safeio import read_text_limited

from .adapters.alignment import align_face
from .adapters.retinaface import Detections, RetinaFaceSettings, decode, rescale
from .config import METRIC_DATASETS, AccuracyConfig, DatasetDefinition, DatasetSpec, MetricSpec
from .datasets.landmarks import check_landmarks, parse_landmarks
from .datasets.lfw import Pairs, make_pairs, parse_pairs
from .datasets.wider import WiderGroundTruth, WiderImage, check_official_mat, load_official_mat, parse_bbx_gt
from .errors import EvaluateError
from .images import MAX_PIXELS, read_image, to_blob
from .launchers.base import Launcher
from .metrics.detection import PRCurve, average_precision, match_image, wider_official_curves
from .metrics.verification import VerificationResult, pair_distances, verification_accuracy
from .pipeline import Progress, run_inference
from .predictions import load_predictions, save_detections, save_embeddings, write_submission
from .boxes import xywh_to_corners


@dataclass
class MetricResult:
    """A metric's value and whether it lies within reference +- threshold (None: no reference)."""

    name: str
    type: str
    value: float
    reference: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.reference is None:
            return None
        return bool(abs(self.value - self.reference) <= self.threshold + 1e-12)


@dataclass
class Evaluation:
    """Everything a report shows."""

    model: str
    dataset: str
    launcher: str
    images: int
    metrics: list[MetricResult]
    curves: dict[str, Any]
    timings: dict[str, float]
    hashes: dict[str, str]
    warnings: list[str]
    broken: list[tuple[str, str]]
    run: dict[str, Any] = field(default_factory=dict)  # what was measured where: model file, precision, machine


@dataclass(frozen=True)
class RunOptions:
    """What the command line chose."""

    dataset_root: Path
    subsample_size: int | None = None
    skip_broken: bool = False
    strict: bool = False
    stored_predictions: tuple[Path, ...] = ()
    submission_dir: Path | None = None
    max_image_pixels: int = MAX_PIXELS


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


TEXT_LIMIT = 256 << 20  # bytes of an annotation, pairs or landmarks file


def _checked_file(root: Path, relative: str | None, what: str, expected_sha: str | None, strict: bool,
                  warnings: list[str], hashes: dict[str, str]) -> tuple[Path, str]:
    """A dataset file's path and UTF-8 text (a regular file of at most TEXT_LIMIT bytes), its
    sha256 recorded and compared with the definition's."""
    if relative is None:
        raise EvaluateError(f"dataset definition: {what} is not defined")
    path = Path(root) / relative
    if not path.exists():
        raise EvaluateError(f"{path}: {what} not found (dataset root -s {root})")
    text = read_text_limited(path, TEXT_LIMIT, what, EvaluateError)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()  # valid UTF-8 round-trips to the same bytes
    hashes[what] = digest
    if expected_sha and digest != expected_sha:
        message = f"{path}: sha256 {digest} differs from the expected {expected_sha}"
        if strict:
            raise EvaluateError(message + " (--strict)")
        warnings.append(message)
    return path, text


def _check_images_exist(folder: Path, relative: list[str]) -> None:
    """Missing images stop the run; ones that exist but are not readable images are found (and
    skipped under --skip_broken) when they are read."""
    for r in relative:
        if not (folder / r).exists():
            raise EvaluateError(f"{folder / r}: image not found")


def _subsample(options: RunOptions, count: int, unit: str) -> int:
    """How many images or pairs to use: --subsample_size, which must lie in 1..count."""
    size = options.subsample_size
    if size is None:
        return count
    if not 1 <= size <= count:
        raise EvaluateError(f"--subsample_size {size}: expected 1 to {count} (the dataset has {count} {unit})")
    return size


def _reading_stored(options: RunOptions) -> bool:
    """Whether the stored predictions are read (every given path exists) rather than written."""
    paths = options.stored_predictions
    return bool(paths) and all(Path(p).exists() or Path(p).is_symlink() for p in paths)


def _unknown_names(stored: dict[str, Any], wanted: set[str], what: str) -> None:
    """Stored predictions must be of this dataset's images."""
    extra = sorted(set(stored) - wanted)
    if extra:
        raise EvaluateError(f"--stored_predictions: {extra[0]} is not among the dataset's {what} "
                            f"({len(extra)} such entries): predictions of another dataset?")


def _reference(spec: MetricSpec, value: float, **details) -> MetricResult:
    return MetricResult(spec.name, spec.type, float(value), spec.reference, spec.threshold, details)


# --- WIDER FACE ---

def detection_metrics(specs: tuple[MetricSpec, ...], images: list[WiderImage], detections: dict[str, Detections],
                      truth: WiderGroundTruth | None) -> tuple[list[MetricResult], dict[str, PRCurve]]:
    """omz_ap64 and wider_official over the images that have predictions (`truth`: the official
    ground truth, needed by wider_official)."""
    results, curves = [], {}
    for spec in specs:
        if spec.type == "omz_ap64":
            matches = []
            for image in images:
                det = detections.get(image.path, Detections.empty())
                height = image.faces[:, 3]
                ignored = (height < spec.min_height) | (height <= 0) | (image.faces[:, 2] <= 0)
                if spec.max_height is not None:
                    ignored |= height >= spec.max_height
                if spec.ignore_invalid:
                    ignored |= image.invalid
                matches.append(match_image(det.boxes, det.scores, xywh_to_corners(image.faces), ignored,
                                           spec.iou_threshold, plus_one=False,
                                           multiple_matches_per_ignored=spec.multiple_matches_per_ignored,
                                           prefer_counted_faces=spec.prefer_counted_faces))
            curve = average_precision(matches)
            counted = sum(m.num_faces for m in matches)
            results.append(_reference(spec, curve.ap, faces_counted=counted,
                                      faces_ignored=int(sum(len(i.faces) for i in images) - counted)))
            curves[spec.name] = curve
    official = [spec for spec in specs if spec.type == "wider_official"]
    if official:
        if truth is None:
            raise EvaluateError(f"{official[0].name}: needs the official ground truth (.mat files)")
        index = {p: i for i, p in enumerate(truth.paths)}
        wanted = {i.path for i in images}
        unknown = sorted(wanted - set(index))
        if unknown:
            raise EvaluateError(f"{truth.folder}: image {unknown[0]} is not in the official ground truth")
        order = [i for i, p in enumerate(truth.paths) if p in wanted]
        predictions = []
        for i in order:
            det = detections.get(truth.paths[i], Detections.empty())
            xywh = np.concatenate([det.boxes[:, :2], det.boxes[:, 2:] - det.boxes[:, :2]], axis=1)
            predictions.append((xywh, det.scores))
        for threshold in sorted({spec.iou_threshold for spec in official}):
            chosen = [spec for spec in official if spec.iou_threshold == threshold]
            by_setting = wider_official_curves(predictions, [truth.faces[i] for i in order],
                                               {spec.setting: [truth.keep[spec.setting][i] for i in order]
                                                for spec in chosen}, threshold)
            for spec in chosen:
                curve = by_setting[spec.setting]
                results.append(_reference(spec, curve.ap, setting=spec.setting,
                                          faces_counted=int(sum(len(truth.keep[spec.setting][i]) for i in order))))
                curves[spec.name] = curve
    results.sort(key=lambda r: [s.name for s in specs].index(r.name))
    return results, curves


def evaluate_wider(launcher: Launcher | None, adapter: dict[str, Any], spec: DatasetSpec,
                   definition: DatasetDefinition, options: RunOptions, meta: dict[str, Any],
                   progress: Progress | None, warnings: list[str], hashes: dict[str, str],
                   timings: dict[str, float]) -> tuple[int, list[MetricResult], dict, list]:
    root = Path(options.dataset_root)
    annotation, text = _checked_file(root, definition.annotation, "annotation", definition.annotation_sha256,
                                     options.strict, warnings, hashes)
    images = parse_bbx_gt(text, str(annotation))
    images = images[:_subsample(options, len(images), "images")]
    folder = root / definition.images
    reuse = _reading_stored(options)
    broken: list = []
    truth = None
    official = [m for m in spec.metrics if m.type == "wider_official"]
    if official:
        if not definition.ground_truth:
            raise EvaluateError(f"{official[0].name}: the dataset definition has no ground_truth folder "
                                f"(the official .mat files)")
        check_official_mat(root / definition.ground_truth, definition.split)
        # read (and import SciPy) while the images are inferred: a third of a second otherwise spent after
        reader = ThreadPoolExecutor(max_workers=1)
        truth = reader.submit(load_official_mat, root / definition.ground_truth, definition.split)
        reader.shutdown(wait=False)
    if reuse:
        detections = load_predictions(list(options.stored_predictions), meta, "detections")
        _unknown_names(detections, {i.path for i in images}, "images")
        missing = [i.path for i in images if i.path not in detections]
        if missing:
            raise EvaluateError(f"stored predictions have no entry for {missing[0]} "
                                f"({len(missing)} of {len(images)} images missing)")
    else:
        if launcher is None:
            raise EvaluateError("no stored predictions and no model to run")
        _check_images_exist(folder, [i.path for i in images])
        shape = launcher.input.shape
        if spec.resize and tuple(shape[2:]) != (spec.resize, spec.resize):
            raise EvaluateError(f"the config resizes to {spec.resize}, the model takes {shape[3]}x{shape[2]}")
        settings = RetinaFaceSettings(**adapter)
        needed = [f"face_rpn_{kind}_stride{s}" for s in settings.strides
                  for kind in ("cls_prob_reshape", "bbox_pred", "landmark_pred")]
        absent = [n for n in needed if n not in launcher.outputs]
        if absent:
            raise EvaluateError(f"the retinaface adapter needs output {absent[0]!r}, which the model lacks "
                                f"(it has: {', '.join(launcher.outputs)})")
        sizes: dict[str, tuple[int, int]] = {}

        def load(path: str) -> np.ndarray:
            image = read_image(folder / path, gray=shape[1] == 1, max_pixels=options.max_image_pixels)
            sizes[path] = (image.shape[1], image.shape[0])
            return to_blob(image, shape)

        def post(path: str, outputs: dict[str, np.ndarray]) -> Detections:
            w, h = sizes[path]
            det = decode(outputs, (shape[3], shape[2]), settings)
            return rescale(det, w / shape[3], h / shape[2])

        began = time.perf_counter()
        detections, broken = run_inference(launcher, [i.path for i in images], load, post,
                                           options.skip_broken, progress)
        timings["inference_s"] = time.perf_counter() - began
        for path in options.stored_predictions:
            save_detections(path, detections, meta)
        images = [i for i in images if i.path in detections]
        if not images:
            raise EvaluateError(f"no image could be read: all {len(broken)} are broken, e.g. {broken[0][1]}")
    if options.submission_dir:
        write_submission(options.submission_dir, {i.path: detections[i.path] for i in images})
    began = time.perf_counter()
    metrics, curves = detection_metrics(spec.metrics, images, detections, truth.result() if truth else None)
    timings["metrics_s"] = time.perf_counter() - began
    return len(images), metrics, {k: {"precision": v.precision, "recall": v.recall} for k, v in curves.items()}, broken


# --- LFW ---

def evaluate_lfw(launcher: Launcher | None, adapter: dict[str, Any], spec: DatasetSpec,
                 definition: DatasetDefinition, options: RunOptions, meta: dict[str, Any],
                 progress: Progress | None, warnings: list[str], hashes: dict[str, str],
                 timings: dict[str, float], aligner: Launcher | None = None) -> tuple[int, list[MetricResult], dict, list]:
    root = Path(options.dataset_root)
    folder = root / definition.images
    if definition.pairs:
        pairs_path, text = _checked_file(root, definition.pairs, "pairs", definition.pairs_sha256, options.strict,
                                         warnings, hashes)
        pairs = parse_pairs(text, str(pairs_path))
    else:
        if not folder.is_dir():
            raise EvaluateError(f"{folder}: image folder not found (dataset root -s {root})")
        text = make_pairs(folder, definition.generate_pairs_folds)
        hashes["pairs (generated)"] = hashlib.sha256(text.encode()).hexdigest()
        pairs = parse_pairs(text, f"pairs generated from {folder}")
    size = _subsample(options, len(pairs), "pairs")
    if size < len(pairs):
        keep = np.arange(len(pairs)) < size
        pairs = Pairs(pairs.first[:size], pairs.second[:size], pairs.same[keep], pairs.fold[keep])
    names = sorted(set(pairs.first) | set(pairs.second))
    reuse = _reading_stored(options)
    broken: list = []
    if reuse:
        embeddings = load_predictions(list(options.stored_predictions), meta, "embeddings")
        _unknown_names(embeddings, set(names), "images")
    else:
        if launcher is None:
            raise EvaluateError("no stored predictions and no model to run")
        for path in names:
            if not (folder / path).exists():
                which = [i for i, (a, b) in enumerate(zip(pairs.first, pairs.second)) if path in (a, b)][0]
                raise EvaluateError(f"{folder / path}: image not found (named by pair {which + 1})")
        shape = launcher.input.shape
        landmarks = None
        if definition.alignment == "landmarks":
            if not definition.landmarks:
                raise EvaluateError(f"dataset {definition.name}: alignment 'landmarks' needs a landmarks file")
            landmarks_path, text = _checked_file(root, definition.landmarks, "landmarks", None, options.strict,
                                                 warnings, hashes)
            landmarks = parse_landmarks(text, str(landmarks_path))
            absent = [n for n in names if n not in landmarks]
            if absent:
                raise EvaluateError(f"{landmarks_path}: no landmarks for {absent[0]} ({len(absent)} of "
                                    f"{len(names)} images have none)")
        if definition.alignment == "detector" and aligner is None:
            raise EvaluateError(f"dataset {definition.name}: alignment 'detector' needs --aligner_model")

        def face(path: str) -> np.ndarray:
            image = read_image(folder / path, max_pixels=options.max_image_pixels)
            if definition.alignment == "landmarks":
                image = align_face(image, landmarks[path], shape[2])
            elif definition.alignment == "detector":
                image = align_face(image, detect_landmarks(aligner, image, path), shape[2])
            return to_blob(image, shape)

        def load(key: tuple[str, bool]) -> np.ndarray:
            blob = face(key[0])
            return np.ascontiguousarray(blob[..., ::-1]) if key[1] else blob

        output = (adapter.get("outputs") or [None])[0]
        if output is None:
            if len(launcher.outputs) != 1:
                raise EvaluateError(f"the model has {len(launcher.outputs)} outputs; name the embedding in "
                                    f"the adapter's 'outputs'")
            output = launcher.outputs[0]
        elif output not in launcher.outputs:
            raise EvaluateError(f"{spec.name}: adapter output {output!r} is not an output of the model "
                                f"(it has: {', '.join(launcher.outputs)})")
        flip = adapter.get("flip", True)
        keys = [(n, f) for n in names for f in ((False, True) if flip else (False,))]
        began = time.perf_counter()
        raw, broken = run_inference(launcher, keys, load, lambda k, o: o[output].reshape(-1).astype(np.float64),
                                    options.skip_broken, progress)
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
            results.append(_reference(m, result.mean, std=result.std, folds=result.fold_accuracy.tolist(),
                                      thresholds=result.fold_threshold.tolist(), pairs=int(usable.sum())))
        else:
            results.append(_reference(m, result.tar_at_far, far=m.far, pairs=int(usable.sum())))
        curves["roc"] = {"far": result.roc_far, "tar": result.roc_tar}
    timings["metrics_s"] = time.perf_counter() - began
    return len(names), results, curves, broken


def detect_landmarks(detector: Launcher, image: np.ndarray, path: str) -> np.ndarray:
    """Five landmarks of the most confident face the detector finds (for LFW alignment)."""
    shape = detector.input.shape
    found: list[Detections] = []
    detector.infer([(path, to_blob(image, shape))],
                   lambda _, outputs: found.append(decode(outputs, (shape[3], shape[2]))))
    det = rescale(found[0], image.shape[1] / shape[3], image.shape[0] / shape[2])
    if not len(det.scores):
        raise EvaluateError(f"{path}: the aligning detector found no face")
    return check_landmarks(det.landmarks[int(np.argmax(det.scores))], f"{path}: the aligning detector's face")


def evaluate(config: AccuracyConfig, spec: DatasetSpec, definition: DatasetDefinition, launcher: Launcher | None,
             adapter: dict[str, Any], options: RunOptions, model_hashes: dict[str, str],
             progress: Progress | None = None, aligner: Launcher | None = None) -> Evaluation:
    """Run one dataset entry of a model's config."""
    kinds = {METRIC_DATASETS[m.type] for m in spec.metrics}
    if kinds != {definition.type}:
        raise EvaluateError(f"{config.path}: dataset {spec.name!r} is a {definition.type} dataset; its metrics "
                            f"({', '.join(m.type for m in spec.metrics)}) are not")
    warnings: list[str] = []
    hashes = dict(model_hashes)
    timings: dict[str, float] = {}
    meta = {"model": config.model, "dataset": definition.name, "adapter": adapter, "resize": spec.resize,
            "subsample_size": options.subsample_size}
    if "model" in model_hashes:  # unknown when only stored predictions are given
        meta["model_sha256"] = model_hashes["model"]
    began = time.perf_counter()
    run = evaluate_wider if definition.type == "wider" else evaluate_lfw
    extra = {"aligner": aligner} if definition.type == "lfw" else {}
    images, metrics, curves, broken = run(launcher, adapter, spec, definition, options, meta, progress,
                                          warnings, hashes, timings, **extra)
    timings["total_s"] = time.perf_counter() - began
    return Evaluation(config.model, definition.name, launcher.description if launcher else "stored predictions",
                      images, metrics, curves, timings, hashes, warnings, broken)
