"""The suite's schedule: the longest modules start first.

`make test` runs modules on three workers, a module whole on one (`--dist loadfile`, so a module's
local stack starts once). xdist hands out modules in the order it is given them, so a long module
given last ends the run alone while the other workers idle: a module that takes a minute or more
says about how long (`pytestmark = pytest.mark.long(seconds=…)`, measured with `--durations=0` on
a loaded machine), and those are handed out first, longest first (xdist's own reordering by test
count is off: `--no-loadscope-reorder`). Only the order changes, never what runs.
"""

from __future__ import annotations

import pytest


def _module_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("long")
    return 0.0 if marker is None else float(marker.kwargs["seconds"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A stable sort: the modules of equal weight, and each module's tests, keep their order.
    items.sort(key=lambda item: -_module_seconds(item))
