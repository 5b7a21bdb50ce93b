"""facezoo's wider_official against the widely used Python port of the official evaluation
(wondervictor/WiderFace-Evaluation), on a small case whose APs the port printed
(tests/data/official_port_case, made by `bench/official.py --fixture`; the ground truth of its 24
images is cut from ../shared's official .mat files by that script's cut_ground_truth).

The port reads the faces as doubles; the MATLAB original does int32 arithmetic where the .mat's
int32 faces meet the predictions (tests/test_wider_official.py pins that against the original
under GNU Octave). Given the faces as doubles, ours is the port's arithmetic and gives its numbers."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from facezoo.evaluate.datasets.wider import load_official_mat
from facezoo.evaluate.metrics.detection import wider_official_curves
from facezoo.evaluate.predictions import read_submission

CASE = Path(__file__).parent / "data" / "official_port_case"
SETTINGS = ("easy", "medium", "hard")


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    from official import cut_ground_truth
    folder = tmp_path_factory.mktemp("ground_truth")
    cut_ground_truth(shared_path("data", "wider_val_dev", "ground_truth"), folder)
    return load_official_mat(folder)


def _curves(truth, as_doubles: bool):
    predictions, missing = read_submission(CASE / "pred", truth.paths)
    assert not missing and len(truth.paths) == 24
    faces = [f.astype(np.float64) for f in truth.faces] if as_doubles else truth.faces
    return wider_official_curves(predictions, faces, {s: truth.keep[s] for s in SETTINGS})


@pytest.mark.parametrize("setting", SETTINGS)
def test_equals_the_python_port(ground_truth, setting):
    expected = json.loads((CASE / "expected.json").read_text())
    assert _curves(ground_truth, as_doubles=True)[setting].ap == pytest.approx(expected[setting], abs=1e-12)


def test_int32_arithmetic_is_what_differs(ground_truth):
    """With the .mat's int32 faces (the MATLAB original's arithmetic: a prediction's corners are
    rounded where they meet a face, and so is the IoU) matches near the threshold change: medium
    and hard move on this case, easy (all found, its faces large) does not."""
    expected = json.loads((CASE / "expected.json").read_text())
    matlab = _curves(ground_truth, as_doubles=False)
    assert matlab["easy"].ap == expected["easy"]
    for setting in ("medium", "hard"):
        assert abs(matlab[setting].ap - expected[setting]) > 1e-5
