"""Reading inputs and writing outputs so that hostile paths cannot hang, clobber or half-write.

Inputs must be regular files (a FIFO would block forever, a device could be endless); outputs
must not be an input of the same run, a directory, a device or a FIFO; regular outputs are
replaced atomically (a temporary file in the same directory, then a rename), with the mode a
plain `open()` would give under the process umask.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from .cli import create_with_cleanup, raise_if_interrupted
from .errors import FacezooError

TEMP_PREFIX = ".facezoo-tmp-"


def file_kind(mode: int) -> str:
    """What a file of this st_mode is, in words ('a FIFO', 'a device', ...), for error messages."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_input(path: Path | str, what: str = "input", error: type[FacezooError] = FacezooError) -> Path:
    """`path` when it names an existing regular file (symlinks followed), else `error`."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: {what} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise error(f"{path}: {what} must be a regular file, found {file_kind(mode)}")
    return path


def read_bytes_limited(path: Path | str, limit: int, what: str = "input",
                       error: type[FacezooError] = FacezooError) -> bytes:
    """The bytes of a regular file no larger than `limit`; FIFOs and devices are refused unopened."""
    path = regular_input(path, what, error)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise error(f"{path}: {what} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped between stat and open
            raise error(f"{path}: {what} must be a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{path}: {what} is larger than the {limit:,}-byte limit")
    return data


def read_text_limited(path: Path | str, limit: int, what: str = "input",
                      error: type[FacezooError] = FacezooError) -> str:
    """The UTF-8 text of a regular file no larger than `limit` bytes."""
    data = read_bytes_limited(path, limit, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(path: Path | str, what: str, inputs: Iterable[Path | str] = (),
                      error: type[FacezooError] = FacezooError) -> Path:
    """Refuse, before any work, an output path that is an input of the run, a directory, a device,
    a FIFO or other non-regular file, or whose folder does not exist or cannot be written."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise error(f"{path}: {what} cannot be written ({exc.strerror})") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise error(f"{path}: {what} must be a regular file or a new path, found {file_kind(mode)}")
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise error(f"{path}: {what} is also an input of this run ({source}); choose another path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"{path}: {what}'s folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"{path}: {what}'s folder {parent} is not writable")
    return path


def check_output_dir(path: Path | str, what: str, inputs: Iterable[Path | str] = (),
                     error: type[FacezooError] = FacezooError) -> Path:
    """Refuse an output folder that exists as something other than a folder, holds an input of the
    run, or cannot be made or written."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise error(f"{path}: {what} must be a folder, found {file_kind(os.lstat(path).st_mode)}")
        if not os.access(path, os.W_OK | os.X_OK):
            raise error(f"{path}: {what} is not writable")
    else:
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise error(f"{path}: {what} cannot be made under {parent}")
    resolved = path.resolve()
    for source in inputs:
        if source is None:
            continue
        src = Path(source).resolve()
        if src == resolved or resolved in src.parents:
            raise error(f"{path}: {what} holds an input of this run ({source}); choose another folder")
    return path


def _temp_prefix(tag: str) -> str:
    """Temporary names carry the owner's pid, so `sweep_stale_temps` knows when they are orphans."""
    return f"{TEMP_PREFIX}{os.getpid()}-{tag}."


def file_mode() -> int:
    """The mode `open(path, 'w')` gives a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends (for renames that must happen together)."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def atomic_output(path: Path | str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """A file object whose content replaces `path` only when the block ends without an error."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=_temp_prefix(path.name))
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
        raise_if_interrupted()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path | str, data: str | bytes) -> None:
    """Replace `path` with `data` atomically."""
    with atomic_output(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


class OutputGroup:
    """Several output files that appear together or not at all: each is staged as a temporary file
    beside its target, and `commit` renames them all with signals deferred."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage(self, path: Path | str, data: str | bytes) -> None:
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".",
                                   prefix=_temp_prefix(path.name))
        self._staged.append((Path(tmp), path))
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)

    def reserve(self, path: Path | str) -> Path:
        """A new empty temporary file beside `path` for the caller to fill (or replace) by name;
        `commit` renames it to `path` with the others."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=_temp_prefix(path.name))
        os.close(fd)
        self._staged.append((Path(tmp), path))
        return Path(tmp)

    def commit(self) -> None:
        with signals_deferred():
            raise_if_interrupted()
            for tmp, path in self._staged:
                os.chmod(tmp, file_mode())  # a reserved file may have been replaced by a 0600 one
                os.replace(tmp, path)
        self._staged.clear()

    def discard(self) -> None:
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged.clear()

    def __enter__(self) -> "OutputGroup":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def make_temp_dir(parent: Path | str, tag: str) -> Path:
    """A temporary folder inside `parent` whose name carries this process id, so that a later run
    can remove it once this process is gone (after a kill -9)."""
    raise_if_interrupted()  # a worker thread that has not noticed the signal starts nothing new
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(parent)
    return create_with_cleanup(lambda: Path(tempfile.mkdtemp(dir=parent, prefix=_temp_prefix(tag))),
                               lambda made: lambda: shutil.rmtree(made, ignore_errors=True))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temps(parent: Path | str) -> list[Path]:
    """Remove temporary files and folders under `parent` left by facezoo processes that no longer run."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        pid = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        removed.append(Path(entry.path))
    return removed
