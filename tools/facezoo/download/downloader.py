"""Fetching the files of registry models: parallel, resumable, verified, cached, with fallbacks."""
from __future__ import annotations

import os
import re
import stat
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import requests

from facezoo.common.safeio import check_output_dir, sweep_stale_temps
from facezoo.registry import Model, ModelFile

from .cache import Cache
from .errors import Cancelled, DownloadError, SourceError, UnsafePath
from .sources import GOOGLE_DRIVE_URL, FetchContext, LocalFileSource, registry_sources
from .unpack import UnpackLimits, archive_format, unpack_archive
from .verify import hash_fd
from .workdir import check_final, file_lock, lstat_or_none, owned_dir, remove_empty_dirs, sweep_stale_locks

MAX_RETRY_AFTER = 30.0
INTERRUPT_GRACE = 1.0  # seconds workers get to stop (and remove their staging folders) after a signal


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
    attempt_deadline: float = 3600.0
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)
    gdrive_url: str = GOOGLE_DRIVE_URL


def check_places(options: DownloadOptions) -> None:
    """Refuse, before any transfer, an output or cache folder that is a file, FIFO or device, and a
    local mirror that is not a folder."""
    check_output_dir(options.output_dir, "--output_dir", error=DownloadError)
    if options.cache_dir is not None:
        check_output_dir(options.cache_dir, "--cache_dir", error=DownloadError)
    for mirror in options.mirrors:
        if re.match(r"^https?://", mirror):
            continue
        try:
            mode = os.stat(mirror).st_mode
        except OSError as exc:
            raise DownloadError(f"{mirror}: --mirror must be an existing folder or an http(s) URL "
                                f"({exc.strerror})") from None
        if not stat.S_ISDIR(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(
                mode) else "a file"
            raise DownloadError(f"{mirror}: --mirror must be a folder (<mirror>/<model>/<file>) or an http(s) "
                                f"URL, found {kind}")


def _parts(relative: str) -> tuple[str, ...]:
    return PurePosixPath(relative).parts


class _Run:
    def __init__(self, options: DownloadOptions, reporter, cancel: threading.Event):
        self.options = options
        self.reporter = reporter
        self.cancel = cancel
        self.cache = Cache(options.cache_dir) if options.cache_dir else None
        self.local = threading.local()
        self.unresolved: set[str] = set()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def model_dir(self, model: Model) -> Path:
        return owned_dir(self.options.output_dir, *_parts(model.subdirectory))

    def work_parts(self, model: Model) -> tuple[str, ...]:
        """Partial files and locks, kept apart so model directories hold only finished files."""
        return (".partial", *_parts(model.subdirectory))

    def work_dir(self, model: Model) -> Path:
        return owned_dir(self.options.output_dir, *self.work_parts(model))

    def sweep(self, model: Model) -> None:
        """Remove what a process killed with -9 left: its temp folders, its unheld lock files."""
        for parts in (_parts(model.subdirectory), self.work_parts(model)):
            folder = self.options.output_dir.joinpath(*parts)
            st = lstat_or_none(folder)
            if st is not None and stat.S_ISDIR(st.st_mode):
                sweep_stale_temps(folder)
                sweep_stale_locks(folder)

    def tidy(self, model: Model) -> None:
        remove_empty_dirs(self.options.output_dir, *self.work_parts(model))

    def fetch_file(self, model: Model, file: ModelFile) -> None:
        flat = file.name.replace("/", "%2F")
        work = self.work_dir(model)
        try:
            with file_lock(work / f"{flat}.lock", self.cancel, lambda: self.work_dir(model)):
                self._fetch_locked(model, file, work / f"{flat}.part")
        finally:
            self.tidy(model)

    def _fetch_locked(self, model: Model, file: ModelFile, part: Path) -> None:
        final = self.options.output_dir.joinpath(*_parts(model.subdirectory), *_parts(file.name))
        st = check_final(final)
        if st is not None and st.st_size == file.size:
            fd = os.open(final, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                if hash_fd(fd).hexdigest() == file.sha256:
                    self.reporter.progress(model.name, file.name, file.size)
                    self._remember(fd, file)
                    self.reporter.file_done(model.name, file.name, "already present, verified")
                    return
            finally:
                os.close(fd)
        candidates = []
        if self.cache is not None and lstat_or_none(self.cache.entry(file.sha256)) is not None:
            candidates.append(LocalFileSource(self.cache.entry(file.sha256), "cache",
                                              on_mismatch=lambda: self.cache.evict(file.sha256),
                                              opener=lambda: self.cache.open_entry(file.sha256)))
        candidates += registry_sources(model.name, file, self.options.mirrors, self.options.gdrive_url)
        failures = []
        for number, source in enumerate(candidates, 1):
            reason = self._try_source(model, file, source, part)
            if reason is None:
                owned_dir(self.model_dir(model), *_parts(file.name)[:-1])
                check_final(final)
                os.replace(part, final)
                fd = os.open(final, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    self._remember(fd, file)
                finally:
                    os.close(fd)
                self.reporter.file_done(model.name, file.name, f"verified, from {source.describe()}")
                return
            failures.append(f"[{number}] {source.describe()}: {reason}")
        self.reporter.progress(model.name, file.name, 0)
        raise DownloadError(self._failure(model, file, final, failures))

    def _failure(self, model: Model, file: ModelFile, final: Path, failures: list[str]) -> str:
        tried = "; ".join(failures) or "no source is listed"
        if not model.original_unavailable:
            return f"{model.name}/{file.name}: every source failed: {tried}"
        return (f"{model.name}/{file.name}: the original weights are unavailable ({model.original_unavailable}) "
                f"and every source failed: {tried}; supply the file with --mirror DIR_OR_URL (laid out as "
                f"<mirror>/{model.name}/{file.name}), with a --cache_dir that holds it, or by placing it at "
                f"{final} (its sha256 {file.sha256} is checked)")

    def _remember(self, fd: int, file: ModelFile) -> None:
        if self.cache is not None:
            self.cache.put(fd, file.sha256)

    def _try_source(self, model: Model, file: ModelFile, source, part: Path) -> str | None:
        done = [0]

        def on_bytes(n: int) -> None:
            done[0] += n
            self.reporter.progress(model.name, file.name, done[0])

        def on_start(offset: int) -> None:
            done[0] = offset
            self.reporter.progress(model.name, file.name, offset)

        ctx = FetchContext(self.session(), self.options.timeout, self.cancel, on_bytes, on_start,
                           self.options.attempt_deadline, self.unresolved)
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
        sizes = {f.name: f.size for f in model.files}
        for step in model.postprocessing:
            archive = model_dir.joinpath(*_parts(step.file))
            fmt = archive_format(step.file, step.format)
            flat = step.file.replace("/", "%2F")
            work = self.work_dir(model)
            try:
                with file_lock(work / f"{flat}.lock", self.cancel, lambda: self.work_dir(model)):
                    if check_final(archive) is None:
                        raise DownloadError(f"{archive}: the archive to unpack is missing")
                    done = [0]

                    def on_bytes(n: int, name: str = step.file) -> None:
                        done[0] += n
                        self.reporter.unpack_progress(model.name, name, done[0])

                    files = unpack_archive(
                        archive, model_dir, fmt, sizes.get(step.file, archive.stat().st_size),
                        self.options.unpack_limits, protected=sizes, cancel=self.cancel,
                        on_start=lambda members, nbytes, name=step.file: self.reporter.unpack_start(
                            model.name, name, members, nbytes),
                        on_bytes=on_bytes)
                    self.reporter.unpack_done(model.name, step.file, len(files))
            finally:
                self.tidy(model)


def download_models(models: list[Model], options: DownloadOptions, reporter,
                    cancel: threading.Event | None = None) -> dict[str, str | None]:
    """Download every file of every model, then run postprocessing. Returns, per model name,
    None when it is complete or the one-line reason it is not. Raises UnsafePath (the whole run
    stops) when something planted sits where the downloader keeps its files, Cancelled when
    `cancel` is set, and lets KeyboardInterrupt (a signal) through after stopping the workers."""
    check_places(options)
    cancel = cancel or threading.Event()
    run = _Run(options, reporter, cancel)
    for model in models:
        run.sweep(model)
    jobs = [(m, f) for m in models for f in m.files]
    reporter.start(jobs)
    results: dict[str, str | None] = {m.name: None for m in models}
    executor = ThreadPoolExecutor(max_workers=max(1, options.jobs))
    futures: dict = {}
    try:
        futures = {executor.submit(run.fetch_file, m, f): (m, f) for m, f in jobs}
        for future, (model, file) in futures.items():
            reason = _outcome(future, f"{model.name}/{file.name}")
            if reason:
                reporter.file_failed(model.name, file.name, reason)
                results[model.name] = results[model.name] or reason
        post = {executor.submit(run.postprocess, m): m for m in models if results[m.name] is None}
        futures.update(post)
        for future, model in post.items():
            results[model.name] = _outcome(future, model.name)
        for model in models:
            reporter.model_done(model.name, results[model.name] is None, results[model.name])
    except BaseException:  # a signal, a cancellation, or a planted file stopping the run
        cancel.set()
        executor.shutdown(wait=False, cancel_futures=True)
        wait(list(futures), timeout=INTERRUPT_GRACE)
        reporter.close()
        raise
    executor.shutdown(wait=True)
    reporter.summary(results)
    return results


def _outcome(future, what: str) -> str | None:
    """None when the job succeeded, else its one-line reason; UnsafePath and Cancelled propagate."""
    try:
        future.result()
    except UnsafePath:
        raise
    except DownloadError as exc:
        return str(exc)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{what}: {exc.strerror or exc}{where}"
    return None
