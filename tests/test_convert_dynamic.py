"""omz_converter's dynamic-size IR (conversion.dynamic_input): same numbers as the fixed IR at the
declared size, any other size runs and decodes, MXNet agrees at other sizes, and graphs that need a
fixed size are refused by name."""
import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from conftest import shared_path
from facezoo.convert import ConvertError, convert_model
from facezoo.convert.builder import Attrs, GraphBuilder
from facezoo.convert.check import second_size
from facezoo.convert.mxnet.ndarray_file import read_ndarray_file
from facezoo.convert.mxnet.symbol import Node, read_symbol
from facezoo.convert.ops import crop, reshape
from facezoo.convert.to_onnx import mxnet_to_onnx
from facezoo.convert.verify import compare, converted_input, fixed_inputs, mxnet_outputs, original_input, run_ir
from facezoo.evaluate.adapters.retinaface import RetinaFaceSettings, decode
from facezoo.registry import load_registry

MODELS = {m.name: m for m in load_registry()}
RETINAFACE = ["retinaface-mnet025-v1", "retinaface-mnet025-v2", "retinaface-resnet50"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """retinaface-mnet025-v1 converted from the mirror: fixed and dynamic IR, FP32 and FP16."""
    root = tmp_path_factory.mktemp("dynamic")
    subprocess.run([sys.executable, "-m", "facezoo.download.cli", "--name", "retinaface-mnet025-v1", "--mirror",
                    str(shared_path("data", "mirror")), "-o", str(root / "dl")], check=True, capture_output=True)
    return convert_model(MODELS["retinaface-mnet025-v1"], root / "dl", root / "ir", ["FP32", "FP16"]), root / "dl"


def test_every_retinaface_model_declares_a_dynamic_input():
    for name in RETINAFACE:
        assert MODELS[name].conversion.dynamic_input, name
    assert not any(m.conversion.dynamic_input for m in MODELS.values() if m.task_type != "detection")


def test_dynamic_ir_input_is_open_and_written_beside_the_fixed_one(converted):
    import openvino as ov
    model, _ = converted
    assert model.dynamic_onnx_path.name == "retinaface-mnet025-v1-dynamic.onnx"
    for precision, xml in model.dynamic_ir_paths.items():
        assert xml == model.ir_paths[precision].with_name("retinaface-mnet025-v1-dynamic.xml")
        shape = ov.Core().read_model(xml).inputs[0].partial_shape
        assert str(shape) == "[1,3,?,?]"
        assert str(ov.Core().read_model(model.ir_paths[precision]).inputs[0].partial_shape) == "[1,3,640,640]"


def test_dynamic_ir_equals_the_fixed_ir_bit_for_bit_at_the_declared_size(converted):
    """The accuracy references measured with the fixed 640x640 IR hold for the dynamic one: at
    640x640 its outputs are the same floats (measured bit-identical, FP32 and FP16 IRs, f32 inference)."""
    import cv2
    model, _ = converted
    photo = cv2.imread(str(shared_path("data", "photos", "friends.jpg")))
    spec = MODELS["retinaface-mnet025-v1"]
    for raw in (fixed_inputs(spec), fixed_inputs(spec, photo)):
        feed = {"data": converted_input(spec, raw)}
        for precision in ("FP32", "FP16"):
            fixed, dynamic = run_ir(model.ir_paths[precision], feed), run_ir(model.dynamic_ir_paths[precision], feed)
            assert fixed.keys() == dynamic.keys() and len(fixed) == 9
            for name in fixed:
                assert np.array_equal(fixed[name], dynamic[name]), (precision, name)


@pytest.mark.parametrize("size", [(481, 803), (1080, 1920), (97, 33), (32, 32)])
def test_dynamic_ir_runs_at_any_size_and_onnxruntime_agrees(converted, size):
    """Feature maps are ceil(side / stride) (stride-2 convolutions with padding 1); the pyramid's
    upsampled maps are cropped to them. The dynamic ONNX file gives the same outputs in ONNX Runtime."""
    import onnxruntime as ort
    model, _ = converted
    raw = fixed_inputs(MODELS["retinaface-mnet025-v1"], size=size)
    ov_out = run_ir(model.dynamic_ir_paths["FP32"], {"data": converted_input(MODELS["retinaface-mnet025-v1"], raw)})
    session = ort.InferenceSession(str(model.dynamic_onnx_path), providers=["CPUExecutionProvider"])
    ort_out = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"data": converted_input(MODELS["retinaface-mnet025-v1"], raw)})))
    for stride in (32, 16, 8):
        cells = (math.ceil(size[0] / stride), math.ceil(size[1] / stride))
        assert ov_out[f"face_rpn_cls_prob_reshape_stride{stride}"].shape == (1, 4, *cells)
        assert ov_out[f"face_rpn_landmark_pred_stride{stride}"].shape == (1, 20, *cells)
    for c in compare(ort_out, ov_out):
        assert c.ok, c
    found = decode(ov_out, (size[1], size[0]), RetinaFaceSettings(score_threshold=0.0))
    assert len(found.boxes) > 0
    assert found.boxes.min() >= 0 and (found.boxes[:, [0, 2]] <= size[1] - 1).all()
    assert (found.boxes[:, [1, 3]] <= size[0] - 1).all()


def _needs_mxnet():
    if not os.environ.get("FACEZOO_MXNET_PYTHON"):
        pytest.skip("FACEZOO_MXNET_PYTHON is not set: no MXNet reference environment (.ci/run makes one)")


@pytest.mark.parametrize("size", [second_size(640, 640), (1001, 667), (150, 1024)])
def test_dynamic_ir_matches_mxnet_at_other_sizes(converted, size):
    _needs_mxnet()
    import cv2
    model, dl = converted
    spec = MODELS["retinaface-mnet025-v1"]
    folder = dl / spec.subdirectory
    photo = cv2.imread(str(shared_path("data", "photos", "01.jpg")))
    raw = fixed_inputs(spec, photo, size=size)
    reference = mxnet_outputs(spec, folder / spec.conversion.symbol, folder / spec.conversion.params,
                              original_input(spec, raw))
    for c in compare(run_ir(model.dynamic_ir_paths["FP32"], {"data": converted_input(spec, raw)}), reference):
        assert c.ok, (size, c)


def test_a_graph_with_a_fully_connected_layer_is_refused(tmp_path):
    """dynamic_input is for fully convolutional graphs; a recogniser's FullyConnected needs its size."""
    model = MODELS["mobileface-identification-v3"]
    folder = shared_path("data", "mirror", model.name)
    conversion = replace(model.conversion, dynamic_input=True)
    with pytest.raises(ConvertError, match=r"node '.*' \(FullyConnected\): a fully connected layer needs a fixed "
                                           r"input size; dynamic_input is for fully convolutional graphs"):
        mxnet_to_onnx(read_symbol(folder / conversion.symbol), read_ndarray_file(folder / conversion.params),
                      conversion, dynamic=True)


@pytest.mark.parametrize("attrs,message", [
    ({"shape": (0, -3, 0)}, r"shape=\(0, -3, 0\) cannot follow an open input size"),
    ({"shape": (-1, -1)}, r"shape=\(-1, -1\) cannot follow"),
    ({"shape": (0, 2, -1, 0), "reverse": True}, r"with reverse=True cannot follow")])
def test_reshapes_without_an_onnx_form_are_refused_when_dynamic(attrs, message):
    b = GraphBuilder(dynamic=True)
    b.shapes["x"] = (1, 4, 20, 20)
    node = Node(1, "Reshape", "r", {}, ((0, 0),))
    with pytest.raises(ConvertError, match=message):
        reshape(b, node, ["x"], Attrs(node, attrs))


def test_dynamic_reshape_keeps_mxnet_codes_and_crop_reads_the_reference_size():
    """(0, 2, -1, 0) means the same in ONNX; a crop to a reference takes the reference's size when it runs."""
    b = GraphBuilder(dynamic=True)
    b.shapes.update({"x": (1, 4, 20, 20), "big": (1, 8, 42, 42), "like": (1, 8, 41, 41)})
    node = Node(1, "Reshape", "r", {}, ((0, 0),))
    reshape(b, node, ["x"], Attrs(node, {"shape": (0, 2, -1, 0)}))
    assert b.constants["r_shape"].tolist() == [0, 2, -1, 0] and b.shape("r") == (1, 2, 40, 20)
    node = Node(2, "Crop", "c", {}, ((0, 0), (1, 0)))
    crop(b, node, ["big", "like"], Attrs(node, {"num_args": 2}))
    assert [n.op_type for n in b.nodes[-3:]] == ["Shape", "Add", "Slice"] and b.shape("c") == (1, 8, 41, 41)
    fixed = GraphBuilder()
    fixed.shapes.update(b.shapes)
    crop(fixed, node, ["big", "like"], Attrs(node, {"num_args": 2}))
    assert fixed.constants["c_ends"].tolist() == [41, 41]
