"""Fuzzing accuracy_check's own readers: any accuracy-check.yml or dataset_definitions.yml
document (valid ones with a value replaced anywhere, or raw YAML-ish text) gives a config or an
EvaluateError; any /proc/cpuinfo text gives a CPU record."""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from conftest import PROJECT
from facezoo.evaluate.config import load_accuracy_config, load_definitions
from facezoo.evaluate.errors import EvaluateError
from facezoo.evaluate.provenance import parse_cpuinfo

CONFIG = yaml.safe_load((PROJECT / "models" / "public" / "retinaface-mnet025-v1" / "accuracy-check.yml").read_text())
DEFINITIONS = yaml.safe_load((PROJECT / "accuracy_configs" / "dataset_definitions.yml").read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["retinaface", "embedding", "omz_ap64", "wider_official",
                                                           "lfw_accuracy", "wider", "lfw", "easy", "a" * 64]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=3)),
    max_leaves=10)


def _paths(doc, at=()):
    """Every path into a document (keys and indices)."""
    yield at
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, at + (i,))


def _replaced(doc, at, value):
    doc = copy.deepcopy(doc)
    if not at:
        return value
    target = doc
    for part in at[:-1]:
        target = target[part]
    target[at[-1]] = value
    return doc


def _load(loader, text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.yml"
        path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        try:
            loader(path)
        except EvaluateError:
            pass


@given(st.data(), values)
def test_a_config_with_any_value_anywhere_loads_or_is_an_evaluate_error(data, value):
    at = data.draw(st.sampled_from(list(_paths(CONFIG))))
    _load(load_accuracy_config, yaml.safe_dump(_replaced(CONFIG, at, value)))


@given(st.data(), values)
def test_definitions_with_any_value_anywhere_load_or_are_an_evaluate_error(data, value):
    at = data.draw(st.sampled_from(list(_paths(DEFINITIONS))))
    _load(load_definitions, yaml.safe_dump(_replaced(DEFINITIONS, at, value)))


@given(st.binary(max_size=300))
def test_any_bytes_as_a_config_or_definitions(raw):
    _load(load_accuracy_config, raw)
    _load(load_definitions, raw)


@given(st.text(max_size=400))
def test_any_cpuinfo_text_gives_a_model_and_flags(text):
    info = parse_cpuinfo(text)
    assert isinstance(info["model"], str) and isinstance(info["isa"], list)
