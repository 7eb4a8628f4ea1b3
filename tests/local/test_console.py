"""What `local up` shows on its terminal of each log line (`local.console`, `ingest.job_lines`): by
default each job's start and end and every warning and error; every line of the sources asked for."""

from __future__ import annotations

import io
import json
from typing import Any

from ingest.job_lines import JobSummary
from local.console import Console, source_matcher

WORKER = "csv-ingest-worker-359b89a"
PRODUCER = "csv-ingest-producer-6f18ccb"
JOB = "a4ce1ca591360fff433a7a0aab138ae0"
ONE_ROW = {"finalStatus": "COMPLETE", "rowsTotal": 1, "rowsValid": 1, "rowsRejected": 0}


def powertools(level: str, message: str, **fields: Any) -> str:
    """A line as Powertools' logger writes it (the standard keys, then the line's own)."""
    standard = {"location": "handler:1", "timestamp": "2026-12-06 07:19:16,582+0000", "service": "worker"}
    standard |= {"cold_start": True, "function_name": WORKER, "function_request_id": "r-1"}
    return json.dumps({"level": level, "message": message, **standard, **fields})


def shown(lines: list[tuple[str, str]], **console: Any) -> list[str]:
    out = io.StringIO()
    show = Console(out, **console)
    for source, text in lines:
        show(source, text)
    return out.getvalue().splitlines()


def test_by_default_the_invocations_info_lines_and_ordinary_requests_are_not_shown() -> None:
    lines = [
        (WORKER, "START RequestId: r-1 Version: $LATEST"),
        (WORKER, powertools("INFO", "chunk written", jobId=JOB, chunk=1, written=200)),
        (WORKER, '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"RowsWritten":[200.0]}'),
        (WORKER, "END RequestId: r-1"),
        (WORKER, "REPORT RequestId: r-1\tDuration: 82.92 ms\tBilled Duration: 83 ms"),
        ("api", "GET /users/{email} 404 12ms 30344273-dccc-4fed-8dea-288d1def0b73"),
    ]

    assert shown(lines) == []


def test_a_structured_warning_or_error_is_one_line_with_its_own_fields() -> None:
    traceback = "Traceback (most recent call last):\n  File ..."
    error = powertools("ERROR", "chunk failed", jobId=JOB, chunk=3, error="ClientError('x\ny')", exception=traceback)

    assert shown([(WORKER, error), (WORKER, powertools("WARNING", "upload event refused", rule="object"))]) == [
        f"[{WORKER}] ERROR chunk failed (jobId={JOB}, chunk=3, error=ClientError('x\\ny'))",
        f"[{WORKER}] WARNING upload event refused (rule=object)",
    ]


def test_the_runtimes_errors_and_local_modes_own_reports_are_shown() -> None:
    lines = [
        (WORKER, "[ERROR] Runtime.ImportModuleError: Unable to import module 'handlers.worker.app'"),
        (WORKER, "INIT_REPORT Init Duration: 383.40 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError"),
        (WORKER, "2026-12-06T07:19:16.582Z r-1 Task timed out after 30.00 seconds"),
        (WORKER, "RequestId: r-1 Error: Runtime exited with error: signal: killed"),
        ("iam", "denied: User: arn:aws:sts::123456789012:assumed-role/w/x is not authorized to perform: s3:GetObject"),
        ("lambda", f"{WORKER}: 1 of 1 messages failed; they return after the visibility timeout"),
        ("s3", f"{PRODUCER}: S3 may not invoke it"),
        ("api", "GET /users 502 30012ms 4f2d103a-787c-47db-a5ec-4682da99b201"),
    ]

    assert shown(lines) == [f"[{source}] {text}" for source, text in lines]


def test_a_job_is_one_line_when_it_starts_and_one_when_its_last_chunk_is_written() -> None:
    queued = {"chunksTotal": 2, "finalStatus": "COMPLETE_WITH_REJECTS", "rowsTotal": 400, "rowsValid": 399}
    lines = [
        (PRODUCER, powertools("INFO", "job created", jobId=JOB, key="uploads/users.csv", size=70296)),
        (WORKER, powertools("INFO", "chunk written", jobId=JOB, chunk=2, written=199, counted=True)),
        # the producer says how many chunks it queued after the worker wrote one of them
        (PRODUCER, powertools("INFO", "every chunk queued", jobId=JOB, rowsRejected=1, **queued)),
        (WORKER, powertools("INFO", "chunk written", jobId=JOB, chunk=2, written=0, counted=False)),  # again
        (WORKER, powertools("INFO", "chunk written", jobId=JOB, chunk=1, written=200, counted=True)),
    ]

    assert shown(lines, summary=JobSummary()) == [
        f"job {JOB} started: uploads/users.csv (70,296 bytes)",
        f"job {JOB} finished: COMPLETE_WITH_REJECTS: 400 rows, 399 valid, 1 rejected",
    ]


def test_a_job_the_producer_fails_is_one_line_with_its_reason() -> None:
    reason = "incomplete header: missing mail column(s)"
    failed = powertools("WARNING", "file cannot be ingested; job failed", jobId=JOB, reason=reason)

    assert shown([(PRODUCER, failed)], summary=JobSummary()) == [f"job {JOB} finished: FAILED: {reason}"]


def test_a_key_cannot_break_the_line_it_is_shown_on() -> None:
    created = powertools("INFO", "job created", jobId=JOB, key="uploads/a\nb.csv", size=1)

    assert shown([(PRODUCER, created)], summary=JobSummary()) == [f"job {JOB} started: uploads/a\\nb.csv (1 bytes)"]


def test_the_sources_asked_for_show_every_line_and_the_jobs_ends_still_show() -> None:
    lines = [
        (WORKER, "START RequestId: r-1 Version: $LATEST"),
        (PRODUCER, "START RequestId: r-2 Version: $LATEST"),
        (PRODUCER, powertools("INFO", "every chunk queued", jobId=JOB, chunksTotal=1, **ONE_ROW)),
        (WORKER, powertools("INFO", "chunk written", jobId=JOB, chunk=1, written=1, counted=True)),
    ]

    printed = shown(lines, full=source_matcher(("worker",)), summary=JobSummary())

    assert printed == [
        f"[{WORKER}] START RequestId: r-1 Version: $LATEST",
        f"[{WORKER}] {lines[3][1]}",
        f"job {JOB} finished: COMPLETE: 1 rows, 1 valid, 0 rejected",
    ]
