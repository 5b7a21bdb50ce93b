"""insightface's packed verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin, ...): a pickle of
`(bins, issame_list)`, `bins` holding the encoded image files (two per pair, in pair order) and
`issame_list` one bool per pair. Read with an unpickler that refuses every global, so a hostile
file can build nothing but lists, tuples, bytes, bools and numbers; images stay encoded until a
key asks for one."""
from __future__ import annotations

import functools
import io
import os
import pickle
import pickletools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facezoo.common.safeio import read_bytes_limited

from ..errors import EvaluateError
from ..images import BrokenImage, MAX_PIXELS, decode_image_bytes, image_size

MAX_BIN_BYTES = 2 << 30  # the largest insightface set (cfp_fp.bin) is about 0.1 GiB
EXPECTED = "expected insightface's pickled (images, issame_list)"


class _NoGlobals(pickle.Unpickler):
    """Builds only the pickle format's own types: any class or function reference is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"it references {module}.{name}, a pickled object, not plain data")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("it has a persistent reference (not plain data)")


@dataclass(frozen=True)
class VerificationBin:
    """The encoded images (two per pair) and whether each pair is one person."""

    path: Path
    images: tuple[bytes, ...]
    same: np.ndarray  # bool, one per pair

    def __len__(self) -> int:
        return len(self.same)


def image_name(index: int) -> str:
    """The name an image of a .bin is known by (in stored predictions and messages)."""
    return f"{index:05d}"


# opcodes that make objects other than plain data (classes, calls, extension codes, persistent ids)
OBJECT_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "REDUCE", "BUILD", "EXT1", "EXT2",
                  "EXT4", "PERSID", "BINPERSID"}
MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _scan(data: bytes, source: str) -> None:
    """Walk the pickle's opcodes before unpickling: every length field must fit in the data and
    every memo index be one a valid pickle could use (the unpickler would otherwise allocate what
    they declare before noticing the data is short), and nothing but plain data may be built."""
    strings = ["?", "?"]  # the last two strings: STACK_GLOBAL's module and name
    try:
        for count, (op, arg, pos) in enumerate(pickletools.genops(data)):
            if isinstance(arg, str):
                strings = [strings[1], arg]
            if op.name in OBJECT_OPCODES:
                name = (".".join(arg.split(" ", 1)) if op.name in ("GLOBAL", "INST") else
                        ".".join(strings) if op.name == "STACK_GLOBAL" else None)
                what = f"references {name[:80]}" if name else f"has a {op.name} opcode"
                hint = (" (Python 3 writes bytes so with pickle protocols 0-2: re-pack with protocol 3 or later)"
                        if name == "_codecs.encode" else "")
                raise EvaluateError(f"{source}: {EXPECTED}; byte {pos}: it {what}, a pickled object, not plain "
                                    f"data{hint}")
            if op.name in MEMO_PUTS and not 0 <= int(arg) <= count:
                raise EvaluateError(f"{source}: {EXPECTED}; byte {pos}: memo index {arg} out of range")
    except (ValueError, OverflowError) as exc:
        raise EvaluateError(f"{source}: {EXPECTED}; the pickle is damaged or cut short "
                            f"({' '.join(str(exc).split())[:120]})") from None


def parse_bin(data: bytes, source: str) -> VerificationBin:
    """Validate the unpickled structure of a .bin: a 2-tuple (or list) of a list of bytes and a
    list of bools (or 0/1), the images exactly two per pair. Python 2 pickles load with their
    byte strings as bytes."""
    _scan(data, source)
    try:
        loaded = _NoGlobals(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise EvaluateError(f"{source}: {EXPECTED}; {exc}") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise EvaluateError(f"{source}: {EXPECTED}; the pickle is damaged or cut short "
                            f"({type(exc).__name__})") from None
    if not isinstance(loaded, (tuple, list)) or len(loaded) != 2:
        found = f"a {len(loaded)}-item {type(loaded).__name__}" if isinstance(loaded, (tuple, list)) \
            else f"a {type(loaded).__name__}"
        raise EvaluateError(f"{source}: {EXPECTED}, found {found}")
    images, same = loaded
    if not isinstance(images, (list, tuple)) or not isinstance(same, (list, tuple)):
        raise EvaluateError(f"{source}: {EXPECTED}: both items must be lists, found "
                            f"{type(images).__name__} and {type(same).__name__}")
    wrong = next((i for i, b in enumerate(images) if type(b) is not bytes), None)
    if wrong is not None:
        raise EvaluateError(f"{source}: image {wrong}: expected the encoded image's bytes, found "
                            f"{type(images[wrong]).__name__}")
    wrong = next((i for i, s in enumerate(same) if type(s) not in (bool, int) or s not in (0, 1)), None)
    if wrong is not None:
        shown = repr(same[wrong])[:40] if isinstance(same[wrong], (int, float)) else type(same[wrong]).__name__
        raise EvaluateError(f"{source}: issame_list[{wrong}]: expected True or False, found {shown}")
    if not same:
        raise EvaluateError(f"{source}: {EXPECTED}: it holds no pair")
    if len(images) % 2:
        raise EvaluateError(f"{source}: holds {len(images)} images, an odd count: expected two per pair")
    if len(images) != 2 * len(same):
        raise EvaluateError(f"{source}: holds {len(images)} images for {len(same)} pairs: expected "
                            f"{2 * len(same)} (two per pair of issame_list)")
    return VerificationBin(Path(source), tuple(images), np.array(same, dtype=bool))


def check_headers(bins: VerificationBin, max_pixels: int = MAX_PIXELS) -> None:
    """Every image's header names a JPEG, PNG or BMP of at most `max_pixels` pixels (checked
    before inference, without decoding)."""
    for i, data in enumerate(bins.images):
        try:
            width, height = image_size(data)
        except BrokenImage as exc:
            raise BrokenImage(f"{bins.path}: image {i} (pair {i // 2 + 1}): {exc}") from None
        if width * height > max_pixels:
            raise BrokenImage(f"{bins.path}: image {i} (pair {i // 2 + 1}): {width}x{height} pixels, more than "
                              f"the {max_pixels:,}-pixel limit (raise it with --max_image_pixels)")


@functools.lru_cache(maxsize=2)
def _cached(path: str, size: int, mtime_ns: int, limit: int) -> VerificationBin:
    return parse_bin(read_bytes_limited(path, limit, "insightface .bin", EvaluateError), path)


def read_bin(path: Path | str, limit: int = MAX_BIN_BYTES) -> VerificationBin:
    """A .bin file (a regular file of at most `limit` bytes), validated; read once per process
    while the file is unchanged (the dataset check, the run and each worker share it)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise EvaluateError(f"{path}: insightface .bin not found") from None
    except OSError as exc:
        raise EvaluateError(f"{path}: insightface .bin cannot be read ({exc.strerror})") from None
    if st.st_size > limit:  # refused before any byte is read
        raise EvaluateError(f"{path}: insightface .bin is larger than the {limit:,}-byte limit")
    return _cached(str(path), st.st_size, st.st_mtime_ns, limit)


def decode(bins: VerificationBin, index: int, gray: bool = False, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image `index` decoded (BGR, or one channel), one at a time as inference asks for it."""
    return decode_image_bytes(bins.images[index], f"{bins.path}: image {index} (pair {index // 2 + 1})",
                              gray, max_pixels)
