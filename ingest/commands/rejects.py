"""`ingest rejects`: the rows a job rejected, and why, from its rejects report in the bucket.

    python -m ingest rejects JOB_ID [--json] [--local | --stack NAME]

The job (`GET /jobs/{jobId}`) says where its report is (`rejectsReport`, `s3://bucket/<prefix>/`);
the report is one CSV part per producer invocation that rejected rows (README "Data formats":
`row`, `line`, `reason`, then the row's cells of the columns the pipeline reads, as the header
spells them). The parts are read with the target's credentials: on AWS, the caller's.

A report is made to be opened in a spreadsheet, so the producer prefixes a cell that would run as a
formula with `'` (`handlers.producer.reports.neutralise`). That escape is the report's: the command
shows each cell as it was uploaded (`as_uploaded`), in its table (where every cell is still shown
escaped for the terminal, `ingest.output.table`) and in `--json`.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from botocore.exceptions import ClientError

from handlers.common.jobs import COMPLETE, COMPLETE_WITH_REJECTS, FAILED
from handlers.producer.reports import neutralise
from ingest.api import segment, unexpected
from ingest.output import fail, guarded, print_json, shown, table
from ingest.targets import Target, TargetError, add_target_options, resolve_target

EXIT_ABSENT = 1
# Every report part starts with these columns; the cells of the columns read follow.
REPORT_COLUMNS = ("row", "line", "reason")


@dataclass(frozen=True)
class Report:
    """Where a job's rejects report is."""

    bucket: str
    prefix: str


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest rejects`."""
    rejects = commands.add_parser(
        "rejects",
        help="list the rows a job rejected, with the reason for each",
        description=(
            "List the rows a job rejected: row number, line, reason and the row's cells of the columns the"
            " pipeline reads, from the job's rejects report in the bucket. Exit 1 when there is no such job."
        ),
        epilog="example: python -m ingest rejects 5637ceb053391deb4d3c7bcf721f6fe3 --local",
    )
    rejects.add_argument("job_id", metavar="JOB_ID", help="the job id (upload prints it; jobs lists them)")
    rejects.add_argument("--json", action="store_true", help="one JSON array of the rejected rows")
    add_target_options(rejects)
    rejects.set_defaults(run=_run)


def _run(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_rejects(resolve_target(options), options.job_id, options.json, out), "rejects")


def show_rejects(target: Target, job_id: str, as_json: bool, out: TextIO) -> int:
    response = target.api().get(f"/jobs/{segment(job_id)}")
    if response.status == 404:
        return fail(f"no job {job_id} in {target.label}", EXIT_ABSENT)
    if response.status != 200:
        raise unexpected(response, "GET /jobs/{jobId}")
    job = response.body
    report = report_of(job)
    rows = list(read_report(target, report)) if report else []
    if as_json:
        print_json(rows, out)
        return 0
    if job["status"] not in (COMPLETE, COMPLETE_WITH_REJECTS, FAILED):
        out.write(f"Job {job_id} is still {shown(job['status'])}: its report is written as it goes, and may grow.\n")
    if not rows:
        out.write(f"Job {job_id} rejected no rows.\n")
        return 0
    columns = list(rows[0])
    table(columns, ([row.get(column) for column in columns] for row in rows), out)
    out.write(f"{len(rows)} rejected row(s) of job {job_id}; the report: {shown(job['rejectsReport'])}\n")
    return 0


def report_of(job: dict[str, Any]) -> Report | None:
    """The report's bucket and prefix from the job's `rejectsReport`; None when the job has none."""
    where = job.get("rejectsReport")
    if not where:
        return None
    bucket, _, prefix = str(where).removeprefix("s3://").partition("/")
    if not bucket or not prefix:
        raise TargetError(f"job {job['jobId']}: rejectsReport is not an s3://bucket/prefix/ address")
    return Report(bucket=bucket, prefix=prefix)


def read_report(target: Target, report: Report) -> Iterator[dict[str, Any]]:
    """Every rejected row of every part, in part order: `row` and `line` as numbers, the rest as text."""
    s3 = target.client("s3")
    keys = sorted(
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=report.bucket, Prefix=report.prefix)
        for item in page.get("Contents", [])
    )
    for key in keys:
        try:
            body = s3.get_object(Bucket=report.bucket, Key=key)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "AccessDenied":
                raise
            raise TargetError(
                f"access denied reading s3://{report.bucket}/{key}: the bucket lets only the principals listed in"
                " csv-ingest:reportReaders read rejects reports (README, Security)"
            ) from error
        yield from parse_part(io.TextIOWrapper(body, encoding="utf-8", newline=""), key)


def parse_part(text: io.TextIOBase, key: str) -> Iterator[dict[str, Any]]:
    """One report part's rows as dicts keyed by its header; a part of another layout fails, naming it."""
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None or tuple(header[: len(REPORT_COLUMNS)]) != REPORT_COLUMNS:
        raise TargetError(f"{key}: not a rejects report part (expected the columns {', '.join(REPORT_COLUMNS)}, …)")
    for number, cells in enumerate(reader, start=1):
        if len(cells) != len(header) or not (cells[0].isdigit() and cells[1].isdigit()):
            raise TargetError(f"{key}, record {number} after the header: not a report row (row, line, reason, …)")
        row: dict[str, Any] = dict(zip(header, cells, strict=True))
        row["row"], row["line"] = int(row["row"]), int(row["line"])
        for column in header[len(REPORT_COLUMNS) :]:
            row[column] = as_uploaded(row[column])
        yield row


def as_uploaded(cell: str) -> str:
    """A report's cell without the `'` the producer put before a would-be formula: a cell is one
    exactly when it starts with `'` and the rest is a cell `neutralise` prefixes (the rule is the
    producer's, not restated here). A cell that starts with `'` of its own, before anything but a
    formula, is kept whole; one that did so before a formula reads as a spreadsheet shows it."""
    if cell.startswith("'") and neutralise(cell[1:]) == cell:
        return cell[1:]
    return cell
