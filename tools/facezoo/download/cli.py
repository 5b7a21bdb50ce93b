"""omz_downloader: fetch the original files of registry models."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from facezoo.common.cli import ArgumentParser, guarded, run_command
from facezoo.registry.arguments import add_model_arguments, selected_models

from .downloader import DownloadOptions, download_models
from .errors import Cancelled
from .progress import make_reporter


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="omz_downloader", description="Download registry models' original files.")
    add_model_arguments(parser)
    parser.add_argument("-o", "--output_dir", type=Path, default=Path("."), help="root of <dir>/public/<name>/")
    parser.add_argument("--cache_dir", type=Path, help="content-addressed cache shared between runs")
    parser.add_argument("--mirror", action="append", default=[], metavar="DIR_OR_URL",
                        help="tried first as <mirror>/<model-name>/<file-name>; repeatable; "
                             "also taken from $OMZ_MIRROR (whitespace-separated)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="files downloaded in parallel (default 1)")
    parser.add_argument("--num_attempts", type=int, default=3, help="attempts per source on transient errors")
    parser.add_argument("--retry_delay", type=float, default=1.0,
                        help="seconds before the second attempt; doubles after each (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="connect/read timeout in seconds")
    parser.add_argument("--progress_format", choices=["text", "json"], default="text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.jobs < 1 or args.num_attempts < 1 or args.timeout <= 0 or args.retry_delay < 0:
        print("omz_downloader: error: --jobs and --num_attempts must be >= 1, --timeout > 0, --retry_delay >= 0",
              file=sys.stderr)
        return 2
    return guarded("omz_downloader", lambda: _download(args))


def _download(args: argparse.Namespace) -> int:
    try:
        chosen = selected_models(args)
        if chosen is None:
            return 0
        mirrors = args.mirror + os.environ.get("OMZ_MIRROR", "").split()
        options = DownloadOptions(output_dir=args.output_dir, cache_dir=args.cache_dir, mirrors=mirrors,
                                  jobs=args.jobs, num_attempts=args.num_attempts, retry_delay=args.retry_delay,
                                  timeout=args.timeout)
        reporter = make_reporter(args.progress_format)
        results = download_models(chosen, options, reporter)
    except Cancelled:
        raise KeyboardInterrupt() from None
    failed = [reason for reason in results.values() if reason]
    for reason in failed:
        print(f"omz_downloader: error: {reason}", file=sys.stderr)
    return 1 if failed else 0


def entry() -> None:
    """The omz_downloader console script."""
    run_command("omz_downloader", main)


if __name__ == "__main__":
    entry()
