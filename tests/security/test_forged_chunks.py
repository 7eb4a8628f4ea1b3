"""Forged chunks, replayed in local mode with IAM enforced (issue 17, item 1).

The attacker is an IAM user of the account whose own policy allows one action: `sqs:SendMessage` on
the dead-letter queue (the chunks queue's policy refuses every sender but the producer's role). A
chunk's fields besides its rows are public or derivable: `GET /jobs/{id}` shows the upload time,
sequencer, bucket, key and version; `expiresAt` follows from the upload time and `jobTtlDays` to
within a second or so (read from the record here: the forger is granted everything but the key).
So the forger copies the newest job's fields into a chunk numbered 0 whose rows are its own — an
existing user renamed and a new email, both at row `rowsTotal`, the highest the job allows — and
puts it in the DLQ, once without a MAC and once with a MAC under a key of its guessing; the
operator's everyday `python -m ingest dlq redrive` then moves it to the worker.

Every check the worker made before chunks were signed passes for such a chunk (asserted below, with
the worker's own functions): it was written. Now the worker refuses it for its MAC, every delivery,
until it rests in the DLQ again, and the users table is as the real upload left it.

Where the DLQ's policy refuses the user's send (it denies `sqs:SendMessage` to everyone since the
side-doors change), the message is put there with the local administrator's keys, which pass every
policy in local mode — as a principal some future policy lets through would: this module proves the
worker's check, not the queues' policies.

One dev stack for the module, its worker timeout 2 s and no batching window, so that a refused
chunk returns every 12 s (the visibility timeout, six times the timeout) and reaches the DLQ after
`maxReceiveCount` receives within about a minute.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from handlers.common.chunks import Chunk, Row, Source, decode, mac_attributes, sign, upload_tiebreak
from handlers.common.dynamo import from_wire
from handlers.worker.admission import check_against_job, check_rows
from infra.config import load_config
from local.project import PROJECT, stack_settings
from tests.evidence import Proof
from tests.ingest.conftest import local_command
from tests.local.support import LocalStackProcess, csv_bytes, dead_letter_count, job_id_for, local_stack, wait_for

SECTION = "Forged input"
ATTACKER = "chunk-forger"
SETTINGS = (
    "--set",
    "workerTimeoutSeconds=2",
    "--set",
    "workerBatchingWindowSeconds=0",
    "--retry-delays",
    "1,2",
)
# dev's maxReceiveCount, as the program reads it from Pulumi.dev.yaml.
MAX_RECEIVE_COUNT = load_config(lambda key: stack_settings("dev").get(f"{PROJECT}:{key}")).max_receive_count
VICTIM, NEWCOMER = "ann@forged-chunk.test", "mallory@forged-chunk.test"
FORGED_NAME = "Mallory Forged"
UPLOAD = csv_bytes(("name", "mail", "phone"), [("Ann Real", VICTIM, ""), ("Bob Real", "bob@forged-chunk.test", "")])
DENIED_CODES = {"AccessDenied", "AccessDeniedException"}

FORGED_CHUNK = Proof(
    "SECURITY",
    SECTION,
    "a forged chunk copying a real job's public fields",
    injected=(
        "two chunks of the newest job (its fields from GET /jobs/{id}, chunk 0, row = rowsTotal) renaming an"
        " existing user and adding an email, one without a MAC, one with a MAC under a guessed key, put in the DLQ"
        " (by an IAM user allowed sqs:SendMessage on it, or by the local administrator where the DLQ's policy"
        " refuses that user); `python -m ingest dlq redrive` moves them to the worker"
    ),
    held=(
        "each passes every check but the MAC, and is refused for its MAC on every delivery until it rests in the"
        " DLQ again; the existing user keeps the real name, the new email is never written, the job's counts"
        " are unchanged"
    ),
    figures={"forged chunks": 2, "rows of them written": 0, "receives of each, at least": MAX_RECEIVE_COUNT},
    test="test_a_forged_chunk_redriven_to_the_worker_is_refused_for_its_mac_and_rests_in_the_dlq",
)
PROOFS = [FORGED_CHUNK]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with local_stack(tmp_path_factory.mktemp("forged-chunks"), *SETTINGS) as running:
        yield running


@dataclass(frozen=True)
class Forger:
    """The attacker's SQS client, allowed by its own policy to send to the DLQ and nothing else."""

    sqs: Any
    dead_letter_queue_url: str


@pytest.fixture(scope="module")
def forger(local: LocalStackProcess) -> Forger:
    url = local.outputs["deadLetterQueueUrl"]
    arn = local.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    iam = local.client("iam")
    iam.create_user(UserName=ATTACKER)
    send_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn}],
    }
    iam.put_user_policy(UserName=ATTACKER, PolicyName="send-to-dlq", PolicyDocument=json.dumps(send_only))
    key = iam.create_access_key(UserName=ATTACKER)["AccessKey"]
    sqs = boto3.client(
        "sqs",
        endpoint_url=local.outputs["awsEndpointUrl"],
        region_name=local.outputs["awsRegion"],
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )
    return Forger(sqs, url)


def forged_chunk(public: dict[str, Any], expires_at: int | None) -> Chunk:
    """Chunk 0 of the job `public` (as GET /jobs/{id} shows it), with the forger's rows at `rowsTotal`."""
    rows = (Row(public["rowsTotal"], VICTIM, FORGED_NAME, None), Row(public["rowsTotal"], NEWCOMER, FORGED_NAME, None))
    return Chunk(
        jobId=public["jobId"],
        chunk=0,
        uploadedAtMs=public["uploadedAtMs"],
        tiebreak=upload_tiebreak(public["sequencer"], public["jobId"]),
        source=Source(public["bucket"], public["key"], public["versionId"]),
        expiresAt=expires_at,
        rows=rows,
    )


def job_record(local: LocalStackProcess, job_id: str) -> dict[str, Any]:
    """The job record as the worker reads it, read by the local administrator."""
    item = local.client("dynamodb").get_item(
        TableName=local.outputs["jobsTableName"], Key={"jobId": {"S": job_id}, "sk": {"S": "JOB"}}, ConsistentRead=True
    )["Item"]
    return from_wire(item) or {}


def put_in_dead_letter_queue(local: LocalStackProcess, forger: Forger, body: str, mac: str | None) -> str:
    """Send the forged message to the DLQ as the forger, or, if a queue policy refuses the forger, as the
    local administrator (whom no policy refuses in local mode); returns who sent it."""
    message: dict[str, Any] = {"QueueUrl": forger.dead_letter_queue_url, "MessageBody": body}
    if mac is not None:
        message["MessageAttributes"] = mac_attributes(mac)
    try:
        forger.sqs.send_message(**message)
    except ClientError as refused:
        assert refused.response["Error"]["Code"] in DENIED_CODES, refused
        local.client("sqs").send_message(**message)
        return "administrator"
    return ATTACKER


def queue_count(local: LocalStackProcess) -> int:
    """Messages in the chunks queue, visible or in flight."""
    attributes = local.client("sqs").get_queue_attributes(
        QueueUrl=local.outputs["queueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def dead_letters(local: LocalStackProcess) -> list[dict[str, Any]]:
    peeked = local_command(local, "dlq", "peek", "--json")
    assert peeked.returncode == 0, peeked.stderr
    return json.loads(peeked.stdout)


def user(local: LocalStackProcess, email: str) -> dict[str, Any] | None:
    response = local.api("/users/" + quote(email))
    return response.body if response.status == 200 else None


def test_a_forged_chunk_redriven_to_the_worker_is_refused_for_its_mac_and_rests_in_the_dlq(
    local: LocalStackProcess, forger: Forger
) -> None:
    # GIVEN a real upload, written
    bucket, key = local.outputs["bucketName"], local.outputs["uploadsPrefix"] + "forged-chunk.csv"
    job_id = job_id_for(bucket, key, local.upload(key, UPLOAD))
    job = local.finished_job(job_id)
    assert (job["status"], job["rowsWritten"], job["chunksTotal"]) == ("COMPLETE", 2, 1), job
    assert (user(local, VICTIM) or {}).get("name") == "Ann Real"

    # WHEN the forger copies its public fields into a chunk of its own rows …
    public = local.api(f"/jobs/{job_id}").body
    assert "chunkMacKey" not in public, "the API never shows the job's key"
    record = job_record(local, job_id)
    body = forged_chunk(public, record.get("expiresAt")).encode()
    # … which every check but the MAC admits: without it, this chunk was written
    check_rows(decode(body))
    check_against_job(decode(body), record)
    # … puts it in the DLQ, without a MAC and with one under a guessed key, and the operator redrives
    macs = {"carries no MAC": None, "MAC does not match": sign(body, secrets.token_bytes(32))}
    senders = {put_in_dead_letter_queue(local, forger, body, mac) for mac in macs.values()}
    assert senders <= {ATTACKER, "administrator"}
    wait_for(lambda: dead_letter_count(local) == len(macs), 30, "both forged chunks in the DLQ")
    redriven = local_command(local, "dlq", "redrive", "--json")
    assert redriven.returncode == 0, redriven.stderr
    assert json.loads(redriven.stdout)["moved"] == len(macs)

    # THEN the worker refuses each, every time, until both rest in the DLQ again …
    def settled() -> str | None:
        if any((user(local, email) or {}).get("name") == FORGED_NAME for email in (VICTIM, NEWCOMER)):
            return "written"
        return "refused" if queue_count(local) == 0 and dead_letter_count(local) == len(macs) else None

    outcome = wait_for(settled, 240, "both forged chunks refused back into the DLQ (or written)", interval=1)
    # … none of their rows is written, and the job's counts stand
    assert (user(local, VICTIM) or {}).get("name") == "Ann Real"
    assert user(local, NEWCOMER) is None
    written = sum((user(local, email) or {}).get("name") == FORGED_NAME for email in (VICTIM, NEWCOMER))
    after = local.job(job_id) or {}
    assert (after["status"], after["chunksDone"], after["rowsWritten"]) == ("COMPLETE", 1, 2), after
    assert outcome == "refused"
    letters = dead_letters(local)
    assert sorted((letter["jobId"], letter["chunk"]) for letter in letters) == [(job_id, 0)] * len(macs), letters
    receives = min(letter["receiveCount"] for letter in letters)
    assert receives >= MAX_RECEIVE_COUNT, letters
    errors = [letter["error"] or "" for letter in letters]
    assert all(error.startswith("chunk refused: ") and job_id in error for error in errors), errors
    assert sorted(reason for error in errors for reason in macs if reason in error) == sorted(macs), errors
    # … and the worker's log names the refusals, never a forged value
    log = local.log("worker")
    assert log.count('"chunk refused"') >= len(macs) * MAX_RECEIVE_COUNT
    assert FORGED_NAME not in log and NEWCOMER not in log
    assert {
        "forged chunks": len(letters),
        "rows of them written": written,
        "receives of each, at least": min(receives, MAX_RECEIVE_COUNT),
    } == FORGED_CHUNK.figures
