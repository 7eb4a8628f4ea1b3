"""What every benchmark shares: the run's context, timing and the markdown helpers of the report."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

Scale = Literal["tiny", "quick", "full"]
"""tiny: the tests' smoke run (seconds); quick: development (under 3 minutes); full: BENCHMARKS.md."""

T = TypeVar("T")
V = TypeVar("V")
Result = dict[str, Any]


@dataclass
class Context:
    """One run of the benchmarks."""

    scale: Scale
    work: Path
    """A scratch folder for inputs and local stacks, removed after the run."""
    results: dict[str, Result] = field(default_factory=dict)
    """The results of the benchmarks that ran before, by name."""
    began: float = field(default_factory=time.monotonic)

    def pick(self, *, tiny: T, quick: T, full: T) -> T:
        """The value for this run's scale (input sizes, repeats)."""
        return {"tiny": tiny, "quick": quick, "full": full}[self.scale]

    @property
    def repeats(self) -> int:
        """How many times each timing is taken; reports give the median."""
        return self.pick(tiny=1, quick=2, full=3)

    def progress(self, text: str) -> None:
        """A line on stderr with the time since the run began (long benchmarks say what they do)."""
        print(f"[{time.monotonic() - self.began:7.1f} s] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Benchmark:
    name: str
    """The key of its result in the JSON and its `--only` name."""
    title: str
    run: Callable[[Context], Result]
    render: Callable[[Result], str]
    """Its section of BENCHMARKS.md (markdown, without the title)."""


def median_of(samples: Iterable[float]) -> float:
    return statistics.median(list(samples))


def timed(work: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock seconds of `work()`, and what it returned."""
    began = time.perf_counter()
    value = work()
    return time.perf_counter() - began, value


def cpu_timed(work: Callable[[], T]) -> tuple[float, T]:
    """CPU seconds this process spent in `work()` (all threads), and what it returned."""
    began = time.process_time()
    value = work()
    return time.process_time() - began, value


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


# --- the report's markdown -------------------------------------------------------------------------


def largest_first(items: Mapping[str, V], key: Callable[[V], float] = float) -> list[tuple[str, V]]:
    """`items` by `key(value)`, largest first, ties by name: so that a report never depends on the
    order saved results keep their keys in."""
    return sorted(items.items(), key=lambda item: (-key(item[1]), item[0]))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return number(value)
    return str(value).replace("|", "\\|")


def number(value: float, digits: int = 3) -> str:
    """A figure with `digits` significant digits, thousands separated (12,300 / 0.0123)."""
    if value == 0:
        return "0"
    magnitude = len(str(int(abs(value)))) if abs(value) >= 1 else 0
    decimals = max(digits - magnitude, 0)
    return f"{value:,.{decimals}f}"


def verdict(met: bool) -> str:
    """How a target reads in the tables: plainly met, or missed in bold."""
    return "met" if met else "**missed**"


def ratio(measured: float, reference: float) -> str:
    return f"{measured / reference:.2f}×" if reference else "n/a"


def note_lines(notes: Mapping[str, str] | Sequence[str]) -> str:
    items = notes.values() if isinstance(notes, Mapping) else notes
    return "\n".join(f"- {text}" for text in items)
