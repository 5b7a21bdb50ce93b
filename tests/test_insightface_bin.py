"""insightface .bin verification sets and the named verification protocols: the reader (Python 2
and 3 pickles, hostile structures), the packer (byte for byte what insightface's packer writes),
each protocol against a plain-loop re-statement of the original code on fixed embeddings."""
from __future__ import annotations

import math
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import BSpline

from conftest import shared_path
from facezoo.evaluate.datasets.insightface_bin import check_headers, decode, parse_bin, read_bin
from facezoo.evaluate.datasets.lfw import make_pairs, parse_pairs
from facezoo.evaluate.errors import EvaluateError
from facezoo.evaluate.images import BrokenImage
from facezoo.evaluate.metrics.verification import (insightface_distances, insightface_val, kfold, omz_distances,
                                                   omz_lfw_units, omz_subsets, verification_accuracy)

PACKER = Path(sys.executable).parent / "omz_data_converter"


def py2_pickle(images: list[bytes], same: list[bool]) -> bytes:
    """(images, same) as Python 2's cPickle writes it with protocol 2: byte strings as BINSTRING /
    SHORT_BINSTRING (which Python 3 loads as bytes only with encoding='bytes'), bools as NEWTRUE /
    NEWFALSE, memo puts after each object."""
    out, memo = [b"\x80\x02"], 0

    def put() -> bytes:
        nonlocal memo
        memo += 1
        return b"q" + bytes([memo - 1]) if memo <= 256 else b"r" + struct.pack("<I", memo - 1)

    out += [b"]", put(), b"("]
    for data in images:
        head = b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<i", len(data))
        out += [head, data, put()]
    out += [b"e]", put(), b"("]
    out += [b"\x88" if s else b"\x89" for s in same]
    out += [b"e\x86", put(), b"."]
    return b"".join(out)


def faces(count: int) -> list[bytes]:
    folder = shared_path("data", "lfw", "lfw_aligned_100pair")
    return [p.read_bytes() for p in sorted(folder.rglob("*.jpg"))[:count]]


# --- the reader ---

def test_python2_and_python3_pickles_read_alike():
    images = faces(6)
    same = [True, False, True]
    from_py2 = parse_bin(py2_pickle(images, same), "py2.bin")
    for protocol in (3, 4, 5):
        from_py3 = parse_bin(pickle.dumps((images, same), protocol=protocol), "py3.bin")
        assert from_py3.images == from_py2.images == tuple(images)
        assert from_py3.same.tolist() == from_py2.same.tolist() == same
    check_headers(from_py2)
    assert decode(from_py2, 5).shape == (100, 100, 3)


class Payload:
    def __reduce__(self):
        return (print, ("executed",))


@pytest.mark.parametrize("data, message", [
    (pickle.dumps(([b"a"] * 4, [True, False]))[:-9], "damaged or cut short|truncated"),
    (b"", "damaged or cut short"),
    (b"\x80\x04not a pickle", "damaged or cut short|expected insightface"),
    (pickle.dumps(([b"a"] * 4, [True, False], [0, 1])), "found a 3-item tuple"),
    (pickle.dumps({"bins": []}), "found a dict"),
    (pickle.dumps(("ab", [True])), "both items must be lists"),
    (pickle.dumps(([b"a", "b"], [True])), r"image 1: expected the encoded image's bytes, found str"),
    (pickle.dumps(([b"a", bytearray(b"b")], [True]), protocol=5), r"image 1: .* found bytearray"),
    (pickle.dumps(([b"a"] * 2, [2])), r"issame_list\[0\]: expected True or False, found 2"),
    (pickle.dumps(([b"a"] * 2, [None])), r"issame_list\[0\]: expected True or False, found NoneType"),
    (pickle.dumps(([b"a"] * 3, [True, False])), "holds 3 images, an odd count"),
    (pickle.dumps(([b"a"] * 6, [True, False])), "holds 6 images for 2 pairs: expected 4"),
    (pickle.dumps(([], [])), "holds no pair"),
    (pickle.dumps(Payload()), "references builtins.print"),
    (pickle.dumps(([b"a"] * 2, np.array([True]))), "references numpy"),
    (pickle.dumps(([b"a"] * 2, [True]), protocol=2), "references _codecs.encode.*re-pack with protocol 3"),
    # length fields and memo indices the unpickler would allocate for before seeing the data is short
    (b"\x80\x04B\xff\xff\xff\x7fabc.", r"damaged or cut short \(expected 2147483647 bytes"),
    (b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"abc.", "damaged or cut short"),
    (b"\x80\x02]r\xff\xff\xff\xff.", "byte 3: memo index 4294967295 out of range"),
])
def test_bad_bins_are_one_line_errors_naming_the_file(data, message):
    with pytest.raises(EvaluateError, match=message) as err:
        parse_bin(data, "sets/lfw.bin")
    assert str(err.value).startswith("sets/lfw.bin: ") and "\n" not in str(err.value)


def test_undecodable_images_are_named_by_index_and_pair():
    images = faces(4)
    bins = parse_bin(pickle.dumps((images[:3] + [b"GIF89a..."], [True, False])), "x.bin")
    with pytest.raises(BrokenImage, match=r"x\.bin: image 3 \(pair 2\): not a JPEG, PNG or BMP"):
        check_headers(bins)
    cut = parse_bin(pickle.dumps((images[:3] + [images[3][:-600]], [True, False])), "x.bin")
    check_headers(cut)  # the header is intact: the decode finds it
    with pytest.raises(BrokenImage, match=r"x\.bin: image 3 \(pair 2\): not a decodable image"):
        decode(cut, 3)
    with pytest.raises(BrokenImage, match=r"image 0 \(pair 1\): 100x100 pixels, more than the 99-pixel"):
        check_headers(cut, max_pixels=99)


def test_read_bin_refuses_large_and_non_regular_files_before_reading(tmp_path):
    path = tmp_path / "lfw.bin"
    path.write_bytes(pickle.dumps((faces(2), [True])))
    assert len(read_bin(path)) == 1
    with pytest.raises(EvaluateError, match=r"lfw\.bin: insightface \.bin is larger than the 100-byte limit"):
        read_bin(path, limit=100)
    with pytest.raises(EvaluateError, match="must be a regular file, found a directory"):
        read_bin(tmp_path)
    with pytest.raises(EvaluateError, match="insightface .bin not found"):
        read_bin(tmp_path / "absent.bin")


# --- the packer ---

def insightface_pack(folder: Path, pairs_text: str) -> tuple[list[bytes], list[bool]]:
    """lfw2pack.py re-stated: pairs after the header line, 3 fields matched, 4 mismatched, paths
    <dir>/<name>/<name>_%04d.jpg, a pair left out when a file is missing, each file read per use."""
    paths, issame = [], []
    for line in pairs_text.splitlines()[1:]:
        pair = line.strip().split()
        if len(pair) == 3:
            p0 = folder / pair[0] / f"{pair[0]}_{int(pair[1]):04d}.jpg"
            p1 = folder / pair[0] / f"{pair[0]}_{int(pair[2]):04d}.jpg"
            same = True
        else:
            p0 = folder / pair[0] / f"{pair[0]}_{int(pair[1]):04d}.jpg"
            p1 = folder / pair[2] / f"{pair[2]}_{int(pair[3]):04d}.jpg"
            same = False
        if p0.exists() and p1.exists():
            paths += [p0, p1]
            issame.append(same)
    return [p.read_bytes() for p in paths], issame


@pytest.mark.parametrize("which", ["generated", "official"])
def test_packer_writes_what_insightface_packer_writes(tmp_path, which):
    folder = shared_path("data", "lfw", "lfw_aligned_100pair")
    if which == "generated":
        text = make_pairs(folder, 10)
        (tmp_path / "pairs.txt").write_text(text)
        args = ["--pairs", tmp_path / "pairs.txt"]
    else:  # the official View 2 file: 69 of its pairs have both images here
        text = shared_path("data", "lfw", "pairs.txt").read_text()
        args = ["--pairs", shared_path("data", "lfw", "pairs.txt"), "--skip_missing"]
    out = tmp_path / "lfw.bin"
    proc = subprocess.run([PACKER, "--images", folder, "-o", out, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    images, issame = insightface_pack(folder, text)
    assert out.read_bytes() == pickle.dumps((images, issame), protocol=4)
    assert len(issame) == (200 if which == "generated" else 69)
    assert f"{len(issame)} pairs" in proc.stdout and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["lfw.bin"] + (["pairs.txt"] if which == "generated" else []))


def test_packer_generated_pairs_equal_a_generated_pairs_file(tmp_path):
    folder = shared_path("data", "lfw", "lfw_aligned_100pair")
    (tmp_path / "pairs.txt").write_text(make_pairs(folder, 10))
    for name, args in (("a.bin", ["--generate_pairs_folds", "10"]), ("b.bin", ["--pairs", tmp_path / "pairs.txt"])):
        proc = subprocess.run([PACKER, "--images", folder, "-o", tmp_path / name, *args], capture_output=True)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()


# --- the protocols against plain-loop re-statements of the original code ---

def embeddings(pairs: int, dim: int = 16, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain and flipped embeddings of 2 * pairs images (pair i: images 2i, 2i+1) and the labels:
    matched pairs share a direction, all carry noise, so no protocol is trivially perfect."""
    rng = np.random.default_rng(seed)
    same = rng.random(pairs) < 0.5
    base = rng.normal(size=(pairs, dim))
    first = base + rng.normal(scale=0.9, size=(pairs, dim))
    second = np.where(same[:, None], base, rng.normal(size=(pairs, dim))) + rng.normal(scale=0.9, size=(pairs, dim))
    plain = np.empty((2 * pairs, dim), dtype=np.float32)
    plain[0::2], plain[1::2] = first, second
    flipped = (plain + rng.normal(scale=0.3, size=plain.shape)).astype(np.float32)
    return plain.astype(np.float64), flipped.astype(np.float64), same


def restated_insightface(plain, flipped, same, far_target):
    """insightface's verification.test + evaluate, loop by loop: flip-summed, normalised rows,
    squared distance, KFold(10) without shuffle, best threshold on np.arange(0, 4, 0.01) for the
    accuracy, and for the validation rate the training FAR on np.arange(0, 4, 0.001) turned into
    a threshold by a degree-1 spline through (FAR, threshold) (what interp1d 'slinear' built)."""
    rows = []
    for a, b in zip(plain, flipped):
        v = [x + y for x, y in zip(a, b)]
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        rows.append([x / norm for x in v])
    dist = np.array([sum((x - y) ** 2 for x, y in zip(rows[2 * i], rows[2 * i + 1])) for i in range(len(same))])
    n, k = len(same), 10
    bounds, start = [], 0
    for f in range(k):
        size = n // k + (1 if f < n % k else 0)
        bounds.append((start, start + size))
        start += size
    accuracies, vals = [], []
    for lo, hi in bounds:
        train = [i for i in range(n) if not lo <= i < hi]
        test = range(lo, hi)
        best, best_acc = None, -1.0
        for t in np.arange(0, 4, 0.01):
            acc = sum((dist[i] < t) == same[i] for i in train) / len(train)
            if acc > best_acc:
                best, best_acc = t, acc
        accuracies.append(sum((dist[i] < best) == same[i] for i in test) / len(test))
        grid = np.arange(0, 4, 0.001)
        impostors = [dist[i] for i in train if not same[i]]
        far_train = np.array([sum(d < t for d in impostors) / len(impostors) for t in grid])
        if far_train.max() >= far_target:
            knots = np.r_[far_train[0], far_train, far_train[-1]]
            threshold = float(BSpline.construct_fast(knots, grid, 1)(far_target))
        else:
            threshold = 0.0
        accepted_same = sum(dist[i] < threshold for i in test if same[i])
        vals.append(accepted_same / sum(1 for i in test if same[i]))
    return dist, np.mean(accuracies), np.std(accuracies), np.mean(vals), np.std(vals)


@pytest.mark.parametrize("pairs, far", [(124, 1e-3), (124, 0.1), (60, 0.05)])
def test_insightface_protocol_equals_a_restatement_of_its_code(pairs, far):
    plain, flipped, same = embeddings(pairs)
    dist, acc, acc_std, val, val_std = restated_insightface(plain, flipped, same, far)
    summed = plain + flipped
    ours = insightface_distances(summed[0::2], summed[1::2])
    assert np.allclose(ours, dist, rtol=0, atol=1e-12)
    folds = kfold(pairs)
    result = verification_accuracy(ours, same, folds)
    assert result.mean == pytest.approx(acc, abs=1e-12) and result.std == pytest.approx(acc_std, abs=1e-12)
    assert 0.6 < result.mean < 0.99  # not a degenerate case
    v = insightface_val(ours, same, folds, far)
    assert v.val == pytest.approx(val, abs=1e-12) and v.std == pytest.approx(val_std, abs=1e-12)


def test_kfold_deals_like_scikit_learn():
    from sklearn.model_selection import KFold

    for n in (10, 23, 6000, 7001):
        folds = kfold(n)
        for f, (_, test) in enumerate(KFold(10, shuffle=False).split(np.arange(n))):
            assert np.flatnonzero(folds == f).tolist() == test.tolist()
    with pytest.raises(EvaluateError, match="9 pairs cannot be dealt to 10 folds"):
        kfold(9)


def test_insightface_val_refuses_folds_without_both_kinds():
    same = np.array([True] * 20 + [False] * 20)
    with pytest.raises(EvaluateError, match="fold 1 has no mismatched pair"):
        insightface_val(np.linspace(0, 2, 40), same, kfold(40), 1e-3)


def restated_omz(plain, first_names, second_names, same_list, bin_layout):
    """Open Model Zoo's lfw / face_recognition_bin converters and pairwise_accuracy_subsets
    (train_median, euclidian_distance, reid adapter's GRN), loop by loop."""
    index = {}
    if bin_layout:  # one annotation per pair: its first image, holding the one pair
        annotations = [(a, {b} if s else set(), set() if s else {b}) for a, b, s in
                       zip(first_names, second_names, same_list)]
    else:  # lfw converter: every image in order of appearance, matched pairs first
        positives, negatives, order = {}, {}, []
        for kind, store in ((True, positives), (False, negatives)):
            for a, b, s in zip(first_names, second_names, same_list):
                if s == kind:
                    store.setdefault(a, set()).add(b)
                    for name in (a, b):
                        if name not in order:
                            order.append(name)
        annotations = [(n, positives.get(n, set()), negatives.get(n, set())) for n in order]
        annotations = [a for a in annotations if a[1] or a[2]]
    for i, name in enumerate(sorted(set(first_names) | set(second_names))):
        index[name] = i

    def grn(v):
        v = np.asarray(v, dtype=np.float32)[None]
        return (v / np.sqrt(np.sum(v ** 2, axis=1) + np.float32(1e-6))[:, None])[0]

    def distances(chosen):
        d, labels = [], []
        for name, pos, neg in chosen:
            for other, label in [(o, True) for o in pos] + [(o, False) for o in neg]:
                e1, e2 = grn(plain[index[name]]), grn(plain[index[other]])
                d.append(0.5 * (1 - np.sum(e1[None] * e2[None], axis=1))[0])
                labels.append(label)
        return np.array(d, dtype=np.float32), labels

    size, results = len(annotations), []
    for s in range(10):
        lo, hi = s * size // 10, (s + 1) * size // 10
        train_d, _ = distances(annotations[:lo] + annotations[hi:])
        median = np.median(train_d)
        test_d, labels = distances(annotations[lo:hi])
        if labels:
            results.append(sum((d < median) == label for d, label in zip(test_d, labels)) / len(labels))
    return float(np.mean(results))


def test_omz_subsets_on_a_bin_equals_a_restatement_of_its_code():
    plain, _, same = embeddings(130)
    names = [f"{i:05d}" for i in range(260)]
    expected = restated_omz(plain, names[0::2], names[1::2], list(same), bin_layout=True)
    d = omz_distances(plain[0::2], plain[1::2])
    result = omz_subsets(d, same, np.arange(130))
    assert result.mean == pytest.approx(expected, abs=1e-12) and 0.6 < result.mean < 0.99


def test_omz_subsets_on_a_pairs_file_groups_as_its_converter_does():
    folder_names = [f"p{i:02d}/p{i:02d}_{j:04d}.jpg" for i in range(60) for j in (1, 2)]
    rng = np.random.default_rng(3)
    first, second, same = [], [], []
    for i in range(60):  # matched pairs, then mismatched ones reusing first images, and a repeated pair
        first.append(folder_names[2 * i]), second.append(folder_names[2 * i + 1]), same.append(True)
    for i in range(60):
        first.append(folder_names[2 * i]), second.append(folder_names[2 * ((i + 7) % 60) + 1]), same.append(False)
    first.append(first[3]), second.append(second[3]), same.append(True)
    order = sorted(folder_names)
    plain = rng.normal(size=(len(order), 8))
    for i in range(60):  # matched images close together
        plain[order.index(folder_names[2 * i + 1])] = plain[order.index(folder_names[2 * i])] + rng.normal(
            scale=1.2, size=8)
    expected = restated_omz(plain, first, second, same, bin_layout=False)
    units, keep = omz_lfw_units(first, second, np.array(same))
    assert keep.sum() == len(first) - 1
    position = {n: i for i, n in enumerate(order)}
    e1 = plain[[position[a] for a in first]]
    e2 = plain[[position[b] for b in second]]
    d = omz_distances(e1, e2)
    result = omz_subsets(d[keep], np.array(same)[keep], units[keep])
    assert result.mean == pytest.approx(expected, abs=1e-12) and 0.5 < result.mean < 1


def test_omz_subsets_needs_ten_annotations():
    with pytest.raises(EvaluateError, match="9 annotated images cannot be cut into 10 subsets"):
        omz_subsets(np.zeros(9), np.ones(9, bool), np.arange(9))


def test_official_pairs_folds_are_kfold_folds():
    """On LFW View 2 (10 folds of 600 in file order) insightface's unshuffled KFold and the
    file's folds agree, so facezoo's protocol and insightface's share their accuracy folds."""
    pairs = parse_pairs(shared_path("data", "lfw", "pairs.txt").read_text())
    assert (pairs.fold == kfold(len(pairs))).all()


# --- end to end: the .bin path gives the folder path's numbers on the same pairs ---

CONFIG = """models:
  - name: mobileface-identification-v1
    launchers:
      - {framework: openvino, adapter: {type: embedding, outputs: [l2normalization1]}}
    datasets:
      - name: faces
        metrics:
          - {type: lfw_accuracy}
          - {type: tar_at_far, far: 0.05}
          - {type: lfw_accuracy, protocol: insightface}
          - {type: tar_at_far, protocol: insightface, far: 0.05}
          - {type: lfw_accuracy, protocol: omz_subsets}
"""


def test_bin_path_gives_the_folder_paths_numbers(tmp_path):
    from hostile.models import converted_root
    from facezoo.evaluate.predictions import load_predictions

    ir = converted_root("mobileface-identification-v1")
    faces = shared_path("data", "lfw", "lfw_aligned_100pair")
    (tmp_path / "config.yml").write_text(CONFIG)
    folder_root, bin_root = tmp_path / "folder", tmp_path / "bin"
    folder_root.mkdir(), bin_root.mkdir()
    (folder_root / "faces").symlink_to(faces)
    (folder_root / "defs.yml").write_text("datasets:\n  - {name: faces, type: lfw, images: faces, generate_pairs_folds: 10}\n")
    (bin_root / "defs.yml").write_text("datasets:\n  - {name: faces, type: lfw, bin: lfw.bin}\n")
    packed = subprocess.run([PACKER, "--images", faces, "--generate_pairs_folds", "10", "-o", bin_root / "lfw.bin"],
                            capture_output=True, text=True)
    assert packed.returncode == 0, packed.stderr
    results = {}
    for name, root in (("folder", folder_root), ("bin", bin_root)):
        proc = subprocess.run([sys.executable, "-m", "facezoo.evaluate.cli", "--no_progress", "-c", tmp_path / "config.yml",
                               "-m", ir, "-s", root, "-d", root / "defs.yml", "--json_result", root / "r.json",
                               "--stored_predictions", root / "p.npz"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results[name] = {m["name"]: m for m in __import__("json").loads((root / "r.json").read_text())["metrics"]}
    assert "dataset faces: 400 images, 200 pairs" in proc.stdout
    for metric in ("lfw_accuracy", "tar_at_far", "lfw_accuracy_insightface", "tar_at_far_insightface"):
        assert results["bin"][metric] == results["folder"][metric], metric
    assert results["bin"]["lfw_accuracy_insightface"]["value"] > 0.7
    assert results["bin"]["lfw_accuracy_insightface"]["protocol"] == "insightface"
    # the embeddings themselves: image 2i / 2i + 1 of the .bin is pair i's first / second face, mirrors too
    pairs = parse_pairs(make_pairs(faces, 10))
    stored = {n: load_predictions([r / "p.npz"], {}, "embeddings") for n, r in (("folder", folder_root), ("bin", bin_root))}
    assert len(stored["bin"]) == 800
    for i, (a, b) in enumerate(zip(pairs.first, pairs.second)):
        for suffix in ("", "#flipped"):
            assert (stored["bin"][f"{2 * i:05d}{suffix}"] == stored["folder"][a + suffix]).all()
            assert (stored["bin"][f"{2 * i + 1:05d}{suffix}"] == stored["folder"][b + suffix]).all()
    # Open Model Zoo's converters group differently (lfw: images in order of appearance, matched
    # pairs first; face_recognition_bin: one annotation per pair): each value is its own
    for name in results:
        assert 0.5 < results[name]["lfw_accuracy_omz_subsets"]["value"] <= 1


def test_model_config_runs_its_bin_entry_and_pins_the_real_sets_size(tmp_path):
    """mobileface-identification-v1's lfw_bin entry (both protocols) on a .bin packed here; the
    shipped definition pins lfw.bin's 12,000 images, so a smaller file is refused there."""
    from hostile.models import converted_root

    ir = converted_root("mobileface-identification-v1")
    faces = shared_path("data", "lfw", "lfw_aligned_100pair")
    packed = subprocess.run([PACKER, "--images", faces, "--generate_pairs_folds", "10", "-o", tmp_path / "lfw.bin"],
                            capture_output=True, text=True)
    assert packed.returncode == 0, packed.stderr
    config = Path(__file__).resolve().parents[1] / "models" / "public" / "mobileface-identification-v1" / "accuracy-check.yml"
    base = [sys.executable, "-m", "facezoo.evaluate.cli", "--no_progress", "-c", config, "-m", ir, "-s", tmp_path,
            "--dataset", "lfw_bin"]
    pinned = subprocess.run(base, capture_output=True, text=True)
    assert pinned.returncode == 2 and "400 images, and no dataset definition of this layout fits (lfw_bin has 12,000" \
        in pinned.stderr, pinned.stderr
    (tmp_path / "defs.yml").write_text("datasets:\n  - {name: lfw_bin, type: lfw, bin: lfw.bin}\n")
    proc = subprocess.run(base + ["-d", tmp_path / "defs.yml"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    values = dict(line.split()[:2] for line in proc.stdout.splitlines() if line.startswith("  lfw_accuracy"))
    # as measured here (FP32 IR); another CPU's kernels may move a pair or two
    assert abs(float(values["lfw_accuracy_insightface"]) - 0.875) <= 0.011, values
    assert abs(float(values["lfw_accuracy_omz_subsets"]) - 0.88) <= 0.011, values


@pytest.mark.parametrize("metrics, message", [
    ("[{type: lfw_accuracy, protocol: insightface}, {type: lfw_accuracy, protocol: omz_subsets}]", None),
    ("[{type: omz_ap64, protocol: insightface}]", r":7: models\[0\]\.datasets\[0\]\.metrics\[0\]\.protocol: only "
                                                  r"verification metrics"),
    ("[{type: tar_at_far, protocol: omz_subsets}]", r"\.protocol: omz_subsets has no TAR@FAR"),
    ("[{type: lfw_accuracy, protocol: sphereface}]", r"protocol: expected facezoo, insightface or omz_subsets"),
])
def test_protocols_in_the_accuracy_config(tmp_path, metrics, message):
    from facezoo.evaluate.config import load_accuracy_config

    path = tmp_path / "c.yml"
    path.write_text("models:\n  - name: m\n    launchers:\n      - {framework: openvino, adapter: {type: embedding}}\n"
                    f"    datasets:\n      - name: lfw_bin\n        metrics: {metrics}\n")
    if message is None:
        names = [m.name for m in load_accuracy_config(path).datasets[0].metrics]
        assert names == ["lfw_accuracy_insightface", "lfw_accuracy_omz_subsets"]
    else:
        with pytest.raises(EvaluateError, match=message):
            load_accuracy_config(path)
