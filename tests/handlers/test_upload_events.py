"""The producer checks an upload event against S3 before it creates a job (issue 17, item 3).

Any principal allowed `lambda:InvokeFunction` on the producer can hand it an event of its own
making; Lambda permissions cannot deny that, so each rule of `handlers/producer/events.py` is tested
here with events as S3 would never send them, against moto. A refused event raises `RefusedEvent`
naming its rule and writes nothing: no job, no chunk, no report.
"""

import json
import time
from datetime import UTC, datetime
from urllib.parse import quote_plus

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from handlers.common.chunks import decode
from handlers.common.jobs import job_id_for
from handlers.producer.events import RefusedEvent, UploadFilter, announced_upload
from tests.handlers.harness import SAMPLE_CSV, Faulty, after, load_event
from tests.handlers.test_signals import emf

HEADER = "name,mail,phone\n"
FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
FORGED_SEQUENCER = "F" * 32


def _objects(deployment) -> list[str]:
    return [o["Key"] for o in deployment.s3.list_objects_v2(Bucket=deployment.bucket).get("Contents", [])]


def refusal(deployment, event) -> RefusedEvent:
    """Run the producer on `event`, which it must refuse without a write: no job record, no chunk on
    the queue, no object (report) in the bucket. Returns the refusal."""
    objects = _objects(deployment)
    with pytest.raises(RefusedEvent) as refused:
        deployment.run_producer(event)
    assert deployment.dynamodb.Table(deployment.jobs_table).scan()["Items"] == []
    assert deployment.receive_all() == []
    assert _objects(deployment) == objects
    return refused.value


def head_answers(deployment, status: int) -> None:
    """Make S3 answer the producer's HeadObject calls with a bare `status`, as AWS does where moto
    does not. HeadObject's errors have no body, only a status
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html): AWS answers a missing key
    with 403 to a caller without s3:ListBucket (the producer has none), and a malformed version id
    with 400; moto grants every call and answers both with 404. The response goes through botocore's
    own parser, so the producer sees the error exactly as it would from AWS."""

    class Empty:
        def stream(self, **_kwargs):
            return iter(())

    def answer(request, **_kwargs):
        return AWSResponse(request.url, status, {"x-amz-request-id": "TEST"}, Empty())

    # First, ahead of moto's own hook, which would answer otherwise.
    deployment.producer.s3.meta.events.register_first("before-send.s3.HeadObject", answer)


def last_modified_ms(deployment, key: str, version_id: str) -> int:
    """The object version's LastModified (an HTTP date: whole seconds), in ms since the epoch."""
    head = deployment.s3.head_object(Bucket=deployment.bucket, Key=key, VersionId=version_id)
    return int(head["LastModified"].timestamp()) * 1000


def at_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# -- what S3's notification would never send ---------------------------------------------------------


def _another_bucket(record):
    record["s3"]["bucket"]["name"] = "someone-elses-bucket"


def _another_source(record):
    record["eventSource"] = "aws:sqs"


def _another_event(record):
    record["eventName"] = "ObjectRemoved:Delete"


def _no_key(record):
    del record["s3"]["object"]["key"]


@pytest.mark.parametrize(
    ("key", "mutate", "rule"),
    [
        ("uploads/users.csv", _another_bucket, "bucket"),
        ("uploads/users.csv", _another_source, "eventSource"),
        ("uploads/users.csv", _another_event, "eventName"),
        ("uploads/users.csv", _no_key, "form"),
        ("elsewhere/users.csv", None, "prefix"),
        ("reports/users.csv", None, "prefix"),
        ("Uploads/users.csv", None, "prefix"),
        ("uploads/users.txt", None, "suffix"),
        ("uploads/users.CSV", None, "suffix"),
        ("uploads/users.csv.txt", None, "suffix"),
        ("uploads/users.gz", None, "suffix"),
        ("uploads/users.CSV.GZ", None, "suffix"),
        ("uploads/users.tsv.bz2", None, "suffix"),
    ],
)
def test_an_event_the_notification_would_not_send_starts_no_job(deployment, key, mutate, rule):
    # GIVEN an object that exists, and an event naming it as S3's notification never would
    event = deployment.s3_event(key, deployment.put(key, SAMPLE_CSV.read_bytes()))
    if mutate:
        mutate(event["Records"][0])
    # THEN the producer refuses it by that rule, and writes nothing
    assert refusal(deployment, event).rule == rule


def test_a_refusal_names_its_rule_never_a_value_of_the_event(deployment):
    key = "uploads/Jane Roe salary.txt"
    event = deployment.s3_event(key, deployment.put(key, SAMPLE_CSV.read_bytes()))
    message = str(refusal(deployment, event))
    assert "suffix" in message and ".csv" in message
    assert "Jane" not in message and "salary" not in message


UPLOADS = UploadFilter(bucket="uploads-bucket", prefix="uploads/", suffixes=(".csv", ".csv.gz", ".tsv", ".tsv.gz"))


def _record(key: str) -> dict:
    """S3's record of an upload to UPLOADS' bucket (URL-encoded key, as AWS sends it)."""
    record = load_event("s3_object_created.json")["Records"][0]
    record["s3"]["bucket"]["name"] = UPLOADS.bucket
    record["s3"]["object"]["key"] = quote_plus(key, safe="/")
    return record


@pytest.mark.parametrize("key", ["uploads/a.csv", "uploads/a.csv.gz", "uploads/a.tsv", "uploads/deep/a b.tsv.gz"])
def test_a_key_ending_with_any_of_the_suffixes_is_announced(key):
    assert announced_upload(_record(key), UPLOADS).key == key


@pytest.mark.parametrize("key", ["uploads/a.gz", "uploads/a.CSV", "uploads/a.csv.GZ", "uploads/a.tsv.zip"])
def test_a_key_ending_with_none_of_the_suffixes_is_refused_naming_them_all_and_not_the_key(key):
    with pytest.raises(RefusedEvent) as refused:
        announced_upload(_record(key), UPLOADS)
    message = str(refused.value)
    assert refused.value.rule == "suffix"
    assert "'.csv', '.csv.gz', '.tsv', '.tsv.gz'" in message, message
    assert key.removeprefix("uploads/") not in message, message


# -- the object version must exist ---------------------------------------------------------------------


def test_a_version_the_object_does_not_have_starts_no_job(deployment):
    # GIVEN the version id of another object, put at an existing key's name
    other = deployment.put("uploads/other.csv", SAMPLE_CSV.read_bytes())
    event = deployment.s3_event("uploads/users.csv", deployment.put("uploads/users.csv", SAMPLE_CSV.read_bytes()))
    event["Records"][0]["s3"]["object"]["versionId"] = other["VersionId"]
    assert refusal(deployment, event).rule == "object"


def test_an_object_that_does_not_exist_starts_no_job(deployment):
    event = deployment.s3_event("uploads/never-put.csv", None, with_version=False)
    assert refusal(deployment, event).rule == "object"


@pytest.mark.parametrize(
    ("status", "given"),
    [
        (403, "a key never put: AWS answers 403 to a caller without s3:ListBucket"),
        (400, "a malformed version id: AWS answers 400"),
    ],
)
def test_an_object_version_s3_will_not_show_is_refused_and_counted_without_its_values(
    deployment, log_lines, capsys, status, given
):
    # GIVEN an event naming, under a key that names a person, what HeadObject answers `status` to
    logs = log_lines(deployment.producer)
    event = deployment.s3_event("uploads/Jane Roe salary.csv", None, with_version=False)
    event["Records"][0]["s3"]["object"]["versionId"] = "not-a-version-id"
    head_answers(deployment, status)
    # THEN it is refused by the object rule, logged as a refusal, counted, and nothing is written
    assert refusal(deployment, event).rule == "object", given
    [line] = [json.loads(line) for line in logs.getvalue().splitlines() if "refused" in line]
    assert (line["level"], line["rule"]) == ("WARNING", "object")
    assert "Jane" not in logs.getvalue() and "not-a-version-id" not in logs.getvalue()
    assert emf(capsys.readouterr().out)["RefusedUploadEvents"] == 1


def test_a_record_that_fails_is_logged_by_its_index_and_error_never_by_a_value_of_the_event(
    deployment, log_lines, monkeypatch
):
    # GIVEN a valid upload whose key names a person, and a job store that fails with an error
    # whose message repeats the key (as a parser's or an SDK's error may)
    logs = log_lines(deployment.producer)
    key = "uploads/Jane Roe salary.csv"
    good = deployment.s3_event("uploads/a.csv", deployment.put("uploads/a.csv", HEADER + "A,a@example.com,\n"))
    event = deployment.s3_event(key, deployment.put(key, SAMPLE_CSV.read_bytes()))
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": f"denied on {key}"}}, "PutItem")
    monkeypatch.setattr(
        deployment.producer, "store", Faulty(deployment.producer.store, "create", after(1, lambda: denied))
    )
    with pytest.raises(ClientError):
        deployment.run_producer({"Records": good["Records"] + event["Records"]})
    [line] = [json.loads(line) for line in logs.getvalue().splitlines() if "upload event failed" in line]
    assert (line["level"], line["record"], line["errorType"], line["errorCode"]) == (
        "ERROR",
        1,
        "ClientError",
        "AccessDeniedException",
    )
    assert "Jane" not in logs.getvalue() and "salary" not in logs.getvalue()


# -- the event's own fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("event_time", ["next tuesday", "2026-11-28T10:00:00", "", 1764324000])
def test_an_event_time_that_is_not_an_iso_utc_time_starts_no_job(deployment, event_time):
    event = deployment.s3_event("uploads/a.csv", deployment.put("uploads/a.csv", SAMPLE_CSV.read_bytes()))
    event["Records"][0]["eventTime"] = event_time
    assert refusal(deployment, event).rule == "eventTime"


@pytest.mark.parametrize("sequencer", ["not-hex", "0" * 33, 12345])
def test_a_sequencer_that_is_not_up_to_32_hex_digits_starts_no_job(deployment, sequencer):
    event = deployment.s3_event("uploads/a.csv", deployment.put("uploads/a.csv", SAMPLE_CSV.read_bytes()))
    event["Records"][0]["s3"]["object"]["sequencer"] = sequencer
    assert refusal(deployment, event).rule == "sequencer"


# -- the upload time: within LastModified's precision ----------------------------------------------------


def _upload_with_event_time(deployment, key, event_time, sequencer=None):
    """Put `key`, deliver its event with `event_time` (and `sequencer`); (job, its chunks, LastModified ms)."""
    response = deployment.put(key, HEADER + "Ann,ann@example.com,\n")
    event = deployment.s3_event(key, response, event_time=event_time)
    if sequencer is not None:
        event["Records"][0]["s3"]["object"]["sequencer"] = sequencer
    job_id = deployment.run_producer(event)["jobs"][0]["jobId"]
    chunks = [decode(m["Body"]) for m in deployment.receive_all()]
    return deployment.job(job_id), chunks, last_modified_ms(deployment, key, response["VersionId"])


def test_an_event_time_later_than_last_modified_allows_is_capped_at_its_precision(deployment):
    job, chunks, last_modified = _upload_with_event_time(deployment, "uploads/a.csv", FUTURE)
    assert job["uploadedAtMs"] == last_modified + 999
    assert job["uploadedAt"] == at_ms(last_modified + 999).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert [c.uploadedAtMs for c in chunks] == [last_modified + 999]


def test_an_event_time_earlier_than_last_modified_is_raised_to_it(deployment):
    job, chunks, last_modified = _upload_with_event_time(deployment, "uploads/a.csv", datetime(2001, 1, 1, tzinfo=UTC))
    assert job["uploadedAtMs"] == last_modified
    assert [c.uploadedAtMs for c in chunks] == [last_modified]


def test_an_event_time_within_last_modifieds_second_is_kept_to_the_millisecond(deployment):
    # S3's eventTime (when it finished the request) is more precise than LastModified: kept when consistent.
    response = deployment.put("uploads/a.csv", HEADER + "Ann,ann@example.com,\n")
    last_modified = last_modified_ms(deployment, "uploads/a.csv", response["VersionId"])
    event = deployment.s3_event("uploads/a.csv", response, event_time=at_ms(last_modified + 456))
    job_id = deployment.run_producer(event)["jobs"][0]["jobId"]
    assert deployment.job(job_id)["uploadedAtMs"] == last_modified + 456


def test_a_later_upload_wins_over_a_forged_event_time_and_sequencer(deployment):
    # GIVEN an upload whose event claims 2099 and the largest sequencer there is
    forged = deployment.put("uploads/forged.csv", HEADER + "Forged Winner,ann@example.com,\n")
    forged_event = deployment.s3_event("uploads/forged.csv", forged, event_time=FUTURE)
    forged_event["Records"][0]["s3"]["object"]["sequencer"] = FORGED_SEQUENCER
    deployment.run_producer(forged_event)
    forged_last_modified = last_modified_ms(deployment, "uploads/forged.csv", forged["VersionId"])
    # WHEN a real upload of the same email follows, in a later second than the forged one's LastModified
    while time.time() * 1000 < forged_last_modified + 1000:
        time.sleep(0.05)
    deployment.upload("uploads/later.csv", HEADER + "Real Later,ann@example.com,\n")
    assert deployment.drain(batch_size=1) == []
    # THEN the later upload's row is the one stored
    assert deployment.users()["ann@example.com"]["name"] == "Real Later"


def test_a_forged_sequencer_orders_only_uploads_of_the_same_capped_millisecond(deployment):
    job, chunks, last_modified = _upload_with_event_time(deployment, "uploads/a.csv", FUTURE, FORGED_SEQUENCER)
    # The tiebreak comes after the upload time in a row's version: it cannot lift a row past it.
    assert job["sequencer"] == FORGED_SEQUENCER
    [chunk] = chunks
    assert chunk.version_of(chunk.rows[0]).startswith(f"{last_modified + 999:015d}:{FORGED_SEQUENCER}")


# -- what operators see ------------------------------------------------------------------------------------


def test_a_refused_event_is_logged_and_counted_by_its_rule_without_its_values(deployment, log_lines, capsys):
    logs = log_lines(deployment.producer)
    key = "uploads/Jane Roe salary.txt"
    event = deployment.s3_event(key, deployment.put(key, SAMPLE_CSV.read_bytes()))
    refusal(deployment, event)
    [line] = [json.loads(line) for line in logs.getvalue().splitlines() if "refused" in line]
    assert (line["level"], line["rule"]) == ("WARNING", "suffix")
    assert "Jane" not in logs.getvalue() and "salary" not in logs.getvalue()
    assert emf(capsys.readouterr().out)["RefusedUploadEvents"] == 1


def test_a_refused_record_does_not_stop_the_other_records_of_its_event(deployment):
    good = deployment.s3_event("uploads/a.csv", deployment.put("uploads/a.csv", HEADER + "A,a@example.com,\n"))
    bad = deployment.s3_event("uploads/b.txt", deployment.put("uploads/b.txt", HEADER + "B,b@example.com,\n"))
    with pytest.raises(RefusedEvent):
        deployment.run_producer({"Records": bad["Records"] + good["Records"]})
    job_id = job_id_for(deployment.bucket, "uploads/a.csv", good["Records"][0]["s3"]["object"]["versionId"])
    assert deployment.job(job_id)["status"] == "QUEUED"
    # The default schema's rows are (name, mail, phone).
    assert [r.values[1] for m in deployment.receive_all() for r in decode(m["Body"]).rows] == ["a@example.com"]
