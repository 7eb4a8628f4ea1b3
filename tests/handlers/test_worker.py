"""Worker against moto: latest upload wins under any delivery order; nothing lost; counted once."""

import base64
import csv
import hashlib
import hmac
import io
import json
import random
import re
import secrets
import threading
import time

import pytest
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError

from handlers.common.chunks import (
    MAC_ATTRIBUTE,
    Chunk,
    Row,
    Source,
    decode,
    mac_attributes,
    row_version,
    sign,
    upload_tiebreak,
)
from handlers.common.dynamo import plain
from handlers.common.schema import DEFAULT_SCHEMA
from handlers.common.signing import JobKeys
from handlers.common.validation import normalize_email
from handlers.worker.admission import check_against_job, check_rows
from handlers.worker.writes import JobPresence
from infra.tables import RECENT_JOBS
from tests.handlers.harness import FakeContext, Faulty, first, throttling
from tests.handlers.test_signals import emf

pytestmark = pytest.mark.long(seconds=70)

HEADER = "name,mail,phone\n"


def make_uploads(rng: random.Random, files: int, rows: int, emails: int) -> list[str]:
    """CSV files whose rows reuse a small set of emails (in mixed case), with repeats inside a file."""
    bodies = []
    for f in range(files):
        lines = [f"Person {f}-{r},User{rng.randrange(emails)}@Example.com,+1555{f:02d}{r:05d}" for r in range(rows)]
        bodies.append(HEADER + "\n".join(lines) + "\n")
    return bodies


def oracle(bodies: list[str]) -> dict[str, tuple[str, str]]:
    """For each email: the row of the most recent upload, the last such row in that file."""
    expected: dict[str, tuple[str, str]] = {}
    for body in bodies:  # in upload order: later files overwrite, later rows overwrite
        for row in csv.DictReader(io.StringIO(body)):
            expected[normalize_email(row["mail"])] = (row["name"], row["phone"])
    return expected


def upload_dated(deployment, key, body, ms_into_second):
    _, event = deployment.put_dated(key, body, ms_into_second)
    return deployment.run_producer(event)["jobs"][0]["jobId"]


def upload_in_order(deployment, bodies):
    """Each file a later upload than the one before, in the same second or a later one."""
    return [upload_dated(deployment, f"uploads/file-{i}.csv", body, 100 * i) for i, body in enumerate(bodies)]


@pytest.mark.parametrize("seed", range(5))
def test_final_table_is_latest_upload_last_row_under_shuffled_duplicated_deliveries(deployment, seed):
    rng = random.Random(seed)
    bodies = make_uploads(rng, files=3, rows=40, emails=25)
    job_ids = upload_in_order(deployment, bodies)
    assert deployment.drain(rng=rng, duplicates=0.4) == []
    stored = {email: (item["name"], item.get("phone")) for email, item in deployment.users().items()}
    assert stored == oracle(bodies)
    for job_id in job_ids:
        job = deployment.job(job_id)
        assert job["status"] == "COMPLETE"
        assert job["chunksDone"] == job["chunksTotal"]
        assert job["rowsWritten"] + job["rowsSuperseded"] == job["rowsValid"] == 40


def test_an_older_upload_delivered_last_never_replaces_a_newer_one(deployment):
    older = upload_dated(deployment, "uploads/old.csv", HEADER + "Old Name,ann@example.com,123456\n", 0)
    old_messages = deployment.receive_all()
    newer = upload_dated(deployment, "uploads/new.csv", HEADER + "New Name,ann@example.com,\n", 500)
    assert deployment.drain() == []  # the newer upload's chunk
    assert deployment.deliver(old_messages) == []
    item = deployment.users()["ann@example.com"]
    assert (item["name"], item.get("phone"), item["jobId"]) == ("New Name", None, newer)
    assert (deployment.job(older)["rowsWritten"], deployment.job(older)["rowsSuperseded"]) == (0, 1)
    assert deployment.job(older)["status"] == "COMPLETE"


def test_a_redelivered_chunk_is_counted_once(deployment):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nB,b@example.com,\n")
    [message] = deployment.receive_all()
    assert deployment.deliver([message]) == []
    finished_at = deployment.job(job_id)["finishedAt"]
    assert deployment.deliver([message, message]) == []
    job = deployment.job(job_id)
    assert (job["chunksDone"], job["rowsWritten"], job["status"]) == (1, 2, "COMPLETE")
    assert job["finishedAt"] == finished_at, "the final status is set exactly once"


def test_job_finishes_when_workers_are_faster_than_the_producer(deployment):
    deployment.set_rows_per_message(5)
    body = HEADER + "".join(f"U{i},u{i}@example.com,\n" for i in range(200))
    event = deployment.s3_event("uploads/race.csv", deployment.put("uploads/race.csv", body))

    def tiny() -> FakeContext:
        return FakeContext(remaining_ms=100_000, step_ms=4_000)

    job_id = deployment.producer.handler(event, tiny())["jobs"][0]["jobId"]
    while deployment.continuations:  # every chunk is written before the producer's next step
        assert deployment.drain() == []
        assert deployment.job(job_id)["status"] == "PARSING"
        deployment.producer.handler(deployment.continuations.pop(0), tiny())
    assert deployment.drain() == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"], job["chunksTotal"], job["rowsWritten"]) == ("COMPLETE", 40, 40, 200)


def test_a_malformed_message_fails_alone(deployment):
    deployment.upload("uploads/a.csv", HEADER + "".join(f"U{i},u{i}@example.com,\n" for i in range(6)))
    good = deployment.receive_all()
    bad_json = {**good[0], "MessageId": "bad-json", "Body": "{not json", "MD5OfBody": "x"}
    wrong_shape = {**good[0], "MessageId": "wrong-shape", "Body": json.dumps({"v": 1, "rows": []}), "MD5OfBody": "x"}
    failed = deployment.deliver([good[0], bad_json, good[1], wrong_shape])
    assert sorted(failed) == ["bad-json", "wrong-shape"]
    assert set(deployment.users()) == {f"u{i}@example.com" for i in range(6)}


def forged(deployment, message, change):
    """The message with its chunk changed by `change` (a function of the decoded body) and signed
    with its job's own key, as if the producer had made it: the checks past the MAC are a second
    line, against a producer that made a wrong chunk."""
    body = json.loads(message["Body"])
    change(body)
    return signed({**message, "MessageId": "forged"}, json.dumps(body), deployment.job_key(body["jobId"]))


def signed(message, body, key):
    """`message` with `body`, and the MAC attribute `key` makes for it."""
    return {**message, "Body": body, "MessageAttributes": mac_attributes(sign(body, key))}


FINGERPRINT = DEFAULT_SCHEMA.fingerprint


def set_row(field, value):
    """A change of the chunk's first row: its `field` (`row`, or a column's attribute) set to `value`.
    A row is its number, then its values in the schema's order of columns."""
    position = 0 if field == "row" else 1 + DEFAULT_SCHEMA.attributes.index(field)
    return lambda body: body["rows"][0].__setitem__(position, value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda body: body.update(jobId="no-such-job"), "names job no-such-job, which has no record"),
        (lambda body: body.update(uploadedAtMs=253_402_300_799_000), "uploadedAtMs differ"),  # the year 9999
        (lambda body: body["source"].update(key="uploads/other.csv"), "source differ"),
        (lambda body: body.update(tiebreak="F" * 64), "tiebreak differ"),
        (lambda body: body.update(expiresAt=None), "expiresAt differ"),
        (lambda body: body.update(chunk=1), "chunk 1 is beyond job"),
        (lambda body: body.update(chunk=-1), "negative"),
        (set_row("row", 2), "row number beyond job"),
        (set_row("row", 0), "row number outside"),
        (set_row("email", "NOT AN EMAIL"), "mail is not a valid email address"),
        (set_row("email", "A@example.com"), "not in normalised form"),
        (set_row("name", "n" * 20_029), "name is 20029 characters long"),
        (set_row("name", " padded "), "not in normalised form"),
        (set_row("phone", "not a phone <script>"), "phone is not an optional"),
        (set_row("phone", 4915112345678), "phone is not in normalised form"),
        (set_row("name", None), "name is empty"),
        (lambda body: body.update(schema="0" * 16), f"schema 0000000000000000; this worker's schema is {FINGERPRINT}"),
        (lambda body: body.update(schema="<script>"), "schema that is not a fingerprint"),
        (lambda body: body["rows"][0].append(None), "has 4 values; the schema has 3 columns"),
        (lambda body: body["rows"][0].pop(), "has 2 values; the schema has 3 columns"),
    ],
)
def test_a_chunk_that_does_not_match_its_job_or_the_field_rules_is_refused_before_any_write(
    deployment, log_lines, change, reason
):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    logs = log_lines(deployment.worker)
    assert deployment.deliver([forged(deployment, message, change)]) == ["forged"]
    assert deployment.users() == {}, "nothing of a refused chunk is written"
    assert deployment.job(job_id)["chunksDone"] == 0, "nor counted"
    refusals = [json.loads(line) for line in logs.getvalue().splitlines() if '"chunk refused"' in line]
    assert [r["messageId"] for r in refusals] == ["forged"] and reason in refusals[0]["reason"]
    assert "<script>" not in refusals[0]["reason"] and "NOT AN EMAIL" not in refusals[0]["reason"]
    assert deployment.deliver([message]) == []  # the real chunk still goes through
    assert deployment.job(job_id)["status"] == "COMPLETE"


# --- only the producer's chunks are written: each carries a MAC under its job's key ---------------

TWO_USERS = HEADER + "Ann,ann@example.com,\nBob,bob@example.com,\n"


def refusal_reasons(logs):
    return [json.loads(line)["reason"] for line in logs.getvalue().splitlines() if '"chunk refused"' in line]


def forgery_from_public_fields(public, expires_at):
    """A chunk of the job the API shows (`public`): every field it is checked against copied, the
    row numbers within the job's, and rows of the forger's choice — an existing user renamed, a new
    email added."""
    rows = (
        Row(public["rowsTotal"], ("Mallory", "ann@example.com", None)),
        Row(public["rowsTotal"], ("Mallory", "mallory@example.com", None)),
    )
    source = Source(public["bucket"], public["key"], public["versionId"])
    tiebreak = upload_tiebreak(public["sequencer"], public["jobId"])
    return Chunk(
        public["jobId"], 0, public["uploadedAtMs"], tiebreak, source, expires_at, DEFAULT_SCHEMA.fingerprint, rows
    )


@pytest.mark.parametrize(
    ("forger_key", "reason"),
    [(None, "carries no MAC"), (bytes(32), "MAC does not match")],
    ids=["no MAC", "a MAC under a guessed key"],
)
def test_a_chunk_copying_a_real_jobs_public_fields_with_rows_of_the_forgers_choice_is_refused_before_any_write(
    deployment, log_lines, forger_key, reason
):
    # GIVEN a written upload, and its job as GET /jobs/{id} shows it
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    assert deployment.drain() == []
    before = deployment.users()
    status, public, _ = deployment.api(f"/jobs/{job_id}", resource="/jobs/{jobId}")
    assert status == 200
    # The forger knows every field but the key (expiresAt, hidden by the API, is derivable to the
    # second from uploadedAtMs and jobTtlDays: taken from the record here, the worst case).
    record = deployment.job(job_id)
    chunk = forgery_from_public_fields(public, int(record["expiresAt"]))
    body = chunk.encode()
    # Every check but the MAC admits it: without the MAC it would be written.
    check_rows(decode(body), DEFAULT_SCHEMA)
    check_against_job(decode(body), plain(record))
    message = {"MessageId": "forged", "ReceiptHandle": "r", "Body": body, "MD5OfBody": "x"}
    if forger_key is not None:
        message = signed(message, body, forger_key)
    logs = log_lines(deployment.worker)

    # WHEN it reaches the worker
    failed = deployment.deliver([message])

    # THEN it fails, nothing of it is written or counted, and the reason names no value
    assert failed == ["forged"]
    assert deployment.users() == before
    assert deployment.users()["ann@example.com"]["name"] == "Ann"
    assert "mallory@example.com" not in deployment.users()
    assert (deployment.job(job_id)["chunksDone"], deployment.job(job_id)["rowsWritten"]) == (1, 2)
    [refused] = refusal_reasons(logs)
    assert reason in refused and "chunk 0" in refused and job_id in refused
    assert "Mallory" not in logs.getvalue() and "mallory@example.com" not in logs.getvalue()


def test_a_chunk_the_producer_signed_is_written(deployment):
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    assert message["MessageAttributes"][MAC_ATTRIBUTE]["DataType"] == "String"
    assert deployment.deliver([message]) == []
    assert {email: item["name"] for email, item in deployment.users().items()} == {
        "ann@example.com": "Ann",
        "bob@example.com": "Bob",
    }
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_a_signed_chunk_with_one_row_changed_is_refused(deployment, log_lines):
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    tampered = {**message, "MessageId": "tampered", "Body": message["Body"].replace('"Ann"', '"Mallory"')}
    assert tampered["Body"] != message["Body"]
    logs = log_lines(deployment.worker)
    assert deployment.deliver([tampered]) == ["tampered"]
    assert deployment.users() == {}
    [refused] = refusal_reasons(logs)
    assert "MAC does not match" in refused and job_id in refused
    assert deployment.deliver([message]) == []  # the producer's chunk still goes through
    assert deployment.users()["ann@example.com"]["name"] == "Ann"


def test_a_mac_made_with_another_jobs_key_is_refused(deployment, log_lines):
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    other_job = deployment.upload("uploads/b.csv", HEADER + "Cy,cy@example.com,\n")
    deployment.receive_all()
    body = message["Body"].replace('"Ann"', '"Mallory"')
    logs = log_lines(deployment.worker)
    crossed = signed({**message, "MessageId": "crossed"}, body, deployment.job_key(other_job))
    assert deployment.deliver([crossed]) == ["crossed"]
    assert deployment.users() == {}
    [refused] = refusal_reasons(logs)
    assert "MAC does not match" in refused and job_id in refused


def stored_values(item):
    """Every value an item holds, nested maps and lists included, as a reader of the table gets it."""
    if isinstance(item, dict):
        return [value for nested in item.values() for value in stored_values(nested)]
    if isinstance(item, list | set | tuple):
        return [value for nested in item for value in stored_values(nested)]
    return [item]


def as_key_material(value):
    """A stored value as a forger would try it as a key: its bytes."""
    raw = value.value if isinstance(value, Binary) else value
    return raw if isinstance(raw, bytes) else str(raw).encode()


def test_a_job_record_holds_no_key_to_sign_its_chunks_with(deployment):
    # GIVEN a job the producer queued and the worker finished
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    assert deployment.drain() == []
    key = deployment.job_key(job_id)
    # WHEN a principal allowed to read the jobs table reads the record, and its index entry (what the
    # query function's role reads, and what a point-in-time backup holds)
    record = deployment.job(job_id)
    [indexed] = deployment.dynamodb.Table(deployment.jobs_table).query(
        IndexName=RECENT_JOBS.name,
        KeyConditionExpression=Key(RECENT_JOBS.hash_key).eq(record[RECENT_JOBS.hash_key]),
    )["Items"]
    # THEN neither holds the key, in any form, nor the secret it is derived from, nor any bytes at all
    for item in (record, indexed):
        values = stored_values(item)
        assert not [value for value in values if isinstance(value, Binary | bytes)], "no binary attribute"
        texts = [str(value) for value in values]
        for secret in (key.hex(), base64.b64encode(key).decode(), deployment.signing_secret):
            assert not [text for text in texts if secret in text]
        assert "chunkMacKey" not in item


def test_a_chunk_signed_with_any_value_read_from_the_jobs_table_is_refused(deployment, log_lines):
    # GIVEN a job still waiting for its chunk, and everything a reader of the jobs table can read of it
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    record = deployment.job(job_id)
    candidates = {as_key_material(value) for value in stored_values(record)}
    candidates |= {hmac.new(value, job_id.encode(), hashlib.sha256).digest() for value in candidates}
    # WHEN a chunk of the forger's rows is signed with each: every value as the key, and as the secret
    # a key is derived from
    body = message["Body"].replace('"Ann"', '"Mallory"')
    forgeries = [
        signed({**message, "MessageId": f"forged-{n}"}, body, candidate) for n, candidate in enumerate(candidates)
    ]
    logs = log_lines(deployment.worker)
    failed = deployment.deliver(forgeries)
    # THEN every one is refused for its MAC, and nothing is written
    assert sorted(failed) == sorted(forgery["MessageId"] for forgery in forgeries)
    assert deployment.users() == {}
    reasons = refusal_reasons(logs)
    assert len(reasons) == len(forgeries) and all("MAC does not match" in reason for reason in reasons)
    assert deployment.deliver([message]) == []  # the producer's own chunk, signed with the derived key
    assert deployment.users()["ann@example.com"]["name"] == "Ann"


@pytest.mark.parametrize(
    "forger_key",
    [
        lambda job_id: secrets.token_bytes(32),
        lambda job_id: JobKeys(lambda: "a-guessed-secret-" * 4).for_job(job_id),
        lambda job_id: JobKeys(lambda: secrets.token_urlsafe(48)).for_job(job_id),
        lambda job_id: hashlib.sha256(job_id.encode()).digest(),
    ],
    ids=["random bytes", "the derivation under a guessed secret", "another stack's secret", "a hash of the job id"],
)
def test_a_chunk_signed_with_a_key_not_derived_from_the_stack_secret_is_refused(deployment, log_lines, forger_key):
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    body = message["Body"].replace('"Ann"', '"Mallory"')
    logs = log_lines(deployment.worker)
    assert deployment.deliver([signed({**message, "MessageId": "forged"}, body, forger_key(job_id))]) == ["forged"]
    assert deployment.users() == {}
    [refused] = refusal_reasons(logs)
    assert "MAC does not match" in refused and job_id in refused


def test_a_chunk_of_a_finished_job_is_acknowledged_and_writes_nothing(deployment, log_lines):
    # GIVEN a finished job: every chunk written, then counted (a job completes only when its last chunk is)
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    assert deployment.deliver([message]) == []
    assert deployment.job(job_id)["status"] == "COMPLETE"
    before = deployment.users()
    # WHEN a chunk of it arrives again, signed with its key — redelivered, or forged with a leaked key
    logs = log_lines(deployment.worker)
    leaked = forged(deployment, message, set_row("name", "Mallory"))
    failed = deployment.deliver([message, leaked])
    # THEN both are acknowledged (not retried, not dead-lettered) and no row is written
    assert failed == []
    assert deployment.users() == before
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    sealed = [line for line in lines if line["message"] == "job already complete: chunk acknowledged, nothing written"]
    assert [line["jobId"] for line in sealed] == [job_id, job_id]
    job = deployment.job(job_id)
    assert (job["chunksDone"], job["rowsWritten"], job["status"]) == (1, 2, "COMPLETE")


def test_a_chunk_of_a_job_that_completed_with_rejects_is_acknowledged_and_writes_nothing(deployment):
    job_id = deployment.upload("uploads/a.csv", TWO_USERS + "Nobody,not-an-email,\n")
    [message] = deployment.receive_all()
    assert deployment.deliver([message]) == []
    assert deployment.job(job_id)["status"] == "COMPLETE_WITH_REJECTS"
    before = deployment.users()
    assert deployment.deliver([forged(deployment, message, set_row("name", "Mallory"))]) == []
    assert deployment.users() == before


def test_a_chunk_of_a_failed_job_is_still_written(deployment):
    # A job can fail after some of its chunks were sent: those rows are the upload's.
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    deployment.force_job_status(job_id, "FAILED")
    assert deployment.deliver([message]) == []
    assert set(deployment.users()) == {"ann@example.com", "bob@example.com"}


FAR_FUTURE_MS = 4_070_908_800_000  # 2099-01-01T00:00:00Z


def test_a_chunk_dated_past_the_clock_skew_is_refused_before_any_write(deployment, log_lines):
    # GIVEN a job whose record carries an upload time in 2099 (as a forged eventTime gave one before the
    # producer held upload times within LastModified's second), and its chunk, signed
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    deployment.force_job_status(job_id, "QUEUED", uploadedAtMs=FAR_FUTURE_MS)
    future = forged(deployment, message, lambda body: body.update(uploadedAtMs=FAR_FUTURE_MS))
    logs = log_lines(deployment.worker)
    # WHEN it is delivered THEN it is refused, naming the rule, and nothing is written
    assert deployment.deliver([future]) == ["forged"]
    assert deployment.users() == {}
    [refused] = refusal_reasons(logs)
    assert "uploadedAtMs" in refused and "15 minutes" in refused and job_id in refused
    assert str(FAR_FUTURE_MS) not in refused


def test_a_chunk_dated_within_the_clock_skew_is_written(deployment):
    # S3's clock and the worker's may disagree by a little: an upload time minutes ahead is still an upload.
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    [message] = deployment.receive_all()
    ahead = int(time.time() * 1000) + 10 * 60 * 1000
    deployment.force_job_status(job_id, "QUEUED", uploadedAtMs=ahead)
    assert deployment.deliver([forged(deployment, message, lambda body: body.update(uploadedAtMs=ahead))]) == []
    assert deployment.users()["ann@example.com"]["rowVersion"].startswith(f"{ahead:015d}:")


def plant(deployment, email, uploaded_at_ms):
    """A users item as a chunk dated `uploaded_at_ms` left it (a forged upload time, before the fix)."""
    version = row_version(uploaded_at_ms, "F" * 32 + "0" * 32, 1)
    deployment.dynamodb.Table(deployment.users_table).put_item(
        Item={"email": email, "name": "Planted", "rowVersion": version, "jobId": "0" * 32, "row": 1}
    )


def test_a_row_planted_with_a_far_future_version_is_replaced_by_the_next_real_upload(deployment):
    plant(deployment, "ann@example.com", FAR_FUTURE_MS)
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    assert deployment.drain() == []
    item = deployment.users()["ann@example.com"]
    assert (item["name"], item["jobId"]) == ("Ann", job_id)
    assert (deployment.job(job_id)["rowsWritten"], deployment.job(job_id)["rowsSuperseded"]) == (2, 0)


def test_a_row_dated_within_the_clock_skew_still_wins_over_an_older_upload(deployment):
    # Only a version past now + the skew is taken for planted: a newer real one keeps winning.
    plant(deployment, "ann@example.com", int(time.time() * 1000) + 60_000)
    job_id = deployment.upload("uploads/a.csv", TWO_USERS)
    assert deployment.drain() == []
    assert deployment.users()["ann@example.com"]["name"] == "Planted"
    assert (deployment.job(job_id)["rowsWritten"], deployment.job(job_id)["rowsSuperseded"]) == (1, 1)


def test_chunks_of_a_job_still_parsing_are_written_without_a_chunk_count(deployment):
    # Workers see chunks before the producer has queued the last one: no count to check them by.
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nB,b@example.com,\n")
    deployment.force_job_status(job_id, "PARSING", "chunksTotal")
    assert deployment.drain() == []
    assert set(deployment.users()) == {"a@example.com", "b@example.com"}
    assert deployment.job(job_id)["chunksDone"] == 1


def test_a_job_that_counted_a_chunk_its_producer_never_sent_fails_instead_of_waiting_for_ever(deployment):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    deployment.force_job_status(job_id, "PARSING", "chunksTotal")  # as while the producer still reads
    assert (
        deployment.deliver([forged(deployment, message, lambda body: body.update(chunk=7))]) == []
    )  # cannot be told yet
    deployment.force_job_status(job_id, "QUEUED", chunksTotal=1)  # the producer queues its one chunk
    assert deployment.deliver([message]) == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"], job["chunksTotal"]) == ("FAILED", 2, 1)
    assert job["error"].startswith("more chunks were counted than the producer sent")


# --- faults in the write path: whole calls, single statements, stale hints -------------------------


def statement_email(statement) -> str:
    """The email a statement writes: an INSERT's first parameter, an UPDATE's key (third from last)."""
    parameters = statement["Parameters"]
    return (parameters[0] if statement["Statement"].startswith("INSERT") else parameters[-3])["S"]


class StatementFaults:
    """The real client, except that BatchExecuteStatement answers some statements with an error of
    their own, without running them, as DynamoDB answers a throttled statement inside a batch: `fault`
    is given each statement and returns a BatchStatementError code or None (run it)."""

    def __init__(self, real, fault):
        self.real, self._fault, self.faults = real, fault, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def batch_execute_statement(self, Statements, **kwargs):  # noqa: N803 (boto3's parameter name)
        codes = [self._fault(statement) for statement in Statements]
        run = [statement for statement, code in zip(Statements, codes, strict=True) if code is None]
        answers = iter(self.real.batch_execute_statement(Statements=run, **kwargs)["Responses"] if run else ())
        self.faults += sum(code is not None for code in codes)
        return {
            "Responses": [
                next(answers) if code is None else {"Error": {"Code": code, "Message": "injected"}} for code in codes
            ]
        }


def stored_versions(deployment) -> dict[str, str]:
    """Every stored email's rowVersion now: what a read made at this moment answers."""
    return {email: item["rowVersion"] for email, item in deployment.users().items()}


class StaleHints:
    """The real client, except that BatchGetItem answers as an eventually consistent read may: with the
    versions stored at an earlier moment (`earlier`, from `stored_versions`)."""

    def __init__(self, real, earlier: dict[str, str]):
        self.real, self._earlier = real, earlier

    def __getattr__(self, name):
        return getattr(self.real, name)

    def batch_get_item(self, RequestItems):  # noqa: N803 (boto3's parameter name)
        [(table, request)] = RequestItems.items()
        if request.get("ConsistentRead"):  # a strongly consistent read answers what is stored now
            return self.real.batch_get_item(RequestItems=RequestItems)
        emails = [key["email"]["S"] for key in request["Keys"]]
        items = [{"email": {"S": e}, "rowVersion": {"S": self._earlier[e]}} for e in emails if e in self._earlier]
        return {"Responses": {table: items}, "UnprocessedKeys": {}}


class WithoutOldItems:
    """The real client, except that a statement's ConditionalCheckFailed comes back without its `Item`,
    whatever ReturnValuesOnConditionCheckFailure asked: a capture of DynamoDB made by another emulator's
    authors (dynoxide) found BatchExecuteStatement answering so, where AWS's page says ALL_OLD sets it."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def batch_execute_statement(self, **kwargs):
        answer = self.real.batch_execute_statement(**kwargs)
        for response in answer["Responses"]:
            response.get("Error", {}).pop("Item", None)
        return answer


class Recorded:
    """The real client (or a faulty one), recording each call: its operation and how many statements or
    keys it carried; each call may take `delay` seconds longer, while counting how many run at once."""

    def __init__(self, real, delay: float = 0.0):
        self.real, self._delay, self._lock = real, delay, threading.Lock()
        self.calls: list[tuple[str, int]] = []
        self.running = self.most = 0

    def __getattr__(self, name):
        attribute = getattr(self.real, name)
        if name in ("batch_get_item", "batch_execute_statement", "put_item", "update_item", "get_item"):
            return lambda **kwargs: self._call(name, attribute, kwargs)
        return attribute

    def _call(self, name, attribute, kwargs):
        size = len(kwargs["Statements"]) if "Statements" in kwargs else 1
        if "RequestItems" in kwargs:
            [request] = kwargs["RequestItems"].values()
            size = len(request["Keys"])
        with self._lock:
            self.calls.append((name, size))
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self._delay)
            return attribute(**kwargs)
        finally:
            with self._lock:
                self.running -= 1

    def operations(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, _size in self.calls:
            counts[name] = counts.get(name, 0) + 1
        return counts

    def largest(self, name: str) -> int:
        return max(size for operation, size in self.calls if operation == name)


def record_writes(deployment, monkeypatch, delay: float = 0.0) -> Recorded:
    recorded = Recorded(deployment.worker.writer._client, delay)
    monkeypatch.setattr(deployment.worker.writer, "_client", recorded)
    return recorded


def test_throttled_statements_are_sent_again_counted_and_nothing_is_lost(deployment, monkeypatch, capsys):
    rng = random.Random(3)
    bodies = make_uploads(rng, files=2, rows=30, emails=40)
    job_ids = upload_in_order(deployment, bodies)
    flaky = StatementFaults(
        deployment.worker.writer._client, lambda _statement: "ThrottlingError" if rng.random() < 0.3 else None
    )
    monkeypatch.setattr(deployment.worker.writer, "_client", flaky)
    capsys.readouterr()
    assert deployment.drain() == []
    assert flaky.faults > 5
    metrics = emf(capsys.readouterr().out)
    assert metrics["WriteThrottles"] == flaky.faults
    assert metrics["WriteRetries"] >= metrics["WriteThrottles"]
    stored = {email: (item["name"], item.get("phone")) for email, item in deployment.users().items()}
    assert stored == oracle(bodies)
    for job_id in job_ids:
        job = deployment.job(job_id)
        assert job["status"] == "COMPLETE"
        assert job["rowsWritten"] + job["rowsSuperseded"] == job["rowsValid"] == 30


def test_throttled_calls_are_retried_counted_and_nothing_is_lost(deployment, monkeypatch, capsys):
    rng = random.Random(4)
    bodies = make_uploads(rng, files=2, rows=30, emails=40)
    job_ids = upload_in_order(deployment, bodies)
    reads = Faulty(
        deployment.worker.writer._client,
        "batch_get_item",
        lambda _kw: throttling("BatchGetItem") if rng.random() < 0.3 else None,
    )
    writes = Faulty(
        reads,
        "batch_execute_statement",
        lambda _kw: throttling("BatchExecuteStatement", "ThrottlingException") if rng.random() < 0.3 else None,
    )
    monkeypatch.setattr(deployment.worker.writer, "_client", writes)
    capsys.readouterr()
    assert deployment.drain() == []
    assert reads.faults > 0 and writes.faults > 0
    metrics = emf(capsys.readouterr().out)
    assert metrics["WriteThrottles"] == reads.faults + writes.faults
    stored = {email: (item["name"], item.get("phone")) for email, item in deployment.users().items()}
    assert stored == oracle(bodies)
    assert all(deployment.job(job_id)["status"] == "COMPLETE" for job_id in job_ids)


def test_rows_unwritten_when_time_runs_out_fail_their_message_and_succeed_later(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nStuck,stuck@example.com,\n")
    [message] = deployment.receive_all()
    flaky = StatementFaults(
        deployment.worker.writer._client,
        lambda statement: "ThrottlingError" if statement_email(statement) == "stuck@example.com" else None,
    )
    monkeypatch.setattr(deployment.worker.writer, "_client", flaky)
    short = FakeContext(function_name="worker", remaining_ms=4_000, step_ms=300)
    assert deployment.deliver([message], short) == [message["MessageId"]]
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"]) == ("QUEUED", 0), "a failed chunk is not counted"
    monkeypatch.setattr(deployment.worker.writer, "_client", flaky.real)  # throttling is over
    assert deployment.deliver([message]) == []
    assert set(deployment.users()) == {"a@example.com", "stuck@example.com"}
    job = deployment.job(job_id)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", 2, 0)


def test_a_write_the_role_may_not_make_fails_its_message_and_logs_why(deployment, monkeypatch, log_lines):
    deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform: dynamodb:PartiQLInsert"}},
        "BatchExecuteStatement",
    )
    refusing = Faulty(deployment.worker.writer._client, "batch_execute_statement", lambda _kwargs: denied)
    monkeypatch.setattr(deployment.worker.writer, "_client", refusing)
    logs = log_lines(deployment.worker)

    assert deployment.deliver([message]) == [message["MessageId"]]

    [failure] = [json.loads(line) for line in logs.getvalue().splitlines() if '"chunk failed"' in line]
    assert failure["messageId"] == message["MessageId"]
    assert "AccessDeniedException" in failure["error"] and "dynamodb:PartiQLInsert" in failure["error"]
    assert "a@example.com" not in logs.getvalue()


def refuse_statements_of(deployment, monkeypatch, email: str, code: str) -> StatementFaults:
    refusing = StatementFaults(
        deployment.worker.writer._client, lambda statement: code if statement_email(statement) == email else None
    )
    monkeypatch.setattr(deployment.worker.writer, "_client", refusing)
    return refusing


def test_a_statement_error_that_is_not_retryable_fails_the_chunk_naming_its_code_only(
    deployment, monkeypatch, log_lines
):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nB,b@example.com,\n")
    [message] = deployment.receive_all()
    refuse_statements_of(deployment, monkeypatch, "b@example.com", "AccessDenied")  # e.g. no PartiQLInsert
    logs = log_lines(deployment.worker)

    assert deployment.deliver([message]) == [message["MessageId"]]

    [failure] = [json.loads(line) for line in logs.getvalue().splitlines() if '"chunk failed"' in line]
    assert "AccessDenied" in failure["error"]
    assert "example.com" not in logs.getvalue()
    assert set(deployment.users()) == {"a@example.com"}, "the other statements of the batch still ran"
    assert deployment.job(job_id)["chunksDone"] == 0, "a failed chunk is not counted"


def new_environment(deployment) -> None:
    """The worker as a new environment finds the table: knowing nothing of it, so it reads hints."""
    deployment.worker.writer.presence = JobPresence()


def test_a_chunk_that_failed_halfway_is_counted_whole_when_delivered_again(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nB,b@example.com,\n")
    [message] = deployment.receive_all()
    refusing = refuse_statements_of(deployment, monkeypatch, "b@example.com", "ValidationError")
    assert deployment.deliver([message]) == [message["MessageId"]]
    monkeypatch.setattr(deployment.worker.writer, "_client", refusing.real)
    new_environment(deployment)
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.deliver([message]) == []

    job = deployment.job(job_id)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", 2, 0)
    # a@'s hint is its own version: written by the first delivery, counted without a write.
    assert [call for call in recorded.calls if call[0] == "batch_execute_statement"] == [("batch_execute_statement", 1)]


def test_an_email_inserted_after_its_hint_was_read_is_updated_instead(deployment, monkeypatch):
    upload_dated(deployment, "uploads/old.csv", HEADER + "Old Ann,ann@example.com,123456\n", 0)
    before = stored_versions(deployment)  # nothing yet
    assert deployment.drain() == []
    newer = upload_dated(deployment, "uploads/new.csv", HEADER + "New Ann,ann@example.com,\n", 500)
    monkeypatch.setattr(deployment.worker.writer, "_client", StaleHints(deployment.worker.writer._client, before))
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.drain() == []

    item = deployment.users()["ann@example.com"]
    assert (item["name"], item.get("phone"), item["jobId"]) == ("New Ann", None, newer)
    assert (deployment.job(newer)["rowsWritten"], deployment.job(newer)["rowsSuperseded"]) == (1, 0)
    # The INSERT met DuplicateItem; the UPDATE that followed wrote.
    assert recorded.operations()["batch_execute_statement"] == 2


def test_an_email_inserted_by_a_later_upload_after_its_hint_was_read_is_superseded(deployment, monkeypatch):
    older = upload_dated(deployment, "uploads/old.csv", HEADER + "Old Ann,ann@example.com,\n", 0)
    old_messages = deployment.receive_all()
    before = stored_versions(deployment)  # nothing yet
    upload_dated(deployment, "uploads/new.csv", HEADER + "New Ann,ann@example.com,\n", 500)
    assert deployment.drain() == []
    monkeypatch.setattr(deployment.worker.writer, "_client", StaleHints(deployment.worker.writer._client, before))

    assert deployment.deliver(old_messages) == []

    assert deployment.users()["ann@example.com"]["name"] == "New Ann"
    assert (deployment.job(older)["rowsWritten"], deployment.job(older)["rowsSuperseded"]) == (0, 1)


def a_row_between_two_uploads(deployment):
    """Uploads A, B, C of one email, A and C written: B's messages (not delivered yet), B's job, and the
    versions stored when only A was (a hint an eventually consistent read may still give for B)."""
    upload_dated(deployment, "uploads/a.csv", HEADER + "A,ann@example.com,\n", 0)
    assert deployment.drain() == []
    earlier = stored_versions(deployment)  # A's version
    middle = upload_dated(deployment, "uploads/b.csv", HEADER + "B,ann@example.com,\n", 300)
    b_messages = deployment.receive_all()
    upload_dated(deployment, "uploads/c.csv", HEADER + "C,ann@example.com,\n", 600)
    assert deployment.drain() == []
    return b_messages, middle, earlier


@pytest.mark.parametrize("old_items", [True, False], ids=["failed-condition-with-its-item", "without-it"])
def test_a_row_whose_hint_is_older_than_what_is_stored_by_now_is_superseded(deployment, monkeypatch, old_items):
    # B's UPDATE fails its condition (C is stored). With the stored item (ALL_OLD) nothing more is asked;
    # a DynamoDB that answers without it (WithoutOldItems) has the row read again, strongly consistent,
    # and settled from what is stored, never sent as an INSERT it would fail, then an UPDATE, for ever.
    b_messages, middle, earlier = a_row_between_two_uploads(deployment)
    client = deployment.worker.writer._client
    client = client if old_items else WithoutOldItems(client)
    monkeypatch.setattr(deployment.worker.writer, "_client", StaleHints(client, earlier))
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.deliver(b_messages) == []

    assert deployment.users()["ann@example.com"]["name"] == "C"
    assert (deployment.job(middle)["rowsWritten"], deployment.job(middle)["rowsSuperseded"]) == (0, 1)
    reads = 1 if old_items else 2
    assert recorded.operations() == {"batch_get_item": reads, "batch_execute_statement": 1}


def test_a_stored_item_without_a_version_supersedes_a_row_at_once_even_without_old_items(deployment, monkeypatch):
    # An item stored without a rowVersion (written by hand, or by a tool of before) fails LATEST_WINS
    # (a comparison with a missing attribute is false), as the PutItem's condition did: the row is
    # superseded from its hint, not sent as an UPDATE that fails, is read again, and is sent again
    # until the invocation's time runs out.
    deployment.dynamodb.meta.client.put_item(
        TableName=deployment.users_table, Item={"email": "ann@example.com", "name": "Legacy"}
    )
    job = upload_dated(deployment, "uploads/a.csv", HEADER + "Ann,ann@example.com,\n", 0)
    monkeypatch.setattr(deployment.worker.writer, "_client", WithoutOldItems(deployment.worker.writer._client))
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.drain() == []

    assert deployment.users()["ann@example.com"]["name"] == "Legacy"
    assert (deployment.job(job)["rowsWritten"], deployment.job(job)["rowsSuperseded"]) == (0, 1)
    assert recorded.operations() == {"batch_get_item": 1}


def test_a_row_written_since_its_hint_was_read_is_counted_written(deployment, monkeypatch):
    upload_dated(deployment, "uploads/a.csv", HEADER + "A,ann@example.com,\n", 0)
    assert deployment.drain() == []
    earlier = stored_versions(deployment)  # A's version
    later = upload_dated(deployment, "uploads/b.csv", HEADER + "B,ann@example.com,\n", 300)
    [message] = deployment.receive_all()
    # B's row is written, then its count keeps failing until the invocation runs out of time.
    throttle_progress(deployment, monkeypatch, "transact_write_items", times=10_000)
    short = FakeContext(function_name="worker", remaining_ms=3_000)
    assert deployment.deliver([message], short) == [message["MessageId"]]
    assert deployment.users()["ann@example.com"]["name"] == "B"
    monkeypatch.setattr(deployment.worker.progress, "_client", deployment.worker.progress._client.real)
    monkeypatch.setattr(deployment.worker.writer, "_client", StaleHints(deployment.worker.writer._client, earlier))

    assert deployment.deliver([message]) == []

    job = deployment.job(later)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", 1, 0)


def throttle_progress(deployment, monkeypatch, operation: str, times: int) -> None:
    """The worker's job-progress calls of `operation` are throttled `times` times."""
    real = deployment.worker.progress._client
    throttled = Faulty(real, operation, first(times, lambda: throttling(operation, "ThrottlingException")))
    monkeypatch.setattr(deployment.worker.progress, "_client", throttled)


def test_a_throttled_finish_is_retried_and_the_job_completes(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    throttle_progress(deployment, monkeypatch, "update_item", times=2)
    assert deployment.deliver([message]) == []
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_a_redelivery_finishes_a_job_whose_last_count_failed_to_finish_it(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    # Counted, then the finish keeps failing until the invocation runs out of time.
    throttle_progress(deployment, monkeypatch, "update_item", times=10_000)
    assert deployment.deliver([message], FakeContext(function_name="worker", remaining_ms=3_000)) == [
        message["MessageId"]
    ]
    assert (deployment.job(job_id)["status"], deployment.job(job_id)["chunksDone"]) == ("QUEUED", 1)
    monkeypatch.setattr(deployment.worker.progress, "_client", deployment.worker.progress._client.real)
    assert deployment.deliver([message]) == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"], job["rowsWritten"]) == ("COMPLETE", 1, 1)


def test_a_throttled_transaction_is_retried_and_counted_once(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nB,b@example.com,\n")
    [message] = deployment.receive_all()
    throttle_progress(deployment, monkeypatch, "transact_write_items", times=3)
    assert deployment.deliver([message]) == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"], job["rowsWritten"]) == ("COMPLETE", 1, 2)


@pytest.mark.parametrize("reverse", [False, True])
def test_uploads_of_the_same_millisecond_have_one_winner_whatever_the_order(deployment, reverse):
    for _attempt in range(5):  # both objects dated to one second, so their events to one millisecond
        (second_a, event_a), (second_b, event_b) = (
            deployment.put_dated(f"uploads/{name}.csv", HEADER + f"From {name.upper()},ann@example.com,\n", 500)
            for name in ("a", "b")
        )
        if second_a == second_b:
            break
    else:
        pytest.fail("the two objects were never put within one second")
    first = deployment.run_producer(event_a)["jobs"][0]["jobId"]
    a = deployment.receive_all()
    second = deployment.run_producer(event_b)["jobs"][0]["jobId"]
    b = deployment.receive_all()
    for messages in (b, a) if reverse else (a, b):
        assert deployment.deliver(messages) == []
    winner = max((first, "From A"), (second, "From B"), key=lambda job: upload_tiebreak("0055AED6DCD90281E5", job[0]))
    assert deployment.users()["ann@example.com"]["name"] == winner[1]


# --- requests: a chunk's rows in batches -------------------------------------------------------------

CHUNK_ROWS = 200


def rows_body(name: str, phone: str = "") -> str:
    """CHUNK_ROWS rows, one per email u0…u199@example.com, named `name` and a number."""
    return HEADER + "".join(f"{name} {i},u{i}@example.com,{phone}\n" for i in range(CHUNK_ROWS))


def test_a_fresh_chunk_of_200_rows_is_written_in_10_requests_of_at_most_25_statements(deployment, monkeypatch):
    deployment.set_rows_per_message(CHUNK_ROWS)
    job_id = deployment.upload("uploads/a.csv", rows_body("U"))
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.drain() == []

    assert len(deployment.users()) == CHUNK_ROWS
    job = deployment.job(job_id)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", CHUNK_ROWS, 0)
    assert recorded.operations() == {"batch_get_item": 2, "batch_execute_statement": 8}
    assert recorded.largest("batch_execute_statement") <= 25
    assert recorded.largest("batch_get_item") <= 100
    assert len(recorded.calls) / CHUNK_ROWS <= 0.08


def test_a_chunk_whose_every_email_is_stored_older_is_updated_in_batches(deployment, monkeypatch):
    deployment.set_rows_per_message(CHUNK_ROWS)
    upload_dated(deployment, "uploads/old.csv", rows_body("Old", phone="+15550000000"), 0)
    assert deployment.drain() == []
    newer = upload_dated(deployment, "uploads/new.csv", rows_body("New"), 500)
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.drain() == []

    users = deployment.users()
    assert {(item["name"], item.get("phone"), item["jobId"]) for item in users.values()} == {
        (f"New {i}", None, newer) for i in range(CHUNK_ROWS)
    }, "each item is the new row's, its old phone removed"
    job = deployment.job(newer)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", CHUNK_ROWS, 0)
    assert recorded.largest("batch_execute_statement") <= 25
    assert len(recorded.calls) / CHUNK_ROWS <= 0.12


def an_older_upload_delivered_last(deployment):
    """A chunk of 200 rows (its job and messages) whose every email a later upload has written since."""
    deployment.set_rows_per_message(CHUNK_ROWS)
    older = upload_dated(deployment, "uploads/old.csv", rows_body("Old"), 0)
    old_messages = deployment.receive_all()
    upload_dated(deployment, "uploads/new.csv", rows_body("New"), 500)
    assert deployment.drain() == []
    new_environment(deployment)
    return older, old_messages


def test_rows_of_an_older_upload_delivered_last_are_superseded_without_a_write(deployment, monkeypatch):
    older, old_messages = an_older_upload_delivered_last(deployment)
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.deliver(old_messages) == []

    assert recorded.operations() == {"batch_get_item": 2}, "a read each 100 rows, no write"
    job = deployment.job(older)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", 0, CHUNK_ROWS)
    assert {item["name"] for item in deployment.users().values()} == {f"New {i}" for i in range(CHUNK_ROWS)}


class Unprocessed:
    """The real client, except that the first `times` BatchGetItem calls read only the first half of
    the keys asked and return the rest in UnprocessedKeys, as DynamoDB does when a read runs out of
    throughput or size."""

    def __init__(self, real, times: int):
        self.real, self.left = real, times

    def __getattr__(self, name):
        return getattr(self.real, name)

    def batch_get_item(self, RequestItems):  # noqa: N803 (boto3's parameter name)
        [(table, request)] = RequestItems.items()
        keys = request["Keys"]
        if self.left <= 0 or len(keys) < 2:
            return self.real.batch_get_item(RequestItems=RequestItems)
        self.left -= 1
        half = len(keys) // 2
        answer = self.real.batch_get_item(RequestItems={table: {**request, "Keys": keys[:half]}})
        return {**answer, "UnprocessedKeys": {table: {**request, "Keys": keys[half:]}}}


def test_hints_left_unprocessed_are_read_again_and_still_spare_the_writes(deployment, monkeypatch):
    older, old_messages = an_older_upload_delivered_last(deployment)
    monkeypatch.setattr(deployment.worker.writer, "_client", Unprocessed(deployment.worker.writer._client, times=2))
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.deliver(old_messages) == []

    assert recorded.operations() == {"batch_get_item": 4}
    job = deployment.job(older)
    assert (job["rowsWritten"], job["rowsSuperseded"]) == (0, CHUNK_ROWS)


def test_a_chunks_calls_are_sent_concurrently_within_the_pool(deployment, monkeypatch):
    deployment.set_rows_per_message(CHUNK_ROWS)
    deployment.upload("uploads/a.csv", rows_body("U"))
    recorded = record_writes(deployment, monkeypatch, delay=0.05)
    assert deployment.drain() == []
    assert 1 < recorded.most <= deployment.worker.WRITERS
    assert len(deployment.users()) == CHUNK_ROWS


def new_rows_body(name: str) -> str:
    """CHUNK_ROWS rows of emails rows_body's are not (n0…n199@example.com)."""
    return HEADER + "".join(f"{name} {i},n{i}@example.com,\n" for i in range(CHUNK_ROWS))


def then(first: str, second: str) -> str:
    """Two bodies as one file: `first`'s rows, then `second`'s."""
    return first + second.removeprefix(HEADER)


def test_after_a_chunk_of_new_emails_the_jobs_next_is_written_without_hints(deployment, monkeypatch):
    # Reading hints costs half a read unit a row whatever is stored: once a job's chunk found its emails
    # all new, the job's next chunk goes out as INSERTs at once (8 requests for 200 rows, no read).
    deployment.set_rows_per_message(CHUNK_ROWS)
    body = then(new_rows_body("N"), HEADER + "".join(f"B {i},b{i}@example.com,\n" for i in range(CHUNK_ROWS)))
    job_id = deployment.upload("uploads/b.csv", body)
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.drain(batch_size=1) == []

    assert len(deployment.users()) == 2 * CHUNK_ROWS
    job = deployment.job(job_id)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", 2 * CHUNK_ROWS, 0)
    assert recorded.operations() == {"batch_get_item": 2, "batch_execute_statement": 16}


def test_a_jobs_first_chunk_reads_hints_whatever_another_jobs_found(deployment, monkeypatch):
    # Another file says nothing of this one: a corrected file uploaded after a new one has its hints read,
    # so its stored rows go out as UPDATEs at once (10 requests), not as INSERTs refused one by one.
    deployment.set_rows_per_message(CHUNK_ROWS)
    upload_dated(deployment, "uploads/a.csv", rows_body("A"), 0)
    assert deployment.drain() == []
    upload_dated(deployment, "uploads/n.csv", new_rows_body("N"), 100)
    assert deployment.drain() == []  # its emails were all new: its environment would skip hints for it
    corrected = upload_dated(deployment, "uploads/c.csv", rows_body("C"), 200)
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.drain() == []

    assert recorded.operations() == {"batch_get_item": 2, "batch_execute_statement": 8}
    assert (deployment.job(corrected)["rowsWritten"], deployment.job(corrected)["rowsSuperseded"]) == (CHUNK_ROWS, 0)


def test_stored_rows_met_without_hints_are_updated_or_superseded_and_the_hints_come_back(deployment, monkeypatch):
    # A job whose first chunk's emails were new sends its second without hints: every INSERT of a stored
    # email meets DuplicateItem and becomes an UPDATE under LATEST_WINS. An older upload delivered last
    # has its own first chunk's hints read: its rows are superseded without a write.
    deployment.set_rows_per_message(CHUNK_ROWS)
    upload_dated(deployment, "uploads/a.csv", rows_body("A"), 0)
    assert deployment.drain() == []
    older = upload_dated(deployment, "uploads/b.csv", rows_body("B"), 300)
    older_messages = deployment.receive_all()
    newer = upload_dated(deployment, "uploads/c.csv", then(new_rows_body("N"), rows_body("C")), 600)
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.drain(batch_size=1) == []
    # the first chunk: 2 reads and 8 calls of INSERTs; the second: 8 of INSERTs, then 8 of UPDATEs
    assert recorded.operations() == {"batch_get_item": 2, "batch_execute_statement": 24}
    assert deployment.deliver(older_messages) == []

    assert {item["name"] for email, item in deployment.users().items() if email.startswith("u")} == {
        f"C {i}" for i in range(CHUNK_ROWS)
    }
    assert (deployment.job(newer)["rowsWritten"], deployment.job(newer)["rowsSuperseded"]) == (2 * CHUNK_ROWS, 0)
    assert (deployment.job(older)["rowsWritten"], deployment.job(older)["rowsSuperseded"]) == (0, CHUNK_ROWS)
    assert recorded.operations() == {"batch_get_item": 4, "batch_execute_statement": 24}


def test_rows_met_without_hints_are_written_by_an_invocation_already_past_its_margin(deployment):
    # A DuplicateItem's UPDATE is sent at once, without a wait, even when the invocation's time left is
    # already inside the response margin (short timeouts): otherwise a chunk of stored emails written
    # without hints would fail on every delivery.
    deployment.set_rows_per_message(CHUNK_ROWS)
    upload_dated(deployment, "uploads/a.csv", rows_body("A"), 0)
    assert deployment.drain() == []
    newer = upload_dated(deployment, "uploads/b.csv", then(new_rows_body("N"), rows_body("B")), 300)

    by_chunk = sorted(deployment.receive_all(), key=lambda message: json.loads(message["Body"])["chunk"])
    for message in by_chunk:  # the new emails (hints read: none stored), then the stored ones (no hints)
        inside_margin = FakeContext(function_name="worker", remaining_ms=1_500)
        assert deployment.deliver([message], inside_margin) == []

    assert {item["name"] for email, item in deployment.users().items() if email.startswith("u")} == {
        f"B {i}" for i in range(CHUNK_ROWS)
    }
    assert (deployment.job(newer)["rowsWritten"], deployment.job(newer)["rowsSuperseded"]) == (2 * CHUNK_ROWS, 0)


def test_an_items_times_are_written_as_the_jobs_are_utc_with_z(deployment):
    # One format for every timestamp the API answers: ISO 8601 in UTC to the millisecond, with `Z`.
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    assert deployment.drain() == []
    item = deployment.users()["a@example.com"]
    job = deployment.job(job_id)
    assert item["uploadedAt"] == job["uploadedAt"]
    for stamp in (item["uploadedAt"], item["updatedAt"], job["startedAt"], job["finishedAt"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
