"""accuracy_check: evaluate a converted model on a dataset and compare with the config's references."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from facezoo.common.cli import ArgumentParser, guarded, run_command
from facezoo.common.safeio import signals_deferred

from .cluster_options import add_arguments as add_cluster_arguments, check_arguments as check_cluster_arguments


def _positive_int(text: str) -> int:
    if not text.strip().isascii() or not text.strip().isdigit() or not 1 <= int(text) <= 10**9:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 up to the dataset's size, found {text!r}")
    return int(text)


def _precision(text: str) -> str:
    from .run import PRECISION

    if not PRECISION.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected FP32, FP16, FP32-INT8 or FP16-INT8 (an IR precision "
                                         f"folder of omz_converter's output), found {text!r}")
    return text


def _device(text: str) -> str:
    if not text or len(text) > 100 or not all(c.isalnum() or c in ":,._-" for c in text):
        raise argparse.ArgumentTypeError(f"expected a device name such as CPU, GPU.0 or AUTO:CPU, found {text!r}")
    return text


def _pixel_limit(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 10**12:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels from 1 to 10^12, found {text!r}")
    return int(text)


MAX_BATCH = 1024


def _batch(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"expected a whole number of images per request from 1 to {MAX_BATCH}, "
                                         f"found {text!r}")
    return int(text)


def _protocol(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", text):
        raise argparse.ArgumentTypeError(f"expected a protocol name such as mxnet-1600 (lower-case letters, digits, "
                                         f"'.', '_', '-'), found {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="accuracy_check", description=__doc__)
    p.add_argument("-c", "--config", required=True, type=Path,
                   help="the model's accuracy config: models/public/<name>/accuracy-check.yml")
    p.add_argument("-m", "--models", type=Path,
                   help="the converter's output folder, a folder holding <name>.xml, or the .xml/.onnx itself")
    p.add_argument("-s", "--source", required=True, type=Path,
                   help="dataset root; the definition whose files are under it is used (its name and image "
                        "count are printed)")
    p.add_argument("-d", "--definitions", type=Path, help="dataset_definitions.yml (default: accuracy_configs/)")
    p.add_argument("--dataset", help="which dataset entry of the config to run (default: the first)")
    p.add_argument("--protocol", type=_protocol,
                   help="which protocol entry of the dataset to run; WIDER FACE, for RetinaFace: default, omz-640, "
                        "original, mxnet-1600, multiscale-flip (see the model card; default: the dataset's first "
                        "entry)")
    p.add_argument("--launcher", choices=["openvino", "onnxruntime"],
                   help="inference engine, one the config configures (default: the config's first)")
    p.add_argument("--precision", type=_precision,
                   help="IR precision folder to evaluate: FP32, FP16, FP32-INT8, FP16-INT8 (default FP32, or "
                        "the folder of an .xml given with -m)")
    p.add_argument("--target_device", default="CPU", type=_device,
                   help="OpenVINO device (default CPU; e.g. GPU, AUTO:GPU,CPU); onnxruntime runs on CPU only")
    p.add_argument("--subsample_size", type=_positive_int,
                   help="only the first N images (WIDER) or pairs (LFW), 1 to the dataset's size")
    p.add_argument("--stored_predictions", type=Path, nargs="+", default=[],
                   help="several paths: shards read and merged (all must exist); one path: read when it exists, "
                        "otherwise the model runs and its predictions are written there")
    p.add_argument("--json_result", type=Path, help="write the result as JSON (what was measured, metrics, timings)")
    p.add_argument("--csv_result", type=Path, help="write one CSV row per metric (with precision and model file)")
    p.add_argument("--report", type=Path,
                   help="folder for index.html with PR/ROC plots (new, empty, or an earlier report: replaced whole)")
    p.add_argument("--submission_dir", type=Path,
                   help="also write WIDER predictions in the official format (folder new, empty, or an earlier "
                        "submission: replaced whole)")
    p.add_argument("--aligner_model", type=Path, help="detector IR for datasets aligned by a detector")
    p.add_argument("--strict", action="store_true", help="annotation checksum mismatches are errors")
    p.add_argument("--skip_broken", action="store_true", help="count and report undecodable images, go on")
    p.add_argument("--max_image_pixels", type=_pixel_limit, default=64_000_000,
                   help="refuse (or with --skip_broken, skip) an image whose header declares more pixels than "
                        "this, before decoding it (default 64,000,000)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--batch", type=_batch,
                   help="images per inference request, 1 to 1024: OpenVINO reshapes the IR to it (a graph that "
                        "fixes one image, like RetinaFace's, is refused); default 4 on face recognition datasets "
                        "(the most images per CPU-second measured by bench/accuracy.py), 1 on detection")
    p.add_argument("--cache_dir", type=Path,
                   help="keep each image's decoded, resized network input in this folder (made if missing) and "
                        "read it back memory-mapped on later runs, so another model or precision on the same "
                        "images decodes nothing; entries are keyed by the image bytes' sha256 and the "
                        "preprocessing, checked when read, shared safely by concurrent runs; its size is printed")
    add_cluster_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    check_cluster_arguments(args, parser)
    return guarded("accuracy_check", lambda: _check(args))


def _check(args: argparse.Namespace) -> int:
    with signals_deferred():  # a signal inside a C extension's import would become an ImportError
        from .run import run

    result = run(args, lambda line: print(line, flush=True))
    info = result.run
    protocol = f", protocol {info['protocol']}" if info.get("protocol", "default") != "default" else ""
    print(f"{result.model} {info.get('precision') or ''} on {result.dataset}{protocol} ({result.images} images, "
          f"{result.launcher}, {info.get('wall_s', result.timings.get('total_s', 0)):.1f} s)")
    if info.get("model_file"):
        print(f"  model file: {info['model_file']}")
    cache = info.get("input_cache")
    if cache:
        damaged = f", {cache['damaged']} damaged entries replaced" if cache["damaged"] else ""
        print(f"  input cache {cache['folder']}: {cache['read']} inputs read, {cache['written']} written{damaged}; "
              f"{cache['entries']} entries, {cache['bytes'] / 2**20:.1f} MiB")
        if cache["not_written"]:
            print(f"warning: input cache: {cache['not_written']} entries not written ({cache['write_error']})",
                  file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.broken:
        print(f"warning: {len(result.broken)} broken images skipped, e.g. {result.broken[0][1]}", file=sys.stderr)
    failed = False
    for m in result.metrics:
        if m.passed is None:
            verdict = "(no reference)"
        else:
            verdict = f"reference {m.reference:.4f} +- {m.threshold:.4f}: " + ("ok" if m.passed else "OUT OF RANGE")
            failed |= not m.passed
        print(f"  {m.name:28} {m.value:.4f}  {verdict}")
    if failed:
        print("accuracy_check: a metric is outside its reference range", file=sys.stderr)
    return 1 if failed else 0


def entry() -> None:
    """The accuracy_check console script."""
    run_command("accuracy_check", main)


if __name__ == "__main__":
    entry()
