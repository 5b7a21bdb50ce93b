"""The local executor: image decoding and preprocessing overlapped with inference in this
process, with bounded read-ahead, optionally through the decoded-input cache."""
from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .cache import CachedJob, InputCache
from .images import BrokenImage
from .jobs import Job, Progress
from .launchers.base import Launcher


def prefetch(keys: Iterable[Any], load: Callable[[Any], Any], workers: int, ahead: int,
             broken: list[tuple[Any, str]] | None, chunk: int = 1) -> Iterator[tuple[Any, Any]]:
    """(key, loaded) pairs in key order, loaded by `workers` threads, `chunk` keys per task (one
    hand-over per batch of small images instead of one per image), at most about `ahead` keys
    early. A BrokenImage is recorded in `broken` and skipped when `broken` is a list; raised
    otherwise."""
    def load_chunk(part: list[Any]) -> list[tuple[Any, Any, BrokenImage | None]]:
        done = []
        for key in part:
            try:
                done.append((key, load(key), None))
            except BrokenImage as exc:
                done.append((key, None, exc))
        return done

    keys = iter(keys)

    def next_chunk() -> list[Any]:
        return [key for _, key in zip(range(chunk), keys)]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for _ in range(max(1, -(-ahead // chunk))):
            part = next_chunk()
            if not part:
                break
            pending.append(pool.submit(load_chunk, part))
        while pending:
            future = pending.popleft()
            part = next_chunk()
            if part:
                pending.append(pool.submit(load_chunk, part))
            try:
                done = future.result()
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
            for key, loaded, exc in done:
                if exc is None:
                    yield key, loaded
                elif broken is None:
                    for f in pending:
                        f.cancel()
                    raise exc
                else:
                    broken.append((key, str(exc)))


def run_inference(launcher: Launcher, job: Job, keys: list[Any], skip_broken: bool,
                  progress: Progress | None = None) -> tuple[dict[Any, Any], list[tuple[Any, str]]]:
    """Run every key through job.load -> launcher -> job.post; results by key, and broken images.
    `progress` gets the number of keys as its total and advances once per key inferred."""
    results: dict[Any, Any] = {}
    infos: dict[Any, Any] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def handle(key, outputs):
        try:
            value = job.post(key, infos.pop(key), outputs)
        except Exception as exc:  # surfaced in the caller's thread below; an interrupt propagates at once
            errors.append(exc)
            return
        with lock:
            results[key] = value
        if progress is not None:
            progress.update(1)

    def blobs(loaded: Iterator[tuple[Any, tuple[np.ndarray, Any]]]) -> Iterator[tuple[Any, np.ndarray]]:
        for key, (blob, info) in loaded:
            infos[key] = info
            yield key, blob

    if progress is not None:
        progress.reset(total=len(keys))
    broken: list[tuple[Any, str]] | None = [] if skip_broken else None
    # one decoding thread per core: OpenCV releases the GIL and runs single-threaded in each (see
    # images._decoder), and they wait once `ahead` inputs are ready, leaving the cores to inference
    workers = max(1, min(len(os.sched_getaffinity(0)), 8))
    batch = getattr(launcher, "batch", 1)
    ahead = batch * (getattr(launcher, "requests", 1) + 1 + workers)
    launcher.infer(blobs(prefetch(keys, job.load, workers, ahead, broken, chunk=batch)), handle)
    if errors:
        raise errors[0]
    return results, broken or []


class LocalExecutor:
    """Runs jobs in this process on an opened launcher, their inputs through `cache` if given."""

    def __init__(self, launcher: Launcher, cache: InputCache | None = None):
        self.launcher = launcher
        self.cache = cache
        self.input = launcher.input
        self.outputs = launcher.outputs
        self.description = launcher.description

    def run(self, job: Job, keys: list[Any], skip_broken: bool,
            progress: Progress | None = None) -> tuple[dict[Any, Any], list[tuple[Any, str]]]:
        if self.cache is not None:
            job = CachedJob(job, self.cache)
        return run_inference(self.launcher, job, keys, skip_broken, progress)
