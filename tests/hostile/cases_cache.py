"""Hostile --cache_dir and --batch values for accuracy_check: a cache folder that is no folder,
cannot be made, or overlaps the run's inputs and outputs; batch sizes out of range, for a graph
that fixes one image, or for a launcher that does not batch; signals while the cache is being
filled. Refusals come before the model is compiled; an interrupted run leaves whole cache
entries and no temporary file. (Damaged entries are not refused but recomputed: see
tests/test_input_cache.py.)"""
from __future__ import annotations

import signal

from cases_accuracy_outputs import argv, device, fifo, setup
from harness import Case

WIDER_IMAGES = "data/WIDER_val/images"


def _link(rel: str, target: str):
    def step(ctx):
        path = ctx.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(ctx.path(target))
    return step


def _file(rel: str):
    def step(ctx):
        ctx.write(rel, "not a folder\n")
    return step


def _made(rel: str, kind):
    return lambda ctx: kind(ctx, rel)


# (id, --cache_dir, what the folder's path holds first, the message, more flags)
FOLDERS = [
    ("a-regular-file", "out/cache", _file("out/cache"),
     r"out/cache: --cache_dir must be a folder, found a regular file"),
    ("a-fifo", "out/cache", _made("out/cache", fifo), r"out/cache: --cache_dir must be a folder, found a FIFO"),
    ("a-device", "out/cache", _made("out/cache", device), r"out/cache: --cache_dir must be a folder, found a device"),
    ("a-link-to-a-fifo", "out/cache", lambda ctx: (fifo(ctx, "out/pipe"), _link("out/cache", "out/pipe")(ctx)),
     r"out/cache: --cache_dir must be a folder, found a FIFO"),
    ("a-link-to-a-device", "out/cache", lambda ctx: (device(ctx, "out/full"), _link("out/cache", "out/full")(ctx)),
     r"out/cache: --cache_dir must be a folder, found a device"),
    ("a-dangling-link", "out/cache", _link("out/cache", "out/nowhere"), r"out/cache: --cache_dir cannot be written"),
    ("under-a-regular-file", "out/file/cache", _file("out/file"),
     r"out/file/cache: --cache_dir cannot be used \(Not a directory\)"),
    ("the-image-folder", WIDER_IMAGES, None,
     r"--cache_dir overlaps .*WIDER_val/images, which this run reads or writes"),
    ("inside-the-image-folder", f"{WIDER_IMAGES}/0--Parade", None, r"--cache_dir overlaps .*WIDER_val/images"),
    ("the-ground-truth-folder", "data/ground_truth", None, r"--cache_dir overlaps .*ground_truth"),
    ("the-case-folder-holding-the-config", ".", None,
     r"\.: --cache_dir overlaps .*config\.yml, which this run reads or writes"),
    ("the-report-folder", "out/report", None, r"out/report: --cache_dir overlaps out/report",
     ("--report", "out/report")),
    ("the-folder-of-the-json-result", "out/r", None, r"out/r: --cache_dir overlaps out/r/r\.json",
     ("--json_result", "out/r/r.json"), lambda ctx: ctx.path("out", "r").mkdir()),
]

BATCHES = [("zero", "0"), ("negative", "-1"), ("above-1024", "1025"), ("huge", "9" * 40), ("a-fraction", "8.0"),
           ("a-word", "eight"), ("empty", ""), ("with-spaces", " 8"), ("arabic-indic-digits", "\u0668")]


def _folder_case(id: str, cache: str, step, expect: str, more: tuple = (), extra=None) -> Case:
    steps = tuple(s for s in (step, extra) if s is not None)
    return Case(f"cache-dir-{id}", "accuracy", "accuracy_check", argv("wider", "--cache_dir", cache, *more), expect,
                setup=setup("wider", *steps), absent=("out/r.json",) if "--json_result" in more else ())


def _signal_case(id: str, signum: int, delay: float) -> Case:
    """A signal while the first run fills an empty cache: exit 128+signum, no temporary file in
    the cache (the harness looks everywhere under the case folder)."""
    return Case(f"cache-{id}", "signals", "accuracy_check",
                lambda ctx: ["-c", "config.yml", "-d", "defs.yml", "-m", "ir", "-s", "data", "--cache_dir", "out/cache",
                             "--json_result", "out/r.json"],
                rf"interrupted by {signal.Signals(signum).name}", setup=setup("wider"), exit=128 + signum,
                absent=("out/r.json",), signal=(signum, delay), ready_pattern="dataset wider_val_dev: 200 images",
                check=_whole_entries, timeout=60.0)


def _whole_entries(ctx, proc) -> str | None:
    """Every entry left in the cache is whole: the next run reads each back without damage."""
    from facezoo.evaluate.cache import InputCache, _Damaged

    cache = InputCache(ctx.out / "cache")
    for entry in (ctx.out / "cache").iterdir():
        try:
            cache.read(entry.name[:-len(".input")])
        except _Damaged as exc:
            return f"{entry.name} is not a whole entry ({exc})"
    return None


CASES = [_folder_case(*row) for row in FOLDERS] + [
    Case(f"batch-{id}", "accuracy", "accuracy_check", argv("wider", f"--batch={value}"),
         r"argument --batch: expected a whole number of images per request from 1 to 1024", setup=setup("wider"))
    for id, value in BATCHES
] + [
    Case("batch-4-for-a-graph-fixing-one-image", "accuracy", "accuracy_check", argv("wider", "--batch", "4"),
         r"retinaface-mnet025-v1\.xml: --batch 4: the graph cannot take 4 images per request .*use --batch 1",
         setup=setup("wider")),
    Case("batch-2-with-onnxruntime", "accuracy", "accuracy_check",
         argv("lfw", "--batch", "2", "--launcher", "onnxruntime"),
         r"--batch 2: the onnxruntime launcher runs one image per request", setup=setup("lfw")),
    Case("cache-dir-with-a-cluster", "accuracy", "accuracy_check",
         argv("wider", "--cache_dir", "out/cache", "--workers", "2"),
         r"--cache_dir: the input cache serves runs on this machine", setup=setup("wider")),
    _signal_case("sigint-while-filling", signal.SIGINT, 0.8),
    _signal_case("sigterm-while-filling", signal.SIGTERM, 0.4),
]
