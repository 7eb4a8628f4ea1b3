"""`ingest job` and `ingest jobs`: one job, and the latest jobs, through the API.

    python -m ingest job JOB_ID [--json] [--local | --stack NAME]
    python -m ingest jobs [--limit N] [--json] [--local | --stack NAME]

`GET /jobs/{jobId}` and `GET /jobs?limit=` (newest upload first). The API lists jobs from an
eventually consistent index: a job created a moment ago may show on the next call only.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ingest.api import MAX_PAGE, segment, unexpected
from ingest.output import command, fail, fields, guarded, print_json, table
from ingest.targets import Target, add_target_options, resolve_target

EXIT_ABSENT = 1
DEFAULT_JOBS = 10
# The job record's fields in the order a person reads them (README "Data formats"); others follow.
JOB_FIELDS = (
    "jobId",
    "status",
    "error",
    "bucket",
    "key",
    "versionId",
    "objectSize",
    "uploadedAt",
    "startedAt",
    "queuedAt",
    "finishedAt",
    "rowsTotal",
    "rowsValid",
    "rowsRejected",
    "blankLines",
    "rowsWritten",
    "rowsSuperseded",
    "chunksTotal",
    "chunksDone",
    "extraColumns",
    "format",
    "rejectsReport",
    "rejectsParts",
)
JOBS_COLUMNS = ("jobId", "status", "key", "uploadedAt", "rowsTotal", "rowsWritten", "rowsRejected")


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest job` and `ingest jobs`."""
    job = commands.add_parser(
        "job",
        help="show one job: status, counts, times, where its rejects are",
        description="Show one job as GET /jobs/{jobId} returns it. Exit 1 when there is no such job.",
        epilog="example: python -m ingest job 5637ceb053391deb4d3c7bcf721f6fe3 --local",
    )
    job.add_argument("job_id", metavar="JOB_ID", help="the job id (upload prints it; jobs lists them)")
    job.add_argument("--json", action="store_true", help="the job as one JSON object")
    add_target_options(job)
    job.set_defaults(run=_run_job)
    jobs = commands.add_parser(
        "jobs",
        help="list the latest jobs, newest first",
        description="List the most recent jobs, newest upload first (GET /jobs).",
        epilog="example: python -m ingest jobs --limit 5 --local",
    )
    jobs.add_argument(
        "--limit",
        type=page_size,
        default=DEFAULT_JOBS,
        metavar="N",
        help=f"how many (1–{MAX_PAGE}, default {DEFAULT_JOBS})",
    )
    jobs.add_argument("--json", action="store_true", help="one JSON array of the jobs")
    add_target_options(jobs)
    jobs.set_defaults(run=_run_jobs)


def page_size(text: str) -> int:
    """A `--limit`: a page of the API holds 1 to `MAX_PAGE` items."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number from 1 to {MAX_PAGE}")
    return value


def _run_job(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_job(resolve_target(options), options.job_id, options.json, out), "job")


def show_job(target: Target, job_id: str, as_json: bool, out: TextIO) -> int:
    response = target.api().get(f"/jobs/{segment(job_id)}")
    if response.status == 404:
        return fail(f"no job {job_id} in {target.label}", EXIT_ABSENT)
    if response.status != 200:
        raise unexpected(response, "GET /jobs/{jobId}")
    if as_json:
        print_json(response.body, out)
    else:
        fields(response.body, JOB_FIELDS, out)
    return 0


def _run_jobs(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_jobs(resolve_target(options), options.limit, options.json, out), "jobs")


def show_jobs(target: Target, limit: int, as_json: bool, out: TextIO) -> int:
    items = target.api().page("/jobs", limit).items
    if as_json:
        print_json(items, out)
    elif not items:
        out.write(f"No jobs in {target.label} yet: upload a file ({command('upload', 'FILE')} {target.flags}).\n")
    else:
        table(JOBS_COLUMNS, (_row(item) for item in items), out)
    return 0


def _row(job: dict[str, Any]) -> list[Any]:
    return [job.get(column) for column in JOBS_COLUMNS]
