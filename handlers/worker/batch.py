"""An SQS batch handled message by message, only the failed messages reported: a partial batch response.

The worker's event source mapping has `ReportBatchItemFailures`, so Lambda deletes every message of
the batch but those the response lists in `batchItemFailures` by `itemIdentifier` (the message id),
and an empty list means the whole batch succeeded
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). A failed message is
therefore reported, never raised: raising would fail the whole batch, its neighbours with it.

A loop of our own rather than Powertools' batch utility, whose import brings every event class it
has (and asyncio) into the worker's cold start for the same few lines of behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SqsRecord:
    """What the worker reads of one message of Lambda's SQS event
    (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html): its id, its body and its message
    attributes, each as the event carries it (`{"dataType": ..., "stringValue": ...}`)."""

    message_id: str
    body: str
    message_attributes: dict[str, dict[str, Any]]


def partial_batch_response(
    event: dict[str, Any], handle: Callable[[SqsRecord], None]
) -> dict[str, list[dict[str, str]]]:
    """Call `handle` on each message of the batch, in order; the ids of those it raised an
    `Exception` for. Anything else (Lambda ending the invocation) is no message's failure: it
    propagates, and the batch is delivered again."""
    failures = []
    for record in event["Records"]:
        message_id = record["messageId"]
        try:
            handle(SqsRecord(message_id, record["body"], record.get("messageAttributes") or {}))
        except Exception:  # the handler logs why; the response says only which
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
