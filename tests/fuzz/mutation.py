"""Valid files mutated for the fuzzers: bytes flipped, the file cut, or a slice repeated."""
from __future__ import annotations

from hypothesis import strategies as st

mutations = st.lists(st.tuples(st.sampled_from(["flip", "cut", "splice"]), st.integers(0, 1 << 30),
                               st.integers(0, 255)), min_size=1, max_size=6)


def mutate(data: bytes, ops) -> bytes:
    """`data` with each (kind, position, value) of `ops` applied in turn."""
    out = bytearray(data)
    for kind, position, value in ops:
        if not out:
            break
        at = position % len(out)
        if kind == "flip":
            out[at] = value
        elif kind == "cut":
            del out[at:]
        else:  # splice: repeat a slice, lengthening the file
            out[at:at] = out[at:at + value]
    return bytes(out)
