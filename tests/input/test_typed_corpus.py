"""The typed corpus through local mode, on a stack whose schema has a column of every typed kind
(`tests/input/typed_corpus.py`): each file's job, counts, reject reasons and report cells, and the
items it leaves, attribute by attribute in DynamoDB's types; and no cell of any file in a log, a job
record or an API error.

One stack of that schema for the module (`--set schema=<its JSON>`; batching window 0, asynchronous
retries shortened, every log line on its console). Every file is uploaded at once, then each job is
followed to its end; the checks read the jobs through the API, the rejects reports from the bucket
and the items table with the administrator's keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest

from tests.evidence import Proof
from tests.input.corpus import personal_values
from tests.input.stack import reasons, report_rows, searched_texts
from tests.input.typed_corpus import ATTRIBUTES, TYPED_CASES, TYPED_DECLARATION, TypedCase, key_cells
from tests.local.support import LocalStackProcess, job_id_for, local_stack

JOB_TIMEOUT_SECONDS = 120
COLLECTION = TYPED_DECLARATION["name"]

TYPED = Proof(
    "RELIABILITY",
    "Bad input",
    "Typed columns (a second schema: decimal, integer, boolean, date, datetime, enum, a text key)",
    injected="12 files of a catalogue schema: decimals above the maximum, below the minimum, with an exponent,"
    " a comma or 39 digits; impossible and non-ISO dates; unknown enum values; booleans spelt oddly, and all"
    " twelve documented spellings in odd cases; empty, blank, quoted-empty and over-long key cells; integers"
    " with a fraction or 39 digits; datetimes without an offset or finer than a millisecond; rows breaking"
    " several rules; repeated SKUs; a missing and a repeated column",
    held="each row written or rejected at its first broken rule, the key's first, with the type rule's reason"
    " (`price is above its maximum, 1000`, `sku is empty`…); values stored in their normal form as DynamoDB"
    " numbers (N), booleans (BOOL) or strings, absent when empty; header problems FAILED",
    figures={"files": 12, "rows": 85, "rejects": 43, "items": 40},
    test="test_each_typed_file_ends_as_the_type_rules_say",
)
NO_CELL = Proof(
    "RELIABILITY",
    "Bad input",
    "No cell of the typed corpus in logs, job records or API errors",
    injected="the typed corpus ingested; then the console, every function's log file and CloudWatch log group, the"
    f" jobs table, GET /jobs/{{jobId}} of every job and the API's answers to GET /{COLLECTION}/{{sku}} for every"
    " SKU cell not stored collected",
    held="none of the corpus's distinct cells (as sent, trimmed, lower-cased; 6 characters or more) occurs in any"
    " of them",
    figures={"values searched": 238, "CloudWatch log groups": 3, "API error answers": 41},
    test="test_no_cell_of_the_typed_corpus_reaches_a_log_a_job_or_an_api_error",
)
PROOFS = [TYPED, NO_CELL]


@dataclass
class Outcome:
    """What the stack made of one typed corpus file."""

    case: TypedCase
    key: str
    job_id: str
    job: dict[str, Any] | None
    rejects: list[dict[str, str]] = field(default_factory=list)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The items whose source is this file, by SKU, each cut to the schema's attributes (wire form)."""


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    settings = ("--set", f"schema={json.dumps(TYPED_DECLARATION)}", "--set", "workerBatchingWindowSeconds=0")
    settings += ("--retry-delays", "1,2", "--logs")
    with local_stack(tmp_path_factory.mktemp("typed-corpus"), *settings) as running:
        yield running


def items_by_source(local: LocalStackProcess) -> dict[str, dict[str, dict[str, Any]]]:
    """Every stored item, cut to the schema's attributes as DynamoDB returns them, by source key and SKU."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    dynamodb = local.client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=local.outputs[f"{COLLECTION}TableName"]):
        for stored in page["Items"]:
            typed = {name: value for name, value in stored.items() if name in ATTRIBUTES}
            found.setdefault(stored["sourceKey"]["S"], {})[stored["sku"]["S"]] = typed
    return found


@pytest.fixture(scope="module")
def outcomes(local: LocalStackProcess) -> dict[str, Outcome]:
    """Upload every file at once, follow each job to its end, then read reports and the table."""
    bucket, prefix = local.outputs["bucketName"], local.outputs["uploadsPrefix"]

    def upload(case: TypedCase) -> Outcome:
        key = f"{prefix}typed/{case.name}"
        return Outcome(case, key, job_id_for(bucket, key, local.upload(key, case.body())), None)

    with ThreadPoolExecutor(4) as pool:
        started = list(pool.map(upload, TYPED_CASES))
    for outcome in started:
        outcome.job = local.finished_job(outcome.job_id, JOB_TIMEOUT_SECONDS)
    stored = items_by_source(local)
    for outcome in started:
        outcome.rejects = report_rows(local, outcome.job)
        outcome.items = stored.get(outcome.key, {})
    return {outcome.case.name: outcome for outcome in started}


def mismatches(outcome: Outcome) -> list[str]:
    """How the stack's outcome for a file differs from the rules' (empty when it holds)."""
    case, job = outcome.case, outcome.job
    assert job is not None
    got: list[str] = []

    def check(what: str, actual: Any, expected: Any) -> None:
        if actual != expected:
            got.append(f"{case.name}: {what} is {actual!r}, expected {expected!r}")

    check("status", job["status"], case.status)
    if case.status == "FAILED":
        if case.error not in job.get("error", ""):
            got.append(f"{case.name}: error {job.get('error')!r} does not contain {case.error!r}")
        check("rows written", job.get("rowsWritten", 0), 0)
    else:
        check(
            "(rowsTotal, rowsValid, rowsRejected)", (job["rowsTotal"], job["rowsValid"], job["rowsRejected"]), case.rows
        )
        check("blankLines", job["blankLines"], case.blank_lines)
        check("extraColumns", tuple(job["extraColumns"]), case.extra_columns)
        check("rowsWritten + rowsSuperseded", job["rowsWritten"] + job["rowsSuperseded"], case.rows[1])
    check("rejects (row, line, reason)", reasons(outcome.rejects), list(case.rejects))
    by_row = {int(r["row"]): tuple(list(r.values())[3:]) for r in outcome.rejects}
    for row, cells in case.report_cells.items():
        check(f"report cells of row {row}", by_row.get(row), cells)
    check("items", outcome.items, dict(case.items))
    return got


def test_each_typed_file_ends_as_the_type_rules_say(outcomes: dict[str, Outcome]) -> None:
    found = [problem for case in TYPED_CASES for problem in mismatches(outcomes[case.name])]
    assert not found, "\n".join(found)
    jobs = [outcomes[case.name].job or {} for case in TYPED_CASES]
    figures = {
        "files": len(TYPED_CASES),
        "rows": sum(job.get("rowsTotal", 0) for job in jobs),
        "rejects": sum(len(outcome.rejects) for outcome in outcomes.values()),
        "items": sum(len(outcome.items) for outcome in outcomes.values()),
    }
    assert figures == TYPED.figures


def api_errors_for_key_cells(local: LocalStackProcess, cells: set[str], stored: set[str]) -> list[str]:
    """The API's answers for every SKU cell of the corpus that is not a stored key once trimmed, as the
    API reads a key (404 or 400)."""
    bodies = []
    for cell in sorted(cell for cell in cells if cell.strip() not in stored):
        response = local.api(f"/{COLLECTION}/{quote(cell, safe='')}")
        while response.status == 429:  # the stage's throttle: wait for the bucket to refill
            time.sleep(0.5)
            response = local.api(f"/{COLLECTION}/{quote(cell, safe='')}")
        assert response.status in (400, 404), (response.status, response.body)
        bodies.append(json.dumps(response.body, ensure_ascii=False))
    return bodies


def test_no_cell_of_the_typed_corpus_reaches_a_log_a_job_or_an_api_error(
    local: LocalStackProcess, outcomes: dict[str, Outcome]
) -> None:
    bodies = [case.body() for case in TYPED_CASES]
    columns = TYPED_DECLARATION["columns"]
    headers = {spelling.lower() for column in columns for spelling in (column["name"], *column.get("aliases", []))}
    # A cell that is one of the schema's own words (an enum value) is the declaration's, which local
    # mode prints at start-up: not personal data.
    declared = {value.lower() for column in columns for value in column.get("values", [])}
    values = {value for value in personal_values(bodies, headers) if value.strip().lower() not in declared}
    texts = searched_texts(local, [outcome.job_id for outcome in outcomes.values()])
    stored = {sku for outcome in outcomes.values() for sku in outcome.items}
    errors = api_errors_for_key_cells(local, set().union(*map(key_cells, bodies)), stored)
    texts["API errors"] = "\n".join(errors)
    leaks = sorted({(value, where) for where, text in texts.items() for value in values if value in text})
    assert not leaks, "\n".join(f"{value!r} in {where}" for value, where in leaks[:50])
    # Not vacuous: every function's log group received its lines, and the API answered with errors.
    shipped = [where for where, text in texts.items() if where.startswith("CloudWatch") and text]
    figures = {"values searched": len(values), "CloudWatch log groups": len(shipped), "API error answers": len(errors)}
    assert figures == NO_CELL.figures
