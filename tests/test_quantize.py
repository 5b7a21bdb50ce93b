"""omz_quantizer: recipes, calibration/validation subsets, and INT8 end to end on real data (one
detector, one recogniser) gated by accuracy_check against the INT8 references."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_path
from facezoo.evaluate.config import default_definitions, load_accuracy_config, load_definitions
from facezoo.quantize.calibration import locate_dataset, make_subsets
from facezoo.quantize.errors import QuantizeError
from facezoo.quantize.recipe import RECIPE_FILE, check_against_config, load_recipe
from facezoo.registry import load_registry

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELS = {m.name: m for m in load_registry()}
DETECTOR, RECOGNISER = "retinaface-mnet025-v1", "mobileface-identification-v1"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_has_a_recipe_that_fits_its_accuracy_config(name):
    model = MODELS[name]
    recipe = load_recipe(model.directory / RECIPE_FILE)
    check_against_config(recipe, load_accuracy_config(model.accuracy_config_path))
    assert 0 <= recipe.max_drop <= 0.01
    assert RECIPE_FILE in model.card_path.read_text(encoding="utf-8")  # the card links its recipe


GOOD = "mode: ptq\nmetric: omz_ap64\nmax_drop: 0.005\nvalidation_size: 10\nsubset_size: 10\n"


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("ptq", "int4"), r":1: mode: expected ptq or accuracy_control"),
    (GOOD.replace("0.005", "0.7"), r":3: max_drop: "),
    (GOOD.replace("0.005", "'x'"), r":3: max_drop: "),
    (GOOD.replace("subset_size: 10", "subset_size: 0"), r":5: subset_size: "),
    (GOOD + "bogus: 1\n", r":6: bogus"),
    (GOOD.replace("metric: omz_ap64\n", ""), r"metric"),
    (GOOD + "ignored_scope:\n  patterns: ['(']\n", r":7: ignored_scope.patterns\[0\]: not a regular expression"),
    (GOOD + "ignored_scope:\n  types: ['1x']\n", r"ignored_scope.types"),
    ("mode: [\n", r"recipe"),
])
def test_invalid_recipes_are_one_line_errors_naming_line_and_field(tmp_path, text, expected):
    path = tmp_path / RECIPE_FILE
    path.write_text(text)
    with pytest.raises(QuantizeError, match=expected):
        load_recipe(path)


def test_recipe_metric_and_dataset_must_be_the_configs():
    config = load_accuracy_config(MODELS[DETECTOR].accuracy_config_path)
    recipe = load_recipe(MODELS[DETECTOR].directory / RECIPE_FILE)
    for change, expected in ((dict(metric="lfw_accuracy"), "metric 'lfw_accuracy' is not a metric"),
                             (dict(dataset="lfw"), "dataset 'lfw' is not a dataset")):
        with pytest.raises(QuantizeError, match=expected):
            check_against_config(type(recipe)(**{**recipe.__dict__, **change}), config)


@pytest.mark.parametrize("dataset, folder, unit", [("wider_val_dev", "wider_val_dev", 100),
                                                   ("lfw_aligned_100pair", "lfw", 50)])
def test_subsets_are_deterministic_and_disjoint(dataset, folder, unit):
    shared_path("data", folder)
    definitions = load_definitions(default_definitions())
    found = locate_dataset(definitions, dataset, PROJECT.parent / "shared" / "data")  # a folder of datasets
    assert found.root.name == folder
    a, b = make_subsets(found, unit, 40), make_subsets(found, unit, 40)
    assert a == b and a.calibration_sha256 == b.calibration_sha256
    assert len(a.calibration) == 40 and not set(a.calibration) & set(a.validation_images)
    assert make_subsets(found, unit, 39).calibration_sha256 != a.calibration_sha256
    with pytest.raises(QuantizeError, match=r"subset_size 100000: .* has only \d+ images outside"):
        make_subsets(found, unit, 100_000)


def test_a_dataset_of_the_wrong_kind_is_refused():
    definitions = load_definitions(default_definitions())
    with pytest.raises(QuantizeError, match="holds no LFW dataset for lfw_aligned_100pair"):
        locate_dataset(definitions, "lfw_aligned_100pair", shared_path("data", "wider_val_dev"))


def _run(*argv, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *map(str, argv[1:])], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    """The two models' checkpoints, downloaded from ../shared's mirror (not converted: the
    quantizer converts first)."""
    mirror = shared_path("data", "mirror")
    root = tmp_path_factory.mktemp("quantize")
    for name in (DETECTOR, RECOGNISER):
        proc = _run("omz_downloader", "--name", name, "--mirror", mirror, "-o", root / "dl", cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root


def test_dry_run_plans_and_writes_nothing(downloaded):
    proc = _run("omz_quantizer", "--name", f"{DETECTOR},{RECOGNISER}", "-d", "dl", "-o", "dry", "--dry_run",
                "--dataset_dir", shared_path("data"), cwd=downloaded)
    assert proc.returncode == 0, proc.stderr
    assert "converted first from the checkpoint" in proc.stdout and "calibration 100 other images" in proc.stdout
    assert not (downloaded / "dry").exists()


@pytest.mark.parametrize("name, dataset", [(DETECTOR, "wider_val_dev"), (RECOGNISER, "lfw")])
def test_int8_end_to_end_meets_max_drop_and_the_int8_references(downloaded, name, dataset):
    """Convert (the FP32 IR is missing), quantize with the recipe's defaults, then the CI gate:
    accuracy_check on the INT8 IR within the INT8 references of accuracy-check.yml."""
    proc = _run("omz_quantizer", "--name", name, "-d", "dl", "-o", "out", "--dataset_dir", shared_path("data"),
                cwd=downloaded)
    assert proc.returncode == 0, proc.stderr
    assert "converting the checkpoint first" in proc.stdout
    folder = downloaded / "out" / "public" / name / "FP32-INT8"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{name}{ext}" for ext in (".bin", ".quantization.json", ".quantization.md", ".xml"))
    record = json.loads((folder / f"{name}.quantization.json").read_text())
    recipe = load_recipe(MODELS[name].directory / RECIPE_FILE)
    assert record["mode"] == recipe.mode and record["within_max_drop"]
    assert record["drop"] == pytest.approx(record["fp32_metric"] - record["int8_metric"], abs=2e-6)
    assert record["drop"] <= recipe.max_drop and len(record["calibration"]["image_list_sha256"]) == 64
    assert record["versions"]["nncf"] and record["versions"]["openvino"] and record["seconds"] > 0
    assert f"| {recipe.metric} |" in (folder / f"{name}.quantization.md").read_text()
    check = _run("accuracy_check", "-c", MODELS[name].accuracy_config_path, "-m", "out", "-s",
                 shared_path("data", dataset), "--precision", "FP32-INT8", cwd=downloaded)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "FP32-INT8" in check.stdout and "OUT OF RANGE" not in check.stdout


def test_a_drop_over_max_drop_exits_1_naming_what_was_reverted_and_writes_nothing(downloaded):
    """Accuracy control allowed one step and no drop at all on the recogniser, which loses a pair
    in INT8 unless several layers stay in float: exit 1, the reverted layers and the drop named."""
    models = downloaded / "models"
    shutil.copytree(MODELS[RECOGNISER].directory, models / "public" / RECOGNISER)
    recipe = models / "public" / RECOGNISER / RECIPE_FILE
    recipe.write_text(recipe.read_text() + "max_iterations: 1\n")
    proc = _run("omz_quantizer", "--name", RECOGNISER, "--models_dir", models, "-d", "out", "-o", "fail",
                "--dataset_dir", shared_path("data"), "--max_drop", "0", cwd=downloaded)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("omz_quantizer: error:")]
    assert len(errors) == 1 and "a drop of" in errors[0] and "after reverting" in errors[0], proc.stderr
    assert errors[0].endswith("nothing written")
    assert not (downloaded / "fail" / "public" / RECOGNISER / "FP32-INT8").exists()


def test_int8_references_come_in_pairs(tmp_path):
    """accuracy-check.yml: int8_reference needs int8_threshold, as reference needs threshold."""
    from facezoo.evaluate.errors import EvaluateError

    text = MODELS[DETECTOR].accuracy_config_path.read_text().replace(", int8_threshold: 0.01", "", 1)
    (tmp_path / "accuracy-check.yml").write_text(text)
    with pytest.raises(EvaluateError, match=r"metrics\[0\]: give both int8_reference and int8_threshold"):
        load_accuracy_config(tmp_path / "accuracy-check.yml")


def test_first_and_last_name_the_graphs_outer_convolutions(tmp_path):
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    from facezoo.quantize.quantize import ignored_names

    data = ops.parameter([1, 3, 8, 8], np.float32, name="data")
    x = data
    for i in range(4):
        x = ops.convolution(x, ops.constant(np.ones((3, 3, 1, 1), np.float32)), [1, 1], [0, 0], [0, 0], [1, 1])
        x.set_friendly_name(f"conv{i}")
    graph = ov.Model([x.output(0)], [data], "m")
    path = tmp_path / RECIPE_FILE
    path.write_text(GOOD + "ignored_scope:\n  names: [conv1]\n  first: 1\n  last: 2\n")
    assert ignored_names(load_recipe(path), graph) == ["conv1", "conv0", "conv2", "conv3"]
    path.write_text(GOOD)
    assert ignored_names(load_recipe(path), graph) == []


@pytest.mark.parametrize("name", ["retinaface-resnet50", "face-recognition-mobilefacenet-arcface"])
def test_mission_model_recipes_quantize_their_graphs(tmp_path, name):
    """The mission models' weights are not available offline; their synthetic checkpoints (the real
    topologies) prove the recipe end to end: convert first, the recipe's ignored_scope found in the
    graph and kept in float, an INT8 IR and its record written. The subsets are cut to 4 images and
    the metric is not gated (random weights detect and recognise nothing)."""
    import os

    from synthetic_models import write_mobilefacenet_arcface, write_retinaface_r50

    model = MODELS[name]
    folder = tmp_path / "dl" / model.subdirectory
    if name == "retinaface-resnet50":
        write_retinaface_r50(folder, prefix="R50")
    else:
        python = os.environ.get("FACEZOO_MXNET_PYTHON")
        if not python:
            pytest.skip("FACEZOO_MXNET_PYTHON (the MXNet 1.9.1 venv) is needed to learn MobileFaceNet's shapes")
        write_mobilefacenet_arcface(folder / "model-y1-test2",
                                    shared_path("data", "converter-cases", "mobilefacenet-arcface-symbol",
                                                "model-symbol.json"), python)
    registry = tmp_path / "models" / "public" / name
    shutil.copytree(model.directory, registry)
    recipe = registry / RECIPE_FILE
    lines = [line for line in recipe.read_text().splitlines()
             if not line.startswith(("validation_size:", "subset_size:", "mode:"))]
    recipe.write_text("\n".join(lines + ["mode: ptq", "validation_size: 4", "subset_size: 4"]) + "\n")
    proc = _run("omz_quantizer", "--name", name, "--models_dir", tmp_path / "models", "-d", "dl", "-o", "out",
                "--dataset_dir", shared_path("data"), "--max_drop", "0.5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "out" / "public" / name / "FP32-INT8" / f"{name}.quantization.json").read_text())
    scope = load_recipe(recipe).ignored_scope
    assert record["mode"] == "ptq" and (tmp_path / "out" / "public" / name / "FP32-INT8" / f"{name}.xml").is_file()
    assert len(record["kept_in_float"]) >= scope.first + scope.last + len(scope.names), record["kept_in_float"]
