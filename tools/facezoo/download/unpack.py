"""Safe unpacking of zip and tar archives: no member may leave the target directory, no links."""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .errors import DownloadError

FORMATS = {".zip": "zip", ".tar": "tar", ".tar.gz": "gztar", ".tgz": "gztar", ".tar.bz2": "bztar",
           ".tbz2": "bztar", ".tar.xz": "xztar", ".txz": "xztar"}


def archive_format(name: str, declared: str | None) -> str:
    """The archive format: as declared in model.yml, else from the file name."""
    if declared:
        return declared
    for suffix, fmt in sorted(FORMATS.items(), key=lambda kv: -len(kv[0])):
        if name.lower().endswith(suffix):
            return fmt
    raise DownloadError(f"{name}: cannot tell the archive format from the name; set 'format' in model.yml")


def _safe_member(archive: Path, name: str) -> PurePosixPath:
    pure = PurePosixPath(name)
    if not name or name.startswith("/") or "\\" in name or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
        raise DownloadError(f"{archive}: member {name!r} escapes the target directory; refusing to unpack")
    return pure


def _zip_members(archive: Path, zf: zipfile.ZipFile):
    for info in zf.infolist():
        rel = _safe_member(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise DownloadError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to unpack")
        yield rel, info.is_dir(), (lambda info=info: zf.open(info))


def _tar_members(archive: Path, tf: tarfile.TarFile):
    for member in tf.getmembers():
        rel = _safe_member(archive, member.name)
        if member.issym() or member.islnk():
            raise DownloadError(f"{archive}: member {member.name!r} is a link; refusing to unpack")
        if not (member.isfile() or member.isdir()):
            raise DownloadError(f"{archive}: member {member.name!r} is not a regular file or directory")
        yield rel, member.isdir(), (lambda member=member: tf.extractfile(member))


def unpack_archive(archive: Path, target: Path, fmt: str) -> list[Path]:
    """Unpack into target; members are written to a temporary directory first, then moved in place.
    Returns the unpacked files' paths. Nothing is left in target when the archive is refused."""
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".unpack-"))
    try:
        try:
            if fmt == "zip":
                with zipfile.ZipFile(archive) as zf:
                    files = _extract(archive, _zip_members(archive, zf), staging)
            else:
                mode = {"tar": "r:", "gztar": "r:gz", "bztar": "r:bz2", "xztar": "r:xz"}[fmt]
                with tarfile.open(archive, mode) as tf:
                    files = _extract(archive, _tar_members(archive, tf), staging)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise DownloadError(f"{archive}: not a valid {fmt} archive: {exc}") from None
        placed = []
        for rel in files:
            dest = target.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging.joinpath(*rel.parts), dest)
            placed.append(dest)
        return placed
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: Path, members, staging: Path) -> list[PurePosixPath]:
    # validate every member before writing anything
    members = list(members)
    files = []
    for rel, is_dir, opener in members:
        out = staging.joinpath(*rel.parts)
        if is_dir:
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        with opener() as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        files.append(rel)
    return files
