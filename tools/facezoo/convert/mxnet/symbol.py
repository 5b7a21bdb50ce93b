"""MXNet symbol JSON (`*-symbol.json`): nodes, their inputs and attributes, the graph's heads."""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConvertError


@dataclass(frozen=True)
class Node:
    """One node of the graph: an operator, or a variable (`op == "null"`)."""

    index: int
    op: str
    name: str
    attrs: dict[str, str]
    inputs: tuple[tuple[int, int], ...]  # (node index, output index)


@dataclass(frozen=True)
class Symbol:
    """A parsed symbol file."""

    nodes: tuple[Node, ...]
    heads: tuple[tuple[int, int], ...]
    arg_nodes: tuple[int, ...]
    path: Path


def read_symbol(path: Path) -> Symbol:
    """Parse a symbol JSON in the MXNet 0.9 (`attr`/`param`) or 1.x (`attrs`) layout."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConvertError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) or "heads" not in doc:
        raise ConvertError(f"{path}: not an MXNet symbol file (expected 'nodes' and 'heads')")
    raw_nodes = doc["nodes"]
    nodes = []
    for i, raw in enumerate(raw_nodes):
        where = f"{path}: nodes[{i}]"
        if not isinstance(raw, dict) or "op" not in raw or "name" not in raw:
            raise ConvertError(f"{where}: expected an object with 'op' and 'name'")
        attrs = raw.get("attrs") or raw.get("attr") or raw.get("param") or {}
        inputs = []
        for j, entry in enumerate(raw.get("inputs", [])):
            if not isinstance(entry, list) or len(entry) < 2 or not all(isinstance(v, int) for v in entry[:2]):
                raise ConvertError(f"{where} ({raw['name']}): inputs[{j}] must be [node, output, version]")
            if not 0 <= entry[0] < i:
                raise ConvertError(f"{where} ({raw['name']}): inputs[{j}] refers to node {entry[0]}, which "
                                   f"{'does not exist' if entry[0] >= len(raw_nodes) or entry[0] < 0 else 'comes later'}")
            inputs.append((entry[0], entry[1]))
        nodes.append(Node(i, raw["op"], raw["name"], {k: str(v) for k, v in attrs.items()}, tuple(inputs)))
    heads = []
    for j, entry in enumerate(doc["heads"]):
        if not isinstance(entry, list) or len(entry) < 2 or not 0 <= entry[0] < len(nodes):
            raise ConvertError(f"{path}: heads[{j}] refers to a node that does not exist")
        heads.append((entry[0], entry[1]))
    return Symbol(tuple(nodes), tuple(heads), tuple(doc.get("arg_nodes", [])), path)


def parse_value(text: str):
    """An attribute string as a Python value: '(3, 3)' -> (3, 3), 'True' -> True, '0.5' -> 0.5, 'None' -> None."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(value, list):
        value = tuple(value)
    return value
