"""Drive the handlers against moto the way AWS would: S3 events, SQS batches, API Gateway requests.

The harness delivers events; everything the handlers do (reads, sends, writes) goes through boto3
to moto. The one stand-in is the producer's self-invocation transport: moto cannot run a Lambda
without Docker, so the harness records each continuation and invokes the handler with it, as
Lambda's asynchronous invoke would.
"""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

from botocore.exceptions import ClientError

from handlers.common.signing import JobKeys
from infra.tables import GlobalIndex
from local.esm import message_attribute

EVENTS = Path(__file__).resolve().parents[1] / "events"
SAMPLE_CSV = Path(__file__).resolve().parents[1] / "data" / "users.csv"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def global_index_request(index: GlobalIndex) -> dict[str, Any]:
    """The program's declaration of an index as CreateTable takes it, for the moto tables
    (tests/infra/test_tables.py checks that the program deploys the same)."""
    return {
        "IndexName": index.name,
        "KeySchema": [
            {"AttributeName": index.hash_key, "KeyType": "HASH"},
            {"AttributeName": index.range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": index.projection_type},
    }


class Killed(BaseException):
    """Lambda ending an invocation at its deadline (or out of memory): not an `Exception`, so the
    handler's own error handling does not run, as it would not on AWS."""


@dataclass
class FakeContext:
    """A Lambda context whose remaining time shrinks by `step_ms` on every look at the clock."""

    remaining_ms: int = 300_000
    step_ms: int = 0
    function_name: str = "csv-ingest-producer"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        remaining = self.remaining_ms
        self.remaining_ms = max(0, self.remaining_ms - self.step_ms)
        return remaining

    def spend(self, ms: int) -> None:
        """Time passes in the invocation; at its deadline Lambda kills it."""
        self.remaining_ms -= ms
        if self.remaining_ms <= 0:
            raise Killed(f"invocation {self.aws_request_id} reached its deadline")


class SlowBodies:
    """The real S3 client, except that an object's body hands out one line per read, and each read
    costs `ms_per_line` of the current invocation's time (`context()`): a slow parse, made visible
    to a fake clock."""

    def __init__(self, real: Any, context: Callable[[], FakeContext], ms_per_line: int) -> None:
        self.real, self._context, self._ms = real, context, ms_per_line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        response = self.real.get_object(**kwargs)
        lines = iter(response["Body"].read().splitlines(keepends=True))
        outer = self

        class Body:
            def read(self, _size: int = -1) -> bytes:
                outer._context().spend(outer._ms)
                return next(lines, b"")

        return {**response, "Body": Body()}


@dataclass
class Deployment:
    """The resources of one test, and the handler modules bound to them."""

    s3: Any
    sqs: Any
    dynamodb: Any
    bucket: str
    queue_url: str
    users_table: str
    jobs_table: str
    signing_secret: str
    """The value of the stack's chunk signing secret (in moto's Secrets Manager)."""
    signing_secret_arn: str
    """Its ARN, as the functions' environment names it."""
    producer: ModuleType
    worker: ModuleType
    query: ModuleType
    continuations: list[dict[str, Any]] = field(default_factory=list)
    last_request_id: str = ""
    real_continue_job: Callable[..., None] | None = None

    # -- S3 → producer -------------------------------------------------------------------------
    def put(self, key: str, body: bytes | str) -> dict[str, Any]:
        data = body.encode() if isinstance(body, str) else body
        return self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def s3_event(
        self,
        key: str,
        response: dict[str, Any] | None = None,
        with_version: bool = True,
        event_time: datetime | None = None,
    ) -> dict[str, Any]:
        """The notification S3 sends for an object just put (URL-encoded key, as AWS sends it)."""
        event = load_event("s3_object_created.json")
        record = event["Records"][0]
        record["eventTime"] = (
            (event_time or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        record["s3"]["bucket"]["name"] = self.bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{self.bucket}"
        record["s3"]["object"]["key"] = quote_plus(key, safe="/")
        if with_version and response is not None:
            record["s3"]["object"]["versionId"] = response["VersionId"]
        else:
            del record["s3"]["object"]["versionId"]
        return event

    def put_dated(self, key: str, body: bytes | str, ms_into_second: int) -> tuple[datetime, dict[str, Any]]:
        """Put `key`; return its LastModified's second and its S3 event, dated `ms_into_second` into
        that second. S3 dates an object to the second, and the producer holds an event's time within
        that second (`handlers/producer/events.py`): this is how a test orders uploads made in one."""
        response = self.put(key, body)
        head = self.s3.head_object(Bucket=self.bucket, Key=key, VersionId=response["VersionId"])
        second = head["LastModified"].replace(microsecond=0)
        return second, self.s3_event(key, response, event_time=second + timedelta(milliseconds=ms_into_second))

    def upload(
        self, key: str, body: bytes | str, contexts: Callable[[], FakeContext] = FakeContext, **event_options: Any
    ) -> str:
        """Put the object, deliver its event, run every continuation; return the job id."""
        response = self.put(key, body)
        result = self.run_producer(self.s3_event(key, response, **event_options), contexts)
        return result["jobs"][0]["jobId"]

    def run_producer(self, event: dict[str, Any], contexts: Callable[[], FakeContext] = FakeContext) -> dict[str, Any]:
        """Invoke the producer, then each continuation it asks for, until the chain ends; every
        invocation gets a new context from `contexts`."""
        result = self.producer.handler(event, contexts())
        while self.continuations:
            self.producer.handler(self.continuations.pop(0), contexts())
        return result

    def set_rows_per_message(self, rows: int) -> None:
        """Bigger chunks for long files: moto's SQS slows down with queue depth (MOTO-NOTES)."""
        self.producer.SETTINGS = replace(self.producer.SETTINGS, rows_per_message=rows)

    # -- SQS → worker --------------------------------------------------------------------------
    def receive_all(self) -> list[dict[str, Any]]:
        """Every message now in the queue (received once, left in flight)."""
        messages = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
        return messages

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        records = []
        for message in messages:
            record = load_event("sqs_record.json")
            record.update(
                messageId=message["MessageId"],
                receiptHandle=message["ReceiptHandle"],
                body=message["Body"],
                md5OfBody=message["MD5OfBody"],
                # As Lambda's event carries them (local mode's event source mapping builds them so too).
                messageAttributes={
                    name: message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
                },
            )
            records.append(record)
        return {"Records": records}

    def deliver(self, messages: list[dict[str, Any]], context: FakeContext | None = None) -> list[str]:
        """Run the worker on one batch; return the ids of the messages it reported failed."""
        response = self.worker.handler(self.sqs_event(messages), context or FakeContext(function_name="worker"))
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

    def drain(self, rng: random.Random | None = None, duplicates: float = 0.0, batch_size: int = 10) -> list[str]:
        """Deliver every queued message to the worker in batches, optionally shuffled and with
        some messages delivered twice; returns the ids reported failed."""
        messages = self.receive_all()
        deliveries = list(messages)
        if rng is not None:
            deliveries += [copy.deepcopy(m) for m in messages if rng.random() < duplicates]
            rng.shuffle(deliveries)
        failed: list[str] = []
        for start in range(0, len(deliveries), batch_size):
            failed += self.deliver(deliveries[start : start + batch_size])
        return failed

    def job_key(self, job_id: str) -> bytes:
        """The key the job's chunks are signed with, derived from the stack's secret as the producer
        derives it (only a reader of the secret can)."""
        return JobKeys(lambda: self.signing_secret).for_job(job_id)

    # -- tables and API --------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        return self.dynamodb.Table(self.jobs_table).get_item(Key={"jobId": job_id, "sk": "JOB"})["Item"]

    def force_job_status(self, job_id: str, status: str, *remove: str, **values: Any) -> None:
        """Put the job record in `status`, with `values` set and the attributes `remove` names
        gone: as if a step had stopped there."""
        assignments = "".join(f", {name} = :{name}" for name in values)
        dropped = f" REMOVE {', '.join(remove)}" if remove else ""
        self.dynamodb.Table(self.jobs_table).update_item(
            Key={"jobId": job_id, "sk": "JOB"},
            UpdateExpression=f"SET #s = :s{assignments}{dropped}",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status, **{f":{name}": value for name, value in values.items()}},
        )

    def users(self) -> dict[str, dict[str, Any]]:
        table = self.dynamodb.Table(self.users_table)
        items, page = [], {"LastEvaluatedKey": None}
        while "LastEvaluatedKey" in page:
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]} if page["LastEvaluatedKey"] else {}
            page = table.scan(**kwargs)
            items += page["Items"]
        return {item["email"]: item for item in items}

    def api(
        self, path: str, method: str = "GET", query: dict[str, str] | None = None, resource: str | None = None
    ) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """Call the query function as API Gateway would; (status, JSON body, headers)."""
        event = load_event("api_gateway_rest.json")
        event.update(
            path=path,
            httpMethod=method,
            resource=resource or path,
            queryStringParameters=query,
            multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()} or None,
        )
        self.last_request_id = str(uuid.uuid4())
        event["requestContext"].update(path=f"/v1{path}", httpMethod=method, requestId=self.last_request_id)
        response = self.query.handler(event, FakeContext(function_name="query"))
        return response["statusCode"], json.loads(response["body"]), response.get("multiValueHeaders") or {}


class Faulty:
    """Fault injection: the real client (or object), except that `operation` first asks `fault`,
    given the call's keyword arguments, for an exception to raise instead (None: call through)."""

    def __init__(self, real: Any, operation: str, fault: Callable[[dict[str, Any]], Exception | None]) -> None:
        self.real, self._operation, self._fault = real, operation, fault
        self.faults = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.real, name)
        if name != self._operation:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if (error := self._fault(kwargs)) is not None:
                self.faults += 1
                raise error
            return attribute(*args, **kwargs)

        return call


def throttling(operation: str, code: str = "ProvisionedThroughputExceededException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, operation)


def first(times: int, error: Callable[[], Exception]) -> Callable[[dict[str, Any]], Exception | None]:
    """A fault for the first `times` calls, then none."""
    left = [times]

    def fault(_kwargs: dict[str, Any]) -> Exception | None:
        left[0] -= 1
        return error() if left[0] >= 0 else None

    return fault


def slow(seconds: float) -> Callable[[dict[str, Any]], Exception | None]:
    """No error, but every call takes `seconds` longer (a service answering slowly)."""

    def fault(_kwargs: dict[str, Any]) -> Exception | None:
        time.sleep(seconds)
        return None

    return fault


def after(times: int, error: Callable[[], Exception]) -> Callable[[dict[str, Any]], Exception | None]:
    """No fault for the first `times` calls, then a fault on every call."""
    calls = [0]

    def fault(_kwargs: dict[str, Any]) -> Exception | None:
        calls[0] += 1
        return error() if calls[0] > times else None

    return fault
