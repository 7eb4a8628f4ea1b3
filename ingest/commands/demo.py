"""`ingest demo`: the pipeline from end to end in about a minute, on this machine, then gone.

    python -m ingest demo [--rows N]
    python -m ingest demo --config-file PATH

Starts the dev stack in local mode inside this process, with dev's own settings, and does what a new
user would: upload the article's 10-row sample, an Excel export (semicolon-delimited, as a European
locale saves "CSV UTF-8": a byte order mark, CRLF, and headers such as `E-mail`) and a generated
file (with some invalid rows and repeated emails), follow the jobs, then look at the result with the
commands the README teaches (`get`, `job`, `list`, `rejects`, `jobs`), each command line printed
before what it prints. It ends with a summary and stops local mode, also on Ctrl-C, SIGTERM or an
error. Function logs go to the state folder's `logs/`, not the console.

With `--config-file PATH` (`make run CONFIG=PATH`) the demo runs the stack of that stack file instead,
of any schema (its name `Pulumi.<stack>.yaml` names it, as for `local up`), and uploads the CSV files
beside it (`examples/products/*.csv`), the samples a stack file of `examples/` comes with. It `get`s
the key of the samples' first valid row: read by the producer's own code against the stack's schema,
and shown in its normal form (what the API answers, and `list` prints anyway), never a cell as
uploaded nor one of a rejected row.

Nothing here is a second implementation: uploads go through `upload_file`/`wait_for_job`, the
queries through the commands' own `show_*` functions, the first valid row through the producer's.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from handlers.common.schema import Schema, Value, render
from infra.config import ConfigError
from ingest.commands.jobs import show_job, show_jobs
from ingest.commands.local import (
    EXIT_USAGE,
    STOP_TIMEOUT_SECONDS,
    owner_only_from_now,
    start_errors,
    start_interruptibly,
    stop_within,
)
from ingest.commands.rejects import show_rejects
from ingest.commands.upload import EXIT_TIMEOUT, JobTimeout, upload_file, wait_for_job
from ingest.commands.upload import render_summary as render_job_summary
from ingest.commands.users import show_item, show_items
from ingest.interrupts import EXIT_INTERRUPTED, INTERRUPTED, interrupt
from ingest.output import fail, guarded, shown
from ingest.targets import Target, add_config_file_option, local_target
from local.project import REPO_ROOT, stack_of_file
from local.state import STATE_ROOT

STACK = "dev"
SAMPLE = REPO_ROOT / "tests" / "data" / "users.csv"
# Its delimiter is detected from its header line, and its users have an e-mail domain of their own,
# so that `get` shows one of them read from it.
EXCEL_SAMPLE = REPO_ROOT / "tests" / "data" / "users-excel.csv"
EXCEL_USER = "zoe.lefevre@excel.example.com"
# Local mode writes about 280 rows a second on a 2-core machine (12,000 rows: 42 s measured): with
# start-up, the sample and the queries, the demo lasts about a minute.
DEFAULT_ROWS = 12_000
JOB_TIMEOUT_SECONDS = 600
# Lines of the rejects the demo shows (the header and the last line, the count, included).
REJECTS_LINES_SHOWN = 12
# The generated file's flaws, by row number n: every 10th row repeats the email of row n-5 (the later
# row wins: superseded), and three rules are broken on a few rows each (rejected, with a reason).
REPEAT_EVERY = 10
BAD_EMAIL_EVERY, BAD_EMAIL_AT = 50, 7
BAD_PHONE_EVERY, BAD_PHONE_AT = 50, 23
NO_NAME_EVERY, NO_NAME_AT = 100, 41

Query = tuple[str, Callable[[TextIO], int], int | None]
"""A query of the tour: its command line (after `python -m ingest`), what prints its answer, and at
most how many lines of it to show (None: all)."""


@dataclass(frozen=True)
class Uploaded:
    """One file of the demo and how its job ended."""

    label: str
    job: dict[str, Any]


@dataclass(frozen=True)
class Tour:
    """What the demo runs: the dev stack with the article's sample and a generated file (`samples`
    empty), or the stack of a stack file with the CSV files beside it."""

    stack: str
    config_file: Path | None = None
    samples: tuple[Path, ...] = ()

    @classmethod
    def of(cls, config_file: Path | None) -> Tour:
        """The tour `--config-file` asks for; `ConfigError` for a stack file the demo cannot run: one
        named otherwise than `Pulumi.<stack>.yaml`, absent, or with no CSV file beside it."""
        if config_file is None:
            return cls(STACK)
        stack = stack_of_file(config_file)
        if not config_file.is_file():
            raise ConfigError(f"{config_file}: no such stack file")
        samples = tuple(sorted(config_file.parent.glob("*.csv")))
        if not samples:
            raise ConfigError(
                f"no .csv file beside {config_file}: the demo uploads the samples a stack file keeps beside it,"
                " as examples/products/ does; or run the stack with make up CONFIG=… and upload your own"
            )
        return cls(stack, config_file, samples)

    @property
    def keep_running(self) -> str:
        """How to keep this stack running to try the commands oneself, and where the README says more."""
        if self.config_file is None:
            return "make up (README, Use it)"
        return f"make up CONFIG={shlex.quote(str(self.config_file))} (README, Your own schema, end to end)"


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest demo`."""
    demo = commands.add_parser(
        "demo",
        help="start the dev stack (or a stack file's) locally, upload files, query them, stop",
        description=(
            "Start the dev stack in local mode, upload the article's 10-row sample, an Excel export (semicolons) and"
            " a generated file of --rows rows (some invalid, some repeating an email), show each job's progress,"
            " query a few users, a job, a page of the list and the rejected rows with this tool's commands, print a"
            " summary and stop local mode. With --config-file, the stack of that stack file instead, whatever its"
            " schema: the .csv files beside the stack file are uploaded, and the key of their first valid row is"
            " queried. Function logs go to .local/<stack>/logs/. Fails (exit 2) if the stack already runs locally."
        ),
        epilog="example: python -m ingest demo --config-file examples/products/Pulumi.products.yaml",
    )
    demo.add_argument(
        "--rows",
        type=_rows,
        metavar="N",
        help=f"rows of the generated file (default {DEFAULT_ROWS:,}: about a minute in all); not with --config-file",
    )
    add_config_file_option(demo)
    demo.add_argument("--state-dir", type=Path, default=STATE_ROOT, help=argparse.SUPPRESS)
    demo.set_defaults(run=_run)


def _rows(text: str) -> int:
    """At least `NO_NAME_EVERY` rows, so that the file breaks every rule it is meant to."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < NO_NAME_EVERY:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number ≥ {NO_NAME_EVERY}")
    return value


def _run(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    if options.rows is not None and options.config_file is not None:
        parser.error("--rows sizes the dev demo's generated file: with --config-file the samples beside it go up")
    try:
        tour = Tour.of(options.config_file)
    except ConfigError as error:
        return fail(str(error), EXIT_USAGE)
    code = _demo(tour, options.rows or DEFAULT_ROWS, options.state_dir, out)
    if code == EXIT_INTERRUPTED:
        # Start-up may still be running on its thread (`start_interruptibly`), the Pulumi engine's
        # workers with it: leave without waiting for them, as `local up` does.
        out.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _demo(tour: Tour, rows: int, state_root: Path, out: TextIO) -> int:
    from local.session import LocalOptions, LocalStack

    owner_only_from_now()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    began = time.monotonic()
    options = LocalOptions(stack=tour.stack, api_port=0, state_root=state_root, config_file=tour.config_file)
    with open(os.devnull, "w") as quiet:  # function logs: the state folder's files only
        stack = LocalStack(options, quiet)
        try:
            say(out, f"Starting the {tour.stack} stack in local mode (function logs: {stack.state / 'logs'}) …")
            started = start_interruptibly(stack)
            say(out, f"Running: API {started.outputs['apiUrl']}, ready in {started.seconds:.1f} s\n")
            code = guarded(lambda: _tour(tour, state_root, rows, began, out), "demo")
        except KeyboardInterrupt:
            print("\ndemo: interrupted; stopping local mode", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as error:
            if INTERRUPTED.came:  # the interrupt surfaced as another error (e.g. inside an import)
                print("\ndemo: interrupted; stopping local mode", file=sys.stderr)
                return EXIT_INTERRUPTED
            if isinstance(error, start_errors()):
                return fail(str(error), EXIT_USAGE)
            raise
        finally:
            # A second Ctrl-C or SIGTERM while stopping must not cut the shutdown short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stop_within(stack, STOP_TIMEOUT_SECONDS)
    say(out, f"Local mode stopped. To keep a stack running and try the commands yourself: {tour.keep_running}.")
    return code


def _tour(tour: Tour, state_root: Path, rows: int, began: float, out: TextIO) -> int:
    """Upload the files, follow them, look at the result, summarise."""
    target = local_target(tour.stack, state_root)
    try:
        if tour.samples:
            uploads = [_upload(target, shown(_shown_path(path)), path, out) for path in tour.samples]
            queries = _sample_queries(target, tour.samples, uploads)
        else:
            uploads = _upload_users(target, state_root / tour.stack, rows, out)
            queries = _user_queries(target, uploads)
    except JobTimeout as timeout:
        return fail(str(timeout), EXIT_TIMEOUT)
    _query(target, queries, out)
    say(out, render_summary(uploads, time.monotonic() - began))
    return 0


def say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def _upload_users(target: Target, state: Path, rows: int, out: TextIO) -> list[Uploaded]:
    """The dev demo's files: the article's sample, the Excel export, and the generated file (last)."""
    generated = state / "demo" / f"users-{rows}.csv"
    generated.parent.mkdir(parents=True, exist_ok=True)
    with generated.open("w", encoding="utf-8", newline="") as file:
        file.writelines(demo_lines(rows))
    return [
        _upload(target, "the article's sample", SAMPLE, out),
        _upload(target, "an Excel export (semicolons)", EXCEL_SAMPLE, out),
        _upload(target, f"a generated file of {rows:,} rows", generated, out),
    ]


def _upload(target: Target, label: str, path: Path, out: TextIO) -> Uploaded:
    """Upload one file as `upload --wait` does, its progress and summary printed."""
    say(out, f"$ python -m ingest upload {shlex.quote(_shown_path(path))} {target.flags} --wait")
    job_id = upload_file(target, path, path.name, progress=sys.stderr.isatty())
    job = wait_for_job(target, job_id, timeout=JOB_TIMEOUT_SECONDS, progress=out.isatty(), out=out)
    say(out, render_job_summary(job, target.flags))
    return Uploaded(label, job)


def _shown_path(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def demo_lines(rows: int) -> Iterator[str]:
    """The generated file: a header and `rows` rows, some repeating an earlier email, a few invalid."""
    yield "name,mail,phone\r\n"
    for n in range(1, rows + 1):
        person = n - 5 if n % REPEAT_EVERY == 0 else n
        name = "" if n % NO_NAME_EVERY == NO_NAME_AT else f"Demo User {n}"
        mail = f"user{person}@demo.example.com"
        if n % BAD_EMAIL_EVERY == BAD_EMAIL_AT:
            mail = f"user{person}.demo.example.com"
        phone = "12" if n % BAD_PHONE_EVERY == BAD_PHONE_AT else f"+1555{n:07d}"
        yield f"{name},{mail},{phone}\r\n"


def _user_queries(target: Target, uploads: list[Uploaded]) -> list[Query]:
    """The dev demo's queries: the sample's first user, one of the Excel export's, one of the generated
    file's, then the generated file's job, a page of users, that job's rejects and the latest jobs."""
    generated = uploads[-1].job["jobId"]
    # The rejects of a large file run to hundreds of lines: a few show what they are.
    return [
        ("get john@gmail.com", lambda to: show_item(target, "john@gmail.com", False, to), None),
        (f"get {EXCEL_USER}", lambda to: show_item(target, EXCEL_USER, False, to), None),
        ("get user2@demo.example.com", lambda to: show_item(target, "user2@demo.example.com", False, to), None),
        (f"job {generated}", lambda to: show_job(target, generated, False, to), None),
        ("list --limit 5", lambda to: show_items(target, 5, False, False, to), None),
        (f"rejects {generated}", lambda to: show_rejects(target, generated, False, to), REJECTS_LINES_SHOWN),
        ("jobs --limit 3", lambda to: show_jobs(target, 3, False, to), None),
    ]


def _sample_queries(target: Target, samples: tuple[Path, ...], uploads: list[Uploaded]) -> list[Query]:
    """The queries on a stack of any schema: the item of the samples' first valid key (none when no
    row is valid), the first job that rejected rows (else the last job), a page of items, that job's
    rejects and the latest jobs."""
    shown_job = next((u.job for u in uploads if u.job.get("rowsRejected")), uploads[-1].job)["jobId"]
    queries: list[Query] = []
    key = first_valid_key(samples, target.schema)
    if key is not None:
        text = render(key)
        queries.append((f"get {shown(shlex.quote(text))}", lambda to: show_item(target, text, False, to), None))
    return [
        *queries,
        (f"job {shown_job}", lambda to: show_job(target, shown_job, False, to), None),
        ("list --limit 5", lambda to: show_items(target, 5, False, False, to), None),
        (f"rejects {shown_job}", lambda to: show_rejects(target, shown_job, False, to), REJECTS_LINES_SHOWN),
        ("jobs --limit 3", lambda to: show_jobs(target, 3, False, to), None),
    ]


def first_valid_key(paths: tuple[Path, ...], schema: Schema) -> Value:
    """The key of the first valid row of the first file that has one, in its normal form; None when no
    row of any is valid. Read by the producer's own code (`rows.read_block`), so a row is valid here
    exactly when its job writes it: the stack holds an item of that key (this row's, or a later one's
    of the same key)."""
    from handlers.producer.csv_stream import FileProblem
    from handlers.producer.ingest import open_upload
    from handlers.producer.rows import ValidLines, read_block
    from handlers.producer.sources import DEFAULT_MAX_DECOMPRESSED_BYTES

    for path in paths:
        with path.open("rb") as stream:
            try:
                _format, start = open_upload(stream, path.name, schema, DEFAULT_MAX_DECOMPRESSED_BYTES)
                for block in start.rest:
                    taken = read_block(start.header, block)
                    if isinstance(taken, ValidLines):
                        return taken.columns[schema.key_index][0]
                    for _record, outcome in taken:
                        if isinstance(outcome, tuple):
                            return outcome[schema.key_index]
            except FileProblem:  # the producer fails this file: no row of it is written
                continue
    return None


def _query(target: Target, queries: list[Query], out: TextIO) -> None:
    """Look at the result as a user would: each command line printed, then what it prints."""
    for command, show, most in queries:
        say(out, f"$ python -m ingest {command} {target.flags}")
        printed = io.StringIO()
        show(printed)
        text = printed.getvalue()
        say(out, (text if most is None else _shortened(text, most)).rstrip("\n") + "\n")


def _shortened(text: str, most: int) -> str:
    """At most `most` lines: the first ones, a line saying how many are left out, and the last (the count)."""
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= most:
        return "\n".join(lines)
    hidden = len(lines) - most + 1
    return "\n".join([*lines[: most - 2], f"  … {hidden} more lines", lines[-1]])


def render_summary(uploads: list[Uploaded], seconds: float) -> str:
    """The demo's last lines: each job's outcome and counts, and how long it all took."""
    lines = ["Summary"]
    for upload in uploads:
        job = {key: shown(value) for key, value in upload.job.items()}  # the API's values, escaped for a terminal
        lines.append(
            f"  {upload.label}: {job['status']}, {job.get('rowsTotal', 0)} rows, {job.get('rowsValid', 0)} valid,"
            f" {job.get('rowsRejected', 0)} rejected, {job.get('rowsWritten', 0)} written,"
            f" {job.get('rowsSuperseded', 0)} superseded (job {job['jobId']})"
        )
    lines.append(f"  demo time: {seconds:.0f} s")
    return "\n".join(lines)
