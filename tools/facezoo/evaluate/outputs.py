"""accuracy_check's output paths: checked before any inference, written beside their targets while
the run goes on, and put in place together at the end (files renamed, folders swapped whole)."""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from facezoo.common.cli import on_interrupt
from facezoo.common.safeio import TEMP_PREFIX, OutputGroup, check_output_dir, check_output_file, make_temp_dir, \
    signals_deferred

from .errors import EvaluateError

MAX_SCAN = 100_000  # entries of an existing output folder looked at before refusing it
# what an existing output folder may hold to be replaced: what accuracy_check itself writes there
REPORT_FILES = {"index.html", "pr_curves.png", "roc.png"}


@dataclass(frozen=True)
class Output:
    """One output the command line asked for."""

    flag: str
    path: Path
    folder: bool = False


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _replaceable(output: Output) -> None:
    """An existing output folder is replaced whole: it may only hold what accuracy_check writes
    there (a report's files, or a submission's event folders of .txt files)."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(output.path):
        depth = len(Path(dirpath).relative_to(output.path).parts)
        for name in dirnames + filenames:
            seen += 1
            entry = Path(dirpath, name)
            if output.flag == "--report":
                fits = depth == 0 and name in REPORT_FILES and entry.is_file() and not entry.is_symlink()
            else:
                fits = (not entry.is_symlink() and ((depth == 0 and entry.is_dir())
                                                    or (depth == 1 and name.endswith(".txt") and entry.is_file())))
            if not fits or seen > MAX_SCAN:
                raise EvaluateError(f"{output.path}: {output.flag} is replaced whole, and it holds "
                                    f"{'more than ' + format(MAX_SCAN, ',') + ' entries' if fits else entry.name!r}, "
                                    f"which accuracy_check did not write; choose a new or empty folder")


def check_outputs(outputs: list[Output], inputs: list[Path], input_folders: list[Path]) -> None:
    """Refuse, before any work, an output that is an input of the run (a file, or a folder holding
    or inside one), a device, FIFO or other non-regular file, a directory where a file is expected,
    a path in a missing or unwritable folder, two outputs at one path, or a file inside an output
    folder (which is replaced whole)."""
    for out in outputs:
        if out.folder:
            check_output_dir(out.path, out.flag, inputs + input_folders, EvaluateError)
            if not out.path.parent.resolve().is_dir():
                raise EvaluateError(f"{out.path}: {out.flag}'s parent folder {out.path.parent} does not exist")
            if out.path.is_dir():
                _replaceable(out)
        else:
            check_output_file(out.path, out.flag, inputs, EvaluateError)
        for folder in input_folders:
            if _inside(out.path, folder):
                raise EvaluateError(f"{out.path}: {out.flag} is inside {folder}, an input folder of this run; "
                                    f"choose another path")
    for i, a in enumerate(outputs):
        for b in outputs[i + 1:]:
            if a.path.resolve() == b.path.resolve() or (a.folder and _inside(b.path, a.path)) or \
                    (b.folder and _inside(a.path, b.path)):
                raise EvaluateError(f"{b.path}: {b.flag} and {a.flag} collide ({a.path}); give them separate paths")


class Staging:
    """Outputs written beside their targets, put in place by `commit` with SIGINT/SIGTERM deferred,
    or removed by `discard` (also run on an interrupt)."""

    def __init__(self) -> None:
        self.files = OutputGroup()
        self._folders: list[tuple[Path, Path]] = []  # (staged folder, target)
        self._leftovers: list[Path] = []
        self._parents: set[Path] = set()  # folders where this process's temporaries may be
        self._forget = on_interrupt(self.discard)

    def _beside(self, path: Path) -> None:
        """Note the folder of `path` before anything is made there: an interrupt can land between
        a temporary's creation and its registration, and `discard` sweeps these folders too."""
        self._parents.add(Path(path).resolve().parent)

    def text(self, path: Path, text: str) -> None:
        self._beside(path)
        self.files.stage(path, text)

    def file(self, path: Path) -> Path:
        """A free temporary path beside `path` to write (e.g. stored predictions), renamed on commit."""
        self._beside(path)
        staged = self.files.reserve(path)
        staged.unlink()  # the writer creates it: an existing file would be read as stored predictions
        return staged

    def folder(self, target: Path) -> Path:
        """An empty temporary folder beside `target`, swapped in on commit."""
        target = Path(target)
        self._beside(target)
        staged = make_temp_dir(target.resolve().parent, target.name)
        os.chmod(staged, _folder_mode())  # mkdtemp's 0700 would otherwise become the output's mode
        self._folders.append((staged, target.resolve()))
        return staged

    def commit(self) -> None:
        with signals_deferred():
            self.files.commit()
            for staged, target in self._folders:
                if target.is_dir() and any(target.iterdir()):
                    aside = make_temp_dir(target.parent, f"old-{target.name}")
                    os.rename(target, aside / target.name)
                    self._leftovers.append(aside)
                os.replace(staged, target)
            self._folders.clear()
        self._remove_leftovers()
        self._forget()

    def discard(self) -> None:
        self.files.discard()
        for staged, _ in self._folders:
            shutil.rmtree(staged, ignore_errors=True)
        self._folders.clear()
        self._remove_leftovers()
        mine = f"{TEMP_PREFIX}{os.getpid()}-"
        for parent in self._parents:
            with contextlib.suppress(OSError):
                for entry in os.scandir(parent):
                    if entry.name.startswith(mine):
                        _remove(Path(entry.path))
        self._forget()

    def _remove_leftovers(self) -> None:
        for path in self._leftovers:
            shutil.rmtree(path, ignore_errors=True)
        self._leftovers.clear()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _folder_mode() -> int:
    """The mode `mkdir` gives a new folder under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask
