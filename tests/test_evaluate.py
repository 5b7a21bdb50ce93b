"""Parsers, decoding, NMS, alignment, stored predictions and config validation."""
import numpy as np
import pytest

from facezoo.evaluate import EvaluateError
from facezoo.evaluate.adapters.alignment import ARCFACE_TEMPLATE, similarity_transform
from facezoo.evaluate.adapters.nms import nms
from facezoo.evaluate.adapters.retinaface import Detections, RetinaFaceSettings, anchors, decode
from facezoo.evaluate.boxes import iou_matrix
from facezoo.evaluate.config import load_accuracy_config, load_definitions
from facezoo.evaluate.datasets.lfw import make_pairs, parse_pairs
from facezoo.evaluate.datasets.wider import parse_bbx_gt
from facezoo.evaluate.predictions import load_predictions, save_detections

GT = """0--Parade/a.jpg
2
10 20 30 40 0 0 0 0 0 0
5 5 0 8 2 1 0 1 2 0
0--Parade/empty.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/b.jpg
1
1 2 3 4 0 0 0 0 0 0
"""


def test_wider_annotation_zero_face_image_and_attribute_columns():
    images = parse_bbx_gt(GT)
    assert [i.path for i in images] == ["0--Parade/a.jpg", "0--Parade/empty.jpg", "1--Handshaking/b.jpg"]
    assert images[0].faces.tolist() == [[10, 20, 30, 40], [5, 5, 0, 8]]  # a zero-width face is kept
    assert images[0].invalid.tolist() == [False, True] and images[0].attributes[1].tolist() == [2, 1, 0, 1, 2, 0]
    assert images[1].faces.shape == (0, 4) and images[2].event == "1--Handshaking"


@pytest.mark.parametrize("text, line", [
    (GT.replace("5 5 0 8 2 1 0 1 2 0", "5 5 0 8 2 1"), 4),
    (GT.replace("10 20 30 40", "10 x 30 40"), 3),
    (GT.replace("\n2\n", "\ntwo\n", 1), 2),
    ("0--Parade/a.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n", 2),
])
def test_malformed_wider_annotation_names_the_line(text, line):
    with pytest.raises(EvaluateError, match=rf"^gt.txt:{line}: "):
        parse_bbx_gt(text, "gt.txt")


PAIRS = "2 1\nA 1 2\nA 1 B 1\nC 1 3\nC 2 D 4\n"


def test_lfw_pairs_keep_the_folds_of_the_file():
    pairs = parse_pairs(PAIRS)
    assert pairs.first == ["A/A_0001.jpg", "A/A_0001.jpg", "C/C_0001.jpg", "C/C_0002.jpg"]
    assert pairs.second[1] == "B/B_0001.jpg" and pairs.same.tolist() == [True, False, True, False]
    assert pairs.fold.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("text, message", [
    ("10 300\nA 1 2\n", "header says 10 folds"),
    ("2 1\nA 1 2\nA 1 B\nC 1 3\nC 2 D 4\n", r"pairs.txt:3: expected 'name1 i name2 j'"),
    ("x y\n", "pairs.txt:1: header folds: expected an integer"),
])
def test_malformed_pairs_file(text, message):
    with pytest.raises(EvaluateError, match=message):
        parse_pairs(text, "pairs.txt")


def test_generated_pairs_are_deterministic_and_in_lfw_format(tmp_path):
    for k in range(4):
        person = tmp_path / f"P{k}"
        person.mkdir()
        for n in (1, 3):
            (person / f"P{k}_{n:04d}.jpg").write_bytes(b"")
    text = make_pairs(tmp_path, folds=2)
    assert text == make_pairs(tmp_path, folds=2)
    assert text.splitlines() == ["2 2", "P0 1 3", "P1 1 3", "P0 1 P2 3", "P1 1 P3 3",
                                 "P2 1 3", "P3 1 3", "P2 1 P0 3", "P3 1 P1 3"]
    assert len(parse_pairs(text)) == 8


def _reference_nms(boxes, scores, threshold):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if iou_matrix(boxes[i:i + 1], boxes[j:j + 1], True)[0, 0] <= threshold]
    return keep


@pytest.mark.parametrize("count", [0, 1, 7, 300, 700])
def test_nms_equals_the_greedy_loop(count):
    rng = np.random.default_rng(count)
    xy = rng.uniform(0, 200, (count, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 60, (count, 2))], axis=1)
    scores = rng.choice(np.linspace(0, 1, 50), count)  # with ties
    assert nms(boxes, scores, 0.4, plus_one=True).tolist() == _reference_nms(boxes, scores, 0.4)


def test_anchor_layout_follows_insightface():
    a = anchors(32, 2, 3)
    assert a.shape == (2 * 3 * 2, 4)
    assert a[0].tolist() == [-248.0, -248.0, 263.0, 263.0] and a[1].tolist() == [-120.0, -120.0, 135.0, 135.0]
    assert a[2].tolist() == [-248 + 32, -248, 263 + 32, 263]  # next x cell


def _outputs(hot: dict[int, tuple]) -> dict[str, np.ndarray]:
    out = {}
    for stride in (32, 16, 8):
        size = 64 // stride
        prob = np.zeros((1, 4, size, size), np.float32)
        prob[:, :2] = 1
        out[f"face_rpn_cls_prob_reshape_stride{stride}"] = prob
        out[f"face_rpn_bbox_pred_stride{stride}"] = np.zeros((1, 8, size, size), np.float32)
        out[f"face_rpn_landmark_pred_stride{stride}"] = np.zeros((1, 20, size, size), np.float32)
    for stride, (y, x, anchor, score, deltas) in hot.items():
        out[f"face_rpn_cls_prob_reshape_stride{stride}"][0, 2 + anchor, y, x] = score
        out[f"face_rpn_bbox_pred_stride{stride}"][0, 4 * anchor:4 * anchor + 4, y, x] = deltas
    return out


def test_decode_box_deltas_against_anchors():
    # stride 8, cell (y=1, x=2), anchor 1 (scale 1: 16 px): [16, 8, 31, 23], centre (23.5, 15.5);
    # dx=0.5 moves the centre by half the width (to 31.5), dw=log 2 doubles the width (to 32)
    det = decode(_outputs({8: (1, 2, 1, 0.9, [0.5, 0.0, np.log(2), 0.0])}), (64, 64),
                 RetinaFaceSettings(score_threshold=0.5, clip=False))
    assert det.scores.tolist() == pytest.approx([0.9])
    assert det.boxes[0] == pytest.approx([31.5 - 15.5, 15.5 - 7.5, 31.5 + 15.5, 15.5 + 7.5])


def test_decode_missing_output_is_named():
    outputs = _outputs({})
    del outputs["face_rpn_bbox_pred_stride16"]
    with pytest.raises(EvaluateError, match="face_rpn_bbox_pred_stride16"):
        decode(outputs, (64, 64))


def test_similarity_transform_recovers_rotation_scale_shift():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = ARCFACE_TEMPLATE
    target = scale * source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    assert matrix[:, :2] == pytest.approx(scale * rotation) and matrix[:, 2] == pytest.approx(shift)


def test_stored_prediction_shards_merge_into_the_same_predictions(tmp_path):
    rng = np.random.default_rng(1)
    dets = {f"e/{k}.jpg": Detections(rng.uniform(0, 9, (k, 4)), rng.uniform(0, 1, k), rng.uniform(0, 9, (k, 5, 2)))
            for k in range(6)}
    meta = {"model": "m", "dataset": "d"}
    names = sorted(dets)
    save_detections(tmp_path / "a.npz", {n: dets[n] for n in names[:3]}, meta)
    save_detections(tmp_path / "b.npz", {n: dets[n] for n in names[3:]}, meta)
    merged = load_predictions([tmp_path / "a.npz", tmp_path / "b.npz"], meta)
    assert sorted(merged) == names
    for n in names:
        assert np.array_equal(merged[n].boxes, dets[n].boxes) and np.array_equal(merged[n].scores, dets[n].scores)
    with pytest.raises(EvaluateError, match="other settings"):
        load_predictions([tmp_path / "a.npz"], {"model": "other", "dataset": "d"})
    with pytest.raises(EvaluateError, match="also in an earlier shard"):
        load_predictions([tmp_path / "a.npz", tmp_path / "a.npz"], meta)


def test_config_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "accuracy-check.yml"
    bad.write_text("models:\n  - name: m\n    launchers:\n      - framework: tensorflow\n"
                   "        adapter: {type: retinaface}\n    datasets: [{name: d, metrics: [{type: omz_ap64}]}]\n")
    with pytest.raises(EvaluateError, match=r"accuracy-check.yml:4: models\[0\].launchers\[0\].framework: expected openvino"):
        load_accuracy_config(bad)
    bad.write_text("models:\n  - name: m\n    launchers:\n      - framework: openvino\n"
                   "        adapter:\n          type: retinaface\n          flip: true\n"
                   "    datasets: [{name: d, metrics: [{type: omz_ap64}]}]\n")
    with pytest.raises(EvaluateError, match=r":7: models\[0\].launchers\[0\].adapter.flip: not an option"):
        load_accuracy_config(bad)
    definitions = tmp_path / "defs.yml"
    definitions.write_text("datasets:\n  - {name: w, type: wider, images: i}\n")
    with pytest.raises(EvaluateError, match=r"datasets\[0\].annotation is required"):
        load_definitions(definitions)


def test_every_registry_model_has_a_valid_accuracy_config():
    from facezoo.registry import load_registry
    from facezoo.evaluate.config import default_definitions
    definitions = load_definitions(default_definitions())
    for model in load_registry():
        config = load_accuracy_config(model.directory / "accuracy-check.yml")
        assert config.model == model.name
        assert all(d.name in definitions for d in config.datasets)


def test_image_header_size_agrees_with_the_decoder_and_the_limit_comes_first(tmp_path):
    from conftest import shared_path
    from facezoo.evaluate.images import BrokenImage, image_size, read_image
    folder = shared_path("data", "wider_val_dev", "WIDER_val", "images", "0--Parade")
    for path in sorted(folder.glob("*.jpg"))[:5]:
        image = read_image(path)
        assert image_size(path.read_bytes()) == (image.shape[1], image.shape[0])
    with pytest.raises(BrokenImage, match=r"more than the 100-pixel limit \(raise it with --max_image_pixels\)"):
        read_image(path, max_pixels=100)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(BrokenImage, match=r"empty.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")


def test_landmarks_degenerate_sets_are_found_together():
    from facezoo.evaluate.adapters.alignment import ARCFACE_TEMPLATE
    from facezoo.evaluate.datasets.landmarks import degenerate
    line = np.stack([np.arange(5.0), 2 * np.arange(5.0)], axis=1)
    sets = np.stack([ARCFACE_TEMPLATE, np.ones((5, 2)), line, np.where(np.eye(5, 2) > 0, np.nan, 1.0)])
    assert degenerate(sets).tolist() == [False, True, True, True]


def test_submission_files_stay_inside_the_folder(tmp_path):
    from facezoo.evaluate.predictions import write_submission
    det = Detections(np.array([[1.0, 2, 11, 22]]), np.array([0.5]), np.zeros((1, 5, 2)))
    write_submission(tmp_path / "sub", {"e/a.jpg": det})
    assert (tmp_path / "sub" / "e" / "a.txt").read_text() == "a\n1\n1.0 2.0 10.0 20.0 0.5\n"
    with pytest.raises(EvaluateError, match=r"image path: expected a relative path.*'\.\.' component"):
        write_submission(tmp_path / "sub", {"../../x.jpg": det})
    assert not (tmp_path / "x.txt").exists()


def test_official_mat_structure_check_accepts_the_real_files():
    """...and the digests for which load_mat skips the check are exactly those of files that pass it."""
    import hashlib

    from conftest import shared_path
    from facezoo.evaluate.datasets.mat import KNOWN_GOOD_SHA256, MatError, check_mat
    folder = shared_path("data", "wider_val_dev", "ground_truth")
    digests = set()
    for path in sorted(folder.glob("*.mat")):
        check_mat(path.read_bytes())
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests == KNOWN_GOOD_SHA256
    data = (folder / "wider_face_val.mat").read_bytes()
    with pytest.raises(MatError, match="unpack to more than 1,000 bytes"):
        check_mat(data, budget=1000)
