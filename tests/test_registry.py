import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PROJECT, file_entry, write_model
from facezoo.registry import RegistryError, choose_models, load_registry
from facezoo.common.errors import FacezooError
from facezoo.registry.cli import build_parser, main as info_main
from facezoo.registry.loader import github_url_problem
from facezoo.registry.yamlsource import load_yaml_limited, parse_yaml_limited

GOOD = file_entry("a.bin", b"abc", ["https://example.invalid/a.bin"])


def test_builtin_registry_has_the_seven_models():
    names = [m.name for m in load_registry()]
    assert names == sorted([
        "retinaface-resnet50", "face-recognition-mobilefacenet-arcface", "retinaface-mnet025-v1",
        "retinaface-mnet025-v2", "mobileface-identification-v1", "mobileface-identification-v2",
        "mobileface-identification-v3"])
    for model in load_registry():
        assert model.card_path.is_file()
        assert all(re.fullmatch(r"[0-9a-f]{64}", f.sha256) for f in model.files)


def test_mission_models_match_the_issue():
    models = {m.name: m for m in load_registry()}
    r50 = models["retinaface-resnet50"]
    assert (r50.files[0].name, r50.files[0].size) == ("retinaface-R50.zip", 109631292)
    assert r50.files[0].sha256 == "d1099b1dba51996c5eb8a757e7f60052d78633d061c46e9108ef7dd5069af999"
    assert r50.files[0].sources[0].location.startswith("https://www.dropbox.com/s/53ftnlarhyrpkg2/")
    assert r50.conversion.inputs[0].shape == (1, 3, 640, 640)
    mfn = models["face-recognition-mobilefacenet-arcface"]
    assert mfn.files[0].size == 3911771 and mfn.conversion.outputs == ("fc1",)
    card = mfn.card_path.read_text()
    assert "128" in card and "`pre_fc1`,  shape" not in card
    assert "_stride16`, shape: `1,4,80,80" not in r50.card_path.read_text()


def test_info_dumper_prints_valid_json_for_all(capsys):
    assert info_main(["--all"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 7
    for entry in data:
        assert {"name", "description", "framework", "task_type", "license_url", "files", "precisions",
                "model_card"} <= set(entry)
        assert Path(entry["model_card"]).is_file()


def test_info_dumper_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "facezoo.registry.cli", "--name", "retinaface-mnet025-*"],
                         capture_output=True, text=True, check=True).stdout
    assert [m["name"] for m in json.loads(out)] == ["retinaface-mnet025-v1", "retinaface-mnet025-v2"]


def _error_for(tmp_path: Path, files=None, **extra) -> str:
    write_model(tmp_path, "m", files if files is not None else [GOOD], **extra)
    with pytest.raises(RegistryError) as info:
        load_registry(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_key_is_named_with_its_line(tmp_path):
    message = _error_for(tmp_path, colour="blue")
    assert "model.yml:" in message and "unknown key 'colour'" in message
    line = int(re.search(r"model\.yml:(\d+)", message).group(1))
    text = (tmp_path / "public/m/model.yml").read_text().splitlines()
    assert text[line - 1].startswith("colour")


def test_unknown_key_inside_a_file_entry(tmp_path):
    message = _error_for(tmp_path, files=[{**GOOD, "md5": "x"}])
    assert "files[0]" in message and "'md5'" in message


def test_missing_checksum(tmp_path):
    entry = dict(GOOD)
    del entry["sha256"]
    message = _error_for(tmp_path, files=[entry])
    assert "files[0]" in message and "'sha256' is required" in message


def test_malformed_checksum(tmp_path):
    message = _error_for(tmp_path, files=[{**GOOD, "sha256": "ABC"}])
    assert "files[0].sha256" in message and "64 lowercase hex" in message


@pytest.mark.parametrize("name", ["../evil.bin", "/etc/passwd", "a/../../b", "a\\b"])
def test_file_name_escaping_the_model_directory(tmp_path, name):
    message = _error_for(tmp_path, files=[{**GOOD, "name": name}])
    assert "files[0].name" in message and "relative path inside the model directory" in message


@pytest.mark.parametrize("url", ["ftp://example.com/a.bin", "file:///etc/passwd", "example.com/a"])
def test_bad_url_scheme(tmp_path, url):
    message = _error_for(tmp_path, files=[{**GOOD, "sources": [url]}])
    assert "files[0].sources[0]" in message and "http(s)" in message


def test_duplicate_model_name_across_subdirectories(tmp_path):
    write_model(tmp_path, "m", [GOOD])
    other = tmp_path / "intel" / "m"
    other.mkdir(parents=True)
    (other / "model.yml").write_text((tmp_path / "public/m/model.yml").read_text())
    (other / "m.md").write_text("# m\n")
    with pytest.raises(RegistryError, match="duplicate model name 'm'"):
        load_registry(tmp_path)


def test_duplicate_yaml_key(tmp_path):
    write_model(tmp_path, "m", [GOOD])
    path = tmp_path / "public/m/model.yml"
    path.write_text(path.read_text() + "framework: mxnet\n")
    with pytest.raises(RegistryError, match=r"model\.yml:\d+: framework: duplicate key"):
        load_registry(tmp_path)


def test_duplicate_file_and_unlisted_postprocessing(tmp_path):
    assert "listed twice" in _error_for(tmp_path, files=[GOOD, GOOD])
    message = _error_for(tmp_path, postprocessing=[{"$type": "unpack_archive", "file": "b.zip"}])
    assert "postprocessing[0].file" in message


def test_invalid_yaml_names_the_line(tmp_path):
    write_model(tmp_path, "m", [GOOD])
    (tmp_path / "public/m/model.yml").write_text("description: [unclosed\nfiles: 3\n")
    with pytest.raises(RegistryError, match=r"model\.yml:\d+: invalid YAML"):
        load_registry(tmp_path)


def test_missing_model_card(tmp_path):
    write_model(tmp_path, "m", [GOOD])
    (tmp_path / "public/m/m.md").unlink()
    with pytest.raises(RegistryError, match=r"public/m/m\.md: model card not found"):
        load_registry(tmp_path)


def test_info_dumper_rejects_bad_model_with_one_line(tmp_path):
    write_model(tmp_path, "m", [{**GOOD, "name": "../x"}])
    proc = subprocess.run([sys.executable, "-m", "facezoo.registry.cli", "--all", "--models_dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "files[0].name" in proc.stderr


def test_selection_by_globs_and_list_file(tmp_path):
    models = load_registry()
    assert [m.name for m in choose_models(models, "mobileface-*,retinaface-mnet025-v1")] == [
        "mobileface-identification-v1", "mobileface-identification-v2", "mobileface-identification-v3",
        "retinaface-mnet025-v1"]
    listing = tmp_path / "list.txt"
    listing.write_text("# detectors\nretinaface-mnet025-v2\n\nnot-a-model\n")
    with pytest.raises(RegistryError, match=r"list\.txt:4: no model matches 'not-a-model'"):
        choose_models(models, list_file=listing)


def test_setup_cfg_ships_every_model_directory():
    setup = (PROJECT / "setup.cfg").read_text()
    for model in load_registry():
        assert f"share/facezoo/models/{model.subdirectory} = models/{model.subdirectory}/*" in setup


def test_the_wheel_builds_and_ships_registry_and_accuracy_configs(tmp_path):
    """`pip install .` (the README's main command) builds this wheel: every data file must exist."""
    import zipfile
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(PROJECT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("facezoo-*.whl"))).namelist()
    shipped = {n.split("/data/", 1)[1] for n in names if "/data/share/" in n}
    for model in load_registry():
        assert f"share/facezoo/models/{model.subdirectory}/accuracy-check.yml" in shipped
    assert "share/facezoo/accuracy_configs/dataset_definitions.yml" in shipped
    assert any(n.endswith("evaluate/accuracy_check.schema.json") for n in names)


def test_original_unavailable_is_one_line_and_dumped(tmp_path, capsys):
    models = {m.name: m for m in load_registry()}
    for name in ("retinaface-resnet50", "face-recognition-mobilefacenet-arcface"):
        assert "2021" in models[name].original_unavailable
    assert models["mobileface-identification-v2"].original_unavailable is None
    assert info_main(["--name", "retinaface-resnet50,mobileface-identification-v2"]) == 0
    dumped = {m["name"]: m["original_unavailable"] for m in json.loads(capsys.readouterr().out)}
    assert dumped == {"retinaface-resnet50": models["retinaface-resnet50"].original_unavailable,
                      "mobileface-identification-v2": None}
    for bad in ("two\nlines", "   ", ""):
        message = _error_for(tmp_path, original_unavailable=bad)
        assert "original_unavailable" in message and "one non-empty line" in message


# --- issue 12: permanent sources -------------------------------------------------------------

PIN = "4df06858986f0cf5b5cb40e0cd8c4d2f1b99b728"


@pytest.mark.parametrize("url, pinned", [
    (f"https://raw.githubusercontent.com/o/r/{PIN}/dir/a.params", True),
    (f"https://github.com/o/r/raw/{PIN}/a.json", True),
    ("https://github.com/o/r/releases/download/v0.7/a.zip", True),
    ("https://example.com/master/a.bin", True),  # not GitHub: not this rule's business
    ("https://raw.githubusercontent.com/o/r/master/a.bin", False),
    ("https://raw.githubusercontent.com/o/r/main/a.bin", False),
    ("https://raw.githubusercontent.com/o/r/v1.0/a.bin", False),
    ("https://raw.githubusercontent.com/o/r/4df0685/a.bin", False),  # short sha: could become ambiguous
    (f"https://raw.githubusercontent.com/o/r/{PIN.upper()}/a.bin", False),
    (f"https://raw.githubusercontent.com/o/r/{PIN}/", False),
    ("https://github.com/o/r/raw/master/a.bin", False),
    (f"https://github.com/o/r/blob/{PIN}/a.bin", False),
    ("https://github.com/o/r/releases/latest/download/a.zip", False),
    ("https://github.com/o/r/archive/refs/heads/master.zip", False),
    ("https://codeload.github.com/o/r/zip/master", False),
])
def test_github_urls_must_be_pinned(url, pinned):
    assert (github_url_problem(url) is None) is pinned


@pytest.mark.parametrize("url, expected", [
    ("https://[example.invalid/a.bin", "not a usable URL"),
    ("https://example.invalid:99999/a.bin", "not a usable URL"),
    ("https://:80/a.bin", "names no host"),
])
def test_unusable_urls(tmp_path, url, expected):
    assert expected in _error_for(tmp_path, files=[{**GOOD, "sources": [url]}])
    assert expected in _error_for(tmp_path / "license", license=url)


def test_builtin_sources_are_permanent():
    """Every GitHub source of the built-in registry is pinned to a commit or is a release asset."""
    github = [s.location for m in load_registry() for f in m.files for s in f.sources
              if s.kind == "http" and "github" in s.location]
    assert len(github) >= 10
    assert [u for u in github if github_url_problem(u)] == []
    v1 = {m.name: m for m in load_registry()}["mobileface-identification-v1"]
    # the V1 files upstream are gone from master (renamed, deleted): the pins keep the originals
    assert [s.location.rsplit("/", 1)[1] for f in v1.files for s in f.sources] == [
        "MobileFace_Identification_V1.json", "MobileFace_Identification_V1-0118.params"]


def test_branch_relative_source_is_refused_with_its_line(tmp_path):
    url = "https://raw.githubusercontent.com/becauseofAI/MobileFace/master/x.json"
    message = _error_for(tmp_path, files=[{**GOOD, "sources": ["https://example.invalid/a", url]}])
    assert re.search(r"model\.yml:\d+: files\[0\]\.sources\[1\]: GitHub URL points at the movable ref 'master'",
                     message)


# --- the hardened YAML reader ----------------------------------------------------------------

class OtherError(FacezooError):
    pass


def test_load_yaml_limited_returns_lines_and_uses_the_callers_error(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("a: &x {b: 1}\nc:\n  - *x\n  - d: [1, 2.5, true, null]\n")
    data, lines = load_yaml_limited(path, "config")
    assert data == {"a": {"b": 1}, "c": [{"b": 1}, {"d": [1, 2.5, True, None]}]}
    assert lines[("c", 1, "d")] == 4 and lines[("a",)] == 1
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(OtherError, match=r"c\.yml:2: a: duplicate key"):
        load_yaml_limited(path, "config", OtherError)
    path.write_text("x" * 101)
    with pytest.raises(OtherError, match=r"c\.yml: config is larger than the 100-byte limit"):
        load_yaml_limited(path, "config", OtherError, max_bytes=100)


@pytest.mark.parametrize("text, expected", [
    ("a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
     r":\d+: aliases expand to more than 10,000 nodes"),
    ("a: " + "{b: " * 70 + "1" + "}" * 70 + "\n", r":1: nesting deeper than 64 levels"),
    ("&a [*a]\n", r":1: alias \*a refers to a node that contains it"),
    ("- 0\n" * 30000, r":\d+: more than 20,000 values in one document"),
    ("? [a]\n: 1\n", r":1: \(top level\): a list used as a key"),
    ("1: a\n", r":1: \(top level\): '1' \(int\) used as a key"),
    ("a: 1\n---\nb: 2\n", r":\d+: invalid YAML: expected a single document"),
    ("", r":1: the file holds no YAML document"),
    ("a: !!python/name:os.system\n", r":1: a: unsupported YAML type"),
    ("a: .inf\n", r":1: '\.inf' is not a finite number"),
    ("a:\n\t- 1\n", r":2: invalid YAML: .*'\\t'"),
])
def test_yaml_limits(text, expected):
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"^x\.yml" + expected):
        parse_yaml_limited(text, "x.yml")
    assert time.monotonic() - started < 2


def test_model_yml_fifo_is_refused_without_blocking(tmp_path):
    write_model(tmp_path, "m", [GOOD])
    yml = tmp_path / "public/m/model.yml"
    yml.unlink()
    os.mkfifo(yml)
    with pytest.raises(RegistryError, match=r"model\.yml: model\.yml must be a regular file, found a FIFO"):
        load_registry(tmp_path)


def test_registry_scan_follows_folder_links_once(tmp_path):
    write_model(tmp_path, "m", [GOOD])
    (tmp_path / "public" / "loop").symlink_to(tmp_path)
    (tmp_path / "linked").symlink_to(tmp_path / "public")
    assert [m.name for m in load_registry(tmp_path)] == ["m"]


@pytest.mark.parametrize("names", ["", ",,", " , ", "a b", "$(x)", "a" * 200])
def test_bad_name_patterns(names):
    with pytest.raises(RegistryError, match=r"^--name: "):
        choose_models(load_registry(), names)


def test_every_selection_option_has_help():
    parser = build_parser()
    missing = [a.option_strings for a in parser._actions if a.option_strings and not a.help]
    assert missing == []
