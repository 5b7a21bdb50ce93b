import hashlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from conftest import file_entry, shared_path, write_model
from facezoo.download import DownloadOptions, UnpackLimits, download_models
from facezoo.download.cli import build_parser
from facezoo.download.progress import JsonReporter
from facezoo.registry import load_registry
from fileserver import FileServer

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def run(tmp_path: Path, files, postprocessing=None, **opts):
    """Download one test model; return (failure reason or None, events, model directory)."""
    extra = {"postprocessing": postprocessing} if postprocessing else {}
    write_model(tmp_path / "models", "m", files, **extra)
    models = load_registry(tmp_path / "models")
    stream = io.StringIO()
    options = DownloadOptions(output_dir=tmp_path / "out", **{"retry_delay": 0.01, "timeout": 5, **opts})
    results = download_models(models, options, JsonReporter(stream))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    return results["m"], events, tmp_path / "out" / "public" / "m"


def test_success_then_already_present(tmp_path, server):
    url = server.add("/a.bin", DATA)
    reason, events, out = run(tmp_path, [file_entry("a.bin", DATA, [url])])
    assert reason is None and (out / "a.bin").read_bytes() == DATA
    assert events[-1] == {"event": "summary", "complete": ["m"], "failed": {}}
    reason, events, _ = run(tmp_path, [file_entry("a.bin", DATA, [url])])
    assert reason is None and len(server.hits("/a.bin")) == 1
    assert any(e.get("how") == "already present, verified" for e in events)


def test_checksum_mismatch_leaves_nothing(tmp_path, server):
    url = server.add("/a.bin", DATA, always="wrong")
    reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [url])])
    assert "sha256 mismatch" in reason and SHA in reason
    assert not (out / "a.bin").exists()


def test_wrong_size_is_refused_before_downloading(tmp_path, server):
    url = server.add("/a.bin", DATA + b"extra")
    reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [url])])
    assert "size mismatch: server announces 300005 bytes, expected 300000" in reason
    assert not (out / "a.bin").exists()


def test_connection_closed_mid_body_resumes_with_range(tmp_path, server):
    data = os.urandom(6_000_000)  # several read chunks, so some reach the disk before the drop
    url = server.add("/a.bin", data, faults=["close_mid"])
    reason, _, out = run(tmp_path, [file_entry("a.bin", data, [url])])
    assert reason is None and (out / "a.bin").read_bytes() == data
    first, second = server.hits("/a.bin")
    assert first is None and 0 < int(second.removeprefix("bytes=").rstrip("-")) <= len(data) // 2


@pytest.mark.parametrize("status", ["404", "500"])
def test_failing_source_falls_back_to_the_next(tmp_path, server, status):
    bad = server.add("/bad.bin", DATA, always=f"status:{status}")
    good = server.add("/good.bin", DATA)
    reason, events, out = run(tmp_path, [file_entry("a.bin", DATA, [bad, good])], num_attempts=2)
    assert reason is None and (out / "a.bin").read_bytes() == DATA
    # 404 is final for a source; 500 is worth a second attempt
    assert len(server.hits("/bad.bin")) == (1 if status == "404" else 2)
    assert any(e["event"] == "attempt_failed" and f"HTTP {status}" in e["reason"] for e in events)


def test_429_is_retried_after_the_announced_delay(tmp_path, server):
    url = server.add("/a.bin", DATA, faults=["status:429"])
    reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [url])])
    assert reason is None and len(server.hits("/a.bin")) == 2


def test_every_source_failing_lists_each_with_its_reason(tmp_path, server):
    a = server.add("/a.bin", DATA, always="status:404")
    b = server.add("/b.bin", DATA, always="status:503")
    reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [a, b])], num_attempts=2)
    assert f"[1] {a}: HTTP 404" in reason and f"[2] {b}: HTTP 503" in reason and "after 2 attempts" in reason
    assert not out.joinpath("a.bin").exists()


def test_slow_server_hits_the_timeout(tmp_path, server):
    slow = server.add("/slow.bin", DATA, always="slow:2")
    good = server.add("/good.bin", DATA)
    started = time.monotonic()
    write_model(tmp_path / "models", "m", [file_entry("a.bin", DATA, [slow, good])])
    options = DownloadOptions(output_dir=tmp_path / "out2", timeout=0.3, num_attempts=1)
    stream = io.StringIO()
    results = download_models(load_registry(tmp_path / "models"), options, JsonReporter(stream))
    assert results["m"] is None and time.monotonic() - started < 15
    assert any(e.get("reason") == "timed out" for e in map(json.loads, stream.getvalue().splitlines()))


def test_redirect_loop(tmp_path, server):
    loop = server.add("/loop", redirect="/loop")
    reason, _, _ = run(tmp_path, [file_entry("a.bin", DATA, [loop])])
    assert "redirect loop" in reason and len(server.hits("/loop")) <= 31


def test_google_drive_confirmation_page(tmp_path, server):
    def page(h):
        body = (f'<html><form id="download-form" action="{server.url}/gdl" method="get">'
                '<input type="hidden" name="id" value="FILEID"><input type="hidden" name="confirm" value="t">'
                '<input type="hidden" name="uuid" value="u-1"></form></html>').encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    server.add("/uc", page)
    server.add("/gdl", DATA)
    reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [{"$type": "google_drive", "id": "FILEID"}])],
                         gdrive_url=server.url)
    assert reason is None and (out / "a.bin").read_bytes() == DATA
    assert server.hits("/uc") and server.hits("/gdl")


def test_cache_serves_a_second_output_dir_and_evicts_corruption(tmp_path, server):
    url = server.add("/a.bin", DATA)
    cache = tmp_path / "cache"
    reason, _, _ = run(tmp_path, [file_entry("a.bin", DATA, [url])], cache_dir=cache)
    entry = cache / "sha256" / SHA[:2] / SHA
    assert reason is None and entry.read_bytes() == DATA
    (tmp_path / "out").rename(tmp_path / "first")
    reason, events, _ = run(tmp_path, [file_entry("a.bin", DATA, [url])], cache_dir=cache)
    assert reason is None and len(server.hits("/a.bin")) == 1
    assert any(e.get("how") == "verified, from cache" for e in events)
    # a corrupted cache entry is detected, evicted and replaced from the source
    (tmp_path / "out").rename(tmp_path / "second")
    entry.unlink()
    entry.write_bytes(b"x" * len(DATA))
    reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [url])], cache_dir=cache)
    assert reason is None and (out / "a.bin").read_bytes() == DATA and entry.read_bytes() == DATA


def _zip(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _tar(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tf.addfile(info)
    return buf.getvalue()


def test_unpack_zip_into_the_model_directory(tmp_path, server):
    archive = _zip({"dir/x-symbol.json": b"{}", "dir/x-0000.params": b"p"})
    url = server.add("/m.zip", archive)
    reason, _, out = run(tmp_path, [file_entry("m.zip", archive, [url])],
                         postprocessing=[{"$type": "unpack_archive", "file": "m.zip", "format": "zip"}])
    assert reason is None and (out / "dir/x-0000.params").read_bytes() == b"p"


@pytest.mark.parametrize("maker,name", [(_zip, "m.zip"), (_tar, "m.tar.gz")])
@pytest.mark.parametrize("evil", ["traversal", "symlink"])
def test_unpack_refuses_escaping_members_and_links(tmp_path, server, maker, name, evil):
    members = {"ok.txt": b"fine"}
    if evil == "traversal":
        members["../../escaped.txt"] = b"evil"
        archive = maker(members)
    else:
        archive = maker(members, symlink="link")
    url = server.add("/" + name, archive)
    reason, _, out = run(tmp_path, [file_entry(name, archive, [url])],
                         postprocessing=[{"$type": "unpack_archive", "file": name}])
    assert ("escapes the target directory" if evil == "traversal" else "link") in reason
    assert not (out / "ok.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "escaped.txt").exists() and not (out / "link").exists()
    assert not any(p.name.startswith((".unpack-", ".facezoo-tmp-")) for p in out.iterdir())


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "facezoo.download.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_download_leaves_no_final_file_nor_cache_entry_and_resumes(tmp_path, how):
    big = os.urandom(4_000_000)
    with FileServer(rate=1_000_000) as srv:
        url = srv.add("/big.bin", big)
        write_model(tmp_path / "models", "m", [file_entry("big.bin", big, [url])])
        args = ["--name", "m", "--models_dir", tmp_path / "models", "-o", tmp_path / "out",
                "--cache_dir", tmp_path / "cache"]
        proc = _cli(*args)
        part = tmp_path / "out" / ".partial" / "public" / "m" / "big.bin.part"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 500_000):
            time.sleep(0.05)
        proc.send_signal(how)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == (130 if how == signal.SIGINT else -9)
        if how == signal.SIGINT:
            assert "interrupted" in err and "Traceback" not in err
        assert not (tmp_path / "out" / "public" / "m" / "big.bin").exists()
        assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*")) if (tmp_path / "cache").exists() else True
        assert part.stat().st_size > 0
        proc = _cli(*args)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert (tmp_path / "out" / "public" / "m" / "big.bin").read_bytes() == big
        assert srv.hits("/big.bin")[-1].startswith("bytes=")


def test_two_processes_on_the_same_output_dir(tmp_path):
    big = os.urandom(2_000_000)
    with FileServer(rate=2_000_000) as srv:
        url = srv.add("/big.bin", big)
        write_model(tmp_path / "models", "m", [file_entry("big.bin", big, [url])])
        args = ["--name", "m", "--models_dir", tmp_path / "models", "-o", tmp_path / "out"]
        procs = [_cli(*args), _cli(*args)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert (tmp_path / "out" / "public" / "m" / "big.bin").read_bytes() == big
        assert len(srv.hits("/big.bin")) == 1


def test_cli_errors_are_one_line(tmp_path):
    proc = _cli("--name", "no-such-model")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and err.strip() == (
        "omz_downloader: error: --name: no model matches 'no-such-model' (see --print_all)")


def test_every_mirror_model_from_the_shared_mirror(tmp_path):
    mirror = shared_path("data", "mirror")
    names = sorted(p.name for p in mirror.iterdir() if p.is_dir())
    proc = _cli("--name", ",".join(names), "--mirror", mirror, "-o", tmp_path / "out", "-j", "4",
                "--progress_format", "json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["complete"] == names
    for model in load_registry():
        if model.name in names:
            for f in model.files:
                path = tmp_path / "out" / "public" / model.name / f.name
                assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256


def test_mirror_model_via_an_http_mirror(tmp_path):
    mirror = shared_path("data", "mirror")
    with FileServer(root=mirror) as srv:
        proc = _cli("--name", "retinaface-mnet025-v1", "--mirror", srv.url, "-o", tmp_path / "out")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert srv.hits("/retinaface-mnet025-v1/mnet10-0000.params")


def test_corrupt_mirror_byte_gives_a_checksum_error_and_no_file(tmp_path):
    mirror = shared_path("data", "mirror", "retinaface-mnet025-v1")
    copy = tmp_path / "mirror" / "retinaface-mnet025-v1"
    copy.mkdir(parents=True)
    for f in mirror.iterdir():
        data = bytearray(f.read_bytes())
        if f.name.endswith(".params"):
            data[1000] ^= 0x01
        (copy / f.name).write_bytes(bytes(data))
    # the public source is unreachable (a closed port), so the mirror's bad copy is the only candidate
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    proc = _cli("--name", "retinaface-mnet025-v1", "--mirror", tmp_path / "mirror", "-o", tmp_path / "out",
                "--num_attempts", "1", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("omz_downloader: error: retinaface-mnet025-v1/mnet10-0000.params:")
    assert "sha256 mismatch" in last
    assert not (tmp_path / "out" / "public" / "retinaface-mnet025-v1" / "mnet10-0000.params").exists()


def test_unreachable_public_sources_fail_within_the_attempt_budget(tmp_path):
    """retinaface-resnet50 with no network: every source named with its reason, non-zero exit, quickly."""
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    started = time.monotonic()
    proc = _cli("--name", "retinaface-resnet50", "-o", tmp_path / "out", "--retry_delay", "0.05", env=env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and time.monotonic() - started < 60
    last = err.strip().splitlines()[-1]
    assert "every source failed" in last and "after 3 attempts" in last
    for number, where in enumerate(["dropbox.com", "google_drive:1wm-6K688HQEx_H90UdAIuKv-NAsKBu85",
                                    "github.com/deepinsight"], 1):
        assert f"[{number}] " in last and where in last
    assert not (tmp_path / "out" / "public" / "retinaface-resnet50" / "retinaface-R50.zip").exists()


def test_unavailable_original_ends_within_5_s_saying_how_to_supply_the_file(tmp_path):
    """Issue 12: the README's model whose original release died, on a machine without internet."""
    try:
        socket.getaddrinfo("www.dropbox.com", 443)
        pytest.skip("this machine resolves public host names; the 5 s bound is for offline machines")
    except OSError:
        pass
    started = time.monotonic()
    proc = _cli("--name", "retinaface-resnet50", "-o", tmp_path / "out")
    _, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1 and elapsed < 5, (elapsed, err)
    lines = [line for line in err.splitlines() if line.startswith("omz_downloader: error:")]
    assert len(lines) == 1
    line = lines[0]
    assert "the original weights are unavailable (the Dropbox link" in line and "2021" in line
    final = tmp_path / "out" / "public" / "retinaface-resnet50" / "retinaface-R50.zip"
    for hint in ("--mirror DIR_OR_URL", "<mirror>/retinaface-resnet50/retinaface-R50.zip", "--cache_dir",
                 f"placing it at {final}", "cannot resolve the host name"):
        assert hint in line
    assert "after 2 attempts" not in line and "retrying" not in err
    assert not (tmp_path / "out" / ".partial").exists()


def test_unresolvable_host_is_not_retried_and_fails_its_other_sources_at_once(tmp_path):
    sources = ["http://no-such-host.invalid/a.bin", "http://no-such-host.invalid/b.bin"]
    started = time.monotonic()
    reason, events, _ = run(tmp_path, [file_entry("a.bin", DATA, sources)], retry_delay=5, num_attempts=3)
    assert time.monotonic() - started < 3
    assert "[1] http://no-such-host.invalid/a.bin: cannot resolve the host name;" in reason
    assert "[2] http://no-such-host.invalid/b.bin: cannot resolve the host name (already failed in this run)" in reason
    assert not any(e.get("retry_in") for e in events)


def test_a_server_sending_one_byte_at_a_time_is_bounded_by_the_attempt_deadline(tmp_path, server):
    url = server.add("/a.bin", DATA, always="trickle:0.01")
    started = time.monotonic()
    reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [url])], attempt_deadline=1, num_attempts=1)
    assert time.monotonic() - started < 5
    assert "too slow" in reason and "--attempt_deadline" in reason and not (out / "a.bin").exists()


def test_a_server_ignoring_range_restarts_from_the_first_byte(tmp_path, server):
    url = server.add("/a.bin", DATA, always="norange")
    part = tmp_path / "out" / ".partial" / "public" / "m" / "a.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)  # a wrong prefix: only a restart can produce the right file
    reason, events, out = run(tmp_path, [file_entry("a.bin", DATA, [url])])
    assert reason is None and (out / "a.bin").read_bytes() == DATA
    assert server.hits("/a.bin") == ["bytes=1000-"]


def test_progress_counts_never_exceed_totals_across_retries_and_fallbacks(tmp_path, server):
    data = os.urandom(3_000_000)
    wrong = server.add("/wrong.bin", data, always="wrong")
    flaky = server.add("/flaky.bin", data, faults=["close_mid"])
    reason, events, _ = run(tmp_path, [file_entry("a.bin", data, [wrong, flaky])])
    assert reason is None
    progress = [e for e in events if e["event"] == "file_progress"]
    assert progress and all(0 <= e["bytes"] <= e["size"] == len(data) for e in progress)
    assert progress[-1]["bytes"] == len(data)


def test_lock_files_and_the_partial_folder_are_removed_after_use(tmp_path, server):
    url = server.add("/a.bin", DATA)
    stale = tmp_path / "out" / ".partial" / "public" / "m" / "old.bin.lock"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")  # left by a process killed with -9: nobody holds it
    reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [url])])
    assert reason is None and not (tmp_path / "out" / ".partial").exists()


def test_output_files_get_umask_modes(tmp_path, server):
    url = server.add("/a.bin", DATA)
    old = os.umask(0o022)
    try:
        reason, _, out = run(tmp_path, [file_entry("a.bin", DATA, [url])], cache_dir=tmp_path / "cache")
    finally:
        os.umask(old)
    entry = tmp_path / "cache" / "sha256" / SHA[:2] / SHA
    assert reason is None
    assert stat.S_IMODE((out / "a.bin").stat().st_mode) == 0o644 == stat.S_IMODE(entry.stat().st_mode)
    assert entry.stat().st_nlink == 1  # a private copy: a hard link in the cache is always a planted one


def test_raised_archive_limits_let_a_large_archive_through(tmp_path, server):
    archive = _zip({f"f{i}": b"x" for i in range(6)})
    url = server.add("/m.zip", archive)
    post = [{"$type": "unpack_archive", "file": "m.zip"}]
    reason, _, out = run(tmp_path, [file_entry("m.zip", archive, [url])], postprocessing=post,
                         unpack_limits=UnpackLimits(max_members=5))
    assert "more than 5 members" in reason and not (out / "f0").exists()
    reason, events, out = run(tmp_path, [file_entry("m.zip", archive, [url])], postprocessing=post,
                              unpack_limits=UnpackLimits(max_members=6))
    assert reason is None and sorted(p.name for p in out.glob("f*")) == [f"f{i}" for i in range(6)]
    assert {"event": "unpack_start", "model": "m", "file": "m.zip", "members": 6, "bytes": 6} in events


def test_json_progress_is_one_object_per_line(tmp_path, server):
    archive = _zip({"x-symbol.json": b"{}", "x-0000.params": os.urandom(100_000)})
    url = server.add("/m.zip", archive)
    write_model(tmp_path / "models", "m", [file_entry("m.zip", archive, [url])],
                postprocessing=[{"$type": "unpack_archive", "file": "m.zip"}])
    proc = _cli("--name", "m", "--models_dir", tmp_path / "models", "-o", tmp_path / "out",
                "--progress_format", "json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "summary" and "unpack_done" in kinds


def test_every_option_has_help():
    missing = [a.option_strings for a in build_parser()._actions if a.option_strings and not a.help]
    assert missing == []
