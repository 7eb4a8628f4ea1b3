"""The `ingest` command line: `python -m ingest <command> …` (or `csv-ingest <command> …`).

The parser is assembled from the command modules (`ingest.commands`); this module only parses and
dispatches.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ingest.commands import COMMANDS
from ingest.output import escape_uncaught, for_people


def parser() -> argparse.ArgumentParser:
    """The whole command line, as `--help` and the README's command reference show it."""
    root = argparse.ArgumentParser(
        prog="python -m ingest",
        description="csv-ingest: load CSV files of users into DynamoDB, locally or on AWS, and look at the result.",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return root


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    # An exception no command catches is reported by Python once `for_people` has given stderr back,
    # on the raw stream: its message may hold a stack's value (a key, a name), so it is escaped too.
    escape_uncaught()
    root = parser()
    options = root.parse_args(argv)
    with for_people(out or sys.stdout) as shown_out:  # no control character of a stack's reaches a terminal raw
        return options.run(options, root, shown_out)
