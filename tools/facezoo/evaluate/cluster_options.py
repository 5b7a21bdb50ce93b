"""accuracy_check's scale-out flags (--workers, --scheduler, --shard_size, --resume, --ship_images):
their parsing, their checks before any work, and the Dask executor they build. Dask is imported
only when --workers or --scheduler is given."""
from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facezoo.common.safeio import check_output_dir, signals_deferred

from .errors import EvaluateError

if TYPE_CHECKING:  # not imported with the command line's parser: NumPy loads later, signals deferred
    from .jobs import Executor, ModelRef
    from .launchers.base import Launcher

DEFAULT_SHARD_SIZE = 32
MAX_SHARD_SIZE = 1_000_000
SCHEDULER = re.compile(r"(?:(?:tcp|tls)://)?(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})")
INSTALL = "pip install 'facezoo[dask]'"


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _workers(text: str) -> int:
    cores = usable_cores()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= cores:
        raise argparse.ArgumentTypeError(f"expected a whole number of worker processes from 1 to {cores} (the "
                                         f"cores usable here), found {text[:40]!r}")
    return int(text)


def _scheduler(text: str) -> str:
    match = SCHEDULER.fullmatch(text) if len(text) <= 300 else None
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a Dask scheduler address such as tcp://10.0.0.5:8786 (tcp:// or "
                                         f"tls://, a host and a port 1-65535), found {text[:80]!r}")
    return text


def _shard_size(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_SHARD_SIZE:
        raise argparse.ArgumentTypeError(f"expected a whole number of images per shard from 1 to {MAX_SHARD_SIZE:,}, "
                                         f"found {text[:40]!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scale-out flags, in their own group of --help."""
    group = parser.add_argument_group(f"scale-out on a Dask cluster (needs {INSTALL})")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_workers, metavar="N",
                       help="run inference on a local Dask cluster of N worker processes, each with its share of "
                            "the cores; metrics are identical to a single process")
    where.add_argument("--scheduler", type=_scheduler, metavar="ADDRESS",
                       help="run inference on the workers of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); "
                            "the workers need facezoo and the same versions, and the model and images at the same "
                            "paths (a shared filesystem) unless --ship_images")
    group.add_argument("--shard_size", type=_shard_size, metavar="N",
                       help=f"images per shard, the unit a worker runs, retries and --resume stores (default "
                            f"{DEFAULT_SHARD_SIZE})")
    group.add_argument("--resume", type=Path, metavar="DIR",
                       help="keep each finished shard's predictions in DIR, and skip those already there (DIR new, "
                            "empty, or from an interrupted run of the same model, data and settings)")
    group.add_argument("--ship_images", action="store_true",
                       help="send the model (once per worker) and each shard's image bytes from here: the workers "
                            "need no shared filesystem")


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse (one line, exit 2) a scale-out option given without --workers or --scheduler."""
    if args.workers or args.scheduler:
        return
    for flag, given in (("--shard_size", args.shard_size is not None), ("--resume", args.resume is not None),
                        ("--ship_images", args.ship_images)):
        if given:
            parser.error(f"{flag} needs --workers or --scheduler (it shapes a Dask run)")


def scaled_out(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "workers", None) or getattr(args, "scheduler", None))


def check_run(args: argparse.Namespace, reading_stored: bool, inputs: list[Path], input_folders: list[Path],
              outputs: list[Path]) -> None:
    """Before any work: nothing to scale out when predictions are read; Dask installed; the
    --resume folder a folder (or new) that is no input, inside none, and holds no other output."""
    if not scaled_out(args):
        return
    flag = "--workers" if args.workers else "--scheduler"
    if reading_stored:
        raise EvaluateError(f"{flag}: the predictions are read from --stored_predictions, so nothing runs on a "
                            f"cluster; drop {flag} (or give a new --stored_predictions path to write)")
    try:
        with signals_deferred():  # a signal inside its import would become an ImportError
            import distributed  # noqa: F401
    except ImportError:
        raise EvaluateError(f"{flag}: Dask's distributed package is not installed: {INSTALL}") from None
    if args.resume is not None:
        resume = Path(args.resume)
        check_output_dir(resume, "--resume", inputs, EvaluateError)
        if not resume.parent.resolve().is_dir():
            raise EvaluateError(f"{resume}: --resume's parent folder {resume.parent} does not exist")
        for folder in input_folders:
            if resume.resolve() == folder.resolve() or folder.resolve() in resume.resolve().parents:
                raise EvaluateError(f"{resume}: --resume is inside {folder}, an input folder of this run")
        for out in outputs:
            if out.resolve() == resume.resolve() or resume.resolve() in out.resolve().parents:
                raise EvaluateError(f"{out}: an output inside --resume {resume}; give them separate paths")


def dask_runner(args: argparse.Namespace, launcher: Launcher, ref: ModelRef, identity: dict[str, Any],
                notify: Callable[[str], None]) -> Executor:
    """The Dask executor the flags ask for."""
    from .dask_executor import ClusterSettings, DaskExecutor

    settings = ClusterSettings(args.workers, args.scheduler, args.shard_size or DEFAULT_SHARD_SIZE,
                               Path(args.resume) if args.resume is not None else None, args.ship_images)
    return DaskExecutor(launcher, ref, settings, identity, notify)
