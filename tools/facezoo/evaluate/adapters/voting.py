"""insightface's box voting (RetinaFace.bbox_vote), vectorised: the merge of its multi-scale test.

insightface sorts the candidates by score and repeatedly takes the strongest remaining box with
every remaining box overlapping it by IoU >= t (the +1 pixel convention) as one cluster. A cluster
of two or more becomes one face: the boxes' score-weighted mean, with the cluster's highest score.
A cluster of one box is dropped, except the very last cluster (taken when nothing else remains),
which is kept as it is. It stops once 750 faces are kept.

The cluster leaders are exactly the boxes greedy suppression with ">= t" keeps, and each other box
joins the strongest leader overlapping it. Both follow from the overlapping pairs (found by
`nms.overlapping_pairs` at a hair below t, then tested with insightface's own formula): leaders
by the fixed point leader[k] = no leader among the stronger boxes overlapping k, members by the
strongest overlapping leader, means by weighted bincounts. No Python loop runs over boxes.
insightface also drops the landmarks when it votes; here they are averaged like the boxes.
"""
from __future__ import annotations

import numpy as np

from .nms import greedy_survivors, overlapping_pairs

MAX_FACES = 750  # insightface stops voting once it has this many faces
PAIR_SLACK = 1e-9  # candidate pairs are found at t (1 - PAIR_SLACK), then tested exactly at >= t


def _voting_pairs(boxes: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(stronger, weaker) index pairs of boxes in descending score order with IoU >= threshold,
    IoU as insightface computes it: intersection / (area_a + area_b - intersection), +1 pixel."""
    a, c = overlapping_pairs(boxes, threshold * (1 - PAIR_SLACK), plus_one=True)
    i, j = np.minimum(a, c), np.maximum(a, c)
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[j, 2]) - np.maximum(boxes[i, 0], boxes[j, 0]) + 1)
    h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[j, 3]) - np.maximum(boxes[i, 1], boxes[j, 1]) + 1)
    inter = w * h
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = inter / (area[i] + area[j] - inter) >= threshold
    return i[hit], j[hit]


def box_vote(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, iou_threshold: float,
             max_faces: int = MAX_FACES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The faces insightface's bbox_vote makes of candidates (corner boxes (N, 4), scores (N,),
    landmarks (N, 5, 2), any order): boxes, scores and landmarks, strongest first."""
    n = len(scores)
    if n == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(n, 4)[order]
    scores = np.asarray(scores, dtype=np.float64)[order]
    marks = np.asarray(landmarks, dtype=np.float64).reshape(n, 10)[order]
    stronger, weaker = _voting_pairs(boxes, iou_threshold)
    leader = greedy_survivors(n, stronger, weaker)
    owner = np.where(leader, np.arange(n), n)
    led = leader[stronger]
    np.minimum.at(owner, weaker[led], stronger[led])  # each box joins its strongest overlapping leader
    size = np.bincount(owner, minlength=n)
    weight = np.bincount(owner, weights=scores, minlength=n)
    values = np.concatenate([boxes, marks], axis=1)
    sums = np.stack([np.bincount(owner, weights=scores * values[:, c], minlength=n) for c in range(14)], axis=1)
    leaders = np.flatnonzero(leader)
    kept = leaders[(size[leaders] > 1) | (leaders == leaders[-1])][:max_faces]
    merged = size[kept] > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sums[kept] / weight[kept, None]
    out = np.where(merged[:, None], means, values[kept])  # a kept single box stays as it was
    return out[:, :4], scores[kept], out[:, 4:].reshape(-1, 5, 2)
