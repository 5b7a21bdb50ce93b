"""Safe unpacking of zip and tar archives.

Every member is checked before anything is written: names stay inside the target (no absolute
names, `..`, backslashes or drive letters), no duplicates, only regular files and folders (no
links, devices, FIFOs, sparse or encrypted members), no member named like a file model.yml lists,
and the declared sizes stay under the limits (member count, total bytes, total bytes per byte of
archive, and per-member compression ratio). Members are then written to a staging folder in the
target (checked again while streaming) and moved in place only when all of them are complete.
"""
from __future__ import annotations

import gzip
import lzma
import os
import shutil
import stat
import struct
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facezoo.common.safeio import TEMP_PREFIX, file_mode, make_temp_dir

from .errors import Cancelled, DownloadError
from .workdir import owned_dir

FORMATS = {".zip": "zip", ".tar": "tar", ".tar.gz": "gztar", ".tgz": "gztar", ".tar.bz2": "bztar",
           ".tbz2": "bztar", ".tar.xz": "xztar", ".txz": "xztar"}
TAR_MODES = {"tar": "r:", "gztar": "r:gz", "bztar": "r:bz2", "xztar": "r:xz"}
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}  # bounded-memory inflation
RATIO_FLOOR = 1 << 20  # members smaller than this are not judged by their compression ratio
MAX_NAME = 1024
CHUNK = 1 << 20


@dataclass(frozen=True)
class UnpackLimits:
    """What an archive may unpack to; each has a command-line flag to raise it."""

    max_members: int = 10_000  # --max_archive_members
    max_bytes: int = 1 << 30  # --max_unpacked_size (absolute, all members together)
    max_ratio: float = 20.0  # --max_unpack_ratio (all members together per byte of archive)
    max_member_ratio: float = 200.0  # --max_member_ratio (one member's size per compressed byte)


@dataclass(frozen=True)
class Member:
    """An archive member that passed the checks."""

    rel: PurePosixPath
    is_dir: bool
    size: int  # declared unpacked size
    open: Callable[[], object]


def archive_format(name: str, declared: str | None) -> str:
    """The archive format: as declared in model.yml, else from the file name."""
    if declared:
        return declared
    for suffix, fmt in sorted(FORMATS.items(), key=lambda kv: -len(kv[0])):
        if name.lower().endswith(suffix):
            return fmt
    raise DownloadError(f"{name}: cannot tell the archive format from the name; set 'format' in model.yml")


def member_path(archive: Path, name: str) -> PurePosixPath | None:
    """The member's normalised relative path (None for the archive's root folder itself), or an
    error when the name could leave the target directory or cannot be a file name here."""
    def refuse(why: str) -> DownloadError:
        return DownloadError(f"{archive}: member {name[:200]!r} {why}; refusing to unpack")

    if not name or "\0" in name or len(name) > MAX_NAME:
        raise refuse("has an empty, NUL-containing or over-long name")
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise refuse("has an absolute or Windows name that escapes the target directory")
    pure = PurePosixPath(name)
    if ".." in pure.parts:
        raise refuse("escapes the target directory ('..')")
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in pure.parts):
        raise refuse("has a path component longer than 255 bytes")
    if any(part.startswith(TEMP_PREFIX) for part in pure.parts):
        raise refuse(f"uses the prefix of the downloader's temporary names ({TEMP_PREFIX})")
    return None if str(pure) == "." else pure


def zip_declared_members(archive: Path) -> int | None:
    """The member count the zip's end record declares (read before the central directory is
    parsed, so an archive of a million members is refused at once); None when it has none."""
    with open(archive, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + 22:
            return None
        count = struct.unpack_from("<H", tail, at + 10)[0]
        locator = at - 20
        if count == 0xFFFF and locator >= 0 and tail[locator:locator + 4] == b"PK\x06\x07":
            f.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
            record = f.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                count = struct.unpack_from("<Q", record, 32)[0]
        return count


def _zip_members(archive: Path, zf: zipfile.ZipFile, limits: UnpackLimits) -> Iterator[Member]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        where = f"{archive}: member {info.filename[:200]!r}"
        if kind == stat.S_IFLNK:
            raise DownloadError(f"{where} is a symbolic link; refusing to unpack")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise DownloadError(f"{where} is a device, FIFO or socket, not a file or folder; refusing to unpack")
        if info.flag_bits & 0x1:
            raise DownloadError(f"{where} is encrypted; refusing to unpack")
        if info.compress_type not in ZIP_METHODS:
            raise DownloadError(f"{where} uses compression method {info.compress_type}; only stored and deflate "
                                f"are unpacked")
        if (info.file_size > RATIO_FLOOR
                and info.file_size > limits.max_member_ratio * max(info.compress_size, 1)):
            raise DownloadError(f"{where} expands {info.compress_size} bytes to {info.file_size} "
                                f"(more than {limits.max_member_ratio:g} times; a zip bomb?); refusing to unpack "
                                f"(--max_member_ratio raises the limit)")
        rel = member_path(archive, info.filename)
        if rel is not None:
            yield Member(rel, info.is_dir(), info.file_size, lambda info=info: zf.open(info))


def _tar_members(archive: Path, tf: tarfile.TarFile) -> Iterator[Member]:
    while (member := tf.next()) is not None:
        where = f"{archive}: member {member.name[:200]!r}"
        if member.issym() or member.islnk():
            raise DownloadError(f"{where} is a {'symbolic' if member.issym() else 'hard'} link; refusing to unpack")
        if member.ischr() or member.isblk() or member.isfifo():
            raise DownloadError(f"{where} is a device or FIFO; refusing to unpack")
        if member.issparse() or not (member.isfile() or member.isdir()):
            raise DownloadError(f"{where} is not a regular file or folder; refusing to unpack")
        rel = member_path(archive, member.name)
        if rel is not None:
            yield Member(rel, member.isdir(), member.size if member.isfile() else 0,
                         lambda member=member: tf.extractfile(member))


def check_members(archive: Path, members: Iterable[Member], archive_size: int, limits: UnpackLimits,
                  protected: Iterable[str]) -> list[Member]:
    """The members, after refusing (on the first offence, before reading further) too many members,
    too many bytes, duplicates, file/folder clashes and members named like a verified model file."""
    protected = {PurePosixPath(p) for p in protected}
    relative_cap = limits.max_ratio * archive_size
    out: list[Member] = []
    seen: dict[PurePosixPath, bool] = {}
    total = 0
    for member in members:
        if len(out) >= limits.max_members:
            raise DownloadError(f"{archive}: more than {limits.max_members} members; refusing to unpack "
                                f"(--max_archive_members raises the limit)")
        where = f"{archive}: member {str(member.rel)[:200]!r}"
        if member.rel in seen:
            raise DownloadError(f"{where} appears twice; refusing to unpack")
        clash = next((p for p in protected if p == member.rel or p in member.rel.parents
                      or (member.rel in p.parents and not member.is_dir)), None)
        if clash is not None:
            raise DownloadError(f"{where} would overwrite {clash}, a file model.yml lists and the downloader "
                                f"verified; refusing to unpack")
        total += member.size
        if total > limits.max_bytes:
            raise DownloadError(f"{archive}: members add up to more than {limits.max_bytes} bytes; refusing to "
                                f"unpack (--max_unpacked_size raises the limit)")
        if total > relative_cap:
            raise DownloadError(f"{archive}: members add up to more than {limits.max_ratio:g} times the archive's "
                                f"{archive_size} bytes; refusing to unpack (--max_unpack_ratio raises the limit)")
        seen[member.rel] = member.is_dir
        out.append(member)
    for member in out:
        for parent in member.rel.parents:
            if seen.get(parent) is False:
                raise DownloadError(f"{archive}: member {str(member.rel)[:200]!r} lies inside {str(parent)!r}, "
                                    f"which is a file member; refusing to unpack")
    return out


def _copy(archive: Path, member: Member, dest: Path, cancel: threading.Event,
          on_bytes: Callable[[int], None]) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, file_mode())
    written = 0
    with member.open() as src, os.fdopen(fd, "wb") as dst:
        while block := src.read(CHUNK):
            if cancel.is_set():
                raise Cancelled()
            written += len(block)
            if written > member.size:
                raise DownloadError(f"{archive}: member {str(member.rel)!r} holds more than its declared "
                                    f"{member.size} bytes; refusing to unpack")
            dst.write(block)
            on_bytes(len(block))
    if written != member.size:
        raise DownloadError(f"{archive}: member {str(member.rel)!r} holds {written} bytes, "
                            f"its header says {member.size}; refusing to unpack")


def _place(staging: Path, target: Path, members: list[Member]) -> list[Path]:
    """Move the staged members into target (folders made as needed; a link met on the way is refused)."""
    placed = []
    for member in members:
        dest = owned_dir(target, *member.rel.parts[:-1]) / member.rel.name
        if member.is_dir:
            owned_dir(target, *member.rel.parts)
            continue
        if dest.is_dir() and not dest.is_symlink():
            raise DownloadError(f"{dest}: a folder is in the way of the archive member {str(member.rel)!r}")
        os.replace(staging.joinpath(*member.rel.parts), dest)
        placed.append(dest)
    return placed


def unpack_archive(archive: Path, target: Path, fmt: str, archive_size: int, limits: UnpackLimits = UnpackLimits(),
                   protected: Iterable[str] = (), cancel: threading.Event | None = None,
                   on_start: Callable[[int, int], None] = lambda members, nbytes: None,
                   on_bytes: Callable[[int], None] = lambda n: None) -> list[Path]:
    """Unpack `archive` (of `archive_size` bytes, as model.yml declares) into `target`; `protected`
    are paths relative to target that no member may replace. Returns the unpacked files' paths.
    Nothing is placed in target unless every member unpacked; the staging folder never stays."""
    cancel = cancel or threading.Event()
    staging: Path | None = None
    try:
        try:
            if fmt == "zip":
                declared = zip_declared_members(archive)
                if declared is not None and declared > limits.max_members:
                    raise DownloadError(f"{archive}: more than {limits.max_members} members ({declared}); refusing "
                                        f"to unpack (--max_archive_members raises the limit)")
                opened = zipfile.ZipFile(archive)
            elif fmt in TAR_MODES:
                opened = tarfile.open(archive, TAR_MODES[fmt])
            else:
                raise DownloadError(f"{archive}: unknown archive format {fmt!r}")
            with opened as handle:
                listing = (_zip_members(archive, handle, limits) if fmt == "zip"
                           else _tar_members(archive, handle))
                members = check_members(archive, listing, archive_size, limits, protected)
                on_start(len(members), sum(m.size for m in members))
                staging = make_temp_dir(target, "unpack")
                for member in members:
                    if cancel.is_set():
                        raise Cancelled()
                    out = staging.joinpath(*member.rel.parts)
                    if member.is_dir:
                        out.mkdir(parents=True, exist_ok=True)
                    else:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        _copy(archive, member, out, cancel, on_bytes)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile,
                NotImplementedError, RuntimeError, ValueError) as exc:
            raise DownloadError(f"{archive}: not a valid {fmt} archive: {' '.join(str(exc).split())}") from None
        except OSError as exc:  # unreadable data inside a bz2/xz stream, or the disk refused a write
            raise DownloadError(f"{archive}: cannot unpack: {exc.strerror or ' '.join(str(exc).split())}") from None
        return _place(staging, target, members)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
