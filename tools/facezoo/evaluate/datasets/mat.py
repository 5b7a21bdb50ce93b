"""MATLAB v5 .mat files read safely: the element structure is walked before SciPy reads the file,
so a damaged or hostile file is an error naming it, not a crash or a huge allocation.

SciPy trusts what a file declares: how much a compressed element unpacks to (a zlib bomb), how
many elements a cell or struct array holds (it allocates that many before reading them), and the
type codes of data elements (an unknown one crashes its reader). `check_mat` unpacks compressed
elements under a byte budget, requires every cell or struct array to have room for its declared
elements, and every element to have a known type; only cell, struct, char and numeric arrays pass.
"""
from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

from facezoo.common.safeio import read_bytes_limited

from ..errors import EvaluateError

FILE_LIMIT = 256 << 20  # bytes of one .mat file (the official WIDER FACE ones are 0.4 MB)
UNPACKED_LIMIT = 256 << 20  # bytes its compressed elements may unpack to, all together
MAX_DEPTH = 16
MI_INT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 5, 6, 14, 15
CELL, STRUCT, CHAR = 1, 2, 4
NUMERIC = range(6, 16)  # double, single, int8 ... uint64
LEAVES = frozenset((CHAR, *NUMERIC))
COMPLEX = 0x800  # array flag: an imaginary part follows the real one
# the element types a data part may have: int8 ... uint64, single, double, utf8/16/32
DATA_TYPES = frozenset((1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 17, 18))


_WORDS = {o: struct.Struct(o + "II") for o in "<>"}

# The official WIDER FACE validation ground truth (eval_tools/ground_truth), byte for byte: files
# with these digests have the structure `check_mat` requires (tests/test_evaluate.py checks each),
# so walking their 115,000 elements again on every run (0.3 CPU-seconds) is skipped.
KNOWN_GOOD_SHA256 = frozenset((
    "1dfe6a9853950f9dde256b5e8bb75d8f272e6bc02a15ae1968f5a9b883f458cb",  # wider_face_val.mat
    "c2fb672d16f75653eb89fb8bc437a7d060896a71cd7a65c1a5a3e4479024099c",  # wider_easy_val.mat
    "4a031970bc132cef5cfacd05068aabcf4fe15d4a31a1e9f4f00eb134fdf449c1",  # wider_medium_val.mat
    "bb1af19dc5bc4dd9517dd8ae8096326c68175f2c3411763bdd4f23fa98638b78",  # wider_hard_val.mat
))


class MatError(EvaluateError):
    """A .mat file whose structure is not a MATLAB v5 file SciPy can read safely."""


def _tag(data: bytes, pos: int, end: int, order: str) -> tuple[int, int, int, int]:
    """(type, size, data start, next element) of the element at `pos` (8-byte aligned)."""
    if pos + 8 > end:
        raise MatError(f"byte {pos}: element tag cut short")
    first, second = _WORDS[order].unpack_from(data, pos)
    if first >> 16:  # small element: size and type in one word, data in the next 4 bytes
        size = first >> 16
        if size > 4:
            raise MatError(f"byte {pos}: small element of {size} bytes (at most 4)")
        return first & 0xFFFF, size, pos + 4, pos + 8
    if second > end - pos - 8:
        raise MatError(f"byte {pos}: element of {second} bytes runs past its end")
    return first, second, pos + 8, min(end, pos + 8 + ((second + 7) & ~7))


def _matrix(data: bytes, start: int, end: int, order: str, depth: int) -> None:
    """Check one miMATRIX element's content data[start:end] and its children."""
    if start == end:  # an empty array
        return
    if depth > MAX_DEPTH:
        raise MatError(f"byte {start}: arrays nested deeper than {MAX_DEPTH}")
    kind, size, at, pos = _tag(data, start, end, order)
    if kind != MI_UINT32 or size != 8:
        raise MatError(f"byte {start}: array flags missing")
    flags = struct.unpack_from(order + "I", data, at)[0]
    cls = flags & 0xFF
    kind, size, at, pos = _tag(data, pos, end, order)
    if kind != MI_INT32 or size % 4 or not 8 <= size <= 128:
        raise MatError(f"byte {at}: array dimensions missing (2 to 32 int32 values)")
    dims = struct.unpack_from(f"{order}{size // 4}i", data, at)
    if min(dims) < 0:
        raise MatError(f"byte {at}: negative array dimension {min(dims)}")
    kind, _, at, pos = _tag(data, pos, end, order)
    if kind != MI_INT8:
        raise MatError(f"byte {at}: array name missing")
    count = 1
    for d in dims:
        count *= d
    if cls in LEAVES:
        # SciPy checks the values against the dimensions, but not the data's type (an unknown one crashes it)
        for _ in range(2 if flags & COMPLEX else 1):
            kind, _, at, pos = _tag(data, pos, end, order)
            if kind not in DATA_TYPES:
                raise MatError(f"byte {at}: data of unknown type {kind}")
        return
    if cls not in (CELL, STRUCT):
        raise MatError(f"byte {start}: array class {cls} (only cell, struct, char and numeric arrays are read)")
    if cls == STRUCT:
        kind, size, at, pos = _tag(data, pos, end, order)
        length = struct.unpack_from(order + "i", data, at)[0] if kind == MI_INT32 and size == 4 else 0
        if not 1 <= length <= 64:
            raise MatError(f"byte {at}: struct field name length missing (1 to 64)")
        kind, size, at, pos = _tag(data, pos, end, order)
        if kind != MI_INT8:
            raise MatError(f"byte {at}: struct field names missing")
        count *= size // length
    if count * 8 > end - pos:  # every child takes at least its 8-byte tag
        raise MatError(f"byte {start}: declares {count} elements, room for {(end - pos) // 8}")
    for _ in range(count):
        kind, size, at, pos = _tag(data, pos, end, order)
        if kind != MI_MATRIX:
            raise MatError(f"byte {at - 8}: expected an array element, found type {kind}")
        _matrix(data, at, at + size, order, depth + 1)


def check_mat(data: bytes, budget: int = UNPACKED_LIMIT) -> None:
    """Raise MatError unless `data` is a MATLAB v5 file of safe structure."""
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        raise MatError("not a MATLAB v5 .mat file (no v5 header)")
    order = "<" if data[126:128] == b"IM" else ">"
    if struct.unpack_from(order + "H", data, 124)[0] != 0x0100:
        raise MatError("not a MATLAB v5 .mat file (v7.3/HDF5 and v4 files are not read)")
    pos = 128
    while len(data) - pos >= 8:
        kind, size, at, _ = _tag(data, pos, len(data), order)
        element, following = data[at:at + size], at + size  # top-level elements are not padded
        if kind == MI_COMPRESSED:
            try:
                element = zlib.decompressobj().decompress(element, budget + 1)
            except zlib.error as exc:
                raise MatError(f"byte {pos}: compressed element is damaged ({exc})") from None
            if len(element) > budget:
                raise MatError(f"byte {pos}: compressed elements unpack to more than {budget:,} bytes")
            budget -= len(element)
            kind, size, at, _ = _tag(element, 0, len(element), order)
            element = element[at:at + size]
        if kind != MI_MATRIX:
            raise MatError(f"byte {pos}: expected an array element, found type {kind}")
        _matrix(element, 0, len(element), order, 0)
        pos = following


def load_mat(path: Path, variables: list[str]) -> dict[str, Any]:
    """The named variables of a .mat file, after `check_mat`; errors name the file (and the
    missing variable)."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadWarning

    data = read_bytes_limited(path, FILE_LIMIT, ".mat file", EvaluateError)
    if hashlib.sha256(data).hexdigest() not in KNOWN_GOOD_SHA256:
        try:
            check_mat(data)
        except MatError as exc:
            raise EvaluateError(f"{path}: {exc}") from None
    try:
        with warnings.catch_warnings():  # e.g. a variable name twice: which one is meant is unclear
            warnings.simplefilter("error", MatReadWarning)
            loaded = loadmat(io.BytesIO(data), variable_names=variables)
    except Exception as exc:  # SciPy raises many types for a damaged file
        raise EvaluateError(f"{path}: not a readable .mat file ({type(exc).__name__}: {exc})") from None
    missing = [v for v in variables if v not in loaded]
    if missing:
        raise EvaluateError(f"{path}: has no variable {missing[0]!r}")
    return loaded
