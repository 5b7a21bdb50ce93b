"""Greedy non-maximum suppression, exact, without a Python loop over boxes.

Greedy NMS keeps a box when no kept box of higher score overlaps it by more than the threshold.
Only overlapping pairs matter, so they are found first (boxes sorted by x1: a box can only
overlap the boxes whose x1 lies before its x2), then the rule keep[i] = not any(keep[j] for the
higher-scoring j overlapping i) is solved as a fixed point over that sparse set of pairs. Each
round settles at least the next undecided box in score order; in practice a few rounds settle all.
"""
from __future__ import annotations

import numpy as np

PAIRS_PER_CHUNK = 1 << 22  # candidate pairs examined at once: bounds memory whatever the boxes


def _candidate_ranges(x1: np.ndarray, x2: np.ndarray, one: float) -> tuple[np.ndarray, np.ndarray]:
    """With boxes sorted by x1: for each box, the range of later boxes that start before it ends."""
    starts = np.arange(1, len(x1) + 1)
    ends = np.searchsorted(x1, x2 + one, side="left")
    return starts, np.maximum(ends, starts)


def overlapping_pairs(boxes: np.ndarray, threshold: float, plus_one: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (a, b), a != b, of corner boxes whose IoU exceeds `threshold` (each pair once)."""
    one = 1.0 if plus_one else 0.0
    order = np.argsort(boxes[:, 0], kind="stable")
    b = boxes[order]
    area = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    starts, ends = _candidate_ranges(b[:, 0], b[:, 2], one)
    counts = ends - starts
    firsts, seconds = [], []
    row = 0
    while row < len(b):
        # as many rows as fit in one chunk of candidate pairs (at least one row)
        total = np.cumsum(counts[row:])
        stop = row + max(1, int(np.searchsorted(total, PAIRS_PER_CHUNK, side="right")))
        n = counts[row:stop]
        i = np.repeat(np.arange(row, stop), n)
        j = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(starts[row:stop], n)
        w = np.minimum(b[i, 2], b[j, 2]) - np.maximum(b[i, 0], b[j, 0]) + one
        h = np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1]) + one
        inter = np.maximum(w, 0) * np.maximum(h, 0)
        union = area[i] + area[j] - inter
        hit = (inter > threshold * union) & (inter > 0)
        firsts.append(order[i[hit]])
        seconds.append(order[j[hit]])
        row = stop
    if not firsts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, plus_one: bool = False) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, in descending score order (ties in given order)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    a, b = overlapping_pairs(boxes, iou_threshold, plus_one)
    stronger = np.minimum(rank[a], rank[b])  # in score order, the earlier box of each pair
    weaker = np.maximum(rank[a], rank[b])
    keep = np.ones(len(order), dtype=bool)
    while True:
        suppressed = np.zeros(len(order), dtype=bool)
        suppressed[weaker[keep[stronger]]] = True
        updated = ~suppressed
        if np.array_equal(updated, keep):
            return order[keep]
        keep = updated
