"""SIGINT and SIGTERM while a command is still starting (loading NumPy, ONNX, OpenVINO) or just
into its work: a sweep of delays, so a signal landing inside a C extension's import or between two
steps still ends as the signal (130/143, one line), with nothing at a final path. (The first
~30 ms, before the interpreter has run any facezoo code, belong to Python: a signal there kills
the process by the signal itself, which a shell also reports as 130/143.)"""
from __future__ import annotations

import signal

from harness import Case
from models import converted_root

MODEL = "retinaface-mnet025-v1"


def _downloaded(ctx) -> None:
    ctx.values["dl"] = converted_root(MODEL).parent / "dl"


def _converter_case(signum: int, delay: float, ready: str | None = None) -> Case:
    name = signal.Signals(signum).name
    when = f"after-{delay:.2f}s" if ready is None else "as-conversion-starts"
    return Case(f"converter-{name.lower()}-{when}", "signals", "omz_converter",
                lambda ctx: ["--name", MODEL, "-d", ctx.values["dl"], "-o", ctx.out, "--precisions", "FP32,FP16"],
                rf"interrupted by {name}", setup=_downloaded, exit=128 + signum, signal=(signum, delay),
                ready_pattern=ready,
                absent=(f"out/public/{MODEL}/{MODEL}.onnx", f"out/public/{MODEL}/FP32/{MODEL}.xml",
                        f"out/public/{MODEL}/FP32/{MODEL}.bin", f"out/public/{MODEL}/FP16/{MODEL}.xml"))


# the small model converts in about half a second once loaded: later signals would race its end
CASES = [_converter_case(s, d) for s in (signal.SIGINT, signal.SIGTERM) for d in (0.1, 0.2, 0.3)]
CASES += [_converter_case(s, 0.0, ready=f"{MODEL}: converting") for s in (signal.SIGINT, signal.SIGTERM)]
