"""Signals sent to omz_downloader mid-transfer, mid-retry-wait, while waiting for a lock, and in
the middle of unpacking 100,000 members: exit 130/143 within 2 s, one line, no temp folder left,
nothing at the final path; and a kill -9 in the middle of unpacking whose leftovers the next run
of the same command removes."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time

from cases_download import DATA, DEAD, OUT_M, _stop, base, file_entry, many_members_zip, model
from fileserver import FileServer
from harness import BIN, Case

SIGNALS = ((signal.SIGINT, 130), (signal.SIGTERM, 143))
LOCK = "out/.partial/public/m/a.bin.lock"


def _served(fault: str):
    def setup(ctx):
        srv = FileServer().__enter__()
        ctx.values["srv"] = srv
        model(ctx, [file_entry("a.bin", DATA, [srv.add("/a.bin", DATA, always=fault)])])
    return setup


def _mirrored_members(ctx) -> None:
    data = many_members_zip().read_bytes()
    ctx.write("mirror/m/a.zip", data)
    model(ctx, [file_entry("a.zip", data, [DEAD])], [{"$type": "unpack_archive", "file": "a.zip"}])


def _lock_held(ctx) -> None:
    model(ctx, [file_entry("a.bin", DATA, [DEAD])])
    path = ctx.root / LOCK
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ctx.values["lock_fd"] = fd


def _release(ctx) -> None:
    if "lock_fd" in ctx.values:
        os.close(ctx.values["lock_fd"])


UNPACK_FLAGS = ["--max_archive_members", "200000"]


def _signal_cases():
    for signum, code in SIGNALS:
        name = signal.Signals(signum).name
        expect = rf"interrupted by {name}; nothing partial"
        yield Case(f"download-mid-transfer-{name}", "signals", "omz_downloader", base, expect,
                   setup=_served("trickle:0.01"), cleanup=_stop, exit=code, absent=(f"{OUT_M}/a.bin",),
                   signal=(signum, 0.5), ready_pattern="fetching")
        yield Case(f"download-silent-server-{name}", "signals", "omz_downloader", base, expect,
                   setup=_served("slow:30"), cleanup=_stop, exit=code, absent=(f"{OUT_M}/a.bin",),
                   signal=(signum, 0.3), ready_pattern="fetching")
        yield Case(f"download-retry-wait-{name}", "signals", "omz_downloader",
                   lambda c: base(c)[:-2] + ["--retry_delay", "100"], expect,
                   setup=_served("status:503"), cleanup=_stop, exit=code, absent=(f"{OUT_M}/a.bin",),
                   signal=(signum, 0.1), ready_pattern="retrying in 100 s")
        yield Case(f"download-lock-wait-{name}", "signals", "omz_downloader", base, expect,
                   setup=_lock_held, cleanup=_release, exit=code, absent=(f"{OUT_M}/a.bin",),
                   signal=(signum, 1.0))
        yield Case(f"download-mid-unpack-100000-members-{name}", "signals", "omz_downloader",
                   lambda c: base(c) + ["--mirror", c.path("mirror"), *UNPACK_FLAGS], expect,
                   setup=_mirrored_members, exit=code, absent=(f"{OUT_M}/d00", f"{OUT_M}/d99"),
                   signal=(signum, 0.4), ready_pattern="unpacking 100000 member", timeout=90)


def _killed_mid_unpack(ctx) -> None:
    """Run the command once and kill -9 it in the middle of unpacking; its staging folder and lock
    file stay behind. Then b.bin, fetched by that run, is removed and its server answers 404, so
    the case's run (the same command) ends with one error, after sweeping the leftovers."""
    srv = FileServer().__enter__()
    ctx.values["srv"] = srv
    data = many_members_zip().read_bytes()
    ctx.write("mirror/m/a.zip", data)
    model(ctx, [file_entry("a.zip", data, [DEAD]), file_entry("b.bin", DATA, [srv.add("/b.bin", DATA)])],
          [{"$type": "unpack_archive", "file": "a.zip"}])
    argv = [str(BIN / "omz_downloader")] + [str(a) for a in _kill9_argv(ctx)]
    log = ctx.root / "_first_run.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, cwd=ctx.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while "unpacking" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    log.unlink()
    model_dir = ctx.out / "public" / "m"
    left = [p.name for p in model_dir.iterdir() if p.name.startswith(".facezoo-tmp-")]
    if not left:
        raise RuntimeError("the kill -9 came too late: no staging folder was left to sweep")
    ctx.values["left"] = left
    (model_dir / "b.bin").unlink()
    srv.routes["/b.bin"].always = "status:404"


def _kill9_argv(ctx) -> list:
    return base(ctx) + ["--mirror", ctx.path("mirror"), "--num_attempts", "1", *UNPACK_FLAGS]


def _swept(ctx, proc) -> str | None:
    locks = list((ctx.out / ".partial").rglob("*.lock")) if (ctx.out / ".partial").exists() else []
    return f"stale lock files left: {locks}" if locks else None


CASES = list(_signal_cases()) + [
    Case("download-kill9-mid-unpack-then-same-command", "signals", "omz_downloader", _kill9_argv,
         r"m/b\.bin: every source failed: .*\[2\] http://127\.0\.0\.1:\d+/b\.bin: HTTP 404",
         setup=_killed_mid_unpack, cleanup=_stop, exit=1, absent=(f"{OUT_M}/b.bin",), check=_swept, timeout=90),
]
