"""Face detection metrics: VOC-style AP with ignored faces (`omz_ap64`) and the official WIDER
FACE easy/medium/hard protocol (`wider_official`). Pure and vectorised: no loop over boxes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import iou_matrix, xywh_to_corners


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


def match_image(boxes: np.ndarray, scores: np.ndarray, faces: np.ndarray, ignored: np.ndarray,
                iou_threshold: float = 0.5, plus_one: bool = False,
                multiple_matches_per_ignored: bool = True, prefer_counted_faces: bool = False) -> ImageMatch:
    """Match one image's predictions (corner boxes) to its faces (corner boxes), VOC style.

    Predictions are taken in descending score order (ties keep their given order). Each takes
    the face it overlaps most; at IoU >= iou_threshold it is a true positive if that face is
    not yet taken, a false positive if it is, and ignored if the face is ignored (only the first
    such prediction when multiple_matches_per_ignored is False; later ones are false positives).
    Below the threshold it is a false positive. prefer_counted_faces (Open Model Zoo's `map`):
    a prediction takes the best face that counts when that one reaches the threshold, and only
    otherwise the best ignored face."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    scores, boxes = scores[order], np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order]
    ignored = np.asarray(ignored, dtype=bool).reshape(-1)
    n = len(scores)
    tp = np.zeros(n, dtype=bool)
    skip = np.zeros(n, dtype=bool)
    if len(faces) and n:
        iou = iou_matrix(boxes, faces, plus_one)
        best = iou.argmax(axis=1)
        if prefer_counted_faces and (~ignored).any() and ignored.any():
            counted = np.where(ignored[None, :], -np.inf, iou)
            best_counted = counted.argmax(axis=1)
            use_counted = counted[np.arange(n), best_counted] >= iou_threshold
            best = np.where(use_counted, best_counted, np.where(ignored[None, :], iou, -np.inf).argmax(axis=1))
        hit = iou[np.arange(n), best] >= iou_threshold
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
    return np.clip(np.copysign(r, x), INT32.min, INT32.max)


def official_overlap(faces: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The official code's `boxoverlap` of each prediction (rows) with each face (columns), both
    (x, y, w, h). The official ground truth is int32 and MATLAB does mixed int32/double arithmetic
    in int32: prediction corners are rounded where they meet face corners, the union is rounded,
    and so is the quotient, so the overlap is an integer (0 or 1 in practice). A prediction is then
    matched to the first face with IoU >= 0.5, not to the best one. With non-integer faces this is
    the plain +1-pixel IoU."""
    if not np.issubdtype(np.asarray(faces).dtype, np.integer):
        return iou_matrix(xywh_to_corners(boxes), xywh_to_corners(faces), plus_one=True)
    g = np.asarray(faces, dtype=np.float64).reshape(-1, 4)
    g = np.concatenate([g[:, :2], _to_int32(g[:, :2] + g[:, 2:])], axis=1)
    p = xywh_to_corners(boxes)
    x1 = np.maximum(g[None, :, 0], _to_int32(p[:, None, 0]))
    y1 = np.maximum(g[None, :, 1], _to_int32(p[:, None, 1]))
    x2 = np.minimum(g[None, :, 2], _to_int32(p[:, None, 2]))
    y2 = np.minimum(g[None, :, 3], _to_int32(p[:, None, 3]))
    w, h = _to_int32(x2 - x1 + 1), _to_int32(y2 - y1 + 1)
    inter = _to_int32(w * h)
    face_area = _to_int32((g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1))
    box_area = (p[:, 2] - p[:, 0] + 1) * (p[:, 3] - p[:, 1] + 1)
    union = _to_int32(_to_int32(face_area[None, :] + box_area[:, None]) - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = np.where(union != 0, _to_int32(inter / np.where(union != 0, union, 1)),
                           np.where(inter > 0, INT32.max, np.where(inter < 0, INT32.min, 0)))
    overlap[(w <= 0) | (h <= 0)] = 0
    return overlap


def normalise_scores(predictions: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Scores rescaled by the global min and max over all images, as the official code does
    (its running max starts at single-precision realmin, its running min at realmax)."""
    non_empty = [s for _, s in predictions if len(s)]
    high = max([float(np.finfo(np.float32).tiny)] + [float(s.max()) for s in non_empty])
    low = min([float(np.finfo(np.float32).max)] + [float(s.min()) for s in non_empty])
    with np.errstate(divide="ignore", invalid="ignore"):
        return [(np.asarray(s, dtype=np.float64) - low) / (high - low) for _, s in predictions]


def _image_geometry(boxes: np.ndarray, faces: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """For each prediction (in the official order): the face it is matched to (the first maximum
    overlap, as MATLAB's max) and whether the overlap reaches the threshold."""
    iou = official_overlap(faces, boxes)
    best = iou.argmax(axis=1)
    return best, iou[np.arange(len(best)), best] >= iou_threshold


def _image_pr(scores: np.ndarray, best: np.ndarray, hit: np.ndarray, keep: np.ndarray,
              thresholds: np.ndarray) -> np.ndarray:
    """(proposals, recalled faces) at each threshold for one image and one setting."""
    proposal = ~(hit & ~keep[best])  # a prediction on a face outside gt_list is not a proposal
    candidates = np.flatnonzero(hit & keep[best])
    first = np.zeros(len(scores), dtype=bool)
    _, first_index = np.unique(best[candidates], return_index=True)
    first[candidates[first_index]] = True  # a face in gt_list counts once, at its first hit
    pred_recall = np.cumsum(first)
    proposals = np.cumsum(proposal)
    count = np.searchsorted(-scores, -thresholds, side="right")  # predictions with score >= threshold
    out = np.zeros((len(thresholds), 2))
    some = count > 0
    out[some, 0] = proposals[count[some] - 1]
    out[some, 1] = pred_recall[count[some] - 1]
    return out


def wider_official_curves(predictions: list[tuple[np.ndarray, np.ndarray]], faces: list[np.ndarray],
                          keep_lists: dict[str, list[np.ndarray]], iou_threshold: float = 0.5) -> dict[str, PRCurve]:
    """Official WIDER FACE AP for several settings at once (the overlaps are computed once).

    predictions: per image, (boxes (P, 4) as x, y, w, h; scores (P,)); faces: per image, (G, 4)
    as x, y, w, h, integer as in the official .mat (see official_overlap); keep_lists: per
    setting, per image, the 1-based indices of the faces the setting counts (its `gt_list`);
    every other face is ignored. Images in the official order."""
    thresholds = 1 - np.arange(1, THRESHOLDS + 1) / THRESHOLDS
    normalised = normalise_scores(predictions)
    totals = {s: np.zeros((THRESHOLDS, 2)) for s in keep_lists}
    count_face = dict.fromkeys(keep_lists, 0)
    for n, ((boxes, raw), scores, gt) in enumerate(zip(predictions, normalised, faces)):
        for setting in keep_lists:
            count_face[setting] += len(np.asarray(keep_lists[setting][n]).reshape(-1))
        if len(gt) == 0 or len(raw) == 0:
            continue
        order = np.argsort(-np.asarray(raw, dtype=np.float64), kind="stable")
        gt = np.asarray(gt).reshape(-1, 4)
        best, hit = _image_geometry(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order], gt, iou_threshold)
        for setting, lists in keep_lists.items():
            keep = np.zeros(len(gt), dtype=bool)
            keep[np.asarray(lists[n], dtype=np.int64).reshape(-1) - 1] = True
            totals[setting] += _image_pr(scores[order], best, hit, keep, thresholds)
    curves = {}
    for setting, total in totals.items():
        if count_face[setting] == 0:
            curves[setting] = PRCurve(np.zeros(THRESHOLDS), np.zeros(THRESHOLDS), 0.0)
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = total[:, 1] / total[:, 0]
        recall = total[:, 1] / count_face[setting]
        curves[setting] = PRCurve(precision, recall, voc_ap(recall, precision))
    return curves


def wider_official_curve(predictions: list[tuple[np.ndarray, np.ndarray]], faces: list[np.ndarray],
                         keep_lists: list[np.ndarray], iou_threshold: float = 0.5) -> PRCurve:
    """Official WIDER FACE AP for one setting (see wider_official_curves)."""
    return wider_official_curves(predictions, faces, {"setting": keep_lists}, iou_threshold)["setting"]
