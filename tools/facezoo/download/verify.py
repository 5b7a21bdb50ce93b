"""Streaming copy with size limit, deadline and sha256, shared by every kind of source."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from .errors import Cancelled, SourceError
from .workdir import open_owned_read

CHUNK = 1 << 20


def hash_fd(fd: int) -> "hashlib._Hash":
    """A sha256 object fed with a file's contents from its start (the descriptor stays open)."""
    h = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, CHUNK, offset):
        h.update(block)
        offset += len(block)
    return h


def hash_prefix(path: Path) -> "hashlib._Hash":
    """A sha256 object fed with the current contents of a partial file of ours (a planted link or
    FIFO is refused, never read)."""
    fd = open_owned_read(path)
    if fd is None:
        return hashlib.sha256()
    try:
        return hash_fd(fd)
    finally:
        os.close(fd)


def write_chunks(chunks: Iterable[bytes], fd: int, hasher, offset: int, limit: int,
                 on_bytes: Callable[[int], None], cancel: threading.Event, until: float | None = None) -> int:
    """Append chunks to the file open as `fd`, feeding the hasher; refuse to grow past `limit` or to
    go on after the monotonic time `until`. Returns the new size."""
    size = offset
    for chunk in chunks:
        if cancel.is_set():
            raise Cancelled()
        if until is not None and time.monotonic() > until:
            raise SourceError(f"too slow: {size - offset} bytes in the attempt's time limit "
                              f"(--attempt_deadline)", transient=True)
        if not chunk:
            continue
        size += len(chunk)
        if size > limit:
            raise SourceError(f"served more than the expected {limit} bytes")
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]
        hasher.update(chunk)
        on_bytes(len(chunk))
    return size


def check_complete(size: int, expected_size: int, digest: str, expected_sha256: str) -> None:
    """Raise SourceError unless size and digest are the expected ones."""
    if size != expected_size:
        raise SourceError(f"size mismatch: got {size} bytes, expected {expected_size}", transient=size < expected_size)
    if digest != expected_sha256:
        raise SourceError(f"sha256 mismatch: got {digest}, expected {expected_sha256}")
