"""Stored predictions: what inference produced per image, kept so that metrics can be computed
later, elsewhere, or from shards merged together; and the official WIDER submission format."""
from __future__ import annotations

import json
import lzma
import warnings
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from facezoo.common.safeio import atomic_output, read_text_limited, regular_input

from .adapters.retinaface import Detections
from .datasets.fields import relative_path
from .errors import EvaluateError


MAX_BYTES = 1 << 30  # unpacked arrays of one stored predictions file
MAX_EMBEDDING = 65536
SUBMISSION_FILE_LIMIT = 64 << 20  # one image's file of the official submission format
# member -> (dtype kinds, number of dimensions, trailing shape)
ARRAYS = {
    "detections": {"kind": ("U", 0, ()), "meta": ("U", 0, ()), "names": ("U", 1, ()), "counts": ("iu", 1, ()),
                   "boxes": ("f", 2, (4,)), "scores": ("f", 1, ()), "landmarks": ("f", 3, (5, 2))},
    "embeddings": {"kind": ("U", 0, ()), "meta": ("U", 0, ()), "names": ("U", 1, ()), "embeddings": ("f", 2, None)},
}
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, zlib.error,
               lzma.LZMAError, ValueError, OSError, struct.error, SyntaxError)


def _save(path: Path, **arrays) -> None:
    with atomic_output(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def save_detections(path: Path, detections: dict[str, Detections], meta: dict[str, Any]) -> None:
    """One .npz: image paths, per-image counts, and the concatenated boxes, scores, landmarks."""
    names = sorted(detections)
    counts = np.array([len(detections[n].scores) for n in names], dtype=np.int64)
    cat = lambda attr, shape: (np.concatenate([getattr(detections[n], attr) for n in names])  # noqa: E731
                               if names else np.zeros(shape))
    _save(path, kind=np.array("detections"), meta=np.array(json.dumps(meta, sort_keys=True)),
          names=np.array(names, dtype=str), counts=counts, boxes=cat("boxes", (0, 4)),
          scores=cat("scores", (0,)), landmarks=cat("landmarks", (0, 5, 2)))


def save_embeddings(path: Path, embeddings: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """One .npz: image paths and their embeddings, one row each."""
    names = sorted(embeddings)
    _save(path, kind=np.array("embeddings"), meta=np.array(json.dumps(meta, sort_keys=True)),
          names=np.array(names, dtype=str),
          embeddings=np.stack([embeddings[n] for n in names]) if names else np.zeros((0, 0)))


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member, its header checked against its size before any array is made."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{info.filename}: .npy format version {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject or dtype.kind not in "iufU" or len(shape) > 3:
            raise ValueError(f"{info.filename}: array of {dtype} and {len(shape)} dimensions")
        if any(d < 0 for d in shape):
            raise ValueError(f"{info.filename}: negative dimension in shape {shape}")
        size = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if size > info.file_size:
            raise ValueError(f"{info.filename}: header declares {size} bytes of data, the member has "
                             f"{info.file_size} in all")
        data = f.read(size + 1)
    if len(data) != size:
        raise ValueError(f"{info.filename}: header declares {size} bytes of data, the member holds {len(data)}")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a stored predictions file, bounded: known member names only, their unpacked
    size capped, no pickled objects."""
    regular_input(path, "stored predictions", EvaluateError)
    known = {f"{k}.npy" for kinds in ARRAYS.values() for k in kinds}
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > len(known):
                raise ValueError(f"{len(infos)} members, at most {len(known)} expected")
            names = [i.filename for i in infos]
            strange = sorted(set(names) - known) or sorted({n for n in names if names.count(n) > 1})
            if strange:
                raise ValueError(f"unexpected or repeated member {strange[0]!r}")
            if sum(i.file_size for i in infos) > MAX_BYTES:
                raise ValueError(f"members unpack to more than {MAX_BYTES:,} bytes")
            return {i.filename[:-4]: _member(archive, i) for i in infos}
    except _ZIP_ERRORS as exc:
        raise EvaluateError(f"{path}: not a stored predictions file ({type(exc).__name__}: {exc})") from None


def _checked(path: Path, arrays: dict[str, np.ndarray]) -> tuple[str, dict, list[str]]:
    """Kind, settings and image names of a stored predictions file, after checking every array's
    dtype, shape, values and that the counts agree with the array lengths."""
    def fail(message: str):
        raise EvaluateError(f"{path}: {message}")

    if "kind" not in arrays or arrays["kind"].shape != () or arrays["kind"].dtype.kind != "U":
        fail("has no 'kind' (detections or embeddings)")
    kind = str(arrays["kind"])
    if kind not in ARRAYS:
        fail(f"kind {kind[:40]!r}: expected detections or embeddings")
    if set(arrays) != set(ARRAYS[kind]):
        fail(f"{kind} need the arrays {', '.join(sorted(ARRAYS[kind]))}, found {', '.join(sorted(arrays))}")
    for name, (kinds, ndim, tail) in ARRAYS[kind].items():
        a = arrays[name]
        if a.dtype.kind not in kinds or a.ndim != ndim or (tail is not None and a.shape[1:] != tail):
            fail(f"{name}: expected {ndim}-dimensional {kinds} data{f' of shape (N, {tail})' if tail else ''}, "
                 f"found {a.dtype} of shape {a.shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            fail(f"{name}: holds NaN or infinite values")
    try:
        meta = json.loads(str(arrays["meta"]))
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict):
        fail("meta: expected the JSON object of the run's settings")
    names = [str(n) for n in arrays["names"]]
    for n in names:
        relative_path(n, str(path), "image name")
    if len(set(names)) != len(names):
        fail(f"names: {len(names) - len(set(names))} images named twice")
    if kind == "detections":
        counts, total = arrays["counts"], len(arrays["boxes"])
        if len(counts) != len(names) or (counts < 0).any() or int(counts.sum(dtype=object)) != total:
            fail(f"counts: expected {len(names)} non-negative counts summing to the {total} boxes, found "
                 f"{len(counts)} summing to {int(counts.sum(dtype=object))}")
        if len(arrays["scores"]) != total or len(arrays["landmarks"]) != total:
            fail(f"boxes, scores, landmarks: expected {total} of each, found {len(arrays['scores'])} scores and "
                 f"{len(arrays['landmarks'])} landmarks")
    elif arrays["embeddings"].shape[0] != len(names) or not 1 <= arrays["embeddings"].shape[1] <= MAX_EMBEDDING:
        fail(f"embeddings: expected {len(names)} rows of 1 to {MAX_EMBEDDING} values, found "
             f"{arrays['embeddings'].shape}")
    return kind, meta, names


def load_predictions(paths: list[Path], meta: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
    """Predictions from one or more stored files (shards are merged), each validated on load;
    their settings must agree with each other and with every key of `meta`, their kind with
    `kind` (detections or embeddings), and no image may appear in two shards."""
    merged: dict[str, Any] = {}
    first: tuple[Path, str, dict] | None = None
    for path in paths:
        arrays = _read_arrays(path)
        found, stored, names = _checked(path, arrays)
        if kind is not None and found != kind:
            raise EvaluateError(f"{path}: holds {found}, this dataset needs {kind}")
        diff = sorted(k for k in meta if stored.get(k) != meta[k])
        if diff:
            raise EvaluateError(f"{path}: predictions were made with other settings ({', '.join(diff)} differ)")
        if first is None:
            first = (path, found, stored)
        elif (found, stored) != first[1:]:
            diff = sorted(k for k in set(stored) | set(first[2]) if stored.get(k) != first[2].get(k)) or ["kind"]
            raise EvaluateError(f"{path}: shard made with other settings than {first[0]} ({', '.join(diff)} differ)")
        if found == "detections":
            counts, boxes, scores, marks = arrays["counts"], arrays["boxes"], arrays["scores"], arrays["landmarks"]
            ends = np.cumsum(counts)
            items = {n: Detections(boxes[s:e], scores[s:e], marks[s:e]) for n, s, e in zip(names, ends - counts, ends)}
        else:
            items = dict(zip(names, arrays["embeddings"]))
        twice = set(items) & set(merged)
        if twice:
            raise EvaluateError(f"{path}: {len(twice)} images also in an earlier shard, e.g. {sorted(twice)[0]}")
        merged.update(items)
    return merged


def write_submission(folder: Path, detections: dict[str, Detections]) -> None:
    """The official per-image format: `<event>/<stem>.txt` holding the image name, the count,
    then `x y w h score` lines (w = x2 - x1); values written exactly (shortest round-trip).
    Every file stays inside `folder` (image paths must be contained); the caller gives a fresh
    folder and puts it in place whole."""
    base = Path(folder).resolve()
    for path, det in detections.items():
        target = (base / relative_path(path, "--submission_dir", "image path")).with_suffix(".txt")
        if base not in target.resolve().parents:
            raise EvaluateError(f"--submission_dir: {path} would be written outside {folder}")
        target.parent.mkdir(parents=True, exist_ok=True)
        xywh = np.concatenate([det.boxes[:, :2], det.boxes[:, 2:] - det.boxes[:, :2]], axis=1)
        lines = [Path(path).stem, str(len(det.scores))]
        lines += [" ".join(repr(float(v)) for v in (*box, score)) for box, score in zip(xywh, det.scores)]
        target.write_text("\n".join(lines) + "\n")


def read_submission(folder: Path, paths: list[str]) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Per image of `paths`, (x y w h boxes, scores) read from the official format. A missing file
    counts as no prediction, as in the official code; the missing ones are returned too."""
    files, counts, bodies, missing = [], [], [], []
    for path in paths:
        file = Path(folder) / Path(path).with_suffix(".txt")
        if not file.is_file():
            missing.append(str(file))
            files.append(None)
            counts.append(0)
            continue
        text = read_text_limited(file, SUBMISSION_FILE_LIMIT, "submission file", EvaluateError)
        lines = text.split("\n", 2)
        try:
            count = int(lines[1])
            if count < 0:
                raise ValueError
        except (IndexError, ValueError):
            raise EvaluateError(_submission_error(file)) from None
        body = lines[2].split("\n", count)[:count] if count and len(lines) > 2 else []
        if len(body) != count:
            raise EvaluateError(_submission_error(file))
        files.append(file)
        counts.append(count)
        bodies.extend(body)
    rows = _five_numbers_per_line(bodies)
    if rows is None:  # some line is not five numbers: find the file, and accept extra columns as before
        rows = np.concatenate([_rows_of(file, bodies[start:start + count]) for file, start, count in
                               zip(files, np.cumsum([0] + counts[:-1]), counts) if file is not None] +
                              [np.zeros((0, 5))])
    out, start = [], 0
    for count in counts:
        out.append((rows[start:start + count, :4], rows[start:start + count, 4]))
        start += count
    return out, missing


def _submission_error(file: Path) -> str:
    return f"{file}: expected the image name, a count, then that many 'x y w h score' lines of finite numbers"


def _five_numbers_per_line(lines: list[str]) -> np.ndarray | None:
    """The (n, 5) values of n lines that each hold exactly five finite numbers, parsed together in
    one call (the official files hold millions of numbers); None when a line does not."""
    if not lines:
        return np.zeros((0, 5))
    text = "\n".join(lines)
    data = np.frombuffer(text.encode("utf-8"), np.uint8)
    newline = data == 10
    separator = newline | (data == 32) | (data == 9) | (data == 13)
    starts = np.flatnonzero(~separator & np.concatenate([[True], separator[:-1]]))  # where tokens begin
    ends = np.concatenate([np.flatnonzero(newline), [len(data)]])  # where lines end
    if len(ends) != len(lines) or (np.diff(np.searchsorted(starts, ends), prepend=0) != 5).any():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # text it cannot parse: NumPy warns and stops early
        try:
            values = np.fromstring(text, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    if len(values) != 5 * len(lines) or not np.isfinite(values).all():
        return None
    return values.reshape(-1, 5)


def _rows_of(file: Path, lines: list[str]) -> np.ndarray:
    """One file's lines, each the first five numbers of the line, or its one-line error."""
    try:
        rows = np.array([[float(v) for v in line.split()[:5]] for line in lines]).reshape(-1, 5)
        if len(rows) != len(lines) or not np.isfinite(rows).all():
            raise ValueError
    except ValueError:
        raise EvaluateError(_submission_error(file)) from None
    return rows
