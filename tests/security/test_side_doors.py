"""Side doors: what the program's resource policies refuse to a principal of the account whose own
policy allows everything on SQS and S3, proven in local mode with IAM enforced.

The threat is a same-account principal with partial rights. Each route below was open while only the
chunk queue's sending and the reports' reading were restricted: a forged chunk sent to the
dead-letter queue (and carried home by `ingest dlq redrive`), a forged upload event in the
failed-events queue, chunks in flight read, dropped or hidden, the queues' settings (their redrive
and their policy) changed, the dead letters read or moved into a queue of the intruder's own, the
failed upload events read, purged or their queue's policy replaced, a rejects report planted or
removed under a job's prefix (`ingest rejects` shows it as the job's), and the bucket's policy or
notification rewritten. One dev stack runs in this process
(`local.session.LocalStack`); the pipeline runs first and must still work through its own doors.

Every refusal asserted here is the resource policy's: the caller's own policy allows the action
(`sqs:*`, `s3:*` on `*`), a call the policies leave open succeeds with the same keys, and the
emulator's message says "explicit deny in a resource-based policy" (`local.authz.authorize`).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.stacks import PipelineFunctions
from ingest.commands.rejects import show_rejects
from ingest.targets import local_target
from local.emulator import Credentials, Emulator
from local.mocks import ACCOUNT_ID
from local.session import LocalOptions, LocalStack
from tests.evidence import Proof
from tests.local.support import csv_bytes, iam_user, job_id_for, wait_for

INTRUDER = "side-door-intruder"
"""An IAM user listed nowhere, whose own policy allows every SQS and S3 action on everything."""
OPERATOR = "dlq-operator"
"""The user the stack lists in `queueRedrivePrincipals`: it peeks at and redrives the DLQ."""
DEPLOYER = "ci-deployer"
"""The user the stack lists in `deployerPrincipals`: it may change the queues' settings."""
RESOURCE_POLICY_DENY = "explicit deny in a resource-based policy"
DENIED_CODES = {"AccessDenied", "AccessDeniedException"}
ROWS = csv_bytes(
    ["name", "mail"],
    [
        ["Ann", "ann@side-doors.test"],
        ["Bob", "bob@side-doors.test"],
        ["Cy", "not-an-email"],
        ["", "nameless@side-doors.test"],
    ],
)
ROWS_VALID, ROWS_REJECTED = 2, 2
# A report part as the producer writes it (README "Data formats"), naming a row the job never had.
FORGED_REPORT = b"row,line,reason,name,mail\r\n99,100,planted,Mallory,mallory@side-doors.test\r\n"
RUN_TIMEOUT_SECONDS = 60


@dataclass
class Stack:
    """The running dev stack, what the run left, and the keys of the test's users."""

    local: LocalStack
    outputs: dict[str, Any]
    functions: PipelineFunctions
    users: dict[str, Credentials]
    job: dict[str, Any] | None = None

    @property
    def emulator(self) -> Emulator:
        assert self.local.emulator is not None
        return self.local.emulator

    @property
    def bucket(self) -> str:
        return self.outputs["bucketName"]

    def sqs(self, user: str) -> Any:
        return self.emulator.client("sqs", self.users[user])

    def s3(self, user: str) -> Any:
        return self.emulator.client("s3", self.users[user])

    def role_session(self, role_arn: str) -> Credentials:
        return self.emulator.assume_role(role_arn, session_name="side-doors-probe")

    def queue_depth(self, output: str) -> int:
        """Messages in a queue, visible or in flight (as the local administrator reads them)."""
        attributes = self.emulator.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs[output],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def report_keys(self) -> list[str]:
        assert self.job is not None
        prefix = self.job["rejectsReport"].split("/", 3)[3]
        listed = self.emulator.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in listed.get("Contents", [])]


def _user(emulator: Emulator, name: str) -> Credentials:
    """An IAM user whose own policy allows every SQS and S3 action on everything, and its keys."""
    everything = {"Effect": "Allow", "Action": ["sqs:*", "s3:*"], "Resource": "*"}
    return iam_user(emulator.client("iam"), name, everything).credentials


def _user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    environment = dict(os.environ)  # local mode seals this process's AWS settings; give them back after
    options = LocalOptions(
        stack="dev",
        state_root=tmp_path_factory.mktemp("side-doors"),
        overrides={
            "workerBatchingWindowSeconds": 0,
            "queueRedrivePrincipals": [_user_arn(OPERATOR)],
            "deployerPrincipals": [_user_arn(DEPLOYER)],
        },
        retry_delays=(1, 2),
    )
    local = LocalStack(options, io.StringIO())
    try:
        started = local.start()
        assert local.emulator is not None and local.registry is not None
        assert local.emulator.account_id == ACCOUNT_ID, "the users listed above are of another account"
        users = {name: _user(local.emulator, name) for name in (INTRUDER, OPERATOR, DEPLOYER)}
        functions = PipelineFunctions.of(local.registry, started.outputs["queueUrl"])
        yield Stack(local, started.outputs, functions, users)
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(environment)


@pytest.fixture(scope="module")
def run(stack: Stack) -> Stack:
    """A small file through the pipeline (users written, rows rejected, a report part written)."""
    key = stack.outputs["uploadsPrefix"] + "side-doors.csv"
    version = stack.emulator.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=ROWS)["VersionId"]
    job_id = job_id_for(stack.bucket, key, version)

    def ended() -> dict[str, Any] | None:
        response = stack.emulator.client("dynamodb").get_item(
            TableName=stack.outputs["jobsTableName"],
            Key={"jobId": {"S": job_id}, "sk": {"S": "JOB"}},
            ConsistentRead=True,
        )
        status = response.get("Item", {}).get("status", {}).get("S")
        return response["Item"] if status in ("COMPLETE", "COMPLETE_WITH_REJECTS", "FAILED") else None

    wait_for(ended, RUN_TIMEOUT_SECONDS, f"job {job_id} to end")
    target = local_target("dev", stack.local.options.state_root)
    stack.job = target.api().get(f"/jobs/{job_id}").body
    # The worker's mapping deletes what it processed once the invocation returns.
    wait_for(lambda: stack.queue_depth("queueUrl") == 0, 30, "the chunk queue to drain")
    return stack


def _refused(call: Callable[[], Any], what: str) -> None:
    """The call fails with AccessDenied, and the denial is the resource policy's."""
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    assert error["Code"] in DENIED_CODES, f"{what}: {raised.value}"
    assert RESOURCE_POLICY_DENY in error.get("Message", ""), f"{what}: not the resource policy's: {raised.value}"


def _not_refused(call: Callable[[], Any], what: str) -> None:
    """The call is not refused by IAM (it may still fail on its own terms, e.g. a forged receipt)."""
    try:
        call()
    except ClientError as error:
        assert error.response["Error"]["Code"] not in DENIED_CODES, f"{what}: {error}"


# --- proofs ---------------------------------------------------------------------------------------

SECTION = "Side doors"
DLQ_SEND_PROOF = Proof(
    "SECURITY",
    SECTION,
    "a forged chunk sent to the dead-letter queue",
    injected=(
        "SendMessage and SendMessageBatch to the DLQ by an unlisted IAM user whose own policy allows sqs:*,"
        " and by the operator listed in `queueRedrivePrincipals`"
    ),
    held="every send refused by the DLQ's policy (it denies sqs:SendMessage to everyone); the DLQ stayed empty",
    figures={"sends refused": 4, "messages in the DLQ": 0},
    test="test_nobody_can_send_a_chunk_to_the_dead_letter_queue",
)
FAILED_EVENTS_PROOF = Proof(
    "SECURITY",
    SECTION,
    "a forged upload event in the failed-events queue",
    injected="SendMessage to the failed-events queue by the unlisted user, then by a session of the producer's role",
    held="the user refused by the queue's policy; the producer's role (Lambda's on-failure destination) allowed",
    figures={"sends refused": 1, "sends allowed": 1},
    test="test_only_the_producers_role_reports_failed_upload_events",
)
IN_FLIGHT_PROOF = Proof(
    "SECURITY",
    SECTION,
    "chunks in flight read, dropped or hidden",
    injected=(
        "ReceiveMessage, DeleteMessage, ChangeMessageVisibility (and its batch) and PurgeQueue on the chunk"
        " queue by the unlisted user"
    ),
    held="each refused by the queue's policy; GetQueueAttributes with the same keys allowed",
    figures={"calls refused": 5, "calls allowed": 1},
    test="test_chunks_in_flight_are_the_workers_alone",
)
SETTINGS_PROOF = Proof(
    "SECURITY",
    SECTION,
    "the queues' settings and policies changed",
    injected=(
        "SetQueueAttributes (the redrive policy), AddPermission, RemovePermission and DeleteQueue on the chunk"
        " queue and the DLQ by the unlisted user; SetQueueAttributes by the user `deployerPrincipals` lists"
    ),
    held="every change by the unlisted user refused by the queues' policies; the listed deployer's allowed",
    figures={"calls refused": 8, "calls allowed": 1},
    test="test_the_queues_settings_are_the_deployers_alone",
)
DEAD_LETTERS_PROOF = Proof(
    "SECURITY",
    SECTION,
    "dead letters read or dropped",
    injected=(
        "ReceiveMessage, DeleteMessage, ChangeMessageVisibility and PurgeQueue on the DLQ by the unlisted user;"
        " ReceiveMessage by the listed operator"
    ),
    held="each call of the unlisted user refused by the DLQ's policy; the operator's receive allowed",
    figures={"calls refused": 4, "calls allowed": 1},
    test="test_dead_letters_are_read_by_the_listed_operators_alone",
)
REPORT_PROOF = Proof(
    "SECURITY",
    SECTION,
    "a rejects report planted or removed",
    injected=(
        "PutObject of a forged part under the job's report prefix, CopyObject of an upload there, DeleteObject"
        " and DeleteObject of a version of the producer's part, by the unlisted user; then `ingest rejects`"
    ),
    held=(
        "every write and delete refused by the bucket policy; `ingest rejects` shows the job's own rejected rows only"
    ),
    figures={"writes refused": 4, "rows shown": ROWS_REJECTED},
    test="test_a_rejects_report_cannot_be_planted_or_removed",
)
DEAD_LETTER_MOVE_PROOF = Proof(
    "SECURITY",
    SECTION,
    "dead letters moved into the intruder's own queue",
    injected=(
        "StartMessageMoveTask from the DLQ (holding one dead letter) to a queue the unlisted user made, by that"
        " user; then ListMessageMoveTasks on the DLQ"
    ),
    held=(
        "the move refused by the DLQ's policy (only `queueRedrivePrincipals` start or cancel a move); the dead"
        " letter stayed in the DLQ and the user's queue stayed empty; listing the tasks allowed"
    ),
    figures={"moves refused": 1, "dead letters kept": 1, "messages in the user's queue": 0, "calls allowed": 1},
    test="test_dead_letters_cannot_be_moved_into_another_queue",
)
FAILED_EVENTS_QUEUE_PROOF = Proof(
    "SECURITY",
    SECTION,
    "the failed-events queue's policy replaced, purged or read",
    injected=(
        "SetQueueAttributes (its policy), AddPermission, RemovePermission, DeleteQueue, PurgeQueue, ReceiveMessage,"
        " DeleteMessage and ChangeMessageVisibility on the failed-events queue by the unlisted user;"
        " GetQueueAttributes by the same user, ReceiveMessage by the listed operator, SetQueueAttributes by the"
        " listed deployer"
    ),
    held=(
        "every call of the unlisted user refused by the queue's policy; the operator's receive, the deployer's"
        " change and the user's read of the attributes allowed"
    ),
    figures={"calls refused": 8, "calls allowed": 3},
    test="test_failed_upload_events_are_the_operators_and_their_queue_the_deployers",
)
BUCKET_SETTINGS_PROOF = Proof(
    "SECURITY",
    SECTION,
    "the bucket's policy, notification or settings rewritten",
    injected=(
        "PutBucketPolicy (a policy of the user's own), DeleteBucketPolicy, PutBucketNotification,"
        " PutBucketLifecycleConfiguration, PutBucketVersioning, PutPublicAccessBlock, DeletePublicAccessBlock,"
        " PutBucketOwnershipControls and PutBucketEncryption on the upload bucket by an unlisted IAM user whose"
        " own policy allows s3:*; GetBucketPolicy by the same user"
    ),
    held=(
        "every change refused by the bucket policy (only the deployers change it); the bucket's notification"
        " unchanged; reading the policy allowed"
    ),
    figures={"calls refused": 9, "calls allowed": 1},
    test="test_the_bucket_policy_and_settings_are_the_deployers_alone",
)
PIPELINE_PROOF = Proof(
    "SECURITY",
    SECTION,
    "the pipeline through its own doors",
    injected="a 4-row upload (2 rows rejected) through the dev stack with every side door closed",
    held=(
        "the job completed; the worker's mapping received and deleted every chunk; the producer wrote its"
        " report; no call of the functions' roles was refused"
    ),
    figures={"rows written": ROWS_VALID, "report parts": 1, "chunks left in the queue": 0, "calls refused": 0},
    test="test_the_pipeline_still_runs_through_its_own_doors",
)
PROOFS = [
    DLQ_SEND_PROOF,
    FAILED_EVENTS_PROOF,
    IN_FLIGHT_PROOF,
    SETTINGS_PROOF,
    DEAD_LETTERS_PROOF,
    REPORT_PROOF,
    DEAD_LETTER_MOVE_PROOF,
    FAILED_EVENTS_QUEUE_PROOF,
    BUCKET_SETTINGS_PROOF,
    PIPELINE_PROOF,
]


# --- the routes ---------------------------------------------------------------------------------


def test_nobody_can_send_a_chunk_to_the_dead_letter_queue(run: Stack) -> None:
    # A forged chunk here would be carried into the chunk queue by `ingest dlq redrive`, as the operator.
    dlq = run.outputs["deadLetterQueueUrl"]
    refused = 0
    for user in (INTRUDER, OPERATOR):
        sqs = run.sqs(user)
        sends: dict[str, Callable[[], Any]] = {
            "SendMessage": lambda sqs=sqs: sqs.send_message(QueueUrl=dlq, MessageBody="{}"),
            "SendMessageBatch": lambda sqs=sqs: sqs.send_message_batch(
                QueueUrl=dlq, Entries=[{"Id": "0", "MessageBody": "{}"}]
            ),
        }
        for operation, call in sends.items():
            _refused(call, f"{user}: {operation} to the DLQ")
            refused += 1
    assert {"sends refused": refused, "messages in the DLQ": run.queue_depth("deadLetterQueueUrl")} == (
        DLQ_SEND_PROOF.figures
    )


def test_only_the_producers_role_reports_failed_upload_events(run: Stack) -> None:
    failed_events = run.outputs["failedUploadEventsQueueUrl"]
    _refused(
        lambda: run.sqs(INTRUDER).send_message(QueueUrl=failed_events, MessageBody="{}"),
        "the unlisted user: SendMessage to the failed-events queue",
    )
    # Lambda writes the on-failure record with the producer's execution role.
    producer = run.emulator.client("sqs", run.role_session(run.functions.producer.role_arn))
    sent = producer.send_message(QueueUrl=failed_events, MessageBody="{}")
    assert {"sends refused": 1, "sends allowed": int("MessageId" in sent)} == FAILED_EVENTS_PROOF.figures


def test_chunks_in_flight_are_the_workers_alone(run: Stack) -> None:
    queue, sqs = run.outputs["queueUrl"], run.sqs(INTRUDER)
    calls: dict[str, Callable[[], Any]] = {
        "ReceiveMessage": lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0),
        "DeleteMessage": lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle="forged"),
        "ChangeMessageVisibility": lambda: sqs.change_message_visibility(
            QueueUrl=queue, ReceiptHandle="forged", VisibilityTimeout=43_200
        ),
        "ChangeMessageVisibilityBatch": lambda: sqs.change_message_visibility_batch(
            QueueUrl=queue, Entries=[{"Id": "0", "ReceiptHandle": "forged", "VisibilityTimeout": 43_200}]
        ),
        "PurgeQueue": lambda: sqs.purge_queue(QueueUrl=queue),
    }
    for operation, call in calls.items():
        _refused(call, f"the unlisted user: {operation} on the chunk queue")
    # The same keys reach the queue where its policy says nothing: the refusals above are the policy's.
    sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    assert {"calls refused": len(calls), "calls allowed": 1} == IN_FLIGHT_PROOF.figures


def test_the_queues_settings_are_the_deployers_alone(run: Stack) -> None:
    sqs, refused = run.sqs(INTRUDER), 0
    for output in ("queueUrl", "deadLetterQueueUrl"):
        url = run.outputs[output]
        calls: dict[str, Callable[[], Any]] = {
            # Without its redrive policy the queue would keep a poison chunk forever; with another, send it elsewhere.
            "SetQueueAttributes": lambda url=url: sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"RedrivePolicy": ""}
            ),
            "AddPermission": lambda url=url: sqs.add_permission(
                QueueUrl=url, Label="side-door", AWSAccountIds=[ACCOUNT_ID], Actions=["SendMessage"]
            ),
            "RemovePermission": lambda url=url: sqs.remove_permission(QueueUrl=url, Label="OnlyListedSenders"),
            "DeleteQueue": lambda url=url: sqs.delete_queue(QueueUrl=url),
        }
        for operation, call in calls.items():
            _refused(call, f"the unlisted user: {operation} on {output}")
            refused += 1
    # A principal the stack lists as a deployer still changes the queue (here, to the value it has).
    queue = run.outputs["queueUrl"]
    current = run.emulator.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])
    run.sqs(DEPLOYER).set_queue_attributes(QueueUrl=queue, Attributes=current["Attributes"])
    assert {"calls refused": refused, "calls allowed": 1} == SETTINGS_PROOF.figures


def test_dead_letters_are_read_by_the_listed_operators_alone(run: Stack) -> None:
    dlq, sqs = run.outputs["deadLetterQueueUrl"], run.sqs(INTRUDER)
    calls: dict[str, Callable[[], Any]] = {
        "ReceiveMessage": lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0),
        "DeleteMessage": lambda: sqs.delete_message(QueueUrl=dlq, ReceiptHandle="forged"),
        "ChangeMessageVisibility": lambda: sqs.change_message_visibility(
            QueueUrl=dlq, ReceiptHandle="forged", VisibilityTimeout=0
        ),
        "PurgeQueue": lambda: sqs.purge_queue(QueueUrl=dlq),
    }
    for operation, call in calls.items():
        _refused(call, f"the unlisted user: {operation} on the DLQ")
    # `ingest dlq peek` as the operator: a receive (the DLQ is empty here: nothing failed).
    _not_refused(
        lambda: run.sqs(OPERATOR).receive_message(QueueUrl=dlq, WaitTimeSeconds=0), "the operator: ReceiveMessage"
    )
    assert {"calls refused": len(calls), "calls allowed": 1} == DEAD_LETTERS_PROOF.figures


def test_a_rejects_report_cannot_be_planted_or_removed(run: Stack) -> None:
    assert run.job is not None
    s3, bucket = run.s3(INTRUDER), run.bucket
    [part] = run.report_keys()
    prefix = part.rsplit("/", 1)[0]
    version = run.emulator.client("s3").head_object(Bucket=bucket, Key=part)["VersionId"]
    upload = run.job["key"]
    calls: dict[str, Callable[[], Any]] = {
        # A part named to sort first, so `ingest rejects` would show it first.
        "PutObject": lambda: s3.put_object(Bucket=bucket, Key=f"{prefix}/rejects-0000.csv", Body=FORGED_REPORT),
        "CopyObject": lambda: s3.copy_object(
            Bucket=bucket, Key=f"{prefix}/rejects-0000.csv", CopySource={"Bucket": bucket, "Key": upload}
        ),
        "DeleteObject": lambda: s3.delete_object(Bucket=bucket, Key=part),
        "DeleteObject (a version)": lambda: s3.delete_object(Bucket=bucket, Key=part, VersionId=version),
    }
    for operation, call in calls.items():
        _refused(call, f"the unlisted user: {operation} under the reports prefix")
    assert run.report_keys() == [part]
    out = io.StringIO()
    assert show_rejects(local_target("dev", run.local.options.state_root), run.job["jobId"], True, out) == 0
    shown = json.loads(out.getvalue())
    # The job's own rejected rows (the 3rd and 4th), and no row of the forged part (row 99).
    assert [row["row"] for row in shown] == [3, 4], [row["row"] for row in shown]
    assert {"writes refused": len(calls), "rows shown": len(shown)} == REPORT_PROOF.figures


def test_dead_letters_cannot_be_moved_into_another_queue(run: Stack) -> None:
    # A move task sends a DLQ's messages wherever its caller says (DestinationArn): into a queue of the
    # intruder's own, a dead letter's rows would be theirs to read.
    admin, dlq = run.emulator.client("sqs"), run.outputs["deadLetterQueueUrl"]
    dlq_arn = admin.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs = run.sqs(INTRUDER)
    loot = sqs.create_queue(QueueName="side-door-loot")["QueueUrl"]
    loot_arn = sqs.get_queue_attributes(QueueUrl=loot, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    admin.send_message(QueueUrl=dlq, MessageBody="{}")  # a dead letter (no row of anyone's)
    try:
        _refused(
            lambda: sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=loot_arn),
            "the unlisted user: StartMessageMoveTask from the DLQ",
        )
        # Listing the tasks shows counts and queue ARNs, no message: the DLQ's policy leaves it open.
        sqs.list_message_move_tasks(SourceArn=dlq_arn)
        figures = {
            "moves refused": 1,
            "dead letters kept": run.queue_depth("deadLetterQueueUrl"),
            "messages in the user's queue": int(
                admin.get_queue_attributes(QueueUrl=loot, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                    "ApproximateNumberOfMessages"
                ]
            ),
            "calls allowed": 1,
        }
    finally:
        for message in admin.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
            admin.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    assert figures == DEAD_LETTER_MOVE_PROOF.figures


def test_failed_upload_events_are_the_operators_and_their_queue_the_deployers(run: Stack) -> None:
    failed_events, sqs = run.outputs["failedUploadEventsQueueUrl"], run.sqs(INTRUDER)
    policy = run.emulator.client("sqs").get_queue_attributes(QueueUrl=failed_events, AttributeNames=["Policy"])[
        "Attributes"
    ]
    calls: dict[str, Callable[[], Any]] = {
        # A policy of the intruder's own would take the send deny away (here, one that says the same).
        "SetQueueAttributes": lambda: sqs.set_queue_attributes(QueueUrl=failed_events, Attributes=policy),
        "AddPermission": lambda: sqs.add_permission(
            QueueUrl=failed_events, Label="side-door", AWSAccountIds=[ACCOUNT_ID], Actions=["SendMessage"]
        ),
        "RemovePermission": lambda: sqs.remove_permission(QueueUrl=failed_events, Label="OnlyProducerReportsFailures"),
        "DeleteQueue": lambda: sqs.delete_queue(QueueUrl=failed_events),
        # A purge drops the failed uploads waiting for replay, without a trace.
        "PurgeQueue": lambda: sqs.purge_queue(QueueUrl=failed_events),
        "ReceiveMessage": lambda: sqs.receive_message(QueueUrl=failed_events, WaitTimeSeconds=0),
        "DeleteMessage": lambda: sqs.delete_message(QueueUrl=failed_events, ReceiptHandle="forged"),
        "ChangeMessageVisibility": lambda: sqs.change_message_visibility(
            QueueUrl=failed_events, ReceiptHandle="forged", VisibilityTimeout=43_200
        ),
    }
    for operation, call in calls.items():
        _refused(call, f"the unlisted user: {operation} on the failed-events queue")
    allowed: dict[str, Callable[[], Any]] = {
        "the unlisted user: GetQueueAttributes": lambda: sqs.get_queue_attributes(
            QueueUrl=failed_events, AttributeNames=["QueueArn"]
        ),
        # An operator replays failed events: receiving them (left visible) is theirs.
        "the operator: ReceiveMessage": lambda: run.sqs(OPERATOR).receive_message(
            QueueUrl=failed_events, WaitTimeSeconds=0, VisibilityTimeout=0
        ),
        "the deployer: SetQueueAttributes": lambda: run.sqs(DEPLOYER).set_queue_attributes(
            QueueUrl=failed_events, Attributes=policy
        ),
    }
    for what, call in allowed.items():
        _not_refused(call, what)
    assert {"calls refused": len(calls), "calls allowed": len(allowed)} == FAILED_EVENTS_QUEUE_PROOF.figures


def test_the_bucket_policy_and_settings_are_the_deployers_alone(run: Stack) -> None:
    admin, s3, bucket = run.emulator.client("s3"), run.s3(INTRUDER), run.bucket
    # A policy of the intruder's own: every deny of the stack's gone, the reports theirs to read.
    own_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Mine",
                "Effect": "Allow",
                "Principal": {"AWS": _user_arn(INTRUDER)},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    notification = admin.get_bucket_notification_configuration(Bucket=bucket)
    notification.pop("ResponseMetadata", None)
    lifecycle = admin.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    owner_enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    all_blocked = dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    # Each would undo a guarantee of its own; the other writes are given the bucket's current settings.
    calls: dict[str, Callable[[], Any]] = {
        "PutBucketPolicy": lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(own_policy)),
        "PutBucketNotification": lambda: s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=notification
        ),
        "PutBucketLifecycleConfiguration": lambda: s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle}
        ),
        "PutBucketVersioning": lambda: s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        ),
        "PutPublicAccessBlock": lambda: s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=all_blocked
        ),
        "DeletePublicAccessBlock": lambda: s3.delete_public_access_block(Bucket=bucket),
        "PutBucketOwnershipControls": lambda: s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls=owner_enforced
        ),
        "PutBucketEncryption": lambda: s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        ),
        "DeleteBucketPolicy": lambda: s3.delete_bucket_policy(Bucket=bucket),
    }
    for operation, call in calls.items():
        _refused(call, f"the unlisted user: {operation} on the upload bucket")
    # The same keys may read the policy, which it leaves open: the refusals above are the policy's.
    _not_refused(lambda: s3.get_bucket_policy(Bucket=bucket), "the unlisted user: GetBucketPolicy")
    after = admin.get_bucket_notification_configuration(Bucket=bucket)
    after.pop("ResponseMetadata", None)
    assert after == notification
    assert {"calls refused": len(calls), "calls allowed": 1} == BUCKET_SETTINGS_PROOF.figures


def test_the_pipeline_still_runs_through_its_own_doors(run: Stack) -> None:
    job = run.job
    assert job is not None and job["status"] == "COMPLETE_WITH_REJECTS", job and job["status"]
    assert (job["rowsValid"], job["rowsRejected"]) == (ROWS_VALID, ROWS_REJECTED)
    roles = [spec.role_arn.rsplit("/", 1)[1] for spec in (run.functions.producer, run.functions.worker)]
    iam_log = run.local.state / "logs" / "iam.log"
    refusals = [
        line for line in (iam_log.read_text().splitlines() if iam_log.exists() else []) if any(r in line for r in roles)
    ]
    figures = {
        "rows written": job["rowsWritten"],
        "report parts": len(run.report_keys()),
        "chunks left in the queue": run.queue_depth("queueUrl"),
        "calls refused": len(refusals),
    }
    assert figures == PIPELINE_PROOF.figures, refusals
