"""Face verification metrics on LFW-style pairs: 10-fold accuracy and TAR at a fixed FAR, under
facezoo's protocol and the two whose published figures people compare with: insightface's
verification code and Open Model Zoo's pairwise_accuracy_subsets."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EvaluateError

# squared L2 distances of unit vectors lie in [0, 4]; insightface's verification uses this grid
THRESHOLDS = np.arange(0, 4, 0.01)


@dataclass(frozen=True)
class VerificationResult:
    """Accuracy per fold (best threshold chosen on the other folds), and the ROC."""

    fold_accuracy: np.ndarray
    fold_threshold: np.ndarray
    mean: float
    std: float
    tar_at_far: float
    far: float
    roc_far: np.ndarray
    roc_tar: np.ndarray


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def pair_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Squared L2 distance between unit-normalised embeddings, per pair."""
    return np.sum((l2_normalise(first) - l2_normalise(second)) ** 2, axis=1)


def _accuracy(distances: np.ndarray, same: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy at each threshold (a pair is called the same person when distance < threshold)."""
    called = distances[None, :] < thresholds[:, None]
    return (called == same[None, :]).mean(axis=1)


def tar_at_far(distances: np.ndarray, same: np.ndarray, far: float) -> tuple[float, np.ndarray, np.ndarray]:
    """True accept rate at the largest threshold whose false accept rate is <= far, and the ROC.
    With n mismatched pairs, FARs below 1/n can only be met with no false accept at all."""
    same = np.asarray(same, dtype=bool)
    cuts = np.unique(np.concatenate([[0.0], distances, [np.inf]]))
    accepted = distances[None, :] < cuts[:, None]
    roc_far = accepted[:, ~same].mean(axis=1) if (~same).any() else np.zeros(len(cuts))
    roc_tar = accepted[:, same].mean(axis=1) if same.any() else np.zeros(len(cuts))
    allowed = np.flatnonzero(roc_far <= far)
    return float(roc_tar[allowed[-1]]) if len(allowed) else 0.0, roc_far, roc_tar


def verification_accuracy(distances: np.ndarray, same: np.ndarray, folds: np.ndarray,
                          far: float = 1e-3) -> VerificationResult:
    """k-fold verification accuracy: for each fold, the threshold with the best accuracy on the
    other folds (the smallest one on ties) scores this fold. `folds` gives each pair's fold."""
    distances = np.asarray(distances, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    folds = np.asarray(folds)
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        train_accuracy = _accuracy(distances[~test], same[~test], THRESHOLDS)
        best = THRESHOLDS[int(np.argmax(train_accuracy))]
        thresholds.append(best)
        accuracies.append(float(_accuracy(distances[test], same[test], np.array([best]))[0]))
    tar, roc_far, roc_tar = tar_at_far(distances, same, far)
    acc = np.array(accuracies)
    return VerificationResult(acc, np.array(thresholds), float(acc.mean()), float(acc.std()), tar, far,
                              roc_far, roc_tar)


# --- named protocols: the published figures' own procedures ---

PROTOCOLS = ("facezoo", "insightface", "omz_subsets")
VAL_THRESHOLDS = np.arange(0, 4, 0.001)  # insightface's grid for the threshold at a target FAR
FOLDS = 10
GRN_BIAS = 1e-6  # Open Model Zoo's reid adapter: x / sqrt(sum(x^2) + 1e-6)


@dataclass(frozen=True)
class ValResult:
    """insightface's validation rate at a target FAR: mean and std over folds, the mean FAR met."""

    val: float
    std: float
    far: float
    fold_val: np.ndarray
    fold_threshold: np.ndarray


@dataclass(frozen=True)
class SubsetsResult:
    """Open Model Zoo's pairwise_accuracy_subsets: accuracy per subset at the median training distance."""

    mean: float
    std: float
    subset_accuracy: np.ndarray
    subset_threshold: np.ndarray


def kfold(count: int, folds: int = FOLDS) -> np.ndarray:
    """Each pair's fold as scikit-learn's KFold(folds, shuffle=False) deals them: contiguous
    blocks in order, the first `count % folds` blocks one pair longer."""
    if count < folds:
        raise EvaluateError(f"{count} pairs cannot be dealt to {folds} folds (at least {folds} are needed)")
    sizes = np.full(folds, count // folds)
    sizes[:count % folds] += 1
    return np.repeat(np.arange(folds), sizes)


def insightface_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Squared L2 distance after scikit-learn's row normalisation (x / sqrt(sum x^2), zero rows
    unchanged), as insightface's verification computes it on flip-summed embeddings."""
    def normalise(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        norm = np.sqrt(np.einsum("ij,ij->i", x, x))
        norm[norm == 0] = 1.0
        return x / norm[:, None]

    return np.sum(np.square(normalise(first) - normalise(second)), axis=1)


def _interpolated_threshold(far_train: np.ndarray, thresholds: np.ndarray, target: float) -> float:
    """The threshold where the training FAR curve reaches `target`: linear between the last grid
    point whose FAR is <= target (the largest threshold of a run of equal FARs) and the next, as
    insightface's interp1d(far, thresholds, kind='slinear') evaluated it; 0 when the FAR never
    reaches the target; the last grid point when the target is the largest FAR."""
    if far_train[-1] < target:
        return 0.0
    j = int(np.searchsorted(far_train, target, side="right")) - 1
    if j == len(far_train) - 1 or far_train[j] == target:
        return float(thresholds[j])
    f0, f1, t0, t1 = far_train[j], far_train[j + 1], thresholds[j], thresholds[j + 1]
    return float(t0 * (f1 - target) / (f1 - f0) + t1 * (target - f0) / (f1 - f0))


def insightface_val(distances: np.ndarray, same: np.ndarray, folds: np.ndarray, far: float = 1e-3) -> ValResult:
    """insightface's TAR at a target FAR ('val'): per fold, the threshold at which the training
    folds' FAR reaches `far` (grid 0..4 step 0.001, interpolated), then the test fold's TAR and
    FAR at it (a pair is accepted when its distance is below the threshold). Each test fold must
    hold both kinds of pair, and the other folds mismatched pairs."""
    distances = np.asarray(distances, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    folds = np.asarray(folds)
    vals, fars, thresholds = [], [], []
    for fold in np.unique(folds):
        test = folds == fold
        missing = ("mismatched pair in its training folds" if same[~test].all() else
                   "matched pair" if not same[test].any() else "mismatched pair" if same[test].all() else None)
        if missing:
            raise EvaluateError(f"insightface TAR@FAR: fold {int(fold) + 1} has no {missing} (the FAR and TAR "
                                f"would divide by zero)")
        impostor = np.sort(distances[~test & ~same])
        far_train = np.searchsorted(impostor, VAL_THRESHOLDS, side="left") / len(impostor)
        threshold = _interpolated_threshold(far_train, VAL_THRESHOLDS, far)
        accepted = distances[test] < threshold
        vals.append(np.count_nonzero(accepted & same[test]) / np.count_nonzero(same[test]))
        fars.append(np.count_nonzero(accepted & ~same[test]) / np.count_nonzero(~same[test]))
        thresholds.append(threshold)
    v = np.array(vals)
    return ValResult(float(v.mean()), float(v.std()), float(np.mean(fars)), v, np.array(thresholds))


def omz_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Open Model Zoo's 'euclidian_distance' on its reid adapter's output: each embedding scaled by
    1 / sqrt(sum x^2 + 1e-6), then 0.5 * (1 - dot), in float32 as the network gives it."""
    def grn(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x / np.sqrt(np.sum(x ** 2, axis=1) + np.float32(GRN_BIAS))[:, None]

    return 0.5 * (1 - np.sum(grn(first) * grn(second), axis=1))


def omz_lfw_units(first: list[str], second: list[str], same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How Open Model Zoo's `lfw` annotation converter groups pairs.txt: one annotation per image
    in order of first appearance (matched pairs' images first, then mismatched), holding the set
    of pairs it starts. Returns each pair's annotation rank among those that start pairs, and
    which pairs count (a repeated pair counts once)."""
    order: dict[str, int] = {}
    for kind in (True, False):
        for a, b, s in zip(first, second, same):
            if bool(s) == kind:
                order.setdefault(a, len(order))
                order.setdefault(b, len(order))
    starting = sorted({order[a] for a in first})
    rank = {position: r for r, position in enumerate(starting)}
    seen: set[tuple[str, str, bool]] = set()
    keep = np.zeros(len(first), dtype=bool)
    for i, key in enumerate(zip(first, second, (bool(s) for s in same))):
        keep[i] = key not in seen
        seen.add(key)
    return np.array([rank[order[a]] for a in first], dtype=np.int64), keep


def omz_subsets(distances: np.ndarray, same: np.ndarray, units: np.ndarray, subsets: int = FOLDS) -> SubsetsResult:
    """Open Model Zoo's pairwise_accuracy_subsets (min_score: train_median): the annotations
    (`units`, numbered 0..U-1 in order) cut into `subsets` contiguous blocks (block s holds ranks
    s*U//k up to (s+1)*U//k); for each block, the median distance of every pair outside it is the
    threshold, and a pair of the block is called one person when its distance is below it.
    The result is the mean block accuracy (blocks without pairs are left out)."""
    distances = np.asarray(distances)
    same = np.asarray(same, dtype=bool)
    units = np.asarray(units)
    count = int(units.max()) + 1 if len(units) else 0
    if count < subsets:
        raise EvaluateError(f"omz_subsets: {count} annotated images cannot be cut into {subsets} subsets")
    accuracies, thresholds = [], []
    for s in range(subsets):
        test = (units >= s * count // subsets) & (units < (s + 1) * count // subsets)
        if not test.any():
            continue
        threshold = np.median(distances[~test])
        accuracies.append(float(np.mean((distances[test] < threshold) == same[test])))
        thresholds.append(float(threshold))
    acc = np.array(accuracies)
    return SubsetsResult(float(acc.mean()), float(acc.std()), acc, np.array(thresholds))
