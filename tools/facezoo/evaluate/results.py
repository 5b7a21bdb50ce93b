"""What an evaluation returns: metrics with their verdicts, curves, timings, and the run's options."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import MetricSpec
from .images import MAX_PIXELS


@dataclass
class MetricResult:
    """A metric's value and whether it lies within reference +- threshold (None: no reference)."""

    name: str
    type: str
    value: float
    reference: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.reference is None:
            return None
        return bool(abs(self.value - self.reference) <= self.threshold + 1e-12)


@dataclass
class Evaluation:
    """Everything a report shows."""

    model: str
    dataset: str
    launcher: str
    images: int
    metrics: list[MetricResult]
    curves: dict[str, Any]
    timings: dict[str, float]
    hashes: dict[str, str]
    warnings: list[str]
    broken: list[tuple[str, str]]
    run: dict[str, Any] = field(default_factory=dict)  # what was measured where: model file, precision, machine


@dataclass(frozen=True)
class RunOptions:
    """What the command line chose."""

    dataset_root: Path
    subsample_size: int | None = None
    skip_broken: bool = False
    strict: bool = False
    stored_predictions: tuple[Path, ...] = ()
    submission_dir: Path | None = None
    max_image_pixels: int = MAX_PIXELS


def with_reference(spec: MetricSpec, value: float, **details) -> MetricResult:
    return MetricResult(spec.name, spec.type, float(value), spec.reference, spec.threshold, details)
