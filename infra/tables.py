"""The data: users (one item per email) and jobs (one record per upload, plus chunk markers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# Attribute the producer sets on job records when jobs expire (`jobTtlDays`).
JOB_TTL_ATTRIBUTE = "expiresAt"


@dataclass
class TablesArgs:
    """Inputs of `Tables`."""

    billing_mode: str
    """`PAY_PER_REQUEST` (on demand) or `PROVISIONED`."""
    read_capacity: int
    """Read capacity units per table when provisioned."""
    write_capacity: int
    """Write capacity units per table when provisioned."""
    point_in_time_recovery: bool
    """Continuous backups of both tables."""
    deletion_protection: bool
    """Refuse DeleteTable on both tables."""
    job_ttl: bool
    """Expire job records through DynamoDB TTL on `expiresAt`."""
    retain_on_delete: bool = False
    """Keep the tables in AWS when the stack deletes them."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of both tables."""

    def __post_init__(self) -> None:
        if self.billing_mode not in ("PAY_PER_REQUEST", "PROVISIONED"):
            raise ValueError(f"billing_mode = {self.billing_mode!r}: use PAY_PER_REQUEST or PROVISIONED")


class Tables(pulumi.ComponentResource):
    """Both DynamoDB tables, encrypted, with the stack's recovery and protection settings."""

    users: aws.dynamodb.Table
    """Users keyed by `email` alone: the latest upload's row for each email."""
    jobs: aws.dynamodb.Table
    """Jobs keyed by (`jobId`, `sk`): `sk = "JOB"` is the job record, `sk = "CHUNK#n"` a chunk marker."""

    def __init__(self, name: str, args: TablesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:data:Tables", name, None, opts)
        self._args = args
        self.users = self._table(f"{name}-users", hash_key="email", range_key=None, ttl=False)
        self.jobs = self._table(f"{name}-jobs", hash_key="jobId", range_key="sk", ttl=args.job_ttl)
        self.register_outputs({"usersTableName": self.users.name, "jobsTableName": self.jobs.name})

    def _table(self, name: str, hash_key: str, range_key: str | None, ttl: bool) -> aws.dynamodb.Table:
        args = self._args
        keys: Sequence[str] = [hash_key] if range_key is None else [hash_key, range_key]
        provisioned = args.billing_mode == "PROVISIONED"
        return aws.dynamodb.Table(
            name,
            billing_mode=args.billing_mode,
            hash_key=hash_key,
            range_key=range_key,
            attributes=[{"name": key, "type": "S"} for key in keys],
            read_capacity=args.read_capacity if provisioned else None,
            write_capacity=args.write_capacity if provisioned else None,
            # An AWS managed KMS key (aws/dynamodb): key usage shows in CloudTrail.
            server_side_encryption={"enabled": True},
            point_in_time_recovery={"enabled": args.point_in_time_recovery},
            deletion_protection_enabled=args.deletion_protection,
            ttl={"attribute_name": JOB_TTL_ATTRIBUTE, "enabled": True} if ttl else None,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_delete),
        )
