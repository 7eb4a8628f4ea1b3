"""What the fault-injection modules share: one stack per module, each scenario starting and ending
quiet, files uploaded in order, and the end compared with the oracle (`oracle.verify`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tests.local.support import LocalStackProcess, job_id_for, wait_for
from tests.reliability.oracle import USERS, Rules, Upload, Verdict, expect, settle, verify

# The stack of a fault-injection module: chunks of 20 rows, no batching window, a worker and a
# producer timing out after 10 s, asynchronous retries after 1 and 2 s.
SETTINGS = (
    "--set",
    "rowsPerMessage=20",
    "--set",
    "workerBatchingWindowSeconds=0",
    "--set",
    "workerTimeoutSeconds=10",
    "--set",
    "producerTimeoutSeconds=10",
    "--retry-delays",
    "1,2",
)
# How long a scenario's jobs may take to end, faults included: long enough for redeliveries after
# the 60 s visibility timeout, and for Lambda's retries.
SETTLE_SECONDS = 240


def quiet_around(local: LocalStackProcess) -> Iterator[None]:
    """Around a scenario (an autouse fixture's body): no fault in force before or after it, and
    nothing left on the queue when it ends."""
    local.clear_faults()
    yield
    local.clear_faults()
    wait_for(lambda: queue_depth(local) == 0, 120, "the queue to empty after the scenario", interval=1)


def queue_depth(local: LocalStackProcess) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = local.client("sqs").get_queue_attributes(QueueUrl=local.outputs["queueUrl"], AttributeNames=names)
    return sum(int(attributes["Attributes"][name]) for name in names)


def upload_all(local: LocalStackProcess, uploads: Sequence[Upload]) -> list[str]:
    """Put each file in order; their job ids, in the same order."""
    bucket = local.outputs["bucketName"]
    return [job_id_for(bucket, upload.key, local.upload(upload.key, upload.body)) for upload in uploads]


def ends_as_the_oracle_says(
    local: LocalStackProcess, uploads: Sequence[Upload], job_ids: Sequence[str], scope: str, rules: Rules = USERS
) -> Verdict:
    """The jobs end, and the table and the jobs are what the oracle computes from `uploads` under `rules`."""
    settle(local, job_ids, SETTLE_SECONDS)
    verdict = verify(local, expect(uploads, rules), job_ids, scope)
    assert verdict.holds, str(verdict)
    return verdict
