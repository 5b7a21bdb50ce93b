"""Greedy non-maximum suppression, exact, without a Python loop over boxes.

Greedy NMS takes boxes in descending score order and keeps a box when no kept box overlaps it by
more than the threshold (IoU > t). Two vectorised stages give exactly that set:

1. Dense blocks, while suppression is heavy. The strongest undecided boxes, a block of them, are
   decided among themselves (their pairwise test as a matrix, the greedy rule solved as a fixed
   point), then every box the block keeps is tested against all undecided boxes at once and the
   ones it overlaps are dropped. Around real faces a few kept boxes drop hundreds of others.
2. Sparse pairs, once a block keeps most of its boxes (the rest are scattered low scores). Only
   overlapping pairs matter there, found by a sorted sweep; keep[i] = not any(keep[j] for the
   stronger j overlapping i) is then solved as a fixed point over those pairs (each round settles
   at least the next undecided box in score order; in practice a few rounds settle all).

The sweep, for a threshold t in (0, 1): IoU > t needs the intersection's width to exceed t times
the wider box's width (IoU <= intersection width / width), and likewise for heights. So each
corner coordinate of two such boxes differs by less than (1 - t) s, s = max(w, h) of the larger
box, and the smaller s is more than t times the larger. Boxes are grouped by s in powers of two,
sorted by (row of height (1 - t) * the group's largest s, x1), and each box is searched for in
the rows its y1 reaches, over the x1 range it reaches, among boxes of no larger s. Candidates get
the exact test in the same arithmetic as an all-pairs test, so how they are found cannot change
the result. Other thresholds, and boxes too thin for their coordinates' rounding, go through a
plain sweep over x1 alone.
"""
from __future__ import annotations

import numpy as np

PAIRS_PER_CHUNK = 1 << 22  # candidate pairs examined at once: bounds memory whatever the boxes
BLOCK = 32  # boxes decided together in the dense stage
SLACK = 1e-6  # relative margin of the sweep's bounds over float rounding
THIN = 1e-9  # boxes thinner than this times their coordinates' magnitude take the plain sweep
_EMPTY = np.zeros(0, dtype=np.int64)


def _hits(b: np.ndarray, area: np.ndarray, i: np.ndarray, j: np.ndarray, threshold: float,
          one: float) -> np.ndarray:
    """Whether boxes i and j overlap by more than the threshold (the reference test; broadcasts)."""
    w = np.minimum(b[i, 2], b[j, 2]) - np.maximum(b[i, 0], b[j, 0]) + one
    h = np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1]) + one
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = area[i] + area[j] - inter
    return (inter > threshold * union) & (inter > 0)


def _expand(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (row, k) with lo <= k < hi, per row."""
    n = np.maximum(hi - lo, 0)
    i = np.repeat(rows, n)
    j = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
    return i, j


def _plain_pairs(b: np.ndarray, area: np.ndarray, threshold: float, one: float) -> tuple[np.ndarray, np.ndarray]:
    """Every overlapping pair, by a sweep over x1: each box against the later boxes (by x1) that
    start before it ends. Any threshold; quadratic when many boxes share a column."""
    order = np.argsort(b[:, 0], kind="stable")
    starts = np.arange(1, len(b) + 1)
    counts = np.maximum(np.searchsorted(b[order, 0], b[order, 2] + one, side="left"), starts) - starts
    firsts, seconds = [_EMPTY], [_EMPTY]
    row = 0
    while row < len(b):
        # as many rows as fit in one chunk of candidate pairs (at least one row)
        stop = row + max(1, int(np.searchsorted(np.cumsum(counts[row:]), PAIRS_PER_CHUNK, side="right")))
        i, j = _expand(np.arange(row, stop), starts[row:stop], starts[row:stop] + counts[row:stop])
        i, j = order[i], order[j]
        hit = _hits(b, area, i, j, threshold, one)
        firsts.append(i[hit])
        seconds.append(j[hit])
        row = stop
    return np.concatenate(firsts), np.concatenate(seconds)


def _swept_pairs(b: np.ndarray, area: np.ndarray, threshold: float, one: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pair overlapping by more than a threshold in (0, 1), by the row sweep of the
    module's docstring (boxes of no positive extent or with non-finite coordinates overlap
    nothing by more than t and are left out)."""
    w, h = b[:, 2] - b[:, 0] + one, b[:, 3] - b[:, 1] + one
    usable = np.flatnonzero(np.isfinite(b).all(axis=1) & (w > 0) & (h > 0))
    if len(usable) < 2:
        return _EMPTY, _EMPTY
    magnitude = float(np.abs(b[usable]).max()) + 1
    if float(np.minimum(w, h)[usable].min()) < THIN * magnitude:
        return _plain_pairs(b, area, threshold, one)
    s = np.maximum(w, h)
    reach = (1 - threshold + SLACK) * s  # how far any coordinate of a partner of no larger s can be
    # IoU <= smaller area / larger area: partners' areas differ by less than a factor 1/t, so by
    # at most one bin of log2(area) of width log2(1/t) (widened by SLACK against rounding)
    size_bin = np.floor(np.log2(area[usable]) / (-np.log2(threshold) * (1 + SLACK)))
    firsts, seconds = [_EMPTY], [_EMPTY]
    for g in np.unique(size_bin):
        big = usable[size_bin == g]
        pool = usable[np.abs(size_bin - g) <= 1]
        height = float(reach[big].max())  # every query of the group spans at most three rows
        row = np.floor(b[pool, 1] / height)
        sort = np.lexsort((b[pool, 0], row))
        pool, row = pool[sort], row[sort]
        x0 = float(b[pool, 0].min())
        width = float(b[pool, 0].max()) - x0 + 4 * height + 1
        key = row * width + (b[pool, 0] - x0)  # (row, x1) as one sorted number
        r = reach[big]
        lowest, highest = np.floor((b[big, 1] - r) / height), np.floor((b[big, 1] + r) / height)
        parts = []
        for rows in (lowest, lowest + 1, lowest + 2):
            base = rows * width + b[big, 0] - x0
            lo = np.searchsorted(key, base - r, side="left")
            hi = np.where(rows <= highest, np.searchsorted(key, base + r, side="right"), lo)
            parts.append((lo, hi))
        i, j = _expand(np.tile(np.arange(len(big)), 3), np.concatenate([p[0] for p in parts]),
                       np.concatenate([p[1] for p in parts]))
        r, i, j = r[i], big[i], pool[j]
        near = ((s[j] < s[i]) | ((s[j] == s[i]) & (j < i))) & (np.abs(b[j, 1] - b[i, 1]) <= r)
        i, j, r = i[near], j[near], r[near]
        near = (np.abs(b[j, 2] - b[i, 2]) <= r) & (np.abs(b[j, 3] - b[i, 3]) <= r)
        i, j = i[near], j[near]
        hit = _hits(b, area, i, j, threshold, one)
        firsts.append(i[hit])
        seconds.append(j[hit])
    return np.concatenate(firsts), np.concatenate(seconds)


def overlapping_pairs(boxes: np.ndarray, threshold: float, plus_one: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (a, b), a != b, of corner boxes whose IoU exceeds `threshold` (each pair once)."""
    one = 1.0 if plus_one else 0.0
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    if 0 < threshold < 1:
        return _swept_pairs(b, area, threshold, one)
    return _plain_pairs(b, area, threshold, one)


def _fixed_point(n: int, stronger: np.ndarray, weaker: np.ndarray) -> np.ndarray:
    """keep[i] = not any(keep[j] for each pair (j stronger, i weaker)), over boxes 0..n-1."""
    keep = np.ones(n, dtype=bool)
    while True:
        suppressed = np.zeros(n, dtype=bool)
        suppressed[weaker[keep[stronger]]] = True
        if np.array_equal(~suppressed, keep):
            return keep
        keep = ~suppressed


def _greedy(b: np.ndarray, threshold: float, one: float) -> np.ndarray:
    """Which boxes greedy NMS keeps, for boxes already in descending score order."""
    n = len(b)
    area = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    keep = np.zeros(n, dtype=bool)
    undecided = np.arange(n)
    while len(undecided):
        block, rest = undecided[:BLOCK], undecided[BLOCK:]
        within = np.triu(_hits(b, area, block[:, None], block[None, :], threshold, one), 1)
        kept = block[_fixed_point(len(block), *np.nonzero(within))]
        if 2 * len(kept) > len(block) and len(rest):  # sparse from here on: pairs instead of blocks
            break
        keep[kept] = True
        if len(rest):
            rest = rest[~_hits(b, area, kept[:, None], rest[None, :], threshold, one).any(axis=0)]
        undecided = rest
    if len(undecided):
        a, c = overlapping_pairs(b[undecided], threshold, one == 1.0)
        keep[undecided] = _fixed_point(len(undecided), np.minimum(a, c), np.maximum(a, c))
    return keep


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, plus_one: bool = False) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, in descending score order (ties in given order)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-scores, kind="stable")
    return order[_greedy(boxes[order], iou_threshold, 1.0 if plus_one else 0.0)]
