"""Hostile registry inputs: model.yml files, registry folders and the model-selection options
(--name, --list, --models_dir) that omz_info_dumper, omz_downloader and omz_converter share.

Every table row becomes one Case; the rows are data, the few builders below turn them into setups.
"""
from __future__ import annotations

import os
import stat

from harness import Case

HEAD = "description: d\ntask_type: detection\nframework: mxnet\nlicense: https://example.invalid/L\n"
SHA = "a" * 64
FILE = f"  - name: a.bin\n    size: 3\n    sha256: {SHA}\n    sources: [https://example.invalid/a.bin]\n"
GOOD = HEAD + "files:\n" + FILE
PIN = "0123456789abcdef0123456789abcdef01234567"


def _with_file(**fields: str) -> str:
    """A model.yml whose only file entry has some fields replaced (raw YAML values)."""
    entry = {"name": "a.bin", "size": "3", "sha256": SHA, "sources": "[https://example.invalid/a.bin]", **fields}
    body = "".join(f"    {k}: {v}\n" for k, v in entry.items() if v is not None).replace("    ", "  - ", 1)
    return HEAD + "files:\n" + body


def _laughs(levels: int, width: int = 10) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return GOOD + "\n".join(lines) + "\n"


def _alias_depth() -> str:
    return GOOD + "x: &x " + "[" * 40 + "]" * 40 + "\ny: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[*x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"


# (id, model.yml content (str or bytes), regex for the one error line)
YAML_ROWS = [
    ("yaml-not-a-mapping", "- a\n- b\n", r"model\.yml:1: expected a mapping at the top level, found a list"),
    ("yaml-scalar-document", "just words\n", r"model\.yml:1: expected a mapping at the top level, found the text"),
    ("yaml-empty-file", "", r"model\.yml:1: the file holds no YAML document .*expected a mapping"),
    ("yaml-only-comments", "# nothing\n   # here\n", r"model\.yml:1: the file holds no YAML document"),
    ("yaml-only-document-marker", "---\n", r"model\.yml:1: expected a mapping at the top level, found null"),
    ("yaml-billion-laughs", _laughs(9), r"model\.yml:\d+: aliases expand to more than 10,000 nodes"),
    ("yaml-wide-alias-fanout", _laughs(3, 200), r"model\.yml:\d+: aliases expand to more than 10,000 nodes"),
    ("yaml-recursive-alias", GOOD + "x: &x [1, *x]\n", r"model\.yml:\d+: alias \*x refers to a node that contains it"),
    ("yaml-undefined-alias", GOOD + "x: *nowhere\n", r"model\.yml:\d+: invalid YAML: found undefined alias 'nowhere'"),
    ("yaml-deep-flow-nesting", GOOD + "x: " + "[" * 5000 + "]" * 5000 + "\n",
     r"model\.yml:\d+: nesting deeper than 64 levels"),
    ("yaml-deep-block-nesting", GOOD + "x:\n" + "".join("  " * i + "- \n" for i in range(1, 90)),
     r"model\.yml:\d+: nesting deeper than 64 levels"),
    ("yaml-alias-nests-too-deep", _alias_depth(), r"model\.yml:\d+: alias \*x nests deeper than 64 levels"),
    ("yaml-integer-key", GOOD + "1: one\n", r"model\.yml:\d+: \(top level\): '1' \(int\) used as a key; expected text keys"),
    ("yaml-boolean-key", GOOD + "yes: true\n", r"model\.yml:\d+: .*\(bool\) used as a key; expected text keys"),
    ("yaml-null-key", GOOD + "~: x\n", r"model\.yml:\d+: .*\(null\) used as a key"),
    ("yaml-float-key-nested", GOOD.replace("  - name: a.bin", "  - 1.5: x\n    name: a.bin"),
     r"model\.yml:\d+: files\[0\]: '1\.5' \(float\) used as a key"),
    ("yaml-unhashable-list-key", GOOD + "? [a, b]\n: 1\n", r"model\.yml:\d+: \(top level\): a list used as a key"),
    ("yaml-unhashable-map-key", GOOD + "? {a: 1}\n: 1\n", r"model\.yml:\d+: \(top level\): a mapping used as a key"),
    ("yaml-merge-key", "base: &b {description: d}\n<<: *b\n" + GOOD.replace("description: d\n", ""),
     r"model\.yml:2: .*merge keys '<<' are not supported"),
    ("yaml-not-utf8", GOOD.encode() + b"# caf\xe9\n", r"model\.yml:\d+: model\.yml is not UTF-8 text \(byte 0xe9\)"),
    ("yaml-utf16", GOOD.encode("utf-16"), r"model\.yml:1: model\.yml is not UTF-8 text"),
    ("yaml-nul-byte", GOOD + "x: a\x00b\n", r"model\.yml:\d+: invalid YAML: character U\+0000 is not allowed"),
    ("yaml-control-char", GOOD + "x: a\x1bb\n", r"model\.yml:\d+: invalid YAML: character U\+001B is not allowed"),
    ("yaml-tab-indent", HEAD + "files:\n\t- name: a.bin\n", r"model\.yml:\d+: invalid YAML: .*'\\t'"),
    ("yaml-garbage", "}}}{{{ ::: ]]]\n", r"model\.yml:1: invalid YAML: "),
    ("yaml-unclosed-flow", HEAD + "files: [{name: a.bin\n", r"model\.yml:\d+: invalid YAML: .*expected ',' or"),
    ("yaml-two-documents", GOOD + "---\n" + GOOD, r"model\.yml:\d+: invalid YAML: expected a single document"),
    ("yaml-duplicate-key", GOOD + "framework: mxnet\n", r"model\.yml:\d+: framework: duplicate key \(first given on line 3\)"),
    ("yaml-python-tag", GOOD + "x: !!python/object/apply:os.system [echo]\n",
     r"model\.yml:\d+: x: unsupported YAML type '!!python/object/apply:os\.system'"),
    ("yaml-custom-tag", GOOD + "x: !secret abc\n", r"model\.yml:\d+: x: unsupported YAML type '!secret'"),
    ("yaml-binary-tag", GOOD + "x: !!binary aGVsbG8=\n", r"model\.yml:\d+: x: unsupported YAML type '!!binary'"),
    ("yaml-set-value", GOOD + "x: !!set {a, b}\n", r"model\.yml:\d+: x: unsupported YAML type '!!set'"),
    ("yaml-timestamp-description", GOOD.replace("description: d", "description: 2021-01-01"),
     r"model\.yml:1: description: unsupported YAML type '!!timestamp'"),
    ("yaml-infinite-number", GOOD + "conversion: {symbol: s, params: p, mean_values: [.inf], inputs: []}\n",
     r"model\.yml:\d+: '\.inf' is not a finite number"),
    ("yaml-nan-number", GOOD + "x: .NaN\n", r"model\.yml:\d+: '\.NaN' is not a finite number"),
    ("yaml-giant-integer", _with_file(size="9" * 5000), r"model\.yml:\d+: integer '9+\.\.\. is longer than 40 characters"),
    ("yaml-too-many-values", GOOD + "x: [" + "0," * 30000 + "0]\n",
     r"model\.yml:\d+: more than 20,000 values in one document"),
    ("yaml-over-1mib", GOOD + "# " + "x" * (1 << 20) + "\n", r"model\.yml: model\.yml is larger than the 1,048,576-byte limit"),
    # schema level: the field, its line and what was expected
    ("schema-unknown-key", GOOD + "colour: blue\n", r"model\.yml:10: colour: unknown key 'colour' \(allowed: .*\)"),
    ("schema-missing-files", HEAD, r"model\.yml:1: \(top level\): 'files' is required"),
    ("schema-files-empty", HEAD + "files: []\n", r"model\.yml:5: files: expected at least 1 item, found a list of 0"),
    ("schema-files-not-list", HEAD + "files: {a: 1}\n", r"model\.yml:5: files: expected a list, found a mapping"),
    ("schema-missing-sha256", _with_file(sha256=None), r"files\[0\]: 'sha256' is required"),
    ("schema-uppercase-sha256", _with_file(sha256="A" * 64), r"files\[0\]\.sha256: expected 64 lowercase hex digits"),
    ("schema-negative-size", _with_file(size="-1"), r"files\[0\]\.size: expected a number >= 0, found the number -1"),
    ("schema-size-as-text", _with_file(size="three"), r"files\[0\]\.size: expected an integer, found the text 'three'"),
    ("schema-size-over-1tib", _with_file(size=str(1 << 41)), r"files\[0\]\.size: expected a number <= 1099511627776"),
    ("schema-size-float", _with_file(size="3.0"), r"files\[0\]\.size: expected an integer, found the number 3\.0"),
    ("schema-name-dotdot", _with_file(name="../escape.bin"), r"files\[0\]\.name: expected a relative path inside"),
    ("schema-name-absolute", _with_file(name="/etc/passwd"), r"files\[0\]\.name: expected a relative path inside"),
    ("schema-name-backslash", _with_file(name="'a\\\\b'"), r"files\[0\]\.name: expected a relative path inside"),
    ("schema-ftp-source", _with_file(sources="[ftp://example.invalid/a.bin]"),
     r"files\[0\]\.sources\[0\]: expected an http\(s\):// URL or \{\$type: google_drive, id: \.\.\.\}, found the text 'ftp:"),
    ("schema-source-with-space", _with_file(sources="['https://example.invalid/a b']"),
     r"files\[0\]\.sources\[0\]: expected an http\(s\):// URL .*found the text 'https://example\.invalid/a b'"),
    ("schema-drive-bad-id", _with_file(sources="[{$type: google_drive, id: 'a/b'}]"),
     r"files\[0\]\.sources\[0\]: expected an http\(s\):// URL or \{\$type: google_drive"),
    ("schema-unparsable-url", _with_file(sources="['https://[bad/a.bin']"),
     r"files\[0\]\.sources\[0\]: not a usable URL \(Invalid IPv6 URL\)"),
    ("schema-license-bad-port", GOOD.replace("example.invalid/L", "example.invalid:123456/L"),
     r"model\.yml:4: license: not a usable URL \(Port out of range"),
    ("schema-duplicate-file", HEAD + "files:\n" + FILE + FILE, r"files\[1\]\.name: 'a\.bin' is listed twice"),
    ("schema-unlisted-archive", GOOD + "postprocessing: [{$type: unpack_archive, file: b.zip}]\n",
     r"postprocessing\[0\]\.file: 'b\.zip' is not one of the files"),
    ("schema-bad-task-type", GOOD.replace("task_type: detection", "task_type: magic"),
     r"model\.yml:2: task_type: expected one of detection, face_recognition, found the text 'magic'"),
    ("schema-bad-precision", GOOD + "precisions: [FP64]\n", r"precisions\[0\]: expected one of FP32, FP16"),
    ("schema-blank-description", GOOD.replace("description: d", "description: '   '"),
     r"model\.yml:1: description: expected a non-empty description"),
    ("schema-huge-list-description", GOOD.replace("description: d", "description: [" + "1, " * 5000 + "1]"),
     r"model\.yml:1: description: expected a non-empty description, found a list of 5001$"),
    ("schema-two-line-unavailable", GOOD + "original_unavailable: \"gone\\nreally\"\n",
     r"original_unavailable: expected one non-empty line"),
    ("schema-zero-shape", GOOD + "conversion: {symbol: s, params: p, inputs: [{name: data, shape: [1, 0], "
     "layout: NCHW, color_order: RGB}]}\n", r"conversion\.inputs\[0\]\.shape\[1\]: expected a number >= 1"),
    ("schema-giant-shape", GOOD + "conversion: {symbol: s, params: p, inputs: [{name: data, shape: [1, 3, 100000, 100000], "
     "layout: NCHW, color_order: RGB}]}\n", r"conversion\.inputs\[0\]\.shape\[2\]: expected a number <= 65536"),
    # issue 12: GitHub sources must be pinned to a commit or be release assets
    ("pin-raw-master", _with_file(sources="[https://raw.githubusercontent.com/o/r/master/a.bin]"),
     r"files\[0\]\.sources\[0\]: GitHub URL points at the movable ref 'master'; expected .*40-hex commit"),
    ("pin-raw-short-sha", _with_file(sources="[https://raw.githubusercontent.com/o/r/4df0685/a.bin]"),
     r"GitHub URL points at the movable ref '4df0685'"),
    ("pin-github-raw-main", _with_file(sources="[https://github.com/o/r/raw/main/a.bin]"),
     r"GitHub URL points at the movable ref 'main'"),
    ("pin-github-blob", _with_file(sources=f"[https://github.com/o/r/blob/{PIN}/a.bin]"),
     r"GitHub URL points at the movable ref '0123"),
    ("pin-latest-release", _with_file(sources="[https://github.com/o/r/releases/latest/download/a.bin]"),
     r"GitHub URL is not a pinned file URL"),
    ("pin-raw-refs-heads", _with_file(sources=f"[https://raw.githubusercontent.com/o/r/refs/heads/{PIN}/a.bin]"),
     r"GitHub URL points at the movable ref 'refs'"),
]


def _model_yml(content: str | bytes):
    def setup(ctx):
        ctx.write("models/public/m/model.yml", content)
        ctx.write("models/public/m/m.md", "# m\n")
    return setup


def _device(path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))


def _tree(**kinds):
    """A registry folder under models/: 'path': text (a file), or one of the special kinds."""
    def setup(ctx):
        (ctx.root / "models").mkdir(exist_ok=True)
        for rel, what in kinds.items():
            path = ctx.path("models", *rel.split("__"))
            path.parent.mkdir(parents=True, exist_ok=True)
            if what == "fifo":
                os.mkfifo(path)
            elif what == "device":
                _device(path)
            elif what == "dir":
                path.mkdir()
            elif what.startswith("->"):
                os.symlink(what[2:], path)
            else:
                path.write_text(what)
    return setup


# (id, registry layout for _tree, regex); argv is --all --models_dir models
TREE_ROWS = [
    ("tree-model-yml-fifo", {"public__m__model.yml": "fifo", "public__m__m.md": "# m\n"},
     r"models/public/m/model\.yml: model\.yml must be a regular file, found a FIFO"),
    ("tree-model-yml-device", {"public__m__model.yml": "device", "public__m__m.md": "# m\n"},
     r"models/public/m/model\.yml: model\.yml must be a regular file, found a device"),
    ("tree-model-yml-directory", {"public__m__model.yml": "dir", "public__m__m.md": "# m\n"},
     r"models/public/m/model\.yml: model\.yml must be a regular file, found a directory"),
    ("tree-model-yml-symlink-loop", {"public__m__model.yml": "->model.yml", "public__m__m.md": "# m\n"},
     r"models/public/m/model\.yml: model\.yml cannot be read \(Too many levels of symbolic links\)"),
    ("tree-model-yml-dangling-link", {"public__m__model.yml": "->gone.yml", "public__m__m.md": "# m\n"},
     r"models/public/m/model\.yml: model\.yml not found"),
    ("tree-card-missing", {"public__m__model.yml": GOOD}, r"models/public/m/m\.md: model card not found"),
    ("tree-card-fifo", {"public__m__model.yml": GOOD, "public__m__m.md": "fifo"},
     r"models/public/m/m\.md: model card must be a regular file, found a FIFO"),
    ("tree-bad-model-name", {"public__-m x__model.yml": GOOD, "public__-m x__-m x.md": "# m\n"},
     r"models/public/-m x: '-m x' is not a model name; expected a folder name of letters"),
    ("tree-two-models-one-name", {"public__m__model.yml": GOOD, "public__m__m.md": "# m\n",
                                  "intel__m__model.yml": GOOD, "intel__m__m.md": "# m\n"},
     r"models/public/m/model\.yml: duplicate model name 'm' \(also .*models/intel/m/model\.yml\)"),
    ("tree-no-models", {"public__readme.txt": "nothing here\n"},
     r"models: no models found; expected <group>/<model>/model\.yml"),
    ("tree-folder-symlink-loop", {"public__loop": "->..", "public__deeper__again": "->../.."},
     r"models: no models found"),
]

# (id, command, argv, setup or None, regex): the selection options themselves
MODELS = ["--models_dir", "models"]
OPTION_ROWS = [
    ("list-fifo", "omz_info_dumper", ["--list", "l.txt"], lambda c: os.mkfifo(c.path("l.txt")),
     r"l\.txt: model list must be a regular file, found a FIFO"),
    ("list-device", "omz_info_dumper", ["--list", "l.txt"], lambda c: _device(c.path("l.txt")),
     r"l\.txt: model list must be a regular file, found a device"),
    ("list-directory", "omz_info_dumper", ["--list", "l.txt"], lambda c: c.path("l.txt").mkdir(),
     r"l\.txt: model list must be a regular file, found a directory"),
    ("list-missing", "omz_info_dumper", ["--list", "l.txt"], None, r"l\.txt: model list not found"),
    ("list-huge", "omz_info_dumper", ["--list", "l.txt"],
     lambda c: c.write("l.txt", "retinaface-resnet50\n" * 60000), r"l\.txt: model list is larger than the 1,048,576-byte"),
    ("list-binary", "omz_info_dumper", ["--list", "l.txt"], lambda c: c.write("l.txt", bytes(range(256)) * 4),
     r"l\.txt:\d+: model list is not UTF-8 text"),
    ("list-empty", "omz_info_dumper", ["--list", "l.txt"], lambda c: c.write("l.txt", ""),
     r"l\.txt: the model list names no model; expected one model name or glob per line"),
    ("list-only-comments", "omz_info_dumper", ["--list", "l.txt"], lambda c: c.write("l.txt", "# a\n\n   # b\n"),
     r"l\.txt: the model list names no model"),
    ("list-glob-matches-nothing", "omz_info_dumper", ["--list", "l.txt"],
     lambda c: c.write("l.txt", "retinaface-resnet50\nzebra-*\n"), r"l\.txt:2: no model matches 'zebra-\*'"),
    ("list-two-names-one-line", "omz_info_dumper", ["--list", "l.txt"],
     lambda c: c.write("l.txt", "retinaface-resnet50 retinaface-mnet025-v1\n"),
     r"l\.txt:1: expected one model name or glob per line, found"),
    ("list-weird-pattern", "omz_info_dumper", ["--list", "l.txt"], lambda c: c.write("l.txt", "# ok\n$(rm)\n"),
     r"l\.txt:2: '\$\(rm\)' is not usable; expected a model name or glob"),
    ("list-empty-argument", "omz_info_dumper", ["--list", ""], None, r"argument --list: expected a path, found ''"),
    ("name-empty", "omz_info_dumper", ["--name", ""], None, r"--name: expected at least one model name or glob, found ''"),
    ("name-only-commas", "omz_info_dumper", ["--name", ",,"], None, r"--name: expected at least one model name or glob"),
    ("name-spaces-and-commas", "omz_info_dumper", ["--name", " , ,"], None, r"--name: expected at least one model"),
    ("name-shell-characters", "omz_info_dumper", ["--name", "a;b"], None, r"--name: 'a;b' is not usable; expected a model name or glob"),
    ("name-newline", "omz_info_dumper", ["--name", "retinaface-resnet50\nx"], None, r"--name: 'retinaface-resnet50\\nx' is not usable"),
    ("name-very-long", "omz_info_dumper", ["--name", "a" * 5000], None, r"--name: 'a+\.\.\. is not usable"),
    ("name-glob-matches-nothing", "omz_info_dumper", ["--name", "retinaface-*,zz?"], None, r"--name: no model matches 'zz\?'"),
    ("unknown-name", "omz_info_dumper", ["--name", "no-such-model"], None, r"--name: no model matches 'no-such-model'"),
    ("models-dir-missing", "omz_info_dumper", ["--all", *MODELS], None, r"models: the models directory does not exist"),
    ("models-dir-a-file", "omz_info_dumper", ["--all", *MODELS], lambda c: c.write("models", GOOD),
     r"models: the models directory must be a folder, found a regular file"),
    ("models-dir-fifo", "omz_info_dumper", ["--all", *MODELS], lambda c: os.mkfifo(c.path("models")),
     r"models: the models directory must be a folder, found a FIFO"),
    ("models-dir-device", "omz_info_dumper", ["--print_all", *MODELS], lambda c: _device(c.path("models")),
     r"models: the models directory must be a folder, found a device"),
    ("models-dir-empty-folder", "omz_info_dumper", ["--print_all", *MODELS], lambda c: c.path("models").mkdir(),
     r"models: no models found"),
    ("models-dir-empty-argument", "omz_info_dumper", ["--all", "--models_dir", ""], None,
     r"argument --models_dir: expected a path, found ''"),
    ("env-models-dir-fifo", "omz_info_dumper", ["--all"], lambda c: os.mkfifo(c.path("fifo")),
     r"fifo: the models directory must be a folder, found a FIFO"),
    # the same options through the other commands (they share registry/arguments.py)
    ("downloader-list-fifo", "omz_downloader", ["--list", "l.txt", "-o", "out"], lambda c: os.mkfifo(c.path("l.txt")),
     r"l\.txt: model list must be a regular file, found a FIFO"),
    ("downloader-name-commas", "omz_downloader", ["--name", ",", "-o", "out"], None,
     r"--name: expected at least one model name or glob"),
    ("downloader-alias-bomb", "omz_downloader", ["--all", *MODELS, "-o", "out"], _model_yml(_laughs(9)),
     r"model\.yml:\d+: aliases expand to more than 10,000 nodes"),
    ("converter-models-dir-file", "omz_converter", ["--all", *MODELS, "-o", "out"], lambda c: c.write("models", "x"),
     r"models: the models directory must be a folder, found a regular file"),
    ("converter-list-empty", "omz_converter", ["--list", "l.txt", "-o", "out"], lambda c: c.write("l.txt", "#\n"),
     r"l\.txt: the model list names no model"),
    ("converter-branch-url", "omz_converter", ["--all", *MODELS, "-o", "out"],
     _model_yml(_with_file(sources="[https://raw.githubusercontent.com/o/r/master/a.bin]")),
     r"GitHub URL points at the movable ref 'master'"),
]

_ALL = ["--all", *MODELS]
CASES = (
    [Case(i, "registry", "omz_info_dumper", lambda c: _ALL, rx, setup=_model_yml(text)) for i, text, rx in YAML_ROWS]
    + [Case(i, "registry", "omz_info_dumper", lambda c: _ALL, rx, setup=_tree(**kinds)) for i, kinds, rx in TREE_ROWS]
    + [Case(i, "registry", cmd, (lambda a: lambda c: a)(argv), rx, setup=setup,
            env={"FACEZOO_MODELS": lambda c: str(c.path("fifo"))} if i.startswith("env-") else {})
       for i, cmd, argv, setup, rx in OPTION_ROWS]
)
