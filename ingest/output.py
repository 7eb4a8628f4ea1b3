r"""How the commands print: tables and progress for people, JSON for programs, errors on stderr.

One rule for every command: with `--json`, stdout holds one JSON document and nothing else;
errors always go to stderr as `error: …`. Colour and live displays only on a terminal (`rich`
decides, and honours `NO_COLOR`); piped output is plain and its tables are never wrapped.

Whatever a stack holds is text of someone else's: a name, an S3 key, a message body, a line
`pulumi` printed. A terminal acts on control characters in it (ESC sequences clear the screen, set
the window title, make OSC 8 links that show one text and open another address; U+009B alone is a
CSI) and reorders text around bidi controls. So everything printed here for a person shows them
escaped (`\x1b`, `\x9b`, `\u202e`), and `--json` carries them as `\u` escapes:

- `for_people()` (entered by `ingest.cli.main` around every command) puts `TerminalSafe` on stdout
  and stderr: whatever a command writes, with `out.write`, `print` or `fail`, reaches the terminal
  with every control escaped but the line breaks it writes itself. A new command cannot forget it.
- `shown()` escapes a value completely, tab and newline included (in a cell they are data): the
  tables do it to every cell and header, and commands do it to a stack's value in a line of prose.
- `console()`'s rich console escapes the text of whatever it renders, its own styles aside, and
  drops any hyperlink from a style: no command makes one, so one is always markup from a stack.
- rich reads markup (`[link=URL]`, `[conceal]`) in a string given to a progress column or a status
  line, whatever the console says: `progress()` and `status()` give it `shown()` text instead (a
  file's name or a job's status shows as written), so a command builds its live displays with them.
- `escape_uncaught()` (`ingest.cli.main`) reports an exception no command caught, in any thread, as
  Python does but escaped: Python prints it after `for_people` has given stderr back.
- `to_json()` is what `print_json` writes: `json.dumps` escapes C0 itself; DEL, C1 and bidi
  controls it would leave raw (`ensure_ascii=False`) are written as `\u` escapes too.

A backslash is shown as itself: `\x1b` in a table may be ESC or those four characters, and
`--json` tells them apart. The bidi controls escaped are the embeddings, overrides and isolates
(U+202A–U+202E, U+2066–U+2069), which reorder the text that follows them ("Trojan Source",
CVE-2021-42574); the marks (U+200E, U+200F, U+061C) only lean neutral characters and are shown.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.segment import Segment
from rich.status import Status
from rich.table import Table
from rich.text import Text

from ingest.targets import TargetError

# Piped output is read by programs and `grep`: a table row must stay on one line, however wide.
UNWRAPPED_WIDTH = 100_000

_BIDI_CONTROLS = r"\u202a-\u202e\u2066-\u2069"
# C0 (tab and newline included), DEL, C1 and the bidi controls: what `shown` escapes.
_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
# The same less the newline: what a stream for people escapes (its line breaks are the command's own).
_CONTROL_BUT_NEWLINE = re.compile(rf"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
# What `json.dumps(…, ensure_ascii=False)` leaves raw of those (it escapes C0 itself).
_RAW_IN_JSON = re.compile(rf"[\x7f-\x9f{_BIDI_CONTROLS}]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    character = match.group()
    code = ord(character)
    return _SHORT.get(character) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def shown(value: Any) -> str:
    """A value from a stack as text for a person: None as nothing, a list or dict as JSON, and every
    control character (tab and newline too) and bidi control escaped."""
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
    return _CONTROL.sub(_escaped, text)


def _lines_shown(text: str) -> str:
    return _CONTROL_BUT_NEWLINE.sub(_escaped, text)


def to_json(value: Any) -> str:
    """`value` as one line of JSON, with no control character raw (DEL, C1 and bidi as `\\uXXXX`)."""
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


class TerminalSafe(io.TextIOBase):
    """A text stream for people: what is written reaches `raw` with every control character escaped
    but the newline (`print` and `out.write` lines keep their breaks; an ESC or a CR does not act)."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(_lines_shown(text))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.raw.encoding


@contextlib.contextmanager
def for_people(out: TextIO) -> Iterator[TextIO]:
    """`out` and `sys.stderr` as `TerminalSafe` streams while a command runs: every command's output
    goes through them (`ingest.cli.main`)."""
    with contextlib.redirect_stderr(_safe(sys.stderr)):
        yield _safe(out)


def _safe(stream: TextIO) -> TextIO:
    return stream if isinstance(stream, TerminalSafe) else TerminalSafe(stream)


def escape_uncaught() -> None:
    """Report an exception no command caught, in the main thread or another, as Python does (its
    traceback on stderr) with every control character escaped but the line breaks.

    Python reports an uncaught exception after `for_people` has given stderr back, on the raw
    stream, and its message may hold a stack's value (a key, a name, a line a library quoted)."""
    sys.excepthook = _report_uncaught
    threading.excepthook = _report_thread_failure


def _report_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    _report("".join(traceback.format_exception(kind, error, trace)))


def _report_thread_failure(failure: threading.ExceptHookArgs) -> None:
    # As `threading.excepthook` does: a thread ended by SystemExit ends quietly.
    if failure.exc_type is SystemExit:
        return
    name = failure.thread.name if failure.thread is not None else threading.get_ident()
    trace = traceback.format_exception(failure.exc_type, failure.exc_value, failure.exc_traceback)
    _report(f"Exception in thread {name}:\n" + "".join(trace))


def _report(text: str) -> None:
    if sys.stderr is None:  # pythonw, or a daemon with no stderr: nowhere to report, as Python
        return
    stream = _safe(sys.stderr)
    stream.write(text)
    stream.flush()


class _EscapingConsole(Console):
    """A rich console that escapes control characters in the text it renders (a value that reached a
    table, a progress bar or a status line unescaped), never in its own control codes (styles, cursor
    moves of live displays), which are separate segments. A style's hyperlink is dropped: no command
    makes one, so one is markup that came with a stack's text (`[link=URL]` in a name), and a
    terminal would show that text opening an address of someone else's choosing."""

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            text, style, control = segment
            if control:
                yield segment
                continue
            if style is not None and style.link:
                style = style.update_link(None)
            elif not _CONTROL_BUT_NEWLINE.search(text):
                yield segment
                continue
            yield Segment(_lines_shown(text), style)


def console(stream: TextIO | None = None) -> Console:
    """A rich console writing to `stream` (None: stdout as it is now); colour and live displays only on a terminal."""
    target = stream if stream is not None else sys.stdout
    # Rich writes its styles itself: to the stream under a `TerminalSafe`, which would escape them.
    if isinstance(target, TerminalSafe):
        target = target.raw
    terminal = target.isatty()
    # Cells are the user's data: `[b]` or `:smile:` in a name is text, never markup or an emoji.
    return _EscapingConsole(
        file=target,
        highlight=False,
        markup=False,
        emoji=False,
        width=None if terminal else UNWRAPPED_WIDTH,
        soft_wrap=not terminal,
    )


def progress(*columns: str | ProgressColumn, stream: TextIO) -> Progress:
    """A live progress display on `stream` (through `console`). A string is a column of plain text, a
    template of the task's fields (`"uploading {task.description}"`): what they hold is shown as
    written, never read as markup. A `TextColumn` is refused, as it reads markup by default."""
    if any(isinstance(column, TextColumn) for column in columns):
        raise TypeError("progress(): give a text column as its template string, never as a TextColumn")
    return _FittedProgress(
        *(_PlainTextColumn(column, markup=False) if isinstance(column, str) else column for column in columns),
        console=console(stream),
    )


# The narrowest bar drawn: a narrower one says little, so the columns after it are left out instead.
MIN_BAR_WIDTH = 10
# What rich's progress grid puts between two columns.
_COLUMN_GAP = 1


class _FittedProgress(Progress):
    """A progress display whose lines fit the terminal as it is at each refresh (it may be resized):
    rich would wrap a column that does not fit onto a second line, which its next frame then cuts
    (`0:…`, `ro…`). Here the columns show in their order as long as each fits whole, a bar counting
    `MIN_BAR_WIDTH`; the first that does not fit and those after it are left out, so a display lists
    its columns from the most to the least needed. The bar takes the room left, up to its own width.
    Only a first column that alone is wider than the terminal is cut, with an ellipsis."""

    def __init__(self, *columns: ProgressColumn, console: Console) -> None:
        self._screen = console  # rich renders a first frame before `self.console` can answer
        super().__init__(*columns, console=console)

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        rows = [[column(task) for column in self.columns] for task in tasks if task.visible]
        width = self._screen.width
        kept: list[int] = []
        used = 0
        for index, column in enumerate(self.columns):
            cells = [row[index] for row in rows]
            need = MIN_BAR_WIDTH if isinstance(column, BarColumn) else self._widest(cells)
            need += _COLUMN_GAP if kept else 0
            if kept and used + need > width:
                break
            kept.append(index)
            used += need
        room = max(width - used, 0)
        grid = Table.grid(padding=(0, _COLUMN_GAP))
        for index in kept:
            column = self.columns[index]
            if isinstance(column, BarColumn):
                most = MIN_BAR_WIDTH + room
                bar_width = most if column.bar_width is None else min(column.bar_width, most)
                grid.add_column(width=bar_width, no_wrap=True)
                for row in rows:
                    row[index].width = bar_width  # a ProgressBar: drawn this wide
            else:
                grid.add_column(no_wrap=True, overflow="ellipsis", max_width=width if index == kept[0] else None)
        for row in rows:
            grid.add_row(*(row[index] for index in kept))
        return grid

    def _widest(self, cells: list[RenderableType]) -> int:
        options = self._screen.options
        return max((Measurement.get(self._screen, options, cell).maximum for cell in cells), default=0)


class _PlainTextColumn(TextColumn):
    """A text column whose fields show as written: never markup, and `shown()` before rich measures
    the line (escaped only when printed, an ESC's four characters would be cut from the line's end)."""

    def render(self, task: Task) -> Text:
        return Text(shown(self.text_format.format(task=task)), style=self.style, justify=self.justify)


class _PlainStatus(Status):
    """A status line whose text, given or updated, is plain text (rich reads a string as markup)."""

    def update(self, status: RenderableType | None = None, **changes: Any) -> None:
        super().update(Text(shown(status)) if isinstance(status, str) else status, **changes)


def status(message: str, stream: TextIO) -> Status:
    """A status line with a spinner on `stream` (through `console`), while a `with` block runs; its
    text, and the text `update()` gives it, shown as written (`shown()`)."""
    return _PlainStatus(Text(shown(message)), console=console(stream))


def print_json(value: Any, out: TextIO) -> None:
    """One JSON document on one line (so it is also the output's last line), nothing else."""
    out.write(to_json(value) + "\n")
    out.flush()


def print_json_array(items: Iterable[Any], out: TextIO) -> None:
    """One JSON array on one line, written item by item: `list --all` never holds every user at once."""
    out.write("[")
    for number, item in enumerate(items):
        out.write((", " if number else "") + to_json(item))
    out.write("]\n")
    out.flush()


def command(*words: str) -> str:
    """`python -m ingest WORDS` as a line to paste in this directory, for a hint: this interpreter
    (relative to the working directory when it is under it, `.venv/bin/python`), so that the line runs
    as printed whether or not a virtual environment is active; each word quoted for a shell."""
    return shlex.join([_interpreter(), "-m", "ingest", *words])


def _interpreter() -> str:
    executable = Path(sys.executable)
    try:
        relative = executable.relative_to(Path.cwd())
    except ValueError:
        return str(executable)
    return str(relative) if relative.parent != Path() else f"./{relative}"


def fail(message: str, code: int = 2) -> int:
    """Print `error: message` to stderr and return the exit code. A stack's value in `message` goes
    in `shown()`; the rest keeps its line breaks (a function's traceback), nothing else raw."""
    print(f"error: {_lines_shown(message)}", file=sys.stderr)
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
    """An aligned table: a header and one line per row (None shows as an empty cell). Every header
    and cell is `shown()`, before it is measured, so that the escaped text keeps the columns aligned.

    On a terminal, rich draws it (bold header, wrapped to the terminal's width). Piped, its lines are
    rich's own, without the padding after the last column, laid out here: rich takes 0.45 ms a row to
    lay out what is only padding when nothing wraps, 20 s for a listing of 43,000 users."""
    headers = [shown(column) for column in columns]
    cells = [[shown(cell) for cell in row] for row in rows]
    printer = console(out)
    if printer.is_terminal or printer.color_system is not None:
        printer.print(_rich_table(headers, cells))
        return
    lines = _aligned(headers, cells)
    if lines is None:  # wider than a piped line: rich wraps it
        with printer.capture() as captured:
            printer.print(_rich_table(headers, cells))
        lines = [line.rstrip() for line in captured.get().splitlines()]
    out.write("".join(line + "\n" for line in lines))


def rich_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """The table `table()` prints, as a rich renderable: every header and cell `shown()`."""
    return _rich_table([shown(column) for column in columns], [[shown(cell) for cell in row] for row in rows])


def _rich_table(headers: Sequence[str], cells: Iterable[Sequence[str]]) -> Table:
    drawn = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for header in headers:
        drawn.add_column(Text(header))
    for row in cells:
        drawn.add_row(*(Text(cell) for cell in row))
    return drawn


# What separates two columns of `_rich_table`: the right padding of one, SIMPLE_HEAD's blank
# divider and the left padding of the next.
_COLUMN_SEPARATOR = "   "


def _aligned(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> list[str] | None:
    """`_rich_table`'s lines as rich prints them unwrapped, less their trailing blanks: the header,
    SIMPLE_HEAD's rule under it, a line per row, each column as wide as its widest cell (in terminal
    cells, as rich counts them). None when a line would be wider than a piped line."""
    widths = [cell_len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], cell_len(cell))
    total = sum(widths) + len(_COLUMN_SEPARATOR) * (len(widths) - 1)
    if total > UNWRAPPED_WIDTH:
        return None

    def line(row: Sequence[str]) -> str:
        padded = (cell + " " * (width - cell_len(cell)) for cell, width in zip(row, widths, strict=True))
        return _COLUMN_SEPARATOR.join(padded).rstrip()

    return [line(headers), "─" * total, *(line(row) for row in cells)]


def fields(record: dict[str, Any], order: Sequence[str], out: TextIO) -> None:
    """One record as `name  value` lines: `order`'s fields first (those present), then any others."""
    names = [name for name in order if name in record] + sorted(set(record) - set(order))
    table(["field", "value"], ([name, record[name]] for name in names), out)
