"""omz_converter: MXNet checkpoints of registry models to ONNX and OpenVINO IR, optionally verified."""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from facezoo.common.cli import ArgumentParser, guarded, run_command
from facezoo.registry.arguments import add_model_arguments, selected_models

from .convert import build_onnx, convert_model
from .errors import ConvertError


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="omz_converter", description="Convert registry models to OpenVINO IR.")
    add_model_arguments(parser)
    parser.add_argument("-d", "--download_dir", type=Path, default=Path("."), help="where omz_downloader put them")
    parser.add_argument("-o", "--output_dir", type=Path, help="root of the IR layout (default: --download_dir)")
    parser.add_argument("--precisions", default="FP32,FP16", help="comma list of FP32, FP16 (default both)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="models converted in parallel")
    parser.add_argument("--dry_run", action="store_true", help="translate and report, write nothing")
    parser.add_argument("--verify", action="store_true",
                        help="compare each IR with real MXNet (needs $FACEZOO_MXNET_PYTHON)")
    parser.add_argument("--verify_image", type=Path, help="a photo to verify on, besides random noise")
    return parser


def _report(name: str, report, paths: list[str]) -> str:
    ins = ", ".join(f"{k} {list(v)}" for k, v in report.inputs.items())
    outs = ", ".join(f"{k} {list(v)}" for k, v in report.outputs.items())
    ops = ", ".join(f"{k} x{v}" for k, v in report.ops.items())
    lines = [f"========== {name}", f"  inputs:  {ins}", f"  outputs: {outs}", f"  ops:     {ops}",
             f"  parameters: {report.parameters / 1e6:.4f} M, GFLOPs: {report.gflops:.4f}"]
    lines += [f"  wrote:   {p}" for p in paths]
    return "\n".join(lines)


def _one(model, args, precisions, image):
    if args.dry_run:
        _, report = build_onnx(model, args.download_dir)
        return _report(model.name + " (dry run: nothing written)", report, []), True
    converted = convert_model(model, args.download_dir, args.output_dir or args.download_dir, precisions)
    text = _report(model.name, converted.report, [str(converted.onnx_path)] +
                   [str(p) for p in converted.ir_paths.values()])
    if not args.verify:
        return text, True
    from .check import verify_converted

    lines = verify_converted(model, converted, args.download_dir, image)
    for line in lines:
        c = line.comparison
        text += (f"\n  verify {line.precision} {line.input_name:5s} {c.output}: max|err| {c.max_abs_error:.3g}, "
                 f"cosine {c.cosine:.6f} [{line.rule}] {'ok' if line.passed else 'FAIL'}")
    return text, all(line.passed for line in lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    precisions = [p.strip().upper() for p in args.precisions.split(",") if p.strip()]
    if not precisions or any(p not in ("FP32", "FP16") for p in precisions) or args.jobs < 1:
        print("omz_converter: error: --precisions takes FP32 and/or FP16; --jobs must be >= 1", file=sys.stderr)
        return 2
    return guarded("omz_converter", lambda: _convert(args, precisions))


def _convert(args: argparse.Namespace, precisions: list[str]) -> int:
    chosen = selected_models(args)
    if chosen is None:
        return 0
    image = None
    if args.verify_image:
        import cv2

        image = cv2.imread(str(args.verify_image), cv2.IMREAD_COLOR)
        if image is None:
            raise ConvertError(f"{args.verify_image}: not a readable image")
    failures = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [(m, pool.submit(_one, m, args, precisions, image)) for m in chosen]
        for model, future in futures:
            try:
                text, ok = future.result()
            except ConvertError as exc:
                failures.append(f"omz_converter: error: {exc}")
                continue
            print(text, flush=True)
            if not ok:
                failures.append(f"omz_converter: error: {model.name}: verification against MXNet failed")
    for line in failures:
        print(line, file=sys.stderr)
    return 0 if not failures else (1 if all("verification" in f for f in failures) else 2)


def entry() -> None:
    """The omz_converter console script."""
    run_command("omz_converter", main)


if __name__ == "__main__":
    entry()
