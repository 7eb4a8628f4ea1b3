"""Upload storage: the bucket users drop CSV files into, and where rejects reports land."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.iam import deny_insecure_transport, deny_unless_principal, policy_document

# What would undo the bucket's other guarantees, each the IAM action of the calls that change it
# (its Delete* call included: DeleteBucketLifecycle is s3:PutLifecycleConfiguration, and so on, per AWS's
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html): the policy itself
# (every deny in it), the lifecycle (uploads and reports expire), the notification (every upload starts
# a job), versioning (a job's id derives from its upload's version id), the public access block and
# object ownership (nothing public, no ACLs), default encryption (a KMS key of someone else's would make
# new uploads theirs to read or to lock away) and replication (a copy of every upload in another bucket).
BUCKET_SETTINGS = (
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketNotification",
    "s3:PutBucketVersioning",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
    "s3:PutEncryptionConfiguration",
    "s3:PutReplicationConfiguration",
)


@dataclass
class UploadStorageArgs:
    """Inputs of `UploadStorage`."""

    uploads_prefix: str
    """Key prefix of the uploaded files (expired after `uploads_expiration_days`)."""
    uploads_expiration_days: int
    """Days an upload stays the current version of its key."""
    reports_prefix: str
    """Key prefix of the producer's rejects reports (expired after `reports_expiration_days`)."""
    noncurrent_version_days: int
    """Days a replaced or deleted object version is kept."""
    reports_expiration_days: int
    """Days a rejects report is kept."""
    deployers: Sequence[pulumi.Input[str]]
    """IAM role or user ARNs that alone may delete rejects reports and change the bucket's settings."""
    report_readers: Sequence[str] = ()
    """IAM role or user ARNs that alone may read the rejects reports (none: nobody)."""
    force_destroy: bool = False
    """Let the stack delete a bucket that still holds objects."""
    retain_on_delete: bool = False
    """Keep the bucket in AWS when the stack deletes it."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the bucket."""


class UploadStorage(pulumi.ComponentResource):
    """A versioned, encrypted, private, TLS-only bucket with lifecycle rules.

    The bucket's policy names who may write the rejects reports, whose own policy names the bucket:
    it is declared by `restrict_access` once the writer exists, which the pipeline calls.
    """

    bucket: aws.s3.Bucket
    """The bucket (`bucket` is its name, `arn` its ARN)."""

    def __init__(self, name: str, args: UploadStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:storage:UploadStorage", name, None, opts)
        # A bucket kept after the stack is deleted keeps its protections too.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_delete)
        self.bucket = aws.s3.Bucket(name, force_destroy=args.force_destroy, tags=dict(args.tags), opts=child)
        bucket_name = self.bucket.bucket
        # Ownership and public access first: nothing can make an object public or foreign-owned.
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket_name, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket_name,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        # Versioning gives every upload its own version id: the producer's job id derives from it.
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket_name, versioning_configuration={"status": "Enabled"}, opts=child
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_name,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        self._create_lifecycle(name, args, child)
        self._name, self._args = name, args
        # A bucket policy put while the public access block is being set can be refused.
        self._policy_opts = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[public_access, ownership])
        )
        self.register_outputs({"bucketName": bucket_name})

    def _create_lifecycle(self, name: str, args: UploadStorageArgs, opts: pulumi.ResourceOptions) -> None:
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.bucket,
            rules=[
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_days},
                    # Once its noncurrent versions expire, a delete marker is alone: remove it.
                    "expiration": {"expired_object_delete_marker": True},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                },
                # An upload holds personal data and is only needed while its job runs. In a
                # versioned bucket, expiring the current version adds a delete marker and makes the
                # data a noncurrent version, which the first rule deletes `noncurrent_version_days`
                # later (https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-rules.html).
                {
                    "id": "expire-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": args.uploads_prefix},
                    "expiration": {"days": args.uploads_expiration_days},
                },
                {
                    "id": "expire-reports",
                    "status": "Enabled",
                    "filter": {"prefix": args.reports_prefix},
                    "expiration": {"days": args.reports_expiration_days},
                },
            ],
            opts=opts,
        )

    def restrict_access(self, report_writers: Sequence[pulumi.Input[str]]) -> aws.s3.BucketPolicy:
        """Declare the bucket's policy: TLS only; rejects reports read by the listed readers alone,
        written by `report_writers` (the producer's role) alone, deleted by the deployers alone; the
        bucket's policy and settings changed by the deployers alone.

        `ingest rejects` shows every part under a job's report prefix as the job's, so a part planted
        there by any principal allowed `s3:PutObject` (which CopyObject and each multipart step need
        too) would be shown as the job's rejected rows, and a part deleted would hide them. Nothing of
        the pipeline deletes a report: they expire (`reportsExpirationDays`). `pulumi destroy` with
        `forceDestroy` empties the bucket, every version of every object, as the principal running it,
        which is among the deployers; another principal emptying the bucket by hand must be listed in
        `deployerPrincipals` first, or the deletes of reports are refused.

        A principal allowed `s3:PutBucketPolicy` could take every deny here away, so the policy guards
        itself and the settings in `BUCKET_SETTINGS`: only the deployers (whoever runs `pulumi up`, which
        puts them as that principal) may change them. One principal is beyond it: the root user of the
        bucket owner's account can always get, put and delete a bucket's policy, even one that denies it
        (AWS: https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketPolicy.html and
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html); only an organization's
        policies or a VPC endpoint policy can stop it.
        """
        args = self._args
        bucket_arn = self.bucket.arn
        reports = [pulumi.Output.concat(bucket_arn, "/", args.reports_prefix, "*")]
        return aws.s3.BucketPolicy(
            f"{self._name}-policy",
            bucket=self.bucket.bucket,
            policy=policy_document(
                [
                    deny_insecure_transport("s3", [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")]),
                    # A report holds rejected rows' cells: reading one is for the principals the stack
                    # names, whatever else their own policies (or an administrator's) allow.
                    deny_unless_principal(
                        "OnlyListedReportReaders", "s3:GetObject*", reports, list(args.report_readers)
                    ),
                    deny_unless_principal("OnlyProducerWritesReports", "s3:PutObject", reports, report_writers),
                    # A delete without a version id adds a delete marker, which hides the report as well.
                    deny_unless_principal(
                        "OnlyDeployersDeleteReports",
                        ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                        reports,
                        list(args.deployers),
                    ),
                    # Bucket settings are actions on the bucket's ARN, not on its objects'.
                    deny_unless_principal(
                        "OnlyDeployersConfigureBucket", BUCKET_SETTINGS, [bucket_arn], list(args.deployers)
                    ),
                ]
            ),
            # Same parent and name as when the component declared it: the resource keeps its URN.
            opts=self._policy_opts,
        )
