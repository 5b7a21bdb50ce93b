"""The download stage: sources, resumable verified transfer, cache, safe unpacking."""
from .downloader import DownloadOptions, download_models
from .errors import Cancelled, DownloadError, UnsafePath
from .unpack import UnpackLimits

__all__ = ["Cancelled", "DownloadError", "DownloadOptions", "UnpackLimits", "UnsafePath", "download_models"]
