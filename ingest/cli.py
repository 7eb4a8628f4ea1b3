"""The `ingest` command line: `python -m ingest <command> …` (or `csv-ingest <command> …`).

The parser is assembled from the command modules (`ingest.commands`); this module only parses and
dispatches. Two rules hold for every command here, so no command has to remember them:

- A mistake on the command line (an unknown option, a value out of range, a missing argument) is
  one line on stderr, `error: …` with the `--help` to read, and exit 2 (`CommandLine.error`).
- Output piped into a reader that stops early (`| head`) ends the command quietly, with the status
  a shell reports for any Unix command a closed pipe ended (`EXIT_BROKEN_PIPE`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import NoReturn, TextIO

from ingest.commands import COMMANDS
from ingest.output import command, escape_uncaught, for_people, shown

PROG = "python -m ingest"
EXIT_USAGE = 2
# 128 + SIGPIPE: what a shell reports for `cat` or `grep` when their reader has gone, so that
# `set -o pipefail` sees the same status for this command as for them.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


class CommandLine(argparse.ArgumentParser):
    """A parser whose errors are one line: what is wrong, and the `--help` that says how it goes
    (argparse prints the usage first, which buries the error in a terminal's scroll)."""

    def error(self, message: str) -> NoReturn:
        words = self.prog.removeprefix(PROG).split()
        self.exit(EXIT_USAGE, f"error: {shown(message)} (see `{command(*words, '--help')}`)\n")


def parser() -> argparse.ArgumentParser:
    """The whole command line, as `--help` and the README's command reference show it."""
    root = CommandLine(
        prog=PROG,
        description=(
            "csv-ingest: load CSV files of the stack's schema (users by default) into DynamoDB, locally or on AWS,"
            " and look at the result."
        ),
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for each in COMMANDS:
        each.register(commands)
    return root


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    # An exception no command catches is reported by Python once `for_people` has given stderr back,
    # on the raw stream: its message may hold a stack's value (a key, a name), so it is escaped too.
    escape_uncaught()
    root = parser()
    options, unknown = root.parse_known_args(argv)
    if unknown:  # said by the command's own parser, whose --help lists what it takes
        _parser_running(root, options.run).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        with for_people(out or sys.stdout) as shown_out:  # no control character of a stack's reaches a terminal raw
            code = options.run(options, root, shown_out)
            shown_out.flush()  # a reader gone is found here, not by Python's last flush at exit
        return code
    except BrokenPipeError:
        _silence_closed_pipes()
        return EXIT_BROKEN_PIPE


def _parser_running(parser: argparse.ArgumentParser, run: object) -> argparse.ArgumentParser:
    """The command's parser in the tree under `parser` whose default `run` is `run` (`parser` itself if none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found = _parser_running(child, run)
                if found.get_default("run") is run:
                    return found
    return parser


def _silence_closed_pipes() -> None:
    """Point stdout and stderr at /dev/null: what they still buffer would otherwise fail again when
    Python flushes them at exit, and print a traceback of the closed pipe (Python's documentation of
    SIGPIPE: https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(sink, stream.fileno())
            except (AttributeError, OSError, ValueError):  # not a file (a test's stream): nothing buffered at exit
                continue
    finally:
        os.close(sink)
