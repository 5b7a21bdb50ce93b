"""omz_info_dumper: print the registry as JSON."""
from __future__ import annotations

import argparse
import json
import sys

from .errors import RegistryError
from .info import describe_model
from .arguments import add_model_arguments, selected_models


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omz_info_dumper", description="Print registry models as JSON.")
    add_model_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        chosen = selected_models(args)
        if chosen is None:
            return 0
    except RegistryError as exc:
        print(f"omz_info_dumper: error: {exc}", file=sys.stderr)
        return 2
    json.dump([describe_model(m) for m in chosen], sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
