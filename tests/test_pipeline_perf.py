"""accuracy_check's faster paths give the same numbers as the plain one: the decoded-input cache
(cold and filled) and batched recognition (batch 1 against N, with a partial last batch)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import PROJECT, shared_path

MODELS = PROJECT / "models" / "public"


@pytest.fixture(scope="module")
def converted():
    from hostile.models import converted_root

    converted_root("mobileface-identification-v1")
    return converted_root("retinaface-mnet025-v1")


def _accuracy_check(*args):
    proc = subprocess.run([sys.executable, "-m", "facezoo.evaluate.cli", "--no_progress", *map(str, args)],
                          capture_output=True, text=True)
    # exit 1: a subset misses a reference
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc


def test_the_input_cache_gives_the_same_metrics_and_predictions(converted, tmp_path):
    wider = shared_path("data", "wider_val_dev")
    config = MODELS / "retinaface-mnet025-v1" / "accuracy-check.yml"
    common = ("-c", config, "-m", converted, "-s", wider, "--subsample_size", 24)
    _accuracy_check(*common, "--json_result", tmp_path / "plain.json", "--stored_predictions", tmp_path / "plain.npz")
    cache = tmp_path / "cache"
    for run in ("cold", "warm"):
        proc = _accuracy_check(*common, "--cache_dir", cache, "--json_result", tmp_path / f"{run}.json",
                               "--stored_predictions", tmp_path / f"{run}.npz")
        assert f"input cache {cache}: " in proc.stdout
    plain, cold, warm = (json.loads((tmp_path / f"{r}.json").read_text()) for r in ("plain", "cold", "warm"))
    assert plain["metrics"] == cold["metrics"] == warm["metrics"]
    assert (cold["run"]["input_cache"]["written"], cold["run"]["input_cache"]["read"]) == (24, 0)
    assert (warm["run"]["input_cache"]["written"], warm["run"]["input_cache"]["read"]) == (0, 24)
    assert warm["run"]["input_cache"]["entries"] == 24
    assert warm["run"]["input_cache"]["bytes"] == sum(p.stat().st_size for p in cache.iterdir())
    plain, warm = _stored(tmp_path / "plain.npz"), _stored(tmp_path / "warm.npz")
    assert plain.keys() == warm.keys() and len(plain["boxes"]) > 24
    for key in plain:
        assert np.array_equal(plain[key], warm[key]), key


def _stored(path):
    """The arrays of a stored-predictions file."""
    with np.load(path) as stored:
        return {k: stored[k] for k in stored.files}


@pytest.mark.parametrize("model", ["mobileface-identification-v1"])
def test_batched_recognition_equals_batch_1_with_a_partial_last_batch(converted, tmp_path, model):
    lfw = shared_path("data", "lfw", "lfw_aligned_100pair")
    config = MODELS / model / "accuracy-check.yml"
    results = {}
    # 400 inferences (200 faces and their mirror images): batch 7 ends with a batch of 1, 16 with 16
    for batch in (1, 7, 16):
        _accuracy_check("-c", config, "-m", converted, "-s", lfw.parent, "--batch", batch, "--json_result",
                        tmp_path / f"{batch}.json", "--stored_predictions", tmp_path / f"{batch}.npz")
        result = json.loads((tmp_path / f"{batch}.json").read_text())
        assert result["run"]["batch"] == batch
        results[batch] = result
    base = _stored(tmp_path / "1.npz")
    assert len(base["names"]) == 400  # each face and its mirror image
    for batch in (7, 16):
        for a, b in zip(results[1]["metrics"], results[batch]["metrics"]):
            assert a["name"] == b["name"] and abs(a["value"] - b["value"]) <= 1e-6
        other = _stored(tmp_path / f"{batch}.npz")
        assert other.keys() == base.keys()
        for key in base:
            if base[key].dtype.kind == "f":
                assert base[key].shape == other[key].shape and np.abs(other[key] - base[key]).max() <= 1e-6, key
            else:
                assert np.array_equal(base[key], other[key]), key


def test_the_default_batch_is_the_measured_one_for_recognition_and_1_for_detection(converted, tmp_path):
    from facezoo.evaluate.launchers.openvino import RECOGNITION_BATCH

    lfw = shared_path("data", "lfw", "lfw_aligned_100pair")
    _accuracy_check("-c", MODELS / "mobileface-identification-v1" / "accuracy-check.yml", "-m", converted,
                    "-s", lfw.parent, "--json_result", tmp_path / "lfw.json")
    _accuracy_check("-c", MODELS / "retinaface-mnet025-v1" / "accuracy-check.yml", "-m", converted,
                    "-s", shared_path("data", "wider_val_dev"), "--subsample_size", 2, "--json_result",
                    tmp_path / "wider.json")
    assert json.loads((tmp_path / "lfw.json").read_text())["run"]["batch"] == RECOGNITION_BATCH
    assert json.loads((tmp_path / "wider.json").read_text())["run"]["batch"] == 1


def test_the_launcher_fills_batches_in_key_order(converted):
    from facezoo.evaluate.launchers.openvino import OpenVINOLauncher

    name = "mobileface-identification-v1"
    xml = converted / "public" / name / "FP32" / f"{name}.xml"
    single, batched = OpenVINOLauncher(xml), OpenVINOLauncher(xml, batch=3)
    assert batched.input == single.input and batched.input.shape[0] == 1
    rng = np.random.default_rng(0)
    inputs = [(i, rng.integers(0, 256, single.input.shape, dtype=np.uint8)) for i in range(8)]
    seen = {}
    for launcher in (single, batched):
        out: dict = {}
        launcher.infer(inputs, lambda key, outputs, out=out: out.setdefault(key, outputs))
        seen[launcher.batch] = out
    assert sorted(seen[3]) == list(range(8))
    for key in range(8):
        for n in single.outputs:
            assert seen[3][key][n].shape == seen[1][key][n].shape
            assert np.abs(seen[3][key][n] - seen[1][key][n]).max() <= 1e-6


@pytest.mark.parametrize("image_shape, input_shape", [
    ((100, 80, 3), (1, 3, 64, 48)), ((100, 80), (1, 1, 64, 48)), ((100, 80, 3), (1, 1, 64, 48)),
    ((100, 80, 3), (1, 3, 100, 80))])
def test_inputs_are_the_resized_image_laid_out_channel_first(image_shape, input_shape):
    import cv2

    from facezoo.evaluate.images import to_blob, to_input

    image = np.random.default_rng(1).integers(0, 256, image_shape, dtype=np.uint8)
    for source in (image, image[:, ::-1]):  # a strided view too
        want = source
        if want.shape[:2] != input_shape[2:]:
            want = cv2.resize(want, input_shape[:1:-1], interpolation=cv2.INTER_LINEAR)
        if input_shape[1] == 1 and want.ndim == 3:
            want = cv2.cvtColor(want, cv2.COLOR_BGR2GRAY)
        if want.ndim == 2:
            want = want[:, :, None]
        got = to_input(source, input_shape)
        assert got.dtype == np.uint8 and np.array_equal(got, want.transpose(2, 0, 1)[None])
        assert to_blob(source, input_shape).dtype == np.float32 and np.array_equal(to_blob(source, input_shape), got)
