"""A content-addressed store of verified files, shared between runs and output directories."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class Cache:
    """Files stored as <root>/sha256/<first two hex digits>/<sha256>; only verified content enters."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def entry(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def put(self, verified: Path, sha256: str) -> None:
        """Store a copy of a file already verified to have this sha256 (atomic: temp file, then rename)."""
        target = self.entry(sha256)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        try:
            try:
                os.unlink(tmp)
                os.link(verified, tmp)
            except OSError:
                shutil.copyfile(verified, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def evict(self, sha256: str) -> None:
        """Remove an entry found to be corrupt."""
        self.entry(sha256).unlink(missing_ok=True)
