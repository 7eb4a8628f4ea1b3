"""Forged upload events, replayed in local mode with IAM enforced (issue 17, item 3).

The attacker is an IAM user of the account whose own policy allows one action: `lambda:InvokeFunction`
on the producer (the function the bucket notifies, read from the bucket's notification, not named
here). Lambda permissions cannot deny the call, so what it can do with a hand-made S3 event is up
to the producer's checks (`handlers/producer/events.py`):

- an event naming an existing object outside the uploads suffix is refused: no job, no row; invoked
  asynchronously, it fails Lambda's retries and rests in the failed-events queue;
- an event naming a real upload with `eventTime` 2099 and the largest sequencer, arriving before
  S3's own event (the real event's first HeadObject is held back, the race a forger would need to
  win), creates the job, but its rows carry an upload time within LastModified's second, and a real
  upload a second later wins.

One dev stack for the module; the requests go through the emulator's endpoint with the user's keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tests.evidence import Proof
from tests.local.support import LocalStackProcess, csv_bytes, job_id_for, local_stack, wait_for

SECTION = "Forged input"
ATTACKER = "event-forger"
EVENT_TEMPLATE = Path(__file__).resolve().parents[1] / "events" / "s3_object_created.json"
FORGED_TIME = "2099-01-01T00:00:00.000Z"
FORGED_SEQUENCER = "F" * 32
HEADER = ("name", "mail", "phone")
# How long the real event's first HeadObject is held: long enough for the forged invocation (a new
# process of the producer) to create the job first.
HOLD_SECONDS = 30
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

OUTSIDE_SUFFIX = Proof(
    "SECURITY",
    SECTION,
    "a forged S3 event for an object outside the uploads suffix",
    injected=(
        "an IAM user allowed only lambda:InvokeFunction on the producer invokes it with S3-shaped events naming"
        " existing objects under the uploads prefix that end in `.txt` and in `.CSV` (eventTime 2099): twice"
        " synchronously, once asynchronously"
    ),
    held=(
        "each invocation failed with RefusedEvent (rule `suffix`); no job and no row came of them; the"
        " asynchronous one, retried twice, rests in the failed-events queue"
    ),
    figures={"forged events refused": 3, "jobs or rows from them": 0},
    test="test_a_forged_event_for_an_object_outside_the_suffix_starts_no_job",
)
FORGED_TIME_PROOF = Proof(
    "SECURITY",
    SECTION,
    "a forged eventTime (2099) and sequencer for a real upload",
    injected=(
        "the same user invokes the producer with an event for a fresh upload, eventTime 2099 and sequencer"
        f" {len(FORGED_SEQUENCER)}×F, before S3's own event is processed (its HeadObject held"
        f" {HOLD_SECONDS} s); a real upload of the same email follows a second later"
    ),
    held=(
        "the job and its row carry an upload time of LastModified + 999 ms, not 2099; the later real upload's"
        " row replaced it"
    ),
    figures={"ms past LastModified, at most": 999, "later uploads that won": 1},
    test="test_a_forged_event_time_moves_a_row_by_under_a_second_and_a_later_upload_wins",
)
PROOFS = [OUTSIDE_SUFFIX, FORGED_TIME_PROOF]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    settings = ("--set", "workerBatchingWindowSeconds=0", "--retry-delays", "1,2")
    with local_stack(tmp_path_factory.mktemp("forged-events"), *settings) as running:
        yield running


@dataclass(frozen=True)
class Forger:
    """The attacker's Lambda client, and the producer's ARN as the bucket's notification names it."""

    client: Any
    producer_arn: str

    def invoke(self, event: dict[str, Any], invocation_type: str = "RequestResponse") -> dict[str, Any]:
        response = self.client.invoke(
            FunctionName=self.producer_arn, InvocationType=invocation_type, Payload=json.dumps(event).encode()
        )
        payload = response["Payload"].read()
        return {**response, "Payload": json.loads(payload) if payload else None}


@pytest.fixture(scope="module")
def forger(local: LocalStackProcess) -> Forger:
    bucket = local.outputs["bucketName"]
    targets = local.client("s3").get_bucket_notification_configuration(Bucket=bucket)["LambdaFunctionConfigurations"]
    [producer_arn] = {target["LambdaFunctionArn"] for target in targets}  # one rule per suffix, one function
    invoke_only = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": producer_arn}
    attacker = local.iam_user(ATTACKER, invoke_only)
    return Forger(attacker.client("lambda", retries={"max_attempts": 1}, read_timeout=300), producer_arn)


def forged_event(local: LocalStackProcess, key: str, version_id: str, sequencer: str = "0055AED6DCD90281E5") -> dict:
    """An event in S3's shape (tests/events), naming a real object version, with eventTime 2099."""
    event = json.loads(EVENT_TEMPLATE.read_text())
    record = event["Records"][0]
    bucket = local.outputs["bucketName"]
    record["awsRegion"] = local.outputs["awsRegion"]
    record["eventTime"] = FORGED_TIME
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["s3"]["object"].update(key=quote_plus(key, safe="/"), versionId=version_id, sequencer=sequencer)
    return event


def last_modified_ms(local: LocalStackProcess, key: str, version_id: str) -> int:
    head = local.client("s3").head_object(Bucket=local.outputs["bucketName"], Key=key, VersionId=version_id)
    return int(head["LastModified"].timestamp()) * 1000


def iso_to_ms(text: str) -> int:
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // timedelta(milliseconds=1)


def user(local: LocalStackProcess, email: str) -> dict[str, Any] | None:
    response = local.api("/users/" + quote(email))
    return response.body if response.status == 200 else None


def test_a_forged_event_for_an_object_outside_the_suffix_starts_no_job(
    local: LocalStackProcess, forger: Forger
) -> None:
    prefix, suffixes = local.outputs["uploadsPrefix"], tuple(local.outputs["uploadsSuffixes"])
    suffix = suffixes[0]
    bucket = local.outputs["bucketName"]
    uploads = [
        (f"{prefix}forged-txt.txt", "RequestResponse"),
        (f"{prefix}forged-upper{suffix.upper()}", "RequestResponse"),
        (f"{prefix}forged-async.txt", "Event"),
    ]
    assert all(not key.endswith(suffixes) for key, _ in uploads), "each object must lie outside the suffixes"
    refused, made, emails = 0, 0, []
    for number, (key, invocation_type) in enumerate(uploads):
        email = f"victim{number}@forged-suffix.test"
        emails.append(email)
        version = local.upload(key, csv_bytes(HEADER, [("Forged Row", email, "")]))
        response = forger.invoke(forged_event(local, key, version), invocation_type)
        if invocation_type == "RequestResponse":
            assert response.get("FunctionError") == "Unhandled", response
            assert response["Payload"]["errorType"] == "RefusedEvent", response["Payload"]
            assert "(suffix)" in response["Payload"]["errorMessage"]
            assert key.rsplit("/", 1)[1] not in response["Payload"]["errorMessage"]
            refused += 1
        else:
            assert response["StatusCode"] == 202, response
            record = _failed_event_record(local)
            assert record["requestContext"]["condition"] == "RetriesExhausted", record
            assert record["requestContext"]["approximateInvokeCount"] == 3, record
            assert record["responsePayload"]["errorType"] == "RefusedEvent", record
            refused += 1
        made += local.job(job_id_for(bucket, key, version)) is not None
    # Rows would be written within seconds of a job; every invocation above has ended.
    made += sum(user(local, email) is not None for email in emails)
    assert {"forged events refused": refused, "jobs or rows from them": made} == OUTSIDE_SUFFIX.figures
    # Operators see each attempt refused by its rule (two synchronous, the asynchronous one three times),
    # and the producer's log holds no name of the forged objects.
    log = local.log("producer")
    refusals = [line for line in _json_lines(log) if line.get("message") == "upload event refused: nothing written"]
    assert [line["rule"] for line in refusals] == ["suffix"] * 5, refusals
    assert not [key for key, _ in uploads if key.rsplit("/", 1)[1] in log]


def _json_lines(text: str) -> list[dict[str, Any]]:
    """The structured (JSON) lines of a log; the runtime's own lines are text."""
    lines = []
    for line in text.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            lines.append(parsed)
    return lines


def _failed_event_record(local: LocalStackProcess) -> dict[str, Any]:
    """The next invocation record in the producer's failed-events queue (its on-failure destination)."""
    sqs = local.client("sqs")
    url = local.outputs["failedUploadEventsQueueUrl"]

    def received() -> dict[str, Any] | None:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
        return json.loads(messages[0]["Body"]) if messages else None

    return wait_for(received, 60, "the refused asynchronous event in the failed-events queue")


def test_a_forged_event_time_moves_a_row_by_under_a_second_and_a_later_upload_wins(
    local: LocalStackProcess, forger: Forger
) -> None:
    prefix, suffix = local.outputs["uploadsPrefix"], local.outputs["uploadsSuffixes"][0]
    bucket = local.outputs["bucketName"]
    email = "victim@forged-time.test"
    producer_role = local.client("lambda").get_function(FunctionName=forger.producer_arn)["Configuration"]["Role"]
    # GIVEN S3's own event for the upload held at its first read of the object …
    local.fault(service="s3", action="HeadObject", delay_seconds=HOLD_SECONDS, times=1, principal=producer_role)
    key = f"{prefix}forged-time{suffix}"
    version = local.upload(key, csv_bytes(HEADER, [("Forged Winner", email, "")]))
    wait_for(lambda: local.applied_faults()[-1][1] == 1, 30, "S3's event for the upload to reach its HeadObject")
    # … WHEN the forger announces the same upload first, with eventTime 2099 and the largest sequencer
    response = forger.invoke(forged_event(local, key, version, FORGED_SEQUENCER))
    assert "FunctionError" not in response, response["Payload"]
    job_id = job_id_for(bucket, key, version)
    assert [job["jobId"] for job in response["Payload"]["jobs"]] == [job_id]
    job = local.finished_job(job_id)
    local.clear_faults()
    # THEN the job and its row carry an upload time within LastModified's second, not 2099
    last_modified = last_modified_ms(local, key, version)
    lead = FORGED_TIME_PROOF.figures["ms past LastModified, at most"]
    assert (job["uploadedAtMs"], job["sequencer"]) == (last_modified + lead, FORGED_SEQUENCER), job
    row = wait_for(lambda: user(local, email), 30, "the forged upload's row")
    assert row["name"] == "Forged Winner"
    assert 0 <= iso_to_ms(row["uploadedAt"]) - last_modified <= lead, row
    # AND a real upload of the same email a second later wins
    while time.time() * 1000 <= last_modified + 1000 + 50:
        time.sleep(0.05)
    later_key = f"{prefix}real-later{suffix}"
    later = local.upload(later_key, csv_bytes(HEADER, [("Real Later", email, "")]))
    assert local.finished_job(job_id_for(bucket, later_key, later))["status"] == "COMPLETE"
    won = int(wait_for(lambda: (user(local, email) or {}).get("name") == "Real Later", 30, "the later row to win"))
    assert won == FORGED_TIME_PROOF.figures["later uploads that won"]
