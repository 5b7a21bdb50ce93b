"""The fast NMS and matching give exactly what the plain all-pairs definitions give."""
import numpy as np
import pytest
from facezoo.evaluate.adapters.nms import BLOCK, nms, overlapping_pairs
from facezoo.evaluate.metrics.detection import official_overlap
from hypothesis import given
from hypothesis import strategies as st


def _iou_hit(a, b, threshold, one):
    """The reference test of one pair, as a greedy loop over boxes would do it."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + one
    h = min(a[3], b[3]) - max(a[1], b[1]) + one
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0] + one) * (a[3] - a[1] + one) + (b[2] - b[0] + one) * (b[3] - b[1] + one) - inter
    return inter > threshold * union and inter > 0


def _greedy_loop(boxes, scores, threshold, plus_one):
    one = 1.0 if plus_one else 0.0
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if not any(_iou_hit(boxes[k], boxes[i], threshold, one) for k in keep):
            keep.append(i)
    return keep


def _boxes(rng, count, spread=300.0, sizes=(2.0, 120.0)):
    """Boxes of many sizes and aspects, some nested, some repeated, a few degenerate."""
    xy = rng.uniform(0, spread, (count, 2))
    wh = np.exp(rng.uniform(np.log(sizes[0]), np.log(sizes[1]), (count, 2)))
    wh[: count // 3, 1] = wh[: count // 3, 0] * rng.uniform(0.8, 1.25, count // 3)  # face-like aspects
    boxes = np.concatenate([xy, xy + wh], axis=1)
    if count > 10:
        boxes[1] = boxes[0]  # an exact duplicate
        boxes[2] = boxes[0] + [1, 1, -1, -1]  # nested
        boxes[3, 2] = boxes[3, 0] - 0.5  # no width (a partner only with the +1 pixel convention)
        boxes[4, 3] = boxes[4, 1] - 3  # negative height
    return boxes


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.4, 0.5, 0.7, 0.95, 1.0])
@pytest.mark.parametrize("plus_one", [False, True])
def test_nms_equals_the_greedy_loop_at_any_threshold(threshold, plus_one):
    rng = np.random.default_rng(int(threshold * 100) + plus_one)
    boxes = _boxes(rng, 260)
    scores = rng.choice(np.linspace(0, 1, 40), len(boxes))  # with ties
    assert nms(boxes, scores, threshold, plus_one).tolist() == _greedy_loop(boxes, scores, threshold, plus_one)


def test_nms_dense_blocks_then_sparse_pairs():
    """A crowd of near-identical strong boxes (the dense stage) among scattered weak ones (the
    sparse stage): both stages and the hand-over between them."""
    rng = np.random.default_rng(7)
    crowd = np.array([100, 100, 180, 190]) + rng.normal(0, 4, (4 * BLOCK, 4))
    scattered = _boxes(rng, 300, spread=900, sizes=(8, 60))
    boxes = np.concatenate([crowd, scattered])
    scores = np.concatenate([rng.uniform(0.8, 1, len(crowd)), rng.uniform(0, 0.5, len(scattered))])
    assert nms(boxes, scores, 0.5).tolist() == _greedy_loop(boxes, scores, 0.5, False)


def test_pairs_equal_all_pairs():
    rng = np.random.default_rng(3)
    boxes = _boxes(rng, 400, spread=200)
    for threshold in (0.3, 0.5, 0.6):
        a, b = overlapping_pairs(boxes, threshold, False)
        found = {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist())}
        assert len(found) == len(a)  # each pair once
        expected = {(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                    if _iou_hit(boxes[i], boxes[j], threshold, 0.0)}
        assert found == expected


def test_thin_boxes_far_from_the_origin_take_the_plain_sweep():
    """Boxes whose sides are lost in their coordinates' rounding: still the reference set."""
    base = np.array([1e9, 1e9, 1e9, 1e9])
    boxes = base + np.array([[0, 0, 1e-3, 1e-3], [0, 0, 1e-3, 1e-3], [5e-4, 0, 1.5e-3, 1e-3], [0, 0, 2, 2]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, 0.3).tolist() == _greedy_loop(boxes, scores, 0.3, False)


@given(st.lists(st.tuples(*[st.floats(-50, 50, allow_nan=False, width=16)] * 4, st.integers(0, 5)),
                max_size=40),
       st.sampled_from([0.0, 0.3, 0.5, 0.8]), st.booleans())
def test_nms_property(rows, threshold, plus_one):
    boxes = np.array([r[:4] for r in rows], dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] = boxes[:, :2] + np.abs(boxes[:, 2:])
    scores = np.array([r[4] for r in rows], dtype=np.float64)
    assert nms(boxes, scores, threshold, plus_one).tolist() == _greedy_loop(boxes, scores, threshold, plus_one)


# --- the official WIDER metric: all images at once equals the per-image definition ---

def _official_reference(predictions, faces, keep, threshold):
    """The official evaluation image by image, as its code reads (one setting)."""
    from facezoo.evaluate.metrics.detection import normalise_scores, voc_ap
    thresholds = 1 - np.arange(1, 1001) / 1000
    total = np.zeros((1000, 2))
    for (boxes, raw), scores, gt, kept in zip(predictions, normalise_scores(predictions), faces, keep):
        if len(gt) == 0 or len(raw) == 0:
            continue
        order = np.argsort(-raw, kind="stable")
        overlap = official_overlap(gt, boxes[order])
        recalled = np.zeros(len(gt))
        proposal = np.ones(len(order), dtype=bool)
        pred_recall = np.zeros(len(order))
        for h in range(len(order)):
            best = int(np.argmax(overlap[h]))
            if overlap[h, best] >= threshold:
                if best + 1 not in kept:
                    proposal[h] = False
                elif recalled[best] == 0:
                    recalled[best] = 1
            pred_recall[h] = recalled.sum()
        s = scores[order]
        for t, th in enumerate(thresholds):
            last = np.flatnonzero(s >= th)
            if len(last):
                total[t] += [proposal[:last[-1] + 1].sum(), pred_recall[last[-1]]]
    count = sum(len(k) for k in keep)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = total[:, 1] / total[:, 0]
    recall = total[:, 1] / count
    return precision, recall, voc_ap(recall, precision)


def _official_case(rng, integer, images=12):
    predictions, faces, keep = [], [], []
    for n in range(images):
        g = np.round(rng.uniform(0, 200, (int(rng.integers(0, 9)), 2)))
        g = np.concatenate([g, np.round(rng.uniform(3, 60, g.shape))], axis=1)
        faces.append(g.astype(np.int32) if integer else g)
        keep.append(np.flatnonzero(rng.random(len(g)) < 0.6) + 1)
        picks = g[rng.integers(0, max(len(g), 1), int(rng.integers(0, 8)))] if len(g) else np.zeros((0, 4))
        near = picks + rng.normal(0, 2, picks.shape)
        far = rng.uniform(0, 250, (int(rng.integers(0, 8)), 2))
        far = np.concatenate([far, rng.uniform(-3, 70, far.shape)], axis=1)  # some of negative size
        boxes = np.concatenate([near, far])
        scores = np.round(rng.uniform(0, 1, len(boxes)), 1)  # ties, and files not in score order
        predictions.append((boxes, scores))
    return predictions, faces, keep


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.0])
def test_official_metric_equals_the_per_image_definition(integer, threshold):
    from facezoo.evaluate.metrics.detection import wider_official_curve
    for seed in range(4):
        predictions, faces, keep = _official_case(np.random.default_rng(seed), integer)
        precision, recall, ap = _official_reference(predictions, faces, keep, threshold)
        curve = wider_official_curve(predictions, faces, keep, threshold)
        assert np.array_equal(curve.precision, precision, equal_nan=True)
        assert np.array_equal(curve.recall, recall) and curve.ap == ap


def test_official_metric_with_non_finite_predictions():
    """A prediction with a NaN or infinite coordinate is tested against every face of its image,
    NaN overlaps counting as the maximum, as the official code's max does."""
    from facezoo.evaluate.metrics.detection import wider_official_curve
    predictions, faces, keep = _official_case(np.random.default_rng(9), True)
    for boxes, _ in predictions:
        if len(boxes) > 2:
            boxes[0, 2] = np.nan
            boxes[1, 0] = -np.inf
    precision, recall, ap = _official_reference(predictions, faces, keep, 0.5)
    curve = wider_official_curve(predictions, faces, keep, 0.5)
    assert np.array_equal(curve.precision, precision, equal_nan=True) and curve.ap == ap
    assert np.array_equal(curve.recall, recall)


def test_nms_with_small_chunks_and_pair_limit(monkeypatch):
    """Candidates examined in many chunks, and the sparse stage giving up on too many pairs
    (blocks then decide the rest): still the greedy loop's set."""
    import facezoo.evaluate.adapters.nms as module
    rng = np.random.default_rng(11)
    boxes = np.concatenate([_boxes(rng, 150, spread=60, sizes=(20, 40)), _boxes(rng, 150, spread=600)])
    scores = np.concatenate([rng.uniform(0, 0.5, 150), rng.uniform(0.5, 1, 150)])  # the crowd scores low
    expected = _greedy_loop(boxes, scores, 0.5, False)
    for chunk, limit in ((64, 1 << 24), (1 << 22, 50), (64, 50)):
        monkeypatch.setattr(module, "PAIRS_PER_CHUNK", chunk)
        monkeypatch.setattr(module, "PAIR_LIMIT", limit)
        assert nms(boxes, scores, 0.5).tolist() == expected
        assert nms(boxes, scores, 0.0).tolist() == _greedy_loop(boxes, scores, 0.0, False)


# --- VOC-style matching: the sweep's pairs give what every prediction against every face gives ---

def _dense_match(boxes, scores, faces, ignored, threshold, plus_one, multiple, prefer):
    """match_image's rule over the full IoU matrix."""
    from facezoo.evaluate.boxes import iou_matrix
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    boxes = np.asarray(boxes, dtype=float)[order]
    n = len(order)
    tp, skip = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if len(faces) and n:
        iou = iou_matrix(boxes, faces, plus_one)
        best = iou.argmax(axis=1)
        if prefer and (~ignored).any() and ignored.any():
            counted = np.where(ignored[None, :], -np.inf, iou)
            best_counted = counted.argmax(axis=1)
            use = counted[np.arange(n), best_counted] >= threshold
            best = np.where(use, best_counted, np.where(ignored[None, :], iou, -np.inf).argmax(axis=1))
        hit = iou[np.arange(n), best] >= threshold
        for k in range(n):
            if not hit[k]:
                continue
            taken = (tp | skip)[:k] & (best[:k] == best[k])
            if not ignored[best[k]]:
                tp[k] = not taken.any()
            elif multiple or not taken.any():
                skip[k] = True
    return tp, ~tp & ~skip


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.0])
@pytest.mark.parametrize("options", [(False, True, False), (True, False, True), (False, False, True)])
def test_match_image_equals_the_dense_rule(threshold, options):
    from facezoo.evaluate.metrics.detection import match_image
    plus_one, multiple, prefer = options
    rng = np.random.default_rng(int(threshold * 10) + 3 * multiple + prefer)
    for _ in range(5):
        faces = _boxes(rng, int(rng.integers(0, 15)), spread=150, sizes=(5, 60))
        ignored = rng.random(len(faces)) < 0.4
        picks = faces[rng.integers(0, max(len(faces), 1), 40)] if len(faces) else np.zeros((0, 4))
        boxes = np.concatenate([picks + rng.normal(0, 3, picks.shape), _boxes(rng, 40, spread=200, sizes=(3, 80))])
        boxes[rng.integers(0, len(boxes), 2)] = [np.nan, 1, 2, 3]
        scores = np.round(rng.uniform(0, 1, len(boxes)), 1)
        m = match_image(boxes, scores, faces, ignored, threshold, plus_one, multiple, prefer)
        tp, fp = _dense_match(boxes, scores, faces, ignored, threshold, plus_one, multiple, prefer)
        assert m.true_positive.tolist() == tp.tolist() and m.false_positive.tolist() == fp.tolist()


def test_pairwise_iou_is_iou_matrix_bit_for_bit():
    from facezoo.evaluate.boxes import iou_matrix
    from facezoo.evaluate.metrics.detection import _pair_iou
    rng = np.random.default_rng(5)
    a, b = _boxes(rng, 50, spread=80), _boxes(rng, 30, spread=80)
    for one in (0.0, 1.0):
        assert np.array_equal(_pair_iou(a[:, None], b[None, :], one), iou_matrix(a, b, plus_one=bool(one)))


@given(st.floats(-1e7, 1e7), st.lists(st.tuples(st.floats(0, 30), st.floats(0, 30), st.floats(1e-3, 40),
                                                  st.floats(1e-3, 40), st.integers(0, 3)), max_size=30),
       st.sampled_from([0.3, 0.5, 0.7]))
def test_nms_far_from_the_origin(origin, rows, threshold):
    """Boxes of any size far from the origin, where rounding eats into their sides: the sweep's
    margins (or the plain sweep for the thinnest) still give the greedy loop's set."""
    boxes = np.array([[origin + x, origin + y, origin + x + w, origin + y + h] for x, y, w, h, _ in rows])
    scores = np.array([r[4] for r in rows], dtype=np.float64)
    assert nms(boxes.reshape(-1, 4), scores, threshold).tolist() == _greedy_loop(boxes.reshape(-1, 4), scores,
                                                                                threshold, False)
