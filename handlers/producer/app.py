"""Producer: S3 `ObjectCreated` → validated rows in chunks on the queue, one job per object version.

Event sources:
- S3 notifications (`Records`), for objects under the uploads prefix. Keys arrive URL-encoded.
- Its own continuation, `{"continueJob": "<jobId>", "segment": n}`, invoked asynchronously when a
  file outlasts one invocation. See `infra/producer.py` for why the chain is safe from, and not
  stopped by, Lambda's recursive-loop detection.

Every invocation works on a job only while it holds the job's lease, from the job's checkpoint:
a repeated S3 event, a Lambda retry or a duplicate continuation either finds the job finished or
leased and does nothing, or resumes exactly where the last invocation stopped.

An S3 event is checked before its job is created (`handlers/producer/events.py`): anyone allowed
to invoke the function can forge one. A refused event writes nothing, and it raises: the warning
log names the rule broken (never a value of the event), the `RefusedUploadEvents` metric counts it,
and the invocation fails, so that an event S3 sends asynchronously is retried twice (the same
checks, the same refusal: three attempts, not a loop) and then kept in the failed-events queue,
whose alarm calls an operator. Skipping quietly would hide from operators both a forged event and a
real one whose object version was deleted before it was read; a synchronous forger just gets the
error back. Other records of the same event still run first.
"""

from __future__ import annotations

# First: the collector is paused while the rest loads (handlers/common/cold_start.py).
from handlers.common import cold_start  # isort: skip

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers.common.aws import OnFirstUse, Table, botocore_client, client_config, items_client
from handlers.common.jobs import job_id_for, try_finish
from handlers.common.retry import call_with_backoff
from handlers.common.schema import from_environment
from handlers.common.signing import SECRET_ARN_VARIABLE, JobKeys
from handlers.common.timestamps import iso_ms
from handlers.producer.csv_stream import FileProblem
from handlers.producer.events import Announced, RefusedEvent, UploadFilter, announced_upload, upload_time_ms
from handlers.producer.ingest import Clock, Services, Settings, run_segment
from handlers.producer.job_store import Checkpoint, JobStore, Upload
from handlers.producer.packing import Budgets, row_budget_problem
from handlers.producer.sender import SENDS_IN_FLIGHT

logger = Logger()
metrics = Metrics()

SCHEMA = from_environment(os.environ)
MAX_MESSAGE_BYTES = int(os.environ["MAX_MESSAGE_BYTES"])
# The plan refuses such a stack (infra/config.py); a function deployed otherwise stops here, at its
# start, with the reason, rather than failing each upload's job after its validation pass.
if (_misfit := row_budget_problem(SCHEMA, MAX_MESSAGE_BYTES)) is not None:
    raise RuntimeError(f"the stack's schema does not fit its queue: {_misfit}")
SETTINGS = Settings(
    queue_url=os.environ["QUEUE_URL"],
    upload_bucket=os.environ["UPLOAD_BUCKET"],
    reports_prefix=os.environ["REPORTS_PREFIX"],
    rows_per_message=int(os.environ["ROWS_PER_MESSAGE"]),
    budgets=Budgets.for_queue(MAX_MESSAGE_BYTES),
    max_upload_bytes=int(os.environ["MAX_UPLOAD_BYTES"]),
    max_decompressed_bytes=int(os.environ["MAX_DECOMPRESSED_BYTES"]),
    schema=SCHEMA,
)
UPLOADS = UploadFilter(
    bucket=SETTINGS.upload_bucket,
    prefix=os.environ["UPLOADS_PREFIX"],
    suffixes=tuple(json.loads(os.environ["UPLOADS_SUFFIXES"])),  # a JSON list (infra/producer.py)
)
JOBS_TABLE = os.environ["JOBS_TABLE"]
JOB_TTL_DAYS = int(os.environ.get("JOB_TTL_DAYS", "0"))

# The clients an upload's first invocation calls (S3's HeadObject, the job record, the chunks'
# sends); Lambda's only when a file outlasts an invocation.
s3 = botocore_client("s3", client_config())
sqs = botocore_client("sqs", client_config())
lambda_client = OnFirstUse(lambda: botocore_client("lambda", client_config()))
_jobs_table = Table(items_client(client_config()), JOBS_TABLE)
store = JobStore(_jobs_table)
executor = ThreadPoolExecutor(max_workers=SENDS_IN_FLIGHT, thread_name_prefix="send")
job_keys = JobKeys.in_secrets_manager(os.environ[SECRET_ARN_VARIABLE])  # read when the first chunk is signed


class JobBusy(RuntimeError):
    """Another invocation still held the job's lease when this one's time ran low. The event
    fails so that Lambda retries it later, instead of ending as if the job were taken care of."""


# How often an invocation that finds its job leased by another looks at the lease again.
LEASE_POLL_SECONDS = 10.0
pause = time.sleep  # waiting for a lease; the tests replace it


def continue_job(job_id: str, segment: int, seconds_left: Callable[[], float]) -> None:
    """Invoke this function again, asynchronously, to continue the job."""
    payload = json.dumps({"continueJob": job_id, "segment": segment}).encode()
    call_with_backoff(
        lambda: lambda_client.invoke(
            FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"], InvocationType="Event", Payload=payload
        ),
        seconds_left,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "continueJob" in event:
        logger.append_keys(jobId=event["continueJob"])
        return {"jobs": [work_on(event["continueJob"], context)]}
    results, failures = [], []
    for index, record in enumerate(event.get("Records", [])):  # an s3:TestEvent has none
        try:
            results.append(start_upload(record, context))
        except RefusedEvent as refused:  # its values stay out of the log: it may be forged
            # Its reason is the rule and a fixed text (AWS's error code at most), never a value.
            logger.warning(
                "upload event refused: nothing written", extra={"rule": refused.rule, "reason": str(refused)}
            )
            metrics.add_metric("RefusedUploadEvents", MetricUnit.Count, 1)
            failures.append(refused)
        except Exception as error:  # the other records still run; the event is retried after
            # Named by position and by the error's kind only: the record's values are the sender's
            # (forged ones included; a key may name a person), and an error's message or traceback
            # may repeat them. The raised error reaches Lambda's own log of the invocation.
            code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
            logger.error(
                "upload event failed",
                extra={"record": index, "errorType": type(error).__name__, "errorCode": code},
            )
            failures.append(error)
        finally:
            logger.remove_keys(["jobId"])  # the next record's lines must not carry this job
    if failures:
        raise failures[0]
    return {"jobs": results}


def start_upload(record: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Create the job of an uploaded object version (once), then work on it. Raises `RefusedEvent`,
    before anything is written, for an event the bucket's notification could not have sent."""
    upload = _describe(record)
    job_id = job_id_for(upload.bucket, upload.key, upload.version_id)
    logger.append_keys(jobId=job_id)
    expires_at = int(time.time()) + JOB_TTL_DAYS * 86400 if JOB_TTL_DAYS else None
    if store.create(job_id, upload, expires_at):
        logger.info("job created", extra={"key": upload.key, "versionId": upload.version_id, "size": upload.size})
    else:
        logger.info("job exists (repeated event or retry): resuming it if nobody holds it")
    return work_on(job_id, context)


def _describe(record: dict[str, Any]) -> Upload:
    """The object version the event announces, as S3 has it: its size, and an upload time held
    within its LastModified's second (`handlers/producer/events.py`). Events from a versioned bucket
    carry `versionId`; where one does not, the version is the object's current one."""
    announced = announced_upload(record, UPLOADS)
    head = _head(announced)
    uploaded_at_ms = upload_time_ms(announced.event_time_ms, head["LastModified"])
    return Upload(
        bucket=announced.bucket,
        key=announced.key,
        version_id=announced.version_id or head.get("VersionId") or "null",
        size=int(head["ContentLength"]),
        uploaded_at=iso_ms(uploaded_at_ms),
        uploaded_at_ms=uploaded_at_ms,
        sequencer=announced.sequencer,
    )


# HeadObject has no response body, so its errors come as bare HTTP statuses
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html): 404 for no such key or
# version, 405 for a version that is a delete marker, 400 for a request S3 cannot take (a malformed
# version id), and 403 for a missing key to a caller without s3:ListBucket (same page), which the
# producer is not granted. Each means the event names no object version the producer can read: a
# refusal, logged by its rule and counted, like any other. (A 403 from a real misconfiguration is
# refused all the same: the event fails, is retried, and lands in the failed-events queue.)
_NOT_READABLE = {"400", "403", "404", "405", "NoSuchKey", "NoSuchVersion", "MethodNotAllowed"}


def _head(announced: Announced) -> dict[str, Any]:
    version = {"VersionId": announced.version_id} if announced.version_id else {}
    try:
        return s3.head_object(Bucket=announced.bucket, Key=announced.key, **version)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in _NOT_READABLE:
            # S3's answer is said (a 403 is also what a role without s3:GetObject meets), not the key.
            detail = f"the object version it names does not exist or is not readable (HeadObject answered {code})"
            raise RefusedEvent("object", detail) from None
        raise


def work_on(job_id: str, context: LambdaContext) -> dict[str, Any]:
    """Hold the job's lease for this invocation and advance it from its checkpoint."""
    owner = context.aws_request_id
    clock = Clock(context.get_remaining_time_in_millis)
    job = _take_lease(job_id, owner, context, clock)
    if job is None:
        # Finished, queued by an invocation that failed before finishing it, or moved on by another.
        finished = try_finish(_jobs_table.meta.client, JOBS_TABLE, job_id, clock.seconds_left)
        logger.info("job not parsing, or moved on by another invocation: nothing to do", extra={"finished": finished})
        return {"jobId": job_id, "outcome": "skipped"}
    try:
        return _advance(job, owner, clock)
    except Exception:
        _release(job_id, owner)
        raise


def _take_lease(job_id: str, owner: str, context: LambdaContext, clock: Clock) -> dict[str, Any] | None:
    """The job, leased to this invocation until it must end; None when there is nothing to parse.

    While another invocation holds the lease, watch it rather than return: a holder moves the job
    on (checkpoints, finishes, or hands over, so its lease changes) or dies, and then its lease
    expires and this invocation takes the job over. Since every lease ends with its invocation's
    timeout and the holder started first, the lease normally ends before this invocation must;
    if this invocation's time runs low first, it fails with `JobBusy`, so Lambda retries the event
    later. Either way some invocation is always coming for a job that is still parsing.
    """
    watched: tuple[str, int] | None = None
    while True:
        now_ms = int(time.time() * 1000)
        lease = store.acquire(job_id, owner, now_ms, now_ms + context.get_remaining_time_in_millis())
        if lease.acquired:
            return lease.job
        holder = lease.holder
        if holder is None or (watched is not None and holder != watched):
            return None
        if clock.low():
            raise JobBusy(f"job {job_id} is still leased by another invocation until {holder[1]} ms")
        if watched is None:
            logger.info("job leased by another invocation: watching its lease", extra={"leaseUntil": holder[1]})
        watched = holder
        pause(min(LEASE_POLL_SECONDS, max(0.0, (holder[1] - now_ms) / 1000) + 0.05, clock.seconds_until_low()))


def _release(job_id: str, owner: str) -> None:
    """Give the lease up after an error, so a retry can resume from the checkpoint at once. If
    this fails too, Lambda's retry (same request id) takes the lease over all the same."""
    try:
        store.release(job_id, owner)
    except Exception:
        logger.exception("could not release the lease; the retry takes it over")


def _advance(job: dict[str, Any], owner: str, clock: Clock) -> dict[str, Any]:
    job_id = job["jobId"]
    services = Services(
        s3, sqs, executor, job_keys, on_send_retry=lambda: metrics.add_metric("SendRetries", MetricUnit.Count, 1)
    )
    try:
        result = run_segment(job, services, SETTINGS, clock)
    except FileProblem as problem:
        logger.warning("file cannot be ingested; job failed", extra={"reason": str(problem)})
        store.fail(job_id, owner, str(problem))
        return {"jobId": job_id, "outcome": "FAILED", "reason": str(problem)}
    metrics.add_metric("RowsParsed", MetricUnit.Count, result.rows_parsed)
    metrics.add_metric("RowsRejected", MetricUnit.Count, result.rows_rejected)
    metrics.add_metric("ChunksSent", MetricUnit.Count, result.chunks_sent)
    if not result.finished:
        if not _advanced(job["checkpoint"], result.checkpoint):
            # A guard rail of the self-invocation chain: a segment that made no progress would loop.
            reason = f"invocation {result.checkpoint.segment} made no progress at byte {result.checkpoint.offset}"
            store.fail(job_id, owner, reason)
            return {"jobId": job_id, "outcome": "FAILED", "reason": reason}
        store.save_checkpoint(job_id, owner, result.checkpoint)
        continue_job(job_id, result.checkpoint.segment, clock.seconds_left)
        logger.info("time is short: continuing in a new invocation", extra={"checkpoint": result.checkpoint.to_item()})
        return {"jobId": job_id, "outcome": "CONTINUED", "segment": result.checkpoint.segment}
    store.queue(job_id, owner, result.summary)
    finished = try_finish(_jobs_table.meta.client, JOBS_TABLE, job_id, clock.seconds_left)
    logger.info("every chunk queued", extra={k: v for k, v in result.summary.items() if k != "checkpoint"})
    return {"jobId": job_id, "outcome": "QUEUED", "finished": finished}


def _advanced(before: dict[str, Any], after: Checkpoint) -> bool:
    """Whether a segment moved the job on: to the next phase, or further into the file."""
    return after.phase != before["phase"] or after.offset > int(before["offset"])


cold_start.loaded()  # the last statement of the module: everything above is loaded
