"""The worker stage: a function fed by the queue that writes rows to the items table."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from handlers.common.schema import SCHEMA_VARIABLE, Schema
from handlers.common.signing import SECRET_ARN_VARIABLE
from infra.config import FunctionSizing
from infra.function import FunctionDefaults, ServiceFunction, ServiceFunctionArgs
from infra.iam import statement


@dataclass
class WorkerArgs:
    """Inputs of `Worker`."""

    queue_arn: pulumi.Input[str]
    """The queue the worker consumes."""
    schema: Schema
    """What the chunks' rows are: the worker re-validates them and builds items by it."""
    items_table_name: pulumi.Input[str]
    """The items table (the schema's)."""
    items_table_arn: pulumi.Input[str]
    """Its ARN."""
    jobs_table_name: pulumi.Input[str]
    """The jobs table (chunk markers and counters)."""
    jobs_table_arn: pulumi.Input[str]
    """Its ARN."""
    batch_size: int
    """Messages per invocation."""
    batching_window_seconds: int
    """How long the mapping may wait to fill a batch."""
    max_concurrency: int
    """Maximum concurrent invocations the mapping starts."""
    signing_secret_arn: pulumi.Input[str]
    """The secret each job's chunk key is derived from (`infra/signing.py`): chunks are checked with it."""
    sizing: FunctionSizing
    """Memory and timeout."""
    defaults: FunctionDefaults
    """Runtime, architecture, log retention, tags."""

    def __post_init__(self) -> None:
        if self.batch_size > 10 and self.batching_window_seconds < 1:
            raise ValueError(f"batch_size = {self.batch_size} needs batching_window_seconds ≥ 1")
        if not 2 <= self.max_concurrency <= 1000:
            raise ValueError(f"max_concurrency = {self.max_concurrency}: allowed 2–1000")


class Worker(pulumi.ComponentResource):
    """Worker function, its role and policy, and its SQS event source mapping."""

    function: aws.lambda_.Function
    """The worker function."""

    def __init__(self, name: str, args: WorkerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:ingest:Worker", name, None, opts)
        service = ServiceFunction(
            name,
            ServiceFunctionArgs(
                package="worker",
                description=f"Writes queued row chunks to the {args.schema.name} table, latest upload wins",
                sizing=args.sizing,
                defaults=args.defaults,
                environment={
                    "ITEMS_TABLE": args.items_table_name,
                    "JOBS_TABLE": args.jobs_table_name,
                    SECRET_ARN_VARIABLE: args.signing_secret_arn,
                    SCHEMA_VARIABLE: args.schema.to_json(),
                },
                statements=lambda _own_arn: [
                    statement(
                        "ConsumeQueue",
                        ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                        [args.queue_arn],
                    ),
                    # The stored versions of a chunk's keys (BatchGetItem), then conditional PartiQL
                    # INSERTs and UPDATEs in batches: a row never replaces a newer version of itself.
                    # BatchExecuteStatement needs each statement's own action on its table
                    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-iam.html).
                    statement(
                        "WriteUsers",
                        ["dynamodb:BatchGetItem", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate"],
                        [args.items_table_arn],
                    ),
                    # Each chunk is checked against its job record (consistent read) before its rows are written.
                    statement("ReadJobs", ["dynamodb:GetItem"], [args.jobs_table_arn]),
                    # Chunk marker + job counters in one transaction, then the conditional finish.
                    statement("CountProgress", ["dynamodb:PutItem", "dynamodb:UpdateItem"], [args.jobs_table_arn]),
                    # The secret each chunk's MAC is checked with (read once per environment).
                    statement("ReadSigningSecret", ["secretsmanager:GetSecretValue"], [args.signing_secret_arn]),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.function = service.function
        aws.lambda_.EventSourceMapping(
            f"{name}-queue",
            event_source_arn=args.queue_arn,
            function_name=self.function.arn,
            batch_size=args.batch_size,
            maximum_batching_window_in_seconds=args.batching_window_seconds,
            scaling_config={"maximum_concurrency": args.max_concurrency},
            # Without it, Lambda ignores the handler's batchItemFailures and deletes failed messages.
            function_response_types=["ReportBatchItemFailures"],
            # Lambda checks the role's SQS permissions when the mapping is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service.policy]),
        )
        self.register_outputs({"functionName": self.function.name})
