"""Box geometry shared by NMS and matching: corner boxes (x1, y1, x2, y2), vectorised."""
from __future__ import annotations

import numpy as np


def xywh_to_corners(boxes: np.ndarray) -> np.ndarray:
    """(x, y, w, h) -> (x1, y1, x2, y2) with x2 = x + w (no +1)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4) as an (N, M) array.

    plus_one: the pixel-inclusive convention of the VOC devkit and the WIDER evaluation code
    (width = x2 - x1 + 1). Pairs that do not overlap get 0."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    one = 1.0 if plus_one else 0.0
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + one
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + one
    inter = w * h
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    iou[(w <= 0) | (h <= 0) | ~np.isfinite(iou)] = 0.0
    return iou
