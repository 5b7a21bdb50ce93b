"""omz_info_dumper: print the registry as JSON."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import RegistryError
from .info import describe_model
from .loader import choose_models, load_registry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omz_info_dumper", description="Print registry models as JSON.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--name", help="comma-separated model names or globs")
    group.add_argument("--list", type=Path, help="file with one model name or glob per line")
    group.add_argument("--all", action="store_true", help="every model")
    group.add_argument("--print_all", action="store_true", help="print the names of all models and exit")
    parser.add_argument("--models_dir", type=Path, help="registry root (default: the built-in models/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        models = load_registry(args.models_dir)
        if args.print_all:
            print("\n".join(m.name for m in models))
            return 0
        chosen = choose_models(models, args.name, args.list, args.all)
    except RegistryError as exc:
        print(f"omz_info_dumper: error: {exc}", file=sys.stderr)
        return 2
    json.dump([describe_model(m) for m in chosen], sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
