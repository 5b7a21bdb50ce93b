"""Reading and validating models/: the only code that looks inside the registry."""
from __future__ import annotations

import fnmatch
import json
import os
import sys
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import jsonschema

from .errors import RegistryError
from .model import Conversion, InputSpec, Model, ModelFile, Source, UnpackArchive
from .yamlsource import format_path, line_of, load_yaml_with_lines

SCHEMA_PATH = Path(__file__).with_name("model.schema.json")


@lru_cache(maxsize=1)
def model_schema() -> dict[str, Any]:
    """The JSON Schema that every model.yml must satisfy."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def default_models_root() -> Path:
    """Where models/ is: $FACEZOO_MODELS, the source checkout, or the installed share/ copy."""
    env = os.environ.get("FACEZOO_MODELS")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3] / "models"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "facezoo" / "models"


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"unknown key {', '.join(repr(k) for k in extra)} (allowed: {', '.join(allowed)})"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    custom = error.schema.get("x-message")
    if custom:
        return f"{custom}, found {error.instance!r}"
    return error.message


def _error_location(error: jsonschema.ValidationError) -> tuple:
    at = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            at = at + (extra[0],)
    return at


def _validate_schema(data: Any, path: Path, lines: dict) -> None:
    validate_document(data, model_schema(), path, lines)


def validate_document(data: Any, schema: dict, path: Path, lines: dict) -> None:
    """Check a YAML document against a JSON Schema; the first problem becomes a one-line
    RegistryError naming the file, the line and the field."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    # report the first problem in the file; on one line, the most specific one
    error = min(errors, key=lambda e: (line_of(lines, _error_location(e)), -len(e.absolute_path)))
    at = _error_location(error)
    raise RegistryError(f"{path}:{line_of(lines, at)}: {format_path(tuple(error.absolute_path))}: "
                        f"{_schema_message(error)}")


def _check_relative(name: str, path: Path, lines: dict, at: tuple) -> None:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise RegistryError(f"{path}:{line_of(lines, at)}: {format_path(at)}: {name!r} escapes the model directory")


def _build(name: str, subdirectory: str, directory: Path, data: dict, path: Path, lines: dict) -> Model:
    files = []
    seen: dict[str, int] = {}
    for i, f in enumerate(data["files"]):
        _check_relative(f["name"], path, lines, ("files", i, "name"))
        if f["name"] in seen:
            raise RegistryError(f"{path}:{line_of(lines, ('files', i, 'name'))}: files[{i}].name: "
                                f"{f['name']!r} is listed twice (also files[{seen[f['name']]}])")
        seen[f["name"]] = i
        sources = tuple(Source("http", s) if isinstance(s, str) else Source("google_drive", s["id"])
                        for s in f["sources"])
        files.append(ModelFile(f["name"], f["size"], f["sha256"], sources))
    post = []
    for i, p in enumerate(data.get("postprocessing", [])):
        if p["file"] not in seen:
            raise RegistryError(f"{path}:{line_of(lines, ('postprocessing', i, 'file'))}: postprocessing[{i}].file: "
                                f"{p['file']!r} is not one of the files listed under 'files'")
        post.append(UnpackArchive(p["file"], p.get("format")))
    conversion = None
    if "conversion" in data:
        c = data["conversion"]
        for key in ("symbol", "params"):
            _check_relative(c[key], path, lines, ("conversion", key))
        conversion = Conversion(
            symbol=c["symbol"], params=c["params"],
            inputs=tuple(InputSpec(i["name"], tuple(i["shape"]), i["layout"], i["color_order"]) for i in c["inputs"]),
            reverse_input_channels=c.get("reverse_input_channels", False),
            mean_values=tuple(c["mean_values"]) if "mean_values" in c else None,
            scale_values=tuple(c["scale_values"]) if "scale_values" in c else None,
            outputs=tuple(c["outputs"]) if "outputs" in c else None,
            drop_outputs=tuple(c.get("drop_outputs", ())),
        )
    return Model(
        name=name, subdirectory=subdirectory, directory=directory,
        description=data["description"].strip(), task_type=data["task_type"], framework=data["framework"],
        license_url=data["license"], files=tuple(files), postprocessing=tuple(post), conversion=conversion,
        precisions=tuple(data.get("precisions", ("FP16", "FP32"))),
        original_unavailable=data["original_unavailable"].strip() if "original_unavailable" in data else None,
    )


def load_model(model_yml: Path, models_root: Path) -> Model:
    """Read and validate one model.yml; its directory name is the model's name."""
    data, lines = load_yaml_with_lines(model_yml)
    if not isinstance(data, dict):
        raise RegistryError(f"{model_yml}:1: expected a mapping at the top level")
    _validate_schema(data, model_yml, lines)
    directory = model_yml.parent
    name = directory.name
    model = _build(name, directory.relative_to(models_root).as_posix(), directory, data, model_yml, lines)
    if not model.card_path.is_file():
        raise RegistryError(f"{model_yml}: the model card {model.card_path.name} is missing beside it")
    return model


def load_registry(models_root: Path | None = None) -> list[Model]:
    """Every model under models_root, sorted by name; duplicate names are an error."""
    root = Path(models_root) if models_root is not None else default_models_root()
    if not root.is_dir():
        raise RegistryError(f"{root}: the models directory does not exist (set FACEZOO_MODELS)")
    models: dict[str, Model] = {}
    for yml in sorted(root.rglob("model.yml")):
        model = load_model(yml, root)
        if model.name in models:
            raise RegistryError(f"{yml}: duplicate model name {model.name!r} "
                                f"(also {models[model.name].directory / 'model.yml'})")
        models[model.name] = model
    return sorted(models.values(), key=lambda m: m.name)


def select_models(models: Iterable[Model], patterns: Iterable[str], origin: str = "--name") -> list[Model]:
    """Models matching names or shell globs, in registry order; a pattern matching nothing is an error."""
    models = list(models)
    chosen: dict[str, Model] = {}
    for pattern in patterns:
        hits = [m for m in models if fnmatch.fnmatchcase(m.name, pattern)]
        if not hits:
            raise RegistryError(f"{origin}: no model matches {pattern!r} (see --print_all)")
        for m in hits:
            chosen[m.name] = m
    return [m for m in models if m.name in chosen]


def read_model_list(list_file: Path) -> list[tuple[str, str]]:
    """Patterns from a --list file: one per line, '#' comments; returns (pattern, 'file:line') pairs."""
    try:
        text = Path(list_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{list_file}: cannot read: {exc}") from None
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if any(c.isspace() for c in line):
            raise RegistryError(f"{list_file}:{number}: expected one model name or glob per line, found {line!r}")
        out.append((line, f"{list_file}:{number}"))
    return out


def choose_models(models: list[Model], names: str | None = None, list_file: Path | None = None,
                  everything: bool = False) -> list[Model]:
    """The models a command line asks for: --name (comma list of globs), --list FILE or --all."""
    if everything:
        return list(models)
    if list_file is not None:
        chosen: dict[str, Model] = {}
        for pattern, origin in read_model_list(list_file):
            chosen.update((m.name, m) for m in select_models(models, [pattern], origin))
        return [m for m in models if m.name in chosen]
    patterns = [p.strip() for p in (names or "").split(",") if p.strip()]
    if not patterns:
        raise RegistryError("--name: expected at least one model name or glob")
    return select_models(models, patterns)
