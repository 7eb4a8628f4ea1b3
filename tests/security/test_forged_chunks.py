"""Forged chunks, replayed in local mode with IAM enforced (issue 17, item 1).

A chunk's fields besides its rows are public or derivable: `GET /jobs/{id}` shows the upload time,
sequencer, bucket, key and version; `expiresAt` follows from the upload time and `jobTtlDays` to
within a second or so (read from the record here: the forgers are granted everything but the key).
What makes a chunk the producer's is its MAC, under a key derived from the stack's signing secret
(`handlers/common/signing.py`), which only the producer's and the worker's roles and the deployers
may read, and which no table holds. Two attackers, IAM users of the account:

- One allowed only `sqs:SendMessage` on the dead-letter queue (the chunks queue's policy refuses
  every sender but the producer's role). It copies the newest job's fields into a chunk numbered 0
  whose rows are its own — an existing user renamed and a new email, both at row `rowsTotal`, the
  highest the job allows — and puts it in the DLQ, once without a MAC and once with a MAC under a
  key of its guessing; the operator's everyday `python -m ingest dlq redrive` then moves it to the
  worker. Every check the worker made before chunks were signed passes for such a chunk (asserted
  below, with the worker's own functions): it was written. Now the worker refuses it for its MAC,
  every delivery, until it rests in the DLQ again, and the users table is as the real upload left it.
  Where the DLQ's policy refuses the user's send (it denies `sqs:SendMessage` to everyone since the
  side-doors change), the message is put there with the local administrator's keys, which pass every
  policy in local mode — as a principal some future policy lets through would: this proves the
  worker's check, not the queues' policies.
- One allowed `dynamodb:GetItem` and `dynamodb:Query` on the jobs table and its `recent-jobs` index
  and `lambda:InvokeFunction` on the worker (the review's attack, when job records held their key).
  It reads everything it can of the newest job, signs a chunk of its rows with every value it read,
  as the key and as a secret to derive the key from, and hands them all to the worker in one
  SQS-shaped event. Each is refused for its MAC; its `secretsmanager:GetSecretValue` is denied, and
  so is that of a user whose own policy allows it on every secret: the secret's policy denies it.

One dev stack for the module, its worker timeout 2 s and no batching window, so that a refused
chunk returns every 12 s (the visibility timeout, six times the timeout) and reaches the DLQ after
`maxReceiveCount` receives within about a minute.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from handlers.common.chunks import Chunk, Row, Source, decode, mac_attributes, sign, upload_tiebreak
from handlers.common.dynamo import from_wire
from handlers.common.jobs import RECENT_JOBS_INDEX
from handlers.common.schema import DEFAULT_SCHEMA
from handlers.common.signing import SECRET_ARN_VARIABLE
from handlers.worker.admission import check_against_job, check_rows
from infra.config import load_config
from local.esm import sqs_record
from local.project import PROJECT, stack_settings
from tests.evidence import Proof
from tests.ingest.conftest import local_command
from tests.local.support import LocalStackProcess, csv_bytes, dead_letter_count, job_id_for, local_stack, wait_for

pytestmark = pytest.mark.long(seconds=70)

SECTION = "Forged input"
ATTACKER = "chunk-forger"
TABLE_READER, SECRET_READER = "jobs-table-reader", "secret-reader"
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
# The jobs-table reader's clients: one attempt each (a refusal is the answer sought), time for the worker to answer.
ONE_TRY: dict[str, Any] = {"retries": {"max_attempts": 1}, "read_timeout": 120}

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
TABLE_READER_PROOF = Proof(
    "SECURITY",
    SECTION,
    "a chunk signed with what a reader of the jobs table can read, invoked on the worker",
    injected=(
        "an IAM user allowed dynamodb:GetItem and dynamodb:Query on the jobs table and its recent-jobs index"
        " and lambda:InvokeFunction on the worker reads the newest job's record and index entry, signs a"
        " chunk of its own rows (an existing user renamed, a new email) with each value it read as the key"
        " and as a secret to derive the key from (HMAC-SHA256 of the job id), and invokes the worker with all"
        " of them in one SQS-shaped event; it, and a user whose own policy allows"
        " secretsmanager:GetSecretValue on every secret, ask for the signing secret by ARN and by name"
    ),
    held=(
        "the worker reports every chunk failed, each refused for its MAC; no row is written and the job's"
        " counts stand; every GetSecretValue is denied, the second user's by the secret's policy"
    ),
    figures={"values read": 108, "forged chunks": 216, "rows of them written": 0, "secret reads denied": 4},
    test="test_a_reader_of_the_jobs_table_cannot_sign_a_chunk_nor_read_the_secret",
)
PROOFS = [FORGED_CHUNK, TABLE_READER_PROOF]


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
    attacker = local.iam_user(ATTACKER, {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn})
    return Forger(attacker.client("sqs", retries={"max_attempts": 1}), url)


def forged_chunk(public: dict[str, Any], expires_at: int | None) -> Chunk:
    """Chunk 0 of the job `public` (as GET /jobs/{id} shows it), with the forger's rows at `rowsTotal`."""
    # The dev stack's schema is the default: a row's values are name, mail, phone.
    rows = tuple(Row(public["rowsTotal"], (FORGED_NAME, email, None)) for email in (VICTIM, NEWCOMER))
    return Chunk(
        jobId=public["jobId"],
        chunk=0,
        uploadedAtMs=public["uploadedAtMs"],
        tiebreak=upload_tiebreak(public["sequencer"], public["jobId"]),
        source=Source(public["bucket"], public["key"], public["versionId"]),
        expiresAt=expires_at,
        schema=DEFAULT_SCHEMA.fingerprint,
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
    check_rows(decode(body), DEFAULT_SCHEMA)
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


# --- a reader of the jobs table, invoking the worker -----------------------------------------------


def leaves(value: Any) -> list[Any]:
    """Every scalar an item holds, nested maps and lists included."""
    if isinstance(value, dict):
        return [leaf for nested in value.values() for leaf in leaves(nested)]
    if isinstance(value, list):
        return [leaf for nested in value for leaf in leaves(nested)]
    return [value]


def key_material(value: Any) -> bytes:
    """A value read from DynamoDB's wire format (`{"S": …}`, `{"N": …}`, `{"B": …}`) as bytes to sign with."""
    return value if isinstance(value, bytes) else str(value).encode()


def invoke_event(local: LocalStackProcess, queue_arn: str, bodies: list[tuple[str, bytes]]) -> dict[str, Any]:
    """An SQS event as the event source mapping builds it, one record per (body, key), each signed with its key."""
    records = []
    for body, key in bodies:
        message = {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": uuid.uuid4().hex,
            "Body": body,
            "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),  # SQS's checksum of the body
            "Attributes": {"ApproximateReceiveCount": "1"},
            "MessageAttributes": mac_attributes(sign(body, key)),
        }
        records.append(sqs_record(message, queue_arn, local.outputs["awsRegion"]))
    return {"Records": records}


def test_a_reader_of_the_jobs_table_cannot_sign_a_chunk_nor_read_the_secret(local: LocalStackProcess) -> None:
    # GIVEN a real upload, written, and the worker the chunks queue feeds
    bucket, key = local.outputs["bucketName"], local.outputs["uploadsPrefix"] + "table-reader.csv"
    job_id = job_id_for(bucket, key, local.upload(key, UPLOAD))
    assert local.finished_job(job_id)["status"] == "COMPLETE"
    lambda_admin = local.client("lambda")
    queue_arn = local.client("sqs").get_queue_attributes(
        QueueUrl=local.outputs["queueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    [mapping] = [
        m for m in lambda_admin.list_event_source_mappings()["EventSourceMappings"] if m["EventSourceArn"] == queue_arn
    ]
    worker_arn = mapping["FunctionArn"]
    account = queue_arn.split(":")[4]
    table_arn = f"arn:aws:dynamodb:{local.outputs['awsRegion']}:{account}:table/{local.outputs['jobsTableName']}"
    reader_statements = [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query"],
            "Resource": [table_arn, f"{table_arn}/index/{RECENT_JOBS_INDEX}"],
        },
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": worker_arn},
    ]
    dynamodb = local.iam_user(TABLE_READER, *reader_statements).client("dynamodb", **ONE_TRY)
    invoker = local.iam_user(f"{TABLE_READER}-invoke", *reader_statements).client("lambda", **ONE_TRY)
    secret_asker = local.iam_user(f"{TABLE_READER}-secret", *reader_statements).client("secretsmanager", **ONE_TRY)

    # WHEN the reader reads the job's record and its index entry …
    record = dynamodb.get_item(
        TableName=local.outputs["jobsTableName"], Key={"jobId": {"S": job_id}, "sk": {"S": "JOB"}}, ConsistentRead=True
    )["Item"]
    [indexed] = [
        item
        for item in dynamodb.query(
            TableName=local.outputs["jobsTableName"],
            IndexName=RECENT_JOBS_INDEX,
            KeyConditionExpression="recentPk = :pk",
            ExpressionAttributeValues={":pk": record["recentPk"]},
        )["Items"]
        if item["jobId"]["S"] == job_id
    ]
    assert "chunkMacKey" not in record and not [leaf for leaf in leaves(record) if isinstance(leaf, bytes)]
    values = [key_material(leaf) for item in (record, indexed) for leaf in leaves(item)]
    # … makes a chunk of its own rows from the job's fields, and signs it with each value as the key
    # and as a secret the key is derived from, as the producer derives it
    public = from_wire(record) or {}
    body = forged_chunk(public, public.get("expiresAt")).encode()
    check_against_job(decode(body), public)  # every check but the MAC admits it
    keys = [*values, *(hmac.new(value, job_id.encode(), hashlib.sha256).digest() for value in values)]
    event = invoke_event(local, queue_arn, [(body, k) for k in keys])
    response = invoker.invoke(FunctionName=worker_arn, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read())

    # THEN the worker reports each one failed …
    assert "FunctionError" not in response, payload
    failed = sorted(f["itemIdentifier"] for f in payload["batchItemFailures"])
    assert failed == sorted(r["messageId"] for r in event["Records"])
    # … for its MAC, naming no forged value, and none of their rows is written
    log = local.log("worker")
    assert log.count(f"its MAC does not match job {job_id}'s key") >= len(keys)
    assert FORGED_NAME not in log and NEWCOMER not in log
    written = sum((user(local, email) or {}).get("name") == FORGED_NAME for email in (VICTIM, NEWCOMER))
    assert user(local, NEWCOMER) is None and (user(local, VICTIM) or {}).get("name") == "Ann Real"
    after = local.job(job_id) or {}
    assert (after["status"], after["chunksDone"], after["rowsWritten"]) == ("COMPLETE", 1, 2), after

    # … and the secret the keys derive from is out of its reach, and of a user allowed it on every secret
    secret_arn = lambda_admin.get_function_configuration(FunctionName=worker_arn)["Environment"]["Variables"][
        SECRET_ARN_VARIABLE
    ]
    secret_name = local.client("secretsmanager").describe_secret(SecretId=secret_arn)["Name"]
    everything = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    allowed_by_itself = local.iam_user(SECRET_READER, everything).client("secretsmanager", **ONE_TRY)
    denied, by_the_secret = 0, 0
    for asker in (secret_asker, allowed_by_itself):
        for secret_id in (secret_arn, secret_name):
            with pytest.raises(ClientError) as refused:
                asker.get_secret_value(SecretId=secret_id)
            assert refused.value.response["Error"]["Code"] in DENIED_CODES, refused.value
            assert secret_arn in refused.value.response["Error"]["Message"], "checked on the secret, named or not"
            denied += 1
            by_the_secret += "explicit deny in a resource-based policy" in refused.value.response["Error"]["Message"]
    assert by_the_secret >= 2, "the user allowed every secret is refused by the secret's own policy"
    assert {
        "values read": len(values),
        "forged chunks": len(keys),
        "rows of them written": written,
        "secret reads denied": denied,
    } == TABLE_READER_PROOF.figures
