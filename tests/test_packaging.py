"""What `pip install .` ships: the wheel built from this tree holds every package and data file.

The wheel is built once per session (with pip's build isolation, as `pip install .` does) from a
copy of the source tree without build leftovers, so a stale build/lib cannot hide a missing module.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "tools" / "facezoo"
LEFTOVERS = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "out", "*.egg-info", "__pycache__",
                                   ".pytest_cache", ".hypothesis", "*.pyc")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel --no-deps .` builds from the current tree."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(PROJECT, source, ignore=LEFTOVERS, symlinks=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
                           str(source)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (built,) = (work / "dist").glob("facezoo-*.whl")
    return built


@pytest.fixture(scope="module")
def names(wheel: Path) -> set[str]:
    return set(zipfile.ZipFile(wheel).namelist())


def _data(names: set[str]) -> set[str]:
    """The wheel's data files, as paths relative to the install prefix (share/facezoo/...)."""
    return {n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n}


def _source_files(root: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts)


def test_every_package_directory_is_in_the_wheel(names):
    packages = sorted({p.parent for p in _source_files(PACKAGE, "*.py")})
    assert packages, f"no Python files under {PACKAGE}"
    missing = [str(d.relative_to(PACKAGE.parent)) for d in packages
               if f"{d.relative_to(PACKAGE.parent).as_posix()}/__init__.py" not in names]
    assert not missing, f"package directories missing from the wheel (an __init__.py?): {missing}"


def test_every_file_of_the_package_is_in_the_wheel(names):
    """Modules and package data (the JSON Schemas) alike."""
    files = [p.relative_to(PACKAGE.parent).as_posix() for p in _source_files(PACKAGE)]
    missing = [f for f in files if f not in names]
    assert not missing, f"files of tools/facezoo missing from the wheel: {missing}"


@pytest.mark.parametrize("tree", ["models", "accuracy_configs"])
def test_registry_and_accuracy_configs_are_installed_under_share(names, tree):
    """Every model.yml, model card and accuracy-check.yml, and every dataset/accuracy config."""
    files = [p.relative_to(PROJECT).as_posix() for p in _source_files(PROJECT / tree)]
    assert files, f"nothing under {tree}/"
    shipped = _data(names)
    missing = [f for f in files if f"share/facezoo/{f}" not in shipped]
    assert not missing, f"{tree}/ files missing from the wheel's share/facezoo/: {missing}"


def test_every_module_of_the_installed_wheel_imports(wheel, tmp_path):
    """Installed alone (no source tree on the path), each module imports; only MXNet may be absent
    (mxnet_reference.py runs in the separate MXNet environment)."""
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                           "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    script = (
        "import importlib, pkgutil, sys\n"
        "import facezoo\n"
        f"assert facezoo.__file__.startswith({str(target)!r}), facezoo.__file__\n"
        "for m in pkgutil.walk_packages(facezoo.__path__, 'facezoo.'):\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if exc.name != 'mxnet':\n"
        "            sys.exit(f'{m.name}: {exc}')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI=true (set by .ci/run) runs the suite on the installed wheel")
def test_ci_tests_the_installed_wheel_not_the_source_tree():
    import facezoo
    where = Path(facezoo.__file__).resolve()
    assert "site-packages" in where.parts and PACKAGE not in where.parents, \
        f"the suite imported facezoo from {where}; .ci/run must test the installed wheel"
