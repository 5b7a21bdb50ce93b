"""One model's quantization, start to end: convert first if needed, quantize, and put each INT8
IR with its record in place together, or nothing when the drop exceeds max_drop or the run stops."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from facezoo.common.safeio import signals_deferred
from facezoo.convert.staging import Staging
from facezoo.evaluate.dataset_files import sha256_of

from .errors import QuantizeError
from .quantize import Validation, ov, quantize
from .record import build_record, record_json, record_markdown
from .recipe import dataset_spec


def _adapter(plan) -> dict:
    launchers = [spec for spec in plan.config.launchers if spec.framework == "openvino"]
    if not launchers:
        raise QuantizeError(f"{plan.config.path}: no openvino launcher, so no adapter to evaluate an IR with")
    return launchers[0].adapter.options


def _failure(plan, outcome) -> str:
    """The one line of a run whose drop exceeds max_drop."""
    text = (f"omz_quantizer: error: {plan.model.name}: INT8 {plan.recipe.metric} {outcome.int8_metric:.4f} against "
            f"FP32 {outcome.fp32_metric:.4f}: a drop of {outcome.drop:.4f} remains, over max_drop {plan.max_drop}")
    if plan.mode == "ptq":
        text += " (mode ptq reverts nothing: try --mode accuracy_control, or ignore layers in the recipe)"
    elif outcome.reverted:
        shown = ", ".join(outcome.reverted[:8]) + (f" and {len(outcome.reverted) - 8} more"
                                                   if len(outcome.reverted) > 8 else "")
        text += f" after reverting {len(outcome.reverted)} operations to float ({shown})"
    else:
        text += " and accuracy control reverted nothing"
    return text + "; nothing written"


def quantize_and_write(plan, download_dir: Path, output_dir: Path, say: Callable[[str], None]) -> bool:
    """Quantize `plan`'s model and write its INT8 IRs and records; False (nothing written, the
    reason on stderr) when the drop exceeds max_drop."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    began = time.perf_counter()
    if plan.convert_first:
        from facezoo.convert.convert import convert_model

        say("no FP32 IR yet: converting the checkpoint first")
        convert_model(plan.model, download_dir, output_dir, ["FP32"])
    model = ov.Core().read_model(plan.xml)
    validation = Validation(plan.config, dataset_spec(plan.recipe, plan.config), _adapter(plan), plan.subsets,
                            plan.recipe.metric)
    outcome = quantize(model, plan.recipe, plan.subsets, validation, plan.max_drop, plan.mode, say)
    if outcome.drop > plan.max_drop + 1e-12:
        print(_failure(plan, outcome), file=sys.stderr, flush=True)
        return False
    source = {"xml": str(plan.xml.absolute()), "xml_sha256": sha256_of(plan.xml),
              "bin_sha256": sha256_of(plan.xml.with_suffix(".bin"))}
    with Staging(output_dir, "quantize") as staging:
        moves = []
        for precision, final in plan.outputs.items():
            staged = staging.dir / precision / final.name
            staged.parent.mkdir()
            ov.save_model(outcome.model, str(staged), compress_to_fp16=precision == "FP16-INT8")
            record = build_record(plan.model.name, precision, plan.recipe, plan.mode, plan.max_drop, plan.subsets,
                                  outcome, source, started, time.perf_counter() - began)
            staged.with_suffix(".quantization.json").write_text(record_json(record), encoding="utf-8")
            staged.with_suffix(".quantization.md").write_text(record_markdown(record), encoding="utf-8")
            moves += [(staged.with_suffix(ext), final.with_suffix(ext))
                      for ext in (".xml", ".bin", ".quantization.json", ".quantization.md")]
        with signals_deferred():  # an interrupt waits until the files are in place, all of them
            staging.commit(moves)
    say(f"{plan.recipe.metric}: FP32 {outcome.fp32_metric:.4f}, INT8 {outcome.int8_metric:.4f}, drop "
        f"{outcome.drop:.4f} (max_drop {plan.max_drop}); {len(outcome.kept_float)} operations kept in float")
    for final in plan.outputs.values():
        say(f"wrote {final}")
    return True
