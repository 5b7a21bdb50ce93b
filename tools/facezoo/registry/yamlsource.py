"""YAML loading that keeps line numbers and refuses duplicate keys."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import RegistryError

PathKey = tuple  # a path into the document: keys and indices


def load_yaml_with_lines(path: Path) -> tuple[Any, dict[PathKey, int]]:
    """Parse a YAML file; return the data and a map from document path to 1-based line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read: {exc}") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise RegistryError(f"{path}: the file is empty")
        lines: dict[PathKey, int] = {}
        _index(node, (), lines, path)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RegistryError(f"{path}{where}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    return data, lines


def _index(node: yaml.Node, at: PathKey, lines: dict[PathKey, int], path: Path) -> None:
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise RegistryError(
                    f"{path}:{line}: {format_path(at + (key,))}: duplicate key "
                    f"(first given on line {seen[key]})")
            seen[key] = line
            _index(value_node, at + (key,), lines, path)
            lines[at + (key,)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, at + (i,), lines, path)


def format_path(at: PathKey) -> str:
    """Render a document path the way users write it: files[0].sha256."""
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def line_of(lines: dict[PathKey, int], at: PathKey) -> int:
    """The line of the deepest known prefix of `at`."""
    for n in range(len(at), -1, -1):
        if at[:n] in lines:
            return lines[at[:n]]
    return 1
