"""Greedy non-maximum suppression, exact, without a Python loop over boxes."""
from __future__ import annotations

import numpy as np

from ..boxes import iou_matrix

BLOCK = 256


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
        alive = ~(iou_matrix(kept_boxes, block, plus_one) > iou_threshold).any(axis=0)
        index = np.flatnonzero(alive)
        survivors = _within_block(iou_matrix(block[index], block[index], plus_one) > iou_threshold)
        chosen = index[survivors] + start
        kept.append(chosen)
        kept_boxes = np.concatenate([kept_boxes, boxes[chosen]])
    return order[np.concatenate(kept)] if kept else np.zeros(0, dtype=np.int64)
