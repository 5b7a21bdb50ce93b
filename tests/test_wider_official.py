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


@pytest.mark.parametrize("body, expected", [
    ("1 2 3 4 0.5\n5 6 7 8 0.25\n", [[1, 2, 3, 4, 0.5], [5, 6, 7, 8, 0.25]]),
    ("1 2 3 4 0.5 extra\r\n5\t6 7 8 0.25", [[1, 2, 3, 4, 0.5], [5, 6, 7, 8, 0.25]]),  # the slower path: first five
    ("1 2 3 4 0.5\n5 6 7 8 0.25\nignored after the count\n", [[1, 2, 3, 4, 0.5], [5, 6, 7, 8, 0.25]]),
])
def test_submission_files_read_in_one_parse_or_line_by_line_alike(tmp_path, body, expected):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "a.txt").write_text("a\n2\n" + body)
    (tmp_path / "e" / "b.txt").write_text("b\n1\n9 9 9 9 1\n")
    [(boxes, scores), (boxes_b, _)], missing = read_submission(tmp_path, ["e/a.jpg", "e/b.jpg"])
    assert np.array_equal(np.column_stack([boxes, scores]), expected) and np.array_equal(boxes_b, [[9, 9, 9, 9]])


@pytest.mark.parametrize("body", ["1 2 3 4\n5 6 7 8 0.25\n", "1 2 3 4 nan\n5 6 7 8 0.25\n", "1 2 3 4 0.5\n",
                                  "1 2 3 4 x\n5 6 7 8 0.25\n", "1 2 3 4 0.5\n\n"])
def test_a_bad_submission_line_names_its_file(tmp_path, body):
    from facezoo.evaluate.errors import EvaluateError
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "ok.txt").write_text("ok\n1\n9 9 9 9 1\n")
    (tmp_path / "e" / "a.txt").write_text("a\n2\n" + body)
    with pytest.raises(EvaluateError, match=r"e/a\.txt: expected the image name, a count"):
        read_submission(tmp_path, ["e/ok.jpg", "e/a.jpg"])
