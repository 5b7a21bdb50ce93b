"""Fuzzing omz_quantizer's recipe reader: any quantization.yml (the real recipe with any value
anywhere, or arbitrary bytes) gives a Recipe that fits its model's accuracy config or a
QuantizeError, nothing else."""
from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from conftest import PROJECT
from facezoo.evaluate.config import load_accuracy_config
from facezoo.quantize.errors import QuantizeError
from facezoo.quantize.recipe import check_against_config, load_recipe
from test_fuzz_accuracy_config import _paths, _replaced, values

MODEL = PROJECT / "models" / "public" / "retinaface-mnet025-v1"
RECIPE = yaml.safe_load((MODEL / "quantization.yml").read_text())
RECIPE["ignored_scope"] = {"names": ["a"], "types": ["Convolution"], "patterns": ["face_rpn_.*"]}
CONFIG = load_accuracy_config(MODEL / "accuracy-check.yml")


def _load(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "quantization.yml"
        path.write_bytes(data)
        try:
            recipe = load_recipe(path)
            check_against_config(recipe, CONFIG)
        except QuantizeError:
            return
        assert 0 <= recipe.max_drop <= 0.5 and recipe.subset_size >= 1 and recipe.mode in ("ptq", "accuracy_control")


@given(st.data(), values)
def test_a_recipe_with_any_value_anywhere_loads_or_is_a_quantize_error(data, value):
    at = data.draw(st.sampled_from(list(_paths(RECIPE))))
    _load(yaml.safe_dump(_replaced(RECIPE, at, value)).encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=300))
def test_any_bytes_as_a_recipe(raw):
    _load(raw)
