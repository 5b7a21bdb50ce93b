"""The line every benchmark prints first: date, CPU model, its instruction sets and usable cores
(these machines change between sessions, and a figure means nothing without them)."""
from __future__ import annotations

import datetime

from facezoo.evaluate.provenance import cpu


def machine_line() -> str:
    """'machine: <date>, <CPU model>, <n> usable cores, ISA <flags>'."""
    info = cpu()
    isa = " ".join(info["isa"]) or "none of the listed"
    return (f"machine: {datetime.date.today().isoformat()}, {info['model']} ({info['machine']}), "
            f"{info['usable_cores']} usable cores, ISA {isa}")
