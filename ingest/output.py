"""How the commands print: tables and progress for people, JSON for programs, errors on stderr.

One rule for every command: with `--json`, stdout holds one JSON document and nothing else;
errors always go to stderr as `error: …`. Colour and live displays only on a terminal (`rich`
decides, and honours `NO_COLOR`); piped output is plain and its tables are never wrapped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ingest.targets import TargetError

# Piped output is read by programs and `grep`: a table row must stay on one line, however wide.
UNWRAPPED_WIDTH = 100_000


def console(stream: TextIO | None = None) -> Console:
    """A rich console writing to `stream` (None: stdout as it is now); colour and live displays only on a terminal."""
    target = stream if stream is not None else sys.stdout
    terminal = target.isatty()
    # Cells are the user's data: `[b]` or `:smile:` in a name is text, never markup or an emoji.
    return Console(
        file=target,
        highlight=False,
        markup=False,
        emoji=False,
        width=None if terminal else UNWRAPPED_WIDTH,
        soft_wrap=not terminal,
    )


def print_json(value: Any, out: TextIO) -> None:
    """One JSON document on one line (so it is also the output's last line), nothing else."""
    out.write(json.dumps(value, ensure_ascii=False) + "\n")
    out.flush()


def print_json_array(items: Iterable[Any], out: TextIO) -> None:
    """One JSON array on one line, written item by item: `list --all` never holds every user at once."""
    out.write("[")
    for number, item in enumerate(items):
        out.write((", " if number else "") + json.dumps(item, ensure_ascii=False))
    out.write("]\n")
    out.flush()


def fail(message: str, code: int = 2) -> int:
    """Print `error: message` to stderr and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def guarded(work: Callable[[], int], what: str) -> int:
    """Run a command's work; what stops it short becomes one `error: …` line and exit 2: a
    `TargetError` (no stack, no credentials, the API refusing), or an AWS error (named `what`)."""
    try:
        return work()
    except TargetError as error:
        return fail(str(error))
    except (ClientError, BotoCoreError) as error:
        return fail(f"{what}: {error}")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    """An aligned table: a header and one line per row (None shows as an empty cell)."""
    shown = Table(*columns, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for row in rows:
        shown.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    printer = console(out)
    if printer.is_terminal:
        printer.print(shown)
        return
    with printer.capture() as captured:  # piped: the same lines without the padding after the last column
        printer.print(shown)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def fields(record: dict[str, Any], order: Sequence[str], out: TextIO) -> None:
    """One record as `name  value` lines: `order`'s fields first (those present), then any others."""
    names = [name for name in order if name in record] + sorted(set(record) - set(order))
    table(["field", "value"], ([name, _cell(record[name])] for name in names), out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
