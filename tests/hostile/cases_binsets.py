"""Hostile inputs of insightface .bin verification sets: omz_data_converter's flags, pairs files,
image files and outputs (signals while it packs), and accuracy_check reading a hostile .bin
(damaged pickles, wrong structures, pickled objects that would run code, declared lengths and
memo indices that would make the unpickler allocate, undecodable images), plus the protocol
fields of the configs and definitions. Every case is refused with one line naming the file and
what was expected; no .bin is left at the output path."""
from __future__ import annotations

import os
import pickle
import signal

import numpy as np

from cases_accuracy_inputs import LFW_CONFIG, PAIRS, device, directory, fifo, run_lfw
from conftest import shared_path
from harness import Case
from models import converted_root

PACK = "omz_data_converter"
FACES = ("data", "lfw", "lfw_aligned_100pair")
OUT = "out/set.bin"


def faces_dir(ctx) -> None:
    """faces/: the real aligned LFW faces, linked."""
    ctx.path("faces").symlink_to(shared_path(*FACES))


def copied_faces(ctx) -> None:
    """faces/: a copy of the two people PAIRS names, so a case may spoil one image."""
    for person in ("Aaron_Sorkin", "Abdoulaye_Wade"):
        for k in (1, 2):
            ctx.write(f"faces/{person}/{person}_000{k}.jpg", shared_path(*FACES, person, f"{person}_000{k}.jpg").read_bytes())


def pack_args(*more: str, pairs: str | None = "pairs.txt"):
    return lambda c: ["--images", c.path("faces"), *(["--pairs", c.path(pairs)] if pairs else []), "-o",
                      c.path(OUT), *more]


def pack_setup(pairs: str | bytes | None = PAIRS, faces=faces_dir, extra=None):
    def setup(ctx):
        ctx.out.mkdir(exist_ok=True)
        faces(ctx)
        if pairs is not None:
            ctx.write("pairs.txt", pairs)
        if extra:
            extra(ctx)
    return setup


def spoil(rel: str, make):
    """Replace faces/<rel> (in a copied folder) by what `make(ctx, path)` makes."""
    def extra(ctx):
        path = ctx.path("faces", rel)
        path.unlink()
        make(ctx, path)
    return extra


def _write(data: bytes | None = None, change=None):
    """A file holding `data`, or the real face A1 changed by `change(bytes) -> bytes`."""
    return lambda ctx, path: path.write_bytes(data if data is not None else change(shared_path(*FACES, A1).read_bytes()))


A1 = "Aaron_Sorkin/Aaron_Sorkin_0001.jpg"
CASES = []

# --- omz_data_converter: flags ---
FLAGS = [
    ("no-images", lambda c: ["--pairs", c.path("pairs.txt"), "-o", c.path(OUT)], "the following arguments are required: --images"),
    ("no-pairs-source", pack_args(pairs=None), "one of the arguments --pairs --generate_pairs_folds is required"),
    ("pairs-and-generated", pack_args("--generate_pairs_folds", "10"), "not allowed with argument"),
    ("folds-not-a-number", pack_args("--generate_pairs_folds", "x", pairs=None), "invalid int value: 'x'"),
    ("folds-one", pack_args("--generate_pairs_folds", "1", pairs=None), r"--generate_pairs_folds 1: expected 2 to 1000"),
    ("folds-not-dividing", pack_args("--generate_pairs_folds", "7", pairs=None), r"100 people with two images, not a multiple of 7"),
    ("generated-png", pack_args("--generate_pairs_folds", "10", "--ext", "png", pairs=None), r"finds \.jpg faces only"),
    ("protocol-two", pack_args("--pickle_protocol", "2"), r"--pickle_protocol: invalid choice: 2"),
    ("ext-gif", pack_args("--ext", "gif"), r"--ext: invalid choice: 'gif'"),
    ("images-missing", lambda c: ["--images", c.path("nowhere"), "--pairs", c.path("pairs.txt"), "-o", c.path(OUT)],
     r"nowhere: --images must be a folder of faces \(not found\)"),
    ("images-a-file", lambda c: ["--images", c.path("pairs.txt"), "--pairs", c.path("pairs.txt"), "-o", c.path(OUT)],
     r"pairs\.txt: --images must be a folder of faces \(not a folder\)"),
]
CASES += [Case(f"pack-{name}", "accuracy", PACK, argv, expect, setup=pack_setup(), absent=(OUT,))
          for name, argv, expect in FLAGS]

# --- omz_data_converter: the pairs file ---
PAIR_FILES = [
    ("empty", "", r"pairs\.txt:1: expected a header"),
    ("not-utf8", b"2 1\n\xff\xfe\n", r"pairs\.txt:2: pairs file is not UTF-8"),
    ("header-lies", PAIRS.replace("2 1", "3 1"), r"header says 3 folds x 2 pairs = 6 lines, the file has 4"),
    ("name-escapes", PAIRS.replace("Abdoulaye_Wade 1 2", "../../x 1 2"), r"pairs\.txt:4: person name"),
    ("image-absent", PAIRS.replace("Abdoulaye_Wade 1 2", "Abdoulaye_Wade 1 7"),
     r"Abdoulaye_Wade_0007\.jpg: image not found \(named by pair 3; --skip_missing leaves such pairs out\)"),
]
CASES += [Case(f"pack-pairs-{name}", "accuracy", PACK, pack_args(), expect, setup=pack_setup(text), absent=(OUT,))
          for name, text, expect in PAIR_FILES]
CASES += [
    Case("pack-every-pair-missing", "accuracy", PACK, pack_args("--skip_missing"),
         r"faces: no pair has both images \(nothing to pack\)",
         setup=pack_setup(PAIRS.replace("Aaron_Sorkin", "Nobody_Here").replace("Abdoulaye_Wade", "Nobody_Else")),
         absent=(OUT,)),
    *[Case(f"pack-pairs-{name}", "accuracy", PACK, pack_args(), expect, absent=(OUT,),
           setup=pack_setup(None, extra=lambda c, m=make: m(c, c.path("pairs.txt"))))
      for name, make, expect in (("fifo", fifo, "pairs file must be a regular file, found a FIFO"),
                                 ("device", device, "pairs file must be a regular file, found a device"),
                                 ("directory", directory, "pairs file must be a regular file, found a directory"))],
]

# --- omz_data_converter: the image files ---
IMAGES = [
    ("fifo", fifo, "image must be a regular file, found a FIFO"),
    ("device", device, "image must be a regular file, found a device"),
    ("directory", directory, "image must be a regular file, found a directory"),
    ("empty", _write(b""), r"empty file \(0 bytes\)"),
    ("text", _write(b"not an image at all\n"), r"not a JPEG, PNG or BMP file"),
    ("truncated", _write(change=lambda b: b[:len(b) // 2]), r"not a decodable image \(corrupt or truncated\)"),
    ("header-only", _write(change=lambda b: b[:200]), r"not a decodable image|cut short"),
]
CASES += [Case(f"pack-image-{name}", "accuracy", PACK, pack_args(), rf"faces/{A1}: ({expect})",
               setup=pack_setup(faces=copied_faces, extra=spoil(A1, make)), absent=(OUT,))
          for name, make, expect in IMAGES]

# --- omz_data_converter: the output ---
OUTPUTS = [
    ("a-directory", "out/set.bin", directory, r"set\.bin: --output must be a regular file or a new path, found a directory"),
    ("a-device", "out/set.bin", device, r"set\.bin: --output must be a regular file or a new path, found a device"),
    ("a-fifo", "out/set.bin", fifo, r"set\.bin: --output must be a regular file or a new path, found a FIFO"),
    ("folder-missing", "out/no/set.bin", None, r"--output's folder .*out/no does not exist"),
]
CASES += [Case(f"pack-output-{name}", "accuracy", PACK,
               lambda c, t=target: ["--images", c.path("faces"), "--pairs", c.path("pairs.txt"), "-o", c.path(t)],
               expect, setup=pack_setup(extra=(lambda c, m=make, t=target: m(c, c.path(t))) if make else None))
          for name, target, make, expect in OUTPUTS]
CASES += [Case("pack-output-is-the-pairs-file", "accuracy", PACK,
               lambda c: ["--images", c.path("faces"), "--pairs", c.path("out/pairs.txt"), "-o", c.path("out/pairs.txt")],
               r"pairs\.txt: --output is also an input of this run",
               setup=pack_setup(extra=lambda c: c.write("out/pairs.txt", PAIRS)))]

# --- omz_data_converter: interrupted while packing (50,000 pairs of real faces take many seconds) ---
LONG_PAIRS = "2 12500\n" + ("Aaron_Sorkin 1 2\n" * 12500 + "Aaron_Sorkin 1 Abdoulaye_Wade 1\n" * 12500) * 2
CASES += [Case(f"pack-{signal.Signals(s).name.lower()}-while-packing", "signals", PACK, pack_args(),
               rf"interrupted by {signal.Signals(s).name}", setup=pack_setup(LONG_PAIRS), exit=128 + s,
               absent=(OUT,), signal=(s, 2.0), timeout=60.0) for s in (signal.SIGINT, signal.SIGTERM)]


# --- accuracy_check reading a hostile .bin ---

BIN_DEFS = "datasets:\n  - {name: faces, type: lfw, bin: lfw.bin}\n"


class RunsCode:
    """Unpickled by a plain pickle.load, this would create the file `pwned` in the working folder."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def faces_bin(pairs: int = 10) -> tuple[list[bytes], list[bool]]:
    people = sorted(p for p in shared_path(*FACES).iterdir() if p.is_dir())[:pairs]
    images, same = [], []
    for i, person in enumerate(people):
        first = sorted(person.glob("*.jpg"))
        other = sorted(people[(i + 1) % len(people)].glob("*.jpg"))
        match = i % 2 == 0
        images += [first[0].read_bytes(), (first[1] if match else other[1]).read_bytes()]
        same.append(match)
    return images, same


def bin_setup(make=None, config: str = LFW_CONFIG, defs: str = BIN_DEFS):
    """data/lfw.bin holding `make(images, same)` (bytes) built from ten real pairs, or made by
    `make(ctx, path)` when it is a file maker; the recogniser's config; definitions naming it."""
    def setup(ctx):
        ctx.path("data").mkdir()
        path = ctx.path("data", "lfw.bin")
        if make in (fifo, device, directory):
            make(ctx, path)
        else:
            path.write_bytes((make or (lambda i, s: pickle.dumps((i, s), protocol=4)))(*faces_bin()))
        ctx.write("config.yml", config)
        ctx.write("defs.yml", defs)
    return setup


def _bytes(data: bytes):
    return lambda images, same: data


B = r"data/lfw\.bin"
READER = [
    ("truncated", lambda i, s: pickle.dumps((i, s))[:30000],
     rf"{B}: expected insightface's pickled \(images, issame_list\); the pickle is damaged or cut short"),
    ("empty", _bytes(b""), rf"{B}: .*the pickle is damaged or cut short"),
    ("random-bytes", _bytes(bytes(range(256)) * 4), rf"{B}: .*(damaged or cut short|not plain data)"),
    ("three-items", lambda i, s: pickle.dumps((i, s, s)), rf"{B}: .*found a 3-item tuple"),
    ("a-dict", lambda i, s: pickle.dumps({"bins": i}), rf"{B}: .*found a dict"),
    ("text-image", lambda i, s: pickle.dumps((["x"] + i[1:], s)),
     rf"{B}: image 0: expected the encoded image's bytes, found str"),
    ("issame-string", lambda i, s: pickle.dumps((i, ["yes"] * len(s))),
     rf"{B}: issame_list\[0\]: expected True or False, found str"),
    ("odd-image-count", lambda i, s: pickle.dumps((i[:-1], s)), rf"{B}: holds 19 images, an odd count: expected two per pair"),
    ("pairs-mismatch", lambda i, s: pickle.dumps((i, s[:-1])), rf"{B}: holds 20 images for 9 pairs: expected 18"),
    ("no-pair", _bytes(pickle.dumps(([], []))), rf"{B}: .*it holds no pair"),
    ("runs-code", _bytes(pickle.dumps(RunsCode())), rf"{B}: .*it references posix\.system, a pickled object, not plain data"),
    ("numpy-issame", lambda i, s: pickle.dumps((i, np.array(s))), rf"{B}: .*it references numpy\.\S+, a pickled object"),
    ("py3-protocol-2", lambda i, s: pickle.dumps((i, s), protocol=2), rf"{B}: .*_codecs\.encode.*re-pack with protocol 3"),
    ("huge-length-field", _bytes(b"\x80\x04B\xff\xff\xff\x7fabc."), rf"{B}: .*damaged or cut short \(expected 2147483647 bytes"),
    ("huge-memo-index", _bytes(b"\x80\x02]r\xff\xff\xff\xff."), rf"{B}: .*memo index 4294967295 out of range"),
    ("undecodable-image", lambda i, s: pickle.dumps((i[:3] + [i[3][:-700]] + i[4:], s)),
     rf"{B}: image 3 \(pair 2\): not a decodable image"),
    ("not-an-image", lambda i, s: pickle.dumps((i[:5] + [b"GIF89a" + bytes(40)] + i[6:], s)),
     rf"{B}: image 5 \(pair 3\): not a JPEG, PNG or BMP file"),
    ("too-few-pairs", lambda i, s: pickle.dumps((i[:8], s[:4])), r"4 pairs cannot be dealt to 10 folds"),
]
CASES += [Case(f"bin-{name}", "accuracy", "accuracy_check", run_lfw("--json_result", "out/r.json"), expect,
               setup=bin_setup(data), absent=("out/r.json", "pwned", "data/pwned"))
          for name, data, expect in READER]
CASES += [
    Case("bin-pixels-over-the-limit", "accuracy", "accuracy_check", run_lfw("--max_image_pixels", "5000"),
         rf"{B}: image 0 \(pair 1\): 100x100 pixels, more than the 5,000-pixel limit", setup=bin_setup()),
    *[Case(f"bin-file-{name}", "accuracy", "accuracy_check", run_lfw(), expect, setup=bin_setup(make))
      for name, make, expect in (("fifo", fifo, rf"{B}: insightface \.bin must be a regular file, found a FIFO"),
                                 ("device", device, rf"{B}: insightface \.bin must be a regular file, found a device"),
                                 ("directory", directory, rf"{B}: insightface \.bin must be a regular file, found a directory"))],
]

# --- protocols in the config, .bin entries in the definitions ---
PROTOCOL_CONFIGS = [
    ("protocol-unknown", "[{type: lfw_accuracy, protocol: arcface}]", r"protocol: expected facezoo, insightface or omz_subsets"),
    ("omz-tar", "[{type: tar_at_far, protocol: omz_subsets}]", r"protocol: omz_subsets has no TAR@FAR"),
    ("protocol-not-a-string", "[{type: lfw_accuracy, protocol: [insightface]}]", r"protocol: expected facezoo, insightface or omz_subsets"),
]
CASES += [Case(f"bin-config-{name}", "accuracy", "accuracy_check", run_lfw(), rf"config\.yml:\d+: .*{expect}",
               setup=bin_setup(config=LFW_CONFIG.replace("[{type: lfw_accuracy}]", metrics)))
          for name, metrics, expect in PROTOCOL_CONFIGS]
DEFINITIONS = [
    ("bin-and-pairs", "{name: faces, type: lfw, bin: lfw.bin, pairs: pairs.txt}", r"give pairs, generate_pairs_folds or bin \(exactly one\)"),
    ("no-images-no-bin", "{name: faces, type: lfw, pairs: pairs.txt}", r"datasets\[0\]\.images is required"),
    ("bin-not-a-string", "{name: faces, type: lfw, bin: [lfw.bin]}", r"bin: expected a string|bin"),
]
CASES += [Case(f"bin-definitions-{name}", "accuracy", "accuracy_check", run_lfw(), rf"defs\.yml:\d+: .*{expect}",
               setup=bin_setup(defs=f"datasets:\n  - {entry}\n"))
          for name, entry, expect in DEFINITIONS]

# --- a .bin, or a detector that aligns, cannot be shipped shard by shard to a cluster's workers ---
CASES += [
    Case("bin-ship-images", "accuracy", "accuracy_check", run_lfw("--workers", "1", "--ship_images"),
         r"--ship_images: faces is one \.bin file, which every shard would need whole", setup=bin_setup()),
    Case("aligner-ship-images", "accuracy", "accuracy_check",
         lambda c: run_lfw("--workers", "1", "--ship_images", "--aligner_model",
                           converted_root("retinaface-mnet025-v1") / "public" / "retinaface-mnet025-v1" / "FP32"
                           / "retinaface-mnet025-v1.xml")(c),
         r"--ship_images ships the model and the images, not --aligner_model's detector", setup=bin_setup()),
]
