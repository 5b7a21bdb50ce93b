"""The official WIDER FACE easy/medium/hard metric over the whole validation set (3,226 images):
facezoo's `wider_official` against the widely used Python port of the official evaluation,
on the same submission files, side by side in one run.

1. Predictions: for every image of the official ground truth (../shared/data/wider_val_dev/
   ground_truth), seeded from --seed, made from its true faces: most faces found with jittered
   boxes (small faces missed and jittered more), scores rising with face size, and false
   positives of low score up to --boxes boxes per image on average (real submissions keep
   100-300). Written as official submission files (facezoo.evaluate.predictions.write_submission,
   boxes in descending score order as detectors write them).
2. Ours, in this process, imports excluded: reading the four .mat files, reading the 3,226
   submission files, and the three settings' APs; twice over: with the official MATLAB code's
   int32 arithmetic (our default, pinned against the original under GNU Octave) and with the
   faces as doubles, which is the port's arithmetic.
3. The peer: wondervictor/WiderFace-Evaluation (MIT; ../shared/peers/WiderFace-Evaluation, its
   evaluation.py and Cython box_overlaps.pyx unchanged) built in its own venv under --envs
   (numpy 1.23, as its `np.float` needs; never a facezoo dependency), its `evaluation()` timed
   inside its own process after its imports; its APs read from what it prints.
Prints the APs of all three side by side, their differences (the port's against ours in the
port's arithmetic must be within 1e-6) and the time ratio.

Run: python bench/official.py [--envs ~/.cache/facezoo-bench] [--boxes 200] [--seed 0]
     python bench/official.py --fixture tests/data/official_port_case   (remakes the test fixture:
     predictions for the first images of the first events and the port's APs on them)
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT.parent / "shared" / "data" / "wider_val_dev" / "ground_truth"
PEER = ROOT.parent / "shared" / "peers" / "WiderFace-Evaluation"
PEER_FILES = ("evaluation.py", "box_overlaps.pyx", "setup.py", "LICENSE")
SETTINGS = ("easy", "medium", "hard")

# Timed inside the peer's process, after its own imports; prints its APs (full precision) and seconds.
PEER_RUN = """
import sys, time
sys.path.insert(0, sys.argv[1])
import evaluation
began = time.perf_counter()
evaluation.evaluation(sys.argv[2], sys.argv[3])
print("SECONDS", time.perf_counter() - began)
"""


def synthetic_predictions(faces: list[np.ndarray], boxes_per_image: int, seed: int):
    """Per image, (corner boxes, scores) in descending score order, made from its faces (x, y, w, h)."""
    from facezoo.evaluate.adapters.retinaface import Detections

    rng = np.random.default_rng(seed)
    out = []
    for truth in faces:
        f = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
        side = np.sqrt(np.maximum(f[:, 2], 1) * np.maximum(f[:, 3], 1))
        found = rng.random(len(f)) > np.clip(1.2 - side / 20, 0.02, 0.95)  # small faces are missed more
        g = f[found]
        jitter = rng.normal(0, 1, g.shape) * (0.02 + 0.3 / np.sqrt(side[found]))[:, None]
        hits = np.concatenate([g[:, :2] + jitter[:, :2] * g[:, 2:], g[:, 2:] * np.exp(jitter[:, 2:])], axis=1)
        hit_scores = 1 / (1 + np.exp(-(2 * np.log(side[found]) - 5 + rng.normal(0, 1, len(g)))))
        extent = np.maximum(1024.0, (f[:, :2] + f[:, 2:]).max(initial=0) + 1)
        count = max(0, int(rng.integers(boxes_per_image // 2, boxes_per_image * 3 // 2 + 1)) - len(g))
        size = np.exp(rng.uniform(np.log(6), np.log(300), (count, 1))) * [1.0, 1.0]
        size[:, 1] *= rng.uniform(0.8, 1.4, count)
        false = np.concatenate([rng.uniform(0, extent, (count, 2)), size], axis=1)
        false_scores = rng.beta(1, 12, count) * 0.8
        xywh = np.concatenate([hits, false])
        scores = np.round(np.concatenate([hit_scores, false_scores]), 6)  # a detector's printed precision
        order = np.argsort(-scores, kind="stable")
        corners = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)[order]
        out.append(Detections(corners, scores[order], np.zeros((len(order), 5, 2))))
    return out


def ours(folder: Path, as_port: bool) -> tuple[dict[str, float], dict[str, float]]:
    """Our APs and the seconds of each step: ground truth, submission files, metric."""
    from facezoo.evaluate.datasets.wider import load_official_mat
    from facezoo.evaluate.metrics.detection import wider_official_curves
    from facezoo.evaluate.predictions import read_submission

    seconds = {}
    began = time.perf_counter()
    truth = load_official_mat(TRUTH)
    seconds[".mat"] = time.perf_counter() - began
    began = time.perf_counter()
    predictions, missing = read_submission(folder, truth.paths)
    seconds["submission"] = time.perf_counter() - began
    if missing:
        raise SystemExit(f"{len(missing)} submission files missing, e.g. {missing[0]}")
    began = time.perf_counter()
    faces = [f.astype(np.float64) for f in truth.faces] if as_port else truth.faces
    curves = wider_official_curves(predictions, faces, {s: truth.keep[s] for s in SETTINGS})
    seconds["metric"] = time.perf_counter() - began
    return {s: curves[s].ap for s in SETTINGS}, seconds


def peer_python(envs: Path) -> tuple[Path, Path]:
    """The port's venv python and its built source folder (made on first use)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from compare import ensure_env

    python = ensure_env(envs, "widerface")
    source = envs / "widerface-src"
    if not list(source.glob("bbox*.so")):
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir(parents=True)
        for name in PEER_FILES:
            shutil.copy(PEER / name, source / name)
        subprocess.run([str(python), "setup.py", "build_ext", "--inplace"], cwd=source, check=True,
                       capture_output=True)
    return python, source


def peer_on(envs: Path, folder: Path, truth: Path = TRUTH) -> tuple[dict[str, float], float]:
    """The port's APs for the submission in `folder` and the seconds of its evaluation()."""
    python, source = peer_python(envs)
    proc = subprocess.run([str(python), "-c", PEER_RUN, str(source), str(folder), str(truth)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"the port failed:\n{proc.stderr[-3000:]}")
    aps = {s: float(re.search(rf"{s.capitalize()}\s+Val AP: (\S+)", proc.stdout).group(1)) for s in SETTINGS}
    return aps, float(re.search(r"SECONDS (\S+)", proc.stdout).group(1))


def cut_ground_truth(source: Path, target: Path, events: int = 4, images: int = 6) -> None:
    """The official ground truth of the first `images` images of the first `events` events, as
    the same four .mat files (cells of cells) in `target`."""
    from scipy.io import loadmat, savemat

    def cut(cells: np.ndarray) -> np.ndarray:
        out = np.empty((events, 1), dtype=object)
        for e in range(events):
            out[e, 0] = cells[e, 0][:images]
        return out

    target.mkdir(parents=True, exist_ok=True)
    main = loadmat(source / "wider_face_val.mat")
    savemat(target / "wider_face_val.mat", {"event_list": main["event_list"][:events],
                                            "file_list": cut(main["file_list"]),
                                            "face_bbx_list": cut(main["face_bbx_list"])})
    for setting in SETTINGS:
        savemat(target / f"wider_{setting}_val.mat", {"gt_list": cut(loadmat(source / f"wider_{setting}_val.mat")["gt_list"])})


def write_fixture(envs: Path, folder: Path, seed: int, boxes: int = 30) -> None:
    """A small case for tests/test_official_bench.py: synthetic predictions for the images of
    cut_ground_truth and the APs the port prints for them (the test cuts the ground truth itself
    from ../shared, so only pred/ and expected.json are kept)."""
    import json

    from facezoo.evaluate.datasets.wider import load_official_mat
    from facezoo.evaluate.predictions import write_submission

    with tempfile.TemporaryDirectory() as tmp:
        cut_ground_truth(TRUTH, Path(tmp))
        truth = load_official_mat(Path(tmp))
        write_submission(folder / "pred", dict(zip(truth.paths, synthetic_predictions(truth.faces, boxes, seed))))
        aps, _ = peer_on(envs, folder / "pred", Path(tmp))
    (folder / "expected.json").write_text(json.dumps(
        {"source": "the APs wondervictor/WiderFace-Evaluation (commit 53474e0, MIT) printed for pred/ and the "
                   f"ground truth of bench/official.py's cut_ground_truth; made by bench/official.py --fixture "
                   f"--seed {seed}", **aps}, indent=1) + "\n")
    print(f"wrote {folder}: {len(truth.paths)} images; the port's APs {aps}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=Path, default=Path.home() / ".cache" / "facezoo-bench",
                        help="where the port's environment is made on first use")
    parser.add_argument("--boxes", type=int, default=200, help="average predictions per image")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic predictions")
    parser.add_argument("--no_peer", action="store_true", help="time ours only (no environment needed)")
    parser.add_argument("--fixture", type=Path, help="write the small test case (ground truth, predictions, "
                        "the port's APs) into this folder instead of timing")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from facezoo.evaluate.datasets.wider import load_official_mat
    from facezoo.evaluate.predictions import write_submission
    from machine import machine_line

    if not TRUTH.is_dir():
        print(f"needs {TRUTH} (../shared beside the project)")
        return 2
    if args.fixture:
        write_fixture(args.envs, args.fixture, args.seed)
        return 0
    print(machine_line(), flush=True)
    truth = load_official_mat(TRUTH)
    detections = synthetic_predictions(truth.faces, args.boxes, args.seed)
    total = sum(len(d.scores) for d in detections)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submission"
        write_submission(folder, dict(zip(truth.paths, detections)))
        print(f"{len(truth.paths)} images, {sum(len(f) for f in truth.faces)} faces, {total} predictions "
              f"({total / len(truth.paths):.0f} per image), seed {args.seed}", flush=True)
        matlab, matlab_s = ours(folder, as_port=False)
        as_port, port_s = ours(folder, as_port=True)
        theirs, their_s = peer_on(args.envs, folder) if not args.no_peer else ({}, float("nan"))
    ours_total = sum(port_s.values())
    print("\n| | easy | medium | hard | seconds |")
    print("|---|---|---|---|---|")
    print("| facezoo, MATLAB's int32 arithmetic (default) | " + " | ".join(f"{matlab[s]:.10f}" for s in SETTINGS)
          + f" | {sum(matlab_s.values()):.2f} |")
    print("| facezoo, the port's double arithmetic | " + " | ".join(f"{as_port[s]:.10f}" for s in SETTINGS)
          + f" | {ours_total:.2f} |")
    if theirs:
        print("| WiderFace-Evaluation (Python port) | " + " | ".join(f"{theirs[s]:.10f}" for s in SETTINGS)
              + f" | {their_s:.2f} |")
        print("| port - ours (double) | " + " | ".join(f"{theirs[s] - as_port[s]:+.2e}" for s in SETTINGS)
              + f" | ratio {ours_total / their_s:.4f} |")
    print("| ours MATLAB - ours double | " + " | ".join(f"{matlab[s] - as_port[s]:+.2e}" for s in SETTINGS) + " | |")
    print("\nours, seconds by step (double arithmetic run): "
          + ", ".join(f"{k} {v:.3f}" for k, v in port_s.items()) + f"; total {ours_total:.2f} (target 2)")
    if theirs:
        worst = max(abs(theirs[s] - as_port[s]) for s in SETTINGS)
        print(f"largest |port - ours| {worst:.2e} ({'within' if worst <= 1e-6 else 'OUTSIDE'} 1e-6); "
              f"ours / port time {ours_total / their_s:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
