import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from facezoo.convert import ConvertError, convert_model
from facezoo.convert.mxnet.ndarray_file import read_ndarray_file, write_ndarray_file
from facezoo.convert.mxnet.symbol import Node, read_symbol
from facezoo.convert.ops import mxnet_reshape
from facezoo.convert.to_onnx import mxnet_to_onnx
from facezoo.convert.check import verify_converted
from facezoo.convert.verify import compare, converted_input, fixed_inputs, mxnet_outputs, original_input, run_ir
from facezoo.registry import Conversion, InputSpec, load_registry
from synthetic_models import OUTPUTS as R50_OUTPUTS
from synthetic_models import write_mobilefacenet_arcface, write_retinaface_r50

MODELS = {m.name: m for m in load_registry()}
MFN_SYMBOL = ("data", "converter-cases", "mobilefacenet-arcface-symbol", "model-symbol.json")
MIRROR_MODELS = ["retinaface-mnet025-v1", "retinaface-mnet025-v2", "mobileface-identification-v1",
                 "mobileface-identification-v2", "mobileface-identification-v3"]


def test_params_reader_round_trips_every_dtype(tmp_path):
    arrays = {"arg:w": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "aux:m": np.array([1.5], np.float64),
              "arg:h": np.array([1, 2], np.float16), "arg:i": np.array([[7]], np.int32)}
    write_ndarray_file(tmp_path / "x.params", arrays)
    back = read_ndarray_file(tmp_path / "x.params")
    assert list(back) == list(arrays)
    for k in arrays:
        assert back[k].dtype == arrays[k].dtype and np.array_equal(back[k], arrays[k])


def test_params_reader_reads_the_legacy_layout():
    params = read_ndarray_file(shared_path("data", "mirror", "mobileface-identification-v1",
                                           "MobileFace_Identification_V1-0000.params"))
    assert len(params) == 187 and params["aux:batchnorm7_moving_mean"].shape == (96,)


def _valid(tmp_path) -> bytes:
    write_ndarray_file(tmp_path / "ok.params", {"arg:w": np.ones((4, 4), np.float32)})
    return (tmp_path / "ok.params").read_bytes()


def test_truncated_params(tmp_path):
    data = _valid(tmp_path)
    (tmp_path / "t.params").write_bytes(data[:70])
    with pytest.raises(ConvertError, match=r"t\.params: array #0 data of shape \(4, 4\).*only \d+ remain"):
        read_ndarray_file(tmp_path / "t.params")


@pytest.mark.parametrize("rows,message", [
    (10**6, r"claims 16000000 bytes at byte 64 but only 85 remain"),  # more than the file holds
    (10**12, r"claims shape \(1000000000000, 4\), larger than any \.params file can hold")])
def test_lying_header_is_refused_without_a_giant_allocation(tmp_path, rows, message):
    data = bytearray(_valid(tmp_path))
    struct.pack_into("<q", data, 24 + 12, rows)  # the first dimension lies
    (tmp_path / "l.params").write_bytes(bytes(data))
    with pytest.raises(ConvertError, match=message):
        read_ndarray_file(tmp_path / "l.params")


def test_unknown_dtype_names_the_array(tmp_path):
    data = bytearray(_valid(tmp_path))
    struct.pack_into("<i", data, 24 + 12 + 16 + 8, 99)
    (tmp_path / "d.params").write_bytes(bytes(data))
    with pytest.raises(ConvertError, match="array #0 has unknown dtype flag 99"):
        read_ndarray_file(tmp_path / "d.params")


def test_not_a_params_file(tmp_path):
    (tmp_path / "x.params").write_bytes(b"hello world, not mxnet at all")
    with pytest.raises(ConvertError, match="not an MXNet NDArray file"):
        read_ndarray_file(tmp_path / "x.params")


@pytest.mark.parametrize("src,spec,out", [
    ((2, 3, 4), (0, -1), (2, 12)), ((2, 3, 4), (-3, 0), (6, 4)), ((2, 3, 4), (-2,), (2, 3, 4)),
    ((2, 12, 5), (0, -4, 3, -1, 0), (2, 3, 4, 5)), ((1, 4, 20, 20), (0, 2, -1, 0), (1, 2, 40, 20))])
def test_mxnet_reshape_special_values(src, spec, out):
    assert mxnet_reshape(src, spec, Node(1, "Reshape", "r", {}, ((0, 0),))) == out


def _bn_graph(tmp_path, fix_gamma: str | None):
    import json
    attrs = {"eps": "1e-5"}
    if fix_gamma is not None:
        attrs["fix_gamma"] = fix_gamma
    nodes = [{"op": "null", "name": "data", "inputs": []}] + [
        {"op": "null", "name": f"bn_{p}", "inputs": []} for p in ("gamma", "beta", "moving_mean", "moving_var")] + [
        {"op": "BatchNorm", "name": "bn", "attrs": attrs, "inputs": [[i, 0, 0] for i in range(5)]}]
    (tmp_path / "bn-symbol.json").write_text(json.dumps({"nodes": nodes, "arg_nodes": [0, 1, 2, 3, 4],
                                                         "heads": [[5, 0, 0]]}))
    params = {"arg:bn_gamma": np.array([3.0, 0.5], np.float32), "arg:bn_beta": np.array([0.1, -0.2], np.float32),
              "aux:bn_moving_mean": np.array([1.0, 2.0], np.float32),
              "aux:bn_moving_var": np.array([4.0, 0.25], np.float32)}
    return read_symbol(tmp_path / "bn-symbol.json"), params


@pytest.mark.parametrize("fix_gamma,gamma_used", [(None, False), ("True", False), ("False", True)])
def test_batchnorm_fix_gamma_ignores_the_stored_gamma(tmp_path, fix_gamma, gamma_used):
    """MXNet's BatchNorm defaults to fix_gamma=True: the stored gamma (3.0, 0.5) must then be ignored."""
    import onnxruntime as ort
    symbol, params = _bn_graph(tmp_path, fix_gamma)
    conv = Conversion("bn-symbol.json", "bn.params", (InputSpec("data", (1, 2, 1, 1), "NCHW", "RGB"),))
    model, _ = mxnet_to_onnx(symbol, params, conv)
    x = np.array([5.0, 1.0], np.float32).reshape(1, 2, 1, 1)
    y = ort.InferenceSession(model.SerializeToString())
    out = y.run(None, {"data": x})[0].ravel()
    gamma = params["arg:bn_gamma"] if gamma_used else np.ones(2, np.float32)
    expected = (x.ravel() - [1.0, 2.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5) * gamma + [0.1, -0.2]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_unsupported_op_names_node_and_supported_list(tmp_path):
    import json
    nodes = [{"op": "null", "name": "data", "inputs": []}, {"op": "Fancy", "name": "f1", "inputs": [[0, 0, 0]]}]
    (tmp_path / "s.json").write_text(json.dumps({"nodes": nodes, "arg_nodes": [0], "heads": [[1, 0, 0]]}))
    conv = Conversion("s.json", "s.params", (InputSpec("data", (1, 3, 8, 8), "NCHW", "RGB"),))
    with pytest.raises(ConvertError, match=r"node 'f1': operator 'Fancy' is not supported \(supported: .*Convolution"):
        mxnet_to_onnx(read_symbol(tmp_path / "s.json"), {}, conv)


def test_missing_node_input_in_json(tmp_path):
    import json
    nodes = [{"op": "null", "name": "data", "inputs": []},
             {"op": "Activation", "name": "a", "attrs": {"act_type": "relu"}, "inputs": [[5, 0, 0]]}]
    (tmp_path / "s.json").write_text(json.dumps({"nodes": nodes, "arg_nodes": [0], "heads": [[1, 0, 0]]}))
    with pytest.raises(ConvertError, match=r"nodes\[1\] \(a\): inputs\[0\] refers to node 5, which does not exist"):
        read_symbol(tmp_path / "s.json")


def _download_mirror(tmp_path, name):
    mirror = shared_path("data", "mirror")
    subprocess.run([sys.executable, "-m", "facezoo.download.cli", "--name", name, "--mirror", str(mirror),
                    "-o", str(tmp_path / "dl")], check=True, capture_output=True)
    return tmp_path / "dl"


def _converter(*args):
    return subprocess.run([sys.executable, "-m", "facezoo.convert.cli", *map(str, args)], capture_output=True,
                          text=True)


def test_parameter_shape_mismatch_exits_with_one_line_and_no_output(tmp_path):
    dl = _download_mirror(tmp_path, "mobileface-identification-v3")
    params = dl / "public/mobileface-identification-v3/MobileFace_Identification_V3-0000.params"
    arrays = read_ndarray_file(params)
    arrays["arg:prelu1_gamma"] = np.ones(31, np.float32)
    write_ndarray_file(params, arrays)
    proc = _converter("--name", "mobileface-identification-v3", "-d", dl, "-o", tmp_path / "ir")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "'prelu1_gamma' has shape (31,) in the .params file, the graph needs (32,)" in proc.stderr
    assert not any(p.is_file() for p in (tmp_path / "ir").rglob("*")) if (tmp_path / "ir").exists() else True


def test_truncated_params_exits_with_one_line_and_no_output(tmp_path):
    dl = _download_mirror(tmp_path, "retinaface-mnet025-v1")
    params = dl / "public/retinaface-mnet025-v1/mnet10-0000.params"
    params.write_bytes(params.read_bytes()[:100_000])
    proc = _converter("--name", "retinaface-mnet025-v1", "-d", dl, "-o", tmp_path / "ir")
    assert proc.returncode == 2 and "truncated" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ir").exists() or not any(p.is_file() for p in (tmp_path / "ir").rglob("*"))


def _needs_mxnet():
    if not os.environ.get("FACEZOO_MXNET_PYTHON"):
        pytest.skip("FACEZOO_MXNET_PYTHON is not set: no MXNet reference environment (.ci/run makes one)")


@pytest.mark.parametrize("name", MIRROR_MODELS)
def test_real_checkpoints_match_mxnet_on_noise_and_a_real_photo(tmp_path, name):
    _needs_mxnet()
    import cv2
    model = MODELS[name]
    dl = _download_mirror(tmp_path, name)
    converted = convert_model(model, dl, tmp_path / "ir", ["FP32", "FP16"])
    photo = cv2.imread(str(shared_path("data", "photos", "01.jpg" if "retina" in name else "aligned_112/0.jpg")))
    symbol, params = dl / model.subdirectory / model.conversion.symbol, dl / model.subdirectory / model.conversion.params
    for raw in (fixed_inputs(model), fixed_inputs(model, photo)):
        # the reference gets the original's input (RGB, normalised outside where the model says so);
        # the IR gets BGR raw values: reverse_input_channels and mean/scale are folded into it
        reference = mxnet_outputs(model, symbol, params, original_input(model, raw))
        feed = {"data": converted_input(model, raw)}
        for c in compare(run_ir(converted.ir_paths["FP32"], feed), reference):
            assert c.ok, (name, c)
        for c in compare(run_ir(converted.ir_paths["FP16"], feed), reference):
            if model.task_type == "face_recognition":
                assert c.cosine >= 0.999, (name, c)
            elif "cls_prob" in c.output:
                assert c.max_abs_error <= 2e-2 * np.abs(reference[c.output]).max(), (name, c)


def test_converter_cli_end_to_end_with_verify(tmp_path):
    _needs_mxnet()
    dl = _download_mirror(tmp_path, "retinaface-mnet025-v1")
    proc = _converter("--name", "retinaface-mnet025-v1", "-d", dl, "-o", tmp_path / "ir", "--verify",
                      "--verify_image", shared_path("data", "photos", "friends.jpg"))
    assert proc.returncode == 0, proc.stderr
    # 9 outputs x 2 inputs x 2 precisions, for the fixed IR at 640x640 and the dynamic IR at 640x640 and 481x803
    assert "FAIL" not in proc.stdout and proc.stdout.count(" ok") == 108
    assert proc.stdout.count("FP32 dynamic 481x803") == 18
    base = tmp_path / "ir" / "public" / "retinaface-mnet025-v1"
    for stem in ("retinaface-mnet025-v1", "retinaface-mnet025-v1-dynamic"):
        for p in ("FP32", "FP16"):
            assert (base / p / f"{stem}.xml").is_file() and (base / p / f"{stem}.bin").is_file()
        assert (base / f"{stem}.onnx").is_file()


def test_dry_run_writes_nothing(tmp_path):
    dl = _download_mirror(tmp_path, "mobileface-identification-v2")
    proc = _converter("--name", "mobileface-identification-v2", "-d", dl, "-o", tmp_path / "ir", "--dry_run")
    assert proc.returncode == 0 and "fc5_bn [1, 256]" in proc.stdout and "GFLOPs" in proc.stdout
    assert not (tmp_path / "ir").exists()


def _case_model(name: str, symbol: Path, params: Path, outputs=None):
    """A registry-style model for a converter case that is not in the registry."""
    from facezoo.registry import Model
    shape = (1, 3, 640, 640) if "retina" in name else (1, 3, 112, 112)
    conv = Conversion(symbol.name, params.name, (InputSpec("data", shape, "NCHW", "RGB"),),
                      reverse_input_channels=True, outputs=outputs)
    task = "detection" if "retina" in name else "face_recognition"
    return Model(name, f"public/{name}", symbol.parent, name, task, "mxnet", "https://example.invalid", (),
                 conversion=conv)


def _check_case(tmp_path, model, symbol, params):
    import cv2
    import onnx
    import openvino as ov
    graph, _ = mxnet_to_onnx(read_symbol(symbol), read_ndarray_file(params), model.conversion)
    onnx.save(graph, tmp_path / "m.onnx")
    ov.save_model(ov.convert_model(tmp_path / "m.onnx"), tmp_path / "m.xml", compress_to_fp16=False)
    photo = cv2.imread(str(shared_path("data", "photos", "friends.jpg")))
    for raw in (fixed_inputs(model), fixed_inputs(model, photo)):
        reference = mxnet_outputs(model, symbol, params, original_input(model, raw))
        for c in compare(run_ir(tmp_path / "m.xml", {"data": converted_input(model, raw)}), reference):
            assert c.ok, c


def test_converter_case_community_mnet25_matches_mxnet(tmp_path):
    _needs_mxnet()
    case = shared_path("data", "converter-cases", "retinaface-mnet.25")
    symbol, params = case / "mnet.25-symbol.json", case / "mnet.25-0000.params"
    _check_case(tmp_path, _case_model("mnet25", symbol, params), symbol, params)


def _convert_synthetic_mission_model(tmp_path, name: str):
    """Write the mission model's synthetic checkpoint where omz_downloader would put the real one,
    convert it with the registry's own conversion settings, and verify it against MXNet."""
    import cv2
    model = MODELS[name]
    folder = tmp_path / "dl" / model.subdirectory
    if name == "retinaface-resnet50":
        write_retinaface_r50(folder, prefix="R50")
        photo = cv2.imread(str(shared_path("data", "photos", "friends.jpg")))
    else:
        write_mobilefacenet_arcface(folder / "model-y1-test2", shared_path(*MFN_SYMBOL), os.environ["FACEZOO_MXNET_PYTHON"])
        photo = cv2.imread(str(shared_path("data", "photos", "aligned_112", "1.jpg")))
    converted = convert_model(model, tmp_path / "dl", tmp_path / "ir", ["FP32", "FP16"])
    lines = verify_converted(model, converted, tmp_path / "dl", photo)
    # noise and photo, FP32 and FP16; a dynamic IR besides at the declared and a second size
    assert len(lines) == 2 * 2 * len(converted.report.outputs) * (3 if model.conversion.dynamic_input else 1)
    for line in lines:
        assert line.passed, (name, line)
    return converted


def test_synthetic_retinaface_r50_matches_mxnet(tmp_path):
    """The full RetinaFace-R50 topology (ResNet-50 with bn_data first, FPN with nearest UpSampling
    and Crop, SSH modules, 9 outputs) with random weights: FP32 and FP16 IR against MXNet."""
    _needs_mxnet()
    converted = _convert_synthetic_mission_model(tmp_path, "retinaface-resnet50")
    report = converted.report
    assert list(report.outputs) == list(R50_OUTPUTS)
    assert abs(report.parameters / 1e6 - 29.4276) < 0.1 and abs(report.gflops - 100.8478) < 1.0


def test_mobilefacenet_arcface_graph_with_synthetic_weights_matches_mxnet(tmp_path):
    """The real insightface MobileFaceNet graph; its weights are not available offline, so random
    ones of the right shapes are written in MXNet's format (BatchNorm gammas deliberately not 1)."""
    _needs_mxnet()
    converted = _convert_synthetic_mission_model(tmp_path, "face-recognition-mobilefacenet-arcface")
    assert converted.report.outputs == {"fc1": (1, 128)}


def test_streamed_onnx_file_parses_to_the_same_model(tmp_path):
    """save_onnx writes field by field; the result must load as exactly the model onnx.save writes."""
    import onnx
    from facezoo.convert.onnx_file import save_onnx
    model = MODELS["retinaface-mnet025-v1"]
    dl = _download_mirror(tmp_path, "retinaface-mnet025-v1")
    folder = dl / model.subdirectory
    graph, _ = mxnet_to_onnx(read_symbol(folder / model.conversion.symbol),
                             read_ndarray_file(folder / model.conversion.params), model.conversion)
    save_onnx(graph, tmp_path / "streamed.onnx")
    loaded = onnx.load(tmp_path / "streamed.onnx")
    assert loaded == graph and len(loaded.graph.initializer) > 100
    onnx.checker.check_model(loaded)


def test_progress_steps_match_the_totals_the_bar_announces(tmp_path):
    """The converter's bar total is the sum of conversion_steps: each conversion reports exactly that many
    (a model with dynamic_input converts two graphs)."""
    from facezoo.convert.convert import build_onnx, build_steps, conversion_steps
    for name in ("mobileface-identification-v3", "retinaface-mnet025-v1"):
        model = MODELS[name]
        dl = _download_mirror(tmp_path / name, model.name)
        for precisions in (["FP32"], ["FP32", "FP16"]):
            steps = []
            convert_model(model, dl, tmp_path / name / "ir", precisions, lambda: steps.append(1))
            assert len(steps) == conversion_steps(precisions, model.conversion.dynamic_input)
        steps = []
        build_onnx(model, dl, lambda: steps.append(1))
        assert len(steps) == build_steps(model)


@pytest.mark.parametrize("field,values,message", [
    ("mean_values", (127.5, float("nan"), 127.5), r"conversion\.mean_values\[1\]: nan is not a finite number"),
    ("scale_values", (float("inf"),), r"conversion\.scale_values\[0\]: inf is not a finite number"),
    ("scale_values", (1.0, 0.0, 1.0), r"conversion\.scale_values\[1\]: 0 would divide by zero"),
    ("mean_values", (), r"conversion\.mean_values is empty")])
def test_mean_and_scale_must_be_finite_and_scale_non_zero(field, values, message):
    from dataclasses import replace
    from facezoo.convert.to_onnx import check_conversion
    conversion = replace(MODELS["mobileface-identification-v3"].conversion, **{field: values})
    with pytest.raises(ConvertError, match=message):
        check_conversion(conversion, "model.yml")


def test_every_supported_operator_has_an_attribute_table():
    from facezoo.convert.attributes import SPECS
    from facezoo.convert.ops import OPS
    assert set(SPECS) == set(OPS)


@pytest.mark.parametrize("text,kind,low,value", [
    ("(3, 3)", "ints", 1, (3, 3)), ("(3L, 3L)", "ints", 1, (3, 3)), ("[1,2]", "ints", 0, (1, 2)), ("(1,)", "ints", 1, (1,)),
    ("None", "int", 1, None), ("True", "bool", None, True), ("0", "bool", None, False), ("1e-5", "float", 0, 1e-5),
    ("(0, -4, 2, -1, 0)", "reshape", None, (0, -4, 2, -1, 0))])
def test_attribute_values_parse_as_mxnet_does(text, kind, low, value):
    from facezoo.convert.attributes import Attr, parse_attr
    assert parse_attr(text, Attr(kind, low)) == value


@pytest.mark.parametrize("text,kind,low,message", [
    ("(3.5, 3)", "ints", 1, "a tuple of integers"), ("4.7", "int", 1, "an integer"), ("0", "int", 1, "a positive integer"),
    ("(-1, 2)", "ints", 0, "integers >= 0"), ("2147483648", "int", None, "within"), ("inf", "float", None, "finite"),
    ("(-1, -1)", "reshape", None, "at most one -1"), ("yes", "bool", None, "True or False"), ("(3, 3", "ints", 1, "tuple")])
def test_attribute_values_mxnet_would_refuse_are_refused(text, kind, low, message):
    from facezoo.convert.attributes import Attr, parse_attr
    with pytest.raises(ValueError, match=message):
        parse_attr(text, Attr(kind, low))


def test_every_converter_option_has_help_text():
    from facezoo.convert.cli import build_parser
    missing = [a.option_strings for a in build_parser()._actions if a.option_strings and not a.help]
    assert not missing


def test_staging_moves_all_or_nothing(tmp_path):
    from facezoo.convert.staging import Staging
    with Staging(tmp_path, "t") as staging:
        (staging.dir / "a").write_text("a")
        staging.commit([(staging.dir / "a", tmp_path / "x" / "a")])
    assert (tmp_path / "x" / "a").read_text() == "a"
    with Staging(tmp_path, "t") as staging:
        (staging.dir / "b").write_text("b")
        staging.discard()  # what SIGINT/SIGTERM does
        with pytest.raises(ConvertError, match="interrupted before the outputs were moved"):
            staging.commit([(staging.dir / "b", tmp_path / "b")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_openvino_failure_is_one_line_naming_the_model(tmp_path):
    """OpenVINO runs in its own process (ir_writer.py); what it cannot read is a ConvertError, not a crash."""
    from facezoo.convert.convert import _write_irs
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ConvertError, match=r"^mobileface-identification-v3: OpenVINO could not convert the ONNX "
                                           r"graph: \w+: .+") as caught:
        _write_irs(MODELS["mobileface-identification-v3"], tmp_path / "bad.onnx", {"FP32": tmp_path / "m.xml"},
                   lambda: None)
    assert "\n" not in str(caught.value) and not (tmp_path / "m.xml").exists()
