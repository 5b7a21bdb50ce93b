"""Signals sent to omz_converter while it converts a long synthetic checkpoint (thousands of
nodes: seconds of graph building and OpenVINO work): exit 130/143 within 2 s, one line, its
staging folder removed, nothing under out/public; and a kill -9 in the middle of a conversion
whose leftover staging folder the next run of the same command removes."""
from __future__ import annotations

import signal
import subprocess
import time

from conftest import file_entry, write_model
from harness import BIN, Case
from synthetic_models import write_deep_chain

BLOCKS = 3000  # about 10 s of conversion on a 2-core machine
ARGV = ["--name", "m", "--models_dir", "models", "-d", "dl", "-o", "out"]
READY = "m: converting"
SIGNALS = ((signal.SIGINT, 130), (signal.SIGTERM, 143))
PHASES = (("reading", 0.0), ("building", 0.6), ("openvino", 2.5), ("openvino-late", 5.0))


def chain(ctx) -> None:
    """Model 'm': a 3000-unit convolution chain in dl/, declared in models/."""
    write_deep_chain(ctx.path("dl", "public", "m"), BLOCKS, prefix="m")
    conversion = {"symbol": "m-symbol.json", "params": "m-0000.params",
                  "inputs": [{"name": "data", "shape": [1, 3, 32, 32], "layout": "NCHW", "color_order": "RGB"}]}
    files = [file_entry(n, b"x", ["https://example.invalid/" + n]) for n in ("m-symbol.json", "m-0000.params")]
    write_model(ctx.path("models"), "m", files, conversion=conversion)


def chain_after_kill_9(ctx) -> None:
    """`chain`, then the same conversion killed with SIGKILL once its staging folder exists."""
    chain(ctx)
    proc = subprocess.Popen([str(BIN / "omz_converter"), *ARGV], cwd=ctx.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(ctx.out.glob(".facezoo-tmp-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert list(ctx.out.glob(".facezoo-tmp-*")), "the killed conversion left no staging folder to sweep"


def _cases():
    for signum, code in SIGNALS:
        name = signal.Signals(signum).name
        expect = rf"interrupted by {name}; nothing partial was left at a final path"
        for phase, delay in PHASES:
            yield Case(f"convert-{phase}-{name}", "signals", "omz_converter", lambda ctx: ARGV, expect, setup=chain,
                       exit=code, absent=("out/public",), signal=(signum, delay), ready_pattern=READY, timeout=120)
    yield Case("convert-after-kill-9-SIGINT", "signals", "omz_converter", lambda ctx: ARGV,
               r"interrupted by SIGINT; nothing partial", setup=chain_after_kill_9, exit=130, absent=("out/public",),
               signal=(signal.SIGINT, 1.0), ready_pattern=READY, timeout=120)


CASES = list(_cases())
