"""accuracy_check on a Dask LocalCluster (--workers): the same metrics and stored predictions as one
process, bit for bit, on WIDER (wider_val_dev) and LFW; with a worker killed mid-run; resumed
after an interrupt, skipping the shards already done; with broken images skipped; and the
default path imports no Dask."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT, shared_path

if not os.environ.get("CI"):  # CI installs the dask extra: there a missing package is a failure
    pytest.importorskip("distributed", reason="the dask extra is not installed (pip install 'facezoo[dask]')")

MODELS = PROJECT / "models" / "public"
DETECTOR, RECOGNISER = "retinaface-mnet025-v1", "mobileface-identification-v1"
SUBSAMPLE, SHARD = "96", "8"  # 12 shards of WIDER images: several per worker, small enough for 2 cores


@pytest.fixture(scope="module")
def converted() -> Path:
    from hostile.models import converted_root

    converted_root(RECOGNISER)
    return converted_root(DETECTOR)


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "facezoo.evaluate.cli", "--no_progress", *map(str, args)]


def _start(*args) -> subprocess.Popen:
    """The command in a process group of its own (with its local workers)."""
    return subprocess.Popen(_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"}, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[str, str]:
    """The command's output. One that hangs is stopped with SIGABRT, which makes Python's fault
    handler print every thread's stack (its workers' too), and fails the test with them; then its
    whole process group is killed, so no worker outlives the test holding its pipes."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGABRT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        pytest.fail(f"no exit within {timeout} s: {' '.join(proc.args)}\n{err[-8000:]}")


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _check(*args) -> subprocess.CompletedProcess:
    proc = _start(*args)
    out, err = _finish(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wider(converted, *more) -> list:
    return ["-c", MODELS / DETECTOR / "accuracy-check.yml", "-m", converted, "-s", shared_path("data", "wider_val_dev"),
            "--subsample_size", SUBSAMPLE, *more]


def _result(path: Path) -> dict:
    return json.loads(path.read_text())


def _same_arrays(a: Path, b: Path) -> None:
    """Two stored predictions files hold the same arrays, bit for bit."""
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files)
        for name in x.files:
            assert x[name].dtype == y[name].dtype and np.array_equal(x[name], y[name]), name


@pytest.fixture(scope="module")
def single_wider(converted, tmp_path_factory) -> tuple[dict, Path]:
    """One process on the first 96 wider_val_dev images: the result and its stored predictions."""
    out = tmp_path_factory.mktemp("single")
    proc = _check(*_wider(converted, "--json_result", out / "r.json", "--stored_predictions", out / "p.npz"))
    assert proc.returncode in (0, 1), proc.stderr  # 96 images: the references are for 200, a verdict may differ
    return _result(out / "r.json"), out / "p.npz"


def test_the_default_path_imports_no_dask():
    code = ("import sys, facezoo.evaluate.cli, facezoo.evaluate.run, facezoo.evaluate.evaluator; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'tornado')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_two_workers_give_the_single_process_numbers_and_predictions(converted, single_wider, tmp_path):
    single, predictions = single_wider
    proc = _check(*_wider(converted, "--workers", 2, "--shard_size", SHARD, "--json_result", tmp_path / "r.json",
                          "--stored_predictions", tmp_path / "p.npz"))
    assert proc.returncode in (0, 1) and not proc.stderr.replace("accuracy_check: a metric is outside its "
                                                                 "reference range\n", ""), proc.stderr
    result = _result(tmp_path / "r.json")
    assert result["metrics"] == single["metrics"] and result["images"] == single["images"] == int(SUBSAMPLE)
    _same_arrays(tmp_path / "p.npz", predictions)
    scale_out = result["run"]["scale_out"]
    assert scale_out["shards"] == 12 and scale_out["workers"] == 2 and scale_out["shards_resumed"] == 0
    assert "dask: 2 workers" in proc.stdout and "sharded on a Dask LocalCluster of 2" in proc.stdout


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (any of its threads)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _workers(pid: int) -> list[int]:
    """The LocalCluster's worker processes among `pid`'s children (multiprocessing's spawned ones)."""
    out = []
    for child in _children(pid):
        try:
            command = Path("/proc", str(child), "cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            out.append(child)
    return out


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_a_worker_killed_mid_run_costs_only_its_shards(converted, single_wider, tmp_path):
    single, _ = single_wider
    resume = tmp_path / "shards"  # finished shards show how far the run is
    proc = _start(*_wider(converted, "--workers", 2, "--shard_size", SHARD, "--resume", resume, "--json_result",
                          tmp_path / "r.json"))
    try:
        _wait_for(lambda: proc.poll() is not None or len(list(resume.glob("shard-*.npz"))) >= 2)
        workers = _workers(proc.pid)
        assert len(workers) == 2 and proc.poll() is None
        os.kill(workers[0], signal.SIGKILL)
        _, err = _finish(proc)
    finally:
        _kill_group(proc)
    assert proc.returncode in (0, 1) and "Traceback" not in err, err
    result = _result(tmp_path / "r.json")
    assert result["metrics"] == single["metrics"]
    assert result["run"]["scale_out"]["workers_lost"] >= 1
    assert len(list(resume.glob("shard-*.npz"))) == 12


def test_resume_after_an_interrupt_skips_finished_shards_and_gives_the_same_numbers(converted, single_wider,
                                                                                   tmp_path):
    single, _ = single_wider
    resume = tmp_path / "shards"
    args = _wider(converted, "--workers", 2, "--shard_size", SHARD, "--resume", resume, "--json_result",
                  tmp_path / "r.json")
    proc = _start(*args)
    try:
        _wait_for(lambda: proc.poll() is not None or len(list(resume.glob("shard-*.npz"))) >= 3)
        proc.send_signal(signal.SIGINT)
        _, err = _finish(proc, 30)
    finally:
        _kill_group(proc)
    assert proc.returncode == 130 and "interrupted by SIGINT" in err and "Traceback" not in err, err
    assert not (tmp_path / "r.json").exists()
    kept = {p: p.stat().st_mtime_ns for p in resume.glob("shard-*.npz")}
    assert 3 <= len(kept) < 12, sorted(kept)
    again = _check(*args)
    assert again.returncode in (0, 1), again.stderr
    assert f"{len(kept)} of 12 shards already done" in again.stdout
    result = _result(tmp_path / "r.json")
    assert result["metrics"] == single["metrics"]
    assert result["run"]["scale_out"]["shards_resumed"] == len(kept)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # read, not recomputed
    assert len(list(resume.glob("shard-*.npz"))) == 12


def test_lfw_with_shipped_images_gives_the_single_process_numbers(converted, tmp_path):
    lfw = shared_path("data", "lfw")
    base = ["-c", MODELS / RECOGNISER / "accuracy-check.yml", "-m", converted, "-s", lfw]
    one = _check(*base, "--json_result", tmp_path / "one.json", "--stored_predictions", tmp_path / "one.npz")
    assert one.returncode == 0, one.stderr
    many = _check(*base, "--workers", 2, "--shard_size", 50, "--ship_images", "--json_result", tmp_path / "two.json",
                  "--stored_predictions", tmp_path / "two.npz")
    assert many.returncode == 0, many.stderr
    assert _result(tmp_path / "two.json")["metrics"] == _result(tmp_path / "one.json")["metrics"]
    _same_arrays(tmp_path / "one.npz", tmp_path / "two.npz")
    assert _result(tmp_path / "two.json")["run"]["scale_out"]["ship_images"] is True


def test_broken_images_fail_once_or_are_skipped_as_in_one_process(converted, tmp_path):
    """A copy of wider_val_dev's first 24 images (links) with one truncated: without --skip_broken
    the one line names it; with it, the same images are skipped and the numbers are the same."""
    dev = shared_path("data", "wider_val_dev")
    root = tmp_path / "wider"
    shutil.copytree(dev / "wider_face_split", root / "wider_face_split")
    (root / "ground_truth").symlink_to(dev / "ground_truth")
    for image in (dev / "WIDER_val" / "images").rglob("*.jpg"):
        target = root / "WIDER_val" / "images" / image.relative_to(dev / "WIDER_val" / "images")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(image)
    names = [line for line in (root / "wider_face_split" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
             if line.endswith(".jpg")]
    broken = root / "WIDER_val" / "images" / names[9]
    data = broken.read_bytes()
    broken.unlink()
    broken.write_bytes(data[:len(data) // 3])
    base = ["-c", MODELS / DETECTOR / "accuracy-check.yml", "-m", converted, "-s", root, "--subsample_size", 24]
    failed = _check(*base, "--workers", 2, "--shard_size", 4)
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert failed.returncode == 2 and len(lines) == 1, failed.stderr
    assert lines[0] == f"accuracy_check: error: {broken}: not a decodable image (corrupt or truncated)"
    results = {}
    for name, more in (("one", ()), ("two", ("--workers", 2, "--shard_size", 4))):
        proc = _check(*base, "--skip_broken", *more, "--json_result", tmp_path / f"{name}.json")
        assert proc.returncode in (0, 1) and "1 broken images skipped" in proc.stderr, proc.stderr
        results[name] = _result(tmp_path / f"{name}.json")
    assert results["one"]["metrics"] == results["two"]["metrics"]
    assert results["one"]["broken_images"] == results["two"]["broken_images"] != []


def test_shards_cut_keys_in_order_and_name_variants():
    from facezoo.evaluate.shards import cut, key_name, key_path, shard_digest

    assert cut(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert cut([], 5) == [] and cut(["a"], 10) == [["a"]]
    assert key_name("x/a.jpg") == key_path("x/a.jpg") == "x/a.jpg"
    assert key_name(("x/a.jpg", True)) == "x/a.jpg#True" and key_path(("x/a.jpg", True)) == "x/a.jpg"
    assert shard_digest("run", ["a", "b"]) != shard_digest("run", ["a", "c"]) != shard_digest("other", ["a", "c"])


def test_a_resume_folder_of_another_run_or_of_other_files_is_refused(tmp_path):
    from facezoo.evaluate.errors import EvaluateError
    from facezoo.evaluate.shards import ResumeStore

    ours = {"model": "m", "dataset": "d", "shard_size": 8, "run": "1" * 64}
    ResumeStore(tmp_path / "a", ours).open()
    ResumeStore(tmp_path / "a", ours).open()  # the same run again: accepted
    with pytest.raises(EvaluateError, match=r"holds shards of another run \(m on d; run, shard_size differ\)"):
        ResumeStore(tmp_path / "a", {**ours, "shard_size": 4, "run": "2" * 64}).open()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine\n")
    with pytest.raises(EvaluateError, match=r"holds 'notes.txt' but no run.json"):
        ResumeStore(tmp_path / "b", ours).open()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["notes.txt"]


def test_a_stored_shard_round_trips_and_a_stale_one_is_replaced(tmp_path):
    from facezoo.evaluate.adapters.retinaface import Detections
    from facezoo.evaluate.shards import ResumeStore, shard_digest

    store = ResumeStore(tmp_path, {"run": "r"})
    store.open()
    keys = [("a/1.jpg", False), ("a/1.jpg", True), ("a/2.jpg", False), ("a/2.jpg", True)]
    results = {k: np.arange(4, dtype=np.float64) + i / 3 for i, k in enumerate(keys[:2])}
    broken = [(keys[2], "a/2.jpg: not a decodable image"), (keys[3], "a/2.jpg: not a decodable image")]
    store.save(0, keys, shard_digest("r", keys), results, broken)
    loaded, again = store.load(0, keys, shard_digest("r", keys))
    assert again == broken and loaded.keys() == results.keys()
    assert all(np.array_equal(loaded[k], results[k]) and loaded[k].dtype == np.float64 for k in results)
    assert store.load(0, keys[:2], shard_digest("r", keys[:2])) is None  # other keys: not done
    boxes = {"b.jpg": Detections(np.array([[1.0, 2, 3, 4]]), np.array([0.5]), np.zeros((1, 5, 2)))}
    store.save(0, ["b.jpg"], shard_digest("r", ["b.jpg"]), boxes, [])
    assert [p.name for p in tmp_path.glob("shard-*")] == [store.path(0, shard_digest("r", ["b.jpg"])).name]
    loaded, _ = store.load(0, ["b.jpg"], shard_digest("r", ["b.jpg"]))
    assert np.array_equal(loaded["b.jpg"].boxes, boxes["b.jpg"].boxes)


def _on_a_stub_worker(monkeypatch, tmp_path):
    """run_shard's view of a Dask worker: its address and local directory."""
    from types import SimpleNamespace

    import facezoo.evaluate.dask_executor as executor

    worker = SimpleNamespace(address="tcp://127.0.0.1:40000", local_directory=str(tmp_path))
    monkeypatch.setattr(executor.distributed, "get_worker", lambda: worker)
    return executor


def _task(executor, converted, **changes):
    from dataclasses import replace

    from facezoo.evaluate.adapters.retinaface import RetinaFaceSettings
    from facezoo.evaluate.jobs import ModelRef
    from facezoo.evaluate.wider_task import DetectJob

    ref = ModelRef(converted / "public" / DETECTOR / "FP32" / f"{DETECTOR}.xml", "openvino")
    job = DetectJob(shared_path("data", "wider_val_dev", "WIDER_val", "images"), (1, 3, 640, 640), 10**8,
                    RetinaFaceSettings())
    task = executor.ShardTask(ref, job, "images", False, {}, executor._own_versions())
    return replace(task, **changes)


def test_a_worker_with_other_versions_refuses_its_shard(converted, monkeypatch, tmp_path):
    from facezoo.evaluate.errors import EvaluateError

    executor = _on_a_stub_worker(monkeypatch, tmp_path)
    task = _task(executor, converted, versions={**executor._own_versions(), "numpy": "0.0"})
    with pytest.raises(EvaluateError, match=r"Dask worker tcp://127\.0\.0\.1:40000 has numpy [0-9.]+, this client "
                                            r"0\.0: install the same versions everywhere"):
        executor.run_shard(task, ["0--Parade/0_Parade_marchingband_1_465.jpg"], None)


def test_a_worker_that_cannot_see_the_model_or_the_images_says_so(converted, monkeypatch, tmp_path):
    from dataclasses import replace

    from facezoo.evaluate.errors import EvaluateError

    executor = _on_a_stub_worker(monkeypatch, tmp_path)
    task = _task(executor, converted)
    with pytest.raises(EvaluateError, match=r"model file not found on this Dask worker; .*or run with --ship_images"):
        executor.run_shard(replace(task, ref=replace(task.ref, path=tmp_path / "elsewhere.xml")), ["a.jpg"], None)
    unseen = replace(task, job=replace(task.job, folder=tmp_path / "not-mounted"))
    with pytest.raises(EvaluateError, match=r"^images: image folder not found on Dask worker tcp://127\.0\.0\.1:40000"):
        executor.run_shard(unseen, ["a.jpg"], None)
    results, broken = executor.run_shard(task, ["0--Parade/0_Parade_marchingband_1_465.jpg"], None)
    assert list(results) == ["0--Parade/0_Parade_marchingband_1_465.jpg"] and broken == []


def test_a_shard_whose_workers_keep_dying_ends_the_run_naming_it(converted):
    """One shard of all 96 images on one worker, which is killed a second into each of its lives:
    after Dask's allowed failures, one line names the shard."""
    proc = _start(*_wider(converted, "--workers", 1, "--shard_size", SUBSAMPLE))
    born: dict[int, float] = {}
    try:
        end = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < end:
            for worker in _workers(proc.pid):
                if time.monotonic() - born.setdefault(worker, time.monotonic()) > 1.0:
                    try:
                        os.kill(worker, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.05)
        _, err = _finish(proc, 30)
    finally:
        _kill_group(proc)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, err
    assert lines[0].startswith("accuracy_check: error: shard 0 (0--Parade/") and \
        "every worker that ran it died (a Dask LocalCluster of 1 worker process; out of memory?)" in lines[0]
