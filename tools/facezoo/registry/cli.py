"""omz_info_dumper: print the registry as JSON."""
from __future__ import annotations

import argparse
import json
import sys

from facezoo.common.cli import ArgumentParser, guarded, run_command

from .info import describe_model
from .arguments import add_model_arguments, selected_models


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="omz_info_dumper", description="Print registry models as JSON.")
    add_model_arguments(parser)
    return parser


def _dump(args: argparse.Namespace) -> int:
    chosen = selected_models(args)
    if chosen is None:
        return 0
    json.dump([describe_model(m) for m in chosen], sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded("omz_info_dumper", lambda: _dump(args))


def entry() -> None:
    """The omz_info_dumper console script."""
    run_command("omz_info_dumper", main)


if __name__ == "__main__":
    entry()
