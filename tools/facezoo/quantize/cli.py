"""omz_quantizer: INT8 IRs of registry models (<out>/public/<name>/FP32-INT8/<name>.xml) with NNCF,
each with a record of the accuracy it kept on the model's own metric."""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from facezoo.common.cli import ArgumentParser, guarded, run_command
from facezoo.common.safeio import check_output_dir, check_output_file, regular_input, sweep_stale_temps
from facezoo.download.cli import bounded_number
from facezoo.evaluate.config import default_definitions, load_accuracy_config, load_definitions
from facezoo.evaluate.errors import EvaluateError
from facezoo.registry import Model
from facezoo.registry.arguments import add_model_arguments, path_argument, selected_models

from .calibration import Subsets, locate_dataset, make_subsets
from .errors import QuantizeError
from .recipe import RECIPE_FILE, Recipe, check_against_config, dataset_spec, load_recipe

PRECISIONS = ("FP32-INT8", "FP16-INT8")
MAX_SUBSET = 100_000


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="omz_quantizer", description="Quantize converted registry models to INT8 with "
                            "NNCF, the accuracy drop measured by accuracy_check's evaluator and bounded.")
    add_model_arguments(parser)
    parser.add_argument("-d", "--download_dir", type=path_argument, default=Path("."),
                        help="where omz_downloader put the checkpoints (converted first when the FP32 IR is missing)")
    parser.add_argument("-o", "--output_dir", type=path_argument,
                        help="root of the IR layout: the FP32 IR is read from and the INT8 IR written to "
                             "<output_dir>/public/<name>/ (default: --download_dir)")
    parser.add_argument("--precisions", default="FP32-INT8",
                        help="comma list of FP32-INT8 and FP16-INT8 (OMZ's folder names; FP16-INT8 is saved with "
                             "FP16 compression, which OpenVINO does not apply to an INT8 model's float constants, so "
                             "both hold the same IR today); default FP32-INT8")
    parser.add_argument("--dataset_dir", type=path_argument, metavar="DIR",
                        help="the model's accuracy dataset, or a folder whose subfolders hold datasets (as "
                             "accuracy_check -s); needed unless --dry_run")
    parser.add_argument("--max_drop", type=bounded_number(0, 0.5),
                        help="largest accepted drop of the recipe's metric, absolute, 0..0.5 (default: the "
                             "model's quantization.yml)")
    parser.add_argument("--subset_size", type=bounded_number(1, MAX_SUBSET, integer=True),
                        help=f"calibration images, 1..{MAX_SUBSET:,} (default: the model's quantization.yml)")
    parser.add_argument("--mode", choices=("ptq", "accuracy_control"),
                        help="plain post-training quantization or accuracy control (default: the recipe's)")
    parser.add_argument("--dry_run", action="store_true",
                        help="check the recipe, the FP32 IR or checkpoint, the dataset and the outputs; print "
                             "the plan; write nothing")
    return parser


@dataclass(frozen=True)
class Plan:
    """One model's run, every input checked."""

    model: Model
    recipe: Recipe
    config: object  # AccuracyConfig
    xml: Path  # the FP32 IR (may not exist yet: made by the converter)
    convert_first: bool
    subsets: Subsets | None
    mode: str
    max_drop: float
    outputs: dict[str, Path]  # precision -> INT8 .xml


def _fp32_ir(model: Model, args: argparse.Namespace, output_dir: Path) -> tuple[Path, bool]:
    """The FP32 IR to quantize and whether the converter must make it first."""
    for root in dict.fromkeys([output_dir, args.download_dir]):
        xml = root / model.subdirectory / "FP32" / f"{model.name}.xml"
        if xml.exists() or xml.is_symlink():
            regular_input(xml, "FP32 IR (.xml)", QuantizeError)
            regular_input(xml.with_suffix(".bin"), "FP32 IR weights (.bin beside the .xml)", QuantizeError)
            return xml, False
    from facezoo.convert.convert import check_model
    from facezoo.convert.errors import ConvertError

    xml = output_dir / model.subdirectory / "FP32" / f"{model.name}.xml"
    try:
        check_model(model, args.download_dir, ["FP32"])
    except ConvertError as exc:
        raise QuantizeError(f"{model.name}: no FP32 IR at {xml} and no checkpoint to convert ({exc})") from None
    return xml, True


def _plan(model: Model, args: argparse.Namespace, precisions: list[str], output_dir: Path) -> Plan:
    recipe = load_recipe(model.directory / RECIPE_FILE)
    try:
        config = load_accuracy_config(model.accuracy_config_path)
        definitions = load_definitions(default_definitions())
    except EvaluateError as exc:
        raise QuantizeError(str(exc)) from None
    check_against_config(recipe, config)
    xml, convert_first = _fp32_ir(model, args, output_dir)
    subsets = None
    if args.dataset_dir is not None:
        spec = dataset_spec(recipe, config)
        found = locate_dataset(definitions, spec.name, args.dataset_dir)
        subsets = make_subsets(found, recipe.validation_size, args.subset_size or recipe.subset_size)
    elif not args.dry_run:
        raise QuantizeError(f"{model.name}: give --dataset_dir, the folder holding its "
                            f"{dataset_spec(recipe, config).name} dataset (calibration and validation images)")
    target = output_dir / model.subdirectory
    outputs = {p: target / p / f"{model.name}.xml" for p in precisions}
    inputs = [xml, xml.with_suffix(".bin"), recipe.path, config.path]
    check_output_dir(output_dir, "-o/--output_dir", error=QuantizeError)
    parts = target.relative_to(output_dir).parts
    for folder in [output_dir.joinpath(*parts[:k]) for k in range(1, len(parts) + 1)]:
        check_output_dir(folder, "output folder", error=QuantizeError)
    for out in outputs.values():
        check_output_dir(out.parent, "INT8 output folder", inputs, QuantizeError)
    for out in outputs.values():
        for path in _files(out):
            if path.parent.is_dir():
                check_output_file(path, "output file", inputs, QuantizeError)
    return Plan(model, recipe, config, xml, convert_first, subsets, args.mode or recipe.mode,
                recipe.max_drop if args.max_drop is None else args.max_drop, outputs)


def _files(xml: Path) -> list[Path]:
    """What one INT8 precision writes: the IR and its record (JSON and markdown)."""
    return [xml, xml.with_suffix(".bin"), xml.with_suffix(".quantization.json"), xml.with_suffix(".quantization.md")]


def _kept_by_recipe(recipe: Recipe) -> str:
    scope = recipe.ignored_scope
    kept = [*scope.names, *(f"type {t}" for t in scope.types), *(f"/{p}/" for p in scope.patterns)]
    kept += [f"the {end} {n} convolution(s)" for end, n in (("first", scope.first), ("last", scope.last)) if n]
    return ", ".join(kept) or "nothing"


def _describe(plan: Plan) -> str:
    r, s = plan.recipe, plan.subsets
    lines = [f"========== {plan.model.name}: {plan.mode}, max_drop {plan.max_drop} on {r.metric}, preset {r.preset}",
             f"  FP32 IR: {plan.xml}" + (" (converted first from the checkpoint)" if plan.convert_first else ""),
             f"  kept in float by the recipe: {_kept_by_recipe(r)}"]
    if s is not None:
        unit = "images" if s.found.definition.type == "wider" else "pairs"
        lines.append(f"  dataset {s.found.definition.name} in {s.found.root}: validation {s.validation_size} {unit}, "
                     f"calibration {len(s.calibration)} other images (sha256 {s.calibration_sha256[:12]})")
    lines += [f"  output:  {x}" for x in plan.outputs.values()]
    return "\n".join(lines)


def _run(plan: Plan, args: argparse.Namespace, output_dir: Path) -> bool:
    """Quantize one planned model; True when the drop is within max_drop (outputs in place)."""
    from .run import quantize_and_write

    return quantize_and_write(plan, args.download_dir, output_dir,
                              lambda text: print(f"  {plan.model.name}: {text}", flush=True))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    precisions = [p.strip().upper() for p in args.precisions.split(",") if p.strip()]
    if not precisions or any(p not in PRECISIONS for p in precisions):
        parser.error(f"--precisions: {args.precisions!r}; expected FP32-INT8 and/or FP16-INT8, comma-separated")
    return guarded("omz_quantizer", lambda: _quantize(args, list(dict.fromkeys(precisions))))


def _quantize(args: argparse.Namespace, precisions: list[str]) -> int:
    chosen = selected_models(args)
    if chosen is None:
        return 0
    output_dir = args.output_dir or args.download_dir
    plans = [_plan(m, args, precisions, output_dir) for m in chosen]  # every input checked before any work
    failed = []
    if not args.dry_run:
        sweep_stale_temps(output_dir)  # what a run killed with -9 left
    for plan in plans:
        print(_describe(plan), flush=True)
        if args.dry_run:
            continue
        began = time.perf_counter()
        if not _run(plan, args, output_dir):
            failed.append(plan.model.name)
        print(f"  {plan.model.name}: done in {time.perf_counter() - began:.1f} s", flush=True)
    return 1 if failed else 0


def entry() -> None:
    """The omz_quantizer console script."""
    run_command("omz_quantizer", main)


if __name__ == "__main__":
    entry()
