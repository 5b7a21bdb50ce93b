"""WIDER FACE annotations: the `wider_face_*_bbx_gt.txt` text format and the official `.mat` files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EvaluateError

ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


@dataclass(frozen=True)
class WiderImage:
    """One image: its path relative to the images folder, faces (x, y, w, h), attribute columns."""

    path: str
    faces: np.ndarray  # (N, 4) float64
    attributes: np.ndarray  # (N, 6) int64, columns as ATTRIBUTES

    @property
    def event(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def stem(self) -> str:
        return Path(self.path).stem

    @property
    def invalid(self) -> np.ndarray:
        return self.attributes[:, ATTRIBUTES.index("invalid")] == 1


def parse_bbx_gt(text: str, source: str = "<text>") -> list[WiderImage]:
    """Parse the official annotation text: a path line, a count line, then one line per face of
    `x y w h blur expression illumination invalid occlusion pose`. An image with no face has a
    count of 0 followed by one line of ten zeros, which is not a face."""
    lines = text.splitlines()
    images, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        path = lines[i].strip()
        if not path.lower().endswith((".jpg", ".jpeg", ".png")):
            raise EvaluateError(f"{source}:{i + 1}: expected an image path, found {path[:60]!r}")
        if i + 1 >= len(lines) or not lines[i + 1].strip().isdigit():
            raise EvaluateError(f"{source}:{i + 2}: expected the number of faces of {path}")
        count = int(lines[i + 1])
        rows = max(count, 1)  # a zero-face image still has one line of ten zeros
        if i + 2 + rows > len(lines):
            raise EvaluateError(f"{source}:{len(lines)}: {path} announces {count} faces, the file ends first")
        values = []
        for k in range(i + 2, i + 2 + rows):
            fields = lines[k].split()
            try:
                numbers = [int(float(f)) for f in fields]
            except ValueError:
                numbers = []
            if len(numbers) != 10:
                raise EvaluateError(f"{source}:{k + 1}: expected 10 integers (x y w h blur expression "
                                    f"illumination invalid occlusion pose), found {lines[k].strip()[:60]!r}")
            values.append(numbers)
        table = np.array(values[:count], dtype=np.int64).reshape(-1, 10)
        images.append(WiderImage(path, table[:, :4].astype(np.float64), table[:, 4:]))
        i += 2 + rows
    return images


@dataclass(frozen=True)
class WiderGroundTruth:
    """The official evaluation ground truth, flattened to images in the official order."""

    paths: list[str]  # "<event>/<stem>.jpg"
    faces: list[np.ndarray]  # (G, 4) x, y, w, h, with the file's dtype (int32 officially)
    keep: dict[str, list[np.ndarray]]  # setting -> per image, 1-based indices of the faces it counts
    folder: Path  # where the .mat files are


def _cell_strings(cell) -> list[str]:
    return [str(np.asarray(c).reshape(-1)[0]) for c in np.asarray(cell).reshape(-1)]


SETTINGS = ("easy", "medium", "hard")


def check_official_mat(folder: Path, split: str = "val") -> None:
    """Raise unless `wider_face_<split>.mat` and `wider_{easy,medium,hard}_<split>.mat` are in `folder`."""
    for name in [f"wider_face_{split}.mat"] + [f"wider_{s}_{split}.mat" for s in SETTINGS]:
        path = Path(folder) / name
        if not path.is_file():
            raise EvaluateError(f"{path}: not found (the official WIDER FACE evaluation ground truth)")


def load_official_mat(folder: Path, split: str = "val") -> WiderGroundTruth:
    """Read `wider_face_<split>.mat` and `wider_{easy,medium,hard}_<split>.mat` from `folder`."""
    from scipy.io import loadmat

    check_official_mat(folder, split)

    def load(name: str, variables: list[str]) -> dict:
        path = Path(folder) / name
        try:
            data = loadmat(str(path), variable_names=variables)
            missing = [v for v in variables if v not in data]
            if missing:
                raise EvaluateError(f"{path}: has no variable {missing[0]!r}")
            return data
        except EvaluateError:
            raise
        except Exception as exc:  # scipy raises several types for a damaged file
            raise EvaluateError(f"{path}: not a readable .mat file ({exc})") from None

    main = load(f"wider_face_{split}.mat", ["event_list", "file_list", "face_bbx_list"])
    events = _cell_strings(main["event_list"])
    paths, faces = [], []
    for e, event in enumerate(events):
        stems = _cell_strings(main["file_list"][e, 0])
        boxes = np.asarray(main["face_bbx_list"][e, 0]).reshape(-1)
        for stem, box in zip(stems, boxes):
            paths.append(f"{event}/{stem}.jpg")
            faces.append(np.asarray(box).reshape(-1, 4))  # int32 in the official files: keep it
    keep = {}
    for setting in SETTINGS:
        data = load(f"wider_{setting}_{split}.mat", ["gt_list"])
        keep[setting] = [np.asarray(g, dtype=np.int64).reshape(-1)
                         for e in range(len(events)) for g in np.asarray(data["gt_list"][e, 0]).reshape(-1)]
    return WiderGroundTruth(paths, faces, keep, Path(folder))
