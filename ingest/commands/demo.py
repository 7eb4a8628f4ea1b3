"""`ingest demo`: the pipeline from end to end in about a minute, on this machine, then gone.

    python -m ingest demo [--rows N]

Starts the dev stack in local mode inside this process, with dev's own settings, and does what a new
user would: upload the article's 10-row sample and a generated file (with some invalid rows and
repeated emails), follow both jobs, then look at the result with the commands the README teaches
(`get`, `job`, `list`, `rejects`, `jobs`), each command line printed before what it prints. It ends
with a summary and stops local mode, also on Ctrl-C, SIGTERM or an error. Function logs go to the
state folder's `logs/`, not the console.

Nothing here is a second implementation: uploads go through `upload_file`/`wait_for_job`, the
queries through the commands' own `show_*` functions.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

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
from ingest.commands.users import show_user, show_users
from ingest.interrupts import EXIT_INTERRUPTED, INTERRUPTED, interrupt
from ingest.output import fail, guarded, shown
from ingest.targets import Target, local_target
from local.project import REPO_ROOT
from local.state import STATE_ROOT

STACK = "dev"
SAMPLE = REPO_ROOT / "tests" / "data" / "users.csv"
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
# What stops local mode from starting, each fixable by the user (a setting, a port, dev already running).


@dataclass(frozen=True)
class Uploaded:
    """One file of the demo and how its job ended."""

    label: str
    job: dict[str, Any]


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest demo`."""
    demo = commands.add_parser(
        "demo",
        help="start the dev stack locally, upload two files, query them, stop",
        description=(
            "Start the dev stack in local mode, upload the article's 10-row sample and a generated file of --rows"
            " rows (some invalid, some repeating an email), show each job's progress, query a few users, a job,"
            " a page of the list and the rejected rows with this tool's commands, print a summary and stop local"
            " mode. Function logs go to .local/dev/logs/. Fails (exit 2) if dev already runs locally."
        ),
        epilog="example: python -m ingest demo --rows 2000",
    )
    demo.add_argument(
        "--rows",
        type=_rows,
        default=DEFAULT_ROWS,
        metavar="N",
        help=f"rows of the generated file (default {DEFAULT_ROWS:,}: about a minute in all)",
    )
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
    code = _demo(options, out)
    if code == EXIT_INTERRUPTED:
        # Start-up may still be running on its thread (`start_interruptibly`), the Pulumi engine's
        # workers with it: leave without waiting for them, as `local up` does.
        out.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _demo(options: argparse.Namespace, out: TextIO) -> int:
    from local.session import LocalOptions, LocalStack

    owner_only_from_now()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    began = time.monotonic()
    with open(os.devnull, "w") as quiet:  # function logs: the state folder's files only
        stack = LocalStack(LocalOptions(stack=STACK, api_port=0, state_root=options.state_dir), quiet)
        try:
            say(out, f"Starting the {STACK} stack in local mode (function logs: {stack.state / 'logs'}) …")
            started = start_interruptibly(stack)
            say(out, f"Running: API {started.outputs['apiUrl']}, ready in {started.seconds:.1f} s\n")
            code = guarded(lambda: _tour(options.state_dir, options.rows, began, out), "demo")
        except KeyboardInterrupt:
            print("\ndemo: interrupted; stopping local mode", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as error:
            if INTERRUPTED.is_set():  # the interrupt surfaced as another error (e.g. inside an import)
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
    say(out, "Local mode stopped. To keep a stack running and try the commands yourself: make up (README, Use it).")
    return code


def _tour(state_root: Path, rows: int, began: float, out: TextIO) -> int:
    """Upload both files, follow them, look at the result, summarise."""
    target = local_target(STACK, state_root)
    try:
        uploads = _upload_both(target, state_root / STACK, rows, out)
    except JobTimeout as timeout:
        return fail(str(timeout), EXIT_TIMEOUT)
    _query(target, uploads, out)
    say(out, render_summary(uploads, time.monotonic() - began))
    return 0


def say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def _upload_both(target: Target, state: Path, rows: int, out: TextIO) -> list[Uploaded]:
    generated = state / "demo" / f"users-{rows}.csv"
    generated.parent.mkdir(parents=True, exist_ok=True)
    with generated.open("w", encoding="utf-8", newline="") as file:
        file.writelines(demo_lines(rows))
    uploads = []
    for label, path in (("the article's sample", SAMPLE), (f"a generated file of {rows:,} rows", generated)):
        say(out, f"$ python -m ingest upload {_shown_path(path)} {target.flags} --wait")
        job_id = upload_file(target, path, path.name, progress=sys.stderr.isatty())
        job = wait_for_job(target, job_id, timeout=JOB_TIMEOUT_SECONDS, progress=out.isatty(), out=out)
        say(out, render_job_summary(job, target.flags))
        uploads.append(Uploaded(label, job))
    return uploads


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


def _query(target: Target, uploads: list[Uploaded], out: TextIO) -> None:
    """Look at the result as a user would: each command line printed, then what it prints."""
    generated = uploads[-1].job["jobId"]
    # The rejects of a large file run to hundreds of lines: a few show what they are.
    queries: list[tuple[str, Callable[[TextIO], int], int | None]] = [
        ("get john@gmail.com", lambda to: show_user(target, "john@gmail.com", False, to), None),
        ("get user2@demo.example.com", lambda to: show_user(target, "user2@demo.example.com", False, to), None),
        (f"job {generated}", lambda to: show_job(target, generated, False, to), None),
        ("list --limit 5", lambda to: show_users(target, 5, False, False, to), None),
        (f"rejects {generated}", lambda to: show_rejects(target, generated, False, to), REJECTS_LINES_SHOWN),
        ("jobs --limit 3", lambda to: show_jobs(target, 3, False, to), None),
    ]
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
