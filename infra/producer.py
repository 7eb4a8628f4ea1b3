"""The producer stage: a function triggered by CSV uploads that sends row chunks to the queue.

It owns its trigger (the bucket notification and the permission S3 needs to invoke it), as the
worker owns its event source mapping: the bucket must exist before the producer's policy can name
it, so the notification, which names the producer, can only come after both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from handlers.common.schema import SCHEMA_VARIABLE, Schema
from handlers.common.signing import SECRET_ARN_VARIABLE
from infra.config import FunctionSizing
from infra.function import FunctionDefaults, ServiceFunction, ServiceFunctionArgs
from infra.iam import deny_unless_principal, statement
from infra.queue import DLQ_RETENTION_SECONDS, only_deployers_administer, only_handled_by, queue_policy


@dataclass
class ProducerArgs:
    """Inputs of `Producer`."""

    schema: Schema
    """What an upload's rows are: the producer maps the header and validates and normalises rows by it."""
    bucket_name: pulumi.Input[str]
    """The upload bucket."""
    bucket_arn: pulumi.Input[str]
    """Its ARN."""
    account_id: pulumi.Input[str]
    """The account that owns the bucket (S3 may invoke the function for this account only)."""
    uploads_prefix: str
    """Objects created under this prefix …"""
    uploads_suffixes: Sequence[str]
    """… with one of these suffixes trigger the producer."""
    max_upload_bytes: int
    """Largest object the producer ingests; a larger one fails its job before a byte is parsed."""
    max_decompressed_bytes: int
    """Largest size a `.gz` upload may decompress to; a larger one fails its job at that size."""
    reports_prefix: str
    """Where the producer writes rejects reports."""
    queue_url: pulumi.Input[str]
    """The queue chunks are sent to."""
    queue_arn: pulumi.Input[str]
    """Its ARN."""
    jobs_table_name: pulumi.Input[str]
    """The jobs table."""
    jobs_table_arn: pulumi.Input[str]
    """Its ARN."""
    rows_per_message: int
    """Valid rows per SQS message."""
    max_message_bytes: int
    """The queue's maximum message size: the producer's budget for one message and one send call."""
    job_ttl_days: int
    """Days before a job record expires (0: never)."""
    signing_secret_arn: pulumi.Input[str]
    """The secret each job's chunk key is derived from (`infra/signing.py`)."""
    sizing: FunctionSizing
    """Memory and timeout."""
    defaults: FunctionDefaults
    """Runtime, architecture, log retention, tags."""
    deployers: Sequence[pulumi.Input[str]]
    """IAM role or user ARNs that alone may change, purge or delete the failed-events queue."""
    operators: Sequence[str]
    """IAM role or user ARNs that alone may receive failed upload events to replay them (none: nobody)."""


class Producer(pulumi.ComponentResource):
    """Producer function, its role and policy, and the S3 notification that triggers it."""

    function: aws.lambda_.Function
    """The producer function."""
    role: aws.iam.Role
    """Its execution role: the one principal the chunk queue accepts messages from."""
    failed_events: aws.sqs.Queue
    """Upload events the producer still failed after Lambda's retries, kept 14 days for replay."""

    def __init__(self, name: str, args: ProducerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:ingest:Producer", name, None, opts)
        if not args.deployers:
            raise ValueError("deployers is empty: the failed-events queue's policy would refuse the stack its updates")
        self.failed_events = aws.sqs.Queue(
            f"{name}-failed-events",
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=dict(args.defaults.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        uploads = pulumi.Output.concat(args.bucket_arn, "/", args.uploads_prefix, "*")
        reports = pulumi.Output.concat(args.bucket_arn, "/", args.reports_prefix, "*")
        service = ServiceFunction(
            name,
            ServiceFunctionArgs(
                package="producer",
                description="Streams uploaded CSV files into chunks on the ingest queue",
                sizing=args.sizing,
                defaults=args.defaults,
                environment={
                    "UPLOAD_BUCKET": args.bucket_name,
                    # The notification's own filter: anyone allowed to invoke the function can
                    # hand it an event, so the producer checks each against the same prefix and suffixes.
                    "UPLOADS_PREFIX": args.uploads_prefix,
                    "UPLOADS_SUFFIXES": json.dumps(list(args.uploads_suffixes)),
                    "REPORTS_PREFIX": args.reports_prefix,
                    "QUEUE_URL": args.queue_url,
                    "JOBS_TABLE": args.jobs_table_name,
                    "ROWS_PER_MESSAGE": str(args.rows_per_message),
                    # SendMessageBatch: the maximum individual message size and the maximum total
                    # payload of a batch are both 1 MiB (1,048,576 bytes), per AWS's API reference
                    # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html);
                    # the producer keeps ten chunks within this one figure, so a batch fits both.
                    "MAX_MESSAGE_BYTES": str(args.max_message_bytes),
                    "JOB_TTL_DAYS": str(args.job_ttl_days),
                    "MAX_UPLOAD_BYTES": str(args.max_upload_bytes),
                    "MAX_DECOMPRESSED_BYTES": str(args.max_decompressed_bytes),
                    SECRET_ARN_VARIABLE: args.signing_secret_arn,
                    SCHEMA_VARIABLE: args.schema.to_json(),
                },
                statements=lambda own_arn: [
                    statement("ReadUploads", ["s3:GetObject", "s3:GetObjectVersion"], [uploads]),
                    statement("WriteReports", ["s3:PutObject"], [reports]),
                    # SendMessageBatch is authorised as sqs:SendMessage.
                    statement("SendChunks", ["sqs:SendMessage"], [args.queue_arn]),
                    # Create the job once (conditional put), then lease, checkpoint and finish it.
                    statement("TrackJobs", ["dynamodb:PutItem", "dynamodb:UpdateItem"], [args.jobs_table_arn]),
                    # The secret its chunks' keys are derived from (read once per environment).
                    statement("ReadSigningSecret", ["secretsmanager:GetSecretValue"], [args.signing_secret_arn]),
                    # A file longer than one invocation continues in an asynchronous self-invocation.
                    statement("ContinueLongFiles", ["lambda:InvokeFunction"], [own_arn]),
                    # The on-failure destination is written with the function's own role.
                    statement("ReportFailedEvents", ["sqs:SendMessage"], [self.failed_events.arn]),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.function, self.role = service.function, service.role
        # Upload events carry bucket and key names: TLS only, like every queue of the pipeline. Operators
        # replay what waits here, so a forged event would be replayed with the real ones: only the
        # producer's role sends, as Lambda writes the on-failure record with the function's execution
        # role (which needs sqs:SendMessage; AWS, "Capturing records of Lambda asynchronous invocations",
        # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#destinations-permissions).
        # Nothing of the pipeline reads this queue: receiving, deleting or hiding an event is for the
        # operators who replay it (queueRedrivePrincipals). Its policy and settings are the deployers', as
        # the chunk queues' are: whoever may set its attributes could replace the policy and the send
        # deny with it, and a purge would drop the failed uploads waiting for replay without a trace.
        failed_events = self.failed_events.arn
        queue_policy(
            f"{name}-failed-events-policy",
            self.failed_events,
            pulumi.ResourceOptions(parent=self),
            [
                deny_unless_principal(
                    "OnlyProducerReportsFailures", "sqs:SendMessage", [failed_events], [self.role.arn]
                ),
                only_handled_by("OnlyOperatorsReplayFailures", failed_events, list(args.operators)),
                only_deployers_administer(failed_events, args.deployers, purge=True),
            ],
        )
        self._create_async_config(name, service)
        permission = aws.lambda_.Permission(
            f"{name}-s3-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="s3.amazonaws.com",
            source_arn=args.bucket_arn,
            # Bucket names are global: pin the account too, so a re-created bucket of the same
            # name in another account cannot invoke us.
            source_account=args.account_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.s3.BucketNotification(
            f"{name}-trigger",
            bucket=args.bucket_name,
            # A rule's filter takes one suffix ("The same type of filter rule cannot be used more than
            # once", https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-s3-bucket-s3keyfilter.html):
            # one rule per suffix, alike but for it. The config refuses suffixes that overlap, which S3
            # would refuse here (infra/config.py).
            lambda_functions=[
                {
                    "lambda_function_arn": self.function.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": args.uploads_prefix,
                    "filter_suffix": suffix,
                }
                for suffix in args.uploads_suffixes
            ],
            # S3 checks that it may invoke the function when the notification is put.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        self.register_outputs({"functionName": self.function.name, "failedEventsQueueUrl": self.failed_events.url})

    def _create_async_config(self, name: str, service: ServiceFunction) -> None:
        # S3 invokes asynchronously: Lambda retries a failed event twice, then hands it to the
        # failed-events queue instead of dropping it (the job resumes from its checkpoint on replay).
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=2,
            destination_config={"on_failure": {"destination": self.failed_events.arn}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service.policy]),
        )
        # A file longer than one invocation continues in a chain of asynchronous self-invocations
        # (handlers/producer/app.py). Lambda's recursive-loop detection stops a chain of
        # invocations caused by one event after about 16 hops when it passes through a tracked
        # service, and its default for every function is Terminate; a long file needs more
        # hops than that, so the producer opts out, per AWS's documented switch
        # (PutFunctionRecursionConfig). The guard rails that make this safe are the
        # producer's own: every continuation must advance the job's byte offset or the job fails;
        # a continuation only runs while it holds the job's lease; the producer writes only under
        # the reports prefix, which the config refuses to overlap with the uploads prefix, so
        # nothing it writes can trigger it again.
        aws.lambda_.FunctionRecursionConfig(
            f"{name}-recursion",
            function_name=self.function.name,
            recursive_loop="Allow",
            opts=pulumi.ResourceOptions(parent=self),
        )
