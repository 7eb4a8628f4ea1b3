"""What a local stack made of corpus files (`tests/input/corpus.py`), and how it differs from the
rules: shared by the default stack's corpus (`test_corpus.py`) and the other encodings' stacks
(`test_format_corpus.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.input.corpus import Case
from tests.input.stack import reasons, report_rows, users_by_domain
from tests.local.support import LocalStackProcess, job_id_for

# After every triggering upload has ended, an upload that was going to start a job would have.
NO_TRIGGER_GRACE_SECONDS = 3.0


@dataclass
class Outcome:
    """What the stack made of one corpus file."""

    case: Case
    key: str
    job_id: str
    job: dict[str, Any] | None
    rejects: list[dict[str, str]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)


def ingest_all(
    local: LocalStackProcess, cases: Iterable[Case], key_of: Callable[[Case], str], timeout: float
) -> dict[str, Outcome]:
    """Upload every case at once, follow each job to its end, then read reports and the table."""
    bucket = local.outputs["bucketName"]

    def upload(case: Case) -> Outcome:
        key = key_of(case)
        version = local.upload(key, case.body())
        return Outcome(case, key, job_id_for(bucket, key, version), None)

    with ThreadPoolExecutor(4) as pool:
        started = list(pool.map(upload, cases))
        for outcome in started:
            if outcome.case.status:
                outcome.job = local.finished_job(outcome.job_id, timeout)
    if any(not outcome.case.status for outcome in started):
        time.sleep(NO_TRIGGER_GRACE_SECONDS)
    users = users_by_domain(local)
    for outcome in started:
        if not outcome.case.status:
            outcome.job = local.job(outcome.job_id)
        outcome.rejects = report_rows(local, outcome.job)
        outcome.users = users.get(outcome.case.domain, {})
    return {outcome.case.name: outcome for outcome in started}


def mismatches(outcome: Outcome) -> list[str]:
    """How the stack's outcome for a case differs from the rules' (empty when it holds)."""
    case, job = outcome.case, outcome.job
    got: list[str] = []

    def check(what: str, actual: Any, expected: Any) -> None:
        if actual != expected:
            got.append(f"{case.name}: {what} is {actual!r}, expected {expected!r}")

    if case.status is None:
        check("job (an upload that must not trigger)", job, None)
        check("users", outcome.users, {})
        return got
    assert job is not None
    if job["status"] != case.status:  # nothing else of it is comparable
        return [f"{case.name}: status is {job['status']!r} ({job.get('error', 'no error')}), expected {case.status!r}"]
    check("key", job["key"], outcome.key)
    if case.status == "FAILED":
        if case.error not in job.get("error", ""):
            got.append(f"{case.name}: error {job.get('error')!r} does not contain {case.error!r}")
        check("rows written", job.get("rowsWritten", 0), 0)
    else:
        counts = (job["rowsTotal"], job["rowsValid"], job["rowsRejected"])
        check("(rowsTotal, rowsValid, rowsRejected)", counts, case.rows)
        check("blankLines", job["blankLines"], case.blank_lines)
        check("extraColumns", tuple(job["extraColumns"]), case.extra_columns)
        check("rowsWritten + rowsSuperseded", job["rowsWritten"] + job["rowsSuperseded"], case.rows[1])
        check("format", job.get("format"), case.job_format())
    check("rejects (row, line, reason)", reasons(outcome.rejects), list(case.rejects))
    by_row = {int(r["row"]): tuple(list(r.values())[3:]) for r in outcome.rejects}
    for row, cells in case.report_cells.items():
        check(f"report cells of row {row}", by_row.get(row), cells)
    stored = {email: (user["name"], user.get("phone")) for email, user in outcome.users.items()}
    check("users", stored, dict(case.users))
    return got
