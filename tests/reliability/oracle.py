"""The table and the jobs the pipeline must end with, computed from the uploaded files alone.

An oracle that shared the code under test would agree with it whatever it did, so this module
imports nothing from `handlers`: it reads the files with the stdlib `csv` module and applies the
README's "CSV rules" as written there (header matched trimmed and case-insensitively, `email` for
`mail`; blank records skipped and counted; a row rejected for a wrong field count, an empty or
over-long name, an email that is not `local@dotted.domain`, a phone that is not `+`? and 6–15
digits once spaces, dashes, dots and parentheses are removed; the later row of a file wins, and the
later upload wins). It covers what `generate` writes — valid rows in several spellings, invalid
emails, phones and names, ragged rows, blank lines, repeated and shared emails — and the file-level
failures a test is likely to hand it (not UTF-8, no header, a missing or repeated column).

`verify` then compares a running local stack with an `Expectation`, scoped to one email domain so
that scenarios sharing a stack do not see each other's rows, and returns figures, never values:
its findings name uploads, rows and fields, not the names, emails or phones they hold.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from tests.local.support import LocalStackProcess, wait_for

COMPLETE = "COMPLETE"
COMPLETE_WITH_REJECTS = "COMPLETE_WITH_REJECTS"
FAILED = "FAILED"
ENDED = (COMPLETE, COMPLETE_WITH_REJECTS, FAILED)

# The README's rules, restated here on purpose (see the module docstring).
_NAME_LIMIT = 256
_EMAIL_LIMIT = 254
_DOMAIN_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_VALID_EMAIL = re.compile(rf"[a-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})+")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_VALID_PHONE = re.compile(r"\+?[0-9]{6,15}")
_COLUMNS = {"name": ("name",), "mail": ("mail", "email"), "phone": ("phone",)}


@dataclass(frozen=True)
class Upload:
    """One object put under the uploads prefix: its key and its bytes."""

    key: str
    body: bytes


@dataclass(frozen=True)
class ExpectedUser:
    """What the users table must hold for one email: the winning row's values and where it came from."""

    name: str
    phone: str | None
    key: str
    upload: int
    """Index of the winning upload in the sequence given to `expect` (a key may be uploaded twice)."""
    row: int
    """The winning row's number in its file (1 = first data row; blank lines are not rows)."""


@dataclass(frozen=True)
class ExpectedJob:
    """A job's final outcome; for a FAILED job the counts are 0 and only the status is compared."""

    key: str
    status: str
    rows_total: int
    rows_valid: int
    rows_rejected: int
    blank_lines: int


@dataclass(frozen=True)
class Expectation:
    users: Mapping[str, ExpectedUser]
    jobs: Sequence[ExpectedJob]
    """One per upload, in upload order."""


@dataclass(frozen=True)
class _Reading:
    status: str
    users: dict[str, tuple[str, str | None, int]]  # email -> (name, phone, row): the file's last valid row wins
    rows_total: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0


def _valid_row(cells: list[str], width: int, columns: Mapping[str, int]) -> tuple[str, str, str | None] | None:
    """(email, name, phone) normalised, or None when the row breaks a rule."""
    if len(cells) != width:
        return None
    email = cells[columns["mail"]].strip().lower()
    if len(email) > _EMAIL_LIMIT or not _VALID_EMAIL.fullmatch(email):
        return None
    name = cells[columns["name"]].strip()
    if not name or len(name) > _NAME_LIMIT:
        return None
    phone: str | None = None
    if "phone" in columns and cells[columns["phone"]].strip():
        phone = _PHONE_SEPARATORS.sub("", cells[columns["phone"]])
        if not _VALID_PHONE.fullmatch(phone):
            return None
    return email, name, phone


def _is_blank(cells: list[str]) -> bool:
    return all(not cell.strip() for cell in cells)


def read_file(body: bytes) -> _Reading:
    """One file's outcome under the CSV rules."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _Reading(FAILED, {})
    if "\0" in text:
        return _Reading(FAILED, {})
    records = iter(csv.reader(io.StringIO(text, newline="")))
    header = next((cells for cells in records if not _is_blank(cells)), None)
    if header is None:
        return _Reading(FAILED, {})
    names = [cell.strip().lower() for cell in header]
    columns: dict[str, int] = {}
    for column, spellings in _COLUMNS.items():
        found = [i for i, name in enumerate(names) if name in spellings]
        if len(found) > 1:
            return _Reading(FAILED, {})
        if found:
            columns[column] = found[0]
    if "name" not in columns or "mail" not in columns:
        return _Reading(FAILED, {})
    users: dict[str, tuple[str, str | None, int]] = {}
    total = valid = blank = 0
    for cells in records:
        if _is_blank(cells):
            blank += 1
            continue
        total += 1
        row = _valid_row(cells, len(header), columns)
        if row is not None:
            valid += 1
            email, name, phone = row
            users[email] = (name, phone, total)
    status = COMPLETE if valid == total else COMPLETE_WITH_REJECTS
    return _Reading(status, users, total, valid, total - valid, blank)


def expect(uploads: Sequence[Upload]) -> Expectation:
    """The final table and jobs for `uploads`, in the order S3 received them (each one triggers a job)."""
    users: dict[str, ExpectedUser] = {}
    jobs = []
    for index, upload in enumerate(uploads):
        reading = read_file(upload.body)
        jobs.append(
            ExpectedJob(
                upload.key,
                reading.status,
                reading.rows_total,
                reading.rows_valid,
                reading.rows_rejected,
                reading.blank_lines,
            )
        )
        for email, (name, phone, row) in reading.users.items():
            users[email] = ExpectedUser(name, phone, upload.key, index, row)
    return Expectation(users, jobs)


# --- inputs -------------------------------------------------------------------------------------------

_FIRST = ("Ana", "Bo", "Chidi", "Dana", "Émile", "Farah", "Gus", "Hana", "Ivo", "Jun", "Zoë", "Łukasz")
_LAST = ("Smith", "O'Neil", "Ngata", "Åberg", "Lee", "Doe, Jr.", 'the "Ace"', "Kowalski", "Ito", "Brown\nline two")
# (what is wrong, how the row is written): each breaks exactly one rule.
_INVALID = ("email without @", "email without a dotted domain", "email with a space", "empty name", "phone", "ragged")
HEADER = ("Name", " Email ", "phone", "note")


def generate(domain: str, rows: int, *, seed: int, invalid_every: int = 0, shared: Sequence[str] = ()) -> bytes:
    """A CSV file of `rows` data rows under `HEADER` (trimmed and mixed-case, `Email` for `mail`, an
    extra column), with emails `…@domain`.

    Deterministic in `seed`. Names carry the seed and row, so a stale winner is told apart. Every
    `invalid_every`-th row breaks one rule (cycling through `_INVALID`); about one row in 40 repeats
    an earlier email of the file (the later row must win); about one in 4 takes an email of
    `shared` (full addresses, for files that overlap — give them `domain` too); every 50th row is
    followed by a blank line or a line of empty cells. Emails come upper-cased or padded with
    spaces now and then, phones in several spellings or empty, names with commas, quotes and
    letters beyond ASCII, lines ending in CRLF or LF as the seed picks.
    """
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=rng.choice(("\r\n", "\n")))
    writer.writerow(HEADER)
    written: list[str] = []
    for row in range(1, rows + 1):
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)} {seed}-{row}"
        if shared and rng.random() < 0.25:
            email = rng.choice(shared)
        elif written and rng.random() < 0.025:
            email = rng.choice(written)
        else:
            email = f"u{row}.s{seed}+tag@{domain}" if row % 7 == 0 else f"u{row}.s{seed}@{domain}"
        written.append(email)
        phone = rng.choice(("", "+44 20 7946 0958", "(555) 123-4567", "555.123.4567", f"+1{row:09d}"))
        shown = rng.choice((email, email.upper(), f"  {email} "))
        cells = [name, shown, phone, rng.choice(("", "x", "=1+1"))]
        if invalid_every and row % invalid_every == 0:
            cells = _break(cells, _INVALID[(row // invalid_every) % len(_INVALID)], domain)
        writer.writerow(cells)
        if row % 50 == 0:
            writer.writerow([] if rng.random() < 0.5 else ["", " ", "", ""])
    return out.getvalue().encode()


def _break(cells: list[str], how: str, domain: str) -> list[str]:
    name, email, phone, note = cells
    local = email.strip().partition("@")[0]
    broken = {
        "email without @": [name, local, phone, note],
        "email without a dotted domain": [name, f"{local}@localhost", phone, note],
        "email with a space": [name, f"{local} x@{domain}", phone, note],
        "empty name": ["  ", email, phone, note],
        "phone": [name, email, "12-ab-34", note],
        "ragged": [name, email, phone],
    }
    return broken[how]


# --- comparison -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """How the stack compares with the oracle; `findings` name uploads, rows, jobs and fields only."""

    rows_checked: int
    lost: int
    """Expected emails the table does not hold."""
    stale: int
    """Expected emails held with another name, phone or source (job, key, row)."""
    extra: int
    """Emails of the domain the table holds and the oracle does not expect."""
    job_mismatches: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not (self.lost or self.stale or self.extra or self.job_mismatches)

    def __str__(self) -> str:
        head = (
            f"{self.rows_checked} rows checked: {self.lost} lost, {self.stale} stale, {self.extra} extra,"
            f" {len(self.job_mismatches)} job mismatches"
        )
        return "\n".join([head, *self.job_mismatches, *self.findings[:20]])


def _plain(value: Any) -> Any:
    """DynamoDB's numbers as ints, in nested maps and lists too."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _items(local: LocalStackProcess, table: str) -> list[dict[str, Any]]:
    deserializer = TypeDeserializer()
    items = []
    for page in local.client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += [{k: _plain(deserializer.deserialize(v)) for k, v in item.items()} for item in page["Items"]]
    return items


def stored_users(local: LocalStackProcess, domain: str) -> dict[str, dict[str, Any]]:
    """Every item of the users table whose email is `…@domain`, read with the administrator's keys."""
    table = local.outputs["usersTableName"]
    return {item["email"]: item for item in _items(local, table) if item["email"].endswith("@" + domain)}


def stored_job(local: LocalStackProcess, job_id: str) -> dict[str, Any] | None:
    """The job's record (sk "JOB"), straight from the jobs table."""
    found = local.client("dynamodb").get_item(
        TableName=local.outputs["jobsTableName"],
        Key={"jobId": {"S": job_id}, "sk": {"S": "JOB"}},
        ConsistentRead=True,
    )
    if "Item" not in found:
        return None
    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(v)) for k, v in found["Item"].items()}


def job_mismatches(job_id: str, record: Mapping[str, Any] | None, expected: ExpectedJob) -> list[str]:
    """What differs between a job's record and its expected outcome, field by field."""
    if record is None:
        return [f"job {job_id}: no record"]
    if record.get("status") != expected.status:
        return [f"job {job_id}: status {record.get('status')}, expected {expected.status}"]
    if expected.status == FAILED:
        return []
    wrong = [
        f"job {job_id}: {name} {record.get(name)}, expected {value}"
        for name, value in (
            ("rowsTotal", expected.rows_total),
            ("rowsValid", expected.rows_valid),
            ("rowsRejected", expected.rows_rejected),
            ("blankLines", expected.blank_lines),
            ("key", expected.key),
        )
        if record.get(name) != value
    ]
    written, superseded = record.get("rowsWritten", 0), record.get("rowsSuperseded", 0)
    if written + superseded != expected.rows_valid:
        wrong.append(
            f"job {job_id}: rowsWritten {written} + rowsSuperseded {superseded} != rowsValid {expected.rows_valid}"
        )
    if record.get("chunksDone") != record.get("chunksTotal"):
        wrong.append(f"job {job_id}: chunksDone {record.get('chunksDone')} != chunksTotal {record.get('chunksTotal')}")
    return wrong


def verify(local: LocalStackProcess, expectation: Expectation, job_ids: Sequence[str], domain: str) -> Verdict:
    """Compare the stack's users of `domain` and the jobs `job_ids` (one per upload, in upload order)
    with `expectation`. Call it once the jobs have ended (`settle`)."""
    if len(job_ids) != len(expectation.jobs):
        raise ValueError(f"{len(job_ids)} job ids for {len(expectation.jobs)} uploads")
    mismatches = [
        wrong
        for job_id, expected in zip(job_ids, expectation.jobs, strict=True)
        for wrong in job_mismatches(job_id, stored_job(local, job_id), expected)
    ]
    stored = stored_users(local, domain)
    expected_users = {email: user for email, user in expectation.users.items() if email.endswith("@" + domain)}
    findings: list[str] = []
    lost = stale = 0
    for email, user in expected_users.items():
        where = f"upload {user.upload} ({user.key}) row {user.row}"
        item = stored.get(email)
        if item is None:
            lost += 1
            findings.append(f"lost: {where}")
            continue
        differs = [
            name
            for name, got, want in (
                ("name", item.get("name"), user.name),
                ("phone", item.get("phone"), user.phone),
                ("jobId", item.get("jobId"), job_ids[user.upload]),
                ("sourceKey", item.get("sourceKey"), user.key),
                ("row", item.get("row"), user.row),
            )
            if got != want
        ]
        if differs:
            stale += 1
            findings.append(
                f"stale: {where} held from job {item.get('jobId')} row {item.get('row')} ({', '.join(differs)})"
            )
    extra = [item for email, item in stored.items() if email not in expected_users]
    findings += [f"extra: from job {item.get('jobId')} row {item.get('row')}" for item in extra]
    return Verdict(len(expected_users), lost, stale, len(extra), mismatches, findings)


def settle(local: LocalStackProcess, job_ids: Sequence[str], timeout: float = 180) -> list[dict[str, Any]]:
    """Wait until every job has ended (read from the jobs table, so an API under load does not matter)."""
    ended: dict[str, dict[str, Any]] = {}

    def all_ended() -> bool:
        for job_id in job_ids:
            if job_id not in ended:
                record = stored_job(local, job_id)
                if record is not None and record.get("status") in ENDED:
                    ended[job_id] = record
        return len(ended) == len(job_ids)

    wait_for(all_ended, timeout, f"all {len(job_ids)} jobs to end", 0.5)
    return [ended[job_id] for job_id in job_ids]
