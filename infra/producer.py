"""The producer stage: a function triggered by CSV uploads that sends row chunks to the queue.

It owns its trigger (the bucket notification and the permission S3 needs to invoke it), as the
worker owns its event source mapping: the bucket must exist before the producer's policy can name
it, so the notification, which names the producer, can only come after both.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import FunctionSizing
from infra.function import FunctionDefaults, ServiceFunction, ServiceFunctionArgs
from infra.iam import statement


@dataclass
class ProducerArgs:
    """Inputs of `Producer`."""

    bucket_name: pulumi.Input[str]
    """The upload bucket."""
    bucket_arn: pulumi.Input[str]
    """Its ARN."""
    account_id: pulumi.Input[str]
    """The account that owns the bucket (S3 may invoke the function for this account only)."""
    uploads_prefix: str
    """Objects created under this prefix …"""
    uploads_suffix: str
    """… with this suffix trigger the producer."""
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
    job_ttl_days: int
    """Days before a job record expires (0: never)."""
    sizing: FunctionSizing
    """Memory and timeout."""
    defaults: FunctionDefaults
    """Runtime, architecture, log retention, tags."""


class Producer(pulumi.ComponentResource):
    """Producer function, its role and policy, and the S3 notification that triggers it."""

    function: aws.lambda_.Function
    """The producer function."""

    def __init__(self, name: str, args: ProducerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:ingest:Producer", name, None, opts)
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
                    "REPORTS_PREFIX": args.reports_prefix,
                    "QUEUE_URL": args.queue_url,
                    "JOBS_TABLE": args.jobs_table_name,
                    "ROWS_PER_MESSAGE": str(args.rows_per_message),
                    "JOB_TTL_DAYS": str(args.job_ttl_days),
                },
                statements=lambda own_arn: [
                    statement("ReadUploads", ["s3:GetObject", "s3:GetObjectVersion"], [uploads]),
                    statement("WriteReports", ["s3:PutObject"], [reports]),
                    # SendMessageBatch is authorised as sqs:SendMessage.
                    statement("SendChunks", ["sqs:SendMessage"], [args.queue_arn]),
                    statement(
                        "TrackJobs",
                        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                        [args.jobs_table_arn],
                    ),
                    # A file longer than one invocation continues in an asynchronous self-invocation.
                    statement("ContinueLongFiles", ["lambda:InvokeFunction"], [own_arn]),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.function = service.function
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
            lambda_functions=[
                {
                    "lambda_function_arn": self.function.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": args.uploads_prefix,
                    "filter_suffix": args.uploads_suffix,
                }
            ],
            # S3 checks that it may invoke the function when the notification is put.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        self.register_outputs({"functionName": self.function.name})
