"""Greedy non-maximum suppression, exact, without a Python loop over boxes.

Greedy NMS takes boxes in descending score order and keeps a box when no kept box overlaps it by
more than the threshold (IoU > t). Two vectorised stages give exactly that set:

1. Dense blocks, while suppression is heavy. The strongest undecided boxes, a block of them, are
   decided among themselves (their pairwise test as a matrix, the greedy rule solved as a fixed
   point), then every box the block keeps is tested against all undecided boxes at once and the
   ones it overlaps are dropped. Around real faces a few kept boxes drop hundreds of others.
2. Sparse pairs, once a block keeps most of its boxes (the rest are scattered low scores) or too
   many boxes are left for all-against-all tests. Only overlapping pairs matter there, found by a
   sorted sweep; keep[i] = not any(keep[j] for the stronger j overlapping i) is then solved as a
   fixed point over those pairs (each round settles at least the next undecided box in score
   order; in practice a few rounds settle all). Should the pairs outgrow PAIR_LIMIT (a crowd of
   mutually overlapping boxes that the blocks did not meet), blocks decide the rest instead, so
   memory stays bounded whatever the boxes.

The sweep, for a threshold t in (0, 1): IoU > t needs the intersection's width to exceed t times
the wider box's width (IoU <= intersection width / width), and likewise for heights. So each
corner coordinate of two such boxes differs by less than (1 - t) s, s = max(w, h) of the box of
larger s; and IoU <= smaller area / larger area, so their areas differ by less than a factor 1/t.
Boxes are binned by log2(area) in bins of width log2(1/t) (partners lie in the same or a
neighbouring bin); per bin, its boxes are searched for, each from its own corner, among the
boxes of the three bins sorted by (row, x1) with rows of half the bin's largest reach: over the
rows its y1 reaches and the x1 range it reaches, keeping partners of no larger s (each pair once).
Candidates get the exact test in the same arithmetic as an all-pairs test, so how they are found
cannot change the result. Other thresholds, and boxes too thin for their coordinates' rounding,
go through a plain sweep over x1 alone.
"""
from __future__ import annotations

import numpy as np

PAIRS_PER_CHUNK = 1 << 22  # candidate pairs examined at once: bounds memory whatever the boxes
PAIR_LIMIT = 1 << 24  # overlapping pairs the sparse stage may collect (else blocks decide)
BLOCK = 32  # boxes decided together in the dense stage
DENSE_WORK = 1 << 16  # pair tests of one dense round while the sparse stage may take over
SLACK = 1e-6  # relative margin of the sweep's bounds over float rounding
THIN = 1e-8  # boxes thinner than this times their coordinates' magnitude take the plain sweep
_EMPTY = np.zeros(0, dtype=np.int64)

Pairs = tuple[np.ndarray, np.ndarray]


def _hits(b: tuple[np.ndarray, ...], area: np.ndarray, i: np.ndarray, j: np.ndarray, threshold: float,
          one: float) -> np.ndarray:
    """Whether boxes i and j overlap by more than the threshold (the reference test; broadcasts).
    b: the boxes' x1, y1, x2, y2 columns, each contiguous (indexing them is the fast path)."""
    w = np.minimum(b[2][i], b[2][j]) - np.maximum(b[0][i], b[0][j]) + one
    h = np.minimum(b[3][i], b[3][j]) - np.maximum(b[1][i], b[1][j]) + one
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = area[i] + area[j] - inter
    return (inter > threshold * union) & (inter > 0)


def _columns(b: np.ndarray) -> tuple[np.ndarray, ...]:
    """The x1, y1, x2, y2 columns of (N, 4) boxes, each contiguous."""
    return tuple(np.ascontiguousarray(b[:, k]) for k in range(4))


def _expand(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Pairs:
    """All (row, k) with lo <= k < hi, per row (int32: these are the big arrays)."""
    n = np.maximum(hi - lo, 0)
    i = np.repeat(rows.astype(np.int32), n)
    j = np.arange(int(n.sum()), dtype=np.int32) - np.repeat((np.cumsum(n) - n - lo).astype(np.int32), n)
    return i, j


def _chunks(counts: np.ndarray):
    """Consecutive (start, stop) ranges of rows whose counts add up to at most PAIRS_PER_CHUNK
    (at least one row each)."""
    row, total = 0, np.cumsum(counts)
    while row < len(counts):
        done = int(total[row - 1]) if row else 0
        stop = row + max(1, int(np.searchsorted(total[row:] - done, PAIRS_PER_CHUNK, side="right")))
        yield row, stop
        row = stop


class _Collector:
    """Overlapping pairs gathered chunk by chunk, up to a limit."""

    def __init__(self, limit: int | None):
        self.limit, self.count, self.firsts, self.seconds = limit, 0, [_EMPTY], [_EMPTY]

    def add(self, b, area, i, j, threshold, one) -> bool:
        """Test candidates (i, j) and keep the overlapping ones; False once over the limit."""
        hit = _hits(b, area, i, j, threshold, one)
        self.firsts.append(i[hit].astype(np.int64))
        self.seconds.append(j[hit].astype(np.int64))
        self.count += len(self.firsts[-1])
        return self.limit is None or self.count <= self.limit

    def pairs(self) -> Pairs:
        return np.concatenate(self.firsts), np.concatenate(self.seconds)


def _plain_pairs(b: np.ndarray, area: np.ndarray, threshold: float, one: float, limit: int | None) -> Pairs | None:
    """Every overlapping pair, by a sweep over x1: each box against the later boxes (by x1) that
    start before it ends. Any threshold; quadratic when many boxes share a column."""
    order = np.argsort(b[:, 0], kind="stable")
    starts = np.arange(1, len(b) + 1)
    counts = np.maximum(np.searchsorted(b[order, 0], b[order, 2] + one, side="left"), starts) - starts
    found, columns = _Collector(limit), _columns(b)
    for row, stop in _chunks(counts):
        i, j = _expand(np.arange(row, stop), starts[row:stop], starts[row:stop] + counts[row:stop])
        if not found.add(columns, area, order[i], order[j], threshold, one):
            return None
    return found.pairs()


def _swept_pairs(b: np.ndarray, area: np.ndarray, threshold: float, one: float, limit: int | None) -> Pairs | None:
    """Every pair overlapping by more than a threshold in (0, 1), by the sweep of the module's
    docstring (boxes of no positive extent or with non-finite coordinates overlap nothing by more
    than t and are left out)."""
    w, h = b[:, 2] - b[:, 0] + one, b[:, 3] - b[:, 1] + one
    usable = np.flatnonzero(np.isfinite(b).all(axis=1) & (w > 0) & (h > 0))
    if len(usable) < 2:
        return _EMPTY, _EMPTY
    if float(np.minimum(w, h)[usable].min()) < THIN * (float(np.abs(b[usable]).max()) + 1):
        return _plain_pairs(b, area, threshold, one, limit)
    s = np.maximum(w, h)
    reach = (1 - threshold + SLACK) * s  # how far any coordinate of a partner of no larger s can be
    size_bin = np.floor(np.log2(area[usable]) / (-np.log2(threshold) * (1 + SLACK)))  # widened against rounding
    rank = np.empty(len(b), dtype=np.int64)
    rank[np.argsort(s, kind="stable")] = np.arange(len(b))  # by s, then index
    found, columns = _Collector(limit), _columns(b)
    for g in np.unique(size_bin):
        big, pool = usable[size_bin == g], usable[np.abs(size_bin - g) <= 1]
        r, x, y = reach[big], b[big, 0], b[big, 1]
        height = float(r.max()) / 2  # rows: every search of the bin spans at most five
        row = np.floor(b[pool, 1] / height)
        top, bottom = np.floor((y - r) / height), np.floor((y + r) / height)
        # (row, x1) as one number, row * width + x1 - x0, rows apart by more than any search's
        # reach; exact while row * width is an integer below 2**52; searches widened by the rounding
        x0 = float(b[pool, 0].min())
        width = np.ceil(float(b[pool, 0].max()) - x0 + 2 * float(r.max()) + 1)
        first_row = min(float(row.min()), float(top.min()))
        if (max(float(row.max()), float(bottom.max())) - first_row + 1) * width >= 2.0 ** 52:
            return _plain_pairs(b, area, threshold, one, limit)
        key = (row - first_row) * width + (b[pool, 0] - x0)
        sort = np.argsort(key)  # any order of equal keys finds the same candidates
        pool, key = pool[sort], key[sort]
        rounding = 4 * np.spacing(float(key.max()) + width)
        ascending = np.argsort((top - first_row) * width + (x - x0))  # searches in ascending order run faster
        big, r, x, top, bottom = big[ascending], r[ascending], x[ascending], top[ascending], bottom[ascending]
        # one search per box and row it reaches, row offset by row offset (each run ascends)
        reached = [np.flatnonzero(top + k <= bottom) for k in range(int((bottom - top).max()) + 1)]
        queries = np.concatenate(reached)
        offset = np.repeat(np.arange(len(reached)), [len(a) for a in reached])
        base = (top[queries] + offset - first_row) * width + (x[queries] - x0)
        lo = np.searchsorted(key, base - r[queries] - rounding, side="left")
        hi = np.searchsorted(key, base + r[queries] + rounding, side="right")
        for start, stop in _chunks(np.maximum(hi - lo, 0)):
            i, j = _expand(queries[start:stop], lo[start:stop], hi[start:stop])
            once = rank[pool][j] < rank[big][i]  # each pair from its box of larger s
            if not found.add(columns, area, big[i[once]], pool[j[once]], threshold, one):
                return None
    return found.pairs()


def _pairs(boxes: np.ndarray, threshold: float, plus_one: bool, limit: int | None) -> Pairs | None:
    one = 1.0 if plus_one else 0.0
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    if 0 < threshold < 1:
        return _swept_pairs(b, area, threshold, one, limit)
    return _plain_pairs(b, area, threshold, one, limit)


def overlapping_pairs(boxes: np.ndarray, threshold: float, plus_one: bool) -> Pairs:
    """Index pairs (a, b), a != b, of corner boxes whose IoU exceeds `threshold` (each pair once)."""
    return _pairs(boxes, threshold, plus_one, None)


def greedy_survivors(n: int, stronger: np.ndarray, weaker: np.ndarray) -> np.ndarray:
    """keep[i] = not any(keep[j] for each pair (j stronger, i weaker)), over boxes 0..n-1: greedy
    suppression's survivors as a fixed point (each round settles at least the next undecided box)."""
    keep = np.ones(n, dtype=bool)
    while True:
        suppressed = np.zeros(n, dtype=bool)
        suppressed[weaker[keep[stronger]]] = True
        if np.array_equal(~suppressed, keep):
            return keep
        keep = ~suppressed


def _greedy(b: np.ndarray, threshold: float, plus_one: bool) -> np.ndarray:
    """Which boxes greedy NMS keeps, for boxes already in descending score order."""
    one = 1.0 if plus_one else 0.0
    area = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    columns = _columns(b)
    keep = np.zeros(len(b), dtype=bool)
    undecided = np.arange(len(b))
    sparse = True  # the sparse stage may still take over
    while len(undecided):
        block, rest = undecided[:BLOCK], undecided[BLOCK:]
        within = np.triu(_hits(columns, area, block[:, None], block[None, :], threshold, one), 1)
        kept = block[greedy_survivors(len(block), *np.nonzero(within))]
        # the block keeps most of its boxes, or too many boxes are left to test all against the
        # block's: pairs instead of blocks, this block included
        if sparse and len(rest) and (2 * len(kept) > len(block) or len(kept) * len(rest) > DENSE_WORK):
            found = _pairs(b[undecided], threshold, plus_one, PAIR_LIMIT)
            if found is not None:
                a, c = found
                keep[undecided] = greedy_survivors(len(undecided), np.minimum(a, c), np.maximum(a, c))
                return keep
            sparse = False
        keep[kept] = True
        if len(rest):
            rest = rest[~_hits(columns, area, kept[:, None], rest[None, :], threshold, one).any(axis=0)]
        undecided = rest
    return keep


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, plus_one: bool = False) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, in descending score order (ties in given order)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-scores, kind="stable")
    return order[_greedy(boxes[order], iou_threshold, plus_one)]
