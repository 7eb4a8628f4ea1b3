"""The SQS event source mapping, as Lambda runs it: pollers, batches, partial failures.

Lambda's documented behaviour (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html):
- pollers receive with the function's execution role (it needs sqs:ReceiveMessage,
  sqs:DeleteMessage and sqs:GetQueueAttributes) and gather a batch until it holds `BatchSize`
  messages or the batching window (`MaximumBatchingWindowInSeconds`) has passed;
- at most `ScalingConfig.MaximumConcurrency` invocations run at once;
- a successful batch is deleted; with `ReportBatchItemFailures`, all but the messages the function
  lists in `batchItemFailures` (an invalid list fails the whole batch); a failed invocation
  (error or timeout) deletes nothing: the messages come back after the queue's visibility timeout,
  and the queue's redrive policy moves them to its DLQ after `maxReceiveCount` receives.

SQS standard queues deliver at least once and only roughly in order; a delivery fault
(`local.emulator.DeliveryFault`, asked for every batch) makes that show: a batch handed to two
invocations at once, or the batch waiting behind it delivered first and each one's records shuffled.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from local.event_filters import matches_any
from local.registry import FunctionSpec, QueueEventSource

if TYPE_CHECKING:
    from local.emulator import DeliveryOrder

# Longest single receive: the emulator turns it into short polls outside its lock.
_RECEIVE_WAIT_SECONDS = 1
_IDLE_PAUSE_SECONDS = 0.2


class Result(Protocol):
    """What a function host returns (`local.functions.InvocationResult`)."""

    payload: Any
    error: dict[str, Any] | None

    @property
    def ok(self) -> bool: ...


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as a record of Lambda's SQS event."""
    attributes = {
        key: message.get("Attributes", {}).get(key)
        for key in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
        if key in message.get("Attributes", {})
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {
            name: message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A received message attribute as Lambda's SQS event carries it: its value only under the key
    of its type (`stringValue` for String and Number, `binaryValue`, base64, for Binary), as in the
    example events of https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html. A null under the
    other key would differ from AWS: code reading `stringValue` of a Binary attribute would get None
    here and a KeyError there."""
    record: dict[str, Any] = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        record["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        record["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return record


def failed_message_ids(result: Result, batch_ids: set[str], report_batch_item_failures: bool) -> set[str]:
    """The messages of a batch to leave on the queue, given the invocation's result."""
    if not result.ok:
        return set(batch_ids)
    if not report_batch_item_failures:
        return set()
    payload = result.payload
    if payload is None or not isinstance(payload, dict):
        return set()
    failures = payload.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(batch_ids)
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            # "If the response is not valid JSON or contains an empty string or null itemIdentifier,
            # or a wrong one, Lambda treats the whole batch as a failure."
            return set(batch_ids)
        failed.add(identifier)
    return failed


class QueuePoller:
    """The pollers of one SQS event source mapping."""

    def __init__(
        self,
        source: QueueEventSource,
        spec: FunctionSpec,
        *,
        sqs: Any,
        queue_url: str,
        region: str,
        invoke: Callable[[FunctionSpec, dict[str, Any]], Result],
        log: Callable[[str], None],
        deliveries: Callable[[], DeliveryOrder | None] | None = None,
    ) -> None:
        """`deliveries()`, asked for every batch received, says whether to deliver it differently
        (`local.emulator.Faults.delivery`)."""
        self.source = source
        self._spec = spec
        self._sqs = sqs
        self._queue_url = queue_url
        self._region = region
        self._invoke = invoke
        self._log = log
        self._deliveries = deliveries
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, name=f"esm-{spec.name}-{n}", daemon=True)
            for n in range(max(1, source.max_concurrency))
        ]
        self.in_flight = 0
        self._count_lock = threading.Lock()

    def start(self) -> None:
        if self.source.enabled:
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _receive(self, count: int, wait: float) -> list[dict[str, Any]]:
        return self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=int(max(0, min(_RECEIVE_WAIT_SECONDS, wait))),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _batch(self) -> list[dict[str, Any]]:
        """Messages until the batch is full or the batching window, from the first message, has passed."""
        batch = self._receive(self.source.batch_size, _RECEIVE_WAIT_SECONDS)
        if not batch:
            return []
        window_ends = time.monotonic() + self.source.batching_window_seconds
        while len(batch) < self.source.batch_size and not self._stop.is_set():
            left = window_ends - time.monotonic()
            if left <= 0:
                break
            more = self._receive(self.source.batch_size - len(batch), left)
            if not more:
                self._stop.wait(min(left, _IDLE_PAUSE_SECONDS))
            batch += more
        return batch

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._batch()
            except Exception as error:  # e.g. the role lost sqs:ReceiveMessage: Lambda keeps retrying too
                self._log(f"{self._spec.name}: event source {self.source.uuid} cannot receive: {error}")
                self._stop.wait(5)
                continue
            batch = self._filtered(batch)
            if not batch:
                self._stop.wait(_IDLE_PAUSE_SECONDS)
                continue
            order = self._deliveries() if self._deliveries is not None else None
            if order is None:
                self._process([batch])
            else:
                self._deliver_with_fault(batch, order)

    def _filtered(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages the mapping's filter criteria let through; the others are deleted from the
        queue unseen, as Lambda does for SQS (`local.event_filters`)."""
        if not self.source.filters:
            return batch
        kept, dropped = [], []
        for message in batch:
            record = sqs_record(message, self.source.queue_arn, self._region)
            (kept if matches_any(self.source.filters, record) else dropped).append(message)
        if dropped:
            self._log(f"{self._spec.name}: {len(dropped)} of {len(batch)} messages match no filter; deleted")
            self._delete(dropped)
        return kept

    def _deliver_with_fault(self, batch: list[dict[str, Any]], order: DeliveryOrder) -> None:
        """One batch as a delivery fault asks: after the batch waiting behind it, records shuffled,
        and/or to two invocations at once."""
        batches = [batch]
        if order.reorder:
            later = self._filtered(self._receive(self.source.batch_size, 0))
            batches = [later, batch] if later else batches
        for each in batches:
            copies = [list(each) for _ in range(2 if order.duplicate else 1)]
            if order.reorder:
                for copy in copies:
                    order.rng.shuffle(copy)
            order.applied(len(each))
            self._process(copies)

    def _process(self, copies: list[list[dict[str, Any]]]) -> None:
        """Invoke the function with each copy of a batch (the same messages), at once; delete the
        messages some invocation succeeded with, as each delivery's success deletes on AWS."""
        events = [{"Records": [sqs_record(m, self.source.queue_arn, self._region) for m in c]} for c in copies]
        with self._count_lock:
            self.in_flight += len(events)
        try:
            if len(events) == 1:
                results = [self._invoke(self._spec, events[0])]
            else:
                with ThreadPoolExecutor(len(events), thread_name_prefix=f"esm-{self._spec.name}-copy") as pool:
                    results = list(pool.map(lambda event: self._invoke(self._spec, event), events))
        finally:
            with self._count_lock:
                self.in_flight -= len(events)
        batch = copies[0]
        ids = {m["MessageId"] for m in batch}
        failed = set.intersection(
            *(failed_message_ids(result, ids, self.source.report_batch_item_failures) for result in results)
        )
        done = [m for m in batch if m["MessageId"] not in failed]
        if failed:
            self._log(
                f"{self._spec.name}: {len(failed)} of {len(batch)} messages failed; they return after the"
                " visibility timeout"
            )
        self._delete(done)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        """Delete received messages, ten to a request."""
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages[start : start + 10])
            ]
            try:
                response = self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except Exception as error:
                self._log(f"{self._spec.name}: could not delete {len(entries)} processed messages: {error}")
                continue
            for failure in response.get("Failed", []):
                self._log(f"{self._spec.name}: delete of a processed message failed: {failure.get('Code')}")
