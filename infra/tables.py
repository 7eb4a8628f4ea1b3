"""The data: the schema's items (one per key value; users by email by default) and jobs (one record
per upload, plus chunk markers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from handlers.common.jobs import RECENT_JOBS_INDEX, RECENT_JOBS_PK, RECENT_JOBS_SK
from handlers.common.schema import Schema

# Attribute the producer sets on job records when jobs expire (`jobTtlDays`).
JOB_TTL_ATTRIBUTE = "expiresAt"


@dataclass(frozen=True)
class Key:
    """A key attribute and its DynamoDB type (`S` or `N`)."""

    name: str
    type: str = "S"


@dataclass(frozen=True)
class GlobalIndex:
    """A global secondary index keyed on two string attributes of the table's items."""

    name: str
    hash_key: str
    range_key: str
    projection_type: str
    """`ALL`, `INCLUDE` or `KEYS_ONLY`: which attributes a query on the index returns."""


# `GET /jobs`, newest first, without a Scan. The key attributes are the ones the producer writes
# on a job record when it creates it (handlers/common/jobs.py), so:
# - It is sparse: an item enters a global secondary index only if it has the index's key
#   attributes, and chunk markers (most of the table's items) have none, so the index holds job
#   records alone and a page is never padded out or cut short by markers
#   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-indexes-general-sparse-indexes.html).
# - One partition value for every job, sorted by upload time (ms, then the job id for a total
#   order): a Query with ScanIndexForward=False reads them newest first. A single partition takes
#   up to 1,000 write units/s (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html),
#   and an index that cannot keep up throttles the table's writes
#   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/gsi-throttling.html).
#   Here each upload makes one job, and a job's record is written about once per chunk counted
#   (100 rows by default): 1,000 writes/s would be ~100,000 rows/s landing in the users table, far
#   past what the worker's concurrency lets through. Spreading jobs over several partition values
#   would make every page a merge of several queries, for no gain at this rate.
# - Projection ALL: the list shows each job as GET /jobs/{jobId} does, the whole record but its
#   internal attributes (jobs.public_view), so the index must hold the whole record. KEYS_ONLY
#   would cost a GetItem per listed job; INCLUDE would be a second list of the job's public fields
#   that every new field must join or silently be missing from the list, to save little: nearly
#   every write to a job changes a public field (progress, status), so would reach the index anyway
#   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Projections).
RECENT_JOBS = GlobalIndex(
    name=RECENT_JOBS_INDEX, hash_key=RECENT_JOBS_PK, range_key=RECENT_JOBS_SK, projection_type="ALL"
)


@dataclass
class TablesArgs:
    """Inputs of `Tables`."""

    schema: Schema
    """The items table's logical name (the schema's `name`) and its partition key (the key column's attribute)."""
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


def table_output(schema: Schema) -> str:
    """The stack output naming the items table: `usersTableName` for the `users` schema, `deviceLogsTableName`
    for `device-logs`."""
    first, *rest = schema.name.split("-")
    return first + "".join(part[:1].upper() + part[1:] for part in rest) + "TableName"


class Tables(pulumi.ComponentResource):
    """Both DynamoDB tables, encrypted, with the stack's recovery and protection settings."""

    items: aws.dynamodb.Table
    """The schema's items keyed by the key column's attribute alone: the latest upload's row for each key
    value (users by `email` by default)."""
    jobs: aws.dynamodb.Table
    """Jobs keyed by (`jobId`, `sk`): `sk = "JOB"` is the job record, `sk = "CHUNK#n"` a chunk marker."""
    recent_jobs_index_name: str
    """The jobs table's index of job records, by upload time."""
    recent_jobs_index_arn: pulumi.Output[str]
    """Its ARN (`<table arn>/index/<name>`), what a policy grants `dynamodb:Query` on."""

    def __init__(self, name: str, args: TablesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:data:Tables", name, None, opts)
        self._args = args
        self.items = self._create_items(f"{name}-{args.schema.name}", args.schema)
        self.jobs = self._table(f"{name}-jobs", Key("jobId"), Key("sk"), ttl=args.job_ttl, index=RECENT_JOBS)
        self.recent_jobs_index_name = RECENT_JOBS.name
        self.recent_jobs_index_arn = pulumi.Output.concat(self.jobs.arn, "/index/", RECENT_JOBS.name)
        self.register_outputs({table_output(args.schema): self.items.name, "jobsTableName": self.jobs.name})

    def _create_items(self, name: str, schema: Schema) -> aws.dynamodb.Table:
        key = Key(schema.key_attribute, schema.key_column.type.attribute_type)
        # A new partition key replaces the table: the provider's `hash_key` is ForceNew
        # (https://github.com/pulumi/terraform-provider-aws/blob/master/internal/service/dynamodb/table.go),
        # and a new schema name is a new logical name, so another table. A key that keeps its attribute
        # but changes type (text to integer) changes `attributes` alone, which DynamoDB cannot update in
        # place: `replace_on_changes` makes that a replacement too
        # (https://www.pulumi.com/docs/iac/concepts/resources/options/replaceonchanges/). The items
        # table's only attribute definition is its key, so no other change replaces it.
        items = self._table(name, key, None, ttl=False, opts=pulumi.ResourceOptions(replace_on_changes=["attributes"]))
        pulumi.log.info(self._replacement_notice(name, schema, key), resource=items)
        return items

    def _replacement_notice(self, name: str, schema: Schema, key: Key) -> str:
        """What a new schema name or key does to the deployed table, said at every plan: the provider's
        diff shows a replacement, never that the new table starts empty or what becomes of the old one."""
        args = self._args
        if args.retain_on_delete:
            # Pulumi does not call the provider's Delete on a retained resource it replaces or removes: the
            # table stays in AWS, out of the stack's state
            # (https://www.pulumi.com/docs/iac/concepts/resources/options/retainondelete/).
            old = "the old table is left in AWS with its items, outside the stack (retainOnDelete)"
        elif args.deletion_protection:
            # Pulumi creates a replacement before it deletes the old resource
            # (https://www.pulumi.com/docs/iac/concepts/resources/options/deletebeforereplace/), and DynamoDB
            # refuses to delete a table with deletion protection
            # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithTables.Basics.html#WorkingWithTables.Basics.DeletionProtection).
            old = (
                "deleting the old table fails (deletionProtection) and stops `pulumi up` once the new one exists;"
                " the old table stays, with its items, until its deletion protection is turned off in DynamoDB"
                " and `pulumi up` runs again"
            )
        else:
            old = "the old table is deleted with its items"
        return (
            f"{name}: the {schema.name} table is keyed on {key.name} ({key.type}), column {schema.key}. Changing"
            " csv-ingest:schema.name or csv-ingest:schema.key (or the key column's attribute or type) replaces it"
            f" with a new, empty table; no item is copied, and {old}."
        )

    def _table(
        self,
        name: str,
        hash_key: Key,
        range_key: Key | None,
        ttl: bool,
        index: GlobalIndex | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> aws.dynamodb.Table:
        args = self._args
        keys = [hash_key] if range_key is None else [hash_key, range_key]
        if index is not None:
            keys = [*keys, Key(index.hash_key), Key(index.range_key)]
        provisioned = args.billing_mode == "PROVISIONED"
        return aws.dynamodb.Table(
            name,
            billing_mode=args.billing_mode,
            hash_key=hash_key.name,
            range_key=range_key.name if range_key is not None else None,
            # Key attributes only (the index's too): DynamoDB refuses a definition no key uses.
            attributes=[{"name": key.name, "type": key.type} for key in keys],
            global_secondary_indexes=[self._global_index(index)] if index is not None else None,
            read_capacity=args.read_capacity if provisioned else None,
            write_capacity=args.write_capacity if provisioned else None,
            # An AWS managed KMS key (aws/dynamodb): key usage shows in CloudTrail.
            server_side_encryption={"enabled": True},
            point_in_time_recovery={"enabled": args.point_in_time_recovery},
            deletion_protection_enabled=args.deletion_protection,
            ttl={"attribute_name": JOB_TTL_ATTRIBUTE, "enabled": True} if ttl else None,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_delete)
            ),
        )

    def _global_index(self, index: GlobalIndex) -> aws.dynamodb.TableGlobalSecondaryIndexArgsDict:
        args = self._args
        provisioned = args.billing_mode == "PROVISIONED"
        return {
            "name": index.name,
            # `key_schemas`, not `hash_key`/`range_key`, which pulumi-aws 7 deprecates.
            "key_schemas": [
                {"attribute_name": index.hash_key, "key_type": "HASH"},
                {"attribute_name": index.range_key, "key_type": "RANGE"},
            ],
            "projection_type": index.projection_type,
            # A provisioned table's index has its own capacity: the table's, so it never throttles
            # the table's writes by having less.
            "read_capacity": args.read_capacity if provisioned else None,
            "write_capacity": args.write_capacity if provisioned else None,
        }
