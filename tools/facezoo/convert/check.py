"""The converter's --verify: each produced IR against MXNet on fixed inputs, with the issue's tolerances."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from facezoo.registry import Model

from .convert import ConvertedModel, source_paths
from .verify import Comparison, compare, converted_input, fixed_inputs, mxnet_outputs, original_input, run_ir

FP16_SCORE_TOLERANCE = 2e-2  # relative to the largest reference score
FP16_MIN_COSINE = 0.999


@dataclass(frozen=True)
class VerifyLine:
    """One output of one IR (a precision, fixed-size or dynamic) on one input, and whether it passes."""

    precision: str
    input_name: str
    comparison: Comparison
    passed: bool
    rule: str
    ir: str  # "fixed", or "dynamic" for the <name>-dynamic IR
    size: tuple[int, int]  # the input's height and width


def second_size(height: int, width: int) -> tuple[int, int]:
    """Where a dynamic-size IR is verified besides the declared size: another aspect ratio, with
    sides that are not multiples of 32 (a feature pyramid's upsampled maps then need cropping)."""
    return height * 3 // 4 + 1, width + width // 4 + 3


def verify_converted(model: Model, converted: ConvertedModel, download_dir: Path,
                     image: np.ndarray | None = None, workdir: Path | None = None) -> list[VerifyLine]:
    """Compare every IR with MXNet on noise (and on `image` when given) at the declared input size;
    a dynamic-size IR also at `second_size`. MXNet's inputs and outputs pass through `workdir` (a
    temporary folder when None)."""
    symbol, params = source_paths(model, download_dir)
    declared = tuple(model.conversion.inputs[0].shape[2:4])
    sizes = [declared] + ([second_size(*declared)] if converted.dynamic_ir_paths else [])
    lines = []
    for size in sizes:
        irs = [("dynamic", p, xml) for p, xml in (converted.dynamic_ir_paths or {}).items()]
        if size == declared:
            irs = [("fixed", p, xml) for p, xml in converted.ir_paths.items()] + irs
        lines += _verify_size(model, symbol, params, irs, size, image, workdir)
    return lines


def _verify_size(model: Model, symbol: Path, params: Path, irs: list[tuple[str, str, Path]],
                 size: tuple[int, int], image: np.ndarray | None, workdir: Path | None) -> list[VerifyLine]:
    """`irs` ((kind, precision, .xml) each) against MXNet on inputs of one size."""
    cases = [("noise", fixed_inputs(model, size=size))]
    if image is not None:
        cases.append(("image", fixed_inputs(model, image, size=size)))
    lines = []
    for label, raw in cases:
        reference = mxnet_outputs(model, symbol, params, original_input(model, raw), workdir)
        feed = {model.conversion.inputs[0].name: converted_input(model, raw)}
        for kind, precision, xml in irs:
            line = partial(VerifyLine, ir=kind, size=size)
            for c in compare(run_ir(xml, feed), reference):
                if precision == "FP32":
                    lines.append(line(precision, label, c, c.ok, "max|err| <= 1e-4 (max|ref| + 1)"))
                elif model.task_type == "face_recognition":
                    lines.append(line(precision, label, c, c.cosine >= FP16_MIN_COSINE, "cosine >= 0.999"))
                elif "cls_prob" in c.output:
                    limit = FP16_SCORE_TOLERANCE * float(np.abs(reference[c.output]).max())
                    lines.append(line(precision, label, c, c.max_abs_error <= limit, "max|err| <= 2e-2 max|ref|"))
                else:
                    lines.append(line(precision, label, c, True, "reported only"))
    return lines
