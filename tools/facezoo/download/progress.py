"""Progress reporting: tqdm bars for people, JSON lines for machines."""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

from tqdm import tqdm


class TextReporter:
    """One overall tqdm bar of bytes (stderr) and one line per event."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.lock = threading.Lock()
        self.bar: tqdm | None = None

    def start(self, total_bytes: int, files: int) -> None:
        self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream,
                        desc=f"{files} file(s)", disable=None, dynamic_ncols=True)

    def _write(self, text: str) -> None:
        with self.lock:
            if self.bar is not None and not self.bar.disable:
                self.bar.write(text, file=self.stream)
            else:
                print(text, file=self.stream, flush=True)

    def file_start(self, model: str, file: str, size: int, source: str) -> None:
        self._write(f"========== {model}/{file}: fetching {size} bytes from {source}")

    def advance(self, model: str, file: str, nbytes: int) -> None:
        if self.bar is not None:
            with self.lock:
                self.bar.update(nbytes)

    def rewind(self, model: str, file: str, nbytes: int) -> None:
        if self.bar is not None and nbytes:
            with self.lock:
                self.bar.update(-nbytes)

    def file_done(self, model: str, file: str, how: str) -> None:
        self._write(f"========== {model}/{file}: {how}")

    def attempt_failed(self, model: str, file: str, source: str, attempt: int, reason: str, retry_in: float | None):
        then = f"; retrying in {retry_in:g} s" if retry_in is not None else ""
        self._write(f"########## {model}/{file}: {source}: attempt {attempt} failed: {reason}{then}")

    def file_failed(self, model: str, file: str, reason: str) -> None:
        self._write(f"########## FAILED: {reason}")

    def model_done(self, model: str, ok: bool, reason: str | None) -> None:
        self._write(f"========== {model}: {'complete' if ok else 'FAILED'}")

    def summary(self, results: dict[str, str | None]) -> None:
        if self.bar is not None:
            self.bar.close()
        failed = [m for m, r in results.items() if r]
        line = f"Summary: {len(results) - len(failed)} of {len(results)} model(s) complete"
        print(line + (f"; failed: {', '.join(failed)}" if failed else ""), file=self.stream, flush=True)


class JsonReporter:
    """One JSON object per line on stdout; progress events at most every 0.25 s per file."""

    INTERVAL = 0.25

    def __init__(self, stream: TextIO = sys.stdout):
        self.stream = stream
        self.lock = threading.Lock()
        self.done: dict[tuple[str, str], int] = {}
        self.last: dict[tuple[str, str], float] = {}
        self.sizes: dict[tuple[str, str], int] = {}

    def _emit(self, event: str, **fields: Any) -> None:
        with self.lock:
            self.stream.write(json.dumps({"event": event, **fields}) + "\n")
            self.stream.flush()

    def start(self, total_bytes: int, files: int) -> None:
        self._emit("start", total_bytes=total_bytes, files=files)

    def file_start(self, model: str, file: str, size: int, source: str) -> None:
        self.sizes[(model, file)] = size
        self.done.setdefault((model, file), 0)
        self._emit("file_start", model=model, file=file, size=size, source=source)

    def advance(self, model: str, file: str, nbytes: int) -> None:
        key = (model, file)
        self.done[key] = self.done.get(key, 0) + nbytes
        now = time.monotonic()
        if now - self.last.get(key, 0.0) >= self.INTERVAL or self.done[key] >= self.sizes.get(key, 0):
            self.last[key] = now
            self._emit("file_progress", model=model, file=file, bytes=self.done[key], size=self.sizes.get(key))

    def rewind(self, model: str, file: str, nbytes: int) -> None:
        key = (model, file)
        self.done[key] = max(0, self.done.get(key, 0) - nbytes)

    def file_done(self, model: str, file: str, how: str) -> None:
        self._emit("file_done", model=model, file=file, how=how)

    def attempt_failed(self, model: str, file: str, source: str, attempt: int, reason: str, retry_in: float | None):
        self._emit("attempt_failed", model=model, file=file, source=source, attempt=attempt, reason=reason,
                   retry_in=retry_in)

    def file_failed(self, model: str, file: str, reason: str) -> None:
        self._emit("file_failed", model=model, file=file, reason=reason)

    def model_done(self, model: str, ok: bool, reason: str | None) -> None:
        self._emit("model_done", model=model, ok=ok, reason=reason)

    def summary(self, results: dict[str, str | None]) -> None:
        self._emit("summary", complete=[m for m, r in results.items() if not r],
                   failed={m: r for m, r in results.items() if r})


def make_reporter(kind: str):
    """A reporter by --progress_format name."""
    return JsonReporter() if kind == "json" else TextReporter()
