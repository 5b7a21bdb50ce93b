"""omz_converter: MXNet checkpoints of registry models to ONNX and OpenVINO IR, optionally verified."""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from facezoo.common.cli import ArgumentParser, guarded, run_command
from facezoo.common.safeio import sweep_stale_temps
from facezoo.registry import Model
from facezoo.registry.arguments import add_model_arguments, selected_models

from .convert import build_onnx, build_steps, check_model, check_outputs, conversion_steps, convert_model
from .errors import ConvertError
from .staging import Staging

VERIFY_STEPS = 1


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="omz_converter", description="Convert registry models to OpenVINO IR.")
    add_model_arguments(parser)
    parser.add_argument("-d", "--download_dir", type=Path, default=Path("."), help="where omz_downloader put them")
    parser.add_argument("-o", "--output_dir", type=Path, help="root of the IR layout (default: --download_dir)")
    parser.add_argument("--precisions", default="FP32,FP16", help="comma list of FP32, FP16 (default both)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="models converted in parallel")
    parser.add_argument("--dry_run", action="store_true", help="translate and report, write nothing")
    parser.add_argument("--verify", action="store_true",
                        help="compare each IR with real MXNet (needs $FACEZOO_MXNET_PYTHON, checked before "
                             "any work)")
    parser.add_argument("--verify_image", type=Path,
                        help="with --verify: a photo (at most 64 MiB, 64 megapixels) to verify on, besides "
                             "random noise")
    return parser


def _report(name: str, report, paths: list[str]) -> str:
    ins = ", ".join(f"{k} {list(v)}" for k, v in report.inputs.items())
    outs = ", ".join(f"{k} {list(v)}" for k, v in report.outputs.items())
    ops = ", ".join(f"{k} x{v}" for k, v in report.ops.items())
    lines = [f"========== {name}", f"  inputs:  {ins}", f"  outputs: {outs}", f"  ops:     {ops}",
             f"  parameters: {report.parameters / 1e6:.4f} M, GFLOPs: {report.gflops:.4f}"]
    lines += [f"  wrote:   {p}" for p in paths]
    return "\n".join(lines)


def _one(model: Model, args: argparse.Namespace, precisions: list[str], image, step) -> tuple[str, bool]:
    tqdm.write(f"========== {model.name}: {'translating' if args.dry_run else 'converting'}", file=sys.stdout)
    if args.dry_run:
        _, report = build_onnx(model, args.download_dir, step)
        text = _report(model.name + " (dry run: nothing written)", report, [])
        if model.conversion.dynamic_input:
            text += "\n  dynamic: the graph with open height and width builds too (dynamic_input)"
        return text, True
    output_dir = args.output_dir or args.download_dir
    converted = convert_model(model, args.download_dir, output_dir, precisions, step)
    paths = [converted.onnx_path, *converted.ir_paths.values()]
    if converted.dynamic_onnx_path is not None:
        paths += [converted.dynamic_onnx_path, *converted.dynamic_ir_paths.values()]
    text = _report(model.name, converted.report, [str(p) for p in paths])
    if converted.dynamic_onnx_path is not None:
        shapes = ", ".join(f"{k} [{v[0]}, {v[1]}, ?, ?]" for k, v in converted.report.inputs.items())
        text += f"\n  dynamic: {converted.dynamic_onnx_path.stem} files take {shapes} (height and width open)"
    if not args.verify:
        return text, True
    from .check import verify_converted

    with Staging(output_dir, "verify") as scratch:
        lines = verify_converted(model, converted, args.download_dir, image, scratch.dir)
    step()
    for line in lines:
        c = line.comparison
        ir = f"{line.precision}{' dynamic' if line.ir == 'dynamic' else ''} {line.size[0]}x{line.size[1]}"
        text += (f"\n  verify {ir} {line.input_name:5s} {c.output}: max|err| {c.max_abs_error:.3g}, "
                 f"cosine {c.cosine:.6f} [{line.rule}] {'ok' if line.passed else 'FAIL'}")
    return text, all(line.passed for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    precisions = [p.strip().upper() for p in args.precisions.split(",") if p.strip()]
    if not precisions or any(p not in ("FP32", "FP16") for p in precisions):
        parser.error(f"--precisions: {args.precisions!r}; expected FP32 and/or FP16, comma-separated")
    precisions = list(dict.fromkeys(precisions))
    if args.jobs < 1:
        parser.error(f"--jobs: {args.jobs}; expected 1 or more")
    if args.verify and args.dry_run:
        parser.error("--verify checks the written IR; it cannot be combined with --dry_run")
    if args.verify_image is not None and not args.verify:
        parser.error("--verify_image is the photo --verify uses; add --verify")
    return guarded("omz_converter", lambda: _convert(args, precisions))


def _preflight(chosen: list[Model], args: argparse.Namespace, precisions: list[str]):
    """Everything checked before any work: each model's settings and checkpoint files, every output
    path, and for --verify the MXNet environment and the photo. Returns the decoded photo or None."""
    inputs = [args.verify_image] if args.verify_image else []
    for model in chosen:
        inputs += [*check_model(model, args.download_dir, None if args.dry_run else precisions),
                   model.directory / "model.yml", model.card_path]
    if not args.dry_run:
        for model in chosen:
            check_outputs(model, args.output_dir or args.download_dir, precisions, inputs)
    if not args.verify:
        return None
    from .verify import check_mxnet_python, load_verify_image

    check_mxnet_python()
    return load_verify_image(args.verify_image) if args.verify_image else None


def _convert(args: argparse.Namespace, precisions: list[str]) -> int:
    chosen = selected_models(args)
    if chosen is None:
        return 0
    image = _preflight(chosen, args, precisions)
    if not args.dry_run:
        sweep_stale_temps(args.output_dir or args.download_dir)  # what a run killed with -9 left
    if args.dry_run:
        steps = sum(build_steps(m) for m in chosen)
    else:
        steps = sum(conversion_steps(precisions, m.conversion.dynamic_input) + (VERIFY_STEPS if args.verify else 0)
                    for m in chosen)
    bar = tqdm(total=steps, desc=f"converting {len(chosen)} model(s)", unit="step", file=sys.stderr,
               disable=None, dynamic_ncols=True)
    failures = []
    # not `with`: leaving that block joins the workers, which would hold up a SIGINT/SIGTERM exit
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        futures = [(m, pool.submit(_one, m, args, precisions, image, lambda: bar.update(1))) for m in chosen]
        for model, future in futures:
            try:
                text, ok = future.result()
            except ConvertError as exc:
                failures.append(f"omz_converter: error: {' '.join(str(exc).split())}")
                continue
            tqdm.write(text, file=sys.stdout)
            if not ok:
                failures.append(f"omz_converter: error: {model.name}: verification against MXNet failed")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    bar.close()
    for line in failures:
        print(line, file=sys.stderr)
    return 0 if not failures else (1 if all("verification" in f for f in failures) else 2)


def entry() -> None:
    """The omz_converter console script."""
    run_command("omz_converter", main)


if __name__ == "__main__":
    entry()
