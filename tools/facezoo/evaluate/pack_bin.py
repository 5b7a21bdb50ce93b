"""omz_data_converter: pack a folder of aligned faces and an LFW-format pairs file into an
insightface verification .bin, as insightface's packer (src/data/lfw2pack.py) does: each pair's
two image files read as they are (not re-encoded), in pair order, with one bool per pair, pickled
as the tuple (images, issame_list). Every image is checked to decode before anything is written,
and the .bin appears whole or not at all."""
from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

from facezoo.common.cli import ArgumentParser, guarded, run_command
from facezoo.common.safeio import atomic_output, check_output_file, read_bytes_limited, read_text_limited

from .datasets.insightface_bin import MAX_BIN_BYTES
from .datasets.lfw import Pairs, make_pairs, parse_pairs
from .errors import EvaluateError
from .images import decode_image_bytes

PROG = "omz_data_converter"
MAX_IMAGE_BYTES = 32 << 20  # one face image file
MAX_PAIRS_BYTES = 64 << 20  # the pairs file
DEFAULT_PROTOCOL = 4  # readable by Python 3.4 and later (insightface's packer used its Python's highest)


@dataclass(frozen=True)
class Packed:
    """What was packed: the images (two per pair), one bool per pair, the pairs left out."""

    images: list[bytes]
    same: list[bool]
    skipped: list[str]


def pack(folder: Path, pairs: Pairs, skip_missing: bool = False, limit: int = MAX_BIN_BYTES) -> Packed:
    """Each pair's two image files, read once per occurrence as insightface's packer reads them.
    A missing image stops the packing (or, with `skip_missing`, leaves its pair out as
    insightface does); an image that does not decode always stops it; the images together must
    stay within `limit` bytes (what the reader accepts)."""
    images: list[bytes] = []
    same: list[bool] = []
    skipped: list[str] = []
    total = 0
    for number, (a, b, s) in enumerate(zip(pairs.first, pairs.second, pairs.same), 1):
        absent = next((p for p in (a, b) if not (folder / p).exists()), None)
        if absent is not None:
            if not skip_missing:
                raise EvaluateError(f"{folder / absent}: image not found (named by pair {number}; "
                                    f"--skip_missing leaves such pairs out)")
            skipped.append(absent)
            continue
        for p in (a, b):
            data = read_bytes_limited(folder / p, MAX_IMAGE_BYTES, "image", EvaluateError)
            decode_image_bytes(data, str(folder / p))
            total += len(data)
            if total > limit:
                raise EvaluateError(f"{folder / p}: the images reach {total:,} bytes, more than the "
                                    f"{limit:,} a .bin may hold")
            images.append(data)
        same.append(bool(s))
    if not same:
        raise EvaluateError(f"{folder}: no pair has both images (nothing to pack)")
    return Packed(images, same, skipped)


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--images", required=True, type=Path,
                   help="folder of aligned faces in LFW's layout: <name>/<name>_<NNNN>.<ext>")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", type=Path,
                        help="LFW-format pairs file: a '<folds> <n>' header, then per fold n 'name i j' "
                             "(matched) and n 'name1 i name2 j' (mismatched) lines")
    source.add_argument("--generate_pairs_folds", type=int, metavar="FOLDS",
                        help="no pairs file: generate pairs from the folder as the lfw_aligned_100pair dataset "
                             "definition does (each person's first two images; person i against person i + N/2), "
                             "in this many folds")
    p.add_argument("-o", "--output", required=True, type=Path, help="the .bin to write (replaced whole)")
    p.add_argument("--ext", default="jpg", choices=["jpg", "png"], help="image file extension (default jpg)")
    p.add_argument("--skip_missing", action="store_true",
                   help="leave out pairs with a missing image, as insightface's packer does (default: stop)")
    p.add_argument("--pickle_protocol", type=int, default=DEFAULT_PROTOCOL, choices=[4, 5],
                   help=f"pickle protocol (default {DEFAULT_PROTOCOL}: loads in any Python 3 insightface runs on)")
    return p


def _run(args: argparse.Namespace) -> int:
    folder = Path(args.images)
    if not folder.is_dir():
        raise EvaluateError(f"{folder}: --images must be a folder of faces "
                            f"({'not found' if not folder.exists() else 'not a folder'})")
    inputs = [args.pairs] if args.pairs else []
    check_output_file(args.output, "--output", inputs, EvaluateError)
    if args.pairs:
        pairs = parse_pairs(read_text_limited(args.pairs, MAX_PAIRS_BYTES, "pairs file", EvaluateError),
                            str(args.pairs), args.ext)
    else:
        if args.ext != "jpg":
            raise EvaluateError("--generate_pairs_folds finds .jpg faces only; give a --pairs file for --ext png")
        if not 2 <= args.generate_pairs_folds <= 1000:
            raise EvaluateError(f"--generate_pairs_folds {args.generate_pairs_folds}: expected 2 to 1000")
        pairs = parse_pairs(make_pairs(folder, args.generate_pairs_folds), f"pairs generated from {folder}")
    packed = pack(folder, pairs, args.skip_missing)
    with atomic_output(args.output, "wb") as f:
        pickle.dump((packed.images, packed.same), f, protocol=args.pickle_protocol)
    size = Path(args.output).stat().st_size
    print(f"{args.output}: {len(packed.same)} pairs ({sum(packed.same)} matched), {len(packed.images)} images, "
          f"{size:,} bytes")
    if packed.skipped:
        print(f"warning: {len(packed.skipped)} pairs left out, an image missing, e.g. {folder / packed.skipped[0]}",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return guarded(PROG, lambda: _run(args))


def entry() -> None:
    """The omz_data_converter console script."""
    run_command(PROG, main)


if __name__ == "__main__":
    entry()
