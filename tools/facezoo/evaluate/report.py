"""Results as JSON text, CSV text and a folder with an HTML page and PR / ROC curves. Writing them
to their final paths (atomically, together) is run.py's job."""
from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from facezoo.common.safeio import signals_deferred

from .results import Evaluation
from .provenance import versions

ROC_FLOOR = 1e-4  # FAR axis floor of the ROC plot: a measured FAR of 0 is drawn there, and labelled so


def as_dict(ev: Evaluation) -> dict:
    """The JSON result."""
    return {
        "model": ev.model, "dataset": ev.dataset, "launcher": ev.launcher, "images": ev.images,
        "precision": ev.run.get("precision"), "model_file": ev.run.get("model_file"), "run": ev.run,
        "metrics": [{"name": m.name, "type": m.type, "value": m.value, "reference": m.reference,
                     "threshold": m.threshold, "passed": m.passed, **m.details} for m in ev.metrics],
        "timings": {k: round(v, 3) for k, v in ev.timings.items()}, "hashes": ev.hashes,
        "warnings": ev.warnings, "broken_images": [{"image": k if isinstance(k, str) else k[0], "error": e}
                                                   for k, e in ev.broken],
        "versions": ev.run.get("versions") or versions(),
    }


def json_text(ev: Evaluation) -> str:
    """The JSON result as text."""
    return json.dumps(as_dict(ev), indent=2) + "\n"


def csv_text(ev: Evaluation) -> str:
    """One CSV row per metric, each naming the model file and precision it measured."""
    out = io.StringIO(newline="")
    w = csv.writer(out)
    w.writerow(["model", "precision", "model_file", "dataset", "launcher", "metric", "value", "reference",
                "threshold", "passed"])
    for m in ev.metrics:
        w.writerow([ev.model, ev.run.get("precision", ""), ev.run.get("model_file", ""), ev.dataset, ev.launcher,
                    m.name, f"{m.value:.6f}", "" if m.reference is None else m.reference,
                    "" if m.threshold is None else m.threshold, "" if m.passed is None else m.passed])
    return out.getvalue()


def load_plotting():
    """matplotlib (Agg) imported with SIGINT/SIGTERM deferred. Call it before inference threads
    exist: a signal landing inside a C extension's import turns into an ImportError, and once
    other threads run, blocking signals in this one no longer keeps them out of the import."""
    with signals_deferred():
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.backends import backend_agg  # noqa: F401  (imported by the first savefig)
    return plt


def _plots(folder: Path, ev: Evaluation) -> list[str]:
    plt = load_plotting()
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
        ax.plot(np.maximum(roc["far"], ROC_FLOOR), roc["tar"])
        ax.set(xscale="log", xlabel=f"false accept rate (FAR = 0 drawn at {ROC_FLOOR:g})",
               ylabel="true accept rate", ylim=(0, 1.02), xlim=(ROC_FLOOR * 0.8, 1.0),
               title=f"{ev.model} on {ev.dataset}")
        ticks = [t for t in (ROC_FLOOR, 1e-3, 1e-2, 1e-1, 1.0) if t >= ROC_FLOOR]
        ax.set_xticks(ticks, [f"≤{ROC_FLOOR:g}" if t == ROC_FLOOR else f"{t:g}" for t in ticks])
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(folder / "roc.png", dpi=100)
        plt.close(fig)
        files.append("roc.png")
    return files


def _run_rows(run: dict) -> dict[str, str]:
    """What was measured, flattened for the HTML table."""
    rows = {k: v for k, v in run.items() if k not in ("versions", "cpu")}
    cpu = run.get("cpu") or {}
    if cpu:
        rows["cpu"] = f"{cpu.get('model', '')} ({cpu.get('usable_cores', '?')} cores; {' '.join(cpu.get('isa', []))})"
    return rows


def write_html(folder: Path, ev: Evaluation, config_text: str) -> Path:
    """`index.html` with what was measured (model file, precision, dataset, machine), the metrics,
    plots, the config, hashes, versions and timings, written into an existing `folder`."""
    folder = Path(folder)
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
<p>{ev.images} images, launcher: {e(ev.launcher)}, precision: {e(str(ev.run.get("precision", "")))}</p>
<h2>What was measured</h2><table>{table(_run_rows(ev.run))}</table>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>reference</th><th>threshold</th><th></th></tr>{rows}</table>
{''.join(f'<p><img src="{i}" alt="{i}"></p>' for i in images)}
<h2>Warnings</h2><ul>{''.join(f'<li>{e(w)}</li>' for w in ev.warnings) or '<li>none</li>'}</ul>
<h2>Broken images</h2><p>{len(ev.broken)}</p>
<h2>Hashes (sha256)</h2><table>{table(ev.hashes)}</table>
<h2>Timings (s)</h2><table>{table({k: round(v, 3) for k, v in ev.timings.items()})}</table>
<h2>Software</h2><table>{table(ev.run.get("versions") or versions())}</table>
<h2>Config</h2><pre>{e(config_text)}</pre></body></html>"""
    (folder / "index.html").write_text(page, encoding="utf-8")
    return folder / "index.html"
