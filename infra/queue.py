"""The buffer between producer and worker: an encrypted queue and its dead-letter queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam import deny_insecure_transport, deny_unless_principal, policy_document

# The longest SQS keeps a message: a failed chunk waits two weeks for someone to redrive it.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# AWS's default retention for the main queue; a chunk normally leaves it within seconds.
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
# SQS's own bounds for a queue's MaximumMessageSize. pulumi-aws documents `max_message_size` as
# 1024–1048576 bytes, default 262144 (https://www.pulumi.com/registry/packages/aws/api-docs/sqs/queue/).
MAX_MESSAGE_SIZE_RANGE = (1_024, 1_048_576)


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


class IngestQueue(pulumi.ComponentResource):
    """A standard SQS queue with SSE and a redrive policy to a 14-day dead-letter queue.

    The main queue's policy names who may send to it, and the sender's own policy names the queue:
    it is declared by `restrict_senders` once the sender exists, which the pipeline calls.
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
        queue_policy(f"{name}-dlq-policy", self.dead_letter_queue, child)
        self.register_outputs({"queueUrl": self.queue.url, "deadLetterQueueUrl": self.dead_letter_queue.url})

    def restrict_senders(self, senders: Sequence[pulumi.Input[str]]) -> aws.sqs.QueuePolicy:
        """Declare the main queue's policy: TLS only, and only `senders` (IAM role or user ARNs) may send.

        A chunk on this queue is trusted by the worker as the producer's; any other principal of the
        account whose own policy allows `sqs:SendMessage` could otherwise inject rows. A DLQ redrive
        (StartMessageMoveTask, or "Start DLQ redrive" in the console) sends to this queue as the
        operator who started it, who needs `sqs:SendMessage` on it (AWS: "Configuring queue
        permissions for dead-letter queue redrive",
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html),
        so the operators' roles are among `senders`. We do not exempt requests that SQS makes on a
        caller's behalf (`aws:CalledViaLast`): then any principal allowed to send could move
        messages of a dead-letter queue of its own into this one.
        """
        return queue_policy(
            f"{self._name}-policy",
            self.queue,
            # Same parent and name as when the component declared it: the resource keeps its URN.
            pulumi.ResourceOptions(parent=self),
            [deny_unless_principal("OnlyListedSenders", "sqs:SendMessage", [self.queue.arn], senders)],
        )
