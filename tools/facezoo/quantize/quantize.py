"""NNCF on a converted FP32 IR: plain post-training quantization, or quantization with accuracy
control whose validation function is facezoo's own evaluator computing the recipe's metric on the
validation subset."""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facezoo.common.safeio import signals_deferred
from facezoo.evaluate.config import AccuracyConfig, DatasetSpec
from facezoo.evaluate.evaluator import evaluate
from facezoo.evaluate.results import RunOptions
from facezoo.evaluate.launchers.base import InputInfo
from facezoo.evaluate.launchers.openvino import OpenVINOLauncher

from .calibration import Subsets, load_blob
from .errors import QuantizeError
from .recipe import Recipe

with signals_deferred():  # a signal inside a C-extension import would become an ImportError
    import nncf
    import openvino as ov

QUANTIZABLE = {"Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData",
               "GroupConvolutionBackpropData"}
PASS_THROUGH = {"Convert", "Reshape", "Squeeze", "Unsqueeze", "Transpose"}  # a quantized input stays one through these
F32 = {"INFERENCE_PRECISION_HINT": "f32"}  # as accuracy_check: results must not depend on bf16 CPUs


@dataclass
class Outcome:
    """A quantized model and what was measured on the way."""

    model: Any  # ov.Model
    fp32_metric: float
    int8_metric: float
    kept_float: list[str]  # quantizable operations left in float (ignored scope and reverted)
    reverted: list[str] = field(default_factory=list)  # reverted by accuracy control

    @property
    def drop(self) -> float:
        return self.fp32_metric - self.int8_metric


class CompiledLauncher(OpenVINOLauncher):
    """facezoo's OpenVINO launcher around a model NNCF compiled; it keeps each item's outputs
    (the raw values NNCF ranks quantizers by)."""

    def __init__(self, compiled: Any):  # not super().__init__: that one compiles from a file
        self.compiled = compiled
        port = compiled.inputs[0]
        self.input = InputInfo(port.any_name, tuple(int(d) for d in port.shape))
        self.outputs = [o.any_name for o in compiled.outputs]
        self.requests = 2 * int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.inference_precision = "device default"
        self.description = f"openvino {ov.__version__} (model compiled by NNCF)"
        self.seen: dict[Any, list[np.ndarray]] = {}

    def infer(self, items: Iterable[tuple[Any, np.ndarray]], handle) -> None:
        def keep(key, outputs):
            self.seen[key] = [outputs[n] for n in self.outputs]
            handle(key, outputs)
        super().infer(items, keep)


class Validation:
    """The recipe's metric of a compiled model on the validation subset, by the evaluator."""

    def __init__(self, config: AccuracyConfig, spec: DatasetSpec, adapter: dict, subsets: Subsets, metric: str):
        self.config, self.spec, self.adapter, self.subsets, self.metric = config, spec, adapter, subsets, metric
        self.kind = subsets.found.definition.type

    def metric_of(self, compiled: Any) -> tuple[float, CompiledLauncher]:
        launcher = CompiledLauncher(compiled)
        options = RunOptions(self.subsets.found.root, subsample_size=self.subsets.validation_size)
        result = evaluate(self.config, self.spec, self.subsets.found.definition, launcher, self.adapter, options, {})
        return next(m.value for m in result.metrics if m.name == self.metric), launcher

    def __call__(self, compiled: Any, items: Iterable[str]) -> tuple[float, list[list[np.ndarray]]]:
        """NNCF's validation_fn: (metric, each item's raw outputs). NNCF calls it on the whole
        validation subset, and once on its first item to learn what it returns: that call gets
        the item's outputs and NaN for the metric (a metric needs the whole subset)."""
        items = list(items)
        if items != list(self.subsets.validation_images):
            launcher = CompiledLauncher(compiled)
            shape = launcher.input.shape
            launcher.infer(((i, load_blob(self.subsets, i, shape)) for i in items), lambda k, o: None)
            return math.nan, [launcher.seen[i] for i in items]
        value, launcher = self.metric_of(compiled)
        key = (lambda i: i) if self.kind == "wider" else (lambda i: (i, False))
        return value, [launcher.seen[key(i)] for i in items]


def kept_float(model: Any) -> list[str]:
    """Quantizable operations (convolutions, matrix products) whose data input is not quantized
    (a FakeQuantize, possibly behind reshapes)."""
    kept = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in QUANTIZABLE:
            continue
        source = op.input_value(0).get_node()
        while source.get_type_name() in PASS_THROUGH:
            source = source.input_value(0).get_node()
        if source.get_type_name() != "FakeQuantize":
            kept.append(op.get_friendly_name())
    return kept


class _Reverted(logging.Handler):
    """Collects the operation names NNCF's accuracy control reports reverting."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if re.match(r"Reverted \d+ operations", message):
            self.names += [line.strip() for line in message.splitlines()[1:] if line.strip()]


@contextmanager
def _nncf_log() -> Iterator[_Reverted]:
    """NNCF's own INFO lines silenced (its warnings still show); reverted operations collected."""
    logger = logging.getLogger("nncf")
    handlers = [(h, h.level) for h in logger.handlers]
    for h, _ in handlers:
        h.setLevel(logging.WARNING)
    collector = _Reverted()
    logger.addHandler(collector)
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
        for h, level in handlers:
            h.setLevel(level)


def ignored_names(recipe: Recipe, model: Any) -> list[str]:
    """The recipe's ignored names, plus the names of its `first` and `last` quantizable operations."""
    scope = recipe.ignored_scope
    ops = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() in QUANTIZABLE]
    chosen = ops[:scope.first] + (ops[-scope.last:] if scope.last else [])
    return list(dict.fromkeys([*scope.names, *chosen]))


def _ignored_scope(recipe: Recipe, model: Any) -> Any:
    scope = recipe.ignored_scope
    return nncf.IgnoredScope(names=ignored_names(recipe, model), patterns=list(scope.patterns),
                             types=list(scope.types))


def quantize(model: Any, recipe: Recipe, subsets: Subsets, validation: Validation, max_drop: float,
             mode: str, step: Callable[[str], None] = lambda _: None) -> Outcome:
    """INT8 `model` (an ov.Model of the FP32 IR) as the recipe says; `mode` and `max_drop` as the
    command line may have overridden them. `step` hears what is being done."""
    shape = tuple(int(d) for d in model.inputs[0].shape)
    calibration = nncf.Dataset(list(subsets.calibration), lambda path: load_blob(subsets, path, shape))
    core = ov.Core()
    step("measuring the FP32 model")
    fp32_metric, _ = validation.metric_of(core.compile_model(model, "CPU", F32))
    preset = nncf.QuantizationPreset.MIXED if recipe.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    common = {"preset": preset, "subset_size": len(subsets.calibration),
              "ignored_scope": _ignored_scope(recipe, model)}
    step(f"quantizing ({mode}, {len(subsets.calibration)} calibration images)")
    try:
        with _nncf_log() as log:
            if mode == "ptq":
                quantized = nncf.quantize(model, calibration, **common)
            else:
                from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

                items = nncf.Dataset(list(subsets.validation_images), lambda path: load_blob(subsets, path, shape))
                restorer = AdvancedAccuracyRestorerParameters(max_num_iterations=recipe.max_iterations,
                                                              num_ranking_workers=1)
                quantized = nncf.quantize_with_accuracy_control(
                    model, calibration, items, validation, max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE,
                    advanced_accuracy_restorer_parameters=restorer, **common)
    except nncf.ValidationError as exc:  # an ignored_scope entry matching nothing
        raise QuantizeError(f"{recipe.path}: ignored_scope: {' '.join(str(exc).split())}") from None
    step("measuring the INT8 model")
    int8_metric, _ = validation.metric_of(core.compile_model(quantized, "CPU", F32))
    return Outcome(quantized, fp32_metric, int8_metric, kept_float(quantized), log.names)
