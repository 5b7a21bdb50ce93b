"""One accuracy_check run: check every input and output path first, find which dataset the root
holds, build the launcher, evaluate, and put the reports in place together."""
from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from facezoo.common.cli import on_interrupt
from facezoo.common.safeio import read_text_limited, regular_input

from .cluster_options import check_run as check_cluster_run, dask_runner, scaled_out
from .cache import InputCache, check_cache_dir
from .config import (KIND_WORDS, METRIC_DATASETS, AccuracyConfig, DatasetSpec, LauncherSpec, default_definitions,
                     load_accuracy_config, load_definitions)
from .dataset_root import FoundDataset, find_dataset
from .errors import EvaluateError
from .dataset_files import sha256_of
from .evaluator import evaluate
from .jobs import ModelRef, open_launcher
from .launchers.openvino import RECOGNITION_BATCH
from .pipeline import LocalExecutor
from .results import Evaluation, RunOptions
from .outputs import Output, Staging, check_outputs
from .provenance import cpu, versions
from .report import csv_text, json_text, load_plotting, write_html

DYNAMIC_SUFFIX = "-dynamic"  # omz_converter's <name>-dynamic.xml/.onnx: the model with open height and width
PRECISION = re.compile(r"FP(32|16)(-INT8)?")  # the converter's precision folder names
DEFAULT_PRECISION = "FP32"


def find_model_file(models: Path, name: str, framework: str, precision: str) -> Path:
    """The IR (.xml) or ONNX file of `name` under `models`: the converter's output root
    (public/<name>/...), a model folder, a precision folder, or the file itself."""
    models = Path(models)
    if models.exists() and not models.is_dir():
        return regular_input(models, "model file (-m)", EvaluateError)
    if not models.is_dir():
        raise EvaluateError(f"{models}: model folder or file (-m) not found")
    if framework == "openvino":
        candidates = [models / "public" / name / precision / f"{name}.xml", models / precision / f"{name}.xml",
                      models / f"{name}.xml"]
    else:
        candidates = [models / "public" / name / f"{name}.onnx", models / f"{name}.onnx",
                      models.parent / f"{name}.onnx"]
    for c in candidates:
        if c.exists() or c.is_symlink():
            return regular_input(c, "model file", EvaluateError)
    if framework == "openvino":
        other = sorted({p.name for base in (models / "public" / name, models) if base.is_dir()
                        for p in base.iterdir() if PRECISION.fullmatch(p.name) and (p / f"{name}.xml").exists()})
        if other:
            raise EvaluateError(f"{models}: no {precision} IR of {name} (there is {', '.join(other)}): pass "
                                f"--precision {other[0]}, or convert with omz_converter --precisions {precision}")
    raise EvaluateError(f"{models}: no {'IR' if framework == 'openvino' else 'ONNX'} file of {name} "
                        f"(looked for {', '.join(str(c) for c in candidates)})")


def _dataset_spec(config: AccuracyConfig, wanted: str | None, protocol: str | None = None) -> DatasetSpec:
    """The config's entry for --dataset (default: the first dataset) and --protocol (default: the
    dataset's first entry, its default protocol)."""
    name = wanted or config.datasets[0].name
    matching = [d for d in config.datasets if d.name == name]
    if not matching:
        raise EvaluateError(f"--dataset {wanted}: not a dataset of {config.path} (it has: "
                            f"{', '.join(dict.fromkeys(d.name for d in config.datasets))})")
    chosen = [d for d in matching if protocol in (None, d.protocol)]
    if not chosen:
        raise EvaluateError(f"--protocol {protocol}: not a protocol of {name} in {config.path} (it has: "
                            f"{', '.join(d.protocol for d in matching)})")
    return chosen[0]


def _sized_model_file(model_file: Path, spec: DatasetSpec) -> Path:
    """The model file a protocol runs: for one that scales each image (spec.scale_rule), the
    converter's `<name>-dynamic` file beside the fixed-size one (unless given itself)."""
    if spec.scale_rule is None or model_file.stem.endswith(DYNAMIC_SUFFIX):
        return model_file
    dynamic = model_file.with_name(model_file.stem + DYNAMIC_SUFFIX + model_file.suffix)
    if not dynamic.exists() and not dynamic.is_symlink():
        raise EvaluateError(f"{dynamic}: not found; --protocol {spec.protocol} feeds each image at its own size and "
                            f"needs the model with open height and width (omz_converter writes it for models "
                            f"with conversion.dynamic_input: true)")
    return regular_input(dynamic, "dynamic-size model file", EvaluateError)


def _launcher_spec(config: AccuracyConfig, wanted: str | None) -> LauncherSpec:
    launchers = [l for l in config.launchers if wanted in (None, l.framework)]
    if not launchers:
        raise EvaluateError(f"--launcher {wanted}: {config.path} configures no {wanted} launcher (it has: "
                            f"{', '.join(l.framework for l in config.launchers)})")
    return launchers[0]


def _stored_predictions(paths: list[Path]) -> tuple[tuple[Path, ...], Path | None]:
    """(files to read, file to write): several paths are shards to merge and must all exist; one
    path is read when it exists and written otherwise."""
    present = [p for p in paths if p.exists() or p.is_symlink()]
    if len(present) == len(paths):
        return tuple(regular_input(p, "stored predictions", EvaluateError) for p in paths), None
    if len(paths) == 1:
        return (), paths[0]
    missing = [p for p in paths if p not in present]
    raise EvaluateError(f"{missing[0]}: stored predictions shard not found ({len(missing)} of {len(paths)} "
                        f"missing); several paths are read and merged, so give existing shards only, "
                        f"or one new path to write")


def _precision(model_file: Path | None, framework: str, given: str | None) -> str | None:
    """The precision evaluated: the folder an IR file sits in, or --precision."""
    if model_file is None:
        return given
    if framework == "onnxruntime":
        return "FP32 (ONNX)"
    folder = model_file.parent.name
    if PRECISION.fullmatch(folder):
        if given and given != folder:
            raise EvaluateError(f"{model_file}: an {folder} IR, but --precision {given} was given")
        return folder
    return given or DEFAULT_PRECISION


def _dataset_files(found: FoundDataset) -> tuple[list[Path], list[Path]]:
    """(input files, input folders) of the dataset: outputs must not land on or in them."""
    d, root = found.definition, found.root
    files = [root / rel for rel in (d.annotation, d.pairs, d.landmarks, d.bin) if rel]
    folders = [root / rel for rel in (d.images, d.ground_truth) if rel]
    return files, folders


def _run_record(args: argparse.Namespace, config: AccuracyConfig, definitions_path: Path, found: FoundDataset,
                spec: DatasetSpec, precision: str | None, model_file: Path | None, launcher, hashes: dict) -> dict:
    """What was measured, with what, where: recorded with every result."""
    record = {
        "model": config.model, "precision": precision,
        "model_file": str(model_file.absolute()) if model_file else None,
        "model_file_sha256": hashes.get("model"),
        "weights_file": str(model_file.with_suffix(".bin").absolute()) if model_file and model_file.suffix == ".xml"
        else None,
        "weights_sha256": hashes.get("model weights"),
        "device": args.target_device, "inference_precision": getattr(launcher, "inference_precision", None),
        "dataset": found.definition.name, "dataset_root": str(found.root.absolute()),
        "dataset_images": found.images, "dataset_pairs": found.pairs, "subsample_size": args.subsample_size,
        "references": spec.name, "protocol": spec.protocol,
        "config": str(Path(args.config).absolute()), "definitions": str(Path(definitions_path).absolute()),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(), "cpu": cpu(),
    }
    return record


def run(args: argparse.Namespace, notify: Callable[[str], None] = print) -> Evaluation:
    """Evaluate as the command line says; the reports are in place before returning. Every input
    and output is checked before the model is compiled; `notify` gets the dataset found."""
    began = time.perf_counter()
    config = load_accuracy_config(args.config)
    definitions_path = Path(args.definitions or default_definitions())
    definitions = load_definitions(definitions_path)
    spec = _dataset_spec(config, args.dataset, args.protocol)
    if spec.name not in definitions:
        raise EvaluateError(f"dataset {spec.name!r} of {args.config} is not in the dataset definitions "
                            f"{definitions_path} ({', '.join(sorted(definitions))})")
    chosen = _launcher_spec(config, args.launcher)
    kind = definitions[spec.name].type
    if {METRIC_DATASETS[m.type] for m in spec.metrics} != {kind}:
        raise EvaluateError(f"{args.config}: dataset {spec.name} is {KIND_WORDS[kind]} in {definitions_path}; "
                            f"its metrics ({', '.join(m.type for m in spec.metrics)}) are not for it")
    found = find_dataset(definitions, spec.name, Path(args.source))
    size = found.pairs if found.pairs is not None else found.images
    if args.subsample_size and args.subsample_size > size:
        raise EvaluateError(f"--subsample_size {args.subsample_size}: {found.definition.name} in {found.root} has "
                            f"only {size:,} {'pairs' if found.pairs is not None else 'images'}")
    if found.definition.name != spec.name:  # the references were measured on another dataset
        spec = replace(spec, metrics=tuple(replace(m, reference=None, threshold=None) for m in spec.metrics))
    if args.submission_dir and found.definition.type != "wider":
        raise EvaluateError(f"--submission_dir: {found.definition.name} is an LFW dataset; only WIDER FACE has "
                            f"a submission format")
    read_predictions, write_predictions = _stored_predictions(list(args.stored_predictions))
    if args.models is None and not read_predictions:
        raise EvaluateError("give the converted model with -m (or existing --stored_predictions)")
    model_file = None
    hashes: dict[str, str] = {}
    inputs = [Path(args.config), definitions_path, *read_predictions]
    if args.models is not None:
        model_file = _sized_model_file(find_model_file(args.models, config.model, chosen.framework,
                                                       args.precision or DEFAULT_PRECISION), spec)
        inputs.append(model_file)
        if model_file.suffix == ".xml":
            inputs.append(regular_input(model_file.with_suffix(".bin"), "IR weights (.bin beside the .xml)",
                                        EvaluateError))
    precision = _precision(model_file, chosen.framework, args.precision)
    if precision and precision.endswith("-INT8") and found.definition.name == spec.name:  # INT8 references
        spec = replace(spec, metrics=tuple(replace(m, reference=m.int8_reference, threshold=m.int8_threshold)
                                           if m.int8_reference is not None else m for m in spec.metrics))
    if args.aligner_model:
        inputs += [regular_input(args.aligner_model, "--aligner_model IR", EvaluateError),
                   regular_input(Path(args.aligner_model).with_suffix(".bin"), "--aligner_model IR weights (.bin)",
                                 EvaluateError)]
    dataset_files, dataset_folders = _dataset_files(found)
    outputs = [Output(flag, Path(path), folder) for flag, path, folder in (
        ("--json_result", args.json_result, False), ("--csv_result", args.csv_result, False),
        ("--stored_predictions", write_predictions, False), ("--report", args.report, True),
        ("--submission_dir", args.submission_dir, True)) if path is not None]
    check_outputs(outputs, inputs + dataset_files, dataset_folders)
    check_cluster_run(args, bool(read_predictions), inputs + dataset_files, dataset_folders,
                      [o.path for o in outputs])
    if args.ship_images and args.aligner_model:
        raise EvaluateError("--ship_images ships the model and the images, not --aligner_model's detector; align the "
                            "faces first, or share the detector's folder with the workers and drop --ship_images")
    if args.ship_images and found.definition.bin:
        raise EvaluateError(f"--ship_images: {found.definition.name} is one .bin file, which every shard would need "
                            f"whole; put it on a filesystem the workers share and drop --ship_images")
    batch = _batch(args, chosen.framework, found.definition.type)
    if spec.scale_rule is not None and batch > 1:
        raise EvaluateError(f"--batch {batch}: --protocol {spec.protocol} feeds each image at its own size, and inputs "
                            f"of different sizes cannot share a request; use --batch 1")
    cache = None
    if args.cache_dir is not None and not read_predictions:
        if scaled_out(args):
            raise EvaluateError("--cache_dir: the input cache serves runs on this machine; a cluster's workers "
                                "decode their own shards (drop --cache_dir or the cluster options)")
        cache = InputCache(check_cache_dir(args.cache_dir, [*inputs, *dataset_files, *dataset_folders,
                                                            *(o.path for o in outputs)]))
    config_text = read_text_limited(args.config, 1 << 20, "accuracy config", EvaluateError)
    for name, path in (("model", model_file), ("model weights", model_file and model_file.with_suffix(".bin"))):
        if path is not None and path.exists():
            hashes[name] = sha256_of(path)
    if args.report:
        load_plotting()  # now, while this is the only thread (see load_plotting)
    launcher = model = None
    if model_file is not None and not read_predictions:
        model = ModelRef(model_file, chosen.framework, args.target_device, batch=batch)
        launcher = open_launcher(model)
    aligner = None
    if args.aligner_model:
        aligner = ModelRef(Path(args.aligner_model), "openvino", args.target_device)
        open_launcher(aligner)  # compiled now: a model OpenVINO cannot load is refused before inference
    record = _run_record(args, config, definitions_path, found, spec, precision, model_file, launcher, hashes)
    if launcher is not None and scaled_out(args):  # the launcher stays here for the model's input and outputs
        launcher = dask_runner(args, launcher, model,
                               {"model": config.model, "dataset": found.definition.name, "precision": precision,
                                "model_sha256": hashes.get("model"), "weights_sha256": hashes.get("model weights"),
                                "framework": chosen.framework,
                                "device": args.target_device}, notify)
        record["scale_out"] = launcher.summary
    elif launcher is not None and cache is not None:
        launcher = LocalExecutor(launcher, cache)
    record["batch"] = batch
    counted = f"{found.images:,} images" + (f", {found.pairs:,} pairs" if found.pairs is not None else "")
    notify(f"dataset {found.definition.name}: {counted} in {found.root}")
    if found.definition.name != record["references"]:
        notify(f"the config's references were measured on {record['references']}, not on "
               f"{found.definition.name}: metrics are reported without a verdict")
        record["references"] = None
    adapter = {**chosen.adapter.options, **spec.adapter}  # the protocol's options over the launcher's
    return _evaluate_and_write(args, Prepared(config, spec, found, adapter, launcher, aligner, hashes,
                                              record, read_predictions, write_predictions, config_text, began))


def _batch(args: argparse.Namespace, framework: str, kind: str) -> int:
    """Images per inference request: --batch, or by default the measured best for recognition
    (many small faces) and 1 for detection."""
    if args.batch is not None and args.batch > 1 and framework != "openvino":
        raise EvaluateError(f"--batch {args.batch}: the {framework} launcher runs one image per request; "
                            f"--batch applies to openvino")
    if args.batch is not None:
        return args.batch
    return RECOGNITION_BATCH if kind == "lfw" and framework == "openvino" else 1


@dataclass(frozen=True)
class Prepared:
    """Everything checked and built before inference."""

    config: AccuracyConfig
    spec: DatasetSpec
    found: FoundDataset
    adapter: dict
    launcher: Any
    aligner: Any
    hashes: dict[str, str]
    record: dict[str, Any]
    read_predictions: tuple[Path, ...]
    write_predictions: Path | None
    config_text: str
    began: float


def _evaluate_and_write(args: argparse.Namespace, p: Prepared) -> Evaluation:
    """Evaluate with every output staged beside its target; all are put in place together at the
    end, or removed on an error or interrupt."""
    staging = Staging()
    bar = None
    try:
        stored = p.read_predictions or ((staging.file(p.write_predictions),) if p.write_predictions else ())
        options = RunOptions(p.found.root, args.subsample_size, args.skip_broken, args.strict, stored,
                             staging.folder(args.submission_dir) if args.submission_dir else None,
                             max_image_pixels=args.max_image_pixels)
        if not (args.no_progress or p.read_predictions):
            from tqdm import tqdm
            bar = tqdm(desc=f"{p.config.model} on {p.found.definition.name}", unit="img", leave=False)
            forget = on_interrupt(bar.close)
        result = evaluate(p.config, p.spec, p.found.definition, p.launcher, p.adapter, options, p.hashes, bar,
                          p.aligner)
        if bar is not None:
            bar.close()
            forget()
        p.record["images_evaluated"] = result.images
        cache = getattr(p.launcher, "cache", None)
        if cache is not None:
            p.record["input_cache"] = cache.summary()
            cache.close()
        p.record["wall_s"] = round(time.perf_counter() - p.began, 3)
        result.run = p.record
        if args.json_result:
            staging.text(args.json_result, json_text(result))
        if args.csv_result:
            staging.text(args.csv_result, csv_text(result))
        if args.report:
            write_html(staging.folder(args.report), result, p.config_text)
        staging.commit()
    except BaseException:
        staging.discard()
        raise
    return result
