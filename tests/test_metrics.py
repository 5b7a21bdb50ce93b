"""Detection and verification metrics against hand-computed cases."""
import numpy as np
import pytest

from facezoo.evaluate.boxes import iou_matrix
from facezoo.evaluate.metrics.detection import (average_precision, match_image, voc_ap, wider_official_curve)
from facezoo.evaluate.metrics.verification import tar_at_far, verification_accuracy

FACE = np.array([[10.0, 10.0, 50.0, 50.0]])
ON_FACE = np.array([[11.0, 11.0, 50.0, 51.0]])
ELSEWHERE = np.array([[200.0, 200.0, 240.0, 240.0]])


def _ap(images):
    return average_precision([match_image(b, s, f, i) for b, s, f, i in images]).ap


def test_iou_with_and_without_the_plus_one_convention():
    a, b = np.array([[0, 0, 9, 9]]), np.array([[5, 0, 14, 9]])
    assert iou_matrix(a, b)[0, 0] == pytest.approx(36 / 126)
    assert iou_matrix(a, b, plus_one=True)[0, 0] == pytest.approx(50 / 150)
    assert iou_matrix(a, np.array([[20, 20, 30, 30]]))[0, 0] == 0


def test_duplicate_detection_is_a_false_positive():
    m = match_image(np.vstack([ON_FACE, ON_FACE]), [0.9, 0.8], FACE, [False])
    assert m.true_positive.tolist() == [True, False] and m.false_positive.tolist() == [False, True]
    # precision 1 at recall 1 comes first: the duplicate does not lower AP
    assert average_precision([m]).ap == pytest.approx(1.0)


def test_detection_on_an_ignored_face_is_neither_true_nor_false():
    faces = np.vstack([FACE, ELSEWHERE])
    boxes = np.vstack([ELSEWHERE, ON_FACE])
    m = match_image(boxes, [0.95, 0.9], faces, [False, True])
    assert m.true_positive.tolist() == [False, True] and m.false_positive.tolist() == [False, False]
    assert m.num_faces == 1 and average_precision([m]).ap == pytest.approx(1.0)
    # with the face removed instead of ignored, the same detection would be a false positive first
    removed = match_image(boxes, [0.95, 0.9], FACE, [False])
    assert average_precision([removed]).ap == pytest.approx(0.5)


def test_second_detection_on_an_ignored_face_counts_when_multiple_matches_are_not_allowed():
    faces = np.vstack([FACE, ELSEWHERE])
    boxes = np.vstack([ELSEWHERE, ELSEWHERE, ON_FACE])
    strict = match_image(boxes, [0.95, 0.94, 0.9], faces, [False, True], multiple_matches_per_ignored=False)
    assert strict.false_positive.tolist() == [False, True, False]
    lenient = match_image(boxes, [0.95, 0.94, 0.9], faces, [False, True])
    assert lenient.false_positive.tolist() == [False, False, False]


def test_a_tie_in_scores_is_ranked_in_image_order():
    # image 1: a false positive at 0.5; image 2: a true positive at 0.5
    images = [(ELSEWHERE, [0.5], np.zeros((0, 4)), []), (ON_FACE, [0.5], FACE, [False])]
    # ranked FP then TP: precision 0 then 0.5 at recall 1 -> AP 0.5
    assert _ap(images) == pytest.approx(0.5)


def test_image_with_no_faces_contributes_false_positives_only():
    images = [(ON_FACE, [0.9], FACE, [False]), (ELSEWHERE, [0.95], np.zeros((0, 4)), [])]
    assert _ap(images) == pytest.approx(0.5)
    assert _ap([(np.zeros((0, 4)), [], np.zeros((0, 4)), [])]) == 0.0


def test_empty_prediction_list_gives_zero_not_nan():
    assert _ap([(np.zeros((0, 4)), [], FACE, [False])]) == 0.0
    assert average_precision([]).ap == 0.0


def test_unsorted_predictions_are_ranked_by_score():
    boxes = np.vstack([ELSEWHERE, ON_FACE])
    sorted_ap = _ap([(boxes[::-1], [0.9, 0.1], FACE, [False])])
    unsorted_ap = _ap([(boxes, [0.1, 0.9], FACE, [False])])
    assert sorted_ap == unsorted_ap == pytest.approx(1.0)


def test_voc_ap_skips_nan_precision_like_matlab_max():
    assert voc_ap(np.array([0.5, 0.5]), np.array([np.nan, 1.0])) == pytest.approx(0.5)


def _xywh(corners):
    c = np.asarray(corners, dtype=float)
    return np.concatenate([c[:, :2], c[:, 2:] - c[:, :2]], axis=1)


def test_wider_official_hand_case():
    # one image, two faces in the setting; a hit at 0.9 and a miss at 0.5. Normalised scores 1 and 0:
    # at every threshold above 0 there is 1 proposal recalling 1 face (precision 1, recall 0.5);
    # at threshold 0, 2 proposals. AP = 0.5 x 1 + 0.5 x 0.
    faces = _xywh(np.vstack([FACE, ELSEWHERE + 100]))
    preds = [(_xywh(np.vstack([ELSEWHERE, ON_FACE])), np.array([0.5, 0.9]))]
    curve = wider_official_curve(preds, [faces], [np.array([1, 2])])
    assert curve.ap == pytest.approx(0.5)
    assert curve.precision[0] == 1 and curve.precision[-1] == 0.5 and np.all(curve.recall == 0.5)


def test_wider_official_face_outside_the_setting_is_ignored_and_its_hit_is_not_a_proposal():
    faces = _xywh(np.vstack([FACE, ELSEWHERE]))
    preds = [(_xywh(np.vstack([ELSEWHERE, ON_FACE])), np.array([0.9, 0.5]))]
    curve = wider_official_curve(preds, [faces], [np.array([1])])  # only face 1 counts
    assert curve.ap == pytest.approx(1.0)


def test_wider_official_nothing_detected_is_zero_not_nan():
    curve = wider_official_curve([(np.zeros((0, 4)), np.zeros(0))], [_xywh(FACE)], [np.array([1])])
    assert curve.ap == 0.0 and not np.isnan(curve.ap)
    assert wider_official_curve([], [], []).ap == 0.0


def test_verification_accuracy_picks_threshold_on_other_folds():
    distances = np.array([0.5, 1.5, 0.6, 1.4])
    same = np.array([True, False, True, False])
    result = verification_accuracy(distances, same, np.array([0, 0, 1, 1]))
    # fold 0 gets fold 1's smallest perfect threshold, 0.61: right on both pairs;
    # fold 1 gets fold 0's, 0.51: its same-person pair at 0.6 is called different
    assert result.fold_threshold.tolist() == pytest.approx([0.61, 0.51])
    assert result.fold_accuracy.tolist() == [1.0, 0.5]
    assert result.mean == 0.75 and result.std == 0.25


def test_verification_accuracy_a_fold_scored_with_a_threshold_it_did_not_choose():
    distances = np.array([0.5, 0.55, 0.9, 1.5])
    same = np.array([True, False, True, False])
    result = verification_accuracy(distances, same, np.array([0, 0, 1, 1]))
    # fold 0 is scored with fold 1's threshold 0.91: both pairs called same -> 0.5
    # fold 1 with fold 0's threshold 0.51: 0.9 called different (wrong), 1.5 right -> 0.5
    assert result.fold_accuracy.tolist() == [0.5, 0.5]


def test_tar_at_far_with_no_false_accept_allowed():
    distances = np.array([0.2, 0.4, 0.8, 0.5, 1.0])
    same = np.array([True, True, True, False, False])
    tar, far, tpr = tar_at_far(distances, same, 1e-3)
    assert tar == pytest.approx(2 / 3)  # accept below 0.5: 0.2 and 0.4
    assert far[0] == 0 and far[-1] == 1


def test_prefer_counted_faces_takes_a_counted_face_over_a_better_ignored_one():
    faces = np.array([[10.0, 10.0, 50.0, 50.0], [12.0, 12.0, 50.0, 50.0]])  # face 2 ignored
    box = np.array([[12.0, 12.0, 50.0, 51.0]])  # overlaps the ignored face more
    voc = match_image(box, [0.9], faces, [False, True])
    assert not voc.true_positive[0] and not voc.false_positive[0]  # matched to the ignored face
    omz = match_image(box, [0.9], faces, [False, True], prefer_counted_faces=True)
    assert omz.true_positive[0]
