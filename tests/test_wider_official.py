"""facezoo's wider_official against numbers the official MATLAB evaluation code printed under
GNU Octave for the same prediction files and ground truth (tests/data/wider_official_case)."""
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from facezoo.evaluate.datasets.wider import load_official_mat
from facezoo.evaluate.metrics.detection import official_overlap, wider_official_curve
from facezoo.evaluate.predictions import read_submission

CASE = Path(__file__).parent / "data" / "wider_official_case"
OCTAVE = {"easy": 0.9413265306, "medium": 0.8458252711, "hard": 0.2433973270}


def _case():
    truth = load_official_mat(shared_path("data", "wider_val_dev", "ground_truth"))
    text = shared_path("data", "wider_val_dev", "wider_face_split", "wider_face_val_bbx_gt.txt").read_text()
    chosen = [line.strip() for line in text.splitlines() if line.strip().endswith(".jpg")][:10]
    order = [i for i, p in enumerate(truth.paths) if p in set(chosen)]
    predictions, missing = read_submission(CASE / "pred", [truth.paths[i] for i in order])
    return truth, order, predictions, missing


@pytest.mark.parametrize("setting", ["easy", "medium", "hard"])
def test_matches_the_official_code_run_under_octave(setting):
    truth, order, predictions, missing = _case()
    assert len(order) == 10 and len(missing) == 1 and "0_Parade_marchingband_1_765" in missing[0]
    curve = wider_official_curve(predictions, [truth.faces[i] for i in order],
                                 [truth.keep[setting][i] for i in order])
    assert curve.ap == pytest.approx(OCTAVE[setting], abs=1e-9)


def test_official_overlap_follows_matlab_int32_arithmetic():
    faces = np.array([[10, 10, 20, 20], [12, 10, 20, 20]], dtype=np.int32)  # both overlap the box
    box = np.array([[11.6, 10.2, 20.0, 20.0]])
    overlap = official_overlap(faces, box)
    # the quotient is rounded to an integer: both faces score 1, so the first one is taken,
    # although the second one overlaps more in real numbers
    assert overlap.tolist() == [[1, 1]]
    plain = official_overlap(faces.astype(np.float64), box)
    assert plain[0, 1] > plain[0, 0]
