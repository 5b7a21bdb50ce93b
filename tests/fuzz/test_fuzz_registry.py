"""Fuzzing the registry's readers: any model.yml bytes, any YAML-shaped document, any --name or
--list text gives a result or a RegistryError, never another exception."""
from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from facezoo.registry import Model, RegistryError, choose_models, load_model, load_registry
from facezoo.registry.yamlsource import parse_yaml_limited

VALID = {
    "description": "d", "task_type": "detection", "framework": "mxnet", "license": "https://example.invalid/L",
    "files": [{"name": "a.bin", "size": 3, "sha256": "a" * 64, "sources": ["https://example.invalid/a.bin"]}],
    "postprocessing": [{"$type": "unpack_archive", "file": "a.bin", "format": "zip"}],
    "conversion": {"symbol": "s.json", "params": "p.params", "mean_values": [127.5], "scale_values": [1.0],
                   "inputs": [{"name": "data", "shape": [1, 3, 8, 8], "layout": "NCHW", "color_order": "RGB"}]},
    "precisions": ["FP32"],
}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["a.bin", "../x", "https://raw.githubusercontent.com/o/r/main/a",
                                                           "NCHW", "FP16", "zip", "google_drive", "unpack_archive"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4)),
    max_leaves=20)
# YAML features the reader must bound or refuse, spliced into otherwise valid documents
tokens = st.sampled_from(["&a ", "*a", "*b", "!!python/object:os.system ", "!!binary ", "!x ", "<<: *a\n", "? [a]\n: 1\n",
                          "\t", "---\n", "...\n", "[", "]", "{", "}", ": ", "- ", "\x00", "\ufeff", "#", "'", "\"",
                          "%YAML 1.1\n", ".inf", ".nan", "0x" + "f" * 50, "\n  ", "|\n", ">-\n"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-registry")
    (root / "public" / "m").mkdir(parents=True)
    (root / "public" / "m" / "m.md").write_text("# m\n")
    return root


def _load(root, data: bytes):
    yml = root / "public" / "m" / "model.yml"
    yml.write_bytes(data)
    try:
        assert isinstance(load_model(yml, root), Model)
    except RegistryError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000


@given(st.binary(max_size=2000))
def test_any_bytes(registry, data):
    _load(registry, data)


@given(st.text(max_size=400))
def test_any_text(registry, text):
    _load(registry, text.encode("utf-8", "surrogatepass"))


def _edit(doc: dict, path: list, value) -> dict:
    """A copy of the document with one value replaced: the path's steps pick keys or indices
    (modulo their count) until a leaf, an empty container or the last step."""
    doc = copy.deepcopy(doc)
    node = doc
    for i, step in enumerate(path):
        keys = sorted(node, key=str) if isinstance(node, dict) else list(range(len(node)))
        key = keys[step % len(keys)]
        child = node[key]
        if i == len(path) - 1 or not isinstance(child, (dict, list)) or not child:
            node[key] = value
            break
        node = child
    return doc


@given(st.lists(st.integers(0, 10), min_size=1, max_size=5), values)
def test_valid_document_with_one_field_replaced(registry, path, value):
    _load(registry, yaml.safe_dump(_edit(VALID, path, value), allow_unicode=True).encode())


@given(st.integers(0, 10_000), st.lists(tokens, min_size=1, max_size=6))
def test_valid_document_with_yaml_features_spliced_in(registry, at, inserted):
    text = yaml.safe_dump(VALID, sort_keys=False)
    at %= len(text) + 1
    _load(registry, (text[:at] + "".join(inserted) + text[at:]).encode("utf-8", "surrogatepass"))


@given(st.text(max_size=200))
def test_yaml_reader_alone(text):
    try:
        parse_yaml_limited(text, "x.yml")
    except RegistryError as exc:
        assert str(exc).startswith("x.yml")


@given(st.text(max_size=60))
def test_any_name_selection(names):
    try:
        chosen = choose_models(load_registry(), names)
    except RegistryError as exc:
        assert str(exc).startswith("--name: ")
    else:
        assert chosen


@given(st.binary(max_size=300))
def test_any_list_file(tmp_path_factory, data):
    listing = tmp_path_factory.mktemp("list") / "l.txt"
    listing.write_bytes(data)
    try:
        assert choose_models(load_registry(), list_file=listing)
    except RegistryError as exc:
        assert str(exc).startswith(str(listing))
