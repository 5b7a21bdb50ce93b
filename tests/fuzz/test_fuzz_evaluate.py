"""accuracy_check's readers under arbitrary input: a result or EvaluateError, never another exception.
Inputs are random, or valid files mutated (bytes flipped, cut, spliced)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conftest import SHARED
from facezoo.evaluate import EvaluateError
from facezoo.evaluate.datasets.landmarks import parse_landmarks
from facezoo.evaluate.datasets.lfw import parse_pairs
from facezoo.evaluate.datasets.mat import check_mat, load_mat
from facezoo.evaluate.datasets.wider import load_official_mat, parse_bbx_gt
from facezoo.evaluate.images import BrokenImage, image_size, read_image
from facezoo.evaluate.predictions import load_predictions, save_detections, save_embeddings
from facezoo.evaluate.adapters.retinaface import Detections
from mutation import mutate, mutations

TOKENS = ["0--Parade/a.jpg", "1--x/b.jpg", "../up.jpg", "/abs.jpg", "a\\b.jpg", "0", "1", "2", "3", "10", "-5",
          "+7", "1e3", "inf", "nan", "1.5", "٣", "99999999999999999999", "x", "", " ", "\t", "\u00a0", "\ufeff",
          "0 0 0 0 0 0 0 0 0 0", "1 2 3 4 0 0 0 0 0 0", "5 5 0 8 2 1 0 1 2 0", "A", "B_C", "A 1 2", "A 1 B 2"]
lines = st.lists(st.lists(st.sampled_from(TOKENS) | st.text(max_size=6), max_size=11).map(" ".join), max_size=30)
texts = lines.map("\n".join) | st.text(max_size=300)


def _outcome(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except EvaluateError:
        return None


@given(texts)
def test_wider_annotation_parser(text):
    images = _outcome(parse_bbx_gt, text, "gt.txt")
    if images is not None:
        assert images and len({i.path for i in images}) == len(images)
        assert all(np.isfinite(i.faces).all() and (np.abs(i.faces) < 1e7).all() for i in images)


@given(texts)
def test_pairs_parser(text):
    pairs = _outcome(parse_pairs, text, "pairs.txt")
    if pairs is not None:
        assert len(pairs.first) == len(pairs.second) == len(pairs.same) == len(pairs.fold) > 0


@given(texts)
def test_landmarks_parser(text):
    marks = _outcome(parse_landmarks, text, "landmarks.txt")
    if marks is not None:
        assert marks and all(m.shape == (5, 2) and np.isfinite(m).all() for m in marks.values())


def _real(*parts: str) -> bytes:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent")
    return path.read_bytes()


@pytest.fixture(scope="module")
def jpeg():
    return _real("data", "lfw", "lfw_aligned_100pair", "Aaron_Sorkin", "Aaron_Sorkin_0001.jpg")


@given(st.binary(max_size=64) | st.sampled_from([b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"BM"]).flatmap(
    lambda head: st.binary(max_size=40).map(lambda tail: head + tail)))
def test_image_header_reader_on_random_bytes(data):
    try:
        width, height = image_size(data)
    except BrokenImage:
        return
    assert width > 0 and height > 0


@pytest.fixture(scope="module")
def encoded(jpeg):
    """The real face as JPEG, and re-encoded as PNG and BMP."""
    import cv2
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return {"jpg": jpeg, **{ext: cv2.imencode(f".{ext}", image)[1].tobytes() for ext in ("png", "bmp")}}


@given(st.sampled_from(["jpg", "png", "bmp"]), mutations)
def test_image_reader_on_mutated_files(encoded, tmp_path_factory, ext, ops):
    path = tmp_path_factory.getbasetemp() / f"fuzz.{ext}"
    path.write_bytes(mutate(encoded[ext], ops))
    image = _outcome(read_image, path, max_pixels=200 * 200)
    if image is not None:
        assert image.ndim == 3 and image.size > 0


@pytest.fixture(scope="module")
def mat_files():
    folder = SHARED / "data" / "wider_val_dev" / "ground_truth"
    if not folder.exists():
        pytest.skip(f"real data {folder} is absent")
    return {p.name: p.read_bytes() for p in folder.glob("*.mat")}


def _small_mat(events: list, files: list, boxes: list) -> bytes:
    from scipy.io import savemat
    buffer = io.BytesIO()
    savemat(buffer, {"event_list": np.array(events, dtype=object).reshape(-1, 1),
                     "file_list": np.array(files, dtype=object).reshape(-1, 1),
                     "face_bbx_list": np.array(boxes, dtype=object).reshape(-1, 1)}, do_compression=True)
    return buffer.getvalue()


@given(mutations)
def test_mat_structure_check_on_mutated_ground_truth(mat_files, ops):
    data = mutate(mat_files["wider_hard_val.mat"][:6000], ops)
    _outcome(check_mat, data)


@given(mutations, st.booleans())
def test_mat_reader_on_mutated_small_files(tmp_path_factory, ops, compressed):
    from scipy.io import savemat
    buffer = io.BytesIO()
    cells = np.empty((2, 1), dtype=object)
    cells[0, 0], cells[1, 0] = np.array([["a"]], dtype=object), np.arange(8, dtype=np.int32).reshape(2, 4)
    savemat(buffer, {"gt_list": cells, "v": np.arange(5.0)}, do_compression=compressed)
    path = tmp_path_factory.getbasetemp() / "fuzz.mat"
    path.write_bytes(mutate(buffer.getvalue(), ops))
    _outcome(load_mat, path, ["gt_list"])


values = st.one_of(st.text(max_size=4), st.integers(-3, 3), st.floats(), st.just(np.zeros((2, 3))),
                   st.just(np.array([[1, 2, 3, 4]], dtype=np.int32)), st.just(np.array([[np.nan] * 4])))


@given(st.lists(values, min_size=0, max_size=3), st.lists(values, max_size=3), st.lists(values, max_size=3),
       st.lists(st.lists(st.integers(-1, 3), max_size=3), max_size=3))
def test_official_ground_truth_structure(tmp_path_factory, events, files, boxes, keep):
    from scipy.io import savemat
    folder = tmp_path_factory.getbasetemp() / "gt"
    folder.mkdir(exist_ok=True)
    try:
        data = _small_mat(events, [np.array(f, dtype=object).reshape(-1, 1) if isinstance(f, list) else f
                                   for f in files], boxes)
    except (ValueError, TypeError):  # savemat itself cannot write some of these
        return
    (folder / "wider_face_val.mat").write_bytes(data)
    for setting in ("easy", "medium", "hard"):
        cells = np.empty((len(keep), 1), dtype=object)
        for k, row in enumerate(keep):
            cells[k, 0] = np.array(row, dtype=np.int64).reshape(-1, 1)
        savemat(folder / f"wider_{setting}_val.mat", {"gt_list": cells})
    truth = _outcome(load_official_mat, folder)
    if truth is not None:
        assert len(truth.paths) == len(truth.faces)
        assert all(len(k) == len(truth.paths) for k in truth.keep.values())


def _valid_detections(path):
    rng = np.random.default_rng(0)
    dets = {f"e/{k}.jpg": Detections(rng.uniform(0, 9, (k, 4)), rng.uniform(0, 1, k), rng.uniform(0, 9, (k, 5, 2)))
            for k in range(3)}
    save_detections(path, dets, {"model": "m"})
    return path.read_bytes()


@given(mutations)
def test_stored_predictions_on_mutated_files(tmp_path_factory, ops):
    path = tmp_path_factory.getbasetemp() / "fuzz.npz"
    valid = _valid_detections(path)
    path.write_bytes(mutate(valid, ops))
    merged = _outcome(load_predictions, [path], {"model": "m"})
    if merged is not None:
        assert all(np.isfinite(d.boxes).all() and len(d.boxes) == len(d.scores) for d in merged.values())


arrays = st.one_of(
    st.just(np.array("detections")), st.just(np.array("embeddings")), st.just(np.array("{}")),
    st.just(np.array(["e/0.jpg", "e/1.jpg"])), st.just(np.array(["../x.jpg"])),
    st.just(np.array([0, 2], dtype=np.int64)), st.just(np.array([-1, 3])), st.just(np.zeros((2, 4))),
    st.just(np.full((2, 4), np.inf)), st.just(np.zeros(2)), st.just(np.zeros((2, 5, 2))), st.just(np.zeros((2, 0))),
    st.just(np.zeros((2, 3), dtype=np.complex64)), st.just(np.zeros(3, dtype=np.float16)))
names = st.sampled_from(["kind", "meta", "names", "counts", "boxes", "scores", "landmarks", "embeddings", "other"])


@given(st.dictionaries(names, arrays, max_size=8), st.sampled_from(["detections", "embeddings", None]))
def test_stored_predictions_with_arbitrary_arrays(tmp_path_factory, members, kind):
    path = tmp_path_factory.getbasetemp() / "arrays.npz"
    np.savez(path, **members)
    _outcome(load_predictions, [path], {}, kind)


@given(st.binary(max_size=300))
def test_stored_predictions_on_random_zip_members(tmp_path_factory, payload):
    path = tmp_path_factory.getbasetemp() / "member.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("boxes.npy", payload)
        archive.writestr("kind.npy", payload[:40])
    _outcome(load_predictions, [path], {})


def test_stored_embeddings_round_trip(tmp_path):
    embeddings = {"a/a_0001.jpg": np.ones(4), "b/b_0002.jpg": np.arange(4.0)}
    save_embeddings(tmp_path / "e.npz", embeddings, {"model": "m"})
    loaded = load_predictions([tmp_path / "e.npz"], {"model": "m"}, "embeddings")
    assert {k: v.tolist() for k, v in loaded.items()} == {k: v.tolist() for k, v in embeddings.items()}
    with pytest.raises(EvaluateError, match="holds embeddings, this dataset needs detections"):
        load_predictions([tmp_path / "e.npz"], {"model": "m"}, "detections")
