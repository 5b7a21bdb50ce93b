"""quantization.yml: a model's INT8 recipe, read with the registry's hardened YAML reader and
validated against quantization.schema.json."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from facezoo.evaluate.config import AccuracyConfig
from facezoo.registry.errors import RegistryError
from facezoo.registry.loader import validate_document
from facezoo.registry.yamlsource import load_yaml_limited

from .errors import QuantizeError

SCHEMA = Path(__file__).with_name("quantization.schema.json")
RECIPE_FILE = "quantization.yml"


@dataclass(frozen=True)
class IgnoredScope:
    """Operations that stay in float: by name, type or regular expression on the name, and the
    first / last convolutions or matrix products of the graph (auto-generated names, such as those
    of convolutions with a folded BatchNorm, change from one conversion to the next)."""

    names: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    first: int = 0
    last: int = 0


@dataclass(frozen=True)
class Recipe:
    """How a model is quantized and what accuracy drop it may show."""

    path: Path
    mode: str  # "ptq" or "accuracy_control"
    metric: str  # a metric name of the model's accuracy-check.yml: the validation metric
    max_drop: float
    subset_size: int  # calibration images
    validation_size: int  # validation images (WIDER) or pairs (LFW), the first of the dataset
    dataset: str | None = None  # a dataset entry of accuracy-check.yml (default: its first)
    preset: str = "performance"
    max_iterations: int = 30  # accuracy control: at most this many groups of layers reverted
    ignored_scope: IgnoredScope = field(default_factory=IgnoredScope)


def load_recipe(path: Path) -> Recipe:
    """Read and validate a quantization.yml."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise QuantizeError(f"{path}: no quantization recipe for this model")
    data, lines = load_yaml_limited(path, "quantization recipe", QuantizeError)
    try:
        validate_document(data, json.loads(SCHEMA.read_text(encoding="utf-8")), path, lines)
    except RegistryError as exc:
        raise QuantizeError(str(exc)) from None
    scope = data.get("ignored_scope", {})
    for i, pattern in enumerate(scope.get("patterns", [])):
        try:
            re.compile(pattern)
        except re.error as exc:
            line = lines.get(("ignored_scope", "patterns", i), 1)
            raise QuantizeError(f"{path}:{line}: ignored_scope.patterns[{i}]: not a regular expression "
                                f"({exc})") from None
    return Recipe(path, data["mode"], data["metric"], float(data["max_drop"]), data["subset_size"],
                  data["validation_size"], data.get("dataset"), data.get("preset", "performance"),
                  data.get("max_iterations", 30),
                  IgnoredScope(*(tuple(scope.get(k, ())) for k in ("names", "types", "patterns")),
                               scope.get("first", 0), scope.get("last", 0)))


def check_against_config(recipe: Recipe, config: AccuracyConfig) -> None:
    """The recipe's dataset and metric must be ones of the model's accuracy-check.yml."""
    names = [d.name for d in config.datasets]
    if recipe.dataset is not None and recipe.dataset not in names:
        raise QuantizeError(f"{recipe.path}: dataset {recipe.dataset!r} is not a dataset of {config.path} "
                            f"(it has: {', '.join(names)})")
    spec = dataset_spec(recipe, config)
    metrics = [m.name for m in spec.metrics]
    if recipe.metric not in metrics:
        raise QuantizeError(f"{recipe.path}: metric {recipe.metric!r} is not a metric of {spec.name} in "
                            f"{config.path} (it has: {', '.join(metrics)})")


def dataset_spec(recipe: Recipe, config: AccuracyConfig):
    """The accuracy config's dataset entry the recipe validates on."""
    return next(d for d in config.datasets if recipe.dataset in (None, d.name))
