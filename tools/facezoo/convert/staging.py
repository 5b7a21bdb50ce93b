"""A folder where a conversion writes before anything reaches a final path.

The folder is pid-tagged (`safeio.make_temp_dir`), so one left by a `kill -9` is swept by the next
run. `commit` moves every staged file to its final path under a lock; SIGINT/SIGTERM run
`discard` (through `on_interrupt`), which takes the same lock: an interrupted run either
finished its moves (the outputs are whole) or made none. This holds whichever thread converts,
which a signal mask could not promise: Python runs signal handlers in the main thread, whatever
thread the kernel delivered the signal to.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from facezoo.common.cli import on_interrupt, raise_if_interrupted
from facezoo.common.safeio import make_temp_dir

from .errors import ConvertError


class Staging:
    """A temporary folder inside `root` whose files move to their final paths together, or are removed."""

    def __init__(self, root: Path, tag: str):
        self._lock = threading.Lock()
        self._closed = False
        self.dir = make_temp_dir(root, tag)
        self._unregister = on_interrupt(self.discard)

    def commit(self, moves: list[tuple[Path, Path]]) -> None:
        """Move each staged file to its final path (folders made as needed), all or none."""
        with self._lock:
            if self._closed:
                raise ConvertError("interrupted before the outputs were moved in place")
            raise_if_interrupted()
            for _, final in moves:
                final.parent.mkdir(parents=True, exist_ok=True)
            for staged, final in moves:
                os.replace(staged, final)

    def discard(self) -> None:
        """Remove the folder and whatever is in it. It is renamed first, so a thread still writing
        by path into it fails instead of recreating files there."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            gone = self.dir.with_name(self.dir.name + "-discarded")
            try:
                os.rename(self.dir, gone)
            except OSError:
                gone = self.dir
            shutil.rmtree(gone, ignore_errors=True)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.discard()
        self._unregister()
