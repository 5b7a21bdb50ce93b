"""omz_downloader: fetch the original files of registry models."""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path

from facezoo.common.cli import ArgumentParser, guarded, run_command
from facezoo.registry.arguments import add_model_arguments, selected_models

from .downloader import DownloadOptions, download_models
from .errors import Cancelled
from .progress import make_reporter
from .unpack import UnpackLimits

SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def bounded_number(low: float, high: float, integer: bool = False):
    """An argparse type: a finite decimal number in [low, high] (inf, nan and overflows refused)."""
    def parse(text: str):
        pattern = r"[0-9]+" if integer else r"[0-9]+(\.[0-9]*)?|\.[0-9]+"
        if not re.fullmatch(pattern, text.strip()):
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if integer else ' decimal number'} "
                                             f"(expected {low:g}..{high:g})")
        value = int(text) if integer else float(text)
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range (expected {low:g}..{high:g})")
        return value
    return parse


def byte_size(text: str) -> int:
    """An argparse type: a byte count, optionally with a binary suffix K, M, G or T (1 KiB .. 1 TiB)."""
    match = re.fullmatch(r"([0-9]{1,16})\s*([kmgt]?)(i?b)?", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (expected bytes, or a number with K, M, G or T)")
    value = int(match.group(1)) * SIZE_UNITS[match.group(2)]
    if not 1 << 10 <= value <= 1 << 40:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range (expected 1K..1T)")
    return value


def build_parser() -> argparse.ArgumentParser:
    limits = UnpackLimits()
    parser = ArgumentParser(prog="omz_downloader", description="Download registry models' original files, "
                            "verify their size and sha256, and unpack archives safely.")
    add_model_arguments(parser)
    parser.add_argument("-o", "--output_dir", type=Path, default=Path("."),
                        help="root of <dir>/public/<name>/ (default: the current folder)")
    parser.add_argument("--cache_dir", type=Path,
                        help="content-addressed cache of verified files, shared between runs and output folders")
    parser.add_argument("--mirror", action="append", default=[], metavar="DIR_OR_URL",
                        help="tried first as <mirror>/<model-name>/<file-name>; repeatable; "
                             "also taken from $OMZ_MIRROR (whitespace-separated)")
    parser.add_argument("-j", "--jobs", type=bounded_number(1, 32, integer=True), default=1,
                        help="files downloaded in parallel, 1..32 (default 1)")
    parser.add_argument("--num_attempts", type=bounded_number(1, 10, integer=True), default=3,
                        help="attempts per source on transient errors, 1..10 (default 3); a host name that does "
                             "not resolve fails its sources at once")
    parser.add_argument("--retry_delay", type=bounded_number(0, 300), default=1.0,
                        help="seconds before the second attempt, 0..300; doubles after each (default 1)")
    parser.add_argument("--timeout", type=bounded_number(0.1, 3600), default=30.0,
                        help="seconds to connect and for each read, 0.1..3600 (default 30)")
    parser.add_argument("--attempt_deadline", type=bounded_number(1, 86400), default=3600.0,
                        help="seconds one attempt at one file may take in all, 1..86400 (default 3600); "
                             "bounds a server that sends a byte at a time")
    parser.add_argument("--max_archive_members", type=bounded_number(1, 10_000_000, integer=True),
                        default=limits.max_members,
                        help=f"archives with more members are refused (default {limits.max_members})")
    parser.add_argument("--max_unpacked_size", type=byte_size, default=limits.max_bytes, metavar="BYTES",
                        help="archives whose members add up to more are refused; K/M/G/T suffixes "
                             f"(default {limits.max_bytes >> 30}G)")
    parser.add_argument("--max_unpack_ratio", type=bounded_number(1, 1_000_000), default=limits.max_ratio,
                        help="archives whose members add up to more than this many times the archive's size "
                             f"(as model.yml declares it) are refused (default {limits.max_ratio:g})")
    parser.add_argument("--max_member_ratio", type=bounded_number(1, 1_000_000), default=limits.max_member_ratio,
                        help="a zip member over 1 MiB that expands more than this many times its compressed "
                             f"size is refused as a zip bomb (default {limits.max_member_ratio:g})")
    parser.add_argument("--progress_format", choices=["text", "json"], default="text",
                        help="text: progress bars and event lines on stderr; json: one JSON object per line "
                             "on stdout (default text)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded("omz_downloader", lambda: _download(args))


def _download(args: argparse.Namespace) -> int:
    try:
        chosen = selected_models(args)
        if chosen is None:
            return 0
        mirrors = args.mirror + os.environ.get("OMZ_MIRROR", "").split()
        limits = UnpackLimits(max_members=args.max_archive_members, max_bytes=args.max_unpacked_size,
                              max_ratio=args.max_unpack_ratio, max_member_ratio=args.max_member_ratio)
        options = DownloadOptions(output_dir=args.output_dir, cache_dir=args.cache_dir, mirrors=mirrors,
                                  jobs=args.jobs, num_attempts=args.num_attempts, retry_delay=args.retry_delay,
                                  timeout=args.timeout, attempt_deadline=args.attempt_deadline,
                                  unpack_limits=limits)
        reporter = make_reporter(args.progress_format)
        results = download_models(chosen, options, reporter)
    except Cancelled:
        raise KeyboardInterrupt() from None
    failed = [reason for reason in results.values() if reason]
    for reason in failed:
        print(f"omz_downloader: error: {' '.join(reason.split())}", file=sys.stderr)
    return 1 if failed else 0


def entry() -> None:
    """The omz_downloader console script."""
    run_command("omz_downloader", main)


if __name__ == "__main__":
    entry()
