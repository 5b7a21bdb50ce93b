"""accuracy_check end to end on real data from ../shared: download (mirror) -> convert -> evaluate,
the recorded references, bad inputs, and both mission models wired up on synthetic weights."""
import csv
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT, shared_path
from synthetic_models import write_mobilefacenet_arcface, write_retinaface_r50

MODELS = PROJECT / "models" / "public"


def _tool(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)


def _accuracy_check(*args):
    return _tool("facezoo.evaluate.cli", "--no_progress", *args)


@pytest.fixture(scope="module")
def converted():
    """retinaface-mnet025-v1 and mobileface-identification-v1, downloaded from the mirror and
    converted (once per venv, shared with the hostile cases)."""
    from hostile.models import converted_root

    converted_root("mobileface-identification-v1")
    return converted_root("retinaface-mnet025-v1")


def test_detector_on_wider_val_dev_meets_its_references(converted, tmp_path):
    wider = shared_path("data", "wider_val_dev")
    config = MODELS / "retinaface-mnet025-v1" / "accuracy-check.yml"
    stored = tmp_path / "predictions.npz"
    proc = _accuracy_check("-c", config, "-m", converted, "-s", wider, "--json_result", tmp_path / "r.json",
                           "--csv_result", tmp_path / "r.csv", "--report", tmp_path / "report",
                           "--submission_dir", tmp_path / "submission", "--stored_predictions", stored)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    metrics = {m["name"]: m for m in result["metrics"]}
    assert result["images"] == 200 and all(m["passed"] for m in result["metrics"])
    assert metrics["omz_ap64"]["value"] >= 0.80
    assert set(metrics) == {"omz_ap64", "wider_official_easy", "wider_official_medium", "wider_official_hard"}
    assert (tmp_path / "report" / "index.html").is_file() and (tmp_path / "report" / "pr_curves.png").is_file()
    assert len(list((tmp_path / "submission").rglob("*.txt"))) == 200
    assert "omz_ap64" in (tmp_path / "r.csv").read_text()
    # what was measured: the model file and its hash, precision, dataset, machine, software
    ir = converted / "public" / "retinaface-mnet025-v1" / "FP32" / "retinaface-mnet025-v1.xml"
    run = result["run"]
    assert result["precision"] == run["precision"] == "FP32" and run["model_file"] == str(ir)
    assert run["model_file_sha256"] == hashlib.sha256(ir.read_bytes()).hexdigest()
    assert run["dataset"] == "wider_val_dev" and run["dataset_images"] == 200
    assert run["dataset_root"] == str(wider) and run["config"] == str(config)
    assert {"facezoo", "openvino", "numpy"} <= set(run["versions"]) and run["cpu"]["model"]
    assert run["inference_precision"] == "f32" and run["wall_s"] > 0 and isinstance(run["cpu"]["isa"], list)
    assert "FP32 on wider_val_dev" in proc.stdout and str(ir) in proc.stdout
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 4 and all(r["precision"] == "FP32" and r["model_file"] == str(ir) for r in rows)
    page = (tmp_path / "report" / "index.html").read_text()
    assert str(ir) in page and "FP32" in page and run["model_file_sha256"] in page and "avx" in page
    # outputs get the modes a plain open() gives under the umask (022 here: 0644 files, 0755 folders)
    for path in (tmp_path / "report" / "index.html", tmp_path / "r.json", tmp_path / "r.csv", stored,
                 next((tmp_path / "submission").rglob("*.txt"))):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE((tmp_path / "report").stat().st_mode) == 0o755
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # the stored predictions give exactly the same numbers without running the model
    again = _accuracy_check("-c", config, "-s", wider, "--stored_predictions", stored, "--json_result",
                            tmp_path / "again.json")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text())["metrics"] == result["metrics"]


def test_onnxruntime_launcher_agrees_with_openvino(converted, tmp_path):
    wider = shared_path("data", "wider_val_dev")
    config = MODELS / "retinaface-mnet025-v1" / "accuracy-check.yml"
    values = {}
    for launcher in ("openvino", "onnxruntime"):
        proc = _accuracy_check("-c", config, "-m", converted, "-s", wider, "--launcher", launcher,
                               "--subsample_size", 15, "--json_result", tmp_path / f"{launcher}.json")
        assert proc.returncode in (0, 1), proc.stderr
        values[launcher] = {m["name"]: m["value"] for m in json.loads((tmp_path / f"{launcher}.json").read_text())["metrics"]}
    for name, value in values["openvino"].items():
        assert abs(value - values["onnxruntime"][name]) < 2e-3, name


def test_recogniser_on_aligned_lfw_pairs_meets_its_references(converted, tmp_path):
    lfw = shared_path("data", "lfw", "lfw_aligned_100pair")
    config = MODELS / "mobileface-identification-v1" / "accuracy-check.yml"
    proc = _tool("facezoo.evaluate.cli", "-c", config, "-m", converted, "-s", lfw.parent,
                 "--json_result", tmp_path / "r.json", "--report", tmp_path / "report")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the bar counts inferred images (each face and its mirror image) against their true total
    counts = [(int(done), int(total)) for done, total in re.findall(r"(\d+)/(\d+) \[", proc.stderr)]
    assert counts and all(done <= total == 2 * 200 for done, total in counts), counts
    result = json.loads((tmp_path / "r.json").read_text())
    accuracy = result["metrics"][0]
    assert accuracy["name"] == "lfw_accuracy" and accuracy["value"] >= 0.80 and accuracy["pairs"] == 200
    assert len(accuracy["folds"]) == 10 and (tmp_path / "report" / "roc.png").is_file()
    # an earlier report folder is replaced whole (a stale plot of another run does not survive)
    (tmp_path / "report" / "pr_curves.png").write_bytes(b"stale")
    again = _accuracy_check("-c", config, "-m", converted, "-s", lfw.parent, "--report", tmp_path / "report")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["index.html", "roc.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "report"]


# --- bad inputs: one line naming the file/line/field, exit 2, nothing written ---

def _dataset(tmp_path, annotation: str, images: dict[str, bytes | Path]) -> tuple[Path, Path]:
    """A WIDER-layout dataset root in tmp_path, and definitions naming it 'wider_val_dev'."""
    root = tmp_path / "data"
    for rel, content in images.items():
        target = root / "WIDER_val" / "images" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            target.symlink_to(content)
        else:
            target.write_bytes(content)
    (root / "wider_face_split").mkdir(parents=True)
    (root / "wider_face_split" / "wider_face_val_bbx_gt.txt").write_text(annotation)
    definitions = tmp_path / "definitions.yml"
    definitions.write_text("datasets:\n  - {name: wider_val_dev, type: wider, images: WIDER_val/images,\n"
                           "     annotation: wider_face_split/wider_face_val_bbx_gt.txt}\n")
    return root, definitions


def _config_without_references(tmp_path) -> Path:
    config = tmp_path / "accuracy-check.yml"
    config.write_text("models:\n  - name: retinaface-mnet025-v1\n    launchers:\n      - framework: openvino\n"
                      "        adapter: {type: retinaface}\n    datasets:\n      - name: wider_val_dev\n"
                      "        metrics: [{type: omz_ap64}]\n")
    return config


def _assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accuracy_check: error: "), proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def _real_image():
    return shared_path("data", "wider_val_dev", "WIDER_val", "images", "0--Parade",
                       "0_Parade_marchingband_1_465.jpg")


def test_missing_image(converted, tmp_path):
    root, definitions = _dataset(tmp_path, "0--Parade/absent.jpg\n1\n1 2 30 40 0 0 0 0 0 0\n", {})
    proc = _accuracy_check("-c", _config_without_references(tmp_path), "-m", converted, "-s", root,
                           "-d", definitions, "--json_result", tmp_path / "r.json")
    _assert_one_line_error(proc, "absent.jpg", "image not found")
    assert not (tmp_path / "r.json").exists()


def test_corrupt_jpeg_stops_or_is_counted_with_skip_broken(converted, tmp_path):
    annotation = ("0--Parade/good.jpg\n1\n1 2 30 40 0 0 0 0 0 0\n"
                  "0--Parade/broken.jpg\n1\n1 2 30 40 0 0 0 0 0 0\n")
    root, definitions = _dataset(tmp_path, annotation, {"0--Parade/good.jpg": _real_image(),
                                                        "0--Parade/broken.jpg": b"\xff\xd8\xff\xe0 not really"})
    config = _config_without_references(tmp_path)
    proc = _accuracy_check("-c", config, "-m", converted, "-s", root, "-d", definitions)
    _assert_one_line_error(proc, "broken.jpg")
    proc = _accuracy_check("-c", config, "-m", converted, "-s", root, "-d", definitions, "--skip_broken",
                           "--json_result", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["images"] == 1 and result["broken_images"][0]["image"] == "0--Parade/broken.jpg"
    assert "1 broken images skipped" in proc.stderr


def test_malformed_annotation_line(converted, tmp_path):
    root, definitions = _dataset(tmp_path, "0--Parade/good.jpg\n1\n1 2 30\n", {"0--Parade/good.jpg": _real_image()})
    proc = _accuracy_check("-c", _config_without_references(tmp_path), "-m", converted, "-s", root, "-d", definitions)
    _assert_one_line_error(proc, "wider_face_val_bbx_gt.txt:3:", "expected 10 integers")


def test_pairs_file_naming_an_absent_image(converted, tmp_path):
    lfw = shared_path("data", "lfw", "lfw_aligned_100pair")
    root = tmp_path / "lfw"
    root.mkdir()
    (root / "faces").symlink_to(lfw)
    (root / "pairs.txt").write_text("2 1\nAaron_Sorkin 1 2\nAaron_Sorkin 1 Abdoulaye_Wade 1\n"
                                    "Abdoulaye_Wade 1 7\nAaron_Sorkin 2 Abdoulaye_Wade 2\n")
    definitions = tmp_path / "definitions.yml"
    definitions.write_text("datasets:\n  - {name: lfw_aligned_100pair, type: lfw, images: faces, pairs: pairs.txt}\n")
    proc = _accuracy_check("-c", MODELS / "mobileface-identification-v1" / "accuracy-check.yml", "-m", converted,
                           "-s", root, "-d", definitions)
    _assert_one_line_error(proc, "Abdoulaye_Wade_0007.jpg", "image not found", "pair 3")


def test_config_naming_an_output_the_model_lacks(converted, tmp_path):
    config = tmp_path / "accuracy-check.yml"
    text = (MODELS / "mobileface-identification-v1" / "accuracy-check.yml").read_text()
    config.write_text(text.replace("outputs: [l2normalization1]", "outputs: [fc1]"))
    proc = _accuracy_check("-c", config, "-m", converted, "-s", shared_path("data", "lfw"))
    _assert_one_line_error(proc, "'fc1' is not an output of the model", "l2normalization1")


def test_wrong_annotation_checksum_warns_or_fails_with_strict(converted, tmp_path):
    root, _ = _dataset(tmp_path, "0--Parade/good.jpg\n1\n1 2 30 40 0 0 0 0 0 0\n", {"0--Parade/good.jpg": _real_image()})
    definitions = tmp_path / "definitions.yml"
    definitions.write_text("datasets:\n  - {name: wider_val_dev, type: wider, images: WIDER_val/images,\n"
                           "     annotation: wider_face_split/wider_face_val_bbx_gt.txt,\n"
                           f"     annotation_sha256: {'ab' * 32}}}\n")
    config = _config_without_references(tmp_path)
    proc = _accuracy_check("-c", config, "-m", converted, "-s", root, "-d", definitions)
    assert proc.returncode == 0 and f"differs from the expected {'ab' * 32}" in proc.stderr
    _assert_one_line_error(_accuracy_check("-c", config, "-m", converted, "-s", root, "-d", definitions, "--strict"),
                           "--strict", "ab" * 32)


def test_missing_official_ground_truth_stops_before_inference(converted, tmp_path):
    root, _ = _dataset(tmp_path, "0--Parade/good.jpg\n1\n1 2 30 40 0 0 0 0 0 0\n", {"0--Parade/good.jpg": _real_image()})
    (root / "ground_truth").mkdir()
    (root / "ground_truth" / "wider_face_val.mat").write_bytes(b"")  # present, but the settings' files are not
    definitions = tmp_path / "definitions.yml"
    definitions.write_text("datasets:\n  - {name: wider_val_dev, type: wider, images: WIDER_val/images,\n"
                           "     annotation: wider_face_split/wider_face_val_bbx_gt.txt, ground_truth: ground_truth}\n")
    config = tmp_path / "accuracy-check.yml"
    config.write_text(_config_without_references(tmp_path).read_text().replace(
        "[{type: omz_ap64}]", "[{type: omz_ap64}, {type: wider_official, setting: hard}]"))
    proc = _accuracy_check("-c", config, "-m", converted, "-s", root, "-d", definitions,
                           "--stored_predictions", tmp_path / "p.npz", "--json_result", tmp_path / "r.json")
    _assert_one_line_error(proc, "wider_easy_val.mat", "not found", "official WIDER FACE")
    assert not (tmp_path / "p.npz").exists() and not (tmp_path / "r.json").exists()


# --- the two mission models, synthetic weights: configs and outputs wired right ---

MISSION_DEFINITIONS = """datasets:
  - {name: wider, type: wider, images: WIDER_val/images, annotation: wider_face_split/wider_face_val_bbx_gt.txt,
     ground_truth: ground_truth}
  - {name: lfw, type: lfw, images: lfw_aligned_100pair, generate_pairs_folds: 10}
"""


def _mission_run(tmp_path, name, source, subsample):
    from facezoo.convert import convert_model
    from facezoo.registry import load_registry
    model = {m.name: m for m in load_registry()}[name]
    folder = tmp_path / "dl" / model.subdirectory
    if name == "retinaface-resnet50":
        write_retinaface_r50(folder, prefix="R50")
    else:
        if not os.environ.get("FACEZOO_MXNET_PYTHON"):
            pytest.skip("FACEZOO_MXNET_PYTHON is not set: MXNet gives the parameter shapes (.ci/run sets it)")
        write_mobilefacenet_arcface(folder / "model-y1-test2", shared_path("data", "converter-cases",
                                    "mobilefacenet-arcface-symbol", "model-symbol.json"),
                                    os.environ["FACEZOO_MXNET_PYTHON"])
    convert_model(model, tmp_path / "dl", tmp_path / "ir", ["FP32"])
    definitions = tmp_path / "definitions.yml"
    definitions.write_text(MISSION_DEFINITIONS)
    proc = _accuracy_check("-c", MODELS / name / "accuracy-check.yml", "-m", tmp_path / "ir", "-s", source,
                           "-d", definitions, "--subsample_size", subsample, "--json_result", tmp_path / "r.json")
    return proc, json.loads((tmp_path / "r.json").read_text())


def test_retinaface_resnet50_config_runs_on_synthetic_weights(tmp_path):
    proc, result = _mission_run(tmp_path, "retinaface-resnet50", shared_path("data", "wider_val_dev"), 3)
    # random weights cannot reach the published 87.30 %: the gate must say so, with exit code 1
    assert proc.returncode == 1 and "OUT OF RANGE" in proc.stdout, proc.stdout + proc.stderr
    metrics = {m["name"]: m for m in result["metrics"]}
    assert metrics["omz_ap64"]["reference"] == 0.873 and metrics["omz_ap64"]["passed"] is False
    assert all(0 <= m["value"] <= 1 for m in result["metrics"]) and len(metrics) == 4


def test_mobilefacenet_arcface_config_runs_on_synthetic_weights(tmp_path):
    proc, result = _mission_run(tmp_path, "face-recognition-mobilefacenet-arcface", shared_path("data", "lfw"), 40)
    assert proc.returncode == 1 and "OUT OF RANGE" in proc.stdout, proc.stdout + proc.stderr
    accuracy = result["metrics"][0]
    assert accuracy["name"] == "lfw_accuracy" and accuracy["reference"] == 0.995 and accuracy["pairs"] == 40
    assert 0 <= accuracy["value"] <= 1


# --- dataset roots: the entry that applies is found from the root's layout and image count ---

def _official_annotation(mat: Path, limit: int | None = None) -> str:
    """wider_face_val_bbx_gt.txt in the official format, for the images of the official
    wider_face_val.mat (all 3,226, or the first `limit`)."""
    from scipy.io import loadmat

    gt = loadmat(str(mat))
    columns = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
    lines, images = [], 0
    for e, event in enumerate(gt["event_list"][:, 0]):
        for f, name in enumerate(gt["file_list"][e, 0][:, 0]):
            boxes = gt["face_bbx_list"][e, 0][f, 0].reshape(-1, 4)
            attributes = [gt[f"{c}_label_list"][e, 0][f, 0].reshape(-1) for c in columns]
            lines += [f"{event[0]}/{name[0]}.jpg", str(len(boxes))]
            lines += [" ".join(str(int(v)) for v in (*box, *(a[i] for a in attributes))) for i, box in enumerate(boxes)]
            if not len(boxes):
                lines.append(" ".join(["0"] * 10))
            images += 1
            if images == limit:
                return "\n".join(lines) + "\n"
    return "\n".join(lines) + "\n"


def _official_layout(tmp_path: Path, limit: int | None) -> Path:
    """A root laid out as WIDER FACE is distributed (WIDER_val/images, wider_face_split/,
    eval_tools/ground_truth/), its images and .mat files linked from ../shared."""
    dev = shared_path("data", "wider_val_dev")
    root = tmp_path / "WIDER"
    (root / "WIDER_val").mkdir(parents=True)
    (root / "WIDER_val" / "images").symlink_to(dev / "WIDER_val" / "images")
    (root / "wider_face_split").mkdir()
    (root / "wider_face_split" / "wider_face_val.mat").symlink_to(dev / "ground_truth" / "wider_face_val.mat")
    (root / "wider_face_split" / "wider_face_val_bbx_gt.txt").write_text(
        _official_annotation(dev / "ground_truth" / "wider_face_val.mat", limit))
    (root / "eval_tools").mkdir()
    (root / "eval_tools" / "ground_truth").symlink_to(dev / "ground_truth")
    return root


@pytest.mark.parametrize("limit, entry, images", [(None, "wider", 3226), (20, "wider_format", 20)])
def test_a_wider_root_is_reported_under_the_entry_that_fits_it(converted, tmp_path, limit, entry, images):
    """The full validation set as distributed is the `wider` entry (3,226 images), any other
    WIDER-format root the generic `wider_format`; neither gets wider_val_dev's checksum warning
    nor its references (the config's references were measured on wider_val_dev)."""
    root = _official_layout(tmp_path, limit)
    config = MODELS / "retinaface-mnet025-v1" / "accuracy-check.yml"
    proc = _accuracy_check("-c", config, "-m", converted, "-s", root, "--subsample_size", 4,
                           "--json_result", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"dataset {entry}: {images:,} images in {root}" in proc.stdout
    assert "sha256" not in proc.stderr and "warning" not in proc.stderr, proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["dataset"] == entry and result["run"]["dataset_images"] == images and result["images"] == 4
    assert all(m["reference"] is None and m["passed"] is None for m in result["metrics"])
    assert {m["name"] for m in result["metrics"]} >= {"omz_ap64", "wider_official_hard"}


def test_the_bundled_subset_is_still_wider_val_dev_when_a_config_names_the_full_set(converted, tmp_path):
    """retinaface-resnet50's references are for the full set: on the 200-image subset the run
    says which dataset it found and gives no verdict."""
    dev = shared_path("data", "wider_val_dev")
    config = tmp_path / "accuracy-check.yml"
    config.write_text((MODELS / "retinaface-resnet50" / "accuracy-check.yml").read_text()
                      .replace("retinaface-resnet50", "retinaface-mnet025-v1"))
    proc = _accuracy_check("-c", config, "-m", converted, "-s", dev, "--subsample_size", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dataset wider_val_dev: 200 images" in proc.stdout and "measured on wider, not on wider_val_dev" in proc.stdout
    assert "OUT OF RANGE" not in proc.stdout and "(no reference)" in proc.stdout


def test_detector_alignment_runs_the_aligner_from_the_decoding_threads(converted, tmp_path):
    """alignment: detector: every face found by the registry detector (--aligner_model) in the
    decoding threads, which take turns on it, then aligned and embedded."""
    import cv2
    aligned = shared_path("data", "lfw", "lfw_aligned_100pair")
    for source in aligned.glob("*/*.jpg"):  # each crop in the middle of a 250x250 frame, as raw LFW
        face = cv2.imread(str(source))
        frame = cv2.copyMakeBorder(face, 75, 75, 75, 75, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        (tmp_path / "lfw" / "framed" / source.parent.name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "lfw" / "framed" / source.parent.name / source.name), frame)
    definitions = tmp_path / "definitions.yml"
    definitions.write_text("datasets:\n  - name: lfw_aligned_100pair\n    type: lfw\n    images: framed\n"
                           "    generate_pairs_folds: 10\n    alignment: detector\n")
    detector = converted / "public" / "retinaface-mnet025-v1" / "FP32" / "retinaface-mnet025-v1.xml"
    proc = _accuracy_check("-c", MODELS / "mobileface-identification-v1" / "accuracy-check.yml", "-m", converted,
                           "-s", tmp_path / "lfw", "-d", definitions, "--aligner_model", detector,
                           "--subsample_size", 40, "--json_result", tmp_path / "r.json")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    accuracy = json.loads((tmp_path / "r.json").read_text())["metrics"][0]
    assert accuracy["pairs"] == 40 and 0.5 <= accuracy["value"] <= 1
