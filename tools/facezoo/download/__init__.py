"""The download stage: sources, resumable verified transfer, cache, safe unpacking."""
from .downloader import DownloadOptions, download_models
from .errors import Cancelled, DownloadError

__all__ = ["Cancelled", "DownloadError", "DownloadOptions", "download_models"]
