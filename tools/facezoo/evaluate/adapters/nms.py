"""Greedy non-maximum suppression, exact, without a Python loop over boxes."""
from __future__ import annotations

import numpy as np

BLOCK = 256


def _overlapping(a: np.ndarray, b: np.ndarray, threshold: float, plus_one: bool) -> np.ndarray:
    """(len(a), len(b)) booleans: IoU > threshold, tested as intersection > threshold x union
    (no division; float64, so the comparison is the same as on the quotient up to rounding)."""
    one = 1.0 if plus_one else 0.0
    w = np.minimum(a[:, None, 2], b[None, :, 2])
    w -= np.maximum(a[:, None, 0], b[None, :, 0])
    w += one
    np.maximum(w, 0, out=w)
    h = np.minimum(a[:, None, 3], b[None, :, 3])
    h -= np.maximum(a[:, None, 1], b[None, :, 1])
    h += one
    np.maximum(h, 0, out=h)
    w *= h  # intersection
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    union = area_a[:, None] + area_b[None, :]
    union -= w
    union *= threshold
    return (w > union) & (w > 0)


def _within_block(overlaps: np.ndarray) -> np.ndarray:
    """Greedy keep flags for boxes in score order, given `overlaps[j, i]` = box j suppresses box i
    (j < i). The greedy rule keep[i] = no kept j < i suppresses i is solved as a fixed point;
    each round settles at least the next undecided box, and in practice a few rounds settle all."""
    n = len(overlaps)
    suppressors = np.triu(overlaps, k=1)
    keep = np.ones(n, dtype=bool)
    while True:
        updated = ~(suppressors & keep[:, None]).any(axis=0)
        if np.array_equal(updated, keep):
            return keep
        keep = updated


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, plus_one: bool = False) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, in descending score order (ties in given order).
    Works in blocks of score-ordered boxes: each block is first pruned by the boxes kept so far,
    then solved within itself; memory stays O(BLOCK x kept)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order]
    kept: list[np.ndarray] = []
    kept_boxes = np.zeros((0, 4))
    for start in range(0, len(order), BLOCK):
        block = boxes[start:start + BLOCK]
        alive = ~_overlapping(kept_boxes, block, iou_threshold, plus_one).any(axis=0)
        index = np.flatnonzero(alive)
        survivors = _within_block(_overlapping(block[index], block[index], iou_threshold, plus_one))
        chosen = index[survivors] + start
        kept.append(chosen)
        kept_boxes = np.concatenate([kept_boxes, boxes[chosen]])
    return order[np.concatenate(kept)] if kept else np.zeros(0, dtype=np.int64)
