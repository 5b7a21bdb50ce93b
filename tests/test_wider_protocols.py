"""WIDER protocols of the RetinaFace models: each scale rule against insightface's test code
(restated plainly below from detection/retinaface/test_widerface.py and retinaface.py), the
multi-scale merge (box voting, mirrored passes) on fixed detections, the per-pass job, the
protocol entries of the accuracy configs, and accuracy_check with every protocol."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import shared_path
from facezoo.evaluate.adapters.retinaface import Detections, RetinaFaceSettings, merge, unmirror, unscale
from facezoo.evaluate.adapters.voting import box_vote
from facezoo.evaluate.config import load_accuracy_config
from facezoo.evaluate.errors import EvaluateError
from facezoo.evaluate.run import _dataset_spec
from facezoo.evaluate.scaling import ScaleRule, image_scales, scaled_size
from facezoo.evaluate.wider_task import ScaledDetectJob, merge_passes
from facezoo.registry import load_registry

RETINAFACE = ["retinaface-mnet025-v1", "retinaface-mnet025-v2", "retinaface-resnet50"]
PROTOCOLS = ["default", "omz-640", "original", "mxnet-1600", "multiscale-flip"]
SIZES = [(683, 1024), (1024, 683), (1024, 1024), (450, 1024), (1365, 1024), (3000, 200), (97, 33), (1, 5000),
         (1600, 2150), (2151, 1600), (744, 1000)]


# --- insightface's rules, restated as plainly as its test code states them ---

def insightface_scales(height: int, width: int, pyramid: bool) -> list[float]:
    """test_widerface.get_boxes: the scales passed to RetinaFace.detect."""
    target_size, max_size = (800, 1200) if pyramid else (1600, 2150)
    im_size_min, im_size_max = np.min([height, width]), np.max([height, width])
    im_scale = float(target_size) / float(im_size_min)
    if np.round(im_scale * im_size_max) > max_size:
        im_scale = float(max_size) / float(im_size_max)
    if not pyramid:
        return [im_scale]
    return [float(scale) / target_size * im_scale for scale in [500, 800, 1100, 1400, 1700]]


def insightface_bbox_vote(det: np.ndarray, threshold: float) -> np.ndarray:
    """RetinaFace.bbox_vote on rows (x1, y1, x2, y2, score), sorted by score."""
    dets = None
    while det.shape[0] > 0:
        if dets is not None and dets.shape[0] >= 750:
            break
        area = (det[:, 2] - det[:, 0] + 1) * (det[:, 3] - det[:, 1] + 1)
        xx1 = np.maximum(det[0, 0], det[:, 0])
        yy1 = np.maximum(det[0, 1], det[:, 1])
        xx2 = np.minimum(det[0, 2], det[:, 2])
        yy2 = np.minimum(det[0, 3], det[:, 3])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        o = inter / (area[0] + area[:] - inter)
        merge_index = np.where(o >= threshold)[0]
        det_accu = det[merge_index, :]
        det = np.delete(det, merge_index, 0)
        if merge_index.shape[0] <= 1:
            if det.shape[0] == 0:
                dets = det_accu if dets is None else np.vstack((dets, det_accu))
            continue
        det_accu[:, 0:4] = det_accu[:, 0:4] * np.tile(det_accu[:, -1:], (1, 4))
        summed = np.zeros((1, 5))
        summed[:, 0:4] = np.sum(det_accu[:, 0:4], axis=0) / np.sum(det_accu[:, -1:])
        summed[:, 4] = np.max(det_accu[:, 4])
        dets = summed if dets is None else np.vstack((dets, summed))
    return np.zeros((0, 5)) if dets is None else dets[0:750, :]


# --- scale rules ---

MXNET_1600 = ScaleRule(target_size=1600, max_size=2150)
PYRAMID = ScaleRule(target_size=800, max_size=1200, sizes=(500, 800, 1100, 1400, 1700), flip=True)


@pytest.mark.parametrize("height,width", SIZES)
def test_scale_rules_equal_insightfaces(height, width):
    assert image_scales(MXNET_1600, height, width) == tuple(insightface_scales(height, width, pyramid=False))
    assert image_scales(PYRAMID, height, width) == tuple(insightface_scales(height, width, pyramid=True))
    assert image_scales(ScaleRule(factor=1.0), height, width) == (1.0,)


@pytest.mark.parametrize("height,width", [s for s in SIZES if min(s) > 1])
def test_scaled_size_is_what_opencv_resizes_to(height, width):
    import cv2
    image = np.zeros((height, width, 3), np.uint8)
    for scale in image_scales(MXNET_1600, height, width) + image_scales(PYRAMID, height, width):
        resized = cv2.resize(image, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        assert resized.shape[:2] == scaled_size(height, width, scale), scale


def test_the_long_side_cap_is_applied_after_rounding_as_insightface_does():
    # 1600 / 1200 x 1612 = 2149.33 rounds to 2149 <= 2150: the short side stays 1600
    assert scaled_size(1200, 1612, image_scales(MXNET_1600, 1200, 1612)[0]) == (1600, 2149)
    # 1600 / 1200 x 1613 = 2150.67 rounds to 2151 > 2150: the long side becomes 2150 (1200 x 2150 / 1613 = 1599.5
    # rounds to even)
    assert scaled_size(1200, 1613, image_scales(MXNET_1600, 1200, 1613)[0]) == (1600, 2150)
    assert scaled_size(1200, 1700, image_scales(MXNET_1600, 1200, 1700)[0]) == (1518, 2150)


# --- box voting and the multi-scale merge ---

def _clusters(rng, count: int, members: tuple[int, int], singles: int, spread: float = 3.0) -> np.ndarray:
    """Rows (x1, y1, x2, y2, score): `count` clusters of jittered boxes and `singles` lone boxes, distinct scores."""
    rows = []
    for _ in range(count):
        x, y, s = rng.uniform(0, 4000), rng.uniform(0, 4000), rng.uniform(8, 200)
        for _ in range(rng.integers(*members)):
            j = rng.normal(0, spread, 4)
            rows.append([x + j[0], y + j[1], x + s + j[2], y + s + j[3]])
    for _ in range(singles):
        x, y, s = rng.uniform(5000, 9000), rng.uniform(5000, 9000), rng.uniform(8, 50)
        rows.append([x, y, x + s, y + s])
    boxes = np.array(rows)
    scores = rng.permutation(len(boxes)) / len(boxes) * 0.98 + 0.02
    return np.concatenate([boxes, scores[:, None]], axis=1)


def _vote_both(det: np.ndarray, threshold: float = 0.4):
    order = np.argsort(-det[:, 4], kind="stable")
    expected = insightface_bbox_vote(det[order].copy(), threshold)
    marks = np.zeros((len(det), 5, 2))
    boxes, scores, landmarks = box_vote(det[:, :4], det[:, 4], marks, threshold)
    return expected, boxes, scores, landmarks


@pytest.mark.parametrize("seed,count,members,singles", [(0, 40, (1, 12), 30), (1, 5, (2, 3), 0), (2, 200, (1, 4), 200),
                                                         (3, 1, (1, 2), 1), (4, 60, (5, 40), 5)])
def test_box_voting_equals_insightfaces_loop(seed, count, members, singles):
    expected, boxes, scores, landmarks = _vote_both(_clusters(np.random.default_rng(seed), count, members, singles))
    assert len(scores) == len(expected) and len(landmarks) == len(expected)
    assert np.allclose(boxes, expected[:, :4], rtol=0, atol=1e-9) and np.array_equal(scores, expected[:, 4])


def test_box_voting_drops_lone_boxes_except_the_last_and_stops_at_750():
    lone = np.array([[0, 0, 10, 10, 0.9], [100, 100, 110, 110, 0.8], [0, 0, 10, 11, 0.7], [500, 500, 520, 520, 0.6]])
    expected, boxes, scores, _ = _vote_both(lone)
    # the 0.8 box is alone and dropped; the 0.9/0.7 pair is merged; the last box (alone) is kept as it is
    assert scores.tolist() == [0.9, 0.6] == expected[:, 4].tolist()
    assert np.allclose(boxes[0], (0.9 * lone[0, :4] + 0.7 * lone[2, :4]) / 1.6) and np.array_equal(boxes[1], lone[3, :4])
    many = _clusters(np.random.default_rng(5), 900, (2, 3), 0, spread=0.5)
    expected, boxes, scores, _ = _vote_both(many)
    assert len(scores) == len(expected) == 750 and np.array_equal(scores, expected[:, 4])
    assert box_vote(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)), 0.4)[1].shape == (0,)


def test_voting_counts_an_overlap_of_exactly_the_threshold():
    # the two boxes overlap by IoU exactly 0.5 (+1 convention): insightface merges at >= t, greedy NMS keeps both (> t)
    pair = np.array([[0, 0, 9, 9, 0.9], [0, 0, 9, 19, 0.8], [300, 300, 310, 310, 0.1]])
    expected, boxes, scores, _ = _vote_both(pair, 0.5)
    assert scores.tolist() == expected[:, 4].tolist() == [0.9, 0.1]


def test_unmirror_and_unscale_follow_insightfaces_arithmetic():
    rng = np.random.default_rng(7)
    width, scale = 803, 1.5625
    boxes = np.sort(rng.uniform(0, width - 1, (6, 2, 2)), axis=1).transpose(0, 2, 1).reshape(6, 4)[:, [0, 2, 1, 3]]
    marks = rng.uniform(0, width - 1, (6, 5, 2))
    found = unscale(unmirror(Detections(boxes, rng.uniform(size=6), marks), width), scale)
    # retinaface.detect: proposals[:, 0] = im.shape[1] - oldx2 - 1 ...; proposals[:, 0:4] /= im_scale
    assert np.array_equal(found.boxes[:, 0], (width - boxes[:, 2] - 1) / scale)
    assert np.array_equal(found.boxes[:, 2], (width - boxes[:, 0] - 1) / scale)
    assert np.array_equal(found.boxes[:, [1, 3]], boxes[:, [1, 3]] / scale)
    flipped = marks.copy()
    flipped[:, :, 0] = width - marks[:, :, 0] - 1
    assert np.array_equal(found.landmarks, flipped[:, [1, 0, 2, 4, 3]] / scale)


def test_passes_merge_per_image_in_pass_order():
    rng = np.random.default_rng(3)
    det = _clusters(rng, 10, (1, 5), 3)
    parts = np.array_split(det, 4)
    keys = [("a.jpg", k // 2, bool(k % 2)) for k in range(4)]
    found = {key: Detections(p[:, :4], p[:, 4], np.zeros((len(p), 5, 2))) for key, p in zip(keys[::-1], parts[::-1])}
    found[("b.jpg", 0, False)] = Detections(det[:2, :4], det[:2, 4], np.zeros((2, 5, 2)))
    voting = RetinaFaceSettings(box_voting=True)
    merged = merge_passes(found, voting)
    assert set(merged) == {"a.jpg", "b.jpg"}
    whole = merge(Detections(det[:, :4], det[:, 4], np.zeros((len(det), 5, 2))), voting)
    assert np.array_equal(merged["a.jpg"].boxes, whole.boxes) and np.array_equal(merged["a.jpg"].scores, whole.scores)
    nms = merge_passes(found, RetinaFaceSettings())["a.jpg"]
    assert len(nms.scores) > 0 and np.all(np.diff(nms.scores) <= 0)


# --- the per-pass job ---

def test_scaled_job_runs_every_pass_of_an_image_at_its_scale():
    folder = shared_path("data", "wider_val_dev", "WIDER_val", "images")
    path = "0--Parade/0_Parade_marchingband_1_465.jpg"
    job = ScaledDetectJob(folder, 3, 64_000_000, PYRAMID, RetinaFaceSettings(box_voting=True))
    keys = job.keys([path])
    assert keys == [(path, k, f) for k in range(5) for f in (False, True)]
    import cv2
    image = cv2.imread(str(folder / path))
    scales = insightface_scales(*image.shape[:2], pyramid=True)
    for key in keys[:4]:
        blob, (scale, width, height) = job.load(key)
        assert scale == scales[key[1]] and blob.shape == (1, 3, height, width) and blob.dtype == np.uint8
        assert (height, width) == scaled_size(*image.shape[:2], scale)
    plain, _ = job.load(keys[2])
    mirrored, _ = job.load(keys[3])
    assert np.array_equal(mirrored, plain[..., ::-1])
    original = ScaledDetectJob(folder, 3, 64_000_000, ScaleRule(factor=1.0), RetinaFaceSettings())
    blob, info = original.load((path, 0, False))
    assert np.array_equal(blob[0].transpose(1, 2, 0), image) and info == (1.0, image.shape[1], image.shape[0])


# --- the accuracy configs ---

@pytest.mark.parametrize("name", RETINAFACE)
def test_every_retinaface_config_names_the_five_protocols(name):
    model = next(m for m in load_registry() if m.name == name)
    config = load_accuracy_config(model.accuracy_config_path)
    dataset = config.datasets[0].name
    specs = {d.protocol: d for d in config.datasets if d.name == dataset}
    assert list(specs) == PROTOCOLS
    assert specs["default"].resize == 640 and specs["default"].scale_rule is None and not specs["default"].adapter
    assert specs["omz-640"].adapter == {"score_threshold": 0.0, "nms_threshold": 0.5, "nms_per_stride": True,
                                        "nms_plus_one": False, "clip": False}
    assert specs["original"].scale_rule == ScaleRule(factor=1.0)
    assert specs["mxnet-1600"].scale_rule == MXNET_1600
    assert specs["multiscale-flip"].scale_rule == PYRAMID and specs["multiscale-flip"].adapter == {"box_voting": True}
    for spec in specs.values():
        assert {m.name for m in spec.metrics} >= {"omz_ap64", "wider_official_easy", "wider_official_medium",
                                                  "wider_official_hard"}
    with pytest.raises(EvaluateError, match=r"--protocol mxnet: not a protocol of .* \(it has: default, omz-640, "
                                            r"original, mxnet-1600, multiscale-flip\)"):
        _dataset_spec(config, None, "mxnet")
    assert _dataset_spec(config, None, None).protocol == "default"


# --- accuracy_check with each protocol ---

@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocols")
    for argv in (["facezoo.download.cli", "--name", "retinaface-mnet025-v1", "--mirror",
                  str(shared_path("data", "mirror")), "-o", str(root / "dl")],
                 ["facezoo.convert.cli", "--name", "retinaface-mnet025-v1", "-d", str(root / "dl"), "-o",
                  str(root / "ir"), "--precisions", "FP32"]):
        subprocess.run([sys.executable, "-m", *argv], check=True, capture_output=True)
    return root / "ir"


def _accuracy_check(*args):
    return subprocess.run([sys.executable, "-m", "facezoo.evaluate.cli", "-c",
                           "models/public/retinaface-mnet025-v1/accuracy-check.yml",
                           "-s", str(shared_path("data", "wider_val_dev")), "--no_progress", *map(str, args)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_accuracy_check_runs_each_protocol(converted, tmp_path, protocol):
    proc = _accuracy_check("-m", converted, "--protocol", protocol, "--subsample_size", "2",
                           "--json_result", tmp_path / "r.json")
    assert proc.returncode in (0, 1), proc.stderr
    for metric in ("omz_ap64", "wider_official_easy", "wider_official_medium", "wider_official_hard"):
        assert f"  {metric} " in proc.stdout
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["run"]["protocol"] == protocol
    dynamic = protocol in ("original", "mxnet-1600", "multiscale-flip")
    assert result["run"]["model_file"].endswith("-dynamic.xml" if dynamic else "retinaface-mnet025-v1.xml")


def test_stored_predictions_of_one_protocol_are_refused_for_another(converted, tmp_path):
    stored = tmp_path / "p.npz"
    proc = _accuracy_check("-m", converted, "--protocol", "original", "--subsample_size", "2",
                           "--stored_predictions", stored)
    assert proc.returncode in (0, 1) and stored.is_file(), proc.stderr
    again = _accuracy_check("--protocol", "original", "--subsample_size", "2", "--stored_predictions", stored)
    metrics = lambda out: [line for line in out.splitlines() if line.startswith("  wider_official")]  # noqa: E731
    assert again.returncode in (0, 1) and len(metrics(again.stdout)) == 3
    assert metrics(again.stdout) == metrics(proc.stdout)
    other = _accuracy_check("--protocol", "mxnet-1600", "--subsample_size", "2", "--stored_predictions", stored)
    assert other.returncode == 2 and "protocol" in other.stderr and len(other.stderr.strip().splitlines()) == 1
