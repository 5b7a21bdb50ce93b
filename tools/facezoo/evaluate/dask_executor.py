"""The Dask executor: a run's keys cut in order into shards that run on a Dask cluster (a
LocalCluster of processes on this machine, or the workers of a running scheduler), each shard
with the local executor's code, merged in key order into exactly the predictions one process
would make.

Where workers find things. By default, by path: the model file and the images must be visible at
the same absolute paths on every worker (one machine, or a shared filesystem). With
`ship_images`, nothing needs to be shared: the client registers the model's files as a worker
plugin, so that every worker, including one that joins or restarts later, receives them once and
keeps them in its local directory, and each shard carries its images' bytes (read by the client,
written to the worker's local directory for the shard, removed after it).

Threads. A worker compiles the model once (open_launcher's per-process cache) with
INFERENCE_NUM_THREADS set to its share of its machine's cores (usable cores / worker processes
on that host) and CPU pinning off, as pinned processes would land on the same cores. A local
worker runs two shards at once on that one compiled model, so that one shard's images keep the
engine busy while the other's last ones finish (a lone shard drains the engine at its end);
decoding is the local executor's, in threads beside the engine's with one OpenCV thread each.

Faults. A shard in flight on a worker that dies is run again elsewhere by the scheduler; a shard
that kills workers three times (Dask's allowed failures) ends the run naming it. A shard failing
on an image or the model raises that one error (its message names the image as a single process
would), the other shards are cancelled."""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import distributed
from distributed.diagnostics.plugin import WorkerPlugin

from facezoo.common.cli import on_interrupt
from facezoo.common.safeio import make_temp_dir

from .datasets.fields import relative_path
from .errors import EvaluateError
from .images import BYTES_PER_PIXEL_LIMIT, MAX_PIXELS, _read
from .jobs import Job, ModelRef, Progress, open_launcher
from .launchers.base import Launcher
from .pipeline import LocalExecutor
from .provenance import versions
from .shards import ResumeStore, cut, key_path, run_digest, shard_digest

CONNECT_TIMEOUT_S = 10  # --scheduler: how long a scheduler may take to answer
CONNECT_GRACE_S = 2  # beyond it, for a peer that accepted the connection and then said nothing
NO_WORKERS_TIMEOUT_S = 60  # how long a run waits with no worker at all before giving up
KILL_WATCH_S = 0.5  # on an interrupt, how long new local worker processes are looked for and killed
POLL_S = 0.5  # how often the client looks at the live workers while shards run
SHARDS_PER_WORKER = 2  # shards a local worker runs at once: one fills the engine while the other drains
QUEUED_PER_WORKER = 1  # shards waiting at each worker beyond those (with --ship_images their bytes are in memory)


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how shards run: a LocalCluster of `workers` processes, or a running `scheduler`."""

    workers: int | None
    scheduler: str | None
    shard_size: int
    resume: Path | None = None
    ship_images: bool = False

    def where(self) -> str:
        if self.workers:
            return f"a Dask LocalCluster of {self.workers} worker process{'es' if self.workers > 1 else ''}"
        return f"the Dask scheduler at {self.scheduler}"


@dataclass(frozen=True)
class ShardTask:
    """What every shard of a run shares; sent with each shard, so a shard can run again anywhere."""

    ref: ModelRef  # absolute path on the client
    job: Any  # with absolute paths
    shown_folder: str  # the job's image folder as the client names it (messages say this)
    skip_broken: bool
    threads: dict[str, int]  # worker host -> a worker's share of that host's cores
    versions: dict[str, str]  # the client's; a worker with others would not give the same numbers
    shipped: dict[str, str] = field(default_factory=dict)  # model path -> path under the worker's local dir


class ShippedModels(WorkerPlugin):
    """Model files sent once to every worker (those that join later too), kept in its local dir."""

    def __init__(self, name: str, files: dict[str, bytes]):
        self.name = name
        self.files = files  # path relative to the worker's local directory -> bytes

    def setup(self, worker) -> None:
        base = Path(worker.local_directory)
        for rel, data in self.files.items():
            target = base / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(data)
            partial.replace(target)

    def teardown(self, worker) -> None:
        base = Path(worker.local_directory)
        for top in {Path(rel).parts[0] for rel in self.files}:
            shutil.rmtree(base / top, ignore_errors=True)


@dataclass(frozen=True)
class Located:
    """A job run on a worker, where its images are at `folder`: its errors name them as the
    client does (`shown`), and images the client could not read (`refused`) fail as they did there."""

    job: Any
    folder: str
    shown: str
    refused: dict[str, EvaluateError]
    started: Callable[[], None]  # called as the first image is asked for

    def load(self, key: Any) -> tuple[Any, Any]:
        self.started()
        refusal = self.refused.get(key_path(key))
        if refusal is not None:
            raise type(refusal)(str(refusal))
        try:
            return self.job.load(key)
        except EvaluateError as exc:
            raise type(exc)(str(exc).replace(self.folder, self.shown)) from None

    def post(self, key: Any, info: Any, outputs: dict) -> Any:
        return self.job.post(key, info, outputs)


# Two threads of a worker must not be the first to call into OpenVINO's Python bindings at once:
# seen here (about one run in ten), one thread inside a C++ static initialisation of the bindings
# waits for the GIL while the other holds the GIL and waits for that initialisation. So a worker
# runs its first shard alone (every binding it uses is then initialised), and later shards create
# their infer requests one at a time (the launcher creates them before it asks for the first
# image; the deadlock was first seen there) and overlap everywhere else.
_FIRST_SHARD = threading.Lock()
_FIRST_SHARD_DONE = threading.Event()
_CREATING_REQUESTS = threading.Lock()


class _ReleaseOnce:
    """Releases a held lock the first time it is called, from whichever thread."""

    def __init__(self, lock: threading.Lock):
        self.lock = lock
        self.held = True
        self.guard = threading.Lock()

    def __call__(self) -> None:
        with self.guard:
            if self.held:
                self.held = False
                self.lock.release()


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _own_versions() -> dict[str, str]:
    return {k: v for k, v in versions().items() if k != "python"}


def _model_refs(job: Any) -> list[str]:
    """The job's fields holding a model (LFW's aligning detector)."""
    return [f.name for f in fields(job) if isinstance(getattr(job, f.name), ModelRef)]


def _worker_ref(ref: ModelRef, threads: int, shipped: dict[str, str], local: Path) -> ModelRef:
    if str(ref.path) in shipped:
        ref = replace(ref, path=local / shipped[str(ref.path)])
    elif not ref.path.exists():
        raise EvaluateError(f"{ref.path}: model file not found on this Dask worker; the workers need a shared "
                            f"filesystem with the model at that path, or run with --ship_images")
    if ref.framework == "openvino" and ref.device == "CPU":
        ref = replace(ref, properties=(("INFERENCE_NUM_THREADS", threads), ("ENABLE_CPU_PINNING", False)))
    return ref


def run_shard(task: ShardTask, keys: list[Any], images: dict[str, bytes | EvaluateError] | None
              ) -> tuple[dict[Any, Any], list[tuple[Any, str]]]:
    """On a worker: one shard's predictions and broken images, by the local executor."""
    worker = distributed.get_worker()
    theirs = _own_versions()
    differ = sorted(k for k in set(theirs) | set(task.versions) if theirs.get(k) != task.versions.get(k))
    if differ:
        k = differ[0]
        raise EvaluateError(f"Dask worker {worker.address} has {k} {theirs.get(k, '(none)')}, this client "
                            f"{task.versions.get(k, '(none)')}: install the same versions everywhere")
    threads = task.threads.get(distributed.comm.get_address_host(worker.address)) or _usable_cores()
    local = Path(worker.local_directory)
    ref = _worker_ref(task.ref, threads, task.shipped, local)
    job = replace(task.job, **{n: _worker_ref(getattr(task.job, n), threads, task.shipped, local)
                               for n in _model_refs(task.job)})
    launcher = open_launcher(ref)
    if images is None:
        if not Path(job.folder).is_dir():
            raise EvaluateError(f"{task.shown_folder}: image folder not found on Dask worker {worker.address} (as "
                                f"{job.folder}); the workers need a shared filesystem, or run with --ship_images")
        return _run_located(launcher, job, job.folder, task, keys, {})
    folder = Path(tempfile.mkdtemp(dir=local, prefix="facezoo-images-"))
    try:
        refused = {}
        for path, data in images.items():
            if isinstance(data, EvaluateError):
                refused[path] = data
                continue
            target = folder / relative_path(path, "shipped image", "image path")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return _run_located(launcher, replace(job, folder=folder), folder, task, keys, refused)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run_located(launcher: Launcher, job: Any, folder: Path, task: ShardTask, keys: list[Any],
                 refused: dict[str, EvaluateError]) -> tuple[dict[Any, Any], list[tuple[Any, str]]]:
    """The local executor on a shard: alone if it is the worker's first, otherwise with its
    requests created while no other shard creates its own."""
    if not _FIRST_SHARD_DONE.is_set():
        with _FIRST_SHARD:
            if not _FIRST_SHARD_DONE.is_set():
                try:
                    located = Located(job, str(folder), task.shown_folder, refused, lambda: None)
                    return LocalExecutor(launcher).run(located, keys, task.skip_broken)
                finally:
                    _FIRST_SHARD_DONE.set()
    _CREATING_REQUESTS.acquire()
    release = _ReleaseOnce(_CREATING_REQUESTS)
    try:
        located = Located(job, str(folder), task.shown_folder, refused, release)
        return LocalExecutor(launcher).run(located, keys, task.skip_broken)
    finally:
        release()


def _read_images(folder: Path, max_pixels: int, keys: list[Any]) -> dict[str, bytes | EvaluateError]:
    """--ship_images: a shard's image files as bytes, read as a single process would read them
    (an unreadable one is the error that process would raise, raised again on the worker)."""
    limit = BYTES_PER_PIXEL_LIMIT * max_pixels + (1 << 20)
    out: dict[str, bytes | EvaluateError] = {}
    for path in dict.fromkeys(key_path(k) for k in keys):
        try:
            out[path] = _read(folder / path, limit)
        except EvaluateError as exc:
            out[path] = exc
    return out


def _quiet_resource_tracker() -> int | None:
    """Start multiprocessing's resource tracker (which the LocalCluster's workers use) with its
    stderr on /dev/null, and return its pid: when a run is interrupted, the workers die before
    releasing their semaphores, and the tracker's notes about it are not the user's business."""
    from multiprocessing import resource_tracker

    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        resource_tracker.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return getattr(resource_tracker._resource_tracker, "_pid", None)


def _kill_children(spare: int | None = None) -> None:
    """On an interrupt: this process's children (the LocalCluster's workers, not the resource
    tracker `spare`, which ends with this process) end at once; again while the cluster's thread
    is still starting new ones."""
    import psutil

    me = psutil.Process()
    deadline = time.monotonic() + KILL_WATCH_S
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        killed = 0
        for child in me.children(recursive=True):
            try:
                if child.pid != spare and child.status() != psutil.STATUS_ZOMBIE:
                    child.kill()
                    killed += 1
            except psutil.Error:
                pass
        quiet = 0 if killed else quiet + 1
        time.sleep(0.03)


_ABANDONED: list = []  # clients and clusters left to the end of an interrupted process


class Cluster:
    """A connected Dask client: to a new LocalCluster (in a temporary folder that goes with it)
    or to a running scheduler. Closed on leaving; on an interrupt the local workers are killed."""

    def __init__(self, settings: ClusterSettings):
        self.settings = settings
        self.local = None
        self.client = None
        self.folder: Path | None = None
        self.plugins: list[str] = []
        self.tracker: int | None = None
        self._forget: Callable[[], None] | None = None

    def __enter__(self) -> "Cluster":
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        try:
            if self.settings.workers:
                self._start_local()
            else:
                self._connect()
            try:
                self.client.wait_for_workers(1, timeout=NO_WORKERS_TIMEOUT_S)
            except TimeoutError:
                raise EvaluateError(f"--scheduler {self.settings.scheduler}: no worker joined within "
                                    f"{NO_WORKERS_TIMEOUT_S} s (start some with: dask worker "
                                    f"{self.settings.scheduler})") from None
        except BaseException as exc:
            self.__exit__(type(exc), exc, None)
            raise
        return self

    def _start_local(self) -> None:
        import dask

        self.folder = make_temp_dir(tempfile.gettempdir(), "dask")
        self.tracker = _quiet_resource_tracker()
        self._forget = on_interrupt(self._kill)
        dask.config.set({"temporary-directory": str(self.folder)})
        self.local = distributed.LocalCluster(n_workers=self.settings.workers, threads_per_worker=SHARDS_PER_WORKER,
                                              processes=True, dashboard_address=None,
                                              local_directory=str(self.folder), silence_logs=logging.CRITICAL)
        self.client = distributed.Client(self.local)

    def _connect(self) -> None:
        """A client of the scheduler at --scheduler, within CONNECT_TIMEOUT_S (plus a little):
        Dask bounds the TCP connection, not a peer that accepts it and then says nothing, so the
        client is made in a thread that is given up on."""
        address = self.settings.scheduler
        made: dict[str, Any] = {}

        def connect() -> None:
            try:
                made["client"] = distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
            except BaseException as exc:  # noqa: BLE001 handed to the waiting thread
                made["error"] = exc

        thread = threading.Thread(target=connect, name="facezoo-dask-connect", daemon=True)
        thread.start()
        thread.join(CONNECT_TIMEOUT_S + CONNECT_GRACE_S)
        exc = made.get("error")
        if thread.is_alive() or isinstance(exc, (OSError, TimeoutError)):
            reason = " ".join(str(exc).split()) if exc else "a connection opened, no Dask handshake came"
            raise EvaluateError(f"--scheduler {address}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
                                f"({reason[:300] or type(exc).__name__})")
        if exc is not None:  # whatever answered there, it speaks no Dask (a frame length it cannot hold...)
            raise EvaluateError(f"--scheduler {address}: what answered there is not a Dask scheduler "
                                f"({type(exc).__name__} reading its reply)")
        self.client = made["client"]

    def _kill(self) -> None:
        """The local workers end now, and their nannies start no new ones (nor log the workers'
        deaths, which asyncio would otherwise print as unretrieved task errors)."""
        logging.disable(logging.CRITICAL)
        if self.local is not None:  # its event loop stops: no nanny restarts a worker it sees die
            loop = self.local.loop.asyncio_loop
            loop.call_soon_threadsafe(loop.stop)
        _kill_children(self.tracker)

    def live_workers(self) -> dict[str, dict]:
        return self.client.scheduler_info(n_workers=-1)["workers"]

    def thread_shares(self) -> dict[str, int]:
        """Per worker host: its usable cores divided among the worker processes on it."""
        workers = self.live_workers()
        hosts = Counter(w["host"] for w in workers.values())
        cores = self.client.run(_usable_cores)
        return {w["host"]: max(1, cores.get(address, 1) // hosts[w["host"]]) for address, w in workers.items()}

    def ship(self, files: dict[str, bytes], name: str) -> None:
        self.client.register_plugin(ShippedModels(name, files), name=name)
        self.plugins.append(name)

    def __exit__(self, kind, exc, tb) -> None:
        interrupted = kind is not None and issubclass(kind, KeyboardInterrupt)
        if interrupted and self.settings.workers:
            self._kill()  # closing politely takes longer than an interrupt may, and the cluster may be half made
            _ABANDONED.append((self.client, self.local))  # no closing on garbage collection either: the process ends
        elif self.client is not None:  # closing the client releases its shards still queued or running
            for name in self.plugins:
                try:
                    self.client.unregister_worker_plugin(name)
                except Exception:  # noqa: BLE001 a worker that went away cannot tear down: nothing to do
                    pass
            self.client.close()
            if self.local is not None:
                self.local.close()
        if self._forget is not None:
            self._forget()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def _dask_warnings_off() -> Iterator[None]:
    """Dask's own warnings (large graphs, versions it compares itself) stay off stderr."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="distributed")
        yield


def _shipped_models(refs: list[ModelRef]) -> tuple[dict[str, bytes], dict[str, str], str]:
    """--ship_images: the files of each model (an IR's .xml and .bin), as paths under a worker's
    local dir named by their content's digest; and each model path's place there."""
    import hashlib

    files: dict[str, bytes] = {}
    places: dict[str, str] = {}
    digest = hashlib.sha256()
    for ref in refs:
        parts = [ref.path] + ([ref.path.with_suffix(".bin")] if ref.path.suffix == ".xml" else [])
        data = [p.read_bytes() for p in parts]
        sha = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in data)).hexdigest()[:16]
        for p, d in zip(parts, data):
            files[f"facezoo-model-{sha}/{p.name}"] = d
        places[str(ref.path)] = f"facezoo-model-{sha}/{ref.path.name}"
        digest.update(sha.encode())
    return files, places, f"facezoo-models-{digest.hexdigest()[:16]}"


class DaskExecutor:
    """Runs a job's keys as shards on a Dask cluster; the model's input and outputs come from
    `launcher` (compiled here, so a model that cannot load is refused before the cluster starts)."""

    def __init__(self, launcher: Launcher, ref: ModelRef, settings: ClusterSettings, identity: dict[str, Any],
                 notify: Callable[[str], None] = print):
        self.input = launcher.input
        self.outputs = launcher.outputs
        self.description = f"{launcher.description}, sharded on {settings.where()}"
        self.ref = replace(ref, path=Path(ref.path).absolute())
        self.settings = settings
        self.identity = identity
        self.notify = notify
        self.summary: dict[str, Any] = {"where": settings.where(), "shard_size": settings.shard_size,
                                        "ship_images": settings.ship_images}

    def run(self, job: Job, keys: list[Any], skip_broken: bool,
            progress: Progress | None = None) -> tuple[dict[Any, Any], list[tuple[Any, str]]]:
        shown = str(job.folder)
        job = replace(job, folder=Path(job.folder).absolute(),
                      **{n: replace(getattr(job, n), path=getattr(job, n).path.absolute()) for n in _model_refs(job)})
        shards = cut(keys, self.settings.shard_size)
        identity = {**self.identity, "shard_size": self.settings.shard_size, "skip_broken": skip_broken}
        run = run_digest(identity, job)
        digests = [shard_digest(run, s) for s in shards]
        done: dict[int, tuple[dict, list]] = {}
        store = None
        if self.settings.resume is not None:
            store = ResumeStore(self.settings.resume, {**identity, "run": run})
            store.open()
            for i, (shard, digest) in enumerate(zip(shards, digests)):
                stored = store.load(i, shard, digest)
                if stored is not None:
                    done[i] = stored
            if done:
                self.notify(f"--resume {self.settings.resume}: {len(done)} of {len(shards)} shards already done")
        self.summary.update(shards=len(shards), shards_resumed=len(done))
        if progress is not None:
            if hasattr(progress, "unit"):
                progress.unit = "shard"
            progress.reset(total=len(shards))
            progress.update(len(done))
        todo = [i for i in range(len(shards)) if i not in done]
        if todo:
            began = time.perf_counter()
            with _dask_warnings_off(), Cluster(self.settings) as cluster:
                self.summary["cluster_start_s"] = round(time.perf_counter() - began, 3)
                self.summary["workers"] = len(cluster.live_workers())
                task = ShardTask(self.ref, job, shown, skip_broken, cluster.thread_shares(), _own_versions())
                if self.settings.ship_images:
                    files, places, name = _shipped_models([self.ref] + [getattr(job, n) for n in _model_refs(job)])
                    cluster.ship(files, name)
                    task = replace(task, shipped=places)
                workers = self.summary["workers"]
                self.notify(f"dask: {workers} worker{'s' if workers != 1 else ''} on {self.settings.where()}, "
                            f"{len(todo)} of {len(shards)} shards of up to {self.settings.shard_size} to run")
                ready = time.perf_counter()
                for i, result in self._results(cluster, task, shards, todo, progress):
                    self.summary.setdefault("first_shard_s", round(time.perf_counter() - ready, 3))
                    if store is not None:
                        store.save(i, shards[i], digests[i], *result)
                    done[i] = result
                self.summary["shards_s"] = round(time.perf_counter() - ready, 3)
        results: dict[Any, Any] = {}
        broken: list[tuple[Any, str]] = []
        for i in range(len(shards)):
            results.update(done[i][0])
            broken += done[i][1]
        return results, broken

    def _results(self, cluster: Cluster, task: ShardTask, shards: list[list[Any]], todo: list[int],
                 progress: Progress | None):
        """(shard index, its result) as shards finish; a bounded number in flight at once."""
        client = cluster.client
        queue = list(todo)
        pending: dict[Any, int] = {}
        alone_since: float | None = None
        seen: set[str] = set()
        while queue or pending:
            workers = cluster.live_workers()
            seen |= set(workers)
            self.summary["workers_lost"] = len(seen - set(workers))
            live = len(workers)
            slots = sum(w.get("nthreads", 1) + QUEUED_PER_WORKER for w in workers.values())
            if progress is not None and hasattr(progress, "set_postfix_str"):
                progress.set_postfix_str(f"{live} workers", refresh=False)
            alone_since = None if live else (alone_since or time.monotonic())
            if alone_since is not None and time.monotonic() - alone_since > NO_WORKERS_TIMEOUT_S:
                raise EvaluateError(f"{self.settings.where()}: no worker left for {NO_WORKERS_TIMEOUT_S} s, "
                                    f"{len(queue) + len(pending)} shards not done")
            while queue and len(pending) < max(1, slots):
                i = queue.pop(0)
                images = (_read_images(Path(task.shown_folder), getattr(task.job, "max_image_pixels", MAX_PIXELS),
                                       shards[i]) if self.settings.ship_images else None)
                pending[client.submit(run_shard, task, shards[i], images, pure=False)] = i
            try:
                finished = distributed.wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                continue
            for future in finished:
                i = pending.pop(future)
                if future.status != "finished":
                    raise self._failure(future, i, shards[i])
                result = future.result()
                if progress is not None:
                    progress.update(1)
                yield i, result

    def _failure(self, future, index: int, keys: list[Any]) -> BaseException:
        """What a failed shard becomes: its own error (an image or the model, named), or one line
        for a shard that kept killing its workers or was lost with the scheduler."""
        where = f"shard {index} ({key_path(keys[0])} ... {key_path(keys[-1])})"
        if future.status == "cancelled":
            return EvaluateError(f"{where}: cancelled by {self.settings.where()} (the scheduler went away?)")
        exc = future.exception()
        if isinstance(exc, distributed.KilledWorker):
            return EvaluateError(f"{where}: every worker that ran it died ({self.settings.where()}; out of memory?)")
        return exc
