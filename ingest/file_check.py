"""`ingest upload --check FILE`: what the producer would make of a local file, without uploading it.

The file is read by the producer's own code (`handlers.producer.check.check_upload`: the same header
mapping, rules and file checks as a job), against the schema and upload limit of the stack's settings
(`Pulumi.<stack>.yaml`, or `--config-file`): no running stack, no AWS, no credentials.

What it prints holds no cell of the file's rows (they are personal data, README "Security"): the
header's mapping (each schema column and the file's header cell that names it), the counts, the
reasons (which name a column and a rule), and the rejected rows by number and line. Exit codes:
`EXIT_VALID` when every row would be written, `EXIT_FAILS` when the producer would fail the file as a
whole (as `upload --wait` exits for a FAILED job), `EXIT_REJECTS` when it would reject rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from handlers.common.schema import Schema
from handlers.producer.check import FileChecked, FileRefused, check_upload
from ingest.output import print_json, shown, table

EXIT_VALID, EXIT_FAILS, EXIT_REJECTS = 0, 1, 4
# Rejected rows the human form lists (`--json` lists as many as the check keeps); the counts per
# reason cover them all.
SHOWN_REJECTS = 20


def check_file(path: Path, schema: Schema, max_upload_bytes: int) -> FileChecked | FileRefused:
    """Read the file at `path` as the producer would for a stack of `schema` and upload limit."""
    with path.open("rb") as stream:
        return check_upload(stream, path.stat().st_size, schema, max_upload_bytes)


def exit_code(checked: FileChecked | FileRefused) -> int:
    if isinstance(checked, FileRefused):
        return EXIT_FAILS
    return EXIT_REJECTS if checked.rejected else EXIT_VALID


def report(path: str, stack: str, schema: Schema, checked: FileChecked | FileRefused, out: TextIO) -> None:
    """The check for people: the file and stack, the header's mapping, the counts, the reasons, the
    first rejected rows, and a last line saying what an upload would do (and the exit code)."""
    out.write(f"{shown(path)} against the {schema.name} schema of stack {stack} (nothing uploaded):\n")
    if isinstance(checked, FileRefused):
        out.write(f"The producer would fail this file: {shown(checked.problem)}\n")
        out.write(f"No row would be written (exit {EXIT_FAILS}).\n")
        return
    types = {column.name: column.type.name for column in schema.columns}
    out.write("\nColumns:\n")
    table(
        ["column", "type", "from the file"],
        ([match.column, types[match.column], _source(match.spelling, match.position)] for match in checked.columns),
        out,
    )
    if checked.ignored:
        out.write(f"Ignored, not in the schema: {', '.join(shown(name) for name in checked.ignored)}\n")
    out.write(
        f"\nRows: {checked.rows} read, {checked.valid} valid, {checked.rejected} rejected,"
        f" {checked.blank_lines} blank lines\n"
    )
    if not checked.rejected:
        out.write(f"\nEvery row is valid: an upload would write {checked.valid} rows.\n")
        return
    out.write("\nRejected, by reason:\n")
    table(["rows", "reason"], ([count, reason] for reason, count in checked.reasons.items()), out)
    listed = checked.rejects[:SHOWN_REJECTS]
    first = f"first {len(listed)} of " if len(listed) < checked.rejected else ""
    out.write(f"\nRejected rows ({first}{checked.rejected}):\n")
    table(["row", "line", "reason"], ([r.row, r.line, r.reason] for r in listed), out)
    out.write(f"\n{checked.rejected} of {checked.rows} rows would be rejected (exit {EXIT_REJECTS}).\n")


def _source(spelling: str | None, position: int | None) -> str:
    """Where the file has a column: its header cell and position, or that it has none."""
    if spelling is None:
        return "— (no such column: its values are left empty)"
    return f"← {spelling} ({position})"


def as_json(path: str, stack: str, schema: Schema, checked: FileChecked | FileRefused) -> dict[str, Any]:
    """The check for programs: every count, reason and listed reject, and `failure` (the job's reason
    when the producer would fail the file, else null)."""
    base: dict[str, Any] = {"file": path, "stack": stack, "schema": schema.name, "uploaded": False}
    if isinstance(checked, FileRefused):
        return {
            **base,
            "columns": [],
            "ignored": [],
            "rows": None,
            "valid": None,
            "rejected": None,
            "blankLines": None,
            "reasons": {},
            "rejects": [],
            "failure": checked.problem,
        }
    types = {column.name: column.type.name for column in schema.columns}
    return {
        **base,
        "columns": [
            {"column": m.column, "type": types[m.column], "fileColumn": m.spelling, "position": m.position}
            for m in checked.columns
        ],
        "ignored": list(checked.ignored),
        "rows": checked.rows,
        "valid": checked.valid,
        "rejected": checked.rejected,
        "blankLines": checked.blank_lines,
        "reasons": dict(checked.reasons),
        "rejects": [{"row": r.row, "line": r.line, "reason": r.reason} for r in checked.rejects],
        "failure": None,
    }


def print_check(
    path: str, stack: str, schema: Schema, checked: FileChecked | FileRefused, json_form: bool, out: TextIO
) -> int:
    """Print the check (`--json`: one object) and return its exit code."""
    if json_form:
        print_json(as_json(path, stack, schema, checked), out)
    else:
        report(path, stack, schema, checked, out)
    return exit_code(checked)
