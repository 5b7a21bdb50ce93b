"""Five-point face landmarks per image (`<image> x1 y1 ... x5 y5` lines), for alignment: numbers
finite decimal ASCII, images named once, and no degenerate set (all points equal or on a line,
which no similarity transform can map onto the template)."""
from __future__ import annotations

import numpy as np

from ..errors import EvaluateError
from .fields import decimal, relative_path, shown

COORDINATE = 1e7
FORMAT = "'<image> x1 y1 x2 y2 x3 y3 x4 y4 x5 y5' (an image path and 10 decimal numbers)"


def degenerate(points: np.ndarray) -> np.ndarray:
    """Per set of points (K, P, 2): whether the points are not finite, all equal or collinear
    (the smaller singular value of the centred points is below 1e-6 of the larger, or zero)."""
    points = np.asarray(points, dtype=np.float64)
    finite = np.isfinite(points).all(axis=(1, 2))
    centred = np.where(finite[:, None, None], points, 0.0)
    centred = centred - centred.mean(axis=1, keepdims=True)
    spread = np.linalg.svd(centred, compute_uv=False) if len(points) else np.zeros((0, 2))
    return ~finite | (spread[:, 1] <= 1e-6 * spread[:, 0]) | (spread[:, 0] == 0)


def check_landmarks(points: np.ndarray, where: str) -> np.ndarray:
    """`points` (5, 2) when they can align a face, else an error naming `where`."""
    if degenerate(np.asarray(points)[None])[0]:
        raise EvaluateError(f"{where}: landmarks are not finite or are degenerate (all equal or on one line): "
                            f"{np.asarray(points).reshape(-1).tolist()}")
    return points


def parse_landmarks(text: str, source: str = "<text>") -> dict[str, np.ndarray]:
    """Landmarks by image path (5 x 2 float64) from the text of a landmarks file."""
    names, rows, line_of = [], [], {}
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{source}:{n}"
        if len(fields) != 11:
            raise EvaluateError(f"{where}: expected {FORMAT}, found {len(fields)} fields {shown(line.strip())}")
        name = relative_path(fields[0], where, "image")
        if name in line_of:
            raise EvaluateError(f"{where}: {name} has landmarks twice (first at line {line_of[name]})")
        line_of[name] = n
        names.append(name)
        rows.append([decimal(v, where, f"landmark value {k + 1}", -COORDINATE, COORDINATE)
                     for k, v in enumerate(fields[1:])])
    if not names:
        raise EvaluateError(f"{source}: no landmarks (expected lines of {FORMAT})")
    points = np.array(rows, dtype=np.float64).reshape(-1, 5, 2)
    bad = np.flatnonzero(degenerate(points))
    if len(bad):
        name = names[bad[0]]
        check_landmarks(points[bad[0]], f"{source}:{line_of[name]}: {name}")
    return dict(zip(names, points))
