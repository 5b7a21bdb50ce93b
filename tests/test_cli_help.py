"""Every option of every console script has help text.

The console scripts are read from setup.cfg's entry points. Each is started in a subprocess whose
argparse stops at the first parse: the parser being parsed (and any sub-parsers) is described as
JSON instead, so the test sees exactly the parser the command builds, whatever its module calls it.
"""
from __future__ import annotations

import configparser
import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]

DUMP_PARSER = """
import argparse, importlib, json, os, sys

def describe(parser):
    options = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options += [dict(o, where=f"{name} {o['where']}".strip()) for o in describe(sub)]
            continue
        options.append({"where": "", "option": "/".join(action.option_strings) or action.dest,
                        "help": action.help})
    return options

def stop(self, args=None, namespace=None):
    sys.stdout.write(json.dumps(describe(self)))
    sys.stdout.flush()
    os._exit(0)

argparse.ArgumentParser.parse_known_args = stop
module, _, attr = sys.argv[1].partition(":")
sys.argv = [sys.argv[2]]
getattr(importlib.import_module(module), attr)()
"""


def console_scripts() -> dict[str, str]:
    """name -> 'module:function', from setup.cfg's [options.entry_points]."""
    config = configparser.ConfigParser()
    config.read(PROJECT / "setup.cfg")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict((part.strip() for part in line.split("=", 1)) for line in lines if line.strip())


SCRIPTS = console_scripts()


@functools.lru_cache(maxsize=None)
def parser_options(name: str) -> tuple[dict, ...]:
    """The options of console script `name`'s parser: {'where', 'option' ('-o/--output_dir'), 'help'}."""
    proc = subprocess.run([sys.executable, "-c", DUMP_PARSER, SCRIPTS[name], name], cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{name}: its parser could not be read: {proc.stderr[-2000:]}"
    return tuple(json.loads(proc.stdout))


def test_the_four_commands_are_console_scripts():
    assert {"omz_downloader", "omz_converter", "omz_info_dumper", "accuracy_check"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_option_has_help_text(name):
    options = parser_options(name)
    assert len(options) > 1, f"{name}: no options found"
    missing = [f"{o['where']} {o['option']}".strip() for o in options if not (o["help"] or "").strip()]
    assert not missing, f"{name}: options without help text: {', '.join(missing)}"
