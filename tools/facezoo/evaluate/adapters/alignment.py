"""Face alignment to the ArcFace five-point template by a similarity transform."""
from __future__ import annotations

import numpy as np

# insightface's template for 112x112 crops: eyes, nose tip, mouth corners
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + translation mapping `source` points onto `target` in
    the least-squares sense (Umeyama's closed form, no reflection)."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(axis=0).sum()
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The face warped so that its five landmarks land on the ArcFace template (scaled to `size`)."""
    import cv2

    matrix = similarity_transform(landmarks, ARCFACE_TEMPLATE * (size / 112.0))
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)
