"""A handler's cold start, with Python's cyclic garbage collector paused while the handler loads.

Loading a handler makes hundreds of thousands of objects that live as long as its execution
environment: botocore's service models and endpoint rules above all. The collector, which runs every
few hundred allocations, walks them again and again meanwhile: a quarter of the producer's import
(measured: 315 → 247 ms). Each handler's module imports this one first, which pauses the collector,
and calls `loaded()` once it has loaded: what it made is moved to the collector's permanent generation
(`gc.freeze`), which later collections skip, and the collector runs again as usual for what the
invocations allocate. This is the pattern Python's documentation gives for `gc.freeze`
(https://docs.python.org/3/library/gc.html#gc.freeze): disable early, freeze, enable.
"""

from __future__ import annotations

import gc

gc.disable()


def loaded() -> None:
    """The handler's module has loaded: keep what it made out of later collections, and collect again."""
    gc.freeze()
    gc.enable()
