"""Producer against moto: events, CSV cases, reports, duplicates, continuation."""

import csv
import importlib
import io
import time
from dataclasses import replace
from urllib.parse import quote_plus

import pytest

from handlers.common.chunks import MAC_ATTRIBUTE_BYTES, decode
from handlers.common.jobs import job_id_for
from handlers.producer.job_store import Checkpoint
from tests.handlers.harness import (
    SAMPLE_CSV,
    FakeContext,
    Faulty,
    Killed,
    SlowBodies,
    after,
    first,
    slow,
    throttling,
)

pytestmark = pytest.mark.long(seconds=80)

HEADER = "name,mail,phone\n"
# Where a row of the default schema (name, mail, phone) holds each value.
NAME, MAIL = 0, 1


def queued_chunks(deployment):
    return sorted((decode(m["Body"]) for m in deployment.receive_all()), key=lambda c: c.chunk)


def report_rows(deployment, job_id):
    """Every row of a job's rejects report, parts in order."""
    prefix = f"reports/{job_id}/"
    keys = sorted(o["Key"] for o in deployment.s3.list_objects_v2(Bucket=deployment.bucket, Prefix=prefix)["Contents"])
    rows = []
    for key in keys:
        body = deployment.s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read().decode()
        rows += list(csv.reader(io.StringIO(body)))[1:]
    return rows


def test_every_record_of_an_event_is_handled(deployment):
    first = deployment.s3_event("uploads/a.csv", deployment.put("uploads/a.csv", HEADER + "A,a@example.com,\n"))
    second = deployment.s3_event("uploads/b.csv", deployment.put("uploads/b.csv", HEADER + "B,b@example.com,\n"))
    result = deployment.run_producer({"Records": first["Records"] + second["Records"]})
    assert [job["outcome"] for job in result["jobs"]] == ["QUEUED", "QUEUED"]
    assert sorted(r.values[MAIL] for c in queued_chunks(deployment) for r in c.rows) == [
        "a@example.com",
        "b@example.com",
    ]


def test_keys_are_url_decoded_with_plus_as_space(deployment):
    key = "uploads/May report+final (1).csv"
    job_id = deployment.upload(key, SAMPLE_CSV.read_bytes())
    assert deployment.s3_event(key)["Records"][0]["s3"]["object"]["key"] == quote_plus(key, safe="/")
    job = deployment.job(job_id)
    assert (job["key"], job["rowsValid"]) == (key, 10)


def test_repeated_event_for_the_same_version_ingests_once(deployment):
    response = deployment.put("uploads/users.csv", SAMPLE_CSV.read_bytes())
    event = deployment.s3_event("uploads/users.csv", response)
    first = deployment.run_producer(event)
    again = deployment.run_producer(event)  # S3 delivers at least once
    assert again["jobs"][0] == {"jobId": first["jobs"][0]["jobId"], "outcome": "skipped"}
    assert len(queued_chunks(deployment)) == 4
    assert deployment.job(first["jobs"][0]["jobId"])["rowsTotal"] == 10


def test_event_without_version_id_takes_the_objects_version(deployment):
    response = deployment.put("uploads/users.csv", SAMPLE_CSV.read_bytes())
    with_version = deployment.run_producer(deployment.s3_event("uploads/users.csv", response))
    without = deployment.run_producer(deployment.s3_event("uploads/users.csv", response, with_version=False))
    assert without["jobs"][0] == {"jobId": with_version["jobs"][0]["jobId"], "outcome": "skipped"}
    assert deployment.job(with_version["jobs"][0]["jobId"])["versionId"] == response["VersionId"]


def test_a_new_version_of_the_same_key_is_a_new_job(deployment):
    first = deployment.upload("uploads/users.csv", SAMPLE_CSV.read_bytes())
    second = deployment.upload("uploads/users.csv", SAMPLE_CSV.read_bytes())
    assert first != second
    assert len(queued_chunks(deployment)) == 8


def test_job_record_describes_the_upload(deployment):
    response = deployment.put("uploads/users.csv", SAMPLE_CSV.read_bytes())
    job_id = deployment.run_producer(deployment.s3_event("uploads/users.csv", response))["jobs"][0]["jobId"]
    job = deployment.job(job_id)
    assert job["status"] == "QUEUED"
    assert (job["bucket"], job["key"], job["versionId"]) == (
        deployment.bucket,
        "uploads/users.csv",
        response["VersionId"],
    )
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"], job["chunksTotal"]) == (10, 10, 0, 4)
    assert job["startedAt"] <= job["queuedAt"]
    assert job["extraColumns"] == []
    assert job["expiresAt"] > job["uploadedAtMs"] / 1000 + 29 * 86400


def test_a_job_is_listed_from_its_creation_even_if_its_parse_dies(deployment, monkeypatch):
    # GIVEN a producer killed (out of memory) at its first read of the file, just after creating the job
    monkeypatch.setattr(
        deployment.producer, "s3", Faulty(deployment.producer.s3, "get_object", lambda _: Killed("out of memory"))
    )
    response = deployment.put("uploads/users.csv", SAMPLE_CSV.read_bytes())
    with pytest.raises(Killed):
        deployment.run_producer(deployment.s3_event("uploads/users.csv", response))
    # THEN GET /jobs already lists it, still parsing
    status, body, _ = deployment.api("/jobs")
    assert status == 200
    [job] = body["items"]
    job_id = job_id_for(deployment.bucket, "uploads/users.csv", response["VersionId"])
    assert (job["jobId"], job["status"]) == (job_id, "PARSING")


@pytest.mark.parametrize(
    "body",
    [
        "\ufeffname,mail,phone\r\nJohn Doe,john@gmail.com,9876543210\r\n",
        'Name , EMAIL\n"Doe, John","JOHN@gmail.com"\n',
        'mail,name\n\n john@gmail.com ,"John\nDoe"\n\n',
    ],
)
def test_utf8_bom_crlf_quotes_newlines_and_header_spellings_are_read(deployment, body):
    job_id = deployment.upload("uploads/one.csv", body.encode())
    [chunk] = queued_chunks(deployment)
    assert [r.values[MAIL] for r in chunk.rows] == ["john@gmail.com"]
    assert deployment.job(job_id)["rowsValid"] == 1


def test_extra_columns_are_ignored_and_listed_on_the_job(deployment):
    job_id = deployment.upload("uploads/x.csv", "name,dept,mail,Team\nAnn,ops,ann@example.com,red\n")
    assert deployment.job(job_id)["extraColumns"] == ["dept", "Team"]
    assert [r.values[NAME] for c in queued_chunks(deployment) for r in c.rows] == ["Ann"]


def test_rejected_rows_are_reported_with_row_line_reason_and_neutralised_formulas(deployment):
    body = (
        HEADER
        + "Ann,ann@example.com,\n"
        + "\n"
        + '=HYPERLINK("http://x"),not-an-email,\n'
        + "Bob,bob@example.com,12\n"
        + "Cy,cy@example.com\n"
        + "Dee,dee@example.com,+44 20 7946 0958\n"
    )
    job_id = deployment.upload("uploads/mixed.csv", body)
    job = deployment.job(job_id)
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"]) == (5, 2, 3)
    assert job["rejectsReport"] == f"s3://{deployment.bucket}/reports/{job_id}/"
    rows = report_rows(deployment, job_id)
    assert [(r[0], r[1]) for r in rows] == [("2", "4"), ("3", "5"), ("4", "6")]
    assert "not a valid email" in rows[0][2] and rows[0][3] == '\'=HYPERLINK("http://x")'
    assert "6 to 15 digits" in rows[1][2]
    assert "has 2 fields; the header has 3" in rows[2][2]
    assert deployment.drain() == []
    assert deployment.job(job_id)["status"] == "COMPLETE_WITH_REJECTS"


def test_header_only_file_completes_with_no_rows(deployment):
    job_id = deployment.upload("uploads/empty-body.csv", HEADER)
    job = deployment.job(job_id)
    assert (job["status"], job["rowsTotal"], job["chunksTotal"]) == ("COMPLETE", 0, 0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty file: no header row"),
        (b"\n\r\n,,\n", "empty file: no header row"),
        (b"name,phone\nAnn,123456\n", "incomplete header: missing mail column"),
        (b"name,mail,email\nAnn,a@example.com,b@example.com\n", "header names the mail column more than once"),
        (b'name,mail\nAnn,ann@example.com\n"Bob,bob@example.com\n', "not CSV: unexpected end of data"),
    ],
)
def test_file_level_problems_fail_the_job_and_send_nothing(deployment, body, reason):
    job_id = deployment.upload("uploads/bad.csv", body)
    job = deployment.job(job_id)
    assert job["status"] == "FAILED"
    assert reason in job["error"]
    assert "finishedAt" in job
    assert queued_chunks(deployment) == []


def test_invalid_utf8_late_in_a_long_file_fails_it_before_anything_is_sent(deployment):
    rows = "".join(f"User {i},user{i}@example.com,\n" for i in range(5000))
    body = (HEADER + rows).encode() + b"Caf\xe9,cafe@example.com,\n"
    job_id = deployment.upload("uploads/latin1.csv", body)
    job = deployment.job(job_id)
    assert job["status"] == "FAILED"
    assert f"byte 0xe9 at byte offset {len(HEADER + rows) + 3} (line 5002)" in job["error"]
    assert queued_chunks(deployment) == []


def test_objects_of_another_bucket_are_refused(deployment):
    event = deployment.s3_event("uploads/users.csv", deployment.put("uploads/users.csv", SAMPLE_CSV.read_bytes()))
    event["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket"
    with pytest.raises(ValueError, match="this producer ingests"):
        deployment.run_producer(event)


def test_s3_test_event_is_ignored(deployment):
    assert deployment.run_producer({"Service": "Amazon S3", "Event": "s3:TestEvent"}) == {"jobs": []}


def _long_file(rows: int) -> str:
    lines = [
        f'"User {i}, Jr.",USER{i % 700}@Example.com,+1 555 {i:07d}' if i % 37 else f"Bad {i},nope," for i in range(rows)
    ]
    return HEADER + "\n".join(lines) + "\n"


def tiny_budget() -> FakeContext:
    """An invocation whose time runs low after ~40 looks at the clock (margin: 20 of 100 s)."""
    return FakeContext(remaining_ms=100_000, step_ms=2_000)


def test_a_file_processed_in_many_invocations_yields_exactly_the_chunks_of_one(deployment):
    deployment.set_rows_per_message(25)
    body = _long_file(2000)
    one = deployment.upload("uploads/one-pass.csv", body)
    single = queued_chunks(deployment)
    deployment.sqs.purge_queue(QueueUrl=deployment.queue_url)
    many = deployment.upload("uploads/many.csv", body, contexts=tiny_budget)
    chained = queued_chunks(deployment)
    assert deployment.job(many)["checkpoint"]["segment"] > 40, "the file should have taken many invocations"
    assert [(c.chunk, c.rows) for c in chained] == [(c.chunk, c.rows) for c in single]
    keep = ("rowsTotal", "rowsValid", "rowsRejected", "chunksTotal", "status", "extraColumns")
    assert {k: deployment.job(many)[k] for k in keep} == {k: deployment.job(one)[k] for k in keep}
    assert report_rows(deployment, many) == report_rows(deployment, one)


def test_slow_sends_end_a_segment_while_its_time_still_covers_draining_them(deployment, monkeypatch):
    # Each invocation's remaining time stands at 6 s: its margin (5 s) alone never calls time low.
    # When each SendMessageBatch takes 0.75 s, the sends still to finish at the end of a segment
    # (the last batch waiting for a slot, then its own send: 1.5 s) no longer fit, so the segment
    # stops at the next boundary and hands over (seen in local mode: a segment killed at its timeout
    # while it drained slow sends, after stopping on the margin alone).
    steady = lambda: FakeContext(remaining_ms=6_000)  # noqa: E731
    deployment.set_rows_per_message(10)
    body = _long_file(1200)
    fast = deployment.upload("uploads/fast-sends.csv", body, contexts=steady)
    monkeypatch.setattr(deployment.producer, "sqs", Faulty(deployment.producer.sqs, "send_message_batch", slow(0.75)))

    slowed = deployment.upload("uploads/slow-sends.csv", body, contexts=steady)

    assert deployment.job(fast)["checkpoint"]["segment"] == 1
    assert deployment.job(slowed)["checkpoint"]["segment"] > 1
    keep = ("status", "rowsTotal", "rowsValid", "rowsRejected", "chunksTotal")
    assert {k: deployment.job(slowed)[k] for k in keep} == {k: deployment.job(fast)[k] for k in keep}


def test_a_crashed_invocation_is_resumed_by_the_retry_from_its_checkpoint(deployment, monkeypatch):
    deployment.set_rows_per_message(10)
    body = _long_file(900)
    reference = deployment.upload("uploads/ref.csv", body)
    expected = [(c.chunk, c.rows) for c in queued_chunks(deployment)]
    response = deployment.put("uploads/crash.csv", body)
    event = deployment.s3_event("uploads/crash.csv", response)
    real_sqs = deployment.producer.sqs
    # Four batches go through, then the connection drops for good.
    failing = Faulty(real_sqs, "send_message_batch", after(4, lambda: RuntimeError("connection reset")))
    monkeypatch.setattr(deployment.producer, "sqs", failing)
    with pytest.raises(RuntimeError, match="connection reset"):
        deployment.run_producer(event, tiny_budget)
    deployment.continuations.clear()  # the failed chain's pending continuation (if any) is lost
    job_id = job_id_for(deployment.bucket, "uploads/crash.csv", response["VersionId"])
    crashed = deployment.job(job_id)
    assert (crashed["status"], crashed["leaseUntil"]) == ("PARSING", 0), "the crash must release the lease"
    assert crashed["checkpoint"]["phase"] == "INGEST" and crashed["checkpoint"]["row"] > 0
    monkeypatch.setattr(deployment.producer, "sqs", real_sqs)
    assert deployment.run_producer(event)["jobs"][0]["jobId"] == job_id  # Lambda's retry of the same event
    chunks = {}
    for chunk in queued_chunks(deployment):
        if chunk.jobId == job_id:
            assert chunks.setdefault(chunk.chunk, chunk.rows) == chunk.rows, "a re-sent chunk must be identical"
    assert sorted(chunks.items()) == expected
    assert deployment.job(job_id)["rowsValid"] == deployment.job(reference)["rowsValid"]


def test_a_failure_after_queueing_is_finished_by_the_retry(deployment, monkeypatch):
    response = deployment.put("uploads/a.csv", SAMPLE_CSV.read_bytes())
    event = deployment.s3_event("uploads/a.csv", response)
    job_id = job_id_for(deployment.bucket, "uploads/a.csv", response["VersionId"])
    store = deployment.producer.store
    monkeypatch.setattr(
        deployment.producer, "store", Faulty(store, "queue", first(1, lambda: RuntimeError("queue failed")))
    )
    with pytest.raises(RuntimeError, match="queue failed"):
        deployment.run_producer(event)
    assert deployment.job(job_id)["leaseUntil"] == 0, "the lease is released for the retry"
    deployment.run_producer(event)  # Lambda's retry
    assert deployment.drain() == []
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_a_retry_finishes_a_job_queued_by_an_invocation_that_failed_to_finish_it(deployment, monkeypatch):
    response = deployment.put("uploads/a.csv", HEADER + "A,a@example.com,\n")
    event = deployment.s3_event("uploads/a.csv", response)
    job_id = job_id_for(deployment.bucket, "uploads/a.csv", response["VersionId"])
    deployment.run_producer(event)
    assert deployment.drain() == []
    # As if the last finish had failed: queued, every chunk counted, status not yet final.
    deployment.force_job_status(job_id, "QUEUED")
    assert deployment.run_producer(event)["jobs"][0]["outcome"] == "skipped"
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_names_with_characters_sqs_refuses_travel_escaped(deployment):
    deployment.upload("uploads/odd.csv", HEADER + "Odd\ufffeName\U0001f600,odd@example.com,\n")
    [message] = deployment.receive_all()
    assert message["Body"].isascii()
    assert decode(message["Body"]).rows[0].values[NAME] == "Odd\ufffeName\U0001f600"


def test_a_header_too_wide_for_the_job_record_fails_the_file(deployment):
    header = "name,mail," + ",".join(f"extra{i}" for i in range(600))
    job_id = deployment.upload("uploads/wide.csv", header + "\n")
    job = deployment.job(job_id)
    assert job["status"] == "FAILED" and "header too wide: 602 columns" in job["error"]


def test_blank_lines_are_counted_on_the_job(deployment):
    job_id = deployment.upload("uploads/b.csv", HEADER + "\nA,a@example.com,\n,,\n   \n")
    assert (deployment.job(job_id)["blankLines"], deployment.job(job_id)["rowsTotal"]) == (3, 1)


def test_a_large_rejects_report_is_split_into_parts(deployment, monkeypatch):
    monkeypatch.setattr("handlers.producer.reports.MAX_PART_BYTES", 2_000)
    deployment.set_rows_per_message(10)
    job_id = deployment.upload("uploads/bad.csv", _long_file(400).replace("@", "#"))
    job = deployment.job(job_id)
    assert job["rejectsParts"] > 3 and job["rowsRejected"] == 400
    assert [int(r[0]) for r in report_rows(deployment, job_id)] == list(range(1, 401))


def test_continue_job_invokes_this_function_asynchronously(deployment, monkeypatch):
    calls = []

    class RecordingLambda:
        def invoke(self, **kwargs):
            calls.append(kwargs)
            return {"StatusCode": 202}

    monkeypatch.setattr(deployment.producer, "lambda_client", RecordingLambda())
    deployment.real_continue_job("job-1", 3, lambda: 30.0)  # the harness stands in for it elsewhere
    assert calls == [
        {
            "FunctionName": "csv-ingest-producer",
            "InvocationType": "Event",
            "Payload": b'{"continueJob": "job-1", "segment": 3}',
        }
    ]


def _leased_job(deployment, key, holder, lease_ms):
    """A job whose lease `holder` took `lease_ms` from now (and, if dead, never gave back)."""
    response = deployment.put(key, SAMPLE_CSV.read_bytes())
    event = deployment.s3_event(key, response)
    job_id = job_id_for(deployment.bucket, key, response["VersionId"])
    upload = deployment.producer._describe(event["Records"][0])
    assert deployment.producer.store.create(job_id, upload, None)
    now = int(time.time() * 1000)
    assert deployment.producer.store.acquire(job_id, holder, now, now + lease_ms).acquired
    return event, job_id


def never_wait(seconds):
    raise AssertionError(f"waited {seconds} s for a lease this invocation's request already holds")


def test_the_retry_of_an_invocation_killed_holding_the_lease_takes_it_over(deployment, monkeypatch):
    monkeypatch.setattr(deployment.producer, "pause", never_wait)  # taken over at once, not on expiry
    deployment.set_rows_per_message(10)
    response = deployment.put("uploads/killed.csv", _long_file(900))
    event = deployment.s3_event("uploads/killed.csv", response)
    job_id = job_id_for(deployment.bucket, "uploads/killed.csv", response["VersionId"])
    real_sqs = deployment.producer.sqs
    # Out of memory after four batches: Lambda ends the process, no error handling runs.
    monkeypatch.setattr(
        deployment.producer, "sqs", Faulty(real_sqs, "send_message_batch", after(4, lambda: Killed("out of memory")))
    )
    request_id = "request-of-the-s3-event"
    with pytest.raises(Killed):
        deployment.run_producer(event, lambda: FakeContext(aws_request_id=request_id))
    killed = deployment.job(job_id)
    assert (killed["status"], killed["leaseOwner"]) == ("PARSING", request_id)
    assert killed["leaseUntil"] > time.time() * 1000 + 200_000, "the dead invocation's lease runs for minutes"
    monkeypatch.setattr(deployment.producer, "sqs", real_sqs)
    # Lambda's retry of the same event, a minute later: the same request id.
    result = deployment.run_producer(event, lambda: FakeContext(aws_request_id=request_id))
    assert result["jobs"][0]["outcome"] == "QUEUED"
    assert deployment.drain() == []
    assert deployment.job(job_id)["status"] == "COMPLETE_WITH_REJECTS"


def test_the_retry_takes_the_lease_over_when_releasing_it_failed(deployment, monkeypatch):
    monkeypatch.setattr(deployment.producer, "pause", never_wait)
    response = deployment.put("uploads/a.csv", SAMPLE_CSV.read_bytes())
    event = deployment.s3_event("uploads/a.csv", response)
    job_id = job_id_for(deployment.bucket, "uploads/a.csv", response["VersionId"])
    real_sqs, real_store = deployment.producer.sqs, deployment.producer.store
    monkeypatch.setattr(
        deployment.producer, "sqs", Faulty(real_sqs, "send_message_batch", first(1, lambda: RuntimeError("reset")))
    )
    monkeypatch.setattr(
        deployment.producer, "store", Faulty(real_store, "release", first(1, lambda: throttling("UpdateItem")))
    )
    with pytest.raises(RuntimeError, match="reset"):  # the send's error, not the release's
        deployment.run_producer(event, lambda: FakeContext(aws_request_id="r-1"))
    assert deployment.job(job_id)["leaseUntil"] > time.time() * 1000, "the release failed: the lease is still held"
    monkeypatch.setattr(deployment.producer, "sqs", real_sqs)
    assert deployment.run_producer(event, lambda: FakeContext(aws_request_id="r-1"))["jobs"][0]["outcome"] == "QUEUED"


def test_an_event_finding_a_live_lease_takes_the_job_over_when_the_lease_expires(deployment, monkeypatch):
    monkeypatch.setattr(deployment.producer, "LEASE_POLL_SECONDS", 0.2)
    event, job_id = _leased_job(deployment, "uploads/a.csv", "an-invocation-that-will-die", 1_500)
    result = deployment.run_producer(event)
    assert result["jobs"][0]["outcome"] == "QUEUED"
    assert deployment.drain() == []
    job = deployment.job(job_id)
    assert (job["status"], job["chunksTotal"], job["rowsWritten"]) == ("COMPLETE", 4, 10)


def test_an_event_finding_a_live_lease_ends_once_its_holder_moves_the_job_on(deployment, monkeypatch):
    event, job_id = _leased_job(deployment, "uploads/a.csv", "holder", 300_000)
    store = deployment.producer.store
    waits = []

    def holder_checkpoints_and_its_continuation_takes_over(seconds):
        waits.append(seconds)
        store.release(job_id, "holder")
        now = int(time.time() * 1000)
        assert store.acquire(job_id, "continuation", now, now + 300_000).acquired

    monkeypatch.setattr(deployment.producer, "pause", holder_checkpoints_and_its_continuation_takes_over)
    assert deployment.run_producer(event)["jobs"][0] == {"jobId": job_id, "outcome": "skipped"}
    assert waits == [deployment.producer.LEASE_POLL_SECONDS]
    assert (deployment.job(job_id)["leaseOwner"], queued_chunks(deployment)) == ("continuation", [])


def test_an_event_still_finding_a_live_lease_when_its_time_runs_low_fails_to_be_retried(deployment, monkeypatch):
    event, job_id = _leased_job(deployment, "uploads/a.csv", "holder", 600_000)
    waits = []
    monkeypatch.setattr(deployment.producer, "pause", waits.append)
    monkeypatch.setattr(deployment.producer, "LEASE_POLL_SECONDS", 1_000.0)  # only its own time bounds a wait
    with pytest.raises(deployment.producer.JobBusy, match="still leased by another invocation"):
        deployment.run_producer(event, lambda: FakeContext(remaining_ms=100_000, step_ms=10_000))
    assert len(waits) > 1, "it watched the lease before giving up"
    assert max(waits) <= 80, f"waits {waits} must end before the invocation's time runs low (100 s - 20 s margin)"
    job = deployment.job(job_id)
    assert (job["status"], job["leaseOwner"], job["rowsTotal"]) == ("PARSING", "holder", 0)
    assert queued_chunks(deployment) == []


def test_a_segment_that_makes_no_progress_fails_the_job_instead_of_looping(deployment, monkeypatch):
    real_segment = deployment.producer.run_segment

    def stuck(job, *args):  # a segment that gives back the checkpoint it started from
        result = real_segment(job, *args)
        result.finished, result.checkpoint = False, Checkpoint.from_item(job["checkpoint"])
        return result

    monkeypatch.setattr(deployment.producer, "run_segment", stuck)
    job_id = deployment.upload("uploads/a.csv", SAMPLE_CSV.read_bytes())
    job = deployment.job(job_id)
    assert job["status"] == "FAILED" and "made no progress at byte 0" in job["error"]
    assert deployment.continuations == []


def tinier_budget() -> FakeContext:
    """An invocation whose time runs low after 14 looks at the clock."""
    return FakeContext(remaining_ms=100_000, step_ms=6_000)


def _deadline_contexts():
    """Invocations of 300 s that Lambda kills at their deadline; `contexts[-1]` is the running one."""
    contexts: list[FakeContext] = []

    def new() -> FakeContext:
        contexts.append(FakeContext(remaining_ms=300_000))
        return contexts[-1]

    return contexts, new


def test_a_long_run_of_rejected_rows_after_a_half_packed_chunk_still_ends_the_segment_in_time(deployment, monkeypatch):
    # A chunk of at most 1 KiB of the file here (1 MiB in production: milliseconds of parsing).
    monkeypatch.setattr("handlers.producer.ingest.MAX_CHUNK_SPAN_BYTES", 1024)
    deployment.set_rows_per_message(10)
    contexts, new_context = _deadline_contexts()
    monkeypatch.setattr(deployment.producer, "s3", SlowBodies(deployment.producer.s3, lambda: contexts[-1], 1_000))
    body = HEADER + "Ann,ann@example.com,\n" + "".join(f"Bad {i},not-an-email,\n" for i in range(300))
    job_id = deployment.upload("uploads/format-changes.csv", body, contexts=new_context)  # 1 s a line
    job = deployment.job(job_id)
    assert (job["status"], job["rowsValid"], job["rowsRejected"]) == ("QUEUED", 1, 300)
    assert job["checkpoint"]["segment"] > 2, "validation and ingestion each needed more than one invocation"
    assert deployment.drain() == []
    assert deployment.job(job_id)["status"] == "COMPLETE_WITH_REJECTS"


def test_a_report_part_stops_growing_soon_after_its_cap_even_with_a_chunk_half_packed(deployment, monkeypatch):
    monkeypatch.setattr("handlers.producer.reports.MAX_PART_BYTES", 2_000)
    monkeypatch.setattr("handlers.producer.ingest.MAX_CHUNK_SPAN_BYTES", 512)
    deployment.set_rows_per_message(10)
    job_id = deployment.upload("uploads/bad.csv", HEADER + "Ann,ann@example.com,\n" + "Bad,nope,\n" * 400)
    parts = deployment.s3.list_objects_v2(Bucket=deployment.bucket, Prefix=f"reports/{job_id}/")["Contents"]
    assert len(parts) > 3
    # The cap, plus the report lines of the rejects in at most one chunk span (512 bytes of the
    # file: 52 rows of "Bad,nope,\n", each under 80 bytes in the report). Unbounded before.
    assert max(part["Size"] for part in parts) < 2_000 + 52 * 80, [part["Size"] for part in parts]
    assert [int(r[0]) for r in report_rows(deployment, job_id)] == list(range(2, 402))


@pytest.mark.parametrize("span", [300, 1 << 20])
def test_continuation_gives_the_chunks_of_one_pass_with_rejects_runs_at_every_position(deployment, monkeypatch, span):
    monkeypatch.setattr("handlers.producer.ingest.MAX_CHUNK_SPAN_BYTES", span)
    deployment.set_rows_per_message(7)
    valid = [f"User {i},user{i}@example.com,+1 555 {i:07d}\n" for i in range(60)]
    for position in range(0, 61, 4):
        body = HEADER + "".join(valid[:position]) + "Bad,not-an-email,\n" * 25 + "".join(valid[position:])
        one = deployment.upload(f"uploads/one-{position}.csv", body)
        single = queued_chunks(deployment)  # received, so out of the next look's way
        many = deployment.upload(f"uploads/many-{position}.csv", body, contexts=tinier_budget)
        chained = queued_chunks(deployment)
        assert deployment.job(many)["checkpoint"]["segment"] > 5, f"rejects at {position}: too few invocations"
        assert [(c.chunk, c.rows) for c in chained] == [(c.chunk, c.rows) for c in single], f"rejects at {position}"
        assert report_rows(deployment, many) == report_rows(deployment, one), f"rejects at {position}"


@pytest.mark.parametrize(
    ("cell", "column"),
    [("n" * 140_000, "name"), ("n" * 1_100_000, "name"), ("x" * 200_000, "notes")],
)
def test_a_huge_cell_is_at_worst_a_rejected_row_and_the_file_is_ingested(deployment, cell, column):
    values = {"name": "Big", "notes": "ok", column: cell}
    big_row = f"{values['name']},big@example.com,{values['notes']}\n"
    body = f"name,mail,notes\nAnn,ann@example.com,\n{big_row}Bob,bob@example.com,\n"
    job_id = deployment.upload("uploads/big-cell.csv", body)
    job = deployment.job(job_id)
    assert job["status"] == "QUEUED", job.get("error")
    emails = sorted(r.values[MAIL] for c in queued_chunks(deployment) for r in c.rows)
    if column == "notes":  # an ignored column: the row is fine
        assert (emails, job["rowsRejected"]) == (["ann@example.com", "big@example.com", "bob@example.com"], 0)
        return
    assert (emails, job["rowsRejected"]) == (["ann@example.com", "bob@example.com"], 1)
    [(row, line, reason, name, mail)] = report_rows(deployment, job_id)
    assert (row, line) == ("2", "3")
    assert "name is 140000 characters long" in reason or "records over 1048576 bytes are not read" in reason
    assert len(name) < 600 and mail in ("big@example.com", ""), "the report cuts long cells"


def test_a_file_over_the_upload_limit_fails_before_it_is_read(deployment, monkeypatch):
    deployment.producer.SETTINGS = replace(deployment.producer.SETTINGS, max_upload_bytes=100)
    monkeypatch.setattr(
        deployment.producer, "s3", Faulty(deployment.producer.s3, "get_object", lambda _: AssertionError("read"))
    )
    job_id = deployment.upload("uploads/big.csv", SAMPLE_CSV.read_bytes())
    job = deployment.job(job_id)
    assert job["status"] == "FAILED"
    size = len(SAMPLE_CSV.read_bytes())
    limit = "this stack ingests files of at most 100 bytes (maxUploadBytes)"
    assert job["error"] == f"file too large: {size} bytes; {limit}"
    assert queued_chunks(deployment) == []


def test_no_cell_of_a_file_without_header_reaches_the_job_or_the_logs(deployment, log_lines):
    body = "john.doe@example.com,John Doe,+447700900123\nann@example.com,Ann,+447700900124\n"
    producer_logs, query_logs = log_lines(deployment.producer), log_lines(deployment.query)
    job_id = deployment.upload("uploads/no-header.csv", body)
    job = deployment.job(job_id)
    assert job["status"] == "FAILED" and "none of the first row's 3 cells" in job["error"]
    _status, view, _ = deployment.api(f"/jobs/{job_id}", resource="/jobs/{jobId}")
    logs = producer_logs.getvalue() + query_logs.getvalue()
    assert "file cannot be ingested" in logs, "the failure is logged (without the cells)"
    for secret in ("john.doe", "John Doe", "447700900123"):
        assert secret not in str(job) and secret not in str(view) and secret not in logs, secret


def test_the_rejects_report_keeps_only_the_columns_the_pipeline_reads(deployment):
    body = "name,ssn,mail,notes\nAnn,123-45-6789,not-an-email,private note\n"
    job_id = deployment.upload("uploads/ssn.csv", body)
    prefix = f"reports/{job_id}/"
    key = deployment.s3.list_objects_v2(Bucket=deployment.bucket, Prefix=prefix)["Contents"][0]["Key"]
    text = deployment.s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read().decode()
    assert list(csv.reader(io.StringIO(text))) == [
        ["row", "line", "reason", "name", "mail"],
        ["1", "2", "mail is not a valid email address (local@dotted.domain)", "Ann", "not-an-email"],
    ]
    assert "123-45-6789" not in text and "private note" not in text


def test_the_chunk_and_batch_budgets_come_from_the_queues_maximum_message_size(deployment, monkeypatch):
    monkeypatch.setenv("MAX_MESSAGE_BYTES", "65536")
    producer = importlib.reload(deployment.producer)
    # A tenth of the call for each message, less the MAC attribute SQS counts in it.
    assert (producer.SETTINGS.budgets.batch_bytes, producer.SETTINGS.budgets.chunk_bytes) == (
        65_536,
        6_553 - MAC_ATTRIBUTE_BYTES,
    )
