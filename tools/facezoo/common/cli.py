"""How every console script starts and ends: one-line errors, exit codes, signals.

Exit codes: 0 success, 1 a result the user asked to be told about (a failed download, a metric out
of range), 2 bad input (one line on stderr naming the file/line/field), 130 SIGINT, 143 SIGTERM.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from .errors import FacezooError, Interrupted

T = TypeVar("T")
_cleanups: list[Callable[[], None]] = []
_prog: list[str] = []  # the running command's name, for the watchdog's line
_cleanup_lock = threading.Lock()


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (`prog: error: ...`, exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def on_interrupt(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` if the command is interrupted (temporary files to remove); returns a function
    that unregisters it. Registered after the interrupt's cleanups have begun (by a worker thread
    that had not yet noticed), it runs at once."""
    with _cleanup_lock:
        closing = _exiting.is_set()
        if not closing:
            _cleanups.append(callback)
    if closing:
        callback()

    def remove() -> None:
        with _cleanup_lock:
            if callback in _cleanups:
                _cleanups.remove(callback)

    return remove


_received: list[int] = []  # the signal that interrupted the command, once one has
_exiting = threading.Event()
GRACE_S = 1.5  # after a signal, the most a command may take to end (the promise is 2 s)


def create_with_cleanup(create: Callable[[], T], cleanup_for: Callable[[T], Callable[[], None]]) -> T:
    """`create()`, with `cleanup_for(result)` registered to run on an interrupt, both done while the
    interrupt's cleanups cannot start: a worker thread making a temporary folder as a signal
    arrives either makes it before the cleanups run (and it is removed) or is refused."""
    with _cleanup_lock:
        if _exiting.is_set():
            raise Interrupted(_received[0] if _received else int(signal.SIGINT))
        thing = create()
        _cleanups.append(cleanup_for(thing))
    return thing


def raise_if_interrupted() -> None:
    """Raise Interrupted if a signal has arrived: called before outputs are moved to their final
    paths, so that an interrupt a library swallowed (some wrap it in an ImportError and then catch
    that) can never let a run publish its outputs after the signal."""
    if _received:
        raise Interrupted(_received[0])


def _raise(signum, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _received.append(signum)
    # if the interrupt is swallowed on its way up, the watchdog still ends the command in time
    watchdog = threading.Timer(GRACE_S, _interrupted, (_prog[0] if _prog else "facezoo", signum))
    watchdog.daemon = True
    watchdog.start()
    raise Interrupted(signum)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _finish(code: int) -> None:
    """Flush and leave now: worker threads still running are stopped with the process, so nothing
    writes after the exit (a ThreadPoolExecutor would otherwise be joined at exit)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def guarded(prog: str, body: Callable[[], int]) -> int:
    """`body()`'s exit status, or 2 with one line on stderr when it raised a user error."""
    try:
        return int(body() or 0)
    except (FacezooError, OSError, MemoryError) as exc:
        if _received:  # the error is the signal's doing (a library wrapped the interrupt): not the user's
            raise Interrupted(_received[0]) from None
        if isinstance(exc, BrokenPipeError):
            raise
        if isinstance(exc, FacezooError):
            message = _one_line(exc)
        elif isinstance(exc, OSError):  # the environment refused a file operation (disk full, permissions)
            message = f"{exc.filename}: " if exc.filename else ""
            message += exc.strerror or _one_line(exc)
        else:
            message = "out of memory"
        sys.stderr.write(f"{prog}: error: {message}\n")
        return 2


def run_command(prog: str, main: Callable[[], int]) -> None:
    """The console script's entry: run `main` (which handles user errors with `guarded`) and exit
    with its status; SIGINT and SIGTERM end it with one line, 130 or 143, after the registered
    cleanups."""
    _prog.append(prog)
    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)
    try:
        code = main()
    except BrokenPipeError:  # the reader of stdout went away (`| head`): not an error of ours
        if not _received:
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except OSError:
                pass
            _finish(0)
        _interrupted(prog, _received[0])
    except BaseException as exc:
        # Interrupted itself, or whatever a library turned it into (numpy wraps an interrupt that
        # lands during its import in an ImportError): a signal was received, so it is the signal.
        if isinstance(exc, SystemExit) and not _received:
            raise
        if isinstance(exc, Interrupted):
            _interrupted(prog, exc.signum)
        if isinstance(exc, KeyboardInterrupt) or _received:
            _interrupted(prog, _received[0] if _received else int(signal.SIGINT))
        raise
    if _received:  # the interrupt was swallowed on the way out: the status still says so
        _interrupted(prog, _received[0])
    _finish(int(code or 0))


def _interrupted(prog: str, signum: int) -> None:
    """Run the registered cleanups, print one line and exit 128 + signum (once, from the main
    thread or from the watchdog, whichever comes first)."""
    with _cleanup_lock:
        already = _exiting.is_set()
        _exiting.set()
        callbacks = list(reversed(_cleanups))
    if already:
        if threading.current_thread() is threading.main_thread():
            threading.Event().wait()  # the watchdog is ending the process
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for callback in callbacks:
        try:
            callback()
        except Exception:  # best effort; the next run of the command sweeps what is left
            pass
    name = signal.Signals(signum).name
    sys.stderr.write(f"{prog}: interrupted by {name}; nothing partial was left at a final path\n")
    _finish(128 + signum)
