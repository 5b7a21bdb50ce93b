"""MXNet's NDArray list file (`*.params`), read with NumPy alone.

Layout (little endian): uint64 list magic 0x112, uint64 reserved, uint64 array count, the arrays,
uint64 name count, then per name a uint64 length and its bytes. Each array is either legacy
(uint32 ndim, uint32 dims) or starts with a uint32 magic: V1 0xF993FAC8 (int64 dims), V2
0xF993FAC9 and V3 0xF993FACA (an int32 storage type before the shape). Then come an int32 device
type and id, an int32 dtype flag and the raw data.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from facezoo.common.safeio import read_bytes_limited

from ..errors import ConvertError

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64,
          7: np.bool_}
MAX_NDIM = 32
MAX_PARAMS_BYTES = 2 << 30  # ONNX (protobuf) files cannot exceed 2 GiB


class _Reader:
    def __init__(self, data: memoryview, path: Path):
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ConvertError(f"{self.path}: truncated file: {what} at byte {self.pos} runs past the end "
                               f"({len(self.data)} bytes)")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def bytes(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ConvertError(f"{self.path}: {what} claims {n} bytes at byte {self.pos} but only "
                               f"{len(self.data) - self.pos} remain (truncated or corrupt file)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


def _read_array(r: _Reader, index: int) -> np.ndarray:
    what = f"array #{index}"
    first = r.take("<I", f"{what} header")
    if first in (V1_MAGIC, V2_MAGIC, V3_MAGIC):
        if first != V1_MAGIC:
            stype = r.take("<i", f"{what} storage type")
            if stype != 0:
                raise ConvertError(f"{r.path}: {what} uses sparse storage (type {stype}); only dense arrays "
                                   f"are supported")
        ndim = r.take("<i", f"{what} ndim")
        dim_fmt = "q"
    else:
        ndim, dim_fmt = first, "I"  # legacy layout: the first word is ndim
    if ndim < 0 or ndim > MAX_NDIM:
        raise ConvertError(f"{r.path}: {what} claims {ndim} dimensions (corrupt header)")
    shape = tuple(r.take(f"<{ndim}{dim_fmt}", f"{what} shape")) if ndim > 1 else (
        (r.take(f"<{dim_fmt}", f"{what} shape"),) if ndim == 1 else ())
    if ndim == 0:
        return np.zeros((0,), np.float32)
    if any(d < 0 for d in shape):
        raise ConvertError(f"{r.path}: {what} has a negative dimension in shape {shape}")
    if math.prod(max(d, 1) for d in shape) > MAX_PARAMS_BYTES:
        raise ConvertError(f"{r.path}: {what} claims shape {shape}, larger than any .params file can hold "
                           f"(corrupt header)")
    r.take("<ii", f"{what} context")
    flag = r.take("<i", f"{what} dtype")
    if flag not in DTYPES:
        raise ConvertError(f"{r.path}: {what} has unknown dtype flag {flag} (known: {sorted(DTYPES)})")
    dtype = np.dtype(DTYPES[flag])
    raw = r.bytes(math.prod(shape) * dtype.itemsize, f"{what} data of shape {shape} ({dtype})")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def read_ndarray_file(path: Path) -> dict[str, np.ndarray]:
    """Every named array of a `.params` file (names keep their `arg:`/`aux:` prefixes). FIFOs and
    devices are refused unread; so are files over 2 GiB, the most a single ONNX file can hold."""
    path = Path(path)
    data = read_bytes_limited(path, MAX_PARAMS_BYTES, ".params file", ConvertError)
    return parse_ndarray_bytes(data, path)


def parse_ndarray_bytes(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """The arrays of a `.params` file's bytes, checked: every declared size fits in the bytes
    present, names are unique UTF-8, float arrays are finite. `path` is only used in messages."""
    path = Path(path)
    r = _Reader(memoryview(data), path)
    magic, _reserved = r.take("<QQ", "file header")
    if magic != LIST_MAGIC:
        raise ConvertError(f"{path}: not an MXNet NDArray file (magic {magic:#x}, expected {LIST_MAGIC:#x})")
    count = r.take("<Q", "array count")
    if count > len(data) // 16:
        raise ConvertError(f"{path}: header claims {count} arrays, more than the file can hold")
    arrays = [_read_array(r, i) for i in range(count)]
    n_names = r.take("<Q", "name count")
    if n_names != count:
        raise ConvertError(f"{path}: {count} arrays but {n_names} names; a checkpoint names every array")
    named: dict[str, np.ndarray] = {}
    first: dict[str, int] = {}
    for i in range(n_names):
        length = r.take("<Q", f"name #{i} length")
        raw = bytes(r.bytes(length, f"name #{i}"))
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConvertError(f"{path}: name #{i} is not UTF-8 text ({raw[:40]!r})") from None
        if not name:
            raise ConvertError(f"{path}: name #{i} is empty")
        if name in first:
            raise ConvertError(f"{path}: name '{name}' is given to arrays #{first[name]} and #{i}; names must "
                               f"be unique")
        first[name] = i
        named[name] = arrays[i]
    if r.pos != len(data):
        raise ConvertError(f"{path}: {len(data) - r.pos} unexpected bytes after the last name")
    for name, array in named.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise ConvertError(f"{path}: array '{name}' holds {bad} NaN or infinite value(s); weights must be "
                               f"finite")
    return named


def encode_ndarray_file(arrays: dict[str, np.ndarray] | list[tuple[str, np.ndarray]]) -> bytes:
    """The bytes of a `.params` file in MXNet's V2 layout; `arrays` may be (name, array) pairs, so
    tests can write what a dict cannot hold (two arrays of one name)."""
    pairs = list(arrays.items()) if isinstance(arrays, dict) else list(arrays)
    flags = {np.dtype(v): k for k, v in DTYPES.items()}
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(pairs))]
    for _, arr in pairs:
        arr = np.ascontiguousarray(arr)
        parts += [struct.pack("<Iii", V2_MAGIC, 0, arr.ndim), struct.pack(f"<{arr.ndim}q", *arr.shape),
                  struct.pack("<iii", 1, 0, flags[arr.dtype]), arr.tobytes()]
    parts.append(struct.pack("<Q", len(pairs)))
    for name, _ in pairs:
        encoded = name.encode()
        parts.append(struct.pack("<Q", len(encoded)) + encoded)
    return b"".join(parts)


def write_ndarray_file(path: Path, arrays: dict[str, np.ndarray] | list[tuple[str, np.ndarray]]) -> None:
    """Write arrays in MXNet's V2 layout (used to make synthetic checkpoints for tests)."""
    Path(path).write_bytes(encode_ndarray_file(arrays))
