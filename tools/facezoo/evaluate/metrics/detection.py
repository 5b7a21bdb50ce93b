"""Face detection metrics: VOC-style AP with ignored faces (`omz_ap64`) and the official WIDER
FACE easy/medium/hard protocol (`wider_official`). Pure and vectorised: no loop over boxes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import xywh_to_corners


@dataclass(frozen=True)
class ImageMatch:
    """Each prediction of one image as a true positive, a false positive, or neither (ignored)."""

    scores: np.ndarray  # (P,) in descending score order
    true_positive: np.ndarray  # (P,) bool
    false_positive: np.ndarray  # (P,) bool
    num_faces: int  # faces that count (not ignored)


@dataclass(frozen=True)
class PRCurve:
    """A precision/recall curve and the area under it."""

    precision: np.ndarray
    recall: np.ndarray
    ap: float


def _pair_iou(a: np.ndarray, b: np.ndarray, one: float) -> np.ndarray:
    """IoU of corner boxes a and b, (..., 4) broadcast against each other, in iou_matrix's
    arithmetic (a's area first in the union; 0 where they do not overlap or it is not finite)."""
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + one
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + one
    inter = w * h
    union = (a[..., 2] - a[..., 0] + one) * (a[..., 3] - a[..., 1] + one) + \
        (b[..., 2] - b[..., 0] + one) * (b[..., 3] - b[..., 1] + one) - inter
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iou = inter / union
    iou[(w <= 0) | (h <= 0) | ~np.isfinite(iou)] = 0.0
    return iou


def _touching(boxes: np.ndarray, faces: np.ndarray, one: float, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, face) pairs that can reach a positive IoU threshold: each finite prediction
    against the finite faces whose x1 lies within [x1 - widest face - one - 1, x2 + one + 1] (a
    sorted search; every other pair has IoU 0). Every pair for a threshold of 0 or less."""
    if not iou_threshold > 0:
        return np.repeat(np.arange(len(boxes)), len(faces)), np.tile(np.arange(len(faces)), len(boxes))
    usable = np.flatnonzero(np.isfinite(faces).all(axis=1))
    usable = usable[np.argsort(faces[usable, 0], kind="stable")]
    x1 = faces[usable, 0]
    widest = float((faces[usable, 2] - faces[usable, 0]).max(initial=0))
    finite = np.isfinite(boxes).all(axis=1)
    lo = np.searchsorted(x1, np.where(finite, boxes[:, 0] - widest - one - 1, np.inf), side="left")
    hi = np.where(finite, np.searchsorted(x1, boxes[:, 2] + one + 1, side="right"), lo)
    counts = np.maximum(hi - lo, 0)
    pred = np.repeat(np.arange(len(boxes)), counts)
    face = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts - lo, counts)
    return pred, usable[face]


def match_image(boxes: np.ndarray, scores: np.ndarray, faces: np.ndarray, ignored: np.ndarray,
                iou_threshold: float = 0.5, plus_one: bool = False,
                multiple_matches_per_ignored: bool = True, prefer_counted_faces: bool = False) -> ImageMatch:
    """Match one image's predictions (corner boxes) to its faces (corner boxes), VOC style.

    Predictions are taken in descending score order (ties keep their given order). Each takes
    the face it overlaps most (the first such face on ties); at IoU >= iou_threshold it is a true
    positive if that face is not yet taken, a false positive if it is, and ignored if the face is
    ignored (only the first such prediction when multiple_matches_per_ignored is False; later
    ones are false positives). Below the threshold it is a false positive. prefer_counted_faces
    (Open Model Zoo's `map`): a prediction takes the best face that counts when that one reaches
    the threshold, and only otherwise the best ignored face.

    Only pairs reaching the threshold decide anything, so IoU is computed for the pairs a sorted
    sweep finds (see _touching), not for every prediction and face."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    scores, boxes = scores[order], np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order]
    faces = np.asarray(faces, dtype=np.float64).reshape(-1, 4)
    ignored = np.asarray(ignored, dtype=bool).reshape(-1)
    n = len(scores)
    tp = np.zeros(n, dtype=bool)
    skip = np.zeros(n, dtype=bool)
    if len(faces) and n:
        pred, face = _touching(boxes, faces, 1.0 if plus_one else 0.0, iou_threshold)
        iou = _pair_iou(boxes[pred], faces[face], 1.0 if plus_one else 0.0)
        reached = iou >= iou_threshold
        pred, face, iou = pred[reached], face[reached], iou[reached]
        preferred = ~ignored[face] if prefer_counted_faces else np.zeros(len(face), dtype=bool)
        pick = np.lexsort((face, -iou, ~preferred, pred))  # per prediction: counted first, best IoU, first face
        head = pick[np.r_[True, pred[pick][1:] != pred[pick][:-1]]] if len(pick) else pick
        hit = np.zeros(n, dtype=bool)
        best = np.zeros(n, dtype=np.int64)
        hit[pred[head]], best[pred[head]] = True, face[head]
        for target, on_ignored in ((tp, False), (skip, True)):
            candidates = np.flatnonzero(hit & (ignored[best] == on_ignored))
            if on_ignored and multiple_matches_per_ignored:
                target[candidates] = True
            else:  # only the first prediction per face (candidates are in score order)
                _, first = np.unique(best[candidates], return_index=True)
                target[candidates[first]] = True
    return ImageMatch(scores, tp, ~tp & ~skip, int((~ignored).sum()))


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the PR curve with precision made monotone (VOC all-point). NaN precisions
    (no predictions at that point) are skipped, as MATLAB's max skips NaN."""
    mrec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    change = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[change] - mrec[change - 1]) * mpre[change]))


def average_precision(matches: list[ImageMatch]) -> PRCurve:
    """VOC all-point AP over a whole set of images: predictions of all images ranked together
    by score (ties in image order). 0 when there is nothing to find or nothing was found."""
    num_faces = sum(m.num_faces for m in matches)
    if not matches or num_faces == 0:
        return PRCurve(np.zeros(0), np.zeros(0), 0.0)
    scores = np.concatenate([m.scores for m in matches])
    tp = np.concatenate([m.true_positive for m in matches])
    fp = np.concatenate([m.false_positive for m in matches])
    order = np.argsort(-scores, kind="stable")
    counted = (tp | fp)[order]
    tp_cum = np.cumsum(tp[order])[counted]
    fp_cum = np.cumsum(fp[order])[counted]
    if len(tp_cum) == 0:
        return PRCurve(np.zeros(0), np.zeros(0), 0.0)
    recall = tp_cum / num_faces
    precision = tp_cum / (tp_cum + fp_cum)
    return PRCurve(precision, recall, voc_ap(recall, precision))


# --- the official WIDER FACE evaluation (eval_tools: read_pred, norm_score, evaluation, VOCap) ---

THRESHOLDS = 1000
INT32 = np.iinfo(np.int32)


def _to_int32(x: np.ndarray) -> np.ndarray:
    """MATLAB's conversion of doubles to int32: round half away from zero (exactly: 0.49999999999999994
    stays 0), saturate."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    r = np.floor(a)
    r += (a - r) >= 0.5
    return np.minimum(np.maximum(np.copysign(r, x), INT32.min), INT32.max)


def _face_corners(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Faces (x, y, w, h) as the official code's corners and, for integer faces, their int32 areas
    (None for non-integer faces: plain +1-pixel IoU)."""
    if not np.issubdtype(np.asarray(faces).dtype, np.integer):
        return xywh_to_corners(faces), None
    g = np.asarray(faces, dtype=np.float64).reshape(-1, 4)
    g = np.concatenate([g[:, :2], _to_int32(g[:, :2] + g[:, 2:])], axis=1)
    return g, _to_int32((g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1))


def _overlap(g: np.ndarray, face_area: np.ndarray | None, p: np.ndarray) -> np.ndarray:
    """The official overlap of faces g with predictions p, both (..., 4) corners broadcast against
    each other (face_area: _face_corners's areas, broadcast like g[..., 0])."""
    if face_area is None:  # the plain +1-pixel IoU
        return _pair_iou(p, g, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):  # a non-finite prediction: NaN, quietly
        x1 = np.maximum(g[..., 0], _to_int32(p[..., 0]))
        y1 = np.maximum(g[..., 1], _to_int32(p[..., 1]))
        x2 = np.minimum(g[..., 2], _to_int32(p[..., 2]))
        y2 = np.minimum(g[..., 3], _to_int32(p[..., 3]))
        w, h = _to_int32(x2 - x1 + 1), _to_int32(y2 - y1 + 1)
        inter = _to_int32(w * h)
        box_area = (p[..., 2] - p[..., 0] + 1) * (p[..., 3] - p[..., 1] + 1)
        union = _to_int32(_to_int32(face_area + box_area) - inter)
        overlap = np.where(union != 0, _to_int32(inter / np.where(union != 0, union, 1)),
                           np.where(inter > 0, INT32.max, np.where(inter < 0, INT32.min, 0)))
    overlap[(w <= 0) | (h <= 0)] = 0
    return overlap


def official_overlap(faces: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The official code's `boxoverlap` of each prediction (rows) with each face (columns), both
    (x, y, w, h). The official ground truth is int32 and MATLAB does mixed int32/double arithmetic
    in int32: prediction corners are rounded where they meet face corners, the union is rounded,
    and so is the quotient, so the overlap is an integer (0 or 1 in practice). A prediction is then
    matched to the first face with IoU >= 0.5, not to the best one. With non-integer faces this is
    the plain +1-pixel IoU."""
    g, face_area = _face_corners(faces)
    return _overlap(g[None], None if face_area is None else face_area[None], xywh_to_corners(boxes)[:, None])


def normalise_scores(predictions: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Scores rescaled by the global min and max over all images, as the official code does
    (its running max starts at single-precision realmin, its running min at realmax)."""
    non_empty = [s for _, s in predictions if len(s)]
    high = max([float(np.finfo(np.float32).tiny)] + [float(s.max()) for s in non_empty])
    low = min([float(np.finfo(np.float32).max)] + [float(s.min()) for s in non_empty])
    with np.errstate(divide="ignore", invalid="ignore"):
        return [(np.asarray(s, dtype=np.float64) - low) / (high - low) for _, s in predictions]


def _matches(boxes: np.ndarray, image: np.ndarray, g: np.ndarray, face_area: np.ndarray | None,
             face_image: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """For each prediction (corner boxes, with its image), the face of its image it is matched to
    (the first maximum overlap, as MATLAB's max; global face index) and whether that overlap
    reaches the threshold.

    Only faces whose +1-pixel extent meets the prediction's can overlap it (every other overlap is
    0), so for a positive threshold each finite prediction is tested only against the faces of its
    image that reach within 2 pixels of it: those whose x1 lies in [x1 - widest face - 2, x2 + 2]
    (a sorted search over (image, x1) as complex numbers, which sort in that order), then whose
    other sides come that close. Other predictions are tested against every face of their image,
    NaN counting as the maximum, as for max."""
    segments = np.arange(int(image.max(initial=-1)) + 1)
    lo, hi = np.searchsorted(face_image, segments)[image], np.searchsorted(face_image, segments, side="right")[image]
    sweep = np.isfinite(boxes).all(axis=1) & (iou_threshold > 0)
    by_x = np.lexsort((g[:, 0], face_image))  # faces by (image, x1)
    if sweep.any():
        keys = face_image[by_x] + 1j * g[by_x, 0]
        widest = np.zeros(len(segments))
        np.maximum.at(widest, face_image, g[:, 2] - g[:, 0])
        q, b = image[sweep], boxes[sweep]
        lo[sweep] = np.searchsorted(keys, q + 1j * (b[:, 0] - widest[q] - 2), side="left")
        hi[sweep] = np.searchsorted(keys, q + 1j * (b[:, 2] + 2), side="right")
    counts = np.maximum(hi - lo, 0)
    pred = np.repeat(np.arange(len(boxes)), counts)
    face = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
    swept = sweep[pred]
    face[swept] = by_x[face[swept]]
    p, f = boxes[pred], g[face]
    near = ~swept | ((f[:, 2] >= p[:, 0] - 2) & (f[:, 1] <= p[:, 3] + 2) & (f[:, 3] >= p[:, 1] - 2))
    pred, face = pred[near], face[near]
    overlap = _overlap(g[face], None if face_area is None else face_area[face], boxes[pred])
    rank = np.where(np.isnan(overlap), np.inf, overlap)
    best = np.zeros(len(boxes), dtype=np.int64)
    hit = np.zeros(len(boxes), dtype=bool)
    if len(pred):
        starts = np.flatnonzero(np.r_[True, pred[1:] != pred[:-1]])  # candidates come grouped by prediction
        top = np.maximum.reduceat(rank, starts)
        at_top = rank == np.repeat(top, np.diff(np.r_[starts, len(rank)]))
        best[pred[starts]] = np.minimum.reduceat(np.where(at_top, face, len(g)), starts)
        hit[pred[starts]] = (top >= iou_threshold) & (top != np.inf)
    return best, hit


def _at_least(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of `scores` are >= each threshold (NaN never is)."""
    ranked = np.sort(scores[~np.isnan(scores)])
    return len(ranked) - np.searchsorted(ranked, thresholds, side="left")


def wider_official_curves(predictions: list[tuple[np.ndarray, np.ndarray]], faces: list[np.ndarray],
                          keep_lists: dict[str, list[np.ndarray]], iou_threshold: float = 0.5) -> dict[str, PRCurve]:
    """Official WIDER FACE AP for several settings at once (the overlaps are computed once).

    predictions: per image, (boxes (P, 4) as x, y, w, h; scores (P,)); faces: per image, (G, 4)
    as x, y, w, h, integer as in the official .mat (see official_overlap); keep_lists: per
    setting, per image, the 1-based indices of the faces the setting counts (its `gt_list`);
    every other face is ignored. Images in the official order.

    All images at once: an image's proposals and recalled faces at a threshold are those of its
    predictions scoring at least the threshold, so their sums over images are counts over all
    predictions, taken per prediction (in each image's descending score order) and counted at
    the thresholds by one sorted search."""
    thresholds = 1 - np.arange(1, THRESHOLDS + 1) / THRESHOLDS
    normalised = normalise_scores(predictions)
    count_face = {s: sum(len(np.asarray(k).reshape(-1)) for k in lists) for s, lists in keep_lists.items()}
    gts = [np.asarray(gt).reshape(-1, 4) for gt in faces]
    # images with faces and predictions; the others add nothing (the official code skips them)
    used = [n for n, ((_, raw), gt) in enumerate(zip(predictions, gts)) if len(gt) and len(raw)]
    sizes = np.array([len(predictions[n][1]) for n in used], dtype=np.int64)
    image = np.repeat(np.arange(len(used)), sizes)
    raw = np.concatenate([np.asarray(predictions[n][1], dtype=np.float64).reshape(-1) for n in used] + [np.zeros(0)])
    if np.all((raw[1:] <= raw[:-1]) | (image[1:] != image[:-1])):  # as detectors write them
        order = np.arange(len(raw))
    else:
        order = np.argsort(-raw, kind="stable")
        order = order[np.argsort(image[order], kind="stable")]  # per image, descending score, ties in file order
    boxes = np.concatenate([np.asarray(predictions[n][0], dtype=np.float64).reshape(-1, 4) for n in used]
                           + [np.zeros((0, 4))])[order]
    scores = np.concatenate([normalised[n] for n in used] + [np.zeros(0)])[order]
    face_count = np.array([len(gts[n]) for n in used], dtype=np.int64)
    face_image = np.repeat(np.arange(len(used)), face_count)
    offsets = np.cumsum(face_count) - face_count
    if used:
        stacked = np.concatenate([gts[n] for n in used])
        g, face_area = _face_corners(stacked)
        best, hit = _matches(xywh_to_corners(boxes), image, g, face_area, face_image, iou_threshold)
    else:
        best, hit = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    curves = {}
    for setting, lists in keep_lists.items():
        if count_face[setting] == 0:
            curves[setting] = PRCurve(np.zeros(THRESHOLDS), np.zeros(THRESHOLDS), 0.0)
            continue
        keep = np.zeros(int(face_count.sum()), dtype=bool)
        keep[np.concatenate([offsets[k] + np.asarray(lists[n], dtype=np.int64).reshape(-1) - 1
                             for k, n in enumerate(used)] + [np.zeros(0, dtype=np.int64)])] = True
        kept = hit & keep[best]
        proposal = ~(hit & ~keep[best])  # a prediction on a face outside gt_list is not a proposal
        first = np.zeros(len(scores), dtype=bool)
        _, first_index = np.unique(best[kept], return_index=True)
        first[np.flatnonzero(kept)[first_index]] = True  # a face in gt_list counts once, at its first hit
        total = np.stack([_at_least(scores[proposal], thresholds), _at_least(scores[first], thresholds)],
                         axis=1).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = total[:, 1] / total[:, 0]
        recall = total[:, 1] / count_face[setting]
        curves[setting] = PRCurve(precision, recall, voc_ap(recall, precision))
    return curves


def wider_official_curve(predictions: list[tuple[np.ndarray, np.ndarray]], faces: list[np.ndarray],
                         keep_lists: list[np.ndarray], iou_threshold: float = 0.5) -> PRCurve:
    """Official WIDER FACE AP for one setting (see wider_official_curves)."""
    return wider_official_curves(predictions, faces, {"setting": keep_lists}, iou_threshold)["setting"]
