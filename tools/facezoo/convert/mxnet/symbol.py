"""MXNet symbol JSON (`*-symbol.json`): nodes, their inputs and attributes, the graph's heads.

The reader checks the graph's structure before anything is built from it: every field has its
type, node names are unique, a node's inputs are earlier nodes (so the graph has no cycle),
`heads` is a non-empty list of existing nodes. What an operator's attributes must hold is checked
later, per operator (`convert/attributes.py`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facezoo.common.safeio import read_text_limited

from ..errors import ConvertError

MAX_SYMBOL_BYTES = 64 << 20  # real symbol files are 20 KB - 1 MB
MAX_OUTPUT_INDEX = 1 << 16  # no MXNet operator has more outputs


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
    """Read and check a symbol JSON (MXNet 0.9 `attr`/`param` or 1.x `attrs` layout). FIFOs, devices
    and files over 64 MiB are refused unread."""
    path = Path(path)
    text = read_text_limited(path, MAX_SYMBOL_BYTES, "symbol JSON", ConvertError)
    return parse_symbol(text, path)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(value, where: str, count: int, before: int | None = None) -> tuple[int, int]:
    """A [node, output(, version)] reference, checked against the node count (or, for inputs,
    against the referring node's own index `before`)."""
    if not isinstance(value, list) or len(value) not in (2, 3) or not all(_is_int(v) for v in value):
        raise ConvertError(f"{where} must be [node, output] or [node, output, version] with integers, "
                           f"found {json.dumps(value)[:60]}")
    node, output = value[0], value[1]
    if not 0 <= node < count:
        raise ConvertError(f"{where} refers to node {node}, which does not exist (the file has {count} nodes)")
    if before is not None and node == before:
        raise ConvertError(f"{where} refers to the node itself (a cycle)")
    if before is not None and node > before:
        raise ConvertError(f"{where} refers to node {node}, which comes later: nodes must be listed inputs first "
                           f"(a cycle, or a corrupt file)")
    if not 0 <= output < MAX_OUTPUT_INDEX:
        raise ConvertError(f"{where} names output {output} of node {node}; expected 0 <= output < "
                           f"{MAX_OUTPUT_INDEX}")
    return node, output


def _node(raw, i: int, count: int, where_file: str) -> Node:
    where = f"{where_file}: nodes[{i}]"
    if not isinstance(raw, dict):
        raise ConvertError(f"{where}: expected an object with 'op', 'name' and 'inputs'")
    for key in ("op", "name"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConvertError(f"{where}: '{key}' must be a non-empty string")
    where = f"{where} ({raw['name']})"
    attrs = {}
    present = [k for k in ("attrs", "attr", "param") if k in raw]
    for key in present:
        value = raw[key]
        if not isinstance(value, dict):
            raise ConvertError(f"{where}: '{key}' must be an object of strings")
        for name, text in value.items():
            if not isinstance(text, str):
                raise ConvertError(f"{where}: attribute '{name}' must be a string (MXNet writes \"{name}\": "
                                   f"\"...\"), found {type(text).__name__}")
            if name in attrs and attrs[name] != text:
                raise ConvertError(f"{where}: attribute '{name}' has two different values ({', '.join(present)})")
            attrs[name] = text
    inputs = raw.get("inputs", [])
    if not isinstance(inputs, list):
        raise ConvertError(f"{where}: 'inputs' must be a list")
    refs = tuple(_entry(e, f"{where}: inputs[{j}]", count, before=i) for j, e in enumerate(inputs))
    if raw["op"] == "null" and refs:
        raise ConvertError(f"{where}: a variable (op 'null') cannot have inputs")
    return Node(i, raw["op"], raw["name"], attrs, refs)


def parse_symbol(text: str, path: Path) -> Symbol:
    """Parse symbol JSON text; `path` is only used in messages."""
    path = Path(path)
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ConvertError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers with thousands of digits
        raise ConvertError(f"{path}: not valid JSON: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) or "heads" not in doc:
        raise ConvertError(f"{path}: not an MXNet symbol file (expected an object with 'nodes' and 'heads')")
    raw_nodes = doc["nodes"]
    if not raw_nodes:
        raise ConvertError(f"{path}: 'nodes' is empty")
    nodes = tuple(_node(raw, i, len(raw_nodes), str(path)) for i, raw in enumerate(raw_nodes))
    seen: dict[str, int] = {}
    for node in nodes:
        if node.name in seen:
            raise ConvertError(f"{path}: nodes[{node.index}]: name '{node.name}' is also the name of "
                               f"nodes[{seen[node.name]}]; node names must be unique")
        seen[node.name] = node.index
    if not isinstance(doc["heads"], list) or not doc["heads"]:
        raise ConvertError(f"{path}: 'heads' must be a non-empty list of [node, output, version]")
    heads = tuple(_entry(e, f"{path}: heads[{j}]", len(nodes)) for j, e in enumerate(doc["heads"]))
    arg_nodes = doc.get("arg_nodes", [])
    if not isinstance(arg_nodes, list) or not all(_is_int(i) and 0 <= i < len(nodes) for i in arg_nodes):
        raise ConvertError(f"{path}: 'arg_nodes' must be a list of node indices below {len(nodes)}")
    for i in arg_nodes:
        if nodes[i].op != "null":
            raise ConvertError(f"{path}: arg_nodes lists nodes[{i}] ({nodes[i].name}), which is an operator "
                               f"({nodes[i].op}), not a variable")
    return Symbol(nodes, heads, tuple(arg_nodes), path)
