"""accuracy_check's work: dataset + converted model -> stored predictions -> metrics vs references."""
from __future__ import annotations

import time
from typing import Any

from .config import DEFAULT_PROTOCOL, METRIC_DATASETS, AccuracyConfig, DatasetDefinition, DatasetSpec
from .errors import EvaluateError
from .jobs import Executor, ModelRef, Progress
from .launchers.base import Launcher
from .lfw_task import evaluate_lfw
from .pipeline import LocalExecutor
from .results import Evaluation, RunOptions
from .wider_task import evaluate_wider


def evaluate(config: AccuracyConfig, spec: DatasetSpec, definition: DatasetDefinition,
             runner: Launcher | Executor | None, adapter: dict[str, Any], options: RunOptions,
             model_hashes: dict[str, str], progress: Progress | None = None,
             aligner: ModelRef | None = None) -> Evaluation:
    """Run one dataset entry of a model's config, on an executor (or a launcher, run in this process)."""
    kinds = {METRIC_DATASETS[m.type] for m in spec.metrics}
    if kinds != {definition.type}:
        raise EvaluateError(f"{config.path}: dataset {spec.name!r} is a {definition.type} dataset; its metrics "
                            f"({', '.join(m.type for m in spec.metrics)}) are not")
    warnings: list[str] = []
    hashes = dict(model_hashes)
    timings: dict[str, float] = {}
    meta = {"model": config.model, "dataset": definition.name, "adapter": adapter, "resize": spec.resize,
            "subsample_size": options.subsample_size}
    if spec.protocol != DEFAULT_PROTOCOL:  # stored predictions of one protocol are not another's
        meta["protocol"] = spec.protocol
    if "model" in model_hashes:  # unknown when only stored predictions are given
        meta["model_sha256"] = model_hashes["model"]
    began = time.perf_counter()
    executor = runner if runner is None or hasattr(runner, "run") else LocalExecutor(runner)
    run = evaluate_wider if definition.type == "wider" else evaluate_lfw
    extra = {"aligner": aligner} if definition.type == "lfw" else {}
    images, metrics, curves, broken = run(executor, adapter, spec, definition, options, meta, progress,
                                          warnings, hashes, timings, **extra)
    timings["total_s"] = time.perf_counter() - began
    return Evaluation(config.model, definition.name, executor.description if executor else "stored predictions",
                      images, metrics, curves, timings, hashes, warnings, broken)
