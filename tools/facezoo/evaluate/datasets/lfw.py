"""LFW: the `pairs.txt` format (View 2), image paths, and pairs generated from a folder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EvaluateError


@dataclass(frozen=True)
class Pairs:
    """Pairs of images (paths relative to the dataset root), whether each is one person, its fold."""

    first: list[str]
    second: list[str]
    same: np.ndarray  # bool
    fold: np.ndarray  # int

    def __len__(self) -> int:
        return len(self.first)


def image_path(name: str, number: int, ext: str = "jpg") -> str:
    """`<name>/<name>_<NNNN>.<ext>`, LFW's layout."""
    return f"{name}/{name}_{number:04d}.{ext}"


def parse_pairs(text: str, source: str = "<text>", ext: str = "jpg") -> Pairs:
    """Parse `pairs.txt`: a `folds n` header, then per fold n matched lines (`name i j`) and n
    mismatched lines (`name1 i name2 j`). Folds are kept as in the file."""
    lines = [(k + 1, line.split()) for k, line in enumerate(text.splitlines()) if line.strip()]
    if not lines or len(lines[0][1]) != 2 or not all(f.isdigit() for f in lines[0][1]):
        raise EvaluateError(f"{source}:1: expected a header '<folds> <pairs per kind per fold>'")
    folds, n = (int(f) for f in lines[0][1])
    body = lines[1:]
    if folds < 2 or len(body) != folds * 2 * n:
        raise EvaluateError(f"{source}: header says {folds} folds x {2 * n} pairs = {folds * 2 * n} lines "
                            f"(at least 2 folds), the file has {len(body)}")
    first, second, same, fold = [], [], [], []
    for index, (line_no, f) in enumerate(body):
        matched = (index % (2 * n)) < n
        try:
            if matched and len(f) == 3:
                a, b = image_path(f[0], int(f[1]), ext), image_path(f[0], int(f[2]), ext)
            elif not matched and len(f) == 4:
                a, b = image_path(f[0], int(f[1]), ext), image_path(f[2], int(f[3]), ext)
            else:
                raise ValueError
        except ValueError:
            expected = "'name i j' (matched pair)" if matched else "'name1 i name2 j' (mismatched pair)"
            raise EvaluateError(f"{source}:{line_no}: expected {expected}, found {' '.join(f)!r}") from None
        first.append(a)
        second.append(b)
        same.append(matched)
        fold.append(index // (2 * n))
    return Pairs(first, second, np.array(same), np.array(fold))


def make_pairs(root: Path, folds: int = 10) -> str:
    """`pairs.txt` text for a folder of `<name>/<name>_NNNN.jpg` holding two or more images of
    each person: one matched pair per person (its first two images), and as many mismatched
    pairs, person i's first image with the second image of person (i + N/2) mod N, names sorted.
    Pairs are dealt to folds in name order; N must be a multiple of `folds`."""
    people = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        numbers = sorted(int(f.stem.rsplit("_", 1)[1]) for f in folder.glob(f"{folder.name}_*.jpg"))
        if len(numbers) >= 2:
            people.append((folder.name, numbers[0], numbers[1]))
    count = len(people)
    if count < 2 or count % folds:
        raise EvaluateError(f"{root}: {count} people with two images, not a multiple of {folds} folds")
    per_fold = count // folds
    lines = [f"{folds} {per_fold}"]
    for f in range(folds):
        chunk = range(f * per_fold, (f + 1) * per_fold)
        lines += [f"{people[i][0]} {people[i][1]} {people[i][2]}" for i in chunk]
        for i in chunk:
            other = people[(i + count // 2) % count]
            lines.append(f"{people[i][0]} {people[i][1]} {other[0]} {other[2]}")
    return "\n".join(lines) + "\n"
