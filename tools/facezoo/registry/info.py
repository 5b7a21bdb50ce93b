"""The registry described as plain JSON-ready dictionaries (what omz_info_dumper prints)."""
from __future__ import annotations

from typing import Any

from .model import Model


def describe_model(model: Model) -> dict[str, Any]:
    """A JSON-ready description of one model."""
    conv = model.conversion
    return {
        "name": model.name,
        "description": model.description,
        "framework": model.framework,
        "task_type": model.task_type,
        "license_url": model.license_url,
        "original_unavailable": model.original_unavailable,
        "subdirectory": model.subdirectory,
        "precisions": list(model.precisions),
        "model_card": str(model.card_path),
        "model_config": str(model.directory / "model.yml"),
        "accuracy_config": str(model.accuracy_config_path) if model.accuracy_config_path.is_file() else None,
        "files": [
            {"name": f.name, "size": f.size, "sha256": f.sha256,
             "sources": [s.describe() for s in f.sources]}
            for f in model.files
        ],
        "postprocessing": [{"$type": "unpack_archive", "file": p.file, "format": p.format}
                           for p in model.postprocessing],
        "input_info": [{"name": i.name, "shape": list(i.shape), "layout": i.layout, "color_order": i.color_order}
                       for i in conv.inputs] if conv else [],
    }
