"""The converter's --verify: each produced IR against MXNet on fixed inputs, with the issue's tolerances."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facezoo.registry import Model

from .convert import ConvertedModel, source_paths
from .verify import Comparison, compare, converted_input, fixed_inputs, mxnet_outputs, original_input, run_ir

FP16_SCORE_TOLERANCE = 2e-2  # relative to the largest reference score
FP16_MIN_COSINE = 0.999


@dataclass(frozen=True)
class VerifyLine:
    """One output of one precision on one input, and whether it passes."""

    precision: str
    input_name: str
    comparison: Comparison
    passed: bool
    rule: str


def verify_converted(model: Model, converted: ConvertedModel, download_dir: Path,
                     image: np.ndarray | None = None, workdir: Path | None = None) -> list[VerifyLine]:
    """Compare every IR with MXNet on noise (and on `image` when given); MXNet's inputs and outputs
    pass through `workdir` (a temporary folder when None)."""
    symbol, params = source_paths(model, download_dir)
    cases = [("noise", fixed_inputs(model))]
    if image is not None:
        cases.append(("image", fixed_inputs(model, image)))
    lines = []
    for label, raw in cases:
        reference = mxnet_outputs(model, symbol, params, original_input(model, raw), workdir)
        feed = {model.conversion.inputs[0].name: converted_input(model, raw)}
        for precision, xml in converted.ir_paths.items():
            for c in compare(run_ir(xml, feed), reference):
                if precision == "FP32":
                    lines.append(VerifyLine(precision, label, c, c.ok, "max|err| <= 1e-4 (max|ref| + 1)"))
                elif model.task_type == "face_recognition":
                    lines.append(VerifyLine(precision, label, c, c.cosine >= FP16_MIN_COSINE, "cosine >= 0.999"))
                elif "cls_prob" in c.output:
                    limit = FP16_SCORE_TOLERANCE * float(np.abs(reference[c.output]).max())
                    lines.append(VerifyLine(precision, label, c, c.max_abs_error <= limit,
                                            "max|err| <= 2e-2 max|ref|"))
                else:
                    lines.append(VerifyLine(precision, label, c, True, "reported only"))
    return lines
