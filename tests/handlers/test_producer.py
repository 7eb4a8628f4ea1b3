"""Producer against moto: events, CSV cases, reports, duplicates, continuation."""

import csv
import io
import time
from urllib.parse import quote_plus

import pytest

from handlers.common.chunks import decode
from handlers.common.jobs import job_id_for
from handlers.producer.job_store import Checkpoint
from tests.handlers.harness import SAMPLE_CSV, FakeContext, Faulty, after, first

HEADER = "name,mail,phone\n"


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
    assert sorted(r.email for c in queued_chunks(deployment) for r in c.rows) == ["a@example.com", "b@example.com"]


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
    assert [r.email for r in chunk.rows] == ["john@gmail.com"]
    assert deployment.job(job_id)["rowsValid"] == 1


def test_extra_columns_are_ignored_and_listed_on_the_job(deployment):
    job_id = deployment.upload("uploads/x.csv", "name,dept,mail,Team\nAnn,ops,ann@example.com,red\n")
    assert deployment.job(job_id)["extraColumns"] == ["dept", "Team"]
    assert [r.name for c in queued_chunks(deployment) for r in c.rows] == ["Ann"]


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
    table = deployment.dynamodb.Table(deployment.jobs_table)
    table.update_item(
        Key={"jobId": job_id, "sk": "JOB"},
        UpdateExpression="SET #s = :q",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":q": "QUEUED"},
    )
    assert deployment.run_producer(event)["jobs"][0]["outcome"] == "skipped"
    assert deployment.job(job_id)["status"] == "COMPLETE"


def test_events_other_than_object_created_are_skipped(deployment):
    event = deployment.s3_event("uploads/a.csv", deployment.put("uploads/a.csv", SAMPLE_CSV.read_bytes()))
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert deployment.run_producer(event) == {"jobs": [{"skipped": "ObjectRemoved:Delete"}]}
    assert queued_chunks(deployment) == []


def test_names_with_characters_sqs_refuses_travel_escaped(deployment):
    deployment.upload("uploads/odd.csv", HEADER + "Odd\ufffeName\U0001f600,odd@example.com,\n")
    [message] = deployment.receive_all()
    assert message["Body"].isascii()
    assert decode(message["Body"]).rows[0].name == "Odd\ufffeName\U0001f600"


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


def test_an_event_arriving_while_another_invocation_holds_the_job_does_nothing(deployment):
    response = deployment.put("uploads/a.csv", SAMPLE_CSV.read_bytes())
    event = deployment.s3_event("uploads/a.csv", response)
    job_id = job_id_for(deployment.bucket, "uploads/a.csv", response["VersionId"])
    upload = deployment.producer._describe(deployment.bucket, "uploads/a.csv", event["Records"][0])
    assert deployment.producer.store.create(job_id, upload, None)
    # A live invocation (another request id) holds the lease for the next five minutes.
    now = int(time.time() * 1000)
    assert deployment.producer.store.acquire(job_id, "other-invocation", now, now + 300_000) is not None
    assert deployment.run_producer(event)["jobs"][0] == {"jobId": job_id, "outcome": "skipped"}
    job = deployment.job(job_id)
    assert (job["status"], job["leaseOwner"], job["rowsTotal"]) == ("PARSING", "other-invocation", 0)
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
