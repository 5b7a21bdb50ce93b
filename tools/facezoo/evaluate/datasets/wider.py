"""WIDER FACE annotations: the `wider_face_*_bbx_gt.txt` text format and the official `.mat` files."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facezoo.common.safeio import regular_input

from ..errors import EvaluateError
from .fields import integer, relative_path, shown
from .mat import load_mat

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


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MAX_FACES = 100_000  # per image; the official val set's largest has 709
COORDINATE = 9_999_999
# blur expression illumination invalid occlusion pose: the values the official format uses
ATTRIBUTE_MAX = (2, 1, 1, 1, 2, 1)
# w and h may be negative: the official val ground truth has w = -2 (39_Ice_Skating_iceskiing_39_583);
# metrics ignore faces without a positive size
_ROW = re.compile(r"(-?[0-9]{1,7}) (-?[0-9]{1,7}) (-?[0-9]{1,7}) (-?[0-9]{1,7}) "
                  + " ".join(f"([0-{m}])" for m in ATTRIBUTE_MAX))
FACE_FIELDS = "x y w h blur expression illumination invalid occlusion pose"


def _face_row(line: str, where: str) -> list[int]:
    """One face line as 10 ints; an error naming the line and field otherwise."""
    fields = line.split()
    match = _ROW.fullmatch(" ".join(fields))
    if match:
        return [int(v) for v in match.groups()]
    if len(fields) != 10:
        raise EvaluateError(f"{where}: expected 10 integers ({FACE_FIELDS}), found {len(fields)} fields "
                            f"{shown(line.strip())}")
    # the pattern is the common case; signs, leading zeros and the errors go field by field
    bounds = [(-COORDINATE, COORDINATE)] * 4 + [(0, m) for m in ATTRIBUTE_MAX]
    return [integer(token, where, name, low, high)
            for token, name, (low, high) in zip(fields, FACE_FIELDS.split(), bounds)]


def _is_image_line(line: str) -> bool:
    return line.strip().lower().endswith(IMAGE_SUFFIXES)


def parse_bbx_gt(text: str, source: str = "<text>") -> list[WiderImage]:
    """Parse the official annotation text: a path line, a count line, then one line per face of
    `x y w h blur expression illumination invalid occlusion pose` (decimal ASCII integers of at
    most 7 digits; attributes within the official values). An image with no face has a count of 0 followed by one line of
    ten zeros, which is not a face. Paths must stay inside the images folder and appear once;
    a file without images is an error."""
    lines = text.splitlines()
    images: list[WiderImage] = []
    seen: dict[str, int] = {}
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        where = f"{source}:{i + 1}"
        path = lines[i].strip()
        if not _is_image_line(path):
            raise EvaluateError(f"{where}: expected an image path ending in {', '.join(IMAGE_SUFFIXES)}, "
                                f"found {shown(path)}")
        relative_path(path, where, "image path")
        if path in seen:
            raise EvaluateError(f"{where}: {path} is annotated twice (first at line {seen[path]})")
        seen[path] = i + 1
        if i + 1 >= len(lines):
            raise EvaluateError(f"{source}:{i + 2}: expected the number of faces of {path}, the file ends")
        count = integer(lines[i + 1].strip(), f"{source}:{i + 2}", f"number of faces of {path}", 0, MAX_FACES)
        rows = max(count, 1)  # a zero-face image still has one line of ten zeros
        block = lines[i + 2:i + 2 + rows]
        early = next((k for k, line in enumerate(block) if _is_image_line(line)), None)
        if early is not None or len(block) < rows:
            found = early if early is not None else len(block)
            ending = f"line {i + 3 + early} is the next image" if early is not None else "the file ends"
            lines_meant = f"{rows} lines" if count else "1 line of ten zeros"
            raise EvaluateError(f"{source}:{i + 2}: {path} announces {count} faces ({lines_meant}), "
                                f"found {found} before {ending}")
        values = [_face_row(line, f"{source}:{i + 3 + k}") for k, line in enumerate(block)]
        table = np.array(values[:count], dtype=np.int64).reshape(-1, 10)
        images.append(WiderImage(path, table[:, :4].astype(np.float64), table[:, 4:]))
        i += 2 + rows
    if not images:
        raise EvaluateError(f"{source}: no image is annotated (expected '<event>/<name>.jpg' lines, each "
                            f"followed by its number of faces and one line per face)")
    return images


@dataclass(frozen=True)
class WiderGroundTruth:
    """The official evaluation ground truth, flattened to images in the official order."""

    paths: list[str]  # "<event>/<stem>.jpg"
    faces: list[np.ndarray]  # (G, 4) x, y, w, h, with the file's dtype (int32 officially)
    keep: dict[str, list[np.ndarray]]  # setting -> per image, 1-based indices of the faces it counts
    folder: Path  # where the .mat files are


SETTINGS = ("easy", "medium", "hard")


def check_official_mat(folder: Path, split: str = "val") -> None:
    """Raise unless `wider_face_<split>.mat` and `wider_{easy,medium,hard}_<split>.mat` are regular
    files in `folder`."""
    for name in [f"wider_face_{split}.mat"] + [f"wider_{s}_{split}.mat" for s in SETTINGS]:
        path = Path(folder) / name
        if not path.exists():
            raise EvaluateError(f"{path}: not found (the official WIDER FACE evaluation ground truth)")
        regular_input(path, "official ground truth", EvaluateError)


def _cells(value: Any, where: str, length: int | None = None) -> np.ndarray:
    """A MATLAB cell vector (object array with one non-singleton dimension at most) as a flat
    array of its elements."""
    array = np.asarray(value)
    if array.dtype != object or array.ndim > 2 or (array.ndim == 2 and min(array.shape) > 1):
        raise EvaluateError(f"{where}: expected a cell vector, found {array.dtype} of shape {array.shape}")
    flat = array.reshape(-1)
    if length is not None and len(flat) != length:
        raise EvaluateError(f"{where}: expected {length} cells, found {len(flat)}")
    return flat


def _name(value: Any, where: str) -> str:
    """A MATLAB char array holding one file or folder name."""
    array = np.asarray(value)
    if array.dtype.kind != "U" or array.size != 1:
        raise EvaluateError(f"{where}: expected a name (char array), found {array.dtype} of shape {array.shape}")
    name = str(array.reshape(-1)[0])
    if "/" in name:
        raise EvaluateError(f"{where}: expected a name without '/', found {shown(name)}")
    return relative_path(name, where, "name")


def _numbers(value: Any, where: str) -> np.ndarray:
    """A real numeric array with finite values, flattened."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise EvaluateError(f"{where}: expected a numeric array, found {array.dtype}")
    flat = array.reshape(-1)
    if array.dtype.kind == "f" and not np.isfinite(flat).all():
        raise EvaluateError(f"{where}: holds NaN or infinite values")
    return flat


def load_official_mat(folder: Path, split: str = "val") -> WiderGroundTruth:
    """Read `wider_face_<split>.mat` and `wider_{easy,medium,hard}_<split>.mat` from `folder`,
    checking every variable's structure: cell vectors of one cell per event, per event one name,
    box array (G x 4, finite) and kept-face index list (integers 1..G) per image."""
    check_official_mat(folder, split)
    main_path = Path(folder) / f"wider_face_{split}.mat"
    main = load_mat(main_path, ["event_list", "file_list", "face_bbx_list"])
    events = [_name(e, f"{main_path}: event_list{{{k + 1}}}")
              for k, e in enumerate(_cells(main["event_list"], f"{main_path}: event_list"))]
    file_lists = _cells(main["file_list"], f"{main_path}: file_list", len(events))
    box_lists = _cells(main["face_bbx_list"], f"{main_path}: face_bbx_list", len(events))
    paths, faces, per_event = [], [], []
    for e, event in enumerate(events):
        stems = _cells(file_lists[e], f"{main_path}: file_list{{{e + 1}}}")
        boxes = _cells(box_lists[e], f"{main_path}: face_bbx_list{{{e + 1}}}", len(stems))
        per_event.append(len(stems))
        for k, (stem, box) in enumerate(zip(stems, boxes)):
            paths.append(f"{event}/{_name(stem, f'{main_path}: file_list{{{e + 1}}}{{{k + 1}}}')}.jpg")
            where = f"{main_path}: face_bbx_list{{{e + 1}}}{{{k + 1}}}"
            if _numbers(box, where).size % 4:
                raise EvaluateError(f"{where}: expected G x 4 boxes, found shape {np.shape(box)}")
            faces.append(np.asarray(box).reshape(-1, 4))  # int32 in the official files: keep it
    if len(set(paths)) != len(paths):
        raise EvaluateError(f"{main_path}: file_list names an image twice")
    keep = {}
    for setting in SETTINGS:
        path = Path(folder) / f"wider_{setting}_{split}.mat"
        lists = _cells(load_mat(path, ["gt_list"])["gt_list"], f"{path}: gt_list", len(events))
        keep[setting] = []
        for e, count in enumerate(per_event):
            for k, g in enumerate(_cells(lists[e], f"{path}: gt_list{{{e + 1}}}", count)):
                where = f"{path}: gt_list{{{e + 1}}}{{{k + 1}}}"
                values = _numbers(g, where)
                index = values.astype(np.int64)
                faces_here = len(faces[len(keep[setting])])
                if values.size and ((index != values).any() or index.min() < 1 or index.max() > faces_here):
                    raise EvaluateError(f"{where}: expected face indices from 1 to {faces_here}")
                keep[setting].append(index)
    return WiderGroundTruth(paths, faces, keep, Path(folder))
