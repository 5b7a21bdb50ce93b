"""Downloader throughput and parallelism, measured side by side in one run.

1. A 1 GiB file from a local HTTP server: omz_downloader (verifies sha256 while streaming)
   against `curl -o` followed by `sha256sum`. Prints our throughput as a share of curl's.
2. Eight 10 MB files from a server adding 50 ms per request and 20 MB/s per connection:
   omz_downloader -j 4 against -j 1. Prints parallel time as a share of serial time.

Run: python bench/download.py [--size_mib 1024]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_model  # noqa: E402
from fileserver import FileServer  # noqa: E402


def _random_file(path: Path, size: int) -> str:
    h = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size >> 20):
            piece = bytes([i & 0xFF]) + block[1:]
            f.write(piece)
            h.update(piece)
    return h.hexdigest()


def _downloader(*args) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "facezoo.download.cli", *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def throughput(work: Path, size_mib: int) -> float:
    src = work / "big.bin"
    sha = _random_file(src, size_mib << 20)
    with FileServer() as srv:
        url = srv.add("/big.bin", src)
        write_model(work / "models", "big", [{"name": "big.bin", "size": size_mib << 20, "sha256": sha,
                                              "sources": [url]}])
        began = time.perf_counter()
        subprocess.run(["curl", "-sSf", "-o", str(work / "curl.bin"), url], check=True)
        curl_only = time.perf_counter() - began
        digest = subprocess.run(["sha256sum", str(work / "curl.bin")], check=True, capture_output=True,
                                text=True).stdout.split()[0]
        curl_time = time.perf_counter() - began
        assert digest == sha
        (work / "curl.bin").unlink()
        ours = _downloader("--name", "big", "--models_dir", work / "models", "-o", work / "out")
    shutil.rmtree(work / "out")
    src.unlink()
    mib_s = lambda t: size_mib / t  # noqa: E731
    print(f"1 GiB-class transfer ({size_mib} MiB, sha256 included): curl {mib_s(curl_time):.0f} MiB/s, "
          f"omz_downloader {mib_s(ours):.0f} MiB/s (curl alone, before sha256sum: {mib_s(curl_only):.0f} MiB/s)")
    ratio = curl_time / ours
    print(f"  throughput ratio ours/curl = {ratio:.2f} (target >= 0.50)")
    return ratio


def parallelism(work: Path) -> float:
    files = []
    with FileServer(latency=0.05, rate=20e6) as srv:
        for i in range(8):
            data = os.urandom(10_000_000)
            files.append({"name": f"f{i}.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                          "sources": [srv.add(f"/f{i}.bin", data)]})
        write_model(work / "models8", "eight", files)
        serial = _downloader("--name", "eight", "--models_dir", work / "models8", "-o", work / "s", "-j", "1")
        parallel = _downloader("--name", "eight", "--models_dir", work / "models8", "-o", work / "p", "-j", "4")
    ratio = parallel / serial
    print(f"8 x 10 MB at 50 ms latency, 20 MB/s per connection: -j 1 {serial:.2f} s, -j 4 {parallel:.2f} s")
    print(f"  parallel/serial time ratio = {ratio:.2f} (target <= 0.35)")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size_mib", type=int, default=1024)
    args = parser.parse_args()
    from machine import machine_line

    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        a = throughput(work, args.size_mib)
        b = parallelism(work)
    print(f"RESULT throughput_ratio={a:.2f} parallel_ratio={b:.2f} "
          f"{'PASS' if a >= 0.5 and b <= 0.35 else 'FAIL'}")
    return 0 if a >= 0.5 and b <= 0.35 else 1


if __name__ == "__main__":
    sys.exit(main())
