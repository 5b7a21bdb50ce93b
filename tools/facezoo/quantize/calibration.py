"""Calibration and validation subsets drawn from a model's accuracy dataset, deterministic and
disjoint: validation is the first `validation_size` images (WIDER) or pairs (LFW), which is what the
evaluator's subsample takes; calibration is `subset_size` images spread evenly over the images no
validation item uses."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facezoo.common.safeio import read_text_limited
from facezoo.evaluate.adapters.alignment import align_face
from facezoo.evaluate.config import DatasetDefinition
from facezoo.evaluate.datasets.landmarks import parse_landmarks
from facezoo.evaluate.datasets.lfw import make_pairs, parse_pairs
from facezoo.evaluate.datasets.wider import parse_bbx_gt
from facezoo.evaluate.dataset_root import FoundDataset, find_dataset
from facezoo.evaluate.errors import EvaluateError
from facezoo.evaluate.images import read_image, to_blob

from .errors import QuantizeError

MAX_TEXT = 256 << 20  # an annotation, pairs or landmarks file (as accuracy_check)
MAX_SUBFOLDERS = 256  # --dataset_dir: subfolders looked into for the dataset


@dataclass(frozen=True)
class Subsets:
    """What quantization runs on: `validation_size` items for the evaluator (images or pairs), the
    images they use in evaluation order, and the calibration images (relative to `folder`)."""

    found: FoundDataset
    folder: Path
    validation_size: int
    validation_images: tuple[str, ...]
    calibration: tuple[str, ...]
    landmarks: dict | None = None

    @property
    def calibration_sha256(self) -> str:
        """The calibration subset's identity: sha256 of its image list, one path per line."""
        return hashlib.sha256("\n".join(self.calibration).encode("utf-8")).hexdigest()


def locate_dataset(definitions: dict[str, DatasetDefinition], wanted: str, dataset_dir: Path) -> FoundDataset:
    """The dataset `wanted` (or one of its kind) at `dataset_dir` or in one of its subfolders, so a
    folder of datasets serves every model."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise QuantizeError(f"{dataset_dir}: --dataset_dir " + ("is not a folder" if dataset_dir.exists()
                                                                  else "not found"))
    try:
        return find_dataset(definitions, wanted, dataset_dir)
    except EvaluateError as first:
        with os.scandir(dataset_dir) as entries:
            subfolders = sorted(e.path for _, e in zip(range(MAX_SUBFOLDERS), entries)
                                if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
        for sub in subfolders:
            try:
                return find_dataset(definitions, wanted, Path(sub))
            except EvaluateError:
                continue
        kind = "WIDER FACE" if definitions[wanted].type == "wider" else "LFW"
        raise QuantizeError(f"{dataset_dir}: --dataset_dir holds no {kind} dataset for {wanted}, neither itself "
                            f"nor a subfolder ({first})") from None


def _spread(items: list[str], count: int) -> tuple[str, ...]:
    """`count` of `items`, evenly spaced, first and last included."""
    picked = np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))
    return tuple(items[i] for i in picked)


def make_subsets(found: FoundDataset, validation_size: int, subset_size: int) -> Subsets:
    """Validation and calibration subsets of a found dataset; too small a dataset is an error
    saying how many items it offers."""
    d, root = found.definition, found.root
    folder = root / d.images
    if d.type == "wider":
        images = [i.path for i in parse_bbx_gt(read_text_limited(root / d.annotation, MAX_TEXT, "annotation",
                                                                 QuantizeError), str(root / d.annotation))]
        if validation_size >= len(images):
            raise QuantizeError(f"validation_size {validation_size}: {d.name} in {root} has {len(images)} images; "
                                f"calibration needs some of them besides the validation images")
        validation, rest = images[:validation_size], images[validation_size:]
    else:
        if d.alignment == "detector":
            raise QuantizeError(f"dataset {d.name}: aligned by a detector, which omz_quantizer does not run; "
                                f"use an aligned or landmarked LFW dataset")
        text = (read_text_limited(root / d.pairs, MAX_TEXT, "pairs file", QuantizeError) if d.pairs
                else make_pairs(folder, d.generate_pairs_folds))
        pairs = parse_pairs(text, str(root / d.pairs) if d.pairs else f"pairs generated from {folder}")
        if validation_size >= len(pairs):
            raise QuantizeError(f"validation_size {validation_size}: {d.name} in {root} has {len(pairs)} pairs; "
                                f"calibration needs images of other pairs")
        validation = sorted(set(pairs.first[:validation_size]) | set(pairs.second[:validation_size]))
        rest = sorted((set(pairs.first) | set(pairs.second)) - set(validation))
    if subset_size > len(rest):
        raise QuantizeError(f"subset_size {subset_size}: {d.name} in {root} has only {len(rest)} images outside "
                            f"the {validation_size} validation {'images' if d.type == 'wider' else 'pairs'}; "
                            f"lower --subset_size or the recipe's validation_size")
    landmarks = None
    if d.type == "lfw" and d.alignment == "landmarks":
        landmarks = parse_landmarks(read_text_limited(root / d.landmarks, MAX_TEXT, "landmarks", QuantizeError),
                                    str(root / d.landmarks))
    return Subsets(found, folder, validation_size, tuple(validation), _spread(rest, subset_size), landmarks)


def load_blob(subsets: Subsets, path: str, shape: tuple[int, ...]) -> np.ndarray:
    """An image of the dataset as the network takes it (as accuracy_check prepares it)."""
    image = read_image(subsets.folder / path, gray=shape[1] == 1)
    if subsets.landmarks is not None:
        image = align_face(image, subsets.landmarks[path], shape[2])
    return to_blob(image, shape)
