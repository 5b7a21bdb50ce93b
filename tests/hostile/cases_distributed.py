"""Hostile accuracy_check command lines for the Dask scale-out (--workers, --scheduler, --shard_size,
--resume, --ship_images): bad values and combinations; a scheduler address where nothing listens,
where something silent listens, or where something that is not Dask answers (127.0.0.1 servers
started in setup); --resume folders that are not folders, are inputs, hold other files, another
run's record or a broken or planted shard; Dask not installed; a broken image inside a shard;
SIGINT/SIGTERM mid-run and while the cluster starts. Every case also checks that no process is
left running in the case's folder (the local workers run there)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from cases_accuracy_outputs import argv, device, fifo, folder, setup, write
from conftest import shared_path
from harness import BIN, Case

NOT_INSTALLED = "raise ModuleNotFoundError(\"No module named 'distributed'\", name='distributed')\n"
WORKERS = r"argument --workers: expected a whole number of worker processes from 1 to \d+ \(the cores usable here\)"
SCHEDULER = r"argument --scheduler: expected a Dask scheduler address such as tcp://10\.0\.0\.5:8786"
SHARD = r"argument --shard_size: expected a whole number of images per shard from 1 to 1,000,000"


def _processes_in(folder) -> list[int]:
    """Processes whose working directory is `folder` (a LocalCluster's workers inherit it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(folder):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def no_process_left(ctx, proc) -> str | None:
    end = time.monotonic() + 3.0
    while True:
        left = _processes_in(ctx.root)
        if not left:
            return None
        if time.monotonic() > end:
            return f"processes still running in the case folder after the command ended: {left}"
        time.sleep(0.1)


def dist(id: str, expect: str, more: tuple, steps: tuple = (), kind: str = "lfw", env: dict | None = None,
         timeout: float = 60.0, absent: tuple = ()) -> Case:
    return Case(id, "accuracy", "accuracy_check", argv(kind, *more), expect, setup=setup(kind, *steps),
                env=env or {}, timeout=timeout, absent=absent, check=no_process_left)


# --- flag values and combinations: refused by the parser ---
FLAGS = [
    ("workers-zero", ("--workers", "0"), WORKERS + ", found '0'"),
    ("workers-huge", ("--workers", "100000"), WORKERS + ", found '100000'"),
    ("workers-negative", ("--workers", "-2"), WORKERS + ", found '-2'"),
    ("workers-fraction", ("--workers", "1.5"), WORKERS + r", found '1\.5'"),
    ("workers-empty", ("--workers", ""), WORKERS + ", found ''"),
    ("workers-non-ascii-digit", ("--workers", "\u0662"), WORKERS),
    ("workers-with-scheduler", ("--workers", "1", "--scheduler", "tcp://127.0.0.1:8786"),
     r"argument --scheduler: not allowed with argument --workers"),
    ("scheduler-without-port", ("--scheduler", "tcp://127.0.0.1"), SCHEDULER),
    ("scheduler-port-zero", ("--scheduler", "127.0.0.1:0"), SCHEDULER),
    ("scheduler-port-too-big", ("--scheduler", "127.0.0.1:65536"), SCHEDULER),
    ("scheduler-http-url", ("--scheduler", "http://127.0.0.1:8786"), SCHEDULER),
    ("scheduler-with-a-path", ("--scheduler", "tcp://127.0.0.1:8786/dask"), SCHEDULER),
    ("scheduler-with-a-user", ("--scheduler", "tcp://me@127.0.0.1:8786"), SCHEDULER),
    ("scheduler-empty", ("--scheduler", ""), SCHEDULER),
    ("scheduler-space-in-port", ("--scheduler", "127.0.0.1:87 86"), SCHEDULER),
    ("scheduler-very-long", ("--scheduler", "a" * 400 + ":8786"), SCHEDULER),
    ("shard-size-zero", ("--workers", "1", "--shard_size", "0"), SHARD + ", found '0'"),
    ("shard-size-negative", ("--workers", "1", "--shard_size", "-8"), SHARD),
    ("shard-size-fraction", ("--workers", "1", "--shard_size", "2.5"), SHARD),
    ("shard-size-exponent", ("--workers", "1", "--shard_size", "1e3"), SHARD),
    ("shard-size-huge", ("--workers", "1", "--shard_size", "1000001"), SHARD),
    ("shard-size-alone", ("--shard_size", "8"), r"--shard_size needs --workers or --scheduler"),
    ("resume-alone", ("--resume", "out/r"), r"--resume needs --workers or --scheduler"),
    ("ship-images-alone", ("--ship_images",), r"--ship_images needs --workers or --scheduler"),
]


# --- schedulers that are not there, or are not Dask: 127.0.0.1 servers of the case ---
def _free_port(ctx) -> None:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ctx.values["port"] = s.getsockname()[1]


def _server(reply: bytes | None):
    """A TCP server on 127.0.0.1 that accepts and sends `reply` (or nothing), until cleanup."""
    def start(ctx) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        stop = threading.Event()
        held = []

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                held.append(conn)
                if reply is not None:
                    conn.sendall(reply)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        ctx.values.update(port=listener.getsockname()[1], stop=stop, thread=thread, listener=listener, held=held)
    return start


def _stop_server(ctx) -> None:
    if "stop" in ctx.values:
        ctx.values["stop"].set()
        ctx.values["thread"].join(2)
        for conn in ctx.values["held"]:
            conn.close()
        ctx.values["listener"].close()


def _at_port(kind: str = "lfw", *more: str):
    base = argv(kind)
    return lambda ctx: base(ctx) + ["--scheduler", f"tcp://127.0.0.1:{ctx.values['port']}", *more]


def scheduler_case(id: str, expect: str, start, **extra) -> Case:
    return Case(id, "accuracy", "accuracy_check", _at_port(), expect,
                setup=lambda ctx: (setup("lfw")(ctx), start(ctx)), cleanup=_stop_server, timeout=60.0,
                check=no_process_left, **extra)


SCHEDULERS = [
    scheduler_case("scheduler-nothing-listens",
                   r"--scheduler tcp://127\.0\.0\.1:\d+: no Dask scheduler answered within 10 s", _free_port),
    scheduler_case("scheduler-silent-peer", r"--scheduler tcp://127\.0\.0\.1:\d+: no Dask scheduler answered within "
                                            r"10 s \(a connection opened, no Dask handshake came\)", _server(None)),
    scheduler_case("scheduler-is-a-web-server", r"--scheduler tcp://127\.0\.0\.1:\d+: what answered there is not a "
                                                r"Dask scheduler", _server(b"HTTP/1.0 200 OK\r\n\r\nhello\r\n")),
    scheduler_case("scheduler-sends-a-huge-frame-length", r"what answered there is not a Dask scheduler",
                   _server(b"\xff" * 64)),
]


# --- --resume folders ---
def _record(**fields) -> str:
    base = {"model": "mobileface-identification-v1", "dataset": "lfw_aligned_100pair", "shard_size": 32,
            "run": "0" * 64}
    return json.dumps({**base, **fields})


RESUME = [
    ("resume-is-a-file", (write("out/r", "x\n"),), ("--resume", "out/r"),
     r"out/r: --resume must be a folder, found a regular file"),
    ("resume-is-a-fifo", (lambda c: fifo(c, "out/r"),), ("--resume", "out/r"), r"out/r: --resume must be a folder, "
                                                                               r"found a FIFO"),
    ("resume-is-a-device", (lambda c: device(c, "out/r"),), ("--resume", "out/r"),
     r"out/r: --resume must be a folder, found a device"),
    ("resume-links-to-the-config", (lambda c: os.symlink(c.path("config.yml"), c.path("out", "r")),),
     ("--resume", "out/r"), r"out/r: --resume must be a folder, found a symbolic link"),
    ("resume-holds-other-files", (lambda c: folder(c, "out/r", "notes.txt"),), ("--resume", "out/r"),
     r"out/r: --resume holds 'notes\.txt' but no run\.json"),
    ("resume-of-another-model", (write("out/r/run.json", _record(model="retinaface-mnet025-v1",
                                                                  dataset="wider_val_dev")),),
     ("--resume", "out/r"), r"out/r: --resume holds shards of another run \(retinaface-mnet025-v1 on wider_val_dev; "
                            r"[a-z_, 0-9]*dataset, [a-z_, 0-9]*model, [a-z_, 0-9]*differ\)"),
    ("resume-of-another-shard-size", (write("out/r/run.json", _record()),), ("--resume", "out/r"),
     r"holds shards of another run \(mobileface-identification-v1 on lfw_aligned_100pair; .*run.* differ\)"),
    ("resume-record-not-json", (write("out/r/run.json", "{model: x"),), ("--resume", "out/r"),
     r"out/r/run\.json: --resume run record is not JSON"),
    ("resume-record-a-list", (write("out/r/run.json", "[1, 2]"),), ("--resume", "out/r"),
     r"out/r/run\.json: --resume run record: expected a JSON object"),
    ("resume-record-not-utf8", (write("out/r/run.json", b"\xff\xfe{}"),), ("--resume", "out/r"),
     r"out/r/run\.json:1: --resume run record is not UTF-8 text"),
    ("resume-record-huge", (write("out/r/run.json", "[" + "0," * 40000 + "0]"),), ("--resume", "out/r"),
     r"out/r/run\.json: --resume run record is larger than the 65,536-byte limit"),
    ("resume-record-a-fifo", (lambda c: folder(c, "out/r"), lambda c: fifo(c, "out/r/run.json")),
     ("--resume", "out/r"), r"out/r/run\.json: --resume run record must be a regular file, found a FIFO"),
    ("resume-record-a-folder", (lambda c: folder(c, "out/r/run.json"),), ("--resume", "out/r"),
     r"out/r/run\.json: --resume run record must be a regular file, found a directory"),
    ("resume-inside-the-image-folder", (), ("--resume", "lfw/lfw_aligned_100pair/r"),
     r"--resume is inside lfw/lfw_aligned_100pair, an input folder"),
    ("resume-is-the-case-folder", (), ("--resume", "."), r"--resume holds an input of this run"),
    ("resume-holds-the-json-result", (lambda c: folder(c, "out/r"),), ("--resume", "out/r", "--json_result",
                                                                      "out/r/r.json"),
     r"out/r/r\.json: an output inside --resume out/r"),
    ("resume-is-the-report", (), ("--resume", "out/r", "--report", "out/r"), r"out/r: an output inside --resume"),
    ("resume-in-a-missing-folder", (), ("--resume", "out/no/such/r"),
     r"out/no/such/r: --resume's parent folder out/no/such does not exist"),
]


def _resumed_run(ctx) -> None:
    """A real run of the case's model that leaves its shards in out/r (stored shards of 50 keys)."""
    command = [str(BIN / "accuracy_check"), "-c", "config.yml", "-d", "defs.yml", "-m", "ir", "-s", "lfw",
               "--no_progress", "--workers", "1", "--shard_size", "50", "--resume", "out/r"]
    env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    proc = subprocess.run(command, cwd=ctx.root, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(list(ctx.path("out", "r").glob("shard-*.npz"))) == 8


def _truncate_first_shard(ctx) -> None:
    shard = sorted(ctx.path("out", "r").glob("shard-000000-*.npz"))[0]
    shard.write_bytes(shard.read_bytes()[:300])


def _plant_shard(ctx) -> None:
    """Shard 1's file under shard 0's name: right name, wrong content."""
    zero, one = (sorted(ctx.path("out", "r").glob(f"shard-00000{i}-*.npz"))[0] for i in (0, 1))
    shutil.copy(one, zero)


STORED_SHARDS = [
    ("resume-with-a-truncated-shard", (_resumed_run, _truncate_first_shard),
     r"out/r/shard-000000-[0-9a-f]{16}\.npz: not a stored predictions file"),
    ("resume-with-a-planted-shard", (_resumed_run, _plant_shard),
     r"out/r/shard-000000-[0-9a-f]{16}\.npz: predictions were made with other settings \(shard differ\)"),
]


# --- predictions read, not computed: nothing to run on a cluster ---
READING = [
    ("workers-with-stored-predictions-read", ("--workers", "1", "--stored_predictions", "out/p.npz"),
     r"--workers: the predictions are read from --stored_predictions, so nothing runs on a cluster"),
    ("scheduler-with-stored-predictions-read", ("--scheduler", "tcp://127.0.0.1:8786", "--stored_predictions",
                                                "out/p.npz"),
     r"--scheduler: the predictions are read from --stored_predictions"),
    ("resume-with-stored-predictions-read", ("--workers", "2", "--resume", "out/r", "--stored_predictions",
                                             "out/p.npz"), r"--workers: the predictions are read"),
]

# --- Dask not installed (a `distributed` that cannot be imported comes first on the path) ---
MISSING = [
    ("workers-without-dask", ("--workers", "1"), r"--workers: Dask's distributed package is not installed: "
                                                 r"pip install 'facezoo\[dask\]'"),
    ("scheduler-without-dask", ("--scheduler", "tcp://127.0.0.1:8786"),
     r"--scheduler: Dask's distributed package is not installed: pip install 'facezoo\[dask\]'"),
]
BLOCKED = {"PYTHONPATH": lambda c: str(c.path("block")), "PYTHONDONTWRITEBYTECODE": "1"}


# --- a broken image inside a shard: one line naming it, as a single process says it ---
def _lfw_with(kind: str):
    """lfw/lfw_aligned_100pair as a folder of links to the real people, one of whom has a broken
    first image: truncated, or a FIFO."""
    def step(ctx) -> None:
        images = ctx.path("lfw", "lfw_aligned_100pair")
        images.unlink()
        images.mkdir()
        real = shared_path("data", "lfw", "lfw_aligned_100pair")
        people = sorted(p.name for p in real.iterdir())
        for person in people:
            (images / person).symlink_to(real / person)
        victim = people[7]
        (images / victim).unlink()
        shutil.copytree(real / victim, images / victim)
        first = sorted((images / victim).iterdir())[0]
        ctx.values["victim"] = first
        if kind == "fifo":
            first.unlink()
            os.mkfifo(first)
        else:
            first.write_bytes(first.read_bytes()[:200])
    return step


BROKEN = [
    ("broken-image-in-a-shard", "truncated", ("--workers", "2", "--shard_size", "16"),
     r"error: lfw/lfw_aligned_100pair/[^/]+/[^/]+\.jpg: not a decodable image \(corrupt or truncated\)$"),
    ("broken-image-in-a-shipped-shard", "truncated", ("--workers", "2", "--shard_size", "16", "--ship_images"),
     r"error: lfw/lfw_aligned_100pair/[^/]+/[^/]+\.jpg: not a decodable image \(corrupt or truncated\)$"),
    ("fifo-image-in-a-shipped-shard", "fifo", ("--workers", "1", "--shard_size", "16", "--ship_images"),
     r"error: lfw/lfw_aligned_100pair/[^/]+/[^/]+\.jpg: not a regular file \(an image must be one\)$"),
]


# --- signals mid-run: exit 130/143 within 2 s, no output, no worker process left ---
def signal_case(id: str, signum: int, kind: str, more: tuple, ready: str, delay: float, start=None) -> Case:
    run_argv = argv(kind, "--json_result", "out/r.json", "--csv_result", "out/r.csv", *more)
    if start is not None:
        run_argv = _at_port(kind, "--json_result", "out/r.json")
    steps = (lambda ctx: (setup(kind)(ctx), start(ctx))) if start else setup(kind)
    return Case(id, "signals", "accuracy_check", run_argv, rf"interrupted by {signal.Signals(signum).name}",
                setup=steps, exit=128 + signum, absent=("out/r.json", "out/r.csv"), signal=(signum, delay),
                ready_pattern=ready, timeout=90.0, check=no_process_left, cleanup=_stop_server if start else None)


WIDER_RUN = ("--workers", "2", "--shard_size", "8")
SIGNALS = [
    signal_case("dask-sigint-mid-wider-run", signal.SIGINT, "wider", WIDER_RUN, r"dask: \d+ workers", 1.0),
    signal_case("dask-sigterm-mid-wider-run", signal.SIGTERM, "wider", WIDER_RUN, r"dask: \d+ workers", 0.5),
    signal_case("dask-sigint-as-lfw-shards-start", signal.SIGINT, "lfw", ("--workers", "2", "--ship_images"),
                r"dask: \d+ workers", 0.0),
    signal_case("dask-sigint-while-the-cluster-starts", signal.SIGINT, "wider", WIDER_RUN,
                r"dataset wider_val_dev", 0.3),
    signal_case("dask-sigterm-while-the-cluster-starts", signal.SIGTERM, "lfw", ("--workers", "2"),
                r"dataset lfw_aligned_100pair", 0.1),
    signal_case("dask-sigint-mid-resumable-run", signal.SIGINT, "wider", WIDER_RUN + ("--resume", "out/shards"),
                r"dask: \d+ workers", 1.5),
    signal_case("dask-sigint-while-connecting-to-a-silent-scheduler", signal.SIGINT, "lfw", (),
                r"dataset lfw_aligned_100pair", 1.0, start=_server(None)),
]

CASES = (
    [dist(i, m, more) for i, more, m in FLAGS]
    + SCHEDULERS
    + [dist(i, m, ("--workers", "1", *more), steps) for i, steps, more, m in RESUME]
    + [dist(i, m, ("--workers", "1", "--shard_size", "50", "--resume", "out/r"), steps, timeout=180)
       for i, steps, m in STORED_SHARDS]
    + [dist(i, m, more, (write("out/p.npz", b"PK\x03\x04"),)) for i, more, m in READING]
    + [dist(i, m, more, (write("block/distributed/__init__.py", NOT_INSTALLED),), env=BLOCKED)
       for i, more, m in MISSING]
    + [dist(i, m, more, (_lfw_with(kind),), timeout=120) for i, kind, more, m in BROKEN]
    + SIGNALS
)
