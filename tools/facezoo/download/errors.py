"""Error types of the download stage."""

from facezoo.common.errors import FacezooError


class DownloadError(FacezooError):
    """A user-visible download failure; the message is one line."""


class SourceError(Exception):
    """One source failed for one file. `transient` failures are worth another attempt."""

    def __init__(self, reason: str, transient: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after


class Cancelled(Exception):
    """The user interrupted the run (Ctrl-C or SIGTERM)."""


class UnsafePath(DownloadError):
    """Something the downloader did not make sits where it keeps its own files (a planted link,
    FIFO or device); the whole run stops, since every later file could meet the same."""
