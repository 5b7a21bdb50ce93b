"""Reading and validating models/: the only code that looks inside the registry."""
from __future__ import annotations

import fnmatch
import json
import os
import re
import stat
import sys
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterable
from urllib.parse import urlsplit

import jsonschema

from facezoo.common.safeio import file_kind, read_text_limited, regular_input

from .errors import RegistryError
from .model import Conversion, InputSpec, Model, ModelFile, Source, UnpackArchive
from .yamlsource import MAX_YAML_BYTES, clip, format_path, line_of, load_yaml_limited, short

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


_TYPE_NAMES = {"string": "text", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "null"}


def _kind(value: Any) -> str:
    """What a YAML value is, for 'found ...' in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {short(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return short(value)


def _expected_type(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_NAMES.get(t, t) for t in names)


def _schema_message(error: jsonschema.ValidationError) -> str:
    """One short line: what was expected and what was found (never the whole offending value)."""
    v, value, found = error.validator, error.validator_value, _kind(error.instance)
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"unknown key {', '.join(short(k, 40) for k in extra[:3])} (allowed: {', '.join(allowed)})"
    if v == "required":
        return error.message.replace("is a required property", "is required")
    custom = error.schema.get("x-message")
    if custom:
        return f"{custom}, found {found}"
    if v == "type":
        return f"expected {_expected_type(value)}, found {found}"
    if v in ("enum", "const"):
        options = value if v == "enum" else [value]
        return f"expected one of {', '.join(map(str, options))}, found {found}"
    if v == "minItems":
        return f"expected at least {value} item{'s' * (value != 1)}, found {found}"
    if v == "maxItems":
        return f"expected at most {value} items, found {found}"
    if v == "uniqueItems":
        return "expected no repeated items"
    if v == "minLength":
        return "expected non-empty text"
    if v == "maxLength":
        return f"expected at most {value} characters"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return f"expected a number {sign} {value}, found {found}"
    return clip(" ".join(error.message.split()))


def _error_location(error: jsonschema.ValidationError) -> tuple:
    at = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            at = at + (extra[0],)
    return at


def _validate_schema(data: Any, path: Path, lines: dict) -> None:
    validate_document(data, model_schema(), path, lines)


# JSON Schema counts 3.0 as an integer; here an integer must be written as one (booleans never are)
_StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)),
)


def validate_document(data: Any, schema: dict, path: Path, lines: dict) -> None:
    """Check a YAML document against a JSON Schema; the first problem becomes a one-line
    RegistryError naming the file, the line and the field."""
    validator = _StrictValidator(schema)
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    # report the first problem in the file; on one line, the most specific one
    error = min(errors, key=lambda e: (line_of(lines, _error_location(e)), -len(e.absolute_path)))
    at = _error_location(error)
    raise RegistryError(f"{path}:{line_of(lines, at)}: {format_path(at)}: {_schema_message(error)}")


def _check_relative(name: str, path: Path, lines: dict, at: tuple) -> None:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise RegistryError(f"{path}:{line_of(lines, at)}: {format_path(at)}: {name!r} escapes the model directory")


_SHA = re.compile(r"[0-9a-f]{40}")
PINNED_FORMS = ("raw.githubusercontent.com/<owner>/<repo>/<40-hex commit>/<path>, "
                "github.com/<owner>/<repo>/raw/<40-hex commit>/<path> or a release asset "
                "github.com/<owner>/<repo>/releases/download/<tag>/<file>")


def url_problem(url: str) -> str | None:
    """Why an http(s) URL cannot be used (unparsable, no host, a port out of range), else None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not 0..65535)
    except ValueError as exc:
        return f"not a usable URL ({exc}); expected http(s)://host/path"
    if not parts.hostname:
        return "the URL names no host; expected http(s)://host/path"
    return None


def github_url_problem(url: str) -> str | None:
    """Why a GitHub URL is not permanent (a branch or tag that can move, or an unknown form), or
    None when it is pinned to a commit, is a release asset, or is not a GitHub URL at all."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    segments = parts.path.split("/")[1:]
    if host == "raw.githubusercontent.com":
        if len(segments) >= 4 and all(segments) and _SHA.fullmatch(segments[2]):
            return None
        ref = segments[2] if len(segments) > 2 else ""
    elif host in ("github.com", "www.github.com"):
        if len(segments) >= 5 and all(segments) and segments[2] == "raw" and _SHA.fullmatch(segments[3]):
            return None
        if len(segments) == 6 and all(segments) and segments[2:4] == ["releases", "download"]:
            return None
        ref = segments[3] if len(segments) > 3 and segments[2] in ("raw", "blob") else ""
    elif host.endswith((".github.com", ".githubusercontent.com")):
        ref = ""
    else:
        return None
    what = f"points at the movable ref {short(ref, 50)}" if ref else "is not a pinned file URL"
    return f"GitHub URL {what}; expected {PINNED_FORMS}"


def _build(name: str, subdirectory: str, directory: Path, data: dict, path: Path, lines: dict) -> Model:
    problem = url_problem(data["license"])
    if problem:
        raise RegistryError(f"{path}:{line_of(lines, ('license',))}: license: {problem}")
    files = []
    seen: dict[str, int] = {}
    for i, f in enumerate(data["files"]):
        _check_relative(f["name"], path, lines, ("files", i, "name"))
        if f["name"] in seen:
            raise RegistryError(f"{path}:{line_of(lines, ('files', i, 'name'))}: files[{i}].name: "
                                f"{f['name']!r} is listed twice (also files[{seen[f['name']]}])")
        seen[f["name"]] = i
        for j, s in enumerate(f["sources"]):
            problem = (url_problem(s) or github_url_problem(s)) if isinstance(s, str) else None
            if problem:
                at = ("files", i, "sources", j)
                raise RegistryError(f"{path}:{line_of(lines, at)}: {format_path(at)}: {problem}")
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
            dynamic_input=c.get("dynamic_input", False),
        )
    return Model(
        name=name, subdirectory=subdirectory, directory=directory,
        description=data["description"].strip(), task_type=data["task_type"], framework=data["framework"],
        license_url=data["license"], files=tuple(files), postprocessing=tuple(post), conversion=conversion,
        precisions=tuple(data.get("precisions", ("FP16", "FP32"))),
        original_unavailable=data["original_unavailable"].strip() if "original_unavailable" in data else None,
    )


MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_LIST_BYTES = 1 << 20  # a --list file
MAX_SCAN_ENTRIES = 20_000  # directory entries looked at under --models_dir before giving up
MAX_SCAN_DEPTH = 4  # model.yml files are looked for at most this many folders below the root
PATTERN = re.compile(r"[A-Za-z0-9._*?\[\]!-]{1,128}")
PATTERN_HELP = "expected a model name or glob (letters, digits, '.', '_', '-', and * ? [...] wildcards)"


def load_model(model_yml: Path, models_root: Path) -> Model:
    """Read and validate one model.yml; its directory name is the model's name."""
    directory = model_yml.parent
    name = directory.name
    if not MODEL_NAME.fullmatch(name):
        raise RegistryError(f"{directory}: {short(name)} is not a model name; expected a folder name of "
                            "letters, digits, '.', '_' and '-' (at most 128, not starting with '.', '_' or '-')")
    data, lines = load_yaml_limited(model_yml, "model.yml", RegistryError, MAX_YAML_BYTES)
    if not isinstance(data, dict):
        raise RegistryError(f"{model_yml}:1: expected a mapping at the top level, found {_kind(data)}")
    _validate_schema(data, model_yml, lines)
    model = _build(name, directory.relative_to(models_root).as_posix(), directory, data, model_yml, lines)
    regular_input(model.card_path, "model card", RegistryError)
    return model


def _model_files(root: Path) -> list[Path]:
    """Every <folder>/model.yml up to MAX_SCAN_DEPTH below root, sorted, breadth first (so a huge
    tree hits the entry budget before deep corners); folder symlinks are followed but each folder
    is visited once (no loops), hidden folders are skipped, and a model folder is not searched
    further."""
    found: list[Path] = []
    visited: set[tuple[int, int]] = set()
    budget = MAX_SCAN_ENTRIES
    level = [root]
    for depth in range(MAX_SCAN_DEPTH + 1):
        below: list[Path] = []
        for folder in level:
            try:
                st = os.stat(folder)
                if (st.st_dev, st.st_ino) in visited:
                    continue
                visited.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                raise RegistryError(f"{folder}: cannot list the folder ({exc.strerror})") from None
            budget -= len(entries)
            if budget < 0:
                raise RegistryError(f"{root}: more than {MAX_SCAN_ENTRIES:,} entries looked at without finishing; "
                                    "expected a models directory (<group>/<model>/model.yml)")
            if depth > 0 and any(e.name == "model.yml" for e in entries):
                found.append(folder / "model.yml")
                continue
            below += [folder / e.name for e in entries if not e.name.startswith(".") and _is_dir(e)]
        level = below
    return sorted(found)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symlinks; a dangling or looping link is not a folder
    except OSError:
        return False


def load_registry(models_root: Path | None = None) -> list[Model]:
    """Every model under models_root, sorted by name; duplicate names are an error."""
    root = Path(models_root) if models_root is not None else default_models_root()
    try:
        mode = os.stat(root).st_mode
    except FileNotFoundError:
        raise RegistryError(f"{root}: the models directory does not exist "
                            "(give --models_dir or set FACEZOO_MODELS)") from None
    except OSError as exc:
        raise RegistryError(f"{root}: the models directory cannot be read ({exc.strerror})") from None
    if not stat.S_ISDIR(mode):
        found = "a regular file" if stat.S_ISREG(mode) else file_kind(mode)
        raise RegistryError(f"{root}: the models directory must be a folder, found {found}")
    models: dict[str, Model] = {}
    for yml in _model_files(root):
        model = load_model(yml, root)
        if model.name in models:
            raise RegistryError(f"{yml}: duplicate model name {model.name!r} "
                                f"(also {models[model.name].directory / 'model.yml'})")
        models[model.name] = model
    if not models:
        raise RegistryError(f"{root}: no models found; expected <group>/<model>/model.yml "
                            f"(at most {MAX_SCAN_DEPTH} folders deep, e.g. public/<model>/model.yml)")
    return sorted(models.values(), key=lambda m: m.name)


def _check_pattern(pattern: str, origin: str) -> str:
    if not PATTERN.fullmatch(pattern):
        raise RegistryError(f"{origin}: {short(pattern)} is not usable; {PATTERN_HELP}")
    return pattern


def select_models(models: Iterable[Model], patterns: Iterable[str], origin: str = "--name") -> list[Model]:
    """Models matching names or shell globs, in registry order; a pattern matching nothing is an error."""
    models = list(models)
    chosen: dict[str, Model] = {}
    for pattern in patterns:
        hits = [m for m in models if fnmatch.fnmatchcase(m.name, _check_pattern(pattern, origin))]
        if not hits:
            raise RegistryError(f"{origin}: no model matches {pattern!r} (see --print_all)")
        for m in hits:
            chosen[m.name] = m
    return [m for m in models if m.name in chosen]


def read_model_list(list_file: Path) -> list[tuple[str, str]]:
    """Patterns from a --list file: one per line, '#' comments; returns (pattern, 'file:line') pairs."""
    text = read_text_limited(list_file, MAX_LIST_BYTES, "model list", RegistryError)
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if any(c.isspace() for c in line):
            raise RegistryError(f"{list_file}:{number}: expected one model name or glob per line, "
                                f"found {short(line)}")
        out.append((_check_pattern(line, f"{list_file}:{number}"), f"{list_file}:{number}"))
    if not out:
        raise RegistryError(f"{list_file}: the model list names no model; "
                            "expected one model name or glob per line ('#' starts a comment)")
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
        raise RegistryError(f"--name: expected at least one model name or glob, found {short(names or '')}")
    return select_models(models, patterns)
