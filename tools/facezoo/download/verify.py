"""Streaming copy with size limit and sha256, shared by every kind of source."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from .errors import Cancelled, SourceError

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """sha256 hex digest of a file."""
    return hash_prefix(path).hexdigest()


def hash_prefix(path: Path) -> "hashlib._Hash":
    """A sha256 object fed with the current contents of a partial file."""
    h = hashlib.sha256()
    if path.exists():
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                h.update(block)
    return h


def write_chunks(chunks: Iterable[bytes], out: BinaryIO, hasher, offset: int, limit: int,
                 on_bytes: Callable[[int], None], cancel: threading.Event) -> int:
    """Append chunks to `out`, feeding the hasher; refuse to grow past `limit`. Returns the new size."""
    size = offset
    for chunk in chunks:
        if cancel.is_set():
            raise Cancelled()
        if not chunk:
            continue
        size += len(chunk)
        if size > limit:
            raise SourceError(f"served more than the expected {limit} bytes")
        out.write(chunk)
        hasher.update(chunk)
        on_bytes(len(chunk))
    return size


def check_complete(size: int, expected_size: int, digest: str, expected_sha256: str) -> None:
    """Raise SourceError unless size and digest are the expected ones."""
    if size != expected_size:
        raise SourceError(f"size mismatch: got {size} bytes, expected {expected_size}", transient=size < expected_size)
    if digest != expected_sha256:
        raise SourceError(f"sha256 mismatch: got {digest}, expected {expected_sha256}")
