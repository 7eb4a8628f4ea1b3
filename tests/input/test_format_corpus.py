"""Files in other encodings through local mode, on stacks that declare them: a cp1252 stack and a
UTF-16 stack (the default users schema with `format.encoding` set, `--set schema=<its JSON>`). Each
file's job, counts, `format` and users, as the README's CSV rules give them
(`tests/input/corpus.py`: `CP1252_CASES`, `UTF16_CASES`); and no cell of any of them in a log, a job
record or the console.

The two stacks start at once (local mode's start-up is most of this module's time), and their files
are uploaded at once, each job followed to its end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from handlers.common.schema import DEFAULT_SCHEMA
from tests.evidence import Proof
from tests.input.corpus import (
    CP1252_CASES,
    CP1252_STACK,
    UTF16_CASES,
    UTF16_STACK,
    Case,
    personal_values,
    searched_body,
)
from tests.input.outcomes import Outcome, ingest_all, mismatches
from tests.input.stack import searched_texts
from tests.local.support import LocalStackProcess, start_local, stop_local

JOB_TIMEOUT_SECONDS = 120
# Each stack: the encoding it declares, and the files uploaded to it.
STACKS: dict[str, tuple[str, tuple[Case, ...]]] = {
    CP1252_STACK: ("cp1252", CP1252_CASES),
    UTF16_STACK: ("utf-16", UTF16_CASES),
}

GROUP_PROOFS = {
    CP1252_STACK: Proof(
        "RELIABILITY",
        "Bad input",
        "A cp1252 stack (csv-ingest:schema.format.encoding: cp1252)",
        injected="a Windows export in cp1252 with é and € (CRLF), the Latin-1 file, a gzip-compressed cp1252 file,"
        " and a UTF-8 file with its BOM",
        held="the three cp1252 files ingested with é, ë and € stored as Unicode and the job's format saying cp1252"
        " (gzip for the .gz); the UTF-8 file FAILED, its BOM named and the setting to set to utf-8",
        figures={"files": 4, "rows": 5, "users": 5},
        test="test_each_file_of_a_declared_encoding_ends_as_the_rules_say",
    ),
    UTF16_STACK: Proof(
        "RELIABILITY",
        "Bad input",
        "A UTF-16 stack (csv-ingest:schema.format.encoding: utf-16)",
        injected="a little-endian UTF-16 file, a big-endian one with CRLF, é and €, and a UTF-8 file (no byte order"
        " mark)",
        held="both UTF-16 files ingested, cells stored as Unicode; the UTF-8 file FAILED, the message naming the"
        " missing byte order mark and the setting",
        figures={"files": 3, "rows": 3, "users": 3},
        test="test_each_file_of_a_declared_encoding_ends_as_the_rules_say",
    ),
}
NO_CELL = Proof(
    "SECURITY",
    "Personal data",
    "No cell of a cp1252 or UTF-16 file in logs or job records",
    injected="the files of both stacks ingested or failed; then each stack's console, function log files,"
    " CloudWatch log groups, jobs table and GET /jobs/{jobId} of every job collected",
    held="none of the files' distinct cells (decoded from their encoding: as sent, trimmed, lower-cased, phone"
    " digits; 6 characters or more) occurs in any of them",
    figures={"values searched": 43, "CloudWatch log groups": 6},
    test="test_no_cell_of_another_encoding_reaches_a_log_or_a_job",
)
PROOFS = [*GROUP_PROOFS.values(), NO_CELL]


def _settings(encoding: str) -> tuple[str, ...]:
    schema = {**DEFAULT_SCHEMA.declaration(), "format": {"encoding": encoding}}
    settings = ("--set", f"schema={json.dumps(schema)}", "--set", "workerBatchingWindowSeconds=0")
    return (*settings, "--retry-delays", "1,2", "--logs")


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalStackProcess]]:
    """Both stacks, started at once; each stopped at the end (and a started one stopped if the other
    fails to start)."""
    root = tmp_path_factory.mktemp("format-corpus")
    with ExitStack() as stopping:
        with ThreadPoolExecutor(len(STACKS)) as pool:
            starting = {
                group: pool.submit(start_local, root / encoding, *_settings(encoding))
                for group, (encoding, _cases) in STACKS.items()
            }
        running: dict[str, LocalStackProcess] = {}
        for group, future in starting.items():
            if future.exception() is None:
                running[group] = future.result()
                stopping.callback(stop_local, running[group])
        for future in starting.values():
            if (error := future.exception()) is not None:
                raise error
        yield running


def key_of(local: LocalStackProcess, case: Case) -> str:
    """`format/<its name>` under the uploads prefix: the name ends with one of the stack's suffixes."""
    key = local.outputs["uploadsPrefix"] + "format/" + case.name
    assert key.endswith(tuple(local.outputs["uploadsSuffixes"])), key
    return key


@pytest.fixture(scope="module")
def outcomes(stacks: dict[str, LocalStackProcess]) -> dict[str, dict[str, Outcome]]:
    """Each stack's outcomes by file name, both stacks' files ingested at once."""

    def ingest(group: str) -> dict[str, Outcome]:
        local = stacks[group]
        return ingest_all(local, STACKS[group][1], lambda case: key_of(local, case), JOB_TIMEOUT_SECONDS)

    with ThreadPoolExecutor(len(STACKS)) as pool:
        return dict(zip(STACKS, pool.map(ingest, STACKS), strict=True))


@pytest.mark.parametrize("group", list(STACKS))
def test_each_file_of_a_declared_encoding_ends_as_the_rules_say(
    outcomes: dict[str, dict[str, Outcome]], group: str
) -> None:
    found = [problem for outcome in outcomes[group].values() for problem in mismatches(outcome)]
    assert not found, "\n".join(found)
    jobs = [outcome.job or {} for outcome in outcomes[group].values()]
    figures = {
        "files": len(jobs),
        "rows": sum(job.get("rowsTotal", 0) for job in jobs),
        "users": sum(len(outcome.users) for outcome in outcomes[group].values()),
    }
    assert figures == GROUP_PROOFS[group].figures


def test_no_cell_of_another_encoding_reaches_a_log_or_a_job(
    stacks: dict[str, LocalStackProcess], outcomes: dict[str, dict[str, Outcome]]
) -> None:
    values = personal_values(searched_body(case, case.body()) for _encoding, cases in STACKS.values() for case in cases)
    texts = {
        f"{group}: {where}": text
        for group, local in stacks.items()
        for where, text in searched_texts(local, [o.job_id for o in outcomes[group].values()]).items()
    }
    leaks = sorted({(value, where) for where, text in texts.items() for value in values if value in text})
    assert not leaks, "\n".join(f"{value!r} in {where}" for value, where in leaks[:50])
    # Not vacuous: accented and € cells are among those searched, and every function's log group
    # of both stacks received its lines.
    assert {"Émile Côté", "Chloé €uroshop", "Zoë €uro-Sixteen"} <= values
    shipped = [where for where, text in texts.items() if "CloudWatch" in where and text]
    assert {"values searched": len(values), "CloudWatch log groups": len(shipped)} == NO_CELL.figures
