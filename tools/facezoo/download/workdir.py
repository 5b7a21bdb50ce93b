"""Files the downloader owns (work folders, partial files, locks, cache entries) opened so that
nothing planted there is followed: no symbolic links, no hard links to other files, no FIFOs or
devices. Anything found there that the downloader did not make stops the run with one line."""
from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from facezoo.common.safeio import file_kind as kind
from facezoo.common.safeio import file_mode

from .errors import Cancelled, UnsafePath

_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _refuse(path: Path, found: str) -> UnsafePath:
    return UnsafePath(f"{path}: found {found} where the downloader keeps its own files; "
                      f"refusing to follow it (remove it and run again)")


def check_owned(path: Path, st: os.stat_result) -> None:
    """Refuse a file of ours that is not a plain regular file with a single link."""
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, kind(st.st_mode))
    if st.st_nlink != 1:
        raise _refuse(path, f"a hard link ({st.st_nlink} names for one file)")


def owned_dir(root: Path, *parts: str) -> Path:
    """root/parts..., each component made if missing and refused if it is a symbolic link or not a
    folder (root itself is the user's choice and may be a link)."""
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    for part in parts:
        path = path / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise _refuse(path, kind(st.st_mode))
    return path


def lstat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _owned_fd(path: Path, fd: int) -> int:
    """`fd` when the file it opened is ours (regular, one link); closed and refused otherwise."""
    try:
        check_owned(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refuse_planted(path: Path) -> None:
    """After an open that failed: raise the refusal when something other than a regular file is there."""
    st = lstat_or_none(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise _refuse(path, kind(st.st_mode)) from None


def open_owned(path: Path, append: bool) -> int:
    """A write descriptor on a partial file: appended to (it must be ours: regular, one link) or
    created afresh with an exclusive create after removing what was there."""
    if append:
        return _owned_fd(path, os.open(path, os.O_WRONLY | os.O_APPEND | _NOFOLLOW))
    st = lstat_or_none(path)
    if st is not None:
        check_owned(path, st)
        os.unlink(path)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, file_mode())


def open_owned_read(path: Path) -> int | None:
    """A read descriptor on a file of ours, None when it does not exist; planted things refused."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        _refuse_planted(path)
        raise
    return _owned_fd(path, fd)


def owned_size(path: Path) -> int:
    """The size of a partial file of ours, 0 when there is none."""
    st = lstat_or_none(path)
    if st is None:
        return 0
    check_owned(path, st)
    return st.st_size


def check_final(path: Path) -> os.stat_result | None:
    """A model file's final path may be missing or a regular file; a link, FIFO, device or folder
    there is refused (a rename would replace a device node, a link would be read through)."""
    st = lstat_or_none(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UnsafePath(f"{path}: the model file's path holds {kind(st.st_mode)}; "
                         f"refusing to read or replace it (remove it and run again)")
    return st


def _open_lock(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, file_mode())
    except OSError:
        _refuse_planted(path)
        raise
    return _owned_fd(path, fd)


def _still_named(fd: int, path: Path) -> bool:
    st = lstat_or_none(path)
    mine = os.fstat(fd)
    return st is not None and (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def file_lock(path: Path, cancel: threading.Event, make_dir: Callable[[], object]) -> Iterator[None]:
    """An exclusive lock between processes (and threads) working on the same file; the lock file is
    removed when the lock is released, and a lock file that someone removed meanwhile is re-made.
    `make_dir` (re)makes the lock's folder, which another process may remove once it is empty."""
    while True:
        make_dir()
        try:
            fd = _open_lock(path)
        except FileNotFoundError:  # removed between making and opening: make it again
            continue
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if cancel.wait(0.05):
                        raise Cancelled() from None
            if not _still_named(fd, path):
                continue  # its holder removed it on release; lock the file now named there
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            return
        finally:
            os.close(fd)


def sweep_stale_locks(folder: Path) -> None:
    """Remove lock files no process holds (left by a process killed with -9)."""
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".lock")]
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        path = folder / name
        try:
            fd = os.open(path, os.O_RDWR | _NOFOLLOW)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                continue  # not ours: the lock itself refuses it, naming it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if _still_named(fd, path):
                os.unlink(path)
        finally:
            os.close(fd)


def remove_empty_dirs(root: Path, *parts: str) -> None:
    """Remove root/parts... from the deepest up while they are empty (another process may be
    using them: a folder that is not empty stays)."""
    for depth in range(len(parts), 0, -1):
        try:
            os.rmdir(Path(root).joinpath(*parts[:depth]))
        except OSError:
            return
