"""The hostile-input harness: a case is data (how to build its inputs, the command line, what must
happen), run as the real console script in a subprocess, and judged against the invariants every
refusal must keep.

Invariants checked for every case:
- the exit status is the expected one (2 for bad input, 130/143 for signals, 1 where a result is
  reported as failed);
- stderr holds no `Traceback` and exactly one line that starts with `<prog>: error:` (or
  `<prog>: interrupted`), and that line matches the case's pattern (which names the file, line or
  field and what was expected);
- nothing named in `absent` exists afterwards (no half-written output at a final path);
- no facezoo temporary file or folder is left anywhere under the case's folder, and the process's
  $TMPDIR (a folder of the case) is empty;
- every file that existed before the run outside the case's `out/` folder is unchanged (same
  bytes, size and type), except those the case lists in `may_change`.

Each run is classified with one outcome (HOSTILE_OUTCOMES in tests/conftest.py, which prints the tally).
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
TEMP_MARKERS = (".facezoo-tmp-",)


@dataclass
class Context:
    """What a case's `setup` builds on and its `argv` refers to."""

    root: Path  # the case's folder; inputs live here
    out: Path  # the only place the command may write
    values: dict = field(default_factory=dict)  # anything setup wants argv to see (URLs, paths)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def write(self, rel: str, data: str | bytes) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)
        return p


@dataclass
class Case:
    """One hostile input and what must come of it."""

    id: str
    area: str  # registry | download | convert | accuracy | signals
    command: str  # console script name
    argv: Callable[[Context], list[str]]
    expect: str  # regex the single error line must match (after '<prog>: error: ')
    setup: Callable[[Context], None] | None = None
    exit: int = 2
    absent: tuple[str, ...] = ()  # paths relative to the case folder that must not exist afterwards
    may_change: tuple[str, ...] = ()  # inputs outside out/ the command may legitimately change
    timeout: float = 60.0
    env: dict = field(default_factory=dict)
    # signals: (signum, delay_s) sent after the process printed `ready_pattern` to stderr/stdout
    # or, without one, after delay_s
    signal: tuple[int, float] | None = None
    ready_pattern: str | None = None
    cleanup: Callable[[Context], None] | None = None  # stop servers etc. after the run
    check: Callable[[Context, "subprocess.CompletedProcess"], str | None] | None = None  # extra check


def _replaceable(path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    return path


def make_fifo(path: Path | str) -> None:
    """A FIFO at `path` (replacing what is there): reading it would block forever."""
    os.mkfifo(_replaceable(path))


def make_full_device(path: Path | str) -> None:
    """A character device like /dev/full at `path` (replacing what is there), made inside the case's
    folder so that no case ever aims at a system path."""
    os.mknod(_replaceable(path), stat.S_IFCHR | 0o666, os.makedev(1, 7))


def _snapshot(root: Path, skip: Path) -> dict[str, tuple]:
    """Every entry under root except skip/: type and content digest (files), target (links)."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if d == skip or skip in d.parents:
            dirnames[:] = []
            continue
        for name in filenames + [n for n in dirnames if (d / n).is_symlink()]:
            p = d / name
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if p.is_symlink():
                seen[str(p)] = ("link", os.readlink(p))
            elif os.path.isfile(p) and st.st_size <= 64 << 20:
                with open(p, "rb") as f:
                    seen[str(p)] = ("file", st.st_size, hashlib.sha256(f.read()).hexdigest())
            else:
                seen[str(p)] = ("other", st.st_mode, st.st_size)
    return seen


def _temps_left(root: Path) -> list[str]:
    left = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            if name.startswith(TEMP_MARKERS):
                left.append(str(Path(dirpath, name).relative_to(root)))
    return left


@dataclass
class Verdict:
    outcome: str
    detail: str
    proc: subprocess.CompletedProcess | None = None


def run_case(case: Case, root: Path) -> Verdict:
    """Build the case's inputs under root, run it and judge it."""
    ctx = Context(root=root, out=root / "out")
    ctx.out.mkdir(parents=True, exist_ok=True)
    tmpdir = root / "_tmpdir"
    tmpdir.mkdir()
    try:
        if case.setup:
            case.setup(ctx)
        argv = [str(BIN / case.command)] + [str(a) for a in case.argv(ctx)]
        before = _snapshot(root, ctx.out)
        env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1", "COLUMNS": "200",
               **{k: (v(ctx) if callable(v) else v) for k, v in case.env.items()}}
        proc = _run(argv, ctx, case, env)
        if proc is None:
            return Verdict("hang", f"no exit within {case.timeout} s: {' '.join(argv)}")
        return _judge(case, ctx, proc, before, tmpdir)
    finally:
        if case.cleanup:
            case.cleanup(ctx)


def _run(argv: list[str], ctx: Context, case: Case, env: dict) -> subprocess.CompletedProcess | None:
    if case.signal is None:
        try:
            return subprocess.run(argv, cwd=ctx.root, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, errors="replace", timeout=case.timeout)
        except subprocess.TimeoutExpired:
            return None
    signum, delay = case.signal
    out_path, err_path = ctx.root / "_stdout", ctx.root / "_stderr"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        p = subprocess.Popen(argv, cwd=ctx.root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        start = time.monotonic()
        if case.ready_pattern:
            pattern = re.compile(case.ready_pattern)
            while time.monotonic() - start < case.timeout and p.poll() is None:
                if pattern.search(err_path.read_text(errors="replace") + out_path.read_text(errors="replace")):
                    break
                time.sleep(0.02)
        time.sleep(delay)
        sent = time.monotonic()
        if p.poll() is None:
            p.send_signal(signum)
        try:
            p.wait(timeout=2.0 if p.poll() is None else 0.1)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None
        ctx.values["signal_to_exit_s"] = time.monotonic() - sent
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    return subprocess.CompletedProcess(argv, p.returncode, stdout, stderr)


def _error_lines(prog: str, stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith((f"{prog}: error", f"{prog}: interrupted"))]


def _judge(case: Case, ctx: Context, proc: subprocess.CompletedProcess, before: dict, tmpdir: Path) -> Verdict:
    stderr = proc.stderr
    if "Traceback" in stderr:
        return Verdict("traceback", stderr[-1500:], proc)
    if proc.returncode != case.exit:
        kind = "wrong success" if proc.returncode == 0 else "wrong exit"
        return Verdict(kind, f"exit {proc.returncode}, expected {case.exit}; stderr: {stderr[-800:]}", proc)
    lines = _error_lines(case.command, stderr)
    if len(lines) != 1 or not re.search(case.expect, lines[0]):
        return Verdict("bad message", f"expected one line matching {case.expect!r}; error lines: {lines!r}; "
                                      f"stderr: {stderr[-800:]}", proc)
    present = [a for a in case.absent if (ctx.root / a).exists() or (ctx.root / a).is_symlink()]
    temps = _temps_left(ctx.root) + [f"$TMPDIR/{n}" for n in os.listdir(tmpdir)]
    if present or temps:
        return Verdict("partial output", f"left behind: {present + temps}", proc)
    after = _snapshot(ctx.root, ctx.out)
    allowed = {str(ctx.root / m) for m in case.may_change}
    changed = sorted(k for k in set(before) | set(after)
                     if before.get(k) != after.get(k) and k not in allowed and Path(k).parent != tmpdir)
    if changed:
        return Verdict("touched input", f"changed outside out/: {changed[:5]}", proc)
    if case.check:
        problem = case.check(ctx, proc)
        if problem:
            return Verdict("wrong success" if proc.returncode == 0 else "bad message", problem, proc)
    return Verdict("refused cleanly", lines[0], proc)

