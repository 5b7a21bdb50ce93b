"""Hostile accuracy_check inputs: images, WIDER annotations, the official .mat ground truth, LFW
pairs and landmarks, stored predictions, and the flags that bound them. Each case builds a small
dataset root (two real WIDER images, or real LFW faces) with its own definitions file, runs the
real console script against a real converted model, and must be refused with one line naming the
file (and line, field or variable) and what was expected."""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import zipfile
import zlib

import numpy as np

from conftest import shared_path
from harness import Case
from models import converted_root

DETECTOR, RECOGNISER = "retinaface-mnet025-v1", "mobileface-identification-v1"
GOOD, OTHER = "0--Parade/0_Parade_marchingband_1_227.jpg", "0--Parade/0_Parade_marchingband_1_476.jpg"
FACE = "10 20 30 40 0 0 0 0 0 0"
ANNOTATION = f"{GOOD}\n1\n{FACE}\n{OTHER}\n1\n{FACE}\n"
WIDER_CONFIG = """models:
  - name: retinaface-mnet025-v1
    launchers:
      - {framework: openvino, adapter: {type: retinaface}}
    datasets:
      - name: wider_val_dev
        preprocessing: [{type: resize, size: 640}]
        metrics: [{type: omz_ap64}%s]
"""
LFW_CONFIG = """models:
  - name: mobileface-identification-v1
    launchers:
      - {framework: openvino, adapter: {type: embedding, outputs: [l2normalization1]}}
    datasets:
      - name: faces
        metrics: [{type: lfw_accuracy}]
"""
PAIRS = ("2 1\nAaron_Sorkin 1 2\nAaron_Sorkin 1 Abdoulaye_Wade 1\n"
         "Abdoulaye_Wade 1 2\nAaron_Sorkin 2 Abdoulaye_Wade 2\n")
LFW_IMAGES = [f"{n}/{n}_000{k}.jpg" for n in ("Aaron_Sorkin", "Abdoulaye_Wade") for k in (1, 2)]
MARKS = "38.3 51.7 73.5 51.5 56.0 71.7 41.5 92.4 70.7 92.2"
LANDMARKS = "".join(f"{p} {MARKS}\n" for p in LFW_IMAGES)
# what evaluate() compares stored predictions' settings with, for the config above without -m
META = {"model": DETECTOR, "dataset": "wider_val_dev", "adapter": {}, "resize": 640, "subsample_size": None}


def _real(path: str = GOOD) -> bytes:
    return shared_path("data", "wider_val_dev", "WIDER_val", "images", *path.split("/")).read_bytes()


# --- how an image file is made: each a callable of (ctx, path) ---

def content(data: bytes | None = None, change=None):
    """A file holding `data`, or the real image changed by `change(bytes) -> bytes`."""
    def make(ctx, path):
        path.write_bytes(data if data is not None else (change or (lambda b: b))(_real()))
    return make


def fifo(ctx, path):
    os.mkfifo(path)


def device(ctx, path):
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))


def directory(ctx, path):
    path.mkdir()


def dangling(ctx, path):
    path.symlink_to(ctx.path("nowhere.jpg"))


def _jpeg_size(width: int, height: int):
    def change(data: bytes) -> bytes:
        at = next(i for i in range(2, len(data)) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
        return data[:at + 5] + struct.pack(">HH", height, width) + data[at + 9:]
    return change


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: (struct.pack(">I", len(body)) + kind + body  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + body)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _bmp(width: int, height: int) -> bytes:
    return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24,
                                                                   0, 0, 0, 0, 0, 0)


# --- dataset roots ---

def wider(annotation: str | bytes = ANNOTATION, images: dict | None = None, truth: dict | None = None):
    """data/: images/ with the two real images (or makers for some), gt.txt, and with `truth`
    a gt/ folder of .mat files (a small consistent ground truth, some files replaced)."""
    def setup(ctx):
        folder = ctx.path("data", "images", "0--Parade")
        folder.mkdir(parents=True)
        for rel in (GOOD, OTHER):
            (images or {}).get(rel, content(_real(rel)))(ctx, ctx.path("data", "images", rel))
        for rel, make in (images or {}).items():
            if rel not in (GOOD, OTHER):
                make(ctx, ctx.path("data", "images", rel))
        ctx.write("data/gt.txt", annotation)
        ctx.write("config.yml", WIDER_CONFIG % (", {type: wider_official, setting: hard}" if truth is not None else ""))
        ctx.write("defs.yml", "datasets:\n  - {name: wider_val_dev, type: wider, images: images, annotation: gt.txt"
                  + (", ground_truth: gt}\n" if truth is not None else "}\n"))
        if truth is not None:
            ctx.path("data", "gt").mkdir()
            files = {**_truth(), **truth}
            for name, data in files.items():
                target = ctx.path("data", "gt", name)
                data(ctx, target) if callable(data) else target.write_bytes(data)
    return setup


def _savemat(variables: dict) -> bytes:
    from scipy.io import savemat
    buffer = io.BytesIO()
    savemat(buffer, variables, do_compression=True)
    return buffer.getvalue()


def _cells(items: list) -> np.ndarray:
    cells = np.empty((len(items), 1), dtype=object)
    for k, item in enumerate(items):
        cells[k, 0] = item
    return cells


def _truth(events=None, stems=None, boxes=None, keep=None) -> dict[str, bytes]:
    """The four official .mat files for the two images of the annotation (one face each)."""
    stems = stems if stems is not None else _cells([np.array([p.split("/")[1][:-4]]) for p in (GOOD, OTHER)])
    boxes = boxes if boxes is not None else _cells([np.array([[10, 20, 30, 40]], dtype=np.int32)] * 2)
    main = _savemat({"event_list": events if events is not None else _cells([np.array(["0--Parade"])]),
                     "file_list": _cells([stems]), "face_bbx_list": _cells([boxes])})
    lists = _savemat({"gt_list": _cells([keep if keep is not None else _cells([np.array([[1]], np.uint8)] * 2)])})
    return {"wider_face_val.mat": main, **{f"wider_{s}_val.mat": lists for s in ("easy", "medium", "hard")}}


def _mat_header() -> bytes:
    return b"MATLAB 5.0 MAT-file, hostile".ljust(116) + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"


def _mat_cell_bomb() -> bytes:
    """A cell array declaring a billion elements and holding none (SciPy would allocate them)."""
    body = (struct.pack("<IIII", 6, 8, 1, 0) + struct.pack("<II", 5, 8) + struct.pack("<ii", 1_000_000_000, 1)
            + struct.pack("<II", 1, 7) + b"gt_list\0")
    return _mat_header() + struct.pack("<II", 14, len(body)) + body


def _mat_unknown_type() -> bytes:
    """gt_list: a cell holding a double array whose data element has type code 128 (SciPy's reader
    crashes the process on it)."""
    def matrix(cls: int, name: bytes, content: bytes) -> bytes:
        body = (struct.pack("<IIII", 6, 8, cls, 0) + struct.pack("<IIii", 5, 8, 1, 1)
                + struct.pack("<II", 1, len(name)) + name.ljust(-(-len(name) // 8) * 8, b"\0") + content)
        return struct.pack("<II", 14, len(body)) + body
    leaf = matrix(6, b"", struct.pack("<II", 128, 8) + bytes(8))
    return _mat_header() + matrix(1, b"gt_list", leaf)


def _mat_zlib_bomb(ctx, path) -> None:
    """A compressed element that unpacks to 300 MiB (streamed, so the test does not hold it)."""
    squeeze = zlib.compressobj(1)
    inner = struct.pack("<II", 14, 300 << 20)
    parts = [squeeze.compress(inner)] + [squeeze.compress(bytes(16 << 20)) for _ in range(19)] + [squeeze.flush()]
    packed = b"".join(parts)
    path.write_bytes(_mat_header() + struct.pack("<II", 15, len(packed)) + packed)


def lfw(pairs: str | bytes = PAIRS, landmarks: str | bytes | None = None, extra=None):
    """data/: faces/ (the real aligned LFW faces, linked) and pairs.txt; with `landmarks`, the
    definition aligns by that landmarks file."""
    def setup(ctx):
        ctx.path("data").mkdir()
        ctx.path("data", "faces").symlink_to(shared_path("data", "lfw", "lfw_aligned_100pair"))
        ctx.write("data/pairs.txt", pairs)
        ctx.write("config.yml", LFW_CONFIG)
        aligned = ", alignment: landmarks, landmarks: landmarks.txt" if landmarks is not None else ""
        ctx.write("defs.yml", f"datasets:\n  - {{name: faces, type: lfw, images: faces, pairs: pairs.txt{aligned}}}\n")
        if landmarks is not None:
            ctx.write("data/landmarks.txt", landmarks)
        if extra:
            extra(ctx)
    return setup


# --- stored predictions ---

def _arrays(**changes) -> dict[str, np.ndarray]:
    """Valid stored detections for the two images, then `changes` (None removes an array)."""
    arrays = {"kind": np.array("detections"), "meta": np.array(json.dumps(META, sort_keys=True)),
              "names": np.array([GOOD, OTHER]), "counts": np.array([1, 1]), "boxes": np.array([[10., 20, 40, 60]] * 2),
              "scores": np.array([0.9, 0.8]), "landmarks": np.zeros((2, 5, 2))}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def stored(*files: tuple[str, object]):
    """WIDER root plus stored prediction files: (name, arrays dict | bytes | maker(ctx, path))."""
    def setup(ctx):
        wider()(ctx)
        for name, data in files:
            path = ctx.path(name)
            if isinstance(data, dict):
                with open(path, "wb") as f:
                    np.savez(f, **data)
            elif isinstance(data, bytes):
                path.write_bytes(data)
            else:
                data(ctx, path)
    return setup


def _declared_too_big(ctx, path) -> None:
    """A valid file whose zip directory says each member unpacks to 1 GiB."""
    buffer = io.BytesIO()
    np.savez(buffer, **_arrays())
    data = bytearray(buffer.getvalue())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        data[at + 24:at + 28] = struct.pack("<I", 1 << 30)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def _huge_shape(ctx, path) -> None:
    """boxes.npy declares 10^12 x 4 float64 values and holds a few."""
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 4)})
    member.write(bytes(64))
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in _arrays(boxes=None).items():
            one = io.BytesIO()
            np.save(one, array)
            archive.writestr(f"{name}.npy", one.getvalue())
        archive.writestr("boxes.npy", member.getvalue())


def _many_members(ctx, path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for k in range(5000):
            archive.writestr(f"m{k}.npy", b"")


def _objects(ctx, path) -> None:
    with open(path, "wb") as f:
        np.savez(f, **_arrays(names=np.array([GOOD, OTHER], dtype=object)))


# --- command lines ---

def run_wider(*more: str):
    return lambda c: ["-c", c.path("config.yml"), "-m", converted_root(DETECTOR), "-s", c.path("data"),
                      "-d", c.path("defs.yml"), "--no_progress", *more]


def run_lfw(*more: str):
    return lambda c: ["-c", c.path("config.yml"), "-m", converted_root(RECOGNISER), "-s", c.path("data"),
                      "-d", c.path("defs.yml"), "--no_progress", *more]


def run_stored(*names: str, more: tuple = ()):
    return lambda c: ["-c", c.path("config.yml"), "-s", c.path("data"), "-d", c.path("defs.yml"), "--no_progress",
                      "--stored_predictions", *[c.path(n) for n in names], *more]


BAD = "0--Parade/bad.jpg"
TWO_WITH_BAD = f"{GOOD}\n1\n{FACE}\n{BAD}\n1\n{FACE}\n"
# (id, what the bad image is, expected message after the image's name)
IMAGES = [
    ("zero-bytes", content(b""), r"empty file \(0 bytes\)"),
    ("truncated-jpeg", content(change=lambda b: b[:len(b) // 2]), r"not a decodable image"),
    ("text-named-jpg", content(b"just some text\n"), r"not a JPEG, PNG or BMP file"),
    ("gif", content(b"GIF89a" + bytes(40)), r"not a JPEG, PNG or BMP file"),
    ("fifo", fifo, r"not a regular file"),
    ("device", device, r"not a regular file"),
    ("directory", directory, r"not a regular file"),
    ("jpeg-65000-square", content(change=_jpeg_size(65000, 65000)), r"65000x65000 = 4,225,000,000 pixels.*--max_image_pixels"),
    ("jpeg-zero-height", content(change=_jpeg_size(640, 0)), r"header gives a size of 640x0"),
    ("jpeg-without-frame", content(b"\xff\xd8\xff\xd9"), r"JPEG has no frame header"),
    ("jpeg-bad-segment", content(b"\xff\xd8\xff\xe0\x00\x01rest"), r"JPEG segment of length 1"),
    ("png-100000-square", content(_png(100000, 100000)), r"100000x100000 = 10,000,000,000 pixels"),
    ("png-without-ihdr", content(b"\x89PNG\r\n\x1a\n" + bytes(30)), r"PNG without an IHDR header"),
    ("bmp-top-down-huge", content(_bmp(20000, -20000)), r"20000x20000 = 400,000,000 pixels"),
    ("bmp-cut-short", content(b"BM\0\0"), r"BMP header is cut short"),
]
CASES = [Case(f"image-{name}", "accuracy", "accuracy_check", run_wider(), rf"images/{BAD}: {expect}",
              setup=wider(TWO_WITH_BAD, {BAD: make})) for name, make, expect in IMAGES]
CASES += [
    Case("image-dangling-symlink", "accuracy", "accuracy_check", run_wider(), rf"images/{BAD}: image not found",
         setup=wider(TWO_WITH_BAD, {BAD: dangling})),
    Case("image-over-a-lowered-pixel-limit", "accuracy", "accuracy_check", run_wider("--max_image_pixels", "1000"),
         r"marchingband_1_227\.jpg: \d+x\d+ = [\d,]+ pixels, more than the 1,000-pixel limit", setup=wider()),
    Case("image-every-one-broken-with-skip-broken", "accuracy", "accuracy_check", run_wider("--skip_broken"),
         r"no image could be read: all 2 are broken, e\.g\. .*empty file",
         setup=wider(images={GOOD: content(b""), OTHER: fifo})),
    Case("image-pixel-limit-zero", "accuracy", "accuracy_check", run_wider("--max_image_pixels", "0"),
         r"--max_image_pixels: expected a whole number of pixels", setup=wider()),
    Case("image-pixel-limit-exponent", "accuracy", "accuracy_check", run_wider("--max_image_pixels", "1e9"),
         r"--max_image_pixels: expected a whole number of pixels", setup=wider()),
]

G = "gt.txt"
# (id, annotation text or bytes, expected message)
ANNOTATIONS = [
    ("empty", "", rf"{G}: no image is annotated"),
    ("only-blank-lines", "\n  \n\t\n", rf"{G}: no image is annotated"),
    ("duplicate-image", ANNOTATION + f"{GOOD}\n1\n{FACE}\n", rf"{G}:7: {GOOD} is annotated twice \(first at line 1\)"),
    ("inf-coordinate", ANNOTATION.replace(FACE, "inf 20 30 40 0 0 0 0 0 0", 1), rf"{G}:3: x: expected an integer"),
    ("nan-width", ANNOTATION.replace(FACE, "10 20 nan 40 0 0 0 0 0 0", 1), rf"{G}:3: w: expected an integer from -9999999"),
    ("twenty-digit-height", ANNOTATION.replace(FACE, "10 20 30 " + "9" * 20 + " 0 0 0 0 0 0", 1),
     rf"{G}:3: h: expected an integer from -9999999 to 9999999"),
    ("unicode-digits", ANNOTATION.replace(FACE, "\u0661\u0662 20 30 40 0 0 0 0 0 0", 1), rf"{G}:3: x: expected an integer"),
    ("plus-signed-count", ANNOTATION.replace("\n1\n", "\n+1\n", 1).replace(FACE, "1 2 3 4 0 0 0 0 0 9", 1),
     rf"{G}:3: pose: expected an integer from 0 to 1, found '9'"),
    ("decimal-coordinate", ANNOTATION.replace(FACE, "10.5 20 30 40 0 0 0 0 0 0", 1), rf"{G}:3: x: expected an integer"),
    ("attribute-out-of-range", ANNOTATION.replace(FACE, "10 20 30 40 7 0 0 0 0 0", 1),
     rf"{G}:3: blur: expected an integer from 0 to 2"),
    ("too-few-fields", ANNOTATION.replace(FACE, "10 20 30", 1), rf"{G}:3: expected 10 integers"),
    ("count-larger-than-lines", ANNOTATION.replace("\n1\n", "\n3\n", 1),
     rf"{G}:2: {GOOD} announces 3 faces \(3 lines\), found 1 before line 4 is the next image"),
    ("count-twenty-digits", ANNOTATION.replace("\n1\n", "\n" + "1" * 20 + "\n", 1),
     rf"{G}:2: number of faces of {GOOD}: expected an integer from 0 to 100000"),
    ("count-negative", ANNOTATION.replace("\n1\n", "\n-1\n", 1), rf"{G}:2: number of faces of {GOOD}: expected"),
    ("file-ends-after-path", ANNOTATION + "0--Parade/late.jpg\n", rf"{G}:8: expected the number of faces"),
    ("path-escapes-with-dotdot", ANNOTATION.replace(GOOD, "../../outside.jpg"),
     rf"{G}:1: image path: expected a relative path inside the dataset.*'\.\.' component"),
    ("absolute-path", ANNOTATION.replace(GOOD, "/etc/outside.jpg"), rf"{G}:1: image path: .*it is absolute"),
    ("byte-order-mark", "\ufeff" + ANNOTATION, rf"{G}:1: image path: .*invisible characters"),
    ("not-utf8", ANNOTATION.encode() + b"\xff\xfe\n", rf"{G}:7: annotation is not UTF-8"),
    ("not-an-image-path", "readme\n" + ANNOTATION, rf"{G}:1: expected an image path ending in \.jpg"),
]
CASES += [Case(f"annotation-{name}", "accuracy", "accuracy_check", run_wider(), expect, setup=wider(text))
          for name, text, expect in ANNOTATIONS]
CASES += [
    Case("annotation-fifo", "accuracy", "accuracy_check", run_wider(), r"gt\.txt: .*regular file, found a FIFO",
         setup=lambda c: (wider()(c), c.path("data", "gt.txt").unlink(), os.mkfifo(c.path("data", "gt.txt")))),
    Case("subsample-beyond-the-dataset", "accuracy", "accuracy_check", run_wider("--subsample_size", "3"),
         r"--subsample_size 3: .*2 images", setup=wider()),
]

V, H = "wider_face_val.mat", "wider_hard_val.mat"
# (id, replaced .mat files, expected message)
MATS = [
    ("truncated", lambda: {V: _truth()[V][:300]}, rf"{V}: .*(cut short|runs past|damaged)"),
    ("random-bytes", lambda: {V: os.urandom(4096)}, rf"{V}: not a MATLAB v5 \.mat file"),
    ("hdf5-v73", lambda: {V: b"MATLAB 7.3 MAT-file".ljust(124) + struct.pack("<H", 0x0200) + b"IM" + bytes(512)},
     rf"{V}: not a MATLAB v5 \.mat file \(v7\.3"),
    ("missing-variable", lambda: {H: _savemat({"other": np.arange(3)})}, rf"{H}: has no variable 'gt_list'"),
    ("index-beyond-the-faces", lambda: {H: _truth(keep=_cells([np.array([[1]]), np.array([[999]])]))[H]},
     rf"{H}: gt_list\{{1\}}\{{2\}}: expected face indices from 1 to 1"),
    ("event-with-slash", lambda: {V: _truth(events=_cells([np.array(["../0--Parade"])]))[V]},
     rf"{V}: event_list\{{1\}}: expected a name without '/'"),
    ("event-list-not-cells", lambda: {V: _savemat({"event_list": np.zeros((1, 1)), "file_list": np.zeros((1, 1)),
                                                   "face_bbx_list": np.zeros((1, 1))})},
     rf"{V}: event_list: expected a cell vector"),
    ("nan-boxes", lambda: {V: _truth(boxes=_cells([np.array([[np.nan, 1, 2, 3]])] * 2))[V]},
     rf"{V}: face_bbx_list\{{1\}}\{{1\}}: holds NaN"),
    ("boxes-not-by-four", lambda: {V: _truth(boxes=_cells([np.array([[1, 2, 3]], dtype=np.int32)] * 2))[V]},
     rf"{V}: face_bbx_list\{{1\}}\{{1\}}: expected G x 4 boxes"),
    ("cell-declaring-a-billion", lambda: {H: _mat_cell_bomb()}, rf"{H}: byte \d+: declares 1000000000 elements"),
    ("data-of-unknown-type", lambda: {H: _mat_unknown_type()}, rf"{H}: byte \d+: data of unknown type 128"),
    ("zlib-bomb", lambda: {H: _mat_zlib_bomb}, rf"{H}: byte 128: compressed elements unpack to more than"),
    ("fifo", lambda: {H: lambda ctx, path: os.mkfifo(path)}, rf"{H}: .*regular file, found a FIFO"),
]


def _with_truth(replace):
    return lambda ctx: wider(truth=replace())(ctx)


CASES += [Case(f"mat-{name}", "accuracy", "accuracy_check", run_wider(), expect, setup=_with_truth(replace))
          for name, replace, expect in MATS]

P = "pairs.txt"
PAIR_FILES = [
    ("header-counts-more-lines", PAIRS.replace("2 1", "10 300"), rf"{P}:1: header says 10 folds x 600 pairs"),
    ("header-not-numbers", PAIRS.replace("2 1", "x y"), rf"{P}:1: header folds: expected an integer"),
    ("header-one-fold", "1 1\nAaron_Sorkin 1 2\nAaron_Sorkin 1 Abdoulaye_Wade 1\n",
     rf"{P}:1: header folds: expected an integer from 2"),
    ("header-twenty-digits", PAIRS.replace("2 1", "2 " + "9" * 20), rf"{P}:1: header pairs per kind per fold"),
    ("empty", "", rf"{P}:1: expected a header"),
    ("name-escapes", PAIRS.replace("Abdoulaye_Wade 1 2", "../../x 1 2"), rf"{P}:4: person name: expected a folder name"),
    ("number-zero", PAIRS.replace("Aaron_Sorkin 1 2", "Aaron_Sorkin 0 2"), rf"{P}:2: image number: expected an integer from 1"),
    ("number-inf", PAIRS.replace("Aaron_Sorkin 1 2", "Aaron_Sorkin inf 2"), rf"{P}:2: image number: expected an integer"),
    ("same-image-twice", PAIRS.replace("Aaron_Sorkin 1 2", "Aaron_Sorkin 2 2"), rf"{P}:2: a matched pair of image 2 with itself"),
    ("mismatched-line-short", PAIRS.replace("Aaron_Sorkin 1 Abdoulaye_Wade 1", "Aaron_Sorkin 1 Abdoulaye_Wade"),
     rf"{P}:3: expected 'name1 i name2 j'"),
    ("image-absent", PAIRS.replace("Abdoulaye_Wade 1 2", "Abdoulaye_Wade 1 7"),
     r"Abdoulaye_Wade_0007\.jpg: image not found \(named by pair 3\)"),
]
CASES += [Case(f"pairs-{name}", "accuracy", "accuracy_check", run_lfw(), expect, setup=lfw(text))
          for name, text, expect in PAIR_FILES]
CASES += [Case("pairs-subsample-beyond", "accuracy", "accuracy_check", run_lfw("--subsample_size", "5"),
               r"--subsample_size 5", setup=lfw())]

L, FIRST = "landmarks.txt", LFW_IMAGES[0]
LANDMARK_FILES = [
    ("nan", LANDMARKS.replace(MARKS, MARKS.replace("56.0", "nan"), 1), rf"{L}:1: landmark value 5: expected a decimal"),
    ("exponent", LANDMARKS.replace(MARKS, MARKS.replace("56.0", "5.6e1"), 1), rf"{L}:1: landmark value 5"),
    ("all-equal", LANDMARKS.replace(MARKS, " ".join(["50"] * 10), 1), rf"{L}:1: {FIRST}: landmarks .*degenerate"),
    ("collinear", LANDMARKS.replace(MARKS, "10 10 20 20 30 30 40 40 50 50", 1), rf"{L}:1: {FIRST}: landmarks .*degenerate"),
    ("missing-image", "".join(LANDMARKS.splitlines(True)[1:]), rf"{L}: no landmarks for {FIRST} \(1 of 4"),
    ("twice", LANDMARKS + f"{FIRST} {MARKS}\n", rf"{L}:5: {FIRST} has landmarks twice \(first at line 1\)"),
    ("nine-numbers", LANDMARKS.replace(MARKS, MARKS.rsplit(" ", 1)[0], 1), rf"{L}:1: expected '<image> x1 y1"),
    ("empty", "", rf"{L}: no landmarks"),
]
CASES += [Case(f"landmarks-{name}", "accuracy", "accuracy_check", run_lfw(), expect, setup=lfw(landmarks=text))
          for name, text, expect in LANDMARK_FILES]

S = "p.npz"
STORED = [
    ("not-a-zip", [(S, b"plain text\n")], r"p\.npz: not a stored predictions file"),
    ("pickled-objects", [(S, _objects)], r"p\.npz: not a stored predictions file .*object"),
    ("counts-disagree", [(S, _arrays(counts=np.array([1, 5])))], r"p\.npz: counts: expected 2 non-negative counts"),
    ("negative-count", [(S, _arrays(counts=np.array([3, -1])))], r"p\.npz: counts: expected"),
    ("nan-scores", [(S, _arrays(scores=np.array([np.nan, 0.5])))], r"p\.npz: scores: holds NaN"),
    ("inf-boxes", [(S, _arrays(boxes=np.array([[0, 0, np.inf, 1.]] * 2)))], r"p\.npz: boxes: holds NaN or infinite"),
    ("boxes-of-three", [(S, _arrays(boxes=np.zeros((2, 3))))], r"p\.npz: boxes: expected 2-dimensional"),
    ("names-escape", [(S, _arrays(names=np.array(["../x.jpg", OTHER])))], r"p\.npz: image name: expected a relative"),
    ("names-twice", [(S, _arrays(names=np.array([GOOD, GOOD])))], r"p\.npz: names: 1 images named twice"),
    ("array-missing", [(S, _arrays(landmarks=None))], r"p\.npz: detections need the arrays"),
    ("unknown-member", [(S, _arrays(extra=np.zeros(2)))], r"p\.npz: not a stored predictions file .*'extra\.npy'"),
    ("unknown-kind", [(S, _arrays(kind=np.array("boxes")))], r"p\.npz: kind 'boxes': expected detections or"),
    ("meta-not-json", [(S, _arrays(meta=np.array("{")))], r"p\.npz: meta: expected the JSON object"),
    ("embeddings-for-wider", [(S, {"kind": np.array("embeddings"), "meta": np.array(json.dumps(META)),
                                   "names": np.array([GOOD]), "embeddings": np.ones((1, 4))})],
     r"p\.npz: holds embeddings, this dataset needs detections"),
    ("other-dataset-images", [(S, _arrays(names=np.array([GOOD, "9--x/y.jpg"])))],
     r"--stored_predictions: 9--x/y\.jpg is not among the dataset's images"),
    ("other-settings", [(S, _arrays(meta=np.array(json.dumps({**META, "resize": 320}))))],
     r"p\.npz: predictions were made with other settings \(resize differ\)"),
    ("declared-sizes-too-big", [(S, _declared_too_big)], r"p\.npz: .*members unpack to more than 1,073,741,824"),
    ("header-declares-a-huge-shape", [(S, _huge_shape)], r"p\.npz: .*boxes\.npy: header declares 32000000000000 bytes"),
    ("fifo", [(S, lambda ctx, path: os.mkfifo(path))], r"p\.npz: .*regular file"),
    ("thousands-of-members", [(S, _many_members)], r"p\.npz: not a stored predictions file .*5000 members, at most 8"),
]
CASES += [Case(f"stored-{name}", "accuracy", "accuracy_check", run_stored(S), expect, setup=stored(*files))
          for name, files, expect in STORED]
CASES += [
    Case("stored-shard-missing", "accuracy", "accuracy_check", run_stored("a.npz", "b.npz"), r"b\.npz: .*not found",
         setup=stored(("a.npz", _arrays()))),
    Case("stored-shards-disagree", "accuracy", "accuracy_check", run_stored("a.npz", "b.npz"),
         r"b\.npz: (shard made with other settings than .*a\.npz|predictions were made with other settings)",
         setup=stored(("a.npz", _arrays(names=np.array([GOOD]), counts=np.array([1]), boxes=np.zeros((1, 4)),
                                        scores=np.ones(1), landmarks=np.zeros((1, 5, 2)))),
                      ("b.npz", _arrays(names=np.array([OTHER]), counts=np.array([1]), boxes=np.zeros((1, 4)),
                                        scores=np.ones(1), landmarks=np.zeros((1, 5, 2)),
                                        meta=np.array(json.dumps({**META, "extra": 1})))))),
    Case("stored-shards-overlap", "accuracy", "accuracy_check", run_stored("a.npz", "b.npz"),
         r"b\.npz: 2 images also in an earlier shard", setup=stored(("a.npz", _arrays()), ("b.npz", _arrays()))),
]


def _lfw_copy(ctx, replace: dict) -> None:
    """faces/ as a folder of copies of the four faces the pairs name, some replaced by makers."""
    ctx.path("data", "faces").unlink()
    for rel in LFW_IMAGES:
        target = ctx.path("data", "faces", rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel in replace:
            replace[rel](ctx, target)
        else:
            shutil.copy(shared_path("data", "lfw", "lfw_aligned_100pair", *rel.split("/")), target)


def _swap(rel: str, make):
    """Replace data/<rel> (written by the setup) with what `make(ctx, path)` makes."""
    def step(ctx):
        ctx.path("data", rel).unlink()
        make(ctx, ctx.path("data", rel))
    return step


LAST = LFW_IMAGES[-1]
CASES += [
    Case("lfw-image-fifo", "accuracy", "accuracy_check", run_lfw(), rf"faces/{LAST}: not a regular file",
         setup=lfw(extra=lambda c: _lfw_copy(c, {LAST: fifo}))),
    Case("lfw-image-truncated", "accuracy", "accuracy_check", run_lfw(), rf"faces/{LAST}: not a decodable image",
         setup=lfw(extra=lambda c: _lfw_copy(c, {LAST: lambda ctx, path: path.write_bytes(
             shared_path("data", "lfw", "lfw_aligned_100pair", *LAST.split("/")).read_bytes()[:600])}))),
    Case("lfw-every-image-broken-with-skip-broken", "accuracy", "accuracy_check", run_lfw("--skip_broken"),
         r"no pair has both images readable \(4 images broken, e\.g\. .*empty file",
         setup=lfw(extra=lambda c: _lfw_copy(c, {rel: content(b"") for rel in LFW_IMAGES}))),
    Case("landmarks-fifo", "accuracy", "accuracy_check", run_lfw(), r"landmarks\.txt: .*regular file, found a FIFO",
         setup=lfw(landmarks=LANDMARKS, extra=_swap("landmarks.txt", fifo))),
    Case("pairs-fifo", "accuracy", "accuracy_check", run_lfw(), r"pairs\.txt: .*regular file, found a FIFO",
         setup=lfw(extra=_swap("pairs.txt", fifo))),
    Case("stored-nan-embeddings", "accuracy", "accuracy_check", run_stored(S), r"p\.npz: embeddings: holds NaN",
         setup=lambda c: (lfw()(c), np.savez(c.path(S), kind=np.array("embeddings"), meta=np.array("{}"),
                                              names=np.array(LFW_IMAGES), embeddings=np.full((4, 8), np.nan)))),
    Case("stored-detections-for-lfw", "accuracy", "accuracy_check", run_stored(S),
         r"p\.npz: holds detections, this dataset needs embeddings",
         setup=lambda c: (lfw()(c), np.savez(c.path(S), **_arrays()))),
]
