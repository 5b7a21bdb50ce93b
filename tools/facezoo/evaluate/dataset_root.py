"""Which dataset definition applies to the root given with -s: the config's own entry, another
entry of the same kind (the full WIDER FACE validation set, a generic WIDER-format root), with the
number of images found there."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facezoo.common.safeio import read_text_limited

from .config import KIND_WORDS, DatasetDefinition
from .datasets.insightface_bin import read_bin
from .datasets.lfw import make_pairs, parse_pairs
from .datasets.wider import parse_bbx_gt
from .errors import EvaluateError

MAX_LIST_BYTES = 256 << 20  # an annotation or pairs file; the official WIDER train annotation is 4 MiB
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class FoundDataset:
    """The definition that applies to a root, and what the root holds."""

    definition: DatasetDefinition
    root: Path
    images: int  # images the annotation (WIDER) or the pairs (LFW) name
    pairs: int | None = None  # LFW only


def _layout_fits(definition: DatasetDefinition, root: Path) -> bool:
    """The entry's list file (annotation or pairs) is under root; or, for pairs generated from the
    images, its image folder is."""
    listed = definition.annotation or definition.pairs or definition.bin
    if listed:
        return (root / listed).exists() or (root / listed).is_symlink()
    return (root / definition.images).is_dir()


def _count(definition: DatasetDefinition, root: Path) -> tuple[int, int | None]:
    """(images, pairs) of a root whose layout fits `definition`."""
    if definition.type == "wider":
        path = root / definition.annotation
        return len(parse_bbx_gt(read_text_limited(path, MAX_LIST_BYTES, "annotation", EvaluateError), str(path))), None
    if definition.bin:
        pairs = len(read_bin(root / definition.bin))
        return 2 * pairs, pairs
    if definition.pairs:
        path = root / definition.pairs
        pairs = parse_pairs(read_text_limited(path, MAX_LIST_BYTES, "pairs file", EvaluateError), str(path))
    else:
        folder = root / definition.images
        pairs = parse_pairs(make_pairs(folder, definition.generate_pairs_folds), f"pairs generated from {folder}")
    return len(set(pairs.first) | set(pairs.second)), len(pairs)


def find_dataset(definitions: dict[str, DatasetDefinition], wanted: str, root: Path) -> FoundDataset:
    """The first entry of `wanted`'s kind, `wanted` itself first, whose files are under `root` and
    whose pinned image count (if any) is what the root holds."""
    root = Path(root)
    if not root.is_dir():
        raise EvaluateError(f"{root}: dataset root (-s) " + ("is not a folder" if root.exists() else "not found"))
    kind = definitions[wanted].type
    candidates = [wanted] + [n for n, d in definitions.items() if d.type == kind and n != wanted]
    pinned_elsewhere = []
    for name in candidates:
        definition = definitions[name]
        if not _layout_fits(definition, root):
            continue
        images, pairs = _count(definition, root)
        if definition.image_count is not None and images != definition.image_count:
            pinned_elsewhere.append(f"{name} has {definition.image_count:,}")
            continue
        return FoundDataset(definition, root, images, pairs)
    if pinned_elsewhere:
        raise EvaluateError(f"{root}: {images:,} images, and no dataset definition of this layout fits "
                            f"({'; '.join(pinned_elsewhere)}); add an entry without image_count")
    layouts = sorted({definitions[n].bin or f"{definitions[n].images}/ + "
                      f"{definitions[n].annotation or definitions[n].pairs or '(pairs generated)'}" for n in candidates})
    message = (f"{root}: not {KIND_WORDS[kind]} root as {wanted} needs: expected "
               f"{' or '.join(layouts)} under it")
    other = next((d for d in definitions.values() if d.type != kind and _layout_fits(d, root)), None)
    if other is not None:
        message += f"; it looks like {other.name}, {KIND_WORDS[other.type]}, which this model does not evaluate"
    raise EvaluateError(message)
