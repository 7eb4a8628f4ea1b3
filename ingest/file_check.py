"""`ingest upload --check FILE`: what the producer would make of a local file, without uploading it.

The file is read by the producer's own code (`handlers.producer.check.check_upload`: the same header
mapping, rules and file checks as a job), against the schema and the limits of the stack's settings
(`Pulumi.<stack>.yaml`, or `--config-file`): no running stack, no AWS, no credentials. What is
checked is the object that would go up: with `--gzip`, the file compressed as the upload compresses
it, so that `maxUploadBytes` holds its compressed size and `maxDecompressedBytes` its own.

What it prints holds no cell of the file's rows (they are personal data, README "Security"): how
the file is read (gzip or not, its encoding, its delimiter and whether that was detected from the
header line or fixed by the stack or a `.tsv` name), the header's mapping (each schema column and
the file's header cell that names it), the counts, the reasons (which name a column and a rule),
and the rejected rows by number and line. Exit codes: `EXIT_VALID` when every row would be written,
`EXIT_FAILS` when the producer would fail the file as a whole (as `upload --wait` exits for a FAILED
job), `EXIT_REJECTS` when it would reject rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from handlers.common.schema import Schema, delimiter_name
from handlers.producer.check import FileChecked, FileRefused, check_upload
from handlers.producer.csv_stream import FileProblem
from handlers.producer.dialect import DELIMITER_SETTING, FileFormat
from handlers.producer.ingest import check_size
from handlers.producer.sources import ENCODING_SETTING
from ingest.gzip_stream import GzipReader
from ingest.output import print_json, shown, table

EXIT_VALID, EXIT_FAILS, EXIT_REJECTS = 0, 1, 4
# Rejected rows the human form lists (`--json` lists as many as the check keeps); the counts per
# reason cover them all.
SHOWN_REJECTS = 20


def check_file(
    path: Path, schema: Schema, max_upload_bytes: int, max_decompressed_bytes: int, *, name: str, gzip: bool = False
) -> FileChecked | FileRefused:
    """Read the file at `path` as the producer would for a stack of `schema` and limits, were it
    uploaded as `name` (whose `.gz` and `.tsv` suffixes say how it is read). A gzip file is read as
    it is, compressed: the producer's own layers decompress it, its size held to `max_upload_bytes`
    and what it inflates to, to `max_decompressed_bytes`. With `gzip` (`upload --gzip`, `name`
    ending in `.gz`), what is read is what would go up: the file compressed (`_check_gzipped`)."""
    with path.open("rb") as stream:
        if gzip:
            return _check_gzipped(stream, schema, max_upload_bytes, max_decompressed_bytes, name=name)
        return check_upload(
            stream,
            os.fstat(stream.fileno()).st_size,
            schema,
            max_upload_bytes,
            name=name,
            max_decompressed_bytes=max_decompressed_bytes,
        )


def _check_gzipped(
    file: BinaryIO, schema: Schema, max_upload_bytes: int, max_decompressed_bytes: int, *, name: str
) -> FileChecked | FileRefused:
    """The object `upload --gzip` makes of `file`, checked as the producer checks it: its compressed
    size against `max_upload_bytes`, the file's own size (what it inflates to) against
    `max_decompressed_bytes`, then its rows. It is compressed once, as it is read (`GzipReader`, the
    upload's own compression: the same bytes), in bounded memory, and its size counted on the way.

    So the size is known last, while the producer checks it first, before reading a byte: a size
    over the limit is the answer whatever the read found."""
    compressed = GzipReader(file)
    # Its size is unknown until it is all compressed: passed as 0 here, checked below.
    checked = check_upload(
        compressed, 0, schema, max_upload_bytes, name=name, max_decompressed_bytes=max_decompressed_bytes
    )
    try:
        check_size(compressed.size(), max_upload_bytes)  # a read that stopped early left the rest to count
    except FileProblem as problem:
        return FileRefused(str(problem))
    return checked


def delimiter_source(schema: Schema, fmt: FileFormat) -> str:
    """Where the file's delimiter came from: `detected` (the header line), `stack` (its setting), or
    `suffix` (a `.tsv` name means tab)."""
    if fmt.detected:
        return "detected"
    return "stack" if schema.format.delimiter is not None else "suffix"


def format_lines(schema: Schema, fmt: FileFormat) -> list[tuple[str, str]]:
    """How the file is read, for people: each aspect, what it is and why."""
    why = {
        "detected": "detected from the header line",
        "stack": f"fixed by {DELIMITER_SETTING}",
        "suffix": "the name ends in .tsv",
    }[delimiter_source(schema, fmt)]
    declared = schema.format.encoding != "utf-8"
    encoding_why = f"set by {ENCODING_SETTING}" if declared else f"the default; {ENCODING_SETTING} sets another"
    return [
        ("gzip", "yes (the name ends in .gz)" if fmt.gzip else "no"),
        ("encoding", f"{fmt.encoding} ({encoding_why})"),
        ("delimiter", f"{delimiter_name(fmt.delimiter)} ({why})"),
    ]


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
    out.write("\nRead as:\n")
    table(["what", "how"], format_lines(schema, checked.format), out)
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
    """The check for programs: how the file is read (`format`: gzip, encoding, the delimiter by name
    and `delimiterFrom`: detected, stack or suffix), every count, reason and listed reject, and
    `failure` (the job's reason when the producer would fail the file, else null)."""
    base: dict[str, Any] = {"file": path, "stack": stack, "schema": schema.name, "uploaded": False}
    if isinstance(checked, FileRefused):
        return {
            **base,
            "format": None,
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
    fmt = checked.format
    return {
        **base,
        "format": {
            "gzip": fmt.gzip,
            "encoding": fmt.encoding,
            "delimiter": delimiter_name(fmt.delimiter),
            "delimiterFrom": delimiter_source(schema, fmt),
        },
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
