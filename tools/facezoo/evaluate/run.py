"""One accuracy_check run: resolve files, build the launcher, evaluate, write the reports."""
from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from .config import AccuracyConfig, default_definitions, load_accuracy_config, load_definitions
from .errors import EvaluateError
from .evaluator import Evaluation, RunOptions, evaluate, sha256_of
from .report import write_csv, write_html, write_json


def find_model_file(models: Path, name: str, framework: str, precision: str) -> Path:
    """The IR (.xml) or ONNX file of `name` under `models`: the converter's output root
    (public/<name>/...), a model folder, a precision folder, or the file itself."""
    models = Path(models)
    if models.is_file():
        return models
    if framework == "openvino":
        candidates = [models / "public" / name / precision / f"{name}.xml", models / precision / f"{name}.xml",
                      models / f"{name}.xml"]
    else:
        candidates = [models / "public" / name / f"{name}.onnx", models / f"{name}.onnx",
                      models.parent / f"{name}.onnx"]
    for c in candidates:
        if c.is_file():
            return c
    raise EvaluateError(f"{models}: no {'IR' if framework == 'openvino' else 'ONNX'} file of {name} "
                        f"(looked for {', '.join(str(c) for c in candidates)})")


def _launcher(framework: str, path: Path, device: str):
    if framework == "openvino":
        from .launchers.openvino import OpenVINOLauncher
        return OpenVINOLauncher(path, device)
    from .launchers.onnxruntime import OnnxRuntimeLauncher
    return OnnxRuntimeLauncher(path)


def run(args: argparse.Namespace) -> Evaluation:
    """Evaluate as the command line says; reports are written before returning."""
    config: AccuracyConfig = load_accuracy_config(args.config)
    definitions = load_definitions(args.definitions or default_definitions())
    spec = config.datasets[0]
    if args.dataset:
        matching = [d for d in config.datasets if d.name == args.dataset]
        if not matching:
            raise EvaluateError(f"{args.config}: no dataset {args.dataset!r} (it has: "
                                f"{', '.join(d.name for d in config.datasets)})")
        spec = matching[0]
    if spec.name not in definitions:
        raise EvaluateError(f"dataset {spec.name!r} is not in the dataset definitions "
                            f"({', '.join(sorted(definitions))})")
    launchers = config.launchers
    if args.launcher:
        launchers = tuple(l for l in launchers if l.framework == args.launcher)
        if not launchers:
            raise EvaluateError(f"{args.config}: no {args.launcher} launcher configured")
    chosen = launchers[0]
    options = RunOptions(Path(args.source), args.subsample_size, args.skip_broken, args.strict,
                         tuple(args.stored_predictions), args.submission_dir,
                         max_image_pixels=args.max_image_pixels)
    reuse = bool(options.stored_predictions) and all(p.is_file() for p in options.stored_predictions)
    launcher, hashes = None, {}
    if args.models is None and not reuse:
        raise EvaluateError("give the converted model with -m (or existing --stored_predictions)")
    if args.models is not None:
        path = find_model_file(args.models, config.model, chosen.framework, args.precision)
        hashes["model"] = sha256_of(path)
        if path.suffix == ".xml":
            hashes["model weights"] = sha256_of(path.with_suffix(".bin"))
        if not reuse:
            launcher = _launcher(chosen.framework, path, args.target_device)
    aligner = None
    if args.aligner_model:
        from .launchers.openvino import OpenVINOLauncher
        aligner = OpenVINOLauncher(args.aligner_model, args.target_device)
    bar = None if args.no_progress or reuse else tqdm(desc=f"{config.model} on {spec.name}", unit="img",
                                                      leave=False)
    try:
        result = evaluate(config, spec, definitions[spec.name], launcher, chosen.adapter.options, options, hashes,
                          bar.update if bar is not None else None, aligner)
    finally:
        if bar is not None:
            bar.close()
    if args.json_result:
        write_json(args.json_result, result)
    if args.csv_result:
        write_csv(args.csv_result, result)
    if args.report:
        write_html(args.report, result, Path(args.config).read_text())
    return result
