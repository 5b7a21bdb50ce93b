"""insightface .bin sets and the verification protocols under arbitrary input: a result or
EvaluateError, never another exception. Pickles are random bytes, valid .bin files mutated
(bytes flipped, cut, spliced), or random plain data pickled with every protocol; protocols get
random distances, labels and groupings."""
from __future__ import annotations

import pickle

import cv2
import numpy as np
from hypothesis import given, strategies as st

from facezoo.evaluate import EvaluateError
from facezoo.evaluate.datasets.insightface_bin import check_headers, decode, parse_bin
from facezoo.evaluate.metrics.verification import (insightface_val, kfold, omz_lfw_units, omz_subsets,
                                                   verification_accuracy)
from mutation import mutate, mutations

JPEG = cv2.imencode(".jpg", np.full((4, 4, 3), 90, np.uint8))[1].tobytes()
VALID = pickle.dumps(([JPEG] * 4, [True, False]), protocol=4)
plain = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.binary(max_size=8) | st.text(max_size=4)
                     | st.floats(allow_nan=True), lambda inner: st.lists(inner, max_size=5)
                     | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                     max_leaves=20)


def _read(data: bytes) -> None:
    try:
        bins = parse_bin(data, "f.bin")
    except EvaluateError:
        return
    assert len(bins.images) == 2 * len(bins.same) and all(type(b) is bytes for b in bins.images)
    for i in range(len(bins.images)):
        try:
            check_headers(bins)
            image = decode(bins, i)
        except EvaluateError:
            continue
        assert image.ndim == 3 and image.size


@given(st.binary(max_size=400))
def test_random_bytes(data):
    _read(data)


@given(mutations)
def test_mutated_bin(ops):
    _read(mutate(VALID, ops))


@given(plain, st.sampled_from([0, 2, 3, 4, 5]))
def test_random_plain_data(obj, protocol):
    _read(pickle.dumps(obj, protocol=protocol))


@given(st.lists(st.tuples(st.floats(0, 4), st.booleans()), min_size=0, max_size=60), st.floats(1e-4, 0.5))
def test_protocols_on_random_pairs(rows, far):
    distances = np.array([d for d, _ in rows])
    same = np.array([s for _, s in rows], dtype=bool)
    try:
        folds = kfold(len(rows))
    except EvaluateError:
        assert len(rows) < 10
        return
    acc = verification_accuracy(distances, same, folds, far)
    assert 0 <= acc.mean <= 1
    try:
        val = insightface_val(distances, same, folds, far)
        assert 0 <= val.val <= 1 and 0 <= val.far <= 1
    except EvaluateError:
        pass
    try:
        subsets = omz_subsets(distances.astype(np.float32), same, np.arange(len(rows)))
        assert 0 <= subsets.mean <= 1
    except EvaluateError:
        assert len(rows) < 10


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.sampled_from("abcdefgh"), st.booleans()), max_size=40))
def test_omz_grouping_of_any_pairs(rows):
    first, second = [r[0] for r in rows], [r[1] for r in rows]
    units, keep = omz_lfw_units(first, second, np.array([r[2] for r in rows], dtype=bool))
    assert len(units) == len(keep) == len(rows)
    if rows:
        assert sorted(set(units.tolist())) == list(range(len(set(first))))
        assert keep.sum() == len(set(rows))
