"""accuracy-check.yml and dataset_definitions.yml, validated into frozen dataclasses."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facezoo.registry import RegistryError
from facezoo.registry.loader import validate_document
from facezoo.registry.yamlsource import load_yaml_limited

from .errors import EvaluateError
from .scaling import ScaleRule, parse_preprocessing

HERE = Path(__file__).resolve().parent
ADAPTER_OPTIONS = {"retinaface": {"score_threshold", "nms_threshold", "nms_per_stride", "nms_plus_one", "clip",
                                  "box_voting"},
                   "embedding": {"outputs", "flip"}}
METRIC_DATASETS = {"omz_ap64": "wider", "wider_official": "wider", "lfw_accuracy": "lfw", "tar_at_far": "lfw"}
ADAPTER_DATASETS = {"retinaface": "wider", "embedding": "lfw"}  # the kind of dataset each adapter's output fits
KIND_WORDS = {"wider": "a WIDER FACE detection dataset", "lfw": "an LFW verification dataset"}


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a dataset, with its reference value and allowed deviation."""

    type: str
    name: str
    setting: str | None = None
    min_height: float = 64.0
    max_height: float | None = None
    ignore_invalid: bool = True
    prefer_counted_faces: bool = False
    iou_threshold: float = 0.5
    multiple_matches_per_ignored: bool = True
    far: float = 1e-3
    protocol: str = "facezoo"  # lfw_accuracy / tar_at_far: facezoo, insightface or omz_subsets (metrics/verification.py)
    reference: float | None = None
    threshold: float | None = None
    int8_reference: float | None = None  # for INT8 IRs (FP32-INT8, FP16-INT8): omz_quantizer's result
    int8_threshold: float | None = None


@dataclass(frozen=True)
class AdapterSpec:
    """How raw outputs become predictions."""

    type: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LauncherSpec:
    framework: str
    adapter: AdapterSpec


DEFAULT_PROTOCOL = "default"  # a dataset entry without `protocol:`


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset entry of the model's config: which definition, preprocessing, metrics. Entries
    of one dataset differ by `protocol` (accuracy_check --protocol): each its own preprocessing,
    adapter options over the launcher's, and references."""

    name: str
    resize: int | None
    metrics: tuple[MetricSpec, ...]
    protocol: str = DEFAULT_PROTOCOL
    adapter: dict[str, Any] = field(default_factory=dict)
    scale_rule: ScaleRule | None = None  # each image at its own size (scaling.py); needs a dynamic-size model


@dataclass(frozen=True)
class AccuracyConfig:
    path: Path
    model: str
    launchers: tuple[LauncherSpec, ...]
    datasets: tuple[DatasetSpec, ...]


@dataclass(frozen=True)
class DatasetDefinition:
    """Where a dataset's files are, relative to the dataset root (-s)."""

    name: str
    type: str
    images: str = ""
    annotation: str | None = None
    annotation_sha256: str | None = None
    ground_truth: str | None = None
    split: str = "val"
    pairs: str | None = None
    pairs_sha256: str | None = None
    image_count: int | None = None  # pinned: the entry applies only to a root with this many images
    generate_pairs_folds: int | None = None
    alignment: str = "none"
    landmarks: str | None = None
    bin: str | None = None  # an insightface verification .bin (lfw type): images and pairs in one file
    description: str = ""


def _load(path: Path, schema_file: str, what: str) -> tuple[Any, dict]:
    """The YAML document at `path` (a regular file within the YAML limits: size, depth, aliases),
    validated against `schema_file`."""
    schema = json.loads((HERE / schema_file).read_text(encoding="utf-8"))
    data, lines = load_yaml_limited(Path(path), what, EvaluateError)
    try:
        validate_document(data, schema, Path(path), lines)
    except RegistryError as exc:
        raise EvaluateError(str(exc)) from None
    return data, lines


def load_accuracy_config(path: Path) -> AccuracyConfig:
    """Read and validate a model's accuracy-check.yml."""
    data, lines = _load(path, "accuracy_check.schema.json", "accuracy config")
    entry = data["models"][0]
    for i, launcher in enumerate(entry["launchers"]):
        adapter = launcher["adapter"]
        wrong = sorted(set(adapter) - {"type"} - ADAPTER_OPTIONS[adapter["type"]])
        if wrong:
            line = lines.get(("models", 0, "launchers", i, "adapter", wrong[0]), 1)
            raise EvaluateError(f"{path}:{line}: models[0].launchers[{i}].adapter.{wrong[0]}: not an option of the "
                                f"{adapter['type']} adapter (it has: {', '.join(sorted(ADAPTER_OPTIONS[adapter['type']]))})")
    launchers = tuple(
        LauncherSpec(l["framework"], AdapterSpec(l["adapter"]["type"],
                                                 {k: v for k, v in l["adapter"].items() if k != "type"}))
        for l in entry["launchers"])
    datasets = []
    for d, ds in enumerate(entry["datasets"]):
        line = lines.get(("models", 0, "datasets", d), 1)
        resize, rule = parse_preprocessing(ds.get("preprocessing", []),
                                           f"{path}:{line}: models[0].datasets[{d}].preprocessing")
        _check_protocol(ds, d, datasets, [l.adapter for l in launchers], f"{path}:{line}")
        metrics = []
        for m, spec in enumerate(ds["metrics"]):
            at = f"models[0].datasets[{d}].metrics[{m}]"
            line = lines.get(("models", 0, "datasets", d, "metrics", m), 1)
            if "protocol" in spec and METRIC_DATASETS[spec["type"]] != "lfw":
                raise EvaluateError(f"{path}:{line}: {at}.protocol: only verification metrics (lfw_accuracy, "
                                    f"tar_at_far) have a protocol")
            if spec["type"] == "tar_at_far" and spec.get("protocol") == "omz_subsets":
                raise EvaluateError(f"{path}:{line}: {at}.protocol: omz_subsets has no TAR@FAR (Open Model Zoo "
                                    f"reports pairwise accuracy only); use facezoo or insightface")
            if spec["type"] == "wider_official" and "setting" not in spec:
                raise EvaluateError(f"{path}:{line}: {at}.setting: wider_official needs easy, medium or hard")
            for prefix in ("", "int8_"):
                if (prefix + "reference" in spec) != (prefix + "threshold" in spec):
                    raise EvaluateError(f"{path}:{line}: {at}: give both {prefix}reference and {prefix}threshold, "
                                        f"or neither")
            qualifier = spec.get("setting") or (spec.get("protocol") if spec.get("protocol", "facezoo") != "facezoo" else None)
            name = spec.get("name") or (f"{spec['type']}_{qualifier}" if qualifier else spec["type"])
            metrics.append(MetricSpec(type=spec["type"], name=name, **{k: v for k, v in spec.items()
                                                                        if k not in ("type", "name")}))
        kinds = {METRIC_DATASETS[m.type] for m in metrics}
        if len(kinds) > 1:
            raise EvaluateError(f"{path}: models[0].datasets[{d}]: metrics mix WIDER and LFW metrics")
        for i, launcher in enumerate(launchers):
            if ADAPTER_DATASETS[launcher.adapter.type] not in kinds:
                line = lines.get(("models", 0, "datasets", d), 1)
                raise EvaluateError(f"{path}:{line}: models[0].datasets[{d}] ({ds['name']}) is "
                                    f"{KIND_WORDS[kinds.pop()]}; launchers[{i}]'s {launcher.adapter.type} adapter "
                                    f"does not fit it (expected "
                                    f"{KIND_WORDS[ADAPTER_DATASETS[launcher.adapter.type]].split(' ', 1)[1]})")
        datasets.append(DatasetSpec(ds["name"], resize, tuple(metrics), ds.get("protocol", DEFAULT_PROTOCOL),
                                    dict(ds.get("adapter", {})), rule))
    return AccuracyConfig(Path(path), entry["name"], launchers, tuple(datasets))


def _check_protocol(ds: dict, d: int, earlier: list[DatasetSpec], adapters: list[AdapterSpec], where: str) -> None:
    """A dataset entry's protocol name is new for its dataset, and the dataset's first entry is the
    default protocol (what --dataset alone and omz_quantizer take); its adapter options exist in
    every launcher's adapter and agree with each other."""
    protocol = ds.get("protocol", DEFAULT_PROTOCOL)
    same = [e.protocol for e in earlier if e.name == ds["name"]]
    if protocol in same:
        raise EvaluateError(f"{where}: models[0].datasets[{d}].protocol: {protocol!r} is already a protocol of "
                            f"{ds['name']}")
    if not same and protocol != DEFAULT_PROTOCOL:
        raise EvaluateError(f"{where}: models[0].datasets[{d}].protocol: the first entry of {ds['name']} is its "
                            f"default protocol (no protocol key); put {protocol!r} after it")
    options = ds.get("adapter", {})
    for adapter in adapters:
        wrong = sorted(set(options) - ADAPTER_OPTIONS[adapter.type])
        if wrong:
            raise EvaluateError(f"{where}: models[0].datasets[{d}].adapter.{wrong[0]}: not an option of the "
                                f"{adapter.type} adapter (it has: {', '.join(sorted(ADAPTER_OPTIONS[adapter.type]))})")
        merged = {**adapter.options, **options}
        if merged.get("box_voting") and merged.get("nms_per_stride"):
            raise EvaluateError(f"{where}: models[0].datasets[{d}]: box_voting merges all strides' candidates; "
                                f"it cannot follow nms_per_stride")


def default_definitions() -> Path:
    """accuracy_configs/dataset_definitions.yml of the checkout, or the installed copy."""
    env = os.environ.get("FACEZOO_DATASET_DEFINITIONS")
    if env:
        return Path(env)
    checkout = HERE.parents[2] / "accuracy_configs" / "dataset_definitions.yml"
    if checkout.is_file():
        return checkout
    return Path(sys.prefix) / "share" / "facezoo" / "accuracy_configs" / "dataset_definitions.yml"


def load_definitions(path: Path) -> dict[str, DatasetDefinition]:
    """Read and validate dataset_definitions.yml; names must be unique."""
    data, lines = _load(path, "dataset_definitions.schema.json", "dataset definitions")
    out: dict[str, DatasetDefinition] = {}
    for i, d in enumerate(data["datasets"]):
        if d["name"] in out:
            raise EvaluateError(f"{path}:{lines.get(('datasets', i), 1)}: datasets[{i}].name: "
                                f"{d['name']!r} is defined twice")
        needed = ("annotation",) if d["type"] == "wider" else ()
        for key in needed:
            if key not in d:
                raise EvaluateError(f"{path}:{lines.get(('datasets', i), 1)}: datasets[{i}].{key} is required "
                                    f"for {d['type']}")
        if d["type"] == "lfw" and sum(k in d for k in ("pairs", "generate_pairs_folds", "bin")) != 1:
            raise EvaluateError(f"{path}:{lines.get(('datasets', i), 1)}: datasets[{i}]: give pairs, "
                                f"generate_pairs_folds or bin (exactly one)")
        if "images" not in d and not (d["type"] == "lfw" and "bin" in d):
            raise EvaluateError(f"{path}:{lines.get(('datasets', i), 1)}: datasets[{i}].images is required "
                                f"(only an insightface .bin holds its own images)")
        out[d["name"]] = DatasetDefinition(**d)
    return out
