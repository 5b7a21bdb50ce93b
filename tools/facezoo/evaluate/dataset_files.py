"""Reading a dataset's text files (checked, hashed) and choosing which images or pairs to use."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from facezoo.common.safeio import read_text_limited

from .errors import EvaluateError
from .results import RunOptions


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


TEXT_LIMIT = 256 << 20  # bytes of an annotation, pairs or landmarks file


def checked_file(root: Path, relative: str | None, what: str, expected_sha: str | None, strict: bool,
                  warnings: list[str], hashes: dict[str, str]) -> tuple[Path, str]:
    """A dataset file's path and UTF-8 text (a regular file of at most TEXT_LIMIT bytes), its
    sha256 recorded and compared with the definition's."""
    if relative is None:
        raise EvaluateError(f"dataset definition: {what} is not defined")
    path = Path(root) / relative
    if not path.exists():
        raise EvaluateError(f"{path}: {what} not found (dataset root -s {root})")
    text = read_text_limited(path, TEXT_LIMIT, what, EvaluateError)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()  # valid UTF-8 round-trips to the same bytes
    hashes[what] = digest
    if expected_sha and digest != expected_sha:
        message = f"{path}: sha256 {digest} differs from the expected {expected_sha}"
        if strict:
            raise EvaluateError(message + " (--strict)")
        warnings.append(message)
    return path, text


def check_images_exist(folder: Path, relative: list[str]) -> None:
    """Missing images stop the run; ones that exist but are not readable images are found (and
    skipped under --skip_broken) when they are read."""
    for r in relative:
        if not (folder / r).exists():
            raise EvaluateError(f"{folder / r}: image not found")


def subsample(options: RunOptions, count: int, unit: str) -> int:
    """How many images or pairs to use: --subsample_size, which must lie in 1..count."""
    size = options.subsample_size
    if size is None:
        return count
    if not 1 <= size <= count:
        raise EvaluateError(f"--subsample_size {size}: expected 1 to {count} (the dataset has {count} {unit})")
    return size


def reading_stored(options: RunOptions) -> bool:
    """Whether the stored predictions are read (every given path exists) rather than written."""
    paths = options.stored_predictions
    return bool(paths) and all(Path(p).exists() or Path(p).is_symlink() for p in paths)


def unknown_names(stored: dict[str, Any], wanted: set[str], what: str) -> None:
    """Stored predictions must be of this dataset's images."""
    extra = sorted(set(stored) - wanted)
    if extra:
        raise EvaluateError(f"--stored_predictions: {extra[0]} is not among the dataset's {what} "
                            f"({len(extra)} such entries): predictions of another dataset?")
