"""Results as JSON, CSV and an HTML page with PR / ROC curves."""
from __future__ import annotations

import csv
import html
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from .evaluator import Evaluation


def versions() -> dict[str, str]:
    """Versions of the software that produced a result."""
    out = {"python": platform.python_version()}
    for package in ("facezoo", "openvino", "onnxruntime", "numpy", "opencv-python-headless", "scipy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def as_dict(ev: Evaluation) -> dict:
    """The JSON result."""
    return {
        "model": ev.model, "dataset": ev.dataset, "launcher": ev.launcher, "images": ev.images,
        "metrics": [{"name": m.name, "type": m.type, "value": m.value, "reference": m.reference,
                     "threshold": m.threshold, "passed": m.passed, **m.details} for m in ev.metrics],
        "timings": {k: round(v, 3) for k, v in ev.timings.items()}, "hashes": ev.hashes,
        "warnings": ev.warnings, "broken_images": [{"image": k if isinstance(k, str) else k[0], "error": e}
                                                   for k, e in ev.broken],
        "versions": versions(),
    }


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, ev: Evaluation) -> None:
    _atomic_write(path, lambda f: json.dump(as_dict(ev), f, indent=2))


def write_csv(path: Path, ev: Evaluation) -> None:
    def write(f):
        w = csv.writer(f)
        w.writerow(["model", "dataset", "launcher", "metric", "value", "reference", "threshold", "passed"])
        for m in ev.metrics:
            w.writerow([ev.model, ev.dataset, ev.launcher, m.name, f"{m.value:.6f}",
                        "" if m.reference is None else m.reference, "" if m.threshold is None else m.threshold,
                        "" if m.passed is None else m.passed])
    _atomic_write(path, write)


def _plots(folder: Path, ev: Evaluation) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    pr = {k: v for k, v in ev.curves.items() if "precision" in v}
    if pr:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for name, curve in pr.items():
            value = next(m.value for m in ev.metrics if m.name == name)
            keep = np.isfinite(curve["precision"])
            ax.plot(curve["recall"][keep], curve["precision"][keep], label=f"{name} AP={value:.4f}")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=f"{ev.model} on {ev.dataset}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(folder / "pr_curves.png", dpi=100)
        plt.close(fig)
        files.append("pr_curves.png")
    if "roc" in ev.curves:
        roc = ev.curves["roc"]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.plot(np.maximum(roc["far"], 1e-4), roc["tar"])
        ax.set(xscale="log", xlabel="false accept rate", ylabel="true accept rate", ylim=(0, 1.02),
               title=f"{ev.model} on {ev.dataset}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(folder / "roc.png", dpi=100)
        plt.close(fig)
        files.append("roc.png")
    return files


def write_html(folder: Path, ev: Evaluation, config_text: str) -> Path:
    """`index.html` with the metrics, plots, the config, hashes, versions and timings."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = _plots(folder, ev)
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(m.name)}</td><td>{m.value:.4f}</td><td>{'' if m.reference is None else m.reference}</td>"
        f"<td>{'' if m.threshold is None else m.threshold}</td>"
        f"<td>{'' if m.passed is None else ('ok' if m.passed else 'OUT OF RANGE')}</td></tr>" for m in ev.metrics)
    table = lambda d: "".join(f"<tr><td>{e(str(k))}</td><td><code>{e(str(v))}</code></td></tr>"  # noqa: E731
                              for k, v in d.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(ev.model)} on {e(ev.dataset)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:2px 8px;text-align:left}}</style>
</head><body><h1>{e(ev.model)} on {e(ev.dataset)}</h1>
<p>{ev.images} images, launcher: {e(ev.launcher)}</p>
<table><tr><th>metric</th><th>value</th><th>reference</th><th>threshold</th><th></th></tr>{rows}</table>
{''.join(f'<p><img src="{i}" alt="{i}"></p>' for i in images)}
<h2>Warnings</h2><ul>{''.join(f'<li>{e(w)}</li>' for w in ev.warnings) or '<li>none</li>'}</ul>
<h2>Broken images</h2><p>{len(ev.broken)}</p>
<h2>Hashes (sha256)</h2><table>{table(ev.hashes)}</table>
<h2>Timings (s)</h2><table>{table({k: round(v, 3) for k, v in ev.timings.items()})}</table>
<h2>Software</h2><table>{table(versions())}</table>
<h2>Config</h2><pre>{e(config_text)}</pre></body></html>"""
    _atomic_write(folder / "index.html", lambda f: f.write(page))
    return folder / "index.html"
