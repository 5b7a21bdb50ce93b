"""Hostile downloader inputs: bad archives, lying servers, bad flags, planted files.

Each case writes a one-model registry (`m`) under its folder and runs omz_downloader on it with
`--models_dir`; files come from a local mirror folder built in the case or from a
tests/fileserver.py server on 127.0.0.1 started in setup and stopped in cleanup. A model that
cannot be completed ends with exit 1 and its one reason; bad flags and a bad environment (a planted
link, an output folder that is a file) end with exit 2.
"""
from __future__ import annotations

import fcntl
import io
import os
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from conftest import file_entry, write_model
from fileserver import FileServer
from harness import Case

DATA = bytes(range(256)) * 200  # 51,200 bytes
DEAD = "http://127.0.0.1:9/unused"  # the discard port: nothing listens there
OUT_M = "out/public/m"


# ---------------------------------------------------------------- archives
def zip_bytes(members, method=zipfile.ZIP_DEFLATED) -> bytes:
    """members: (name, data) pairs, or (ZipInfo, data)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def zip_info(name: str, mode: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def _zip_patched(name: str, data: bytes, method: int | None = None, flag_bits: int = 0) -> bytes:
    """A stored member relabelled in both headers: another compression method number (e.g. 99),
    or extra general-purpose flag bits (0x1: encrypted)."""
    raw = bytearray(zip_bytes([(name, data)], zipfile.ZIP_STORED))
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = raw.find(sig) + at
        flags, old_method = struct.unpack("<2H", raw[pos:pos + 4])
        raw[pos:pos + 4] = struct.pack("<2H", flags | flag_bits, old_method if method is None else method)
    return bytes(raw)


def tar_bytes(members, mode: str = "w:gz") -> bytes:
    """members: (name, data | None, type, linkname); data None for non-files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            if kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = 1, 7
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tar_file(name: str, data: bytes = b"x"):
    return (name, data, tarfile.REGTYPE, "")


def _cached(name: str, build) -> Path:
    """A large archive built once per machine user (the bombs take a second or two to make)."""
    folder = Path(tempfile.gettempdir()) / f"facezoo-hostile-archives-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    path = folder / name
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(build())
            os.replace(tmp, path)
    return path


def _zip_bomb(total: int = 2 << 30) -> bytes:
    """One deflate member that inflates to `total` zero bytes (2 GiB) from about 2 MB: full-flush
    segments of 16 MiB of zeros repeated, then an empty final block."""
    block = bytes(16 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    count = total // len(block)
    stream = segment * count + b"\x03\x00"
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    name = b"zeros.bin"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(stream), total, len(name), 0)
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(stream), total,
                          len(name), 0, 0, 0, 0, 0, 0)
    cd_offset = len(local) + len(name) + len(stream)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), cd_offset, 0)
    return local + name + stream + central + name + end


def many_members_zip(count: int = 100_000) -> Path:
    """A zip of `count` one-byte members in 100 folders (cached)."""
    def build() -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for i in range(count):
                zf.writestr(f"d{i % 100:02d}/f{i:06d}", b"x")
        return buf.getvalue()
    return _cached(f"members-{count}.zip", build)


def zip_bomb() -> Path:
    return _cached("bomb-2GiB.zip", _zip_bomb)


def model(ctx, files, postprocessing=None, **extra) -> None:
    if postprocessing:
        extra["postprocessing"] = postprocessing
    write_model(ctx.root / "models", "m", files, **extra)


def base(ctx) -> list:
    return ["--name", "m", "--models_dir", ctx.path("models"), "-o", ctx.out, "--retry_delay", "0"]


def _stop(ctx) -> None:
    if "srv" in ctx.values:
        ctx.values["srv"].__exit__(None, None, None)


def archive_case(case_id: str, name: str, payload, expect: str, extra_files=(), flags=(), exit=1,
                 absent=(), plant=None, via: str = "mirror") -> Case:
    """The model's only (or first) file is an archive, unpacked by postprocessing. `via`: "mirror"
    (a local mirror folder), "http-mirror" (the same folder served by a 127.0.0.1 server and
    given as --mirror URL) or "source" (served at a URL model.yml lists)."""
    def setup(ctx):
        data = payload() if callable(payload) else payload
        if isinstance(data, Path):
            data = data.read_bytes()
        ctx.write(f"mirror/m/{name}", data)
        sources = [DEAD]
        if via != "mirror":
            srv = FileServer(root=ctx.root / "mirror").__enter__()
            ctx.values["srv"] = srv
            ctx.values["mirror"] = srv.url
            if via == "source":
                sources = [srv.add(f"/{name}", data)]
        files = [file_entry(name, data, sources)]
        for other, content in extra_files:
            ctx.write(f"mirror/m/{other}", content)
            files.append(file_entry(other, content, [DEAD]))
        model(ctx, files, [{"$type": "unpack_archive", "file": name}])
        if plant:
            plant(ctx)

    def argv(c):
        mirror = [] if via == "source" and not extra_files else ["--mirror", c.path("mirror")]
        if via == "http-mirror":
            mirror = ["--mirror", c.values["mirror"]]
        return base(c) + mirror + list(flags)

    return Case(f"archive-{case_id}" + ("" if via == "mirror" else f"-{via}"), "download", "omz_downloader", argv,
                expect, setup=setup, exit=exit, absent=tuple(f"{OUT_M}/{a}" for a in absent), cleanup=_stop)


def _symlinked_model_subdir(ctx):
    (ctx.root / "elsewhere").mkdir()
    (ctx.out / "public" / "m").mkdir(parents=True)
    os.symlink(ctx.root / "elsewhere", ctx.out / "public" / "m" / "sub")


ZEROS_1M = bytes(1 << 20)
REFUSE = "refusing to unpack"
ARCHIVE_CASES = [
    archive_case("zip-dotdot", "a.zip", zip_bytes([("ok.txt", b"ok"), ("../../evil.txt", b"x")]),
                 r"'\.\./\.\./evil\.txt' escapes the target directory", absent=["ok.txt"]),
    archive_case("tar-dotdot", "a.tar.gz", tar_bytes([tar_file("ok.txt"), tar_file("x/../../evil.txt")]),
                 r"escapes the target directory", absent=["ok.txt"]),
    archive_case("zip-absolute", "a.zip", zip_bytes([("/tmp/evil.txt", b"x")]), r"absolute or Windows name"),
    archive_case("tar-absolute", "a.tar", tar_bytes([tar_file("/evil.txt")], "w"), r"absolute or Windows name"),
    archive_case("zip-backslash", "a.zip", zip_bytes([("..\\evil.txt", b"x")]), r"absolute or Windows name"),
    archive_case("zip-drive-letter", "a.zip", zip_bytes([("C:evil.txt", b"x")]), r"absolute or Windows name"),
    archive_case("zip-symlink", "a.zip", zip_bytes([("ok.txt", b"ok"), (zip_info("link", 0o120777), "/etc/passwd")]),
                 r"'link' is a symbolic link; " + REFUSE, absent=["ok.txt", "link"]),
    archive_case("tar-symlink", "a.tar.gz",
                 tar_bytes([tar_file("ok.txt"), ("link", None, tarfile.SYMTYPE, "/etc/passwd")]),
                 r"'link' is a symbolic link", absent=["ok.txt", "link"]),
    archive_case("tar-hardlink", "a.tar.gz", tar_bytes([tar_file("ok.txt"), ("hard", None, tarfile.LNKTYPE, "ok.txt")]),
                 r"'hard' is a hard link", absent=["ok.txt", "hard"]),
    archive_case("tar-device", "a.tar.gz", tar_bytes([("full", None, tarfile.CHRTYPE, "")]),
                 r"'full' is a device or FIFO", absent=["full"]),
    archive_case("tar-fifo", "a.tar.bz2", tar_bytes([("pipe", None, tarfile.FIFOTYPE, "")], "w:bz2"),
                 r"'pipe' is a device or FIFO", absent=["pipe"]),
    archive_case("zip-fifo", "a.zip", zip_bytes([(zip_info("pipe", stat.S_IFIFO | 0o644), b"")]),
                 r"'pipe' is a device, FIFO or socket", absent=["pipe"]),
    archive_case("zip-device", "a.zip", zip_bytes([(zip_info("full", stat.S_IFCHR | 0o666), b"")]),
                 r"'full' is a device, FIFO or socket", absent=["full"]),
    archive_case("zip-duplicate", "a.zip", zip_bytes([("twice.txt", b"one"), ("twice.txt", b"two")]),
                 r"'twice\.txt' appears twice", absent=["twice.txt"]),
    archive_case("tar-duplicate", "a.tar.xz", tar_bytes([tar_file("twice.txt"), tar_file("./twice.txt")], "w:xz"),
                 r"'twice\.txt' appears twice", absent=["twice.txt"]),
    archive_case("zip-overwrites-verified-file", "a.zip", zip_bytes([("weights.bin", b"evil")]),
                 r"'weights\.bin' would overwrite weights\.bin, a file model\.yml lists",
                 extra_files=[("weights.bin", DATA)]),
    archive_case("tar-overwrites-verified-file", "a.tar.gz", tar_bytes([tar_file("weights.bin", b"evil")]),
                 r"would overwrite weights\.bin, a file model\.yml lists", extra_files=[("weights.bin", DATA)]),
    archive_case("zip-overwrites-itself", "a.zip", zip_bytes([("a.zip", b"evil")]), r"would overwrite a\.zip"),
    archive_case("zip-member-inside-verified-file", "a.zip", zip_bytes([("weights.bin/x", b"evil")]),
                 r"would overwrite weights\.bin", extra_files=[("weights.bin", DATA)]),
    archive_case("zip-file-and-folder-clash", "a.zip", zip_bytes([("x", b"file"), ("x/y", b"inside")]),
                 r"'x/y' lies inside 'x', which is a file member", absent=["x"]),
    archive_case("zip-too-many-members", "a.zip", zip_bytes([(f"f{i}", b"") for i in range(6)]),
                 r"more than 5 members( \(6\))?; refusing to unpack \(--max_archive_members", flags=["--max_archive_members", "5"],
                 absent=["f0"]),
    archive_case("tar-too-many-members", "a.tar", tar_bytes([tar_file(f"f{i}") for i in range(7)], "w"),
                 r"more than 5 members; refusing to unpack", flags=["--max_archive_members", "5"], absent=["f0"]),
    archive_case("zip-100000-members", "a.zip", many_members_zip,
                 r"more than 10000 members \(100000\); refusing to unpack", absent=["d00"]),
    archive_case("zip-bomb-2GiB", "a.zip", zip_bomb, r"'zeros\.bin' expands \d+ bytes to 2147483648 .*zip bomb",
                 absent=["zeros.bin"]),
    archive_case("zip-bomb-2GiB-ratio-raised", "a.zip", zip_bomb, r"more than 1073741824 bytes.*--max_unpacked_size",
                 flags=["--max_member_ratio", "100000", "--max_unpack_ratio", "100000"], absent=["zeros.bin"]),
    archive_case("zip-over-absolute-cap", "a.zip", zip_bytes([("a.bin", DATA), ("b.bin", DATA)], zipfile.ZIP_STORED),
                 r"more than 65536 bytes", flags=["--max_unpacked_size", "64K"], absent=["a.bin", "b.bin"]),
    archive_case("zip-over-relative-cap", "a.zip", zip_bytes([(f"z{i}", ZEROS_1M) for i in range(8)]),
                 r"more than 20 times the archive's \d+ bytes.*--max_unpack_ratio", absent=["z0"]),
    archive_case("tgz-over-relative-cap", "a.tar.gz", lambda: tar_bytes([tar_file("z", bytes(40 << 20))]),
                 r"more than 20 times the archive's", absent=["z"]),
    archive_case("txz-over-relative-cap", "a.tar.xz", lambda: tar_bytes([tar_file("z", bytes(8 << 20))], "w:xz"),
                 r"more than 20 times the archive's", absent=["z"]),
    archive_case("zip-encrypted", "a.zip", _zip_patched("secret", b"x", flag_bits=0x1), r"'secret' is encrypted"),
    archive_case("zip-unknown-method", "a.zip", _zip_patched("w.bin", b"abc", method=99),
                 r"'w\.bin' uses compression method 99", absent=["w.bin"]),
    archive_case("zip-bzip2-method", "a.zip", zip_bytes([("w.bin", b"abc" * 100)], zipfile.ZIP_BZIP2),
                 r"compression method 12; only stored and deflate", absent=["w.bin"]),
    archive_case("not-a-zip", "a.zip", DATA, r"a\.zip: not a valid zip archive"),
    archive_case("truncated-tgz", "a.tar.gz", lambda: tar_bytes([tar_file("w.bin", os.urandom(50_000))])[:5000],
                 r"a\.tar\.gz: (not a valid gztar archive|cannot unpack)", absent=["w.bin"]),
    archive_case("long-member-name", "a.zip", zip_bytes([("d/" * 600 + "x", b"x")]), r"over-long name"),
    archive_case("member-with-temp-prefix", "a.zip", zip_bytes([(".facezoo-tmp-1-x/w", b"x")]),
                 r"uses the prefix of the downloader's temporary names"),
    archive_case("long-path-component", "a.zip", zip_bytes([("x" * 300, b"x")]), r"component longer than 255 bytes"),
    archive_case("zip-symlink", "a.zip", zip_bytes([(zip_info("link", 0o120777), "/etc/passwd")]),
                 r"'link' is a symbolic link", absent=["link"], via="source"),
    archive_case("tar-dotdot", "a.tar.gz", tar_bytes([tar_file("../evil.txt")]), r"escapes the target directory",
                 via="http-mirror"),
    archive_case("zip-bomb-2GiB", "a.zip", zip_bomb, r"zip bomb", absent=["zeros.bin"], via="http-mirror"),
    archive_case("tar-overwrites-verified-file", "a.tar", tar_bytes([tar_file("weights.bin", b"evil")], "w"),
                 r"would overwrite weights\.bin", extra_files=[("weights.bin", DATA)], via="source"),
    archive_case("member-through-planted-symlink", "a.zip", zip_bytes([("sub/x.txt", b"x")]),
                 r"public/m/sub: found a symbolic link", exit=2, plant=_symlinked_model_subdir),
]


# ---------------------------------------------------------------- lying servers
def _serve(ctx, routes: dict, files=None) -> None:
    """Start a server with routes {path: (data, options)}; the model's file a.bin (DATA) lists
    the routes' URLs as its sources, in order."""
    srv = FileServer().__enter__()
    ctx.values["srv"] = srv
    urls = [srv.add(path, data, **opts) for path, (data, opts) in routes.items()]
    ctx.values["url"] = srv.url
    model(ctx, files or [file_entry("a.bin", DATA, urls)])


def server_case(case_id: str, routes: dict, expect: str, flags=(), exit=1, before=None, source_urls=None) -> Case:
    def setup(ctx):
        if source_urls is not None:
            model(ctx, [file_entry("a.bin", DATA, source_urls)])
            return
        _serve(ctx, routes)
        if before:
            before(ctx)

    return Case(f"server-{case_id}", "download", "omz_downloader",
                lambda c: base(c) + ["--num_attempts", "1", "--timeout", "5", *flags], expect, setup=setup,
                cleanup=_stop, exit=exit, absent=(f"{OUT_M}/a.bin",), timeout=30)


def _seed_part(ctx) -> None:
    ctx.write("out/.partial/public/m/a.bin.part", DATA[:1000])


def _redirect_to(target: str) -> dict:
    return {"/r": (None, {"redirect": target})}


SERVER_CASES = [
    server_case("size-announced-larger", {"/a": (DATA + b"!", {})}, r"size mismatch: server announces 51201 bytes"),
    server_case("size-announced-smaller", {"/a": (DATA[:-1], {})}, r"size mismatch: server announces 51199 bytes"),
    server_case("wrong-hash", {"/a": (DATA, {"always": "wrong"})}, r"sha256 mismatch: got [0-9a-f]{64}, expected"),
    server_case("endless-body", {"/a": (DATA, {"always": "endless"})}, r"served more than the expected 51200 bytes"),
    server_case("trickle-one-byte-at-a-time", {"/a": (DATA, {"always": "trickle:0.05"})},
                r"too slow: \d+ bytes in the attempt's time limit \(--attempt_deadline\)",
                flags=["--attempt_deadline", "1"]),
    server_case("content-length-lie-short-body", {"/a": (DATA, {"always": "close_mid"})},
                r"connection dropped mid-transfer \(after 2 attempts\)", flags=["--num_attempts", "2"]),
    server_case("content-length-lie-huge", {"/a": (DATA, {"always": "length:99999999999"})},
                r"size mismatch: server announces 99999999999 bytes"),
    server_case("range-answered-wrongly", {"/a": (DATA, {"always": "badrange"})},
                r"answered a Range request with the wrong range", before=_seed_part),
    server_case("redirect-loop", {"/loop": (None, {"redirect": "/loop"})}, r"redirect loop \(more than 10 redirects\)"),
    server_case("redirect-to-file-scheme", _redirect_to("file:///etc/passwd"), r"invalid URL or redirect"),
    server_case("redirect-to-closed-port", _redirect_to("http://127.0.0.1:9/x"), r"connection refused"),
    server_case("silent-server", {"/a": (DATA, {"always": "slow:10"})}, r"timed out", flags=["--timeout", "0.5"]),
    server_case("unresolvable-host", {}, r"cannot resolve the host name",
                source_urls=["http://no-such-host.invalid/a.bin", "http://no-such-host.invalid/b.bin"]),
    server_case("connection-refused", {}, r"\[1\] http://127\.0\.0\.1:9/a\.bin: connection refused",
                source_urls=["http://127.0.0.1:9/a.bin"]),
    server_case("not-a-usable-url", {}, r"model\.yml:\d+: files\[0\]\.sources\[0\]: not a usable URL", exit=2,
                source_urls=["http://[::1/a.bin"]),
] + [
    server_case(f"http-{code}", {"/a": (DATA, {"always": f"status:{code}"})}, rf"HTTP {code}\b" + tail,
                flags=["--num_attempts", "2"])
    for code, tail in ((400, r"(?!.*after)"), (401, ""), (403, ""), (404, r"(?!.*after)"), (410, ""),
                       (451, ""), (500, r".*after 2 attempts"), (502, ""), (503, r".*after 2 attempts"),
                       (429, r".*after 2 attempts"))
]


# ---------------------------------------------------------------- flags
def flag_case(case_id: str, flags: list[str], expect: str) -> Case:
    def setup(ctx):
        model(ctx, [file_entry("a.bin", DATA, [DEAD])])
    return Case(f"flag-{case_id}", "download", "omz_downloader", lambda c: base(c)[:-2] + flags, expect, setup=setup)


FLAG_CASES = [
    flag_case(f"{flag.strip('-')}-{value.replace('.', '_').replace('-', 'minus')}", [flag, value],
              rf"argument (-j/)?{flag}: '{value}' is (out of range|not a)")
    for flag, value in (("--timeout", "inf"), ("--timeout", "nan"), ("--timeout", "1e308"), ("--timeout", "-1"),
                        ("--timeout", "0"), ("--timeout", "abc"), ("--timeout", "99999"),
                        ("--retry_delay", "inf"), ("--retry_delay", "nan"), ("--retry_delay", "-0.5"),
                        ("--retry_delay", "1e308"), ("--retry_delay", "301"),
                        ("--jobs", "0"), ("--jobs", "1000"), ("--jobs", "1.5"), ("--jobs", "-3"),
                        ("--num_attempts", "0"), ("--num_attempts", "100"), ("--num_attempts", "1e3"),
                        ("--attempt_deadline", "0"), ("--attempt_deadline", "inf"),
                        ("--max_archive_members", "0"), ("--max_unpacked_size", "12X"),
                        ("--max_unpacked_size", "0"), ("--max_unpacked_size", "99999999999999999999"),
                        ("--max_unpack_ratio", "nan"), ("--max_member_ratio", "0.5"))
] + [
    flag_case("progress-format-xml", ["--progress_format", "xml"], r"argument --progress_format: invalid choice"),
]


# ---------------------------------------------------------------- places: output, cache, mirror, planted files
def _device(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))


def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _victim(ctx) -> Path:
    return ctx.write("victim.txt", "precious\n")


def plant_symlink(rel: str):
    def plant(ctx):
        target = ctx.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(_victim(ctx), target)
    return plant


def plant_hardlink(rel: str):
    def plant(ctx):
        target = ctx.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(_victim(ctx), target)
    return plant


def plant(kind: str, rel: str):
    return {"symlink": plant_symlink(rel), "hardlink": plant_hardlink(rel),
            "fifo": lambda ctx: _fifo(ctx.root / rel), "device": lambda ctx: _device(ctx.root / rel),
            "file": lambda ctx: ctx.write(rel, "not a folder\n"),
            "dirlink": lambda ctx: (ctx.root.joinpath(rel).parent.mkdir(parents=True, exist_ok=True),
                                    (ctx.root / "elsewhere").mkdir(), os.symlink(ctx.root / "elsewhere", ctx.root / rel))}[kind]


def place_case(case_id: str, planted, expect: str, flags=lambda c: [], exit=2, with_mirror=True,
               final_may_exist: bool = False) -> Case:
    """a.bin is available in a local mirror; `planted` spoils a place the downloader uses."""
    def setup(ctx):
        ctx.write("mirror/m/a.bin", DATA)
        model(ctx, [file_entry("a.bin", DATA, [DEAD])])
        planted(ctx)

    return Case(f"place-{case_id}", "download", "omz_downloader",
                lambda c: base(c) + (["--mirror", c.path("mirror")] if with_mirror else []) + flags(c), expect,
                setup=setup, exit=exit, absent=() if final_may_exist else (f"{OUT_M}/a.bin",))


PART = "out/.partial/public/m/a.bin.part"
LOCK = "out/.partial/public/m/a.bin.lock"
FINAL = f"{OUT_M}/a.bin"
CACHE_ENTRY = "out/cache/sha256/{}/{}"


def _cache_plant(kind: str):
    import hashlib

    sha = hashlib.sha256(DATA).hexdigest()
    return plant(kind, CACHE_ENTRY.format(sha[:2], sha))


def _cache_flags(c):
    return ["--cache_dir", c.out / "cache"]


PLACE_CASES = [
    place_case(f"part-{kind}", plant(kind, PART), rf"a\.bin\.part: found {what}.*where the downloader keeps")
    for kind, what in (("symlink", "a symbolic link"), ("hardlink", r"a hard link \(2 names"), ("fifo", "a FIFO"),
                       ("device", "a device"))
] + [
    place_case(f"lock-{kind}", plant(kind, LOCK), rf"a\.bin\.lock: found {what}.*where the downloader keeps")
    for kind, what in (("symlink", "a symbolic link"), ("hardlink", "a hard link"), ("fifo", "a FIFO"))
] + [
    place_case(f"cache-entry-{kind}", _cache_plant(kind), rf"found {what}.* where the downloader keeps",
               flags=_cache_flags)
    for kind, what in (("symlink", "a symbolic link"), ("hardlink", "a hard link"), ("fifo", "a FIFO"),
                       ("device", "a device"))
] + [
    place_case("cache-subdir-symlink", plant("dirlink", "out/cache/sha256"),
               r"cache/sha256: found a symbolic link", flags=_cache_flags, final_may_exist=True),
    place_case("partial-dir-symlink", plant("dirlink", "out/.partial"), r"\.partial: found a symbolic link"),
    place_case("partial-model-dir-is-a-file", plant("file", "out/.partial/public/m"),
               r"\.partial/public/m: found not a regular file|\.partial/public/m: found"),
] + [
    place_case(f"final-{kind}", plant(kind, FINAL), rf"a\.bin: the model file's path holds {what}",
               final_may_exist=True)
    for kind, what in (("symlink", "a symbolic link"), ("fifo", "a FIFO"), ("device", "a device"))
] + [
    place_case(f"output-dir-{kind}", plant(kind, "target"), r"target: --output_dir must be a folder, found",
               flags=lambda c: ["-o", c.path("target")])
    for kind in ("file", "fifo", "device")
] + [
    place_case("output-dir-under-a-file", plant("file", "target"), r"--output_dir cannot be made under",
               flags=lambda c: ["-o", c.path("target", "sub")]),
] + [
    place_case(f"cache-dir-{kind}", plant(kind, "cachefile"), r"cachefile: --cache_dir must be a folder, found",
               flags=lambda c: ["--cache_dir", c.path("cachefile")])
    for kind in ("file", "fifo", "device")
] + [
    place_case(f"mirror-is-{kind}", plant(kind, "badmirror"), r"badmirror: --mirror must be a folder .*found a",
               flags=lambda c: ["--mirror", c.path("badmirror")], with_mirror=False)
    for kind in ("file", "fifo", "device")
] + [
    place_case("mirror-missing", lambda ctx: None, r"nowhere: --mirror must be an existing folder",
               flags=lambda c: ["--mirror", c.path("nowhere")], with_mirror=False),
] + [
    Case(f"place-mirror-entry-{kind}", "download", "omz_downloader",
         lambda c: base(c) + ["--mirror", c.path("mirror2"), "--num_attempts", "1"],
         rf"\[1\] mirror .*a\.bin: not a regular file \({what}\)",
         setup=lambda ctx, kind=kind: (model(ctx, [file_entry("a.bin", DATA, [DEAD])]),
                                       plant(kind, "mirror2/m/a.bin")(ctx)),
         exit=1, absent=(FINAL,))
    for kind, what in (("fifo", "a FIFO"), ("device", "a device"))
]

CASES = ARCHIVE_CASES + SERVER_CASES + FLAG_CASES + PLACE_CASES
