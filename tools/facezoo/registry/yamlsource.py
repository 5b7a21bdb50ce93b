"""Hardened YAML reading: bounded size, depth and alias expansion, plain JSON-like data only,
string keys without duplicates, and every document path mapped to its line.

`load_yaml_limited` is the one reader for the project's YAML files (model.yml, accuracy configs).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from facezoo.common.errors import FacezooError
from facezoo.common.safeio import read_text_limited

from .errors import RegistryError

PathKey = tuple  # a path into the document: keys and indices

MAX_YAML_BYTES = 1 << 20  # a model.yml or accuracy config is a few KiB
MAX_DEPTH = 64  # nesting levels, counting what aliases bring in
MAX_ALIAS_NODES = 10_000  # nodes that alias uses may add to the document in total
MAX_NODES = 20_000  # values in one document, aliases expanded (a model.yml has a few hundred)
MAX_INT_CHARS = 40  # longer integer literals are refused before Python converts them

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class _Refused(Exception):
    """A limit or rule broken while composing; carries the line and the one-line reason."""

    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


def clip(text: str, limit: int = 200) -> str:
    """`text` cut to `limit` characters, for one-line messages."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def short(value: Any, limit: int = 60) -> str:
    """repr() of a value cut to `limit` characters, for one-line messages."""
    return clip(repr(value), limit)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts depth and alias expansion and refuses past the limits,
    before the expanded structure is ever built."""

    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0
        self._alias_nodes = 0
        self._nodes = 0  # nodes composed so far, aliases counted at their expanded size
        self._size: dict[int, int] = {}  # id(node) -> expanded node count of its subtree
        self._height: dict[int, int] = {}  # id(node) -> expanded nesting height of its subtree

    def compose_node(self, parent, index):  # noqa: D102  (PyYAML hook)
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors:
            target = self.anchors[event.anchor]
            if id(target) not in self._size:
                raise _Refused(line, f"alias *{event.anchor} refers to a node that contains it "
                                     "(recursive data); expected plain nested data")
            self._alias_nodes += self._size[id(target)]
            self._nodes += self._size[id(target)]
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise _Refused(line, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                                     "(an alias bomb?); expected plain data")
            if self._depth + self._height[id(target)] > MAX_DEPTH:
                raise _Refused(line, f"alias *{event.anchor} nests deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(line, f"nesting deeper than {MAX_DEPTH} levels")
        before = self._nodes
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(line, f"more than {MAX_NODES:,} values in one document; expected a small "
                                 "configuration file")
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._size[id(node)] = self._nodes - before
        children = [v for kv in node.value for v in kv] if isinstance(node, yaml.MappingNode) else (
            node.value if isinstance(node, yaml.SequenceNode) else [])
        self._height[id(node)] = 1 + max((self._height.get(id(c), 1) for c in children), default=0)
        return node


def _yaml_error_line(exc: yaml.YAMLError, text: str) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return mark.line + 1
    position = getattr(exc, "position", None)  # ReaderError: a character index
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        return f"character U+{code:04X} is not allowed (control characters and NUL); expected printable text"
    parts = [p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p]
    return ", ".join(parts) if parts else str(exc).splitlines()[0]


def parse_yaml_limited(text: str, source: Path | str, error: type[FacezooError] = RegistryError,
                       ) -> tuple[Any, dict[PathKey, int]]:
    """Parse one YAML document held in `text` (named `source` in messages) under the limits above;
    return the data and a map from document path to 1-based line. Anything else raises `error`
    with one line `source:line: what was wrong, what was expected`."""
    loader = None
    try:
        loader = _BoundedLoader(text)  # checks the characters first
        node = loader.get_single_node()
        if node is None:
            raise _Refused(1, "the file holds no YAML document (empty or only comments); expected a mapping")
        lines: dict[PathKey, int] = {}
        _index(node, (), lines, loader)
        data = loader.construct_document(node)
    except _Refused as exc:
        raise error(f"{source}:{exc.line}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        line = _yaml_error_line(exc, text)
        where = f":{line}" if line is not None else ""
        raise error(f"{source}{where}: invalid YAML: {clip(_yaml_problem(exc))}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def load_yaml_limited(path: Path | str, what: str = "YAML file", error: type[FacezooError] = RegistryError,
                      max_bytes: int = MAX_YAML_BYTES) -> tuple[Any, dict[PathKey, int]]:
    """Read and parse a YAML file safely: a regular file (FIFOs, devices and folders are refused
    unopened) of at most `max_bytes` UTF-8 bytes holding exactly one document. Returns the data
    and a map from document path (keys and indices) to 1-based line; problems raise `error` with
    one line naming the file, the line and what was expected."""
    text = read_text_limited(path, max_bytes, what, error)
    return parse_yaml_limited(text, path, error)


def _check_scalar(node: yaml.ScalarNode, loader: yaml.SafeLoader, line: int) -> None:
    if node.tag == _TAG + "int" and len(node.value) > MAX_INT_CHARS:
        raise _Refused(line, f"integer {short(node.value, 30)} is longer than {MAX_INT_CHARS} characters")
    if node.tag == _TAG + "float" and not math.isfinite(loader.construct_yaml_float(node)):
        raise _Refused(line, f"{node.value!r} is not a finite number; expected a finite decimal number")


def _index(node: yaml.Node, at: PathKey, lines: dict[PathKey, int], loader: yaml.SafeLoader) -> None:
    line = node.start_mark.line + 1
    lines[at] = line
    if node.tag not in _PLAIN_TAGS:
        raise _Refused(line, f"{format_path(at)}: unsupported YAML type {short(node.tag.replace(_TAG, '!!'), 40)}; "
                             "expected text, numbers, booleans, null, lists and mappings")
    if isinstance(node, yaml.ScalarNode):
        _check_scalar(node, loader, line)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _TAG + "str":
                kind = {yaml.SequenceNode: "a list", yaml.MappingNode: "a mapping"}.get(
                    type(key_node), f"{short(key_node.value, 30)} ({key_node.tag.replace(_TAG, '')})")
                merge = " (merge keys '<<' are not supported)" if key_node.tag == _TAG + "merge" else ""
                raise _Refused(key_line, f"{format_path(at)}: {kind} used as a key; expected text keys{merge}")
            key = key_node.value
            if key in seen:
                raise _Refused(key_line, f"{format_path(at + (key,))}: duplicate key "
                                         f"(first given on line {seen[key]})")
            seen[key] = key_line
            _index(value_node, at + (key,), lines, loader)
            lines[at + (key,)] = key_line
    else:
        for i, item in enumerate(node.value):
            _index(item, at + (i,), lines, loader)


def _key_text(key: Any) -> str:
    text = str(key)
    if text and len(text) <= 40 and all(c.isalnum() or c in "_-$" for c in text):
        return text
    return short(text, 40)


def format_path(at: PathKey) -> str:
    """Render a document path the way users write it: files[0].sha256."""
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else (f".{_key_text(part)}" if out else _key_text(part))
    return out or "(top level)"


def line_of(lines: dict[PathKey, int], at: PathKey) -> int:
    """The line of the deepest known prefix of `at`."""
    for n in range(len(at), -1, -1):
        if at[:n] in lines:
            return lines[at[:n]]
    return 1
