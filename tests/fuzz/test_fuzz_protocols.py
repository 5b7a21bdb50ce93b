"""Fuzzing the WIDER protocols: any protocol entry (preprocessing steps, adapter options, names)
gives a config or an EvaluateError, and a loaded scale rule gives positive finite scales for any
image size; box voting equals insightface's loop on any boxes of positive size (integer corners,
so overlaps of exactly the threshold and tied scores come up)."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import given
from hypothesis import strategies as st

from facezoo.evaluate.adapters.voting import box_vote
from facezoo.evaluate.config import load_accuracy_config
from facezoo.evaluate.errors import EvaluateError
from facezoo.evaluate.scaling import image_scales, scaled_size
from test_wider_protocols import insightface_bbox_vote

anything = st.one_of(st.integers(-5, 5000), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                    st.text(max_size=4), st.lists(st.integers(-5, 3000), max_size=18))
sides = st.integers(1, 3000)
valid = {"size": sides, "factor": st.floats(0.01, 16), "target_size": sides, "max_size": sides,
         "sizes": st.lists(sides, min_size=1, max_size=6)}
wild_steps = st.fixed_dictionaries({"type": st.sampled_from(["resize", "scale", "flip", "pad", 3])},
                                   optional={k: st.one_of(v, anything) for k, v in {**valid, "mode": anything}.items()})
scale_steps = st.one_of(st.fixed_dictionaries({"type": st.just("scale"), "factor": valid["factor"]}),
                        st.fixed_dictionaries({"type": st.just("scale"), "target_size": sides},
                                              optional={"max_size": sides, "sizes": valid["sizes"]}))
steps = st.one_of(scale_steps, scale_steps, st.just({"type": "flip"}),
                  st.fixed_dictionaries({"type": st.just("resize"), "size": sides}), wild_steps)
adapters = st.dictionaries(st.sampled_from(["box_voting", "nms_per_stride", "nms_threshold", "score_threshold",
                                            "clip", "outputs"]), st.one_of(st.booleans(), st.booleans(), anything),
                           max_size=2)
entries = st.fixed_dictionaries({"name": st.sampled_from(["wider_val_dev", "wider"]), "metrics": st.just(
    [{"type": "omz_ap64"}])}, optional={"protocol": st.one_of(st.sampled_from(["default", "original", "p", "q"]),
                                                               st.text(max_size=70)),
                                        "preprocessing": st.lists(steps, max_size=3), "adapter": adapters})


@given(st.lists(entries, min_size=1, max_size=4), st.lists(st.tuples(st.integers(1, 20000), st.integers(1, 20000)),
                                                           min_size=1, max_size=4))
def test_any_protocol_entry_gives_a_config_or_an_evaluate_error(datasets, sizes):
    doc = {"models": [{"name": "m", "launchers": [{"framework": "openvino", "adapter": {"type": "retinaface"}}],
                       "datasets": datasets}]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yml"
        path.write_text(yaml.safe_dump(doc))
        try:
            config = load_accuracy_config(path)
        except EvaluateError:
            return
    for spec in config.datasets:
        if spec.scale_rule is None:
            continue
        for height, width in sizes:
            scales = image_scales(spec.scale_rule, height, width)
            assert len(scales) == max(1, len(spec.scale_rule.sizes))
            assert all(math.isfinite(s) and s > 0 for s in scales)
            assert all(min(scaled_size(height, width, s)) >= 0 for s in scales)


boxes = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(0, 40), st.integers(0, 40),
                           st.integers(1, 20)), min_size=0, max_size=60)


@given(boxes, st.sampled_from([0.3, 0.4, 0.5, 0.7]))
def test_box_voting_equals_insightfaces_loop_on_any_boxes(rows, threshold):
    det = np.array([[x, y, x + w, y + h, s / 20] for x, y, w, h, s in rows], dtype=np.float64).reshape(-1, 5)
    order = np.argsort(-det[:, 4], kind="stable")
    expected = insightface_bbox_vote(det[order].copy(), threshold)
    got_boxes, got_scores, got_marks = box_vote(det[:, :4], det[:, 4], np.zeros((len(det), 5, 2)), threshold)
    assert got_scores.shape == (len(expected),) and got_marks.shape == (len(expected), 5, 2)
    assert np.allclose(got_boxes, expected[:, :4], rtol=1e-12, atol=1e-9)
    assert np.array_equal(got_scores, expected[:, 4])
