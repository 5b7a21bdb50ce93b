"""facezoo.common: the console-script runner's signal handling and the safe file helpers."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from facezoo.common.errors import FacezooError
from facezoo.common.safeio import (OutputGroup, check_output_dir, check_output_file, make_temp_dir,
                                   read_bytes_limited, regular_input, sweep_stale_temps, write_atomic)

SWALLOWING_COMMAND = """
import sys, threading, time
from facezoo.common.cli import run_command
from facezoo.common.safeio import write_atomic

def main():
    try:
        print("ready", flush=True)
        time.sleep(30)
    except KeyboardInterrupt:  # a library that swallows the interrupt and goes on
        pass
    if sys.argv[1] == "publish":
        write_atomic(sys.argv[2], "finished after the signal")
        return 0
    threading.Event().wait()  # hangs: only the watchdog can end it

run_command("demo", main)
"""


@pytest.mark.parametrize("after", ["hang", "publish"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_swallowed_interrupt_still_ends_the_command_in_time_without_publishing(tmp_path, signum, after):
    target = tmp_path / "result.txt"
    proc = subprocess.Popen([sys.executable, "-c", SWALLOWING_COMMAND, after, str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 128 + signum
    assert err.strip().splitlines() == [f"demo: interrupted by {signal.Signals(signum).name}; "
                                        "nothing partial was left at a final path"]
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_inputs_that_are_not_regular_files_are_refused_unopened(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(FacezooError, match="must be a regular file, found a FIFO"):
        read_bytes_limited(fifo, 10)
    with pytest.raises(FacezooError, match="found a directory"):
        regular_input(tmp_path)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    with pytest.raises(FacezooError, match="larger than the 10-byte limit"):
        read_bytes_limited(big, 10)


def test_outputs_never_clobber_inputs_devices_or_folders(tmp_path):
    source = tmp_path / "annotation.txt"
    source.write_text("x")
    device = tmp_path / "full"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    with pytest.raises(FacezooError, match="also an input"):
        check_output_file(tmp_path / "annotation.txt", "--csv_result", inputs=[source])
    with pytest.raises(FacezooError, match="found a device"):
        check_output_file(device, "--json_result")
    with pytest.raises(FacezooError, match="found a directory"):
        check_output_file(tmp_path, "--json_result")
    with pytest.raises(FacezooError, match="does not exist"):
        check_output_file(tmp_path / "missing" / "r.json", "--json_result")
    with pytest.raises(FacezooError, match="must be a folder"):
        check_output_dir(source, "--report")
    with pytest.raises(FacezooError, match="holds an input"):
        check_output_dir(tmp_path, "--report", inputs=[source])
    assert stat.S_ISCHR(os.stat(device).st_mode) and source.read_text() == "x"


def test_grouped_outputs_appear_together_with_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        with OutputGroup() as group:
            group.stage(tmp_path / "r.json", "{}")
            group.stage(tmp_path / "r.csv", "a,b\n")
            assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
        write_atomic(tmp_path / "one.txt", "1")
    finally:
        os.umask(old)
    assert sorted(os.listdir(tmp_path)) == ["one.txt", "r.csv", "r.json"]
    assert {stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in os.listdir(tmp_path)} == {0o644}
    with pytest.raises(RuntimeError):
        with OutputGroup() as group:
            group.stage(tmp_path / "r.json", "new")
            raise RuntimeError("failed before the commit")
    assert (tmp_path / "r.json").read_text() == "{}" and len(os.listdir(tmp_path)) == 3


def test_leftovers_of_a_dead_process_are_swept_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from facezoo.common.safeio import make_temp_dir
        print(make_temp_dir({str(tmp_path)!r}, "convert"))""")], capture_output=True, text=True, check=True)
    left = dead.stdout.strip()
    assert os.path.isdir(left)
    mine = make_temp_dir(tmp_path, "convert")
    assert not os.path.exists(left) and mine.is_dir()
    assert sweep_stale_temps(tmp_path) == []
