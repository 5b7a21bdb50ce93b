"""SIGINT and SIGTERM in the middle of accuracy_check's inference: exit 130/143 within 2 s with one
line, none of the requested outputs written (an earlier report or submission left as it was), no
temporary file or folder left."""
from __future__ import annotations

import signal

from cases_accuracy_outputs import folder, setup
from harness import Case

OUTPUTS = ("--json_result", "out/r.json", "--csv_result", "out/r.csv", "--stored_predictions", "out/p.npz")
WRITTEN = ("out/r.json", "out/r.csv", "out/report", "out/p.npz", "out/submission")


def _earlier_outputs(ctx) -> None:
    """An earlier report and submission outside out/: the harness checks they are left unchanged."""
    folder(ctx, "earlier/report")
    ctx.write("earlier/report/index.html", "<p>an earlier run</p>\n")
    folder(ctx, "earlier/submission/0--Parade", "0_Parade_marchingband_1_465.txt")


def _case(id: str, signum: int, kind: str, delay: float, more: tuple = ("--report", "out/report"),
          steps: tuple = (), ready: bool = True) -> Case:
    """The signal comes `delay` s after the dataset line (printed as inference starts), or after
    the start when not `ready`."""
    data = "data" if kind == "wider" else "lfw"
    dataset = "wider_val_dev: 200 images" if kind == "wider" else "lfw_aligned_100pair: 200 images"
    return Case(id, "signals", "accuracy_check",
                lambda ctx: ["-c", "config.yml", "-d", "defs.yml", "-m", "ir", "-s", data, *OUTPUTS, *more],
                rf"interrupted by {signal.Signals(signum).name}", setup=setup(kind, *steps), exit=128 + signum,
                absent=WRITTEN, signal=(signum, delay), ready_pattern=f"dataset {dataset}" if ready else None,
                timeout=60.0)


CASES = [
    _case("accuracy-sigint-mid-wider-inference", signal.SIGINT, "wider", 1.0, ("--report", "out/report",
                                                                             "--submission_dir", "out/submission")),
    _case("accuracy-sigterm-mid-wider-inference", signal.SIGTERM, "wider", 1.0, ("--report", "out/report",
                                                                               "--submission_dir", "out/submission")),
    _case("accuracy-sigint-without-a-progress-bar", signal.SIGINT, "wider", 0.5, ("--no_progress",)),
    _case("accuracy-sigterm-mid-onnxruntime-inference", signal.SIGTERM, "wider", 0.5,
          ("--launcher", "onnxruntime", "--subsample_size", "100")),
    # LFW's 400 inferences take a fifth of a second here, its whole run after the dataset line 0.4 s:
    # its signals come at once, timed ones would race the end of the run on a fast or idle machine
    _case("accuracy-sigint-as-lfw-inference-starts", signal.SIGINT, "lfw", 0.0),
    _case("accuracy-sigterm-as-lfw-inference-starts", signal.SIGTERM, "lfw", 0.0),
    # while NumPy, OpenVINO and matplotlib load: a signal inside a C extension's import must not
    # turn into an ImportError traceback
    _case("accuracy-sigterm-while-modules-load", signal.SIGTERM, "wider", 0.3, ready=False),
    _case("accuracy-sigint-0.3-s-after-the-start", signal.SIGINT, "lfw", 0.3, ready=False),
    _case("accuracy-sigint-leaves-earlier-outputs-alone", signal.SIGINT, "wider", 1.0,
          ("--report", "earlier/report", "--submission_dir", "earlier/submission"), (_earlier_outputs,)),
    _case("accuracy-sigterm-leaves-earlier-outputs-alone", signal.SIGTERM, "wider", 0.3,
          ("--report", "earlier/report", "--submission_dir", "earlier/submission", "--no_progress"),
          (_earlier_outputs,)),
]
