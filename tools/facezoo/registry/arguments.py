"""The model-selection options every command shares: --name, --list, --all, --print_all, --models_dir."""
from __future__ import annotations

import argparse
from pathlib import Path

from .loader import choose_models, load_registry
from .model import Model


def path_argument(text: str) -> Path:
    """An argparse type: a non-empty path (an empty string would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, found {text!r}")
    return Path(text)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the selection options to a command's parser."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--name", metavar="NAMES",
                       help="comma-separated model names or shell globs (e.g. 'retinaface-*,mobileface-identification-v2')")
    group.add_argument("--list", type=path_argument, metavar="FILE",
                       help="text file with one model name or glob per line; '#' starts a comment")
    group.add_argument("--all", action="store_true", help="every model in the registry")
    group.add_argument("--print_all", action="store_true", help="print all model names, one per line, and exit")
    parser.add_argument("--models_dir", type=path_argument, metavar="DIR",
                        help="registry root holding <group>/<model>/model.yml "
                             "(default: $FACEZOO_MODELS, else the built-in models/)")


def selected_models(args: argparse.Namespace) -> list[Model] | None:
    """The models the options select; None after printing the names for --print_all."""
    models = load_registry(args.models_dir)
    if args.print_all:
        print("\n".join(m.name for m in models))
        return None
    return choose_models(models, args.name, args.list, args.all)
