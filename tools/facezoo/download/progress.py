"""Progress reporting: tqdm bars for people (stderr), JSON lines for machines (stdout).

The downloader reports each file's progress as an absolute byte count; reporters clamp it to
the file's size, so resumes, retries and fallbacks to another source never count a byte twice
and no count exceeds its total.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

from tqdm import tqdm


class _Counts:
    """Bytes done per file, each within [0, size]; `set` returns the change of the sum."""

    def __init__(self) -> None:
        self.size: dict[tuple[str, str], int] = {}
        self.done: dict[tuple[str, str], int] = {}

    def add(self, model: str, file: str, size: int) -> None:
        self.size[(model, file)] = size
        self.done[(model, file)] = 0

    def set(self, model: str, file: str, done: int) -> int:
        key = (model, file)
        value = max(0, min(done, self.size.get(key, 0)))
        delta = value - self.done.get(key, 0)
        self.done[key] = value
        return delta


class TextReporter:
    """One overall tqdm bar of bytes with its rate, one bar per archive being unpacked, and one
    line per event (stderr)."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.lock = threading.Lock()
        self.bar: tqdm | None = None
        self.counts = _Counts()
        self.unpacking: dict[tuple[str, str], tuple[tqdm, list[int]]] = {}

    def _tqdm(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream, desc=desc,
                    disable=None, dynamic_ncols=True)

    def start(self, jobs) -> None:
        for model, file in jobs:
            self.counts.add(model.name, file.name, file.size)
        self.bar = self._tqdm(sum(file.size for _, file in jobs), f"{len(jobs)} file(s)")

    def _write(self, text: str) -> None:
        with self.lock:
            if self.bar is not None and not self.bar.disable:
                self.bar.write(text, file=self.stream)
            else:
                print(text, file=self.stream, flush=True)

    def file_start(self, model: str, file: str, size: int, source: str) -> None:
        self._write(f"========== {model}/{file}: fetching {size} bytes from {source}")

    def progress(self, model: str, file: str, done: int) -> None:
        with self.lock:
            delta = self.counts.set(model, file, done)
            if self.bar is not None and delta:
                self.bar.update(delta)

    def file_done(self, model: str, file: str, how: str) -> None:
        self._write(f"========== {model}/{file}: {how}")

    def attempt_failed(self, model: str, file: str, source: str, attempt: int, reason: str, retry_in: float | None):
        then = f"; retrying in {retry_in:g} s" if retry_in is not None else ""
        self._write(f"########## {model}/{file}: {source}: attempt {attempt} failed: {reason}{then}")

    def file_failed(self, model: str, file: str, reason: str) -> None:
        self._write(f"########## FAILED: {reason}")

    def unpack_start(self, model: str, file: str, members: int, nbytes: int) -> None:
        self._write(f"========== {model}/{file}: unpacking {members} member(s), {nbytes} bytes")
        with self.lock:
            self.unpacking[(model, file)] = (self._tqdm(nbytes, f"unpack {file}"), [0])

    def unpack_progress(self, model: str, file: str, done: int) -> None:
        with self.lock:
            bar, shown = self.unpacking.get((model, file), (None, [0]))
            if bar is not None and done > shown[0]:
                bar.update(min(done, bar.total) - shown[0])
                shown[0] = min(done, bar.total)

    def unpack_done(self, model: str, file: str, files: int) -> None:
        with self.lock:
            bar, _ = self.unpacking.pop((model, file), (None, None))
            if bar is not None:
                bar.close()
        self._write(f"========== {model}/{file}: unpacked {files} file(s)")

    def model_done(self, model: str, ok: bool, reason: str | None) -> None:
        self._write(f"========== {model}: {'complete' if ok else 'FAILED'}")

    def close(self) -> None:
        with self.lock:
            for bar, _ in self.unpacking.values():
                bar.close()
            self.unpacking.clear()
            if self.bar is not None:
                self.bar.close()

    def summary(self, results: dict[str, str | None]) -> None:
        self.close()
        failed = [m for m, r in results.items() if r]
        line = f"Summary: {len(results) - len(failed)} of {len(results)} model(s) complete"
        print(line + (f"; failed: {', '.join(failed)}" if failed else ""), file=self.stream, flush=True)


class JsonReporter:
    """One JSON object per line on stdout; progress events at most every 0.25 s per file, and
    always at a file's end."""

    INTERVAL = 0.25

    def __init__(self, stream: TextIO = sys.stdout):
        self.stream = stream
        self.lock = threading.Lock()
        self.counts = _Counts()
        self.last: dict[tuple[str, str], float] = {}
        self.unpack_total: dict[tuple[str, str], int] = {}

    def _emit(self, event: str, **fields: Any) -> None:
        with self.lock:
            self.stream.write(json.dumps({"event": event, **fields}) + "\n")
            self.stream.flush()

    def _due(self, key: tuple[str, str], final: bool) -> bool:
        now = time.monotonic()
        with self.lock:
            if final or now - self.last.get(key, 0.0) >= self.INTERVAL:
                self.last[key] = now
                return True
        return False

    def start(self, jobs) -> None:
        for model, file in jobs:
            self.counts.add(model.name, file.name, file.size)
        self._emit("start", total_bytes=sum(f.size for _, f in jobs), files=len(jobs))

    def file_start(self, model: str, file: str, size: int, source: str) -> None:
        self._emit("file_start", model=model, file=file, size=size, source=source)

    def progress(self, model: str, file: str, done: int) -> None:
        with self.lock:
            self.counts.set(model, file, done)
            value, size = self.counts.done[(model, file)], self.counts.size[(model, file)]
        if self._due((model, file), value >= size):
            self._emit("file_progress", model=model, file=file, bytes=value, size=size)

    def file_done(self, model: str, file: str, how: str) -> None:
        self._emit("file_done", model=model, file=file, how=how)

    def attempt_failed(self, model: str, file: str, source: str, attempt: int, reason: str, retry_in: float | None):
        self._emit("attempt_failed", model=model, file=file, source=source, attempt=attempt, reason=reason,
                   retry_in=retry_in)

    def file_failed(self, model: str, file: str, reason: str) -> None:
        self._emit("file_failed", model=model, file=file, reason=reason)

    def unpack_start(self, model: str, file: str, members: int, nbytes: int) -> None:
        self.unpack_total[(model, file)] = nbytes
        self._emit("unpack_start", model=model, file=file, members=members, bytes=nbytes)

    def unpack_progress(self, model: str, file: str, done: int) -> None:
        total = self.unpack_total.get((model, file), 0)
        done = min(done, total)
        if self._due((model, "unpack:" + file), done >= total):
            self._emit("unpack_progress", model=model, file=file, bytes=done, total=total)

    def unpack_done(self, model: str, file: str, files: int) -> None:
        self._emit("unpack_done", model=model, file=file, files=files)

    def model_done(self, model: str, ok: bool, reason: str | None) -> None:
        self._emit("model_done", model=model, ok=ok, reason=reason)

    def close(self) -> None:
        self.stream.flush()

    def summary(self, results: dict[str, str | None]) -> None:
        self._emit("summary", complete=[m for m, r in results.items() if not r],
                   failed={m: r for m, r in results.items() if r})


def make_reporter(kind: str):
    """A reporter by --progress_format name."""
    return JsonReporter() if kind == "json" else TextReporter()
