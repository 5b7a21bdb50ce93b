"""WIDER FACE: images -> detections (stored per image) -> omz_ap64 and the official easy/medium/hard AP."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .adapters.retinaface import (Detections, RetinaFaceSettings, candidates, decode, merge, rescale, unmirror,
                                  unscale)
from .boxes import xywh_to_corners
from .config import DatasetDefinition, DatasetSpec, MetricSpec
from .dataset_files import check_images_exist, checked_file, reading_stored, subsample, unknown_names
from .datasets.wider import WiderGroundTruth, WiderImage, check_official_mat, load_official_mat, parse_bbx_gt
from .errors import EvaluateError
from .images import BrokenImage, read_image, to_input
from .jobs import Executor, Progress
from .metrics.detection import PRCurve, average_precision, match_image, wider_official_curves
from .predictions import load_predictions, save_detections, write_submission
from .results import MetricResult, RunOptions, with_reference
from .scaling import MAX_INPUT_PIXELS, ScaleRule, image_scales, scaled_size


def _input_shape(shape: tuple[int, ...], spec: DatasetSpec) -> tuple[int, ...]:
    """The network input the protocol feeds: the model's fixed one (which a resize step must
    match), resize x resize for a model of open size, or the model's own (open) shape for a
    protocol that scales each image (which needs a model of open size)."""
    open_size = min(shape[2:]) < 1
    where = f"protocol {spec.protocol} of {spec.name}"
    if spec.scale_rule is not None:
        if not open_size:
            raise EvaluateError(f"{where} feeds each image at its own size ({spec.scale_rule.describe()}); the model "
                                f"takes {shape[3]}x{shape[2]} only: use its <name>-dynamic file (omz_converter "
                                f"writes it for models with conversion.dynamic_input)")
        return shape
    if open_size:
        if not spec.resize:
            raise EvaluateError(f"{where} has no resize step, and the model's input size is open: add "
                                f"{{type: resize, size: N}} or use the fixed-size model")
        return (*shape[:2], spec.resize, spec.resize)
    if spec.resize and tuple(shape[2:]) != (spec.resize, spec.resize):
        raise EvaluateError(f"the config resizes to {spec.resize}, the model takes {shape[3]}x{shape[2]}")
    return shape


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
            results.append(with_reference(spec, curve.ap, faces_counted=counted,
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
                results.append(with_reference(spec, curve.ap, setting=spec.setting,
                                          faces_counted=int(sum(len(truth.keep[spec.setting][i]) for i in order))))
                curves[spec.name] = curve
    results.sort(key=lambda r: [s.name for s in specs].index(r.name))
    return results, curves


@dataclass(frozen=True)
class DetectJob:
    """A WIDER image path -> the network input at the model's size -> faces in image pixels."""

    folder: Path
    shape: tuple[int, ...]  # the network input, N C H W
    max_image_pixels: int
    settings: RetinaFaceSettings

    def load(self, path: str) -> tuple[np.ndarray, tuple[int, int]]:
        image = read_image(self.folder / path, gray=self.shape[1] == 1, max_pixels=self.max_image_pixels)
        return to_input(image, self.shape), (image.shape[1], image.shape[0])

    def preprocessing(self, path: str) -> tuple[Path, str]:
        """The file `load(path)` reads, and all else its result depends on (the input cache's key)."""
        return self.folder / path, f"detect to_input shape={self.shape} max_pixels={self.max_image_pixels}"

    def post(self, path: str, size: tuple[int, int], outputs: dict[str, np.ndarray]) -> Detections:
        height, width = self.shape[2], self.shape[3]
        det = decode(outputs, (width, height), self.settings)
        return rescale(det, size[0] / width, size[1] / height)


@dataclass(frozen=True)
class ScaledDetectJob:
    """A key (WIDER image path, pass, mirrored) -> the image resized by that pass's scale of the
    rule (cv2.resize by the factor, bilinear, as insightface), mirrored when asked -> the pass's
    candidate faces in image pixels, before the per-image merge (`merge_passes`)."""

    folder: Path
    channels: int
    max_image_pixels: int
    rule: ScaleRule
    settings: RetinaFaceSettings

    def keys(self, paths: list[str]) -> list[tuple[str, int, bool]]:
        """Every pass of every image, in insightface's order: scales, then unmirrored and mirrored."""
        flips = (False, True) if self.rule.flip else (False,)
        return [(p, k, f) for p in paths for k in range(max(1, len(self.rule.sizes))) for f in flips]

    def load(self, key: tuple[str, int, bool]) -> tuple[np.ndarray, tuple[float, int, int]]:
        path, k, flip = key
        image = read_image(self.folder / path, gray=self.channels == 1, max_pixels=self.max_image_pixels)
        scale = image_scales(self.rule, image.shape[0], image.shape[1])[k]
        height, width = scaled_size(image.shape[0], image.shape[1], scale)
        if height < 1 or width < 1 or height * width > MAX_INPUT_PIXELS:
            raise BrokenImage(f"{self.folder / path}: {image.shape[1]}x{image.shape[0]} scaled by {scale:.4g} "
                              f"({self.rule.describe()}) gives a {width}x{height} network input; expected 1 to "
                              f"{MAX_INPUT_PIXELS:,} pixels")
        if scale != 1.0:
            import cv2
            image = cv2.resize(image, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        if flip:
            image = image[:, ::-1]
        return to_input(image, (1, self.channels, *image.shape[:2])), (scale, image.shape[1], image.shape[0])

    def preprocessing(self, key: tuple[str, int, bool]) -> tuple[Path, str]:
        """The file `load(key)` reads, and all else its result depends on (the input cache's key)."""
        return self.folder / key[0], (f"detect {self.rule.describe()} pass={key[1]} flip={key[2]} "
                                      f"channels={self.channels} max_pixels={self.max_image_pixels}")

    def post(self, key: tuple[str, int, bool], info, outputs: dict[str, np.ndarray]) -> Detections:
        scale, width, height = info
        found = candidates(outputs, (int(width), int(height)), self.settings)
        return unscale(unmirror(found, int(width)) if key[2] else found, float(scale))


def merge_passes(found: dict[tuple[str, int, bool], Detections], settings: RetinaFaceSettings
                 ) -> dict[str, Detections]:
    """Each image's faces from the candidates of all its passes (concatenated in pass order, then
    NMS or box voting over them, as insightface merges its scales and flips)."""
    by_image: dict[str, list[tuple[tuple[str, int, bool], Detections]]] = {}
    for key, det in found.items():
        by_image.setdefault(key[0], []).append((key, det))
    out = {}
    for path, parts in by_image.items():
        parts.sort(key=lambda part: part[0])
        out[path] = merge(Detections(np.concatenate([d.boxes for _, d in parts]),
                                     np.concatenate([d.scores for _, d in parts]),
                                     np.concatenate([d.landmarks for _, d in parts])), settings)
    return out


def _run_scaled(executor: Executor, folder: Path, rule: ScaleRule, settings: RetinaFaceSettings,
                paths: list[str], options: RunOptions, progress: Progress | None
                ) -> tuple[dict[str, Detections], list[tuple[str, str]]]:
    """Every pass of every image through the executor, merged per image; an image any pass of
    which is broken is left out and reported once."""
    job = ScaledDetectJob(folder, executor.input.shape[1], options.max_image_pixels, rule, settings)
    found, broken_keys = executor.run(job, job.keys(paths), options.skip_broken, progress)
    broken = list({key[0]: (key[0], reason) for key, reason in broken_keys}.values())
    gone = {path for path, _ in broken}
    return merge_passes({k: v for k, v in found.items() if k[0] not in gone}, settings), broken


def evaluate_wider(executor: Executor | None, adapter: dict[str, Any], spec: DatasetSpec,
                   definition: DatasetDefinition, options: RunOptions, meta: dict[str, Any],
                   progress: Progress | None, warnings: list[str], hashes: dict[str, str],
                   timings: dict[str, float]) -> tuple[int, list[MetricResult], dict, list]:
    root = Path(options.dataset_root)
    annotation, text = checked_file(root, definition.annotation, "annotation", definition.annotation_sha256,
                                     options.strict, warnings, hashes)
    images = parse_bbx_gt(text, str(annotation))
    images = images[:subsample(options, len(images), "images")]
    folder = root / definition.images
    reuse = reading_stored(options)
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
        unknown_names(detections, {i.path for i in images}, "images")
        missing = [i.path for i in images if i.path not in detections]
        if missing:
            raise EvaluateError(f"stored predictions have no entry for {missing[0]} "
                                f"({len(missing)} of {len(images)} images missing)")
    else:
        if executor is None:
            raise EvaluateError("no stored predictions and no model to run")
        check_images_exist(folder, [i.path for i in images])
        shape = _input_shape(executor.input.shape, spec)
        settings = RetinaFaceSettings(**adapter)
        needed = [f"face_rpn_{kind}_stride{s}" for s in settings.strides
                  for kind in ("cls_prob_reshape", "bbox_pred", "landmark_pred")]
        absent = [n for n in needed if n not in executor.outputs]
        if absent:
            raise EvaluateError(f"the retinaface adapter needs output {absent[0]!r}, which the model lacks "
                                f"(it has: {', '.join(executor.outputs)})")
        began = time.perf_counter()
        if spec.scale_rule is not None:
            detections, broken = _run_scaled(executor, folder, spec.scale_rule, settings, [i.path for i in images],
                                             options, progress)
        else:
            job = DetectJob(folder, shape, options.max_image_pixels, settings)
            detections, broken = executor.run(job, [i.path for i in images], options.skip_broken, progress)
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
