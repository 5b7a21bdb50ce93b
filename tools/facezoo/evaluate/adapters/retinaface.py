"""RetinaFace outputs (insightface's MXNet layout) to face boxes, scores and five landmarks."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import EvaluateError
from .nms import nms
from .voting import box_vote

# insightface's anchor settings for RetinaFace: base size 16, ratio 1, two scales per stride
ANCHOR_SCALES = {32: (32.0, 16.0), 16: (8.0, 4.0), 8: (2.0, 1.0)}
BASE_SIZE = 16


@dataclass(frozen=True)
class Detections:
    """Faces found in one image: corner boxes (x1, y1, x2, y2), scores, landmarks (N, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))


@dataclass(frozen=True)
class RetinaFaceSettings:
    """Decoding and suppression settings.

    Defaults are insightface's own test settings (score >= 0.02, one NMS over all strides at
    IoU 0.4 with the +1 pixel convention, boxes clipped to the input). `nms_per_stride=True,
    score_threshold=0, nms_threshold=0.5, nms_plus_one=False, clip=False` is Open Model Zoo's
    retinaface adapter. `box_voting=True` replaces the final NMS by insightface's box voting
    (adapters/voting.py, at nms_threshold), as its multi-scale test does."""

    score_threshold: float = 0.02
    nms_threshold: float = 0.4
    nms_per_stride: bool = False
    nms_plus_one: bool = True
    clip: bool = True
    box_voting: bool = False
    strides: tuple[int, ...] = (32, 16, 8)


@lru_cache(maxsize=32)
def anchors(stride: int, height: int, width: int) -> np.ndarray:
    """Anchors of one stride as (height * width * A, 4) corner boxes, in (y, x, anchor) order,
    with insightface's pixel-inclusive centres: an anchor of size s spans c - (s-1)/2 .. c + (s-1)/2
    around c = 7.5 plus the cell offset."""
    sizes = BASE_SIZE * np.array(ANCHOR_SCALES[stride])
    centre = (BASE_SIZE - 1) / 2
    base = np.stack([centre - 0.5 * (sizes - 1), centre - 0.5 * (sizes - 1),
                     centre + 0.5 * (sizes - 1), centre + 0.5 * (sizes - 1)], axis=1)
    ys, xs = np.meshgrid(np.arange(height) * stride, np.arange(width) * stride, indexing="ij")
    shifts = np.stack([xs, ys, xs, ys], axis=-1).reshape(-1, 1, 4)
    grid = (shifts + base[None]).reshape(-1, 4).astype(np.float64)
    grid.flags.writeable = False  # cached: shared by every call
    return grid


def _per_anchor(tensor: np.ndarray, per: int) -> np.ndarray:
    """(1, A * per, H, W) -> (H * W * A, per), matching the anchor order."""
    return np.transpose(tensor[0], (1, 2, 0)).reshape(-1, per)


def decode_stride(cls_prob: np.ndarray, bbox: np.ndarray, landmark: np.ndarray, stride: int,
                  score_threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, corner boxes and landmarks of the anchors of one stride scoring at least
    `score_threshold`, in input pixels, in anchor order."""
    count = len(ANCHOR_SCALES[stride])
    _, channels, height, width = cls_prob.shape
    if channels != 2 * count or bbox.shape[1] != 4 * count or landmark.shape[1] != 10 * count:
        raise EvaluateError(f"stride {stride}: expected {2 * count}/{4 * count}/{10 * count} channels of "
                            f"scores/boxes/landmarks, found {channels}/{bbox.shape[1]}/{landmark.shape[1]}")
    scores = _per_anchor(cls_prob[:, count:], 1)[:, 0].astype(np.float64)  # face = second half
    chosen = np.flatnonzero(scores >= score_threshold)
    base = anchors(stride, height, width)[chosen]
    scores = scores[chosen]
    deltas = _per_anchor(bbox, 4)[chosen].astype(np.float64)
    points = _per_anchor(landmark, 10)[chosen].astype(np.float64).reshape(-1, 5, 2)
    widths = base[:, 2] - base[:, 0] + 1
    heights = base[:, 3] - base[:, 1] + 1
    cx = base[:, 0] + 0.5 * (widths - 1)
    cy = base[:, 1] + 0.5 * (heights - 1)
    px = deltas[:, 0] * widths + cx
    py = deltas[:, 1] * heights + cy
    pw = np.exp(deltas[:, 2]) * widths
    ph = np.exp(deltas[:, 3]) * heights
    boxes = np.stack([px - 0.5 * (pw - 1), py - 0.5 * (ph - 1), px + 0.5 * (pw - 1), py + 0.5 * (ph - 1)], axis=1)
    marks = np.stack([points[..., 0] * widths[:, None] + cx[:, None],
                      points[..., 1] * heights[:, None] + cy[:, None]], axis=-1)
    return scores, boxes, marks


def candidates(outputs: dict[str, np.ndarray], input_size: tuple[int, int],
               settings: RetinaFaceSettings = RetinaFaceSettings()) -> Detections:
    """Every anchor of every stride scoring at least the threshold, decoded (and clipped to the
    input when settings.clip), before the final suppression (`merge`); with nms_per_stride each
    stride's NMS is applied already. Coordinates in input pixels (w, h); any input size (the
    anchors follow each output's feature-map size)."""
    parts = []
    for stride in settings.strides:
        names = [f"face_rpn_{kind}_stride{stride}" for kind in ("cls_prob_reshape", "bbox_pred", "landmark_pred")]
        missing = [n for n in names if n not in outputs]
        if missing:
            raise EvaluateError(f"the model has no output {missing[0]!r} (it has: {', '.join(sorted(outputs))})")
        scores, boxes, marks = decode_stride(*(outputs[n] for n in names), stride, settings.score_threshold)
        if settings.clip:
            w, h = input_size
            boxes = np.clip(boxes, 0, [w - 1, h - 1, w - 1, h - 1])
        if settings.nms_per_stride:
            keep = nms(boxes, scores, settings.nms_threshold, plus_one=settings.nms_plus_one)
            scores, boxes, marks = scores[keep], boxes[keep], marks[keep]
        parts.append((scores, boxes, marks))
    return Detections(np.concatenate([p[1] for p in parts]), np.concatenate([p[0] for p in parts]),
                      np.concatenate([p[2] for p in parts]))


def merge(found: Detections, settings: RetinaFaceSettings = RetinaFaceSettings()) -> Detections:
    """The faces among candidates (of one input, or of several inputs of one image in the same
    coordinates): NMS over all of them, or insightface's box voting; none with nms_per_stride,
    whose suppression `candidates` applied."""
    if settings.nms_per_stride:
        return found
    if settings.box_voting:
        return Detections(*box_vote(found.boxes, found.scores, found.landmarks, settings.nms_threshold))
    keep = nms(found.boxes, found.scores, settings.nms_threshold, plus_one=settings.nms_plus_one)
    return Detections(found.boxes[keep], found.scores[keep], found.landmarks[keep])


def decode(outputs: dict[str, np.ndarray], input_size: tuple[int, int],
           settings: RetinaFaceSettings = RetinaFaceSettings()) -> Detections:
    """All strides decoded, thresholded and suppressed; coordinates in input pixels (w, h)."""
    return merge(candidates(outputs, input_size, settings), settings)


LANDMARKS_MIRRORED = [1, 0, 2, 4, 3]  # eyes and mouth corners swap sides in a mirrored image


def unmirror(found: Detections, width: int) -> Detections:
    """Detections on a left-right mirrored input of `width` pixels, in the unmirrored input's
    coordinates (insightface's x -> width - x - 1, landmarks swapped back to their sides)."""
    boxes = found.boxes.copy()
    boxes[:, [0, 2]] = width - found.boxes[:, [2, 0]] - 1
    marks = found.landmarks[:, LANDMARKS_MIRRORED].copy()
    marks[..., 0] = width - marks[..., 0] - 1
    return Detections(boxes, found.scores, marks)


def unscale(detections: Detections, scale: float) -> Detections:
    """Coordinates divided by `scale` (insightface's arithmetic): from an input made by resizing
    the image by `scale` back to the image."""
    return Detections(detections.boxes / scale, detections.scores, detections.landmarks / scale)


def rescale(detections: Detections, sx: float, sy: float) -> Detections:
    """Coordinates multiplied by (sx, sy): from the network input back to the original image."""
    factor = np.array([sx, sy, sx, sy])
    return Detections(detections.boxes * factor, detections.scores, detections.landmarks * np.array([sx, sy]))
