"""Images from disk to network input blobs (BGR or gray, N x C x H x W float32, 0..255)."""
from __future__ import annotations

import ctypes
import functools
import os
import stat
from pathlib import Path

import numpy as np

from .errors import EvaluateError


class BrokenImage(EvaluateError):
    """An image file that exists but cannot be decoded."""


MAX_PIXELS = 64_000_000  # --max_image_pixels: refused before decoding above this
BYTES_PER_PIXEL_LIMIT = 4  # a file may hold at most this many bytes per allowed pixel (+ 1 MiB)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while True:
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= len(data) or pos == 2 or data[pos - 1] != 0xFF:
            raise BrokenImage("JPEG header is damaged or cut short before its frame header")
        marker = data[pos]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 1
            continue
        if marker in (0xD9, 0xDA):
            raise BrokenImage("JPEG has no frame header before its image data")
        if pos + 3 > len(data):
            raise BrokenImage("JPEG header is cut short")
        length = int.from_bytes(data[pos + 1:pos + 3], "big")
        if length < 2:
            raise BrokenImage(f"JPEG segment of length {length}")
        if marker in _SOF:
            if pos + 8 > len(data):
                raise BrokenImage("JPEG frame header is cut short")
            return int.from_bytes(data[pos + 6:pos + 8], "big"), int.from_bytes(data[pos + 4:pos + 6], "big")
        pos += 1 + length


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header of a JPEG (its frame header), PNG (IHDR) or BMP file,
    without decoding it; BrokenImage for any other, damaged or zero-sized file."""
    if data[:2] == b"\xff\xd8":
        width, height = _jpeg_size(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise BrokenImage("PNG without an IHDR header")
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif data[:2] == b"BM":
        if len(data) < 26:
            raise BrokenImage("BMP header is cut short")
        if int.from_bytes(data[14:18], "little") == 12:  # OS/2 core header
            width, height = int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
        else:
            width = int.from_bytes(data[18:22], "little", signed=True)
            height = abs(int.from_bytes(data[22:26], "little", signed=True))  # negative: top-down
    elif not data:
        raise BrokenImage("empty file (0 bytes)")
    else:
        raise BrokenImage(f"not a JPEG, PNG or BMP file (starts with {data[:8].hex()})")
    if width <= 0 or height <= 0:
        raise BrokenImage(f"header gives a size of {width}x{height}")
    return width, height


def _complete(data: bytes) -> bool:
    """Whether a JPEG or PNG file has its end marker (libjpeg would otherwise decode a truncated
    file, grey-filling the rest and only printing a warning)."""
    if data[:2] == b"\xff\xd8":
        return b"\xff\xd9" in data[-4096:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" in data[-64:]
    return True


def _read(path: Path, limit: int) -> bytes:
    """The bytes of a regular image file of at most `limit` bytes (FIFOs and devices unopened)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise BrokenImage(f"{path}: not a regular file (an image must be one)")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise EvaluateError(f"{path}: image not found") from None
    except OSError as exc:
        raise BrokenImage(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1) if stat.S_ISREG(os.fstat(f.fileno()).st_mode) else None
        except OSError as exc:
            raise BrokenImage(f"{path}: cannot read: {exc.strerror}") from None
    if data is None:
        raise BrokenImage(f"{path}: not a regular file (an image must be one)")
    if len(data) > limit:
        raise BrokenImage(f"{path}: larger than {limit:,} bytes (--max_image_pixels sets this too)")
    return data


def _reuse_freed_buffers() -> None:
    """Keep glibc from handing every freed multi-megabyte buffer back to the kernel: each image's
    decode, resize and layout buffers were otherwise faulted in afresh (about 250 page faults per
    WIDER image; 0.1-0.15 of the 3.6 CPU-seconds of a 200-image run here). Not glibc: nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD: blocks under 64 MiB come from the heap
        libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD: up to 128 MiB of freed heap is kept
    except (OSError, AttributeError):
        pass


@functools.cache
def _decoder():
    """cv2 with its own log lines silenced: a broken image is reported once, by us, in one line
    (OpenCV would add 'imdecode_ ... can't read data' lines to stderr)."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    # one thread per call: images are decoded and resized in parallel by the caller's threads,
    # beside the inference engine's (OpenCV's own pool on top of both oversubscribes the cores)
    cv2.setNumThreads(1)
    _reuse_freed_buffers()
    return cv2


def read_image(path: Path, gray: bool = False, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image (BGR, or one channel when `gray`). Only JPEG, PNG and BMP files are read,
    and only when their header says at most `max_pixels` pixels; a file that is not a regular
    file, empty, truncated or undecodable is a BrokenImage naming it."""
    path = Path(path)
    return decode_image_bytes(_read(path, BYTES_PER_PIXEL_LIMIT * max_pixels + (1 << 20)), str(path), gray,
                              max_pixels)


def decode_image_bytes(data: bytes, where: str, gray: bool = False, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an encoded image held in memory as `read_image` decodes a file (the same checks);
    `where` names it in a BrokenImage."""
    cv2 = _decoder()
    try:
        width, height = image_size(data)
    except BrokenImage as exc:
        raise BrokenImage(f"{where}: {exc}") from None
    if width * height > max_pixels:
        raise BrokenImage(f"{where}: {width}x{height} = {width * height:,} pixels, more than the "
                          f"{max_pixels:,}-pixel limit (raise it with --max_image_pixels)")
    image = None
    if _complete(data):
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
        except cv2.error:
            image = None
    if image is None or image.size == 0:
        raise BrokenImage(f"{where}: not a decodable image (corrupt or truncated)")
    return image


def to_input(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resize to the input's H x W (bilinear) and lay out as 1 x C x H x W uint8: what the
    launchers take (they widen it to the network's float exactly, inside the engine)."""
    cv2 = _decoder()
    _, channels, height, width = shape
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] != channels:
        raise EvaluateError(f"the network takes {channels} channels, the image has {image.shape[2]}")
    blob = np.empty((1, channels, height, width), np.uint8)
    if channels == 1:
        blob[0, 0] = image[:, :, 0]
    else:  # OpenCV's split writes the planes in place, 3x faster than NumPy's strided transpose copy
        cv2.split(image, [blob[0, c] for c in range(channels)])
    return blob


def to_blob(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`to_input` widened to float32 (0..255), for callers feeding a float network input themselves."""
    return to_input(image, shape).astype(np.float32)
