"""The decoded-input cache: what it returns equals what the job computes, damaged or foreign
entries are never used, concurrent writers leave only whole entries, and a bad folder is refused."""
import multiprocessing
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from facezoo.common.safeio import TEMP_PREFIX
from facezoo.evaluate.adapters.retinaface import RetinaFaceSettings
from facezoo.evaluate.cache import CachedJob, InputCache, check_cache_dir, checksums
from facezoo.evaluate.errors import EvaluateError
from facezoo.evaluate.images import BrokenImage
from facezoo.evaluate.lfw_task import EmbedJob
from facezoo.evaluate.wider_task import DetectJob


def _images(count: int = 4) -> tuple[Path, list[str]]:
    folder = shared_path("data", "wider_val_dev", "WIDER_val", "images")
    return folder, sorted(str(p.relative_to(folder)) for p in (folder / "0--Parade").glob("*.jpg"))[:count]


def _job(folder: Path, shape=(1, 3, 160, 160), max_pixels: int = 64_000_000) -> DetectJob:
    return DetectJob(folder, shape, max_pixels, RetinaFaceSettings())


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.iterdir() if p.suffix == ".input")


def test_cached_inputs_equal_computed_ones_cold_and_warm(tmp_path):
    folder, keys = _images()
    job = _job(folder)
    cache = InputCache(check_cache_dir(tmp_path / "cache", []))
    cached = CachedJob(job, cache)
    for _ in range(2):
        for key in keys:
            blob, info = cached.load(key)
            want_blob, want_info = job.load(key)
            assert blob.dtype == want_blob.dtype and np.array_equal(blob, want_blob)
            assert info == want_info and isinstance(info, tuple)
    summary = cache.summary()
    assert (summary["written"], summary["read"], summary["damaged"], summary["entries"]) == (4, 4, 0, 4)
    assert summary["bytes"] == sum(p.stat().st_size for p in _entries(tmp_path / "cache")) > 4 * 3 * 160 * 160
    # a hit is the mapped file, not a copy
    blob, _ = cached.load(keys[0])
    assert not blob.flags.writeable and not blob.flags.owndata


def test_the_key_holds_the_preprocessing_and_the_image_bytes(tmp_path):
    folder, keys = _images(1)
    cache = InputCache(tmp_path)
    for job in (_job(folder), _job(folder, (1, 3, 128, 128)), _job(folder, max_pixels=10**7),
                _job(folder, (1, 1, 160, 160))):
        CachedJob(job, cache).load(keys[0])
    assert len(_entries(tmp_path)) == 4  # each preprocessing its own entry
    # the same bytes under another name share an entry; other bytes do not
    other = tmp_path / "images"
    (other / "0--Parade").mkdir(parents=True)
    shutil.copy(folder / keys[0], other / keys[0])
    CachedJob(_job(other), cache).load(keys[0])
    assert len(_entries(tmp_path)) == 4 and cache.counts.read == 1
    (other / keys[0]).write_bytes((folder / _images(2)[1][1]).read_bytes())
    CachedJob(_job(other), cache).load(keys[0])
    assert len(_entries(tmp_path)) == 5


def test_a_lowered_pixel_limit_is_not_bypassed_by_a_cached_input(tmp_path):
    folder, keys = _images(1)
    cache = InputCache(tmp_path)
    CachedJob(_job(folder), cache).load(keys[0])
    with pytest.raises(BrokenImage, match="pixel limit"):
        CachedJob(_job(folder, max_pixels=1000), cache).load(keys[0])


def test_embedding_keys_cache_each_flip_and_detector_alignment_is_not_cached(tmp_path):
    lfw = shared_path("data", "lfw", "lfw_aligned_100pair")
    name = str(sorted(lfw.rglob("*.jpg"))[0].relative_to(lfw))
    job = EmbedJob(lfw, (1, 3, 112, 112), 64_000_000, None, None, None, "out")
    cache = InputCache(tmp_path)
    cached = CachedJob(job, cache)
    for _ in range(2):
        for flipped in (False, True):
            assert np.array_equal(cached.load((name, flipped))[0], job.load((name, flipped))[0])
    assert len(_entries(tmp_path)) == 2 and cache.counts.read == 2
    detector = EmbedJob(lfw, (1, 3, 112, 112), 64_000_000, "detector", None, None, "out")
    assert detector.preprocessing((name, False)) is None


def _damage_ways():
    """Ways an entry can be damaged or not ours, each a function of (entry path, another entry)."""
    def flip(offset):
        def damage(path, other):
            data = bytearray(path.read_bytes())
            data[offset] ^= 0x10
            path.write_bytes(bytes(data))
        return damage

    def cut(path, other):
        path.write_bytes(path.read_bytes()[:-100])

    def longer(path, other):
        path.write_bytes(path.read_bytes() + b"\0" * 64)

    def foreign(path, other):
        shutil.copy(other, path)

    def empty(path, other):
        path.write_bytes(b"")

    def garbage(path, other):
        path.write_bytes(os.urandom(5000))

    def huge_header(path, other):
        data = bytearray(path.read_bytes())
        data[8:12] = (1 << 31).to_bytes(4, "little")
        path.write_bytes(bytes(data))

    def json_object_info(path, other):
        data = path.read_bytes()
        length = int.from_bytes(data[8:12], "little")
        header = data[12:12 + length].replace(b'"info": [', b'"info": [{}, ')
        path.write_bytes(data[:8] + len(header).to_bytes(4, "little") + header + data[12 + length:])

    def symlink(path, other):
        path.unlink()
        path.symlink_to(other)

    def directory(path, other):
        path.unlink()
        path.mkdir()

    def fifo(path, other):
        path.unlink()
        os.mkfifo(path)

    return {"payload-bit": flip(-1), "payload-start-bit": flip(-160 * 160 * 3), "magic": flip(0),
            "header-bit": flip(20), "cut-short": cut, "longer": longer, "another-entry": foreign, "empty": empty,
            "garbage": garbage, "header-length": huge_header, "info-object": json_object_info,
            "symlink": symlink, "fifo": fifo, "directory": directory}


@pytest.mark.parametrize("way", sorted(_damage_ways()))
def test_a_damaged_or_foreign_entry_is_recomputed_and_replaced(tmp_path, way):
    folder, keys = _images(2)
    job = _job(folder)
    cache = InputCache(tmp_path)
    for key in keys:
        CachedJob(job, cache).load(key)
    first, second = _entries(tmp_path)
    _damage_ways()[way](first, second)
    cache = InputCache(tmp_path)
    for key in keys:
        blob, info = CachedJob(job, cache).load(key)
        want_blob, want_info = job.load(key)
        assert np.array_equal(blob, want_blob) and info == want_info
    assert cache.counts.damaged == 1 and cache.counts.read == 1
    if way == "directory":  # a folder cannot be renamed over: its input is recomputed every time
        assert cache.counts.not_written == 1 and cache.counts.write_error
    else:
        assert cache.counts.written == 1 and first.is_file() and not first.is_symlink()
        again = InputCache(tmp_path)
        for key in keys:
            CachedJob(job, again).load(key)
        assert again.counts.read == 2 and again.counts.damaged == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_checksums_see_changed_and_swapped_blocks():
    data = np.random.default_rng(0).integers(0, 256, (1, 3, 64, 64), dtype=np.uint8)
    base = checksums(data)
    changed = data.copy()
    changed.reshape(-1)[5000] ^= 1
    swapped = data.reshape(-1).copy()
    swapped[:4096], swapped[4096:8192] = data.reshape(-1)[4096:8192], data.reshape(-1)[:4096]
    assert checksums(changed) != base and checksums(swapped) != base and checksums(data.copy()) == base
    tail = np.arange(13, dtype=np.uint8)
    other = tail.copy()
    other[-1] += 1
    assert checksums(tail) != checksums(other)


def _fill(cache_dir: str, keys: list[str], folder: str, rounds: int) -> int:
    cache = InputCache(Path(cache_dir))
    job = _job(Path(folder))
    for _ in range(rounds):
        for key in keys:
            blob, _ = CachedJob(job, cache).load(key)
            if not np.array_equal(blob, job.load(key)[0]):
                return -1
    return cache.counts.damaged


def test_concurrent_runs_share_a_folder_and_see_only_whole_entries(tmp_path):
    folder, keys = _images(6)
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = pool.starmap(_fill, [(str(tmp_path), keys, str(folder), 4)] * 3)
    assert results == [0, 0, 0]
    assert len(_entries(tmp_path)) == 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_a_write_that_fails_is_counted_and_the_run_goes_on(tmp_path):
    folder, keys = _images(1)
    cache = InputCache(tmp_path / "gone")
    blob, info = CachedJob(_job(folder), cache).load(keys[0])
    assert np.array_equal(blob, _job(folder).load(keys[0])[0])
    assert cache.counts.not_written == 1 and "No such file" in cache.counts.write_error


def test_stale_temporaries_of_a_killed_run_are_swept(tmp_path):
    dead = multiprocessing.get_context("spawn").Process(target=int)
    dead.start()
    dead.join()
    stale = tmp_path / f"{TEMP_PREFIX}{dead.pid}-abc.xyz"
    stale.write_bytes(b"half")
    check_cache_dir(tmp_path, [])
    assert not stale.exists()


def _planted(kind: str, path: Path) -> None:
    if kind == "file":
        path.write_text("not a folder")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    elif kind == "link-to-fifo":
        os.mkfifo(path.with_name("fifo"))
        path.symlink_to(path.with_name("fifo"))
    elif kind == "under-a-file":
        (path.parent / "file").write_text("x")


@pytest.mark.parametrize("kind, message", [
    ("file", "must be a folder, found a regular file"), ("fifo", "must be a folder, found a FIFO"),
    ("device", "must be a folder, found a device"), ("link-to-fifo", "must be a folder, found a FIFO"),
    ("under-a-file", "cannot be used|cannot be written")])
def test_a_cache_folder_that_is_not_a_folder_is_refused(tmp_path, kind, message):
    path = tmp_path / "cache"
    _planted(kind, path)
    if kind == "under-a-file":
        path = path.parent / "file" / "cache"
    with pytest.raises(EvaluateError, match=message):
        check_cache_dir(path, [])


def test_a_cache_folder_overlapping_the_dataset_is_refused(tmp_path):
    (tmp_path / "images").mkdir()
    for path in (tmp_path / "images", tmp_path / "images" / "cache", tmp_path):
        with pytest.raises(EvaluateError, match="overlaps"):
            check_cache_dir(path, [tmp_path / "images"])


def test_a_file_too_large_to_be_an_image_is_not_hashed(tmp_path, monkeypatch):
    import facezoo.evaluate.cache as cache_module

    folder, keys = _images(1)
    monkeypatch.setattr(cache_module, "HASHED_MAX", (folder / keys[0]).stat().st_size - 1)
    cache = InputCache(tmp_path)
    blob, _ = CachedJob(_job(folder), cache).load(keys[0])
    assert np.array_equal(blob, _job(folder).load(keys[0])[0])
    assert (cache.counts.written, cache.counts.uncacheable) == (0, 1) and not _entries(tmp_path)
