"""A content-addressed store of verified files, shared between runs and output directories."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from facezoo.common.safeio import atomic_output, sweep_stale_temps

from .workdir import check_owned, kind, lstat_or_none, open_owned_read, owned_dir
from .errors import UnsafePath


class Cache:
    """Files stored as <root>/sha256/<first two hex digits>/<sha256>; only verified content enters.
    Entries are private copies (one link each): a symbolic or hard link found there was planted and
    stops the run."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def entry(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def open_entry(self, sha256: str) -> int | None:
        """A read descriptor on the entry, None when there is none."""
        folder = self.entry(sha256).parent
        for path in (folder.parent, folder):
            st = lstat_or_none(path)
            if st is None:
                return None
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePath(f"{path}: found {kind(st.st_mode)} inside the cache where a folder belongs; "
                                 f"refusing to follow it (remove it and run again)")
        return open_owned_read(self.entry(sha256))

    def put(self, verified_fd: int, sha256: str) -> None:
        """Store a copy of an open file already verified to have this sha256 (temp file, then rename)."""
        target = self.entry(sha256)
        folder = owned_dir(self.root, "sha256", sha256[:2])
        sweep_stale_temps(folder)
        st = lstat_or_none(target)
        if st is not None:
            check_owned(target, st)
            return
        with open(os.dup(verified_fd), "rb") as src, atomic_output(target, "wb") as dst:
            src.seek(0)
            shutil.copyfileobj(src, dst, 1 << 20)

    def evict(self, sha256: str) -> None:
        """Remove an entry found to be corrupt (the name only: a link is never followed)."""
        try:
            os.unlink(self.entry(sha256))
        except FileNotFoundError:
            pass
