"""The record written beside an INT8 IR: what was quantized how, and the accuracy it kept."""
from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from facezoo.evaluate.provenance import cpu, versions

from .calibration import Subsets
from .quantize import Outcome
from .recipe import Recipe


def build_record(model: str, precision: str, recipe: Recipe, mode: str, max_drop: float, subsets: Subsets,
                 outcome: Outcome, source: dict[str, str], started_utc: str, seconds: float) -> dict[str, Any]:
    """The record as a JSON-ready dict."""
    d = subsets.found.definition
    return {
        "model": model, "precision": precision, "mode": mode, "recipe": str(recipe.path),
        "source_ir": source,
        "metric": recipe.metric, "dataset": d.name, "dataset_root": str(subsets.found.root.absolute()),
        "validation": {"items": subsets.validation_size, "unit": "images" if d.type == "wider" else "pairs",
                       "images": len(subsets.validation_images)},
        "calibration": {"images": len(subsets.calibration), "image_list_sha256": subsets.calibration_sha256},
        "fp32_metric": round(outcome.fp32_metric, 6), "int8_metric": round(outcome.int8_metric, 6),
        "drop": round(outcome.drop, 6), "max_drop": max_drop, "within_max_drop": outcome.drop <= max_drop + 1e-12,
        "preset": recipe.preset,
        "ignored_scope": {"names": list(recipe.ignored_scope.names), "types": list(recipe.ignored_scope.types),
                          "patterns": list(recipe.ignored_scope.patterns), "first": recipe.ignored_scope.first,
                          "last": recipe.ignored_scope.last},
        "kept_in_float": outcome.kept_float, "reverted_by_accuracy_control": outcome.reverted,
        "versions": {**versions(), "nncf": metadata.version("nncf")}, "cpu": cpu(),
        "started_utc": started_utc, "seconds": round(seconds, 1),
    }


def record_json(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2) + "\n"


def record_markdown(record: dict[str, Any]) -> str:
    """The same, for people: a short markdown page."""
    v = record["versions"]
    kept = record["kept_in_float"]
    lines = [
        f"# {record['model']} {record['precision']}: quantization record", "",
        f"Quantized by omz_quantizer ({record['mode']}, preset {record['preset']}) from `{record['recipe']}`, "
        f"on {record['started_utc']} in {record['seconds']} s (NNCF {v['nncf']}, OpenVINO {v.get('openvino')}).", "",
        f"| metric on {record['validation']['items']} validation {record['validation']['unit']} of "
        f"{record['dataset']} | FP32 | INT8 | drop | max_drop |", "|---|---|---|---|---|",
        f"| {record['metric']} | {record['fp32_metric']:.4f} | {record['int8_metric']:.4f} | "
        f"{record['drop']:.4f} | {record['max_drop']} |", "",
        f"Calibration: {record['calibration']['images']} images other than the validation ones "
        f"(image list sha256 `{record['calibration']['image_list_sha256']}`).", "",
        f"Kept in float ({len(kept)}): " + (", ".join(f"`{k}`" for k in kept) if kept else "none") + ".",
    ]
    if record["reverted_by_accuracy_control"]:
        lines += ["", "Reverted by accuracy control: "
                  + ", ".join(f"`{k}`" for k in record["reverted_by_accuracy_control"]) + "."]
    return "\n".join(lines) + "\n"
