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
             broken: list[tuple[Any, str]] | None) -> Iterator[tuple[Any, Any]]:
    """(key, loaded) pairs in key order, loaded by `workers` threads at most `ahead` items early.
    A BrokenImage is recorded in `broken` and skipped when `broken` is a list; raised otherwise."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        keys = iter(keys)
        for key in keys:
            pending.append((key, pool.submit(load, key)))
            if len(pending) >= ahead:
                break
        while pending:
            key, future = pending.popleft()
            for next_key in keys:
                pending.append((next_key, pool.submit(load, next_key)))
                break
            try:
                loaded = future.result()
            except BrokenImage as exc:
                if broken is None:
                    for _, f in pending:
                        f.cancel()
                    raise
                broken.append((key, str(exc)))
                continue
            yield key, loaded


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
    ahead = getattr(launcher, "batch", 1) * (getattr(launcher, "requests", 1) + 1) + workers
    launcher.infer(blobs(prefetch(keys, job.load, workers=workers, ahead=ahead, broken=broken)), handle)
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
        return run_inference(self.launcher, CachedJob(job, self.cache) if self.cache is not None else job, keys, skip_broken,
                             progress)
