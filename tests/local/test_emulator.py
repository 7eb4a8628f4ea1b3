"""The emulator's guarantees: atomic requests, cheap queues at depth, S3 events as AWS sends them,
long polls that block nobody, injected faults, Lambda invocations handed to the session."""

from __future__ import annotations

import dataclasses
import gc
import json
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local import moto_patches
from local.emulator import (
    Credentials,
    DeliveryFault,
    Emulator,
    Fault,
    FaultsEndpoint,
    InvokeRequest,
    InvokeResponse,
    KillFault,
)
from tests.local.conftest import ACCOUNT, REGION
from tests.local.support import wait_for

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def no_retries(emulator: Emulator, service: str, credentials: Credentials | None = None) -> Any:
    key = credentials or emulator.admin
    return boto3.session.Session(
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        aws_session_token=key.session_token,
        region_name=REGION,
    ).client(
        service,
        endpoint_url=emulator.endpoint_url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def create_table(emulator: Emulator) -> str:
    name = unique("table")
    emulator.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    return name


def role_session(emulator: Emulator, *statements: dict[str, Any]) -> tuple[str, Credentials]:
    iam, name = emulator.client("iam"), unique("role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
    if statements:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(document))
    return arn, emulator.assume_role(arn, name)


def run_threads(count: int, target: Any) -> None:
    """Run `target(i)` in `count` threads, switching between them every 0.1 ms: at Python's default
    5 ms moto's races are rare (1 lost update in 2,000), at 0.1 ms a front without its lock loses
    dozens (68 measured), so the test catches it."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)


# --- atomicity ---------------------------------------------------------------------------------


def test_concurrent_counter_updates_lose_nothing(emulator: Emulator) -> None:
    table = create_table(emulator)

    def add_ones(_: int) -> None:
        client = emulator.client("dynamodb")
        for _ in range(250):
            client.update_item(
                TableName=table,
                Key={"pk": {"S": "counter"}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    run_threads(8, add_ones)

    item = emulator.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "counter"}})["Item"]
    assert item["n"] == {"N": "2000"}


def test_conditional_create_race_has_one_winner_per_key(emulator: Emulator) -> None:
    table, keys = create_table(emulator), [f"key-{i}" for i in range(100)]
    wins: Counter[str] = Counter()
    lock = threading.Lock()

    def create_all(seed: int) -> None:
        client, order = emulator.client("dynamodb"), keys[:]
        random.Random(seed).shuffle(order)
        for key in order:
            try:
                client.put_item(
                    TableName=table,
                    Item={"pk": {"S": key}, "writer": {"N": str(seed)}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
                continue
            with lock:
                wins[key] += 1

    run_threads(4, create_all)

    assert wins == Counter(dict.fromkeys(keys, 1))


# --- SQS ---------------------------------------------------------------------------------------


def test_queue_at_depth_100000_receives_and_deletes_in_milliseconds(emulator: Emulator) -> None:
    from moto.sqs.models import sqs_backends

    sqs, name = emulator.client("sqs"), unique("deep")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    backend = sqs_backends[ACCOUNT][REGION]
    gc.disable()  # 100,000 new objects: collections would only slow the fill
    try:
        for index in range(100_000):
            backend.send_message(name, f"message {index}")
    finally:
        gc.enable()

    started = time.perf_counter()
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    )
    elapsed = time.perf_counter() - started
    print(f"receive 10 + delete 10 at depth 100,000: {elapsed * 1000:.1f} ms")

    assert [m["Body"] for m in messages] == [f"message {i}" for i in range(10)]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "99990"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert elapsed < 2.0  # generous: unpatched moto takes minutes here
    sqs.purge_queue(QueueUrl=url)


def test_redrive_moves_a_message_to_the_dlq_after_max_receive_count(emulator: Emulator) -> None:
    sqs = emulator.client("sqs")
    dlq = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName=unique("source"), Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")

    receives = [len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", [])) for _ in range(3)]

    assert receives == [1, 1, 0]
    moved = sqs.receive_message(QueueUrl=dlq, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]


def test_visibility_timeout_hides_a_received_message_until_it_ends(emulator: Emulator) -> None:
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName=unique("visible"), Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")

    first = sqs.receive_message(QueueUrl=url)["Messages"]
    hidden = sqs.receive_message(QueueUrl=url).get("Messages", [])
    in_flight = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    time.sleep(1.2)
    again = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])  # an old handle still deletes

    assert hidden == []
    assert in_flight["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert (
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_long_poll_waits_outside_the_lock(emulator: Emulator) -> None:
    sqs, table = emulator.client("sqs"), create_table(emulator)
    url = sqs.create_queue(QueueName=unique("empty"))["QueueUrl"]
    finished: dict[str, float] = {}

    def poll() -> None:
        started = time.monotonic()
        finished["messages"] = len(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", []))
        finished["poll"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    emulator.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "during the poll"}})
    put_done_while_polling = poller.is_alive()
    poller.join(timeout=10)

    assert put_done_while_polling
    assert finished["messages"] == 0
    assert finished["poll"] >= 1.5  # it did wait (about 2 s), rather than answer at once
    print(f"empty long poll of 2 s returned after {finished['poll']:.2f} s")


def test_long_poll_returns_when_a_message_arrives(emulator: Emulator) -> None:
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName=unique("arrives"))["QueueUrl"]
    threading.Timer(0.3, lambda: emulator.client("sqs").send_message(QueueUrl=url, MessageBody="late")).start()

    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)["Messages"]

    assert [m["Body"] for m in messages] == ["late"]


def test_queue_default_wait_applies_and_out_of_range_waits_are_refused(emulator: Emulator) -> None:
    sqs = emulator.client("sqs")
    attributes = {"ReceiveMessageWaitTimeSeconds": "1"}
    url = sqs.create_queue(QueueName=unique("waits"), Attributes=attributes)["QueueUrl"]

    started = time.monotonic()
    empty = sqs.receive_message(QueueUrl=url).get("Messages", [])
    waited = time.monotonic() - started
    with pytest.raises(ClientError) as raised:
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21)

    assert empty == [] and waited >= 0.8  # the queue's own 1 s wait, not an immediate answer
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValue"


# --- S3 events ---------------------------------------------------------------------------------

FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:producer"


@pytest.fixture
def notifying_bucket(emulator: Emulator) -> Iterator[str]:
    """A versioned bucket notifying the producer of `uploads/*.csv`, the S3 event queue drained."""
    s3, bucket = emulator.client("s3"), unique("uploads")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    rules = [{"Name": "prefix", "Value": "uploads/"}, {"Name": "suffix", "Value": ".csv"}]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": FUNCTION_ARN,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": rules}},
                }
            ]
        },
    )
    drain(emulator)
    yield bucket


def drain(emulator: Emulator) -> list[tuple[str, dict[str, Any]]]:
    events = []
    while not emulator.s3_events.empty():
        events.append(emulator.s3_events.get_nowait())
    return events


def records(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    assert all(arn == FUNCTION_ARN for arn, _ in events)
    return [record for _, event in events for record in event["Records"]]


def test_two_puts_of_a_key_notify_each_version_in_order(emulator: Emulator, notifying_bucket: str) -> None:
    s3 = emulator.client("s3")
    first = s3.put_object(Bucket=notifying_bucket, Key="uploads/a.csv", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=notifying_bucket, Key="uploads/a.csv", Body=b"2")["VersionId"]

    got = records(drain(emulator))

    assert [r["s3"]["object"]["versionId"] for r in got] == [first, second]
    sequencers = [r["s3"]["object"]["sequencer"] for r in got]
    assert sequencers[0] < sequencers[1] and len(sequencers[0]) == len(sequencers[1])
    assert all(int(s, 16) >= 0 for s in sequencers)
    record = got[0]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == notifying_bucket
    assert {"userIdentity", "requestParameters", "responseElements"} <= set(record)


def test_keys_are_encoded_as_s3_encodes_them(emulator: Emulator, notifying_bucket: str) -> None:
    emulator.client("s3").put_object(Bucket=notifying_bucket, Key="uploads/my dir/a+b=c.csv", Body=b"x")

    (record,) = records(drain(emulator))

    assert record["s3"]["object"]["key"] == "uploads/my+dir/a%2Bb%3Dc.csv"
    assert urllib.parse.unquote_plus(record["s3"]["object"]["key"]) == "uploads/my dir/a+b=c.csv"


def test_keys_outside_the_filter_notify_nothing(emulator: Emulator, notifying_bucket: str) -> None:
    s3 = emulator.client("s3")
    s3.put_object(Bucket=notifying_bucket, Key="reports/a.csv", Body=b"x")
    s3.put_object(Bucket=notifying_bucket, Key="uploads/a.txt", Body=b"x")
    assert drain(emulator) == []


def test_multipart_upload_notifies_once(emulator: Emulator, notifying_bucket: str) -> None:
    s3, key = emulator.client("s3"), "uploads/big.csv"
    upload = s3.create_multipart_upload(Bucket=notifying_bucket, Key=key, Tagging="kind=upload")["UploadId"]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(Bucket=notifying_bucket, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"],
        }
        for n, body in ((1, b"a" * 5 * 1024 * 1024), (2, b"b"))
    ]
    done = s3.complete_multipart_upload(
        Bucket=notifying_bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )

    got = records(drain(emulator))

    assert [r["eventName"] for r in got] == ["ObjectCreated:CompleteMultipartUpload"]
    assert got[0]["s3"]["object"]["versionId"] == done["VersionId"]


def test_role_upload_names_the_role_session_in_the_event(emulator: Emulator, notifying_bucket: str) -> None:
    _, session = role_session(emulator, {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"})
    emulator.client("s3", session).put_object(Bucket=notifying_bucket, Key="uploads/r.csv", Body=b"x")

    (record,) = records(drain(emulator))

    assert record["userIdentity"]["principalId"].startswith("AWS:AROA")


# --- call counts -------------------------------------------------------------------------------


def test_calls_are_counted_by_role_service_and_operation(emulator: Emulator) -> None:
    arn, session = role_session(emulator, {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
    url = emulator.client("sqs").create_queue(QueueName=unique("counted"))["QueueUrl"]
    role = arn.rsplit("/", 1)[-1]
    body = "x" * 70_000  # two 64 KiB units once in the request
    sqs = emulator.client("sqs", session)

    sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "y"} for i in range(3)])
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "0", "MessageBody": "z"}])

    counts = emulator.calls.snapshot()
    assert counts[(role, "sqs", "SendMessage")].calls == 1
    assert counts[(role, "sqs", "SendMessage")].units_64k == 2
    assert counts[(role, "sqs", "SendMessageBatch")].calls == 2
    assert counts[("admin", "sqs", "CreateQueue")].calls >= 1
    assert not [key for key in counts if key[0] == role and key[2] == "CreateQueue"]


def test_dynamodb_batches_are_counted_by_the_items_they_carry(emulator: Emulator) -> None:
    """What DynamoDB bills a batch by (bench `cost`): a BatchGetItem's keys, a BatchExecuteStatement's
    statements, a BatchWriteItem's requests."""
    arn, session = role_session(emulator, {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})
    role, name = arn.rsplit("/", 1)[-1], unique("counted")
    emulator.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb = emulator.client("dynamodb", session)

    dynamodb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"k": {"S": f"w{i}"}}}} for i in range(4)]})
    dynamodb.batch_get_item(RequestItems={name: {"Keys": [{"k": {"S": f"w{i}"}} for i in range(3)]}})
    dynamodb.batch_execute_statement(
        Statements=[
            {"Statement": f"INSERT INTO \"{name}\" VALUE {{'k': ?}}", "Parameters": [{"S": f"s{i}"}]} for i in range(5)
        ]
    )
    dynamodb.get_item(TableName=name, Key={"k": {"S": "w0"}})

    counts = emulator.calls.snapshot()
    assert counts[(role, "dynamodb", "BatchWriteItem")].items == 4
    assert counts[(role, "dynamodb", "BatchGetItem")].items == 3
    assert counts[(role, "dynamodb", "BatchExecuteStatement")].items == 5
    assert counts[(role, "dynamodb", "GetItem")].items == 1


# --- faults ------------------------------------------------------------------------------------


def test_injected_error_is_answered_then_requests_pass_again(emulator: Emulator) -> None:
    table, client = create_table(emulator), no_retries(emulator, "dynamodb")
    emulator.faults.add(Fault("dynamodb", "PutItem", error_code="ProvisionedThroughputExceededException", times=1))

    with pytest.raises(ClientError) as raised:
        client.put_item(TableName=table, Item={"pk": {"S": "a"}})
    client.put_item(TableName=table, Item={"pk": {"S": "a"}})

    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert emulator.faults.list() == []


@pytest.mark.parametrize(
    ("service", "action", "code", "call"),
    [
        ("s3", "PutObject", "SlowDown", lambda c, n: c.put_object(Bucket=n["bucket"], Key="k", Body=b"x")),
        (
            "sqs",
            "SendMessage",
            "InternalError",
            lambda c, n: c.send_message_batch(QueueUrl=n["queue"], Entries=[{"Id": "1", "MessageBody": "m"}]),
        ),
    ],
)
def test_injected_errors_are_parsed_as_the_service_sends_them(
    emulator: Emulator, service: str, action: str, code: str, call: Any
) -> None:
    bucket = unique("faults")
    emulator.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    names = {"bucket": bucket, "queue": emulator.client("sqs").create_queue(QueueName=unique("faults"))["QueueUrl"]}
    emulator.faults.add(Fault(service, action, error_code=code, times=1))

    response = call(emulator.client(service), names)  # standard retries: botocore retries it as retryable

    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert emulator.faults.list() == []


def test_injected_delay_and_principal_filter(emulator: Emulator) -> None:
    table = create_table(emulator)
    role, session = role_session(emulator, {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"})
    emulator.faults.add(Fault("dynamodb", "GetItem", delay_seconds=0.5, principal=role.rsplit("/", 1)[1], times=2))

    started = time.monotonic()
    emulator.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "a"}})  # admin: not delayed
    emulator.client("dynamodb", session).get_item(TableName=table, Key={"pk": {"S": "a"}})
    elapsed = time.monotonic() - started

    assert elapsed >= 0.5
    assert [f.times for f in emulator.faults.list()] == [1]
    emulator.faults.clear()


def test_fault_on_an_api_operation_applies_to_versioned_reads_of_one_role(emulator: Emulator) -> None:
    s3, bucket = emulator.client("s3"), unique("versioned")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"v")["VersionId"]
    role, session = role_session(emulator, {"Effect": "Allow", "Action": "s3:GetObject*", "Resource": "*"})
    emulator.faults.add(Fault("s3", "GetObject", error_code="InternalError", principal=role.rsplit("/", 1)[1]))
    try:
        assert s3.get_object(Bucket=bucket, Key="k", VersionId=version)["Body"].read() == b"v"  # admin: untouched
        with pytest.raises(ClientError) as raised:
            no_retries(emulator, "s3", session).get_object(Bucket=bucket, Key="k", VersionId=version)
    finally:
        emulator.faults.clear()
    assert raised.value.response["Error"]["Code"] == "InternalError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def _hits(emulator: Emulator, table: str, calls: int) -> list[int]:
    """Which of `calls` PutItems (by position) were answered with the injected throttling."""
    client, hit = no_retries(emulator, "dynamodb"), []
    for n in range(calls):
        try:
            client.put_item(TableName=table, Item={"pk": {"S": f"k{n}"}})
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            hit.append(n)
    return hit


def test_a_rate_fault_hits_a_seeded_fraction_of_its_window_the_same_way_every_run(emulator: Emulator) -> None:
    table = create_table(emulator)
    throttle = Fault("dynamodb", "PutItem", error_code="ProvisionedThroughputExceededException", rate=0.2, times=200)
    runs = []
    for seed in (7, 7, 8):
        emulator.faults.clear()
        emulator.faults.add(dataclasses.replace(throttle, seed=seed))
        hit = _hits(emulator, table, 220)
        [(_, applied)] = emulator.faults.applied()
        assert applied == len(hit)
        runs.append(hit)
    emulator.faults.clear()

    assert runs[0] == runs[1] != runs[2]  # reproducible from its seed, and the seed matters
    assert all(20 <= len(hit) <= 60 for hit in runs)  # about a fifth of the 200 calls of its window
    assert all(max(hit) < 200 for hit in runs)  # none after its window


def test_a_fault_with_a_period_ends_with_it(emulator: Emulator) -> None:
    table = create_table(emulator)
    emulator.faults.add(Fault("dynamodb", "PutItem", error_code="ProvisionedThroughputExceededException", seconds=3))
    try:
        during = _hits(emulator, table, 1)
        wait_for(lambda: emulator.faults.list() == [], 10, "the fault's period to end")
        after = _hits(emulator, table, 2)
    finally:
        emulator.faults.clear()
    assert (during, after) == ([0], [])


def test_delivery_and_kill_faults_travel_over_the_endpoint_with_what_they_did(emulator: Emulator) -> None:
    endpoint = FaultsEndpoint(emulator.endpoint_url, emulator.admin)
    delivery = DeliveryFault("sqs", "worker", duplicate=True, reorder=True, seed=3, times=2)
    kill = KillFault("producer", after_seconds=1.5, times=2)
    endpoint.clear()
    endpoint.add(delivery)
    endpoint.add(kill)
    try:
        assert endpoint.list() == [delivery, kill]
        assert emulator.faults.delivery("sqs", "stack-producer-1") is None  # another function
        order = emulator.faults.delivery("sqs", "stack-worker-1")
        assert order is not None and order.duplicate and order.reorder
        order.applied(5)
        armed = emulator.faults.kill_order("stack-producer-1")
        assert armed is not None and armed.after_seconds == 1.5
        armed.fired()
        spared = emulator.faults.kill_order("stack-producer-1")
        assert spared is not None
        spared.spared()  # the invocation ended first: the kill is still owed
        assert endpoint.list() == [dataclasses.replace(delivery, times=1), dataclasses.replace(kill, times=1)]
        assert endpoint.applied() == [(delivery, 5), (kill, 1)]
    finally:
        endpoint.clear()


@pytest.mark.parametrize(
    "body",
    [
        {"service": "dynamodb", "action": "PutItem", "rate": 0},
        {"kind": "delivery", "source": "sqs", "function": "worker"},  # neither duplicate nor reorder
        {"kind": "delivery", "source": "s3", "function": "producer", "reorder": True},
        {"kind": "kill", "function": "worker", "after_seconds": -1},
        {"kind": "kill", "function": "worker", "after_seconds": 1, "times": None},
        {"kind": "flood", "function": "worker"},
        {"kind": "kill", "function": "worker", "after_seconds": 1, "signal": 9},
    ],
)
def test_a_fault_that_could_never_apply_is_refused(emulator: Emulator, body: dict[str, Any]) -> None:
    endpoint = FaultsEndpoint(emulator.endpoint_url, emulator.admin)
    with pytest.raises(urllib.error.HTTPError) as refused:
        endpoint._send("POST", body)
    assert refused.value.code == 400
    assert emulator.faults.list() == []


def test_fault_endpoint_serves_the_admin_only(emulator: Emulator) -> None:
    endpoint = FaultsEndpoint(emulator.endpoint_url, emulator.admin)
    fault = Fault("s3", "GetObject", error_code="InternalError", times=3)
    endpoint.add(fault)
    assert endpoint.list() == [fault] == emulator.faults.list()
    endpoint.clear()
    assert emulator.faults.list() == []

    _, session = role_session(emulator)
    with pytest.raises(urllib.error.HTTPError) as refused:
        FaultsEndpoint(emulator.endpoint_url, session).add(fault)
    forged = Credentials(emulator.admin.access_key_id, "not the admin secret")
    with pytest.raises(urllib.error.HTTPError) as forged_refused:
        FaultsEndpoint(emulator.endpoint_url, forged).add(fault)
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(urllib.request.Request(emulator.endpoint_url + "/_local/faults", data=b"{}"))

    assert refused.value.code == forged_refused.value.code == unsigned.value.code == 403
    assert emulator.faults.list() == []


# --- Lambda invocations ------------------------------------------------------------------------


def test_invoke_reaches_on_invoke_with_the_callers_role(emulator: Emulator) -> None:
    seen: list[InvokeRequest] = []

    def on_invoke(request: InvokeRequest) -> InvokeResponse:
        seen.append(request)
        if request.invocation_type == "Event":
            return InvokeResponse(202, b"")
        return InvokeResponse(200, b'{"errorMessage": "boom"}', function_error="Unhandled")

    emulator.on_invoke = on_invoke
    role, session = role_session(
        emulator, {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": FUNCTION_ARN}
    )
    client = emulator.client("lambda", session)

    sync = client.invoke(FunctionName="producer", Payload=b'{"n": 1}')
    queued = client.invoke(FunctionName=FUNCTION_ARN, InvocationType="Event", Payload=b"{}")

    assert sync["StatusCode"] == 200 and sync["FunctionError"] == "Unhandled"
    assert json.loads(sync["Payload"].read()) == {"errorMessage": "boom"}
    assert queued["StatusCode"] == 202
    assert seen == [
        InvokeRequest("producer", "RequestResponse", b'{"n": 1}', role),
        InvokeRequest(FUNCTION_ARN, "Event", b"{}", role),
    ]


def test_invoke_without_permission_is_denied_before_on_invoke(emulator: Emulator) -> None:
    seen: list[InvokeRequest] = []
    emulator.on_invoke = lambda request: seen.append(request) or InvokeResponse(200, b"{}")
    _, session = role_session(emulator, {"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": "*"})

    with pytest.raises(ClientError) as raised:
        emulator.client("lambda", session).invoke(FunctionName="producer", Payload=b"{}")

    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert seen == []


def test_invoke_of_an_unknown_function_is_not_found(emulator: Emulator) -> None:
    def on_invoke(request: InvokeRequest) -> InvokeResponse:
        raise LookupError(request.function_name)

    emulator.on_invoke = on_invoke
    with pytest.raises(ClientError) as raised:
        emulator.client("lambda").invoke(FunctionName="missing", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- moto patches ------------------------------------------------------------------------------


def test_event_source_mapping_is_kept_but_never_run_by_moto(emulator: Emulator) -> None:
    from moto.sqs.models import sqs_backends

    sqs, name = emulator.client("sqs"), unique("mapped")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role, _ = role_session(emulator)
    archive = BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "def handler(event, context):\n    return None\n")
    function = unique("worker")
    emulator.client("lambda").create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
    )

    mapping = emulator.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName=function)
    sqs.send_message(QueueUrl=url, MessageBody="m")

    assert emulator.client("lambda").get_event_source_mapping(UUID=mapping["UUID"])["EventSourceArn"] == arn
    assert sqs_backends[ACCOUNT][REGION].queues[name].lambda_event_source_mappings == {}
    received = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert received[0]["Attributes"]["ApproximateReceiveCount"] == "1"


@pytest.mark.parametrize(
    "requests",
    [
        [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(26)],
        [{"PutRequest": {"Item": {"pk": {"S": "a"}, "v": {"N": "1"}}}}, {"PutRequest": {"Item": {"pk": {"S": "a"}}}}],
        [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}, {"DeleteRequest": {"Key": {"pk": {"S": "a"}}}}],
    ],
    ids=["26 requests", "one key put twice", "one key put and deleted"],
)
def test_batch_write_is_as_strict_as_aws(emulator: Emulator, requests: list[dict[str, Any]]) -> None:
    table, dynamodb = create_table(emulator), emulator.client("dynamodb")

    with pytest.raises(ClientError) as raised:
        dynamodb.batch_write_item(RequestItems={table: requests})

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert dynamodb.scan(TableName=table)["Count"] == 0
    dynamodb.batch_write_item(RequestItems={table: requests[:1]})
    assert dynamodb.scan(TableName=table)["Count"] == 1


def test_patches_refuse_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(RuntimeError, match=r"written for moto 5\.2\.5"):
        moto_patches.install()


def test_start_on_a_taken_port_names_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            Emulator(REGION, ACCOUNT).start(port)
