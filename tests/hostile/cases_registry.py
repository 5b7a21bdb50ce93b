"""Hostile registry inputs: model.yml files and the model-selection options of every command."""
from __future__ import annotations

from harness import Case

MODEL_HEAD = "description: d\ntask_type: detection\nframework: mxnet\nlicense: https://example.invalid/L\n"


def _model(text: str):
    def setup(ctx):
        ctx.write("models/public/m/model.yml", text)
        ctx.write("models/public/m/m.md", "# m\n")
    return setup


CASES = [
    Case("yaml-not-a-mapping", "registry", "omz_info_dumper", lambda c: ["--all", "--models_dir", c.path("models")],
         r"model\.yml.*mapping", setup=_model("- a\n- b\n")),
    Case("unknown-name", "registry", "omz_info_dumper", lambda c: ["--name", "no-such-model"],
         r"--name: no model matches 'no-such-model'"),
]
