"""Worker against moto: latest upload wins under any delivery order; nothing lost; counted once."""

import base64
import csv
import hashlib
import hmac
import io
import json
import random
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
from handlers.common.signing import JobKeys
from handlers.common.validation import normalize_email
from handlers.worker.admission import check_against_job, check_rows
from infra.tables import RECENT_JOBS
from tests.handlers.harness import FakeContext, Faulty, first, throttling
from tests.handlers.test_signals import emf

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


def set_row(field, value):
    return lambda body: body["rows"][0].update({field: value})


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
        Row(public["rowsTotal"], "ann@example.com", "Mallory", None),
        Row(public["rowsTotal"], "mallory@example.com", "Mallory", None),
    )
    source = Source(public["bucket"], public["key"], public["versionId"])
    tiebreak = upload_tiebreak(public["sequencer"], public["jobId"])
    return Chunk(public["jobId"], 0, public["uploadedAtMs"], tiebreak, source, expires_at, rows)


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
    check_rows(decode(body))
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


def test_throttled_writes_are_retried_counted_and_nothing_is_lost(deployment, monkeypatch, capsys):
    rng = random.Random(3)
    bodies = make_uploads(rng, files=2, rows=30, emails=40)
    job_ids = upload_in_order(deployment, bodies)
    flaky = Faulty(
        deployment.worker.writer._client, "put_item", lambda _kw: throttling("PutItem") if rng.random() < 0.3 else None
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
    assert all(deployment.job(job_id)["status"] == "COMPLETE" for job_id in job_ids)


def test_rows_unwritten_when_time_runs_out_fail_their_message_and_succeed_later(deployment, monkeypatch):
    job_id = deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\nStuck,stuck@example.com,\n")
    [message] = deployment.receive_all()
    flaky = Faulty(
        deployment.worker.writer._client,
        "put_item",
        lambda kw: throttling("PutItem") if kw["Item"]["email"] == {"S": "stuck@example.com"} else None,
    )
    monkeypatch.setattr(deployment.worker.writer, "_client", flaky)
    short = FakeContext(function_name="worker", remaining_ms=4_000, step_ms=300)
    assert deployment.deliver([message], short) == [message["MessageId"]]
    job = deployment.job(job_id)
    assert (job["status"], job["chunksDone"]) == ("QUEUED", 0), "a failed chunk is not counted"
    monkeypatch.setattr(deployment.worker.writer, "_client", flaky.real)  # throttling is over
    assert deployment.deliver([message]) == []
    assert set(deployment.users()) == {"a@example.com", "stuck@example.com"}
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_a_write_the_role_may_not_make_fails_its_message_and_logs_why(deployment, monkeypatch, log_lines):
    deployment.upload("uploads/a.csv", HEADER + "A,a@example.com,\n")
    [message] = deployment.receive_all()
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform: dynamodb:PutItem"}},
        "PutItem",
    )
    refusing = Faulty(deployment.worker.writer._client, "put_item", lambda _kwargs: denied)
    monkeypatch.setattr(deployment.worker.writer, "_client", refusing)
    logs = log_lines(deployment.worker)

    assert deployment.deliver([message]) == [message["MessageId"]]

    [failure] = [json.loads(line) for line in logs.getvalue().splitlines() if '"chunk failed"' in line]
    assert failure["messageId"] == message["MessageId"]
    assert "AccessDeniedException" in failure["error"] and "dynamodb:PutItem" in failure["error"]
    assert "a@example.com" not in logs.getvalue()


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


class Slow:
    """The real client, but PutItem takes a moment, while counting how many run at once."""

    def __init__(self, real):
        self.real, self.running, self.most, self._lock = real, 0, 0, threading.Lock()

    def __getattr__(self, name):
        return getattr(self.real, name)

    def put_item(self, **kwargs):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.01)
        with self._lock:
            self.running -= 1
        return self.real.put_item(**kwargs)


def test_a_chunks_rows_are_written_concurrently_within_the_pool(deployment, monkeypatch):
    deployment.set_rows_per_message(100)
    deployment.upload("uploads/a.csv", HEADER + "".join(f"U{i},u{i}@example.com,\n" for i in range(100)))
    slow = Slow(deployment.worker.writer._client)
    monkeypatch.setattr(deployment.worker.writer, "_client", slow)
    assert deployment.drain() == []
    assert 1 < slow.most <= deployment.worker.WRITERS
    assert len(deployment.users()) == 100
