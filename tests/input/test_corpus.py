"""The bad-input corpus through local mode: each file's job, counts, reject reasons and users, as the
README's rules give them (`tests/input/corpus.py`); and no cell of any of them in a log, job or error.

One dev stack for the module (batching window 0, asynchronous retries shortened). Every file is
uploaded at once, then each job is followed to its end; the checks read the jobs through the API,
the rejects reports from the bucket and the users table with the administrator's keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.evidence import Proof
from tests.input.corpus import (
    BOMB_BLANK_BYTES,
    CASES,
    COMPRESSION,
    DELIMITER,
    EMPTY,
    ENCODING,
    FIELDS,
    GZIP_ROWS,
    KEYS,
    MAX_DECOMPRESSED_BYTES,
    MIB,
    NOT_CSV,
    QUOTING,
    SHAPE,
    SIZE,
    SPELLING,
    Case,
    groups,
    gzip_bomb,
    million_rows_text,
    personal_values,
    searched_body,
)
from tests.input.outcomes import Outcome, ingest_all, mismatches
from tests.input.stack import searched_texts
from tests.local.support import LocalStackProcess, local_stack

pytestmark = pytest.mark.long(seconds=300)

# The biggest generated file (a million gzip rows, 1,000 chunks) needs minutes on a shared machine.
JOB_TIMEOUT_SECONDS = 420


def _group_proof(group: str, injected: str, held: str, *, files: int, rows: int, rejects: int) -> Proof:
    return Proof(
        "RELIABILITY",
        "Bad input",
        group,
        injected=injected,
        held=held,
        figures={"files": files, "rows": rows, "rejects": rejects},
        test="test_corpus_group",
    )


GROUP_PROOFS = {
    proof.name: proof
    for proof in (
        _group_proof(
            EMPTY,
            "an empty file; a header alone, with and without a final newline; only blank lines;"
            " blank lines before the header and between rows",
            "empty and blank-only files FAILED ('empty file'); a header alone COMPLETE with 0 rows;"
            " blank lines counted, never rows",
            files=6,
            rows=3,
            rejects=0,
        ),
        _group_proof(
            ENCODING,
            "BOM, CRLF, mixed LF/CRLF, bare CR, Latin-1, cp1252 (é, €), UTF-16, a NUL byte, a bad byte after"
            " two good rows",
            "BOM and the three line endings (LF, CRLF, a lone CR) ingested alike; every other file FAILED"
            " naming the byte offset and line, with no row written; Latin-1 and cp1252 files name"
            " csv-ingest:schema.format.encoding and cp1252, the UTF-16 file the setting and utf-16",
            files=9,
            rows=8,
            rejects=0,
        ),
        _group_proof(
            DELIMITER,
            "a semicolon Excel export (BOM, CRLF, a quoted cell holding ';', decimal commas in an ignored"
            " column); a tab file under .tsv and under .csv; a pipe file with a quoted '|'; a header that"
            " semicolon and pipe split, neither into the schema's columns",
            "each ingested with its delimiter, the job's format saying which and whether it was detected (not"
            " for .tsv); the last FAILED giving each delimiter's column count and csv-ingest:schema.format.delimiter",
            files=5,
            rows=8,
            rejects=0,
        ),
        _group_proof(
            QUOTING,
            "quoted commas, doubled quotes, quoted LF and CRLF, an unclosed quote, a quote inside an unquoted"
            " cell, text after a closing quote",
            "quoted cells stored exactly, physical line numbers kept; broken quoting FAILED before any row was sent",
            files=6,
            rows=6,
            rejects=1,
        ),
        _group_proof(
            SHAPE,
            "ragged rows, missing name/mail columns, no header, extra and duplicate ignored columns, cased and"
            " padded aliases, duplicate name/mail headers, 513 columns",
            "short and long rows rejected with both field counts; header problems FAILED naming columns by"
            " position; ignored columns listed on the job",
            files=11,
            rows=8,
            rejects=2,
        ),
        _group_proof(
            SPELLING,
            "headers 'Full Name,E-mail,Phone Number', 'Email Address,Full Name', 'FULL_NAME,e_mail,phone-number'",
            "each matched to name, mail and phone (case, spaces, '-' and '_' ignored) and ingested",
            files=3,
            rows=3,
            rejects=0,
        ),
        _group_proof(
            FIELDS,
            "Unicode names, tagged/upper-case/padded/malformed e-mails, phone forms, name and e-mail length"
            " limits, formula-looking cells, repeated e-mails",
            "each row written or rejected with its rule; e-mails lower-cased, phones stripped; the last row"
            " of an e-mail wins; formulas neutralised in the report",
            files=9,
            rows=39,
            rejects=17,
        ),
        _group_proof(
            SIZE,
            "a 900,000-character ignored cell, a 2 MiB record, a 300,000-character name, a 50,000-field line,"
            " 200,000 rows of one e-mail",
            "big ignored cells ingested; the 2 MiB record rejected unread; long read cells rejected and cut"
            " in the report; one e-mail gives one user, its last row",
            files=4,
            rows=200_007,
            rejects=3,
        ),
        _group_proof(
            COMPRESSION,
            f"a .csv.gz of {GZIP_ROWS:,} rows made at test time; a gzip file cut in the middle of its compressed"
            f" data; a gzip bomb (one row, then {BOMB_BLANK_BYTES // MIB} MiB of blank lines, about 130 KB"
            f" compressed) on a stack whose maxDecompressedBytes is {MAX_DECOMPRESSED_BYTES // MIB} MiB; plain"
            " text under .csv.gz; a tab file in two gzip members under .tsv.gz",
            f"the {GZIP_ROWS:,} rows counted and each e-mail's last row stored; the truncated file FAILED with"
            " its compressed size, the bomb at the limit naming csv-ingest:maxDecompressedBytes, the plain"
            " text as not gzip, no row of any written; both members read as one tab file",
            files=5,
            rows=GZIP_ROWS + 2,
            rejects=0,
        ),
        _group_proof(
            NOT_CSV,
            "JSON, HTML, ZIP, an XLSX-like header, PNG, PDF and gzip files named .csv",
            "each FAILED with the first rule it breaks (header, NUL byte or UTF-8, at a byte offset); no row written",
            files=7,
            rows=0,
            rejects=0,
        ),
        _group_proof(
            KEYS,
            "keys with spaces, '+', '=', '&', '%20' and Unicode; uploads outside the prefix or ending .txt,"
            " .CSV, .csv.zip or with no suffix",
            "the job's key is the object's real key; uploads outside the prefix or suffix start no job and"
            " write no user",
            files=8,
            rows=6,
            rejects=0,
        ),
    )
}
PERSONAL_DATA_PROOF = Proof(
    "SECURITY",
    "Personal data",
    "No cell of any corpus row in logs, job records or API errors",
    injected="the whole corpus ingested; then the console, every function's log file and CloudWatch log group, the"
    " jobs table (jobs and chunk markers), GET /jobs/{jobId} of every job and the API's error answers to"
    " GET /users/{email} for every corpus e-mail collected",
    held="none of the corpus's distinct cells, read or ignored columns (as sent, trimmed, lower-cased, phone"
    " digits; 6 characters or more; the 200,000-row file's one row in 1,000, the million-row gzip file's one in"
    " 100,000; gzip files gunzipped, other encodings decoded, other delimiters split) occurs in any of them",
    figures={
        "values searched": 1_326,
        "bytes searched (at least)": 750_000,
        "CloudWatch log groups": 3,
        "API error answers": 73,
    },
    test="test_no_cell_of_the_corpus_reaches_a_log_a_job_or_an_api_error",
)
PROOFS = [*GROUP_PROOFS.values(), PERSONAL_DATA_PROOF]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    # dev, with a worker that does not wait for batches to fill and chunks of 1,000 rows: the rules
    # the corpus checks do not depend on chunking, and the 200,000-row file then takes 200 chunks.
    # A decompressed limit the million-row gzip file fits and the bomb passes (`MAX_DECOMPRESSED_BYTES`).
    # Every log line on its console too (`--logs`): the terminal's full stream is searched as well.
    settings = ("--set", "workerBatchingWindowSeconds=0", "--set", "rowsPerMessage=1000", "--retry-delays", "1,2")
    settings += ("--set", f"maxDecompressedBytes={MAX_DECOMPRESSED_BYTES}", "--logs")
    with local_stack(tmp_path_factory.mktemp("corpus"), *settings) as running:
        yield running


# The suffix a case about keys gets when it must start a job (one of the stack's `uploadsSuffixes`).
CSV_SUFFIX = ".csv"


def key_of(local: LocalStackProcess, case: Case) -> str:
    """Where a case is uploaded: `corpus/<its name>` under the stack's uploads prefix (the name ends
    with the suffix it is read by), unless the case is about keys (its own key, `.csv` added when it
    must start a job, still under the prefix unless `outside`). A key starts a job exactly when it
    ends with one of the stack's `uploadsSuffixes`."""
    prefix, suffixes = local.outputs["uploadsPrefix"], tuple(local.outputs["uploadsSuffixes"])
    if case.outside:
        assert not case.key.startswith(prefix)
        return case.key
    key = prefix + (case.key + (CSV_SUFFIX if case.status else "") if case.key else "corpus/" + case.name)
    assert key.endswith(suffixes) == (case.status is not None), f"{key} against {suffixes}"
    return key


@pytest.fixture(scope="module")
def outcomes(local: LocalStackProcess) -> dict[str, Outcome]:
    return ingest_all(local, CASES, lambda case: key_of(local, case), JOB_TIMEOUT_SECONDS)


def test_the_corpus_holds_at_least_forty_files() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)
    assert len({case.domain for case in CASES if case.users}) == len([c for c in CASES if c.users])


def test_the_gzip_files_bracket_the_decompressed_limit() -> None:
    """Not vacuous: the million rows' text fits the corpus stack's limit, and the bomb's passes it
    from an upload of a few hundred KB."""
    assert len(million_rows_text()) < MAX_DECOMPRESSED_BYTES < BOMB_BLANK_BYTES
    assert len(gzip_bomb()) < 256 * 1024


@pytest.mark.parametrize("group", list(GROUP_PROOFS))
def test_corpus_group(outcomes: dict[str, Outcome], group: str) -> None:
    cases = groups()[group]
    found = [problem for case in cases for problem in mismatches(outcomes[case.name])]
    assert not found, "\n".join(found)
    jobs = [outcomes[case.name].job for case in cases]
    proof = GROUP_PROOFS[group]
    assert len(cases) == proof.figures["files"]
    assert sum(job.get("rowsTotal", 0) for job in jobs if job) == proof.figures["rows"]
    assert sum(len(outcomes[case.name].rejects) for case in cases) == proof.figures["rejects"]


def api_errors_for_corpus_emails(local: LocalStackProcess, values: set[str]) -> list[str]:
    """The API's answers for every e-mail-like corpus value that is not a stored user (404 or 400)."""
    bodies = []
    for value in sorted(v for v in values if "@" in v):
        response = local.api(f"/users/{quote(value, safe='')}")
        while response.status == 429:  # the stage's throttle: wait for the bucket to refill
            time.sleep(0.5)
            response = local.api(f"/users/{quote(value, safe='')}")
        if response.status != 200:
            bodies.append(json.dumps(response.body, ensure_ascii=False))
    return bodies


def test_no_cell_of_the_corpus_reaches_a_log_a_job_or_an_api_error(
    local: LocalStackProcess, outcomes: dict[str, Outcome]
) -> None:
    values = personal_values(searched_body(case, case.body()) for case in CASES)
    texts = searched_texts(local, [outcome.job_id for outcome in outcomes.values()])
    errors = api_errors_for_corpus_emails(local, values)
    texts["API errors"] = "\n".join(errors)
    leaks = sorted({(value, where) for where, text in texts.items() for value in values if value in text})
    assert not leaks, "\n".join(f"{value!r} in {where}" for value, where in leaks[:50])
    # Not vacuous: every function's log group received its lines, and the API answered with errors.
    shipped = [where for where, text in texts.items() if where.startswith("CloudWatch") and text]
    figures = {"values searched": len(values), "CloudWatch log groups": len(shipped), "API error answers": len(errors)}
    assert figures == {name: PERSONAL_DATA_PROOF.figures[name] for name in figures}
    searched = sum(len(text.encode()) for text in texts.values())
    assert searched >= PERSONAL_DATA_PROOF.figures["bytes searched (at least)"]


def test_no_corpus_chunk_was_dead_lettered(local: LocalStackProcess, outcomes: dict[str, Outcome]) -> None:
    """Every valid row of the corpus reached the table through the queue: nothing left or refused."""
    sqs = local.client("sqs")
    for url in (local.outputs["queueUrl"], local.outputs["deadLetterQueueUrl"]):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}, url


def test_the_search_looks_for_every_form_of_a_read_cell() -> None:
    """The personal-data search itself: every data cell as sent, trimmed, lower-cased and as phone
    digits, ignored columns included; every row of a file without a header."""
    with_header = (
        b"id,Name,EMAIL,phone,private-notes\n1, Ada Formful ,Ada@Forms.Example.com,+44 (20) 7946-0958,secret-note\n"
    )
    headerless = b"Grace Nohead,grace@nohead.example.com\n"

    values = personal_values([with_header, headerless])

    assert {" Ada Formful ", "Ada Formful", "ada formful", "Ada@Forms.Example.com", "ada@forms.example.com"} <= values
    assert {"+44 (20) 7946-0958", "+442079460958", "Grace Nohead", "grace@nohead.example.com"} <= values
    assert "secret-note" in values and "private-notes" not in values  # an ignored column's cell, not its header
