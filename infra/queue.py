"""The buffer between producer and worker: an encrypted queue and its dead-letter queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam import deny_insecure_transport, deny_to_iam_principals, deny_unless_principal, policy_document

# The longest SQS keeps a message: a failed chunk waits two weeks for someone to redrive it.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# AWS's default retention for the main queue; a chunk normally leaves it within seconds.
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
# SQS's own bounds for a queue's MaximumMessageSize. pulumi-aws documents `max_message_size` as
# 1024–1048576 bytes, default 262144 (https://www.pulumi.com/registry/packages/aws/api-docs/sqs/queue/).
MAX_MESSAGE_SIZE_RANGE = (1_024, 1_048_576)
# What changes a queue rather than its messages: its attributes (redrive policy, retention, and its
# access policy itself, which SetQueueAttributes sets), the statements AddPermission and
# RemovePermission add to or remove from that policy, and the queue's deletion. A principal allowed any
# of them could take the other denies away, so only the stack's deployers may.
QUEUE_ADMINISTRATION = ("sqs:SetQueueAttributes", "sqs:AddPermission", "sqs:RemovePermission", "sqs:DeleteQueue")
# What reads, drops or hides a queue's messages: a receive reads one, a delete drops it, and a
# visibility change hides it for up to twelve hours. Batches are authorised as these actions.
MESSAGE_HANDLING = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")


def only_deployers_administer(
    queue_arn: pulumi.Input[str], deployers: Sequence[pulumi.Input[str]], *, purge: bool
) -> dict[str, Any]:
    """Deny the queue's administration to all but the deployers, and purging it too if `purge`."""
    actions = [*QUEUE_ADMINISTRATION, "sqs:PurgeQueue"] if purge else list(QUEUE_ADMINISTRATION)
    return deny_unless_principal("OnlyDeployersAdminister", actions, [queue_arn], deployers)


def only_handled_by(
    sid: str,
    queue_arn: pulumi.Input[str],
    principals: Sequence[pulumi.Input[str]],
    also: Sequence[str] = (),
) -> dict[str, Any]:
    """Deny receiving, deleting and hiding the queue's messages (and `also`) to all but `principals`."""
    return deny_unless_principal(sid, [*MESSAGE_HANDLING, *also], [queue_arn], principals)


def queue_policy(
    name: str, queue: aws.sqs.Queue, opts: pulumi.ResourceOptions, statements: Sequence[dict[str, Any]] = ()
) -> aws.sqs.QueuePolicy:
    """The policy of one of our queues: every request without TLS denied, then `statements`.

    A queue holds one policy, so whatever else a queue's policy says goes through here too.
    """
    return aws.sqs.QueuePolicy(
        name,
        queue_url=queue.url,
        policy=policy_document([deny_insecure_transport("sqs", [queue.arn]), *statements]),
        opts=opts,
    )


@dataclass
class IngestQueueArgs:
    """Inputs of `IngestQueue`."""

    visibility_timeout_seconds: int
    """Derived from the consumer's timeout (`PipelineConfig.queue_visibility_timeout_seconds`)."""
    max_receive_count: int
    """Deliveries before a message moves to the dead-letter queue (AWS advises at least 5)."""
    max_message_bytes: int
    """Largest message either queue accepts; the producer packs its batches to the same budget."""
    deployers: Sequence[pulumi.Input[str]]
    """IAM role or user ARNs that alone may change or delete either queue: whoever runs `pulumi up`."""
    operators: Sequence[str] = ()
    """IAM role or user ARNs that peek at and redrive the dead letters (none: nobody reads them)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of both queues."""

    def __post_init__(self) -> None:
        if self.max_receive_count < 5:
            raise ValueError(f"max_receive_count = {self.max_receive_count}: AWS advises at least 5")
        if not 0 <= self.visibility_timeout_seconds <= 43_200:
            raise ValueError(f"visibility_timeout_seconds = {self.visibility_timeout_seconds}: allowed 0–43200")
        low, high = MAX_MESSAGE_SIZE_RANGE
        if not low <= self.max_message_bytes <= high:
            raise ValueError(f"max_message_bytes = {self.max_message_bytes}: allowed {low}–{high}")
        if not self.deployers:
            raise ValueError("deployers is empty: the queues' policies would refuse the stack its own updates")


class IngestQueue(pulumi.ComponentResource):
    """A standard SQS queue with SSE and a redrive policy to a 14-day dead-letter queue.

    The main queue's policy names who may send to it and who may consume it, and their own policies
    name the queue: it is declared by `restrict_access` once both exist, which the pipeline calls.
    """

    queue: aws.sqs.Queue
    """The queue the producer sends chunks to (`url`, `arn`, `name`)."""
    dead_letter_queue: aws.sqs.Queue
    """Where a chunk goes after `max_receive_count` failed deliveries."""

    def __init__(self, name: str, args: IngestQueueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:messaging:IngestQueue", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        # Both queues take the same maximum: the provider's default (256 KiB) would refuse the
        # producer's larger chunks, and a message the queue accepted must fit the DLQ when it moves
        # there and the queue again when it is redriven.
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            max_message_size=args.max_message_bytes,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=dict(args.tags),
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            name,
            visibility_timeout_seconds=args.visibility_timeout_seconds,
            max_message_size=args.max_message_bytes,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            redrive_policy=pulumi.Output.json_dumps(
                {"deadLetterTargetArn": self.dead_letter_queue.arn, "maxReceiveCount": args.max_receive_count}
            ),
            tags=dict(args.tags),
            opts=child,
        )
        # Only our queue may use the DLQ; a separate resource, since the queue's redrive policy
        # already makes the queue depend on the DLQ.
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=pulumi.Output.json_dumps(
                {"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}
            ),
            opts=child,
        )
        self._deployers = list(args.deployers)
        self._declare_dead_letter_policy(name, args, child)
        self.register_outputs({"queueUrl": self.queue.url, "deadLetterQueueUrl": self.dead_letter_queue.url})

    def _declare_dead_letter_policy(self, name: str, args: IngestQueueArgs, opts: pulumi.ResourceOptions) -> None:
        dlq = self.dead_letter_queue.arn
        queue_policy(
            f"{name}-dlq-policy",
            self.dead_letter_queue,
            opts,
            [
                # A message sent here would be carried into the queue by the next redrive, as the operator
                # who starts it: no IAM principal sends here. SQS moves a failed chunk here itself, after
                # maxReceiveCount receives; AWS's "Using policies for dead-letter queues" gives the
                # DLQ's redrive allow policy (byQueue, above) the say over which source queues may use
                # it, and names no permission of the DLQ's access policy that the move needs
                # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
                # AWS does not say the move is exempt from this policy either: the deny leaves out a
                # service principal acting itself, so it can never be what stops that move.
                deny_to_iam_principals("NobodySends", "sqs:SendMessage", [dlq]),
                # Dead letters are chunks: rows of personal data. The operators who peek at them
                # (ReceiveMessage, ChangeMessageVisibility to make them visible again at once) and
                # redrive them are the ones queueRedrivePrincipals lists; they may also purge what they
                # judge lost. A move task receives and deletes here as the operator who started it, and
                # sends wherever its caller says (DestinationArn): starting or cancelling one is theirs
                # alone too, whatever else a caller's policy allows (AWS lists sqs:StartMessageMoveTask
                # and sqs:CancelMessageMoveTask on the dead-letter queue among what a redrive needs,
                # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html#sqs-configure-dead-letter-queue-redrive-permissions;
                # both are actions on the queue resource,
                # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html).
                # GetQueueAttributes and ListMessageMoveTasks (counts, queue ARNs) stay open: they hold no row.
                only_handled_by(
                    "OnlyOperatorsReadDeadLetters",
                    dlq,
                    list(args.operators),
                    also=["sqs:PurgeQueue", "sqs:StartMessageMoveTask", "sqs:CancelMessageMoveTask"],
                ),
                only_deployers_administer(dlq, self._deployers, purge=False),
            ],
        )

    def restrict_access(
        self, senders: Sequence[pulumi.Input[str]], consumers: Sequence[pulumi.Input[str]]
    ) -> aws.sqs.QueuePolicy:
        """Declare the main queue's policy: TLS only; only `senders` may send, only `consumers` may
        receive, delete or hide messages, and only the deployers may change, purge or delete the queue.

        A chunk on this queue is trusted by the worker as the producer's; any other principal of the
        account whose own policy allows `sqs:SendMessage` could otherwise inject rows. A DLQ redrive
        (StartMessageMoveTask, or "Start DLQ redrive" in the console) sends to this queue as the
        operator who started it, who needs `sqs:SendMessage` on it (AWS: "Configuring queue
        permissions for dead-letter queue redrive",
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html),
        so the operators' roles are among `senders`. We do not exempt requests that SQS makes on a
        caller's behalf (`aws:CalledViaLast`): then any principal allowed to send could move
        messages of a dead-letter queue of its own into this one.

        A message in flight holds rows: receiving it reads personal data, deleting it drops a chunk,
        and changing its visibility hides it from the worker for up to twelve hours. The worker's
        event source mapping polls, deletes and reads attributes with the function's execution role
        (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions), so
        `consumers` is that role. Operators need none of these here: they read dead letters from the
        DLQ, and a redrive only sends to this queue. Purging drops every job's chunks in flight: only
        the deployers, who could rewrite this policy anyway, may.
        """
        queue = self.queue.arn
        return queue_policy(
            f"{self._name}-policy",
            self.queue,
            # Same parent and name as when the component declared it: the resource keeps its URN.
            pulumi.ResourceOptions(parent=self),
            [
                deny_unless_principal("OnlyListedSenders", "sqs:SendMessage", [queue], senders),
                only_handled_by("OnlyWorkerConsumes", queue, consumers),
                only_deployers_administer(queue, self._deployers, purge=True),
            ],
        )
