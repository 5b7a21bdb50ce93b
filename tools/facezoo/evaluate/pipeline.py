"""Image decoding and preprocessing overlapped with inference, with bounded read-ahead."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from .images import BrokenImage
from .launchers.base import Launcher


def prefetch(keys: Iterable[Any], load: Callable[[Any], np.ndarray], workers: int, ahead: int,
             broken: list[tuple[Any, str]] | None) -> Iterator[tuple[Any, np.ndarray]]:
    """(key, blob) pairs in key order, loaded by `workers` threads at most `ahead` items early.
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
                blob = future.result()
            except BrokenImage as exc:
                if broken is None:
                    for _, f in pending:
                        f.cancel()
                    raise
                broken.append((key, str(exc)))
                continue
            yield key, blob


class Progress(Protocol):
    """A progress bar (tqdm's interface): told the total, then advanced per item done."""

    def reset(self, total: int | None = None) -> None: ...

    def update(self, n: int = 1) -> Any: ...


def run_inference(launcher: Launcher, keys: list[Any], load: Callable[[Any], np.ndarray],
                  postprocess: Callable[[Any, dict[str, np.ndarray]], Any], skip_broken: bool,
                  progress: Progress | None = None) -> tuple[dict[Any, Any], list[tuple[Any, str]]]:
    """Run every key through load -> launcher -> postprocess; results by key, and broken images.
    `progress` gets the number of keys as its total and advances once per key inferred."""
    results: dict[Any, Any] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def handle(key, outputs):
        try:
            value = postprocess(key, outputs)
        except Exception as exc:  # surfaced in the caller's thread below; an interrupt propagates at once
            errors.append(exc)
            return
        with lock:
            results[key] = value
        if progress is not None:
            progress.update(1)

    if progress is not None:
        progress.reset(total=len(keys))
    broken: list[tuple[Any, str]] | None = [] if skip_broken else None
    requests = getattr(launcher, "requests", 1)
    launcher.infer(prefetch(keys, load, workers=2, ahead=2 * requests + 2, broken=broken), handle)
    if errors:
        raise errors[0]
    return results, broken or []
