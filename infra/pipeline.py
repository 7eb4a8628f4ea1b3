"""The whole pipeline: upload storage → producer → queue → worker → tables → query API, watched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.api import QueryApi, QueryApiArgs
from infra.config import PipelineConfig
from infra.function import FunctionDefaults
from infra.observability import Observability, ObservabilityArgs
from infra.producer import Producer, ProducerArgs
from infra.queue import IngestQueue, IngestQueueArgs
from infra.signing import SigningSecret, SigningSecretArgs
from infra.storage import UploadStorage, UploadStorageArgs
from infra.tables import Tables, TablesArgs
from infra.worker import Worker, WorkerArgs


@dataclass
class PipelineArgs:
    """Inputs of `Pipeline`."""

    config: PipelineConfig
    """The stack's validated settings."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable resource."""


class Pipeline(pulumi.ComponentResource):
    """Every stage of the CSV ingestion pipeline, wired through outputs."""

    storage: UploadStorage
    queue: IngestQueue
    tables: Tables
    signing: SigningSecret
    producer: Producer
    worker: Worker
    api: QueryApi
    observability: Observability

    def __init__(self, name: str, args: PipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:index:Pipeline", name, None, opts)
        cfg, tags = args.config, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        defaults = FunctionDefaults(cfg.runtime, cfg.architecture, cfg.log_retention_days, tags)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        caller = aws.get_caller_identity_output(opts=invoke)
        account_id = caller.account_id
        region = aws.get_region_output(opts=invoke).region
        # `pulumi up` sets the queues' and the topic's attributes and policies (SetQueueAttributes,
        # SetTopicAttributes) as the principal running it, which their policies deny everyone else:
        # it must be exempt, or the stack refuses its own next update. A resource policy matches a
        # role session by its role's ARN (aws:PrincipalArn), which the session context's issuer_arn
        # is; for an IAM user it is the user's own ARN
        # (https://www.pulumi.com/registry/packages/aws/api-docs/iam/getsessioncontext/).
        deployer = aws.iam.get_session_context_output(arn=caller.arn, opts=invoke).issuer_arn
        deployers = [deployer, *cfg.deployer_principals]

        self.storage = UploadStorage(
            f"{name}-uploads",
            UploadStorageArgs(
                uploads_prefix=cfg.uploads_prefix,
                uploads_expiration_days=cfg.uploads_expiration_days,
                reports_prefix=cfg.reports_prefix,
                noncurrent_version_days=cfg.noncurrent_version_days,
                reports_expiration_days=cfg.reports_expiration_days,
                deployers=deployers,
                report_readers=cfg.report_readers,
                force_destroy=cfg.force_destroy,
                retain_on_delete=cfg.retain_on_delete,
                tags=tags,
            ),
            child,
        )
        self.queue = IngestQueue(
            f"{name}-chunks",
            IngestQueueArgs(
                visibility_timeout_seconds=cfg.queue_visibility_timeout_seconds,
                max_receive_count=cfg.max_receive_count,
                max_message_bytes=cfg.max_message_bytes,
                deployers=deployers,
                operators=cfg.queue_redrive_principals,
                tags=tags,
            ),
            child,
        )
        self.tables = Tables(
            f"{name}-data",
            TablesArgs(
                schema=cfg.schema,
                billing_mode=cfg.table_billing_mode,
                read_capacity=cfg.table_read_capacity,
                write_capacity=cfg.table_write_capacity,
                point_in_time_recovery=cfg.point_in_time_recovery,
                deletion_protection=cfg.deletion_protection,
                job_ttl=cfg.job_ttl_days > 0,
                retain_on_delete=cfg.retain_on_delete,
                tags=tags,
            ),
            child,
        )
        # The producer signs chunks with keys derived from this secret, the worker checks them: its
        # policy names both roles, so it is declared once they exist (below).
        self.signing = SigningSecret(f"{name}-chunk-signing", SigningSecretArgs(deployers=deployers, tags=tags), child)
        bucket, queue, items, jobs = self.storage.bucket, self.queue.queue, self.tables.items, self.tables.jobs
        self.producer = Producer(
            f"{name}-producer",
            ProducerArgs(
                schema=cfg.schema,
                bucket_name=bucket.bucket,
                bucket_arn=bucket.arn,
                account_id=account_id,
                uploads_prefix=cfg.uploads_prefix,
                uploads_suffixes=cfg.uploads_suffixes,
                max_upload_bytes=cfg.max_upload_bytes,
                max_decompressed_bytes=cfg.max_decompressed_bytes,
                reports_prefix=cfg.reports_prefix,
                queue_url=queue.url,
                queue_arn=queue.arn,
                jobs_table_name=jobs.name,
                jobs_table_arn=jobs.arn,
                rows_per_message=cfg.rows_per_message,
                max_message_bytes=cfg.max_message_bytes,
                job_ttl_days=cfg.job_ttl_days,
                signing_secret_arn=self.signing.arn,
                sizing=cfg.producer,
                defaults=defaults,
                deployers=deployers,
                operators=cfg.queue_redrive_principals,
            ),
            child,
        )
        # The bucket's policy names the producer's role, whose policy names the bucket: a separate
        # resource, declared once both exist, so neither waits for the other.
        self.storage.restrict_access(report_writers=[self.producer.role.arn])
        self.worker = Worker(
            f"{name}-worker",
            WorkerArgs(
                queue_arn=queue.arn,
                schema=cfg.schema,
                items_table_name=items.name,
                items_table_arn=items.arn,
                jobs_table_name=jobs.name,
                jobs_table_arn=jobs.arn,
                batch_size=cfg.worker_batch_size,
                batching_window_seconds=cfg.worker_batching_window_seconds,
                max_concurrency=cfg.worker_max_concurrency,
                signing_secret_arn=self.signing.arn,
                sizing=cfg.worker,
                defaults=defaults,
            ),
            child,
        )
        # Likewise the queue's policy names the producer's and the worker's roles (a function's `role` is its ARN).
        self.queue.restrict_access(
            senders=[self.producer.role.arn, *cfg.queue_redrive_principals], consumers=[self.worker.function.role]
        )
        self.signing.restrict_access(readers=[self.producer.role.arn, self.worker.function.role])
        self.api = QueryApi(
            f"{name}-api",
            QueryApiArgs(
                schema=cfg.schema,
                users_table_name=items.name,
                users_table_arn=items.arn,
                jobs_table_name=jobs.name,
                jobs_table_arn=jobs.arn,
                jobs_index_name=self.tables.recent_jobs_index_name,
                jobs_index_arn=self.tables.recent_jobs_index_arn,
                auth=cfg.api_auth,
                allow_public=cfg.allow_public_api,
                consumers=cfg.api_keys,
                quota_per_day=cfg.api_quota_per_day,
                throttle_rate_limit=cfg.api_throttle_rate_limit,
                throttle_burst_limit=cfg.api_throttle_burst_limit,
                manage_account=cfg.manage_api_gateway_account,
                account_id=account_id,
                region=region,
                sizing=cfg.query,
                defaults=defaults,
            ),
            child,
        )
        self.observability = Observability(
            f"{name}-watch",
            ObservabilityArgs(
                region=region,
                account_id=account_id,
                deployers=deployers,
                queue_name=queue.name,
                dead_letter_queue_name=self.queue.dead_letter_queue.name,
                producer_function_name=self.producer.function.name,
                producer_failed_events_queue_name=self.producer.failed_events.name,
                worker_function_name=self.worker.function.name,
                query_function_name=self.api.function.name,
                api_name=self.api.rest_api.name,
                api_stage_name=self.api.stage.stage_name,
                queue_age_threshold_seconds=cfg.queue_age_alarm_seconds,
                alarm_email=cfg.alarm_email,
                tags=tags,
            ),
            child,
        )
        self.register_outputs({})
