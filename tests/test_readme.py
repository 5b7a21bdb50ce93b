"""The README's walk-through runs verbatim.

A ```bash block whose previous line is `<!-- walkthrough -->` is part of the walk-through. The
blocks run in README order, in one bash with `set -euo pipefail`, at the root of a fresh `git clone`
of the project (tracked files only, with the working tree's uncommitted changes to them applied, so
untracked files cannot help) placed beside a `shared` link to the real ../shared. The first failing
block is named with its heading. A bare facezoo command (without `.venv/bin/`) fails, and no facezoo
variable is inherited, so a README step that forgets the prefix or an `export` fails here too.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from test_cli_help import SCRIPTS, parser_options

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
README = PROJECT / "README.md"
MARKER = "<!-- walkthrough -->"
INHERITED_VARIABLES = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "FACEZOO_MXNET_PYTHON", "FACEZOO_MODELS",
                       "FACEZOO_DATASET_DEFINITIONS", "OMZ_MIRROR")


@dataclass(frozen=True)
class Block:
    """A ```bash block of the README: the heading it sits under, its first line number, its text."""
    heading: str
    line: int
    text: str
    walkthrough: bool

    @property
    def name(self) -> str:
        return f"README.md:{self.line} ({self.heading})"


def bash_blocks(markdown: str) -> list[Block]:
    """Every ```bash block, in order; `walkthrough` when the line before its fence is MARKER."""
    lines = markdown.splitlines()
    blocks, heading, i = [], "top", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        if line.strip() == MARKER and not (i + 1 < len(lines) and lines[i + 1].strip() == "```bash"):
            raise ValueError(f"README.md:{i + 1}: {MARKER} must be followed by a ```bash fence")
        if line.strip().startswith("```") and line.strip() != "```":
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ValueError(f"README.md:{i + 1}: unterminated code fence")
            if line.strip() == "```bash":
                marked = i > 0 and lines[i - 1].strip() == MARKER
                blocks.append(Block(heading, i + 2, "\n".join(lines[i + 1:end]) + "\n", marked))
            i = end
        i += 1
    return blocks


def run_blocks(blocks: list[Block], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, Block | None]:
    """Run the blocks in one `bash -euo pipefail`; the exit status, the output and the failing block."""
    state = cwd.parent / "walkthrough-block"
    parts = ["set -euo pipefail"]
    for index, block in enumerate(blocks):
        parts.append(f"echo {index} > {shlex.quote(str(state))}")
        parts.append(f"echo {shlex.quote('>>> ' + block.name)}")
        parts.append(block.text)
    parts.append(f"echo done > {shlex.quote(str(state))}")
    proc = subprocess.run(["bash", "-c", "\n".join(parts)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    reached = state.read_text().strip() if state.exists() else ""
    failed = blocks[int(reached)] if proc.returncode != 0 and reached.isdigit() else None
    return proc.returncode, proc.stdout, failed


def clean_environment(shadow: Path) -> dict[str, str]:
    """os.environ without facezoo variables, and PATH led by `shadow`, a new folder where each facezoo
    command, called without its .venv/bin/ prefix, fails with a message saying so."""
    shadow.mkdir(parents=True, exist_ok=True)
    for name in SCRIPTS:
        script = shadow / name
        script.write_text(f"#!/bin/sh\necho 'README: {name} called without .venv/bin/' >&2\nexit 127\n")
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_VARIABLES}
    env["PATH"] = os.pathsep.join([str(shadow), env.get("PATH", "")])
    return env


def commands(text: str) -> list[list[str]]:
    """The simple commands of a bash block (continuations joined; split at && || ; |)."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        current: list[str] = []
        for word in words + [";"]:
            if word in ("&&", "||", ";", "|"):
                if current:
                    result.append(current)
                current = []
            else:
                current.append(word)
    return result


BLOCKS = bash_blocks(README.read_text(encoding="utf-8"))
WALKTHROUGH = [b for b in BLOCKS if b.walkthrough]


def test_the_walkthrough_has_every_step():
    text = "".join(b.text for b in WALKTHROUGH)
    for needed in ("omz_downloader", "omz_converter", "wider_val_dev", "mobileface-identification-v1",
                   "../shared/data/lfw", "--verify", "FACEZOO_MXNET_PYTHON", "python3 -m venv .venv-mxnet",
                   "omz_quantizer", "--precision FP32-INT8"):
        assert needed in text, f"the README walk-through lacks {needed!r}"


def test_the_top_commands_are_command_1_and_the_tests():
    """The top block holds exactly the two set-up-and-run commands, and the walk-through's first
    block is command 1 verbatim, so running the walk-through runs command 1."""
    top = [line for line in BLOCKS[0].text.splitlines() if line.strip() and not line.startswith("#")]
    assert len(top) == 2 and top[1] == "bash .ci/run", top
    assert WALKTHROUGH and WALKTHROUGH[0].text.strip() == top[0]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"line{b.line}")
def test_every_option_in_the_readme_exists(block):
    """Also in blocks that are shown and not run: each --option given to a facezoo command is one
    of that command's options, spelled out in full."""
    for words in commands(block.text):
        name = Path(words[0]).name
        if name not in SCRIPTS:
            continue
        known = {o for option in parser_options(name) for o in option["option"].split("/")}
        unknown = [w.split("=", 1)[0] for w in words[1:] if w.startswith("-") and w.split("=", 1)[0] not in known]
        assert not unknown, f"{block.name}: {name} has no option {', '.join(unknown)}"


def test_a_failing_block_stops_the_run_and_is_named(tmp_path):
    """The runner itself: a renamed flag fails its block, and nothing after it runs."""
    cwd = tmp_path / "clone"
    cwd.mkdir()
    blocks = [Block("one", 1, "touch first\n", True),
              Block("two", 2, "python3 -c 'import argparse; argparse.ArgumentParser().parse_args()' --renamed\n", True),
              Block("three", 3, "touch third\n", True)]
    status, output, failed = run_blocks(blocks, cwd, clean_environment(tmp_path / "bin"), timeout=60)
    assert status != 0 and failed is blocks[1], output
    assert (cwd / "first").exists() and not (cwd / "third").exists()


def test_a_bare_facezoo_command_fails(tmp_path):
    """Without the .venv/bin/ prefix, a README step fails even where facezoo is on PATH."""
    (tmp_path / "clone").mkdir()
    status, output, failed = run_blocks([Block("bare", 1, "omz_downloader --print_all\n", True)], tmp_path / "clone",
                                        clean_environment(tmp_path / "bin"), timeout=60)
    assert status == 127 and "without .venv/bin/" in output


def test_the_walkthrough_runs_from_a_fresh_clone(tmp_path):
    if not (SHARED / "data").is_dir():
        pytest.skip(f"real data {SHARED}/data is absent (../shared is provided beside the project in CI)")
    if not (PROJECT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("the walk-through runs in a fresh git clone: needs git and a git checkout")
    clone = tmp_path / "facezoo"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    diff = subprocess.run(["git", "-C", str(PROJECT), "diff", "HEAD", "--binary"], check=True,
                          capture_output=True).stdout
    if diff:
        subprocess.run(["git", "-C", str(clone), "apply", "--whitespace=nowarn"], input=diff, check=True)
    (tmp_path / "shared").symlink_to(SHARED)
    blocks = [b for b in bash_blocks((clone / "README.md").read_text(encoding="utf-8")) if b.walkthrough]
    status, output, failed = run_blocks(blocks, clone, clean_environment(tmp_path / "bin"), timeout=1200)
    where = f"block {failed.name}:\n{failed.text}" if failed else "after the last block"
    assert status == 0, f"the README walk-through failed (exit {status}) in {where}\n--- output ---\n{output[-6000:]}"
