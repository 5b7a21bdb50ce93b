"""facezoo: an Open Model Zoo style registry, downloader, converter and evaluator for face models."""

__version__ = "0.1.0"
