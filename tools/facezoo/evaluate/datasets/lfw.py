"""LFW: the `pairs.txt` format (View 2), image paths, and pairs generated from a folder."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EvaluateError
from .fields import integer, relative_path, shown


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


MAX_FOLDS = 1000
MAX_PER_FOLD = 1_000_000
MAX_NUMBER = 9999  # LFW numbers a person's images with four digits


def _person(name: str, where: str) -> str:
    if "/" in name:
        raise EvaluateError(f"{where}: person name: expected a folder name without '/', found {shown(name)}")
    return relative_path(name, where, "person name")


def parse_pairs(text: str, source: str = "<text>", ext: str = "jpg") -> Pairs:
    """Parse `pairs.txt`: a `folds n` header, then per fold n matched lines (`name i j`) and n
    mismatched lines (`name1 i name2 j`). Folds are kept as in the file. Numbers are decimal
    ASCII (image numbers 1..9999, a matched pair's two numbers differ), names are folder names;
    the header must count the lines exactly."""
    lines = [(k + 1, line.split()) for k, line in enumerate(text.splitlines()) if line.strip()]
    if not lines or len(lines[0][1]) != 2:
        raise EvaluateError(f"{source}:{lines[0][0] if lines else 1}: expected a header "
                            f"'<folds> <pairs per kind per fold>'")
    where = f"{source}:{lines[0][0]}"
    folds = integer(lines[0][1][0], where, "header folds", 2, MAX_FOLDS)
    n = integer(lines[0][1][1], where, "header pairs per kind per fold", 1, MAX_PER_FOLD)
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise EvaluateError(f"{where}: header says {folds} folds x {2 * n} pairs = {folds * 2 * n} lines, "
                            f"the file has {len(body)}")
    first, second = [], []
    for index, (line_no, f) in enumerate(body):
        where = f"{source}:{line_no}"
        matched = (index % (2 * n)) < n
        if len(f) != (3 if matched else 4):
            expected = "'name i j' (matched pair)" if matched else "'name1 i name2 j' (mismatched pair)"
            raise EvaluateError(f"{where}: expected {expected}, found {shown(' '.join(f))}")
        if matched:
            i, j = (integer(v, where, "image number", 1, MAX_NUMBER) for v in f[1:])
            if i == j:
                raise EvaluateError(f"{where}: a matched pair of image {i} with itself")
            name = _person(f[0], where)
            a, b = image_path(name, i, ext), image_path(name, j, ext)
        else:
            a = image_path(_person(f[0], where), integer(f[1], where, "image number", 1, MAX_NUMBER), ext)
            b = image_path(_person(f[2], where), integer(f[3], where, "image number", 1, MAX_NUMBER), ext)
        first.append(a)
        second.append(b)
    index = np.arange(len(body))
    return Pairs(first, second, (index % (2 * n)) < n, index // (2 * n))


def make_pairs(root: Path, folds: int = 10) -> str:
    """`pairs.txt` text for a folder of `<name>/<name>_NNNN.jpg` (other names are ignored) holding
    two or more images of each person: one matched pair per person (its first two images), and as
    many mismatched pairs, person i's first image with the second image of person (i + N/2) mod N,
    names sorted. Pairs are dealt to folds in name order; N must be a multiple of `folds`."""
    people = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        numbers = sorted(int(f.name[len(folder.name) + 1:-4]) for f in folder.glob(f"{folder.name}_*.jpg")
                         if re.fullmatch(r"[0-9]{4}\.jpg", f.name[len(folder.name) + 1:]))
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
