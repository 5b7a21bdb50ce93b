"""Face verification metrics on LFW-style pairs: 10-fold accuracy and TAR at a fixed FAR."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
