"""Worker: SQS chunks → items table (latest upload wins) and exactly-once job progress.

The stack's schema (`SCHEMA`, read at import) says what a chunk's rows must be and how they are
stored: the worker writes only chunks made with it (`admission.check_rows`), as items keyed by its key
(`writes.ItemLayout`).

Partial batch responses: only the messages that failed are returned in `batchItemFailures`
(the event source mapping has `ReportBatchItemFailures`), so one bad message never fails its
neighbours; a message that keeps failing reaches the DLQ after `maxReceiveCount` deliveries
(`handlers/worker/batch.py`,
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
"""

from __future__ import annotations

# First: the collector is paused while the rest loads (handlers/common/cold_start.py).
from handlers.common import cold_start  # isort: skip

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.common.aws import botocore_client, client_config, items_client
from handlers.common.chunks import MAC_ATTRIBUTE, Chunk, MalformedChunk, decode
from handlers.common.retry import RetryCounter
from handlers.common.schema import from_environment
from handlers.common.signing import SECRET_ARN_VARIABLE, JobKeys
from handlers.common.wire_json import send_as_built
from handlers.worker.admission import (
    ChunkRefused,
    JobLookup,
    check_against_job,
    check_mac,
    check_rows,
    check_upload_time,
    sealed,
)
from handlers.worker.batch import SqsRecord, partial_batch_response
from handlers.worker.progress import ProgressCounter
from handlers.worker.writes import WRITERS, ItemWriter

# Time kept back for returning the batch response after the last write attempt.
RESPONSE_MARGIN_SECONDS = 2.0

logger = Logger()
metrics = Metrics()

SCHEMA = from_environment(os.environ)
ITEMS_TABLE = os.environ["ITEMS_TABLE"]
JOBS_TABLE = os.environ["JOBS_TABLE"]
# Our code retries (with backoff, within the invocation's time) so it can count retries and
# throttles; botocore's own retries would hide them. The job record and its counters in plain
# Python values, as boto3's DynamoDB resource gives them, without the resource layer's model.
_items = items_client(client_config(attempts=1))
# The rows' reads and batched writes, most of the worker's work: a low-level client and parameters
# built in wire format (`writes.ChunkValues`), sent as the JSON they are (`wire_json`), one connection
# per call in flight.
_rows = botocore_client("dynamodb", client_config(max_pool_connections=WRITERS, attempts=1, validate=False))
send_as_built(_rows)
writer = ItemWriter(_rows, ITEMS_TABLE, SCHEMA, ThreadPoolExecutor(WRITERS, thread_name_prefix="rows"))
progress = ProgressCounter(_items, JOBS_TABLE)
jobs = JobLookup(_items, JOBS_TABLE)
job_keys = JobKeys.in_secrets_manager(os.environ[SECRET_ARN_VARIABLE])  # read when the first chunk is checked


def record_handler(record: SqsRecord, lambda_context: LambdaContext) -> None:
    def seconds_left() -> float:
        return lambda_context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_SECONDS

    retries = RetryCounter()
    try:
        chunk = _admitted(record, seconds_left, retries)
        if chunk is None:
            return
        try:
            outcome = writer.write(chunk, seconds_left, retries)
            counted = progress.count(chunk, outcome, seconds_left, retries)
        except Exception as error:
            # The batch response says only that the message failed: the log says why (AWS's error
            # code and message name the action and resource, never an item's values).
            logger.error("chunk failed", extra={"messageId": record.message_id, "error": repr(error)})
            raise
        if counted:
            metrics.add_metric("RowsWritten", MetricUnit.Count, outcome.written)
            metrics.add_metric("RowsSuperseded", MetricUnit.Count, outcome.superseded)
        logger.info(
            "chunk written", extra={"written": outcome.written, "superseded": outcome.superseded, "counted": counted}
        )
    finally:
        metrics.add_metric("WriteRetries", MetricUnit.Count, retries.retries)
        metrics.add_metric("WriteThrottles", MetricUnit.Count, retries.throttles)
        logger.remove_keys(["jobId", "chunk"])  # the next message's lines must not carry this job


def _admitted(record: SqsRecord, seconds_left: Callable[[], float], retries: RetryCounter) -> Chunk | None:
    """The message's chunk, decoded and checked (`admission`), or None for a chunk of a finished job,
    acknowledged without writing anything. Its MAC first, under the job's key derived from the stack's
    secret (one HMAC per chunk, the secret read once per environment): a forged message costs no read.
    Then its job record, read once. A message refused is logged with its id and the reason (never a
    value) and fails; so does one that could not be checked (the secret or the record unreadable),
    and it is delivered again."""
    try:
        chunk = decode(record.body)
        logger.append_keys(jobId=chunk.jobId, chunk=chunk.chunk)
        check_mac(chunk, record.body, _carried_mac(record), job_keys.for_job(chunk.jobId))
        job = jobs.get(chunk.jobId, seconds_left, retries)
        if sealed(job):
            logger.info(
                "job already complete: chunk acknowledged, nothing written", extra={"messageId": record.message_id}
            )
            return None
        check_rows(chunk, SCHEMA)
        check_against_job(chunk, job)
        check_upload_time(chunk, int(time.time() * 1000))
    except (MalformedChunk, ChunkRefused) as refused:
        what = "malformed message" if isinstance(refused, MalformedChunk) else "chunk refused"
        logger.error(what, extra={"messageId": record.message_id, "reason": str(refused)})
        raise
    except Exception as error:
        logger.error("chunk not checked", extra={"messageId": record.message_id, "error": repr(error)})
        raise
    return chunk


def _carried_mac(record: SqsRecord) -> str | None:
    """The MAC the message carries: its `chunkMac` attribute, if a String. Lambda's SQS event gives
    an attribute's value only under the key of its type (`stringValue` or `binaryValue`,
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), so it is read with `get`."""
    attribute = record.message_attributes.get(MAC_ATTRIBUTE)
    if attribute is None or attribute.get("dataType") != "String":
        return None
    value = attribute.get("stringValue")
    return value if isinstance(value, str) else None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return partial_batch_response(event, lambda record: record_handler(record, context))


cold_start.loaded()  # the last statement of the module: everything above is loaded
