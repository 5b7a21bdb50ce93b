"""The decoded-input cache (`accuracy_check --cache_dir`): each image's network input, as a job
prepared it, kept on disk and memory-mapped when read back, so evaluating the same images again
(another model, another precision) decodes no JPEG.

An entry's name is the sha256 of the image file's bytes together with the job's description of
its preprocessing, the entry format and OpenCV's version. An entry file holds a magic number, a
JSON header (its own name, the input's dtype and shape, the job's post-processing info, two
checksums of the payload) and the payload, 64-byte aligned. Entries are written to a temporary
file in the folder and renamed into place, so concurrent runs share a folder and a reader sees a
whole entry or none. An entry that is damaged, cut short, too large, or another entry's (a name
inside that is not its own) is never used: it is recomputed and replaced. Whoever can write the
folder decides what the runs read, as with any cache folder."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import mmap
import os
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facezoo.common.cli import on_interrupt
from facezoo.common.safeio import TEMP_PREFIX, file_kind, file_mode, sweep_stale_temps

from .errors import EvaluateError
from .images import BYTES_PER_PIXEL_LIMIT, MAX_PIXELS
from .jobs import Job

MAGIC = b"FZINPUT1"
FORMAT = 1  # part of every entry's name: a new layout never reads an old one
SUFFIX = ".input"
HEADER_MAX = 4096  # bytes of JSON header read at most
ENTRY_MAX = 1 << 30  # bytes: a larger file in the folder is not an entry of ours
ALIGN = 64
HASHED_MAX = BYTES_PER_PIXEL_LIMIT * MAX_PIXELS + (1 << 20)  # image files hashed at most (read_image's limit)
DTYPES = {"|u1": np.uint8, "<f4": np.float32}


class _Damaged(Exception):
    """An entry file that is not a whole, consistent entry of the expected name."""


def check_cache_dir(path: Path, inputs: list[Path]) -> Path:
    """The cache folder, made if missing; refused in one line when it is something else than a
    folder (a file, FIFO, device, or a link to one), holds or sits in one of `inputs` (the run's
    input and output paths), or cannot be written. Temporary files of killed runs are removed."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise EvaluateError(f"{path}: --cache_dir cannot be used ({exc.strerror})") from None
    if mode is not None and not stat.S_ISDIR(mode):
        raise EvaluateError(f"{path}: --cache_dir must be a folder, found {file_kind(mode)}")
    resolved = path.resolve()
    for source in inputs:
        src = Path(source).resolve()
        if src == resolved or resolved in src.parents or src in resolved.parents:
            raise EvaluateError(f"{path}: --cache_dir overlaps {source}, which this run reads or writes; "
                                f"choose another folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=f"{TEMP_PREFIX}{os.getpid()}-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise EvaluateError(f"{path}: --cache_dir cannot be written ({exc.strerror})") from None
    sweep_stale_temps(path)
    return path


def checksums(payload: np.ndarray) -> list[int]:
    """Two 64-bit checksums of an array's bytes, about 30x faster than CRC-32: the wrapping sum of
    its 8-byte words (any changed word), and its 4 KiB blocks' sums weighted by position (blocks
    swapped or repeated)."""
    data = np.ascontiguousarray(payload).reshape(-1).view(np.uint8)
    whole = data.size // 8 * 8
    words = data[:whole].view(np.uint64)
    blocks = words[:words.size // 512 * 512].reshape(-1, 512).sum(axis=1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        weighted = int((blocks * np.arange(1, blocks.size + 1, dtype=np.uint64)).sum(dtype=np.uint64))
    tail = int.from_bytes(data[whole:].tobytes(), "little")
    return [(int(words.sum(dtype=np.uint64)) + tail) % (1 << 64), weighted]


def _encode_info(info: Any) -> Any:
    """A job's post-processing info as JSON (tuples become lists; `_decode_info` turns them back)."""
    if info is None or isinstance(info, (bool, int, float, str)):
        return info
    if isinstance(info, (tuple, list)):
        return [_encode_info(v) for v in info]
    raise TypeError(f"post-processing info of type {type(info).__name__} cannot be cached")


def _decode_info(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode_info(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise _Damaged("info holds a JSON object")


@dataclass
class Counts:
    """What one run did with the cache."""

    read: int = 0  # inputs taken from the cache
    written: int = 0  # new entries
    damaged: int = 0  # damaged or foreign entries found (recomputed and replaced)
    not_written: int = 0  # entries that could not be written (e.g. the disk is full)
    write_error: str = ""
    uncacheable: int = 0  # inputs not cached: no preprocessing description, file not hashed, info not JSON
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


class InputCache:
    """One cache folder (already checked by `check_cache_dir`)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.counts = Counts()
        self._lock = threading.Lock()
        self._writing: set[str] = set()  # temporary files being written, removed on an interrupt
        self._closed = False
        self._forget = on_interrupt(self._remove_temporaries)

    def __getstate__(self) -> dict:  # a copy sent to another process counts and cleans for itself
        return {"folder": self.folder}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["folder"])

    def _remove_temporaries(self) -> None:
        with self._lock:
            self._closed = True
            for tmp in self._writing:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}{SUFFIX}"

    def read(self, name: str) -> tuple[np.ndarray, Any] | None:
        """The entry's input (a read-only view of the mapped file) and info; None when absent.
        Raises _Damaged for a file that is not a whole entry named `name`."""
        try:
            fd = os.open(self.path(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a link or something else planted under the name
            raise _Damaged(exc.strerror) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or not len(MAGIC) + 4 < info.st_size <= ENTRY_MAX:
                raise _Damaged("not a regular file of an entry's size")
            head = os.pread(fd, len(MAGIC) + 4 + HEADER_MAX, 0)
            if head[:len(MAGIC)] != MAGIC:
                raise _Damaged("no entry magic")
            length = int.from_bytes(head[len(MAGIC):len(MAGIC) + 4], "little")
            if length > HEADER_MAX or len(head) < len(MAGIC) + 4 + length:
                raise _Damaged("header too long or cut short")
            try:
                header = json.loads(head[len(MAGIC) + 4:len(MAGIC) + 4 + length].decode())
                dtype = DTYPES[header["dtype"]]
                shape = tuple(header["shape"])
                sums = header["checksums"]
                stored_name = header["name"]
            except (ValueError, UnicodeDecodeError, KeyError, TypeError):
                raise _Damaged("header unreadable") from None
            if stored_name != name:
                raise _Damaged("another entry's file")
            if not (1 <= len(shape) <= 8 and all(type(d) is int and 0 < d <= ENTRY_MAX for d in shape)):
                raise _Damaged("bad shape")
            offset = -(-(len(MAGIC) + 4 + length) // ALIGN) * ALIGN
            count = int(np.prod(shape, dtype=np.int64))
            if offset + count * np.dtype(dtype).itemsize != info.st_size:
                raise _Damaged("size does not match the header")
            mapped = mmap.mmap(fd, info.st_size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        blob = np.frombuffer(mapped, dtype, count, offset).reshape(shape)
        if checksums(blob) != sums:
            raise _Damaged("checksum mismatch")
        return blob, _decode_info(header.get("info"))

    def write(self, name: str, blob: np.ndarray, info: Any) -> None:
        """Put an entry in place (a temporary file renamed over the name); a failure to write is
        counted, never raised: the run goes on without it."""
        dtype = np.dtype(blob.dtype).str
        if dtype not in DTYPES:
            self.counts.add(uncacheable=1)
            return
        try:
            header = json.dumps({"name": name, "dtype": dtype, "shape": list(blob.shape),
                                 "info": _encode_info(info), "checksums": checksums(blob)}).encode()
        except TypeError:  # info JSON cannot hold
            header = b""
        if not header or len(header) > HEADER_MAX:
            self.counts.add(uncacheable=1)
            return
        start = len(MAGIC) + 4 + len(header)
        prefix = MAGIC + len(header).to_bytes(4, "little") + header + bytes(-start % ALIGN)
        tmp = None
        try:
            with self._lock:
                if self._closed:
                    return
                fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f"{TEMP_PREFIX}{os.getpid()}-{name[:16]}.")
                self._writing.add(tmp)
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), file_mode())
                f.write(prefix)
                f.write(np.ascontiguousarray(blob).data)
            os.replace(tmp, self.path(name))
            self.counts.add(written=1)
        except OSError as exc:
            self.counts.add(not_written=1)
            self.counts.write_error = self.counts.write_error or exc.strerror or str(exc)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        finally:
            if tmp is not None:
                with self._lock:
                    self._writing.discard(tmp)

    def summary(self) -> dict[str, Any]:
        """This run's counts and the folder's entries and bytes."""
        entries = size = 0
        with os.scandir(self.folder) as scan:
            for entry in scan:
                if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
                    entries += 1
                    size += entry.stat(follow_symlinks=False).st_size
        c = self.counts
        return {"folder": str(self.folder), "read": c.read, "written": c.written, "damaged": c.damaged,
                "not_written": c.not_written, "write_error": c.write_error, "uncacheable": c.uncacheable,
                "entries": entries, "bytes": size}

    def close(self) -> None:
        """No more writes: the interrupt cleanup of its temporary files is unregistered."""
        self._forget()


def _file_sha256(path: Path) -> tuple[str, os.stat_result] | None:
    """sha256 of a regular file's bytes and its stat; None for anything else, or a file larger than
    any image accuracy_check reads by default (the job's own load then reports it, or reads it
    uncached)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > HASHED_MAX:
            return None
        try:
            return hashlib.file_digest(f, "sha256").hexdigest(), info
        except OSError:
            return None


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_dev, b.st_size, b.st_mtime_ns)


@dataclass(frozen=True)
class CachedJob:
    """A job whose inputs come from the cache when an entry exists, and go into it otherwise.
    The job describes a key's preprocessing with `preprocessing(key) -> (image file, text) | None`
    (None, or no such method: the key is not cached)."""

    job: Job
    cache: InputCache

    def load(self, key: Any) -> tuple[np.ndarray, Any]:
        describe = getattr(self.job, "preprocessing", None)
        source = describe(key) if describe is not None else None
        if source is None:
            self.cache.counts.add(uncacheable=1)
            return self.job.load(key)
        path, description = source
        hashed = _file_sha256(path)
        if hashed is None:
            self.cache.counts.add(uncacheable=1)
            return self.job.load(key)
        digest, before = hashed
        name = hashlib.sha256(f"{FORMAT}\0{_opencv()}\0{description}\0{digest}".encode()).hexdigest()
        try:
            found = self.cache.read(name)
        except _Damaged:
            found = None
            self.cache.counts.add(damaged=1)
        if found is not None:
            self.cache.counts.add(read=1)
            return found
        blob, info = self.job.load(key)
        with contextlib.suppress(OSError):
            if _same_file(before, os.stat(path)):  # not changed while it was decoded
                self.cache.write(name, blob, info)
        return blob, info

    def post(self, key: Any, info: Any, outputs: dict[str, np.ndarray]) -> Any:
        return self.job.post(key, info, outputs)


@functools.cache
def _opencv() -> str:
    import cv2

    return cv2.__version__
