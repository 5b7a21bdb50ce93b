"""Fetching the files of registry models: parallel, resumable, verified, cached, with fallbacks."""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from facezoo.registry import Model, ModelFile

from .cache import Cache
from .errors import Cancelled, DownloadError, SourceError
from .sources import GOOGLE_DRIVE_URL, FetchContext, LocalFileSource, registry_sources
from .unpack import archive_format, unpack_archive
from .verify import sha256_of

MAX_RETRY_AFTER = 60.0


@dataclass
class DownloadOptions:
    """Settings of one downloader run."""

    output_dir: Path
    cache_dir: Path | None = None
    mirrors: list[str] = field(default_factory=list)
    jobs: int = 1
    num_attempts: int = 3
    retry_delay: float = 1.0
    timeout: float = 30.0
    gdrive_url: str = GOOGLE_DRIVE_URL


@contextlib.contextmanager
def _file_lock(path: Path, cancel: threading.Event):
    """An exclusive lock between processes (and threads) working on the same output file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if cancel.wait(0.1):
                    raise Cancelled() from None
        yield
    finally:
        os.close(fd)


class _Run:
    def __init__(self, options: DownloadOptions, reporter, cancel: threading.Event):
        self.options = options
        self.reporter = reporter
        self.cancel = cancel
        self.cache = Cache(options.cache_dir) if options.cache_dir else None
        self.local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def model_dir(self, model: Model) -> Path:
        return self.options.output_dir / model.subdirectory

    def work_dir(self, model: Model) -> Path:
        """Partial files and locks, kept apart so model directories hold only finished files."""
        return self.options.output_dir / ".partial" / model.subdirectory

    def fetch_file(self, model: Model, file: ModelFile) -> None:
        model_dir = self.model_dir(model)
        final = model_dir / file.name
        work = self.work_dir(model)
        flat = file.name.replace("/", "%2F")
        part = work / f"{flat}.part"
        with _file_lock(work / f"{flat}.lock", self.cancel):
            if final.is_file() and final.stat().st_size == file.size and sha256_of(final) == file.sha256:
                self.reporter.advance(model.name, file.name, file.size)
                self._remember(final, file)
                self.reporter.file_done(model.name, file.name, "already present, verified")
                return
            candidates = []
            if self.cache is not None and self.cache.entry(file.sha256).is_file():
                candidates.append(LocalFileSource(self.cache.entry(file.sha256), "cache",
                                                  on_mismatch=lambda: self.cache.evict(file.sha256)))
            candidates += registry_sources(model.name, file, self.options.mirrors, self.options.gdrive_url)
            failures = []
            counted = [0]
            for number, source in enumerate(candidates, 1):
                reason = self._try_source(model, file, source, part, counted)
                if reason is None:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(part, final)
                    self._remember(final, file)
                    self.reporter.file_done(model.name, file.name, f"verified, from {source.describe()}")
                    return
                failures.append(f"[{number}] {source.describe()}: {reason}")
            self.reporter.rewind(model.name, file.name, counted[0])
            raise DownloadError(f"{model.name}/{file.name}: every source failed: " + "; ".join(failures))

    def _remember(self, final: Path, file: ModelFile) -> None:
        if self.cache is not None:
            self.cache.put(final, file.sha256)

    def _try_source(self, model: Model, file: ModelFile, source, part: Path, counted: list[int]) -> str | None:
        def on_bytes(n: int) -> None:
            counted[0] += n
            self.reporter.advance(model.name, file.name, n)

        def on_start(offset: int) -> None:
            delta, counted[0] = offset - counted[0], offset
            (self.reporter.advance if delta > 0 else self.reporter.rewind)(model.name, file.name, abs(delta))

        ctx = FetchContext(self.session(), self.options.timeout, self.cancel, on_bytes, on_start)
        attempts = max(1, self.options.num_attempts)
        self.reporter.file_start(model.name, file.name, file.size, source.describe())
        for attempt in range(1, attempts + 1):
            if self.cancel.is_set():
                raise Cancelled()
            try:
                source.fetch(part, file, ctx)
                return None
            except SourceError as exc:
                if not exc.transient or attempt == attempts:
                    tried = f" (after {attempt} attempts)" if attempt > 1 else ""
                    self.reporter.attempt_failed(model.name, file.name, source.describe(), attempt, exc.reason, None)
                    return exc.reason + tried
                delay = self.options.retry_delay * 2 ** (attempt - 1)
                if exc.retry_after is not None:
                    delay = min(exc.retry_after, MAX_RETRY_AFTER)
                self.reporter.attempt_failed(model.name, file.name, source.describe(), attempt, exc.reason, delay)
                if self.cancel.wait(delay):
                    raise Cancelled() from None
        return "no attempt made"

    def postprocess(self, model: Model) -> None:
        model_dir = self.model_dir(model)
        for step in model.postprocessing:
            archive = model_dir / step.file
            fmt = archive_format(step.file, step.format)
            flat = step.file.replace("/", "%2F")
            with _file_lock(self.work_dir(model) / f"{flat}.lock", self.cancel):
                unpack_archive(archive, model_dir, fmt)


def download_models(models: list[Model], options: DownloadOptions, reporter,
                    cancel: threading.Event | None = None) -> dict[str, str | None]:
    """Download every file of every model, then run postprocessing. Returns, per model name,
    None when it is complete or the one-line reason it is not. Raises Cancelled on interruption."""
    cancel = cancel or threading.Event()
    run = _Run(options, reporter, cancel)
    jobs = [(m, f) for m in models for f in m.files]
    reporter.start(sum(f.size for _, f in jobs), len(jobs))
    results: dict[str, str | None] = {m.name: None for m in models}
    executor = ThreadPoolExecutor(max_workers=max(1, options.jobs))
    try:
        futures = {executor.submit(run.fetch_file, m, f): (m, f) for m, f in jobs}
        for future, (model, file) in futures.items():
            try:
                future.result()
            except DownloadError as exc:
                reporter.file_failed(model.name, file.name, str(exc))
                results[model.name] = results[model.name] or str(exc)
            except OSError as exc:
                message = f"{model.name}/{file.name}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
                reporter.file_failed(model.name, file.name, message)
                results[model.name] = results[model.name] or message
        post = {executor.submit(run.postprocess, m): m for m in models if results[m.name] is None}
        for future, model in post.items():
            try:
                future.result()
            except (DownloadError, OSError) as exc:
                results[model.name] = str(exc)
        for model in models:
            reporter.model_done(model.name, results[model.name] is None, results[model.name])
    except (KeyboardInterrupt, Cancelled):
        cancel.set()
        executor.shutdown(wait=True, cancel_futures=True)
        raise Cancelled() from None
    executor.shutdown(wait=True)
    reporter.summary(results)
    return results
