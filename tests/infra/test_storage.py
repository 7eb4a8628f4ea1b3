"""Upload storage: private, encrypted, versioned, TLS-only bucket; the producer's trigger."""

import json

import pytest

from local.mocks import ACCOUNT_ID
from tests.infra.support import DEPLOYER, function, role_arn, statement

BUCKET = "csv-ingest-uploads"


def test_bucket_is_versioned_encrypted_and_owner_enforced(dev):
    assert dev.one("aws:s3/bucketVersioning:BucketVersioning", f"{BUCKET}-versioning").inputs[
        "versioningConfiguration"
    ] == {"status": "Enabled"}
    rules = dev.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", f"{BUCKET}-encryption"
    ).inputs["rules"]
    assert rules[0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
    ownership = dev.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"{BUCKET}-ownership")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_every_public_access_path_is_blocked(dev):
    block = dev.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{BUCKET}-public-access").inputs
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, f"{BUCKET} public access block: {flag} is not set"


def _bucket_policy(plan) -> dict:
    return json.loads(plan.one("aws:s3/bucketPolicy:BucketPolicy", f"{BUCKET}-policy").inputs["policy"])


def test_bucket_policy_denies_requests_without_tls(dev):
    bucket_arn = dev.one("aws:s3/bucket:Bucket", BUCKET).outputs["arn"]
    document = _bucket_policy(dev)
    assert document["Version"] == "2012-10-17"
    [deny] = [s for s in document["Statement"] if s["Sid"] == "DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(deny["Resource"]) == sorted([bucket_arn, f"{bucket_arn}/*"])


REPORT_READER = "arn:aws:iam::123456789012:role/data-quality"


def _report_reading(plan) -> dict:
    [deny] = [s for s in _bucket_policy(plan)["Statement"] if s["Sid"] == "OnlyListedReportReaders"]
    bucket_arn = plan.one("aws:s3/bucket:Bucket", BUCKET).outputs["arn"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:GetObject*")
    assert deny["Resource"] == [f"{bucket_arn}/reports/*"]
    return deny


def test_nobody_reads_the_rejects_reports_unless_the_stack_names_them(dev):
    # No condition: the deny covers every principal, administrators included.
    assert "Condition" not in _report_reading(dev)


def test_the_listed_report_readers_alone_may_read_the_reports(plan_with):
    deny = _report_reading(plan_with(reportReaders=[REPORT_READER]))
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [REPORT_READER]}}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_producers_role_writes_under_the_reports_prefix(request, stack):
    # `ingest rejects` shows every part under a job's prefix as the job's: a planted part would be shown.
    plan = request.getfixturevalue(stack)
    deny = statement(_bucket_policy(plan), "OnlyProducerWritesReports")
    bucket_arn = plan.one("aws:s3/bucket:Bucket", BUCKET).outputs["arn"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:PutObject")
    assert deny["Resource"] == [f"{bucket_arn}/reports/*"]
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [role_arn(plan, "csv-ingest-producer")]}}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_deploying_principal_deletes_reports(request, stack):
    # Nothing of the pipeline deletes a report (they expire); `pulumi destroy` with forceDestroy empties
    # the bucket as the deploying principal, so it alone stays exempt.
    plan = request.getfixturevalue(stack)
    deny = statement(_bucket_policy(plan), "OnlyDeployersDeleteReports")
    bucket_arn = plan.one("aws:s3/bucket:Bucket", BUCKET).outputs["arn"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert deny["Action"] == ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    assert deny["Resource"] == [f"{bucket_arn}/reports/*"]
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER]}}


def test_report_writes_and_deletes_follow_the_configured_prefix_and_deployers(plan_with):
    deployer = "arn:aws:iam::123456789012:role/ci-deploy"
    plan = plan_with(reportsPrefix="rejected/", deployerPrincipals=[deployer])
    bucket_arn = plan.one("aws:s3/bucket:Bucket", BUCKET).outputs["arn"]
    writes = statement(_bucket_policy(plan), "OnlyProducerWritesReports")
    deletes = statement(_bucket_policy(plan), "OnlyDeployersDeleteReports")
    assert writes["Resource"] == deletes["Resource"] == [f"{bucket_arn}/rejected/*"]
    assert deletes["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER, deployer]}}


# What would undo the bucket's other guarantees: its policy (every deny here), the lifecycle (uploads and
# reports expire), the notification (every upload starts a job), versioning (a job's id is its upload's
# version), the public access block and object ownership (nothing public or foreign-owned), default
# encryption (a key of someone else's) and replication (a copy of every upload elsewhere).
BUCKET_SETTINGS = [
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketNotification",
    "s3:PutBucketVersioning",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
    "s3:PutEncryptionConfiguration",
    "s3:PutReplicationConfiguration",
]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_deploying_principal_changes_the_bucket_policy_or_settings(request, stack):
    # A principal allowed s3:PutBucketPolicy could otherwise take every deny of this policy away.
    plan = request.getfixturevalue(stack)
    deny = statement(_bucket_policy(plan), "OnlyDeployersConfigureBucket")
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert deny["Action"] == BUCKET_SETTINGS
    # Bucket settings are actions on the bucket itself, not on its objects.
    assert deny["Resource"] == [plan.one("aws:s3/bucket:Bucket", BUCKET).outputs["arn"]]
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER]}}


def test_the_principals_listed_as_deployers_may_change_the_bucket_settings_too(plan_with):
    # Whoever deploys next must be exempt already, or the policy refuses the update that would add them.
    deployer = "arn:aws:iam::123456789012:role/ci-deploy"
    deny = statement(_bucket_policy(plan_with(deployerPrincipals=[deployer])), "OnlyDeployersConfigureBucket")
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER, deployer]}}


def test_the_bucket_policy_only_denies(dev):
    # Nothing is granted by the bucket's policy: every principal's access comes from its own policy.
    document = _bucket_policy(dev)
    assert [s["Sid"] for s in document["Statement"]] == [
        "DenyInsecureTransport",
        "OnlyListedReportReaders",
        "OnlyProducerWritesReports",
        "OnlyDeployersDeleteReports",
        "OnlyDeployersConfigureBucket",
    ]
    assert {s["Effect"] for s in document["Statement"]} == {"Deny"}


def test_lifecycle_expires_noncurrent_versions_and_reports(dev):
    rules = {
        rule["id"]: rule
        for rule in dev.one(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{BUCKET}-lifecycle"
        ).inputs["rules"]
    }
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert rules["expire-reports"]["filter"] == {"prefix": "reports/"}
    assert rules["expire-reports"]["expiration"] == {"days": 90}
    assert all(rule["status"] == "Enabled" for rule in rules.values())


def test_uploads_expire_after_the_configured_days_then_as_noncurrent_versions(dev, plan_with):
    def rules(plan):
        lifecycle = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{BUCKET}-lifecycle")
        return {rule["id"]: rule for rule in lifecycle.inputs["rules"]}

    uploads = rules(dev)["expire-uploads"]
    assert (uploads["status"], uploads["filter"], uploads["expiration"]) == (
        "Enabled",
        {"prefix": "uploads/"},
        {"days": 30},
    ), f"{BUCKET}-lifecycle: uploads never expire"
    assert rules(dev)["expire-noncurrent-versions"]["filter"] == {}, "expired uploads must still expire as noncurrent"
    moved = rules(plan_with(uploadsPrefix="incoming/", uploadsExpirationDays=7))["expire-uploads"]
    assert (moved["filter"], moved["expiration"]) == ({"prefix": "incoming/"}, {"days": 7})


def test_force_destroy_and_retention_follow_the_stack(dev, prod):
    assert dev.one("aws:s3/bucket:Bucket", BUCKET).inputs["forceDestroy"] is True
    assert prod.one("aws:s3/bucket:Bucket", BUCKET).inputs["forceDestroy"] is False
    storage = [r for r in prod.resources if r.type.startswith("aws:s3/bucket") and r.name.startswith(BUCKET)]
    assert len(storage) == 7, [r.name for r in storage]
    for resource in storage:
        assert resource.retain_on_delete, f"prod {resource.name} would be deleted with the stack"
    assert not any(r.retain_on_delete for r in dev.resources if r.name.startswith(BUCKET))


def test_delete_markers_left_alone_are_removed(dev):
    rules = dev.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{BUCKET}-lifecycle")
    [rule] = [r for r in rules.inputs["rules"] if r["id"] == "expire-noncurrent-versions"]
    assert rule["expiration"] == {"expiredObjectDeleteMarker": True}


def test_uploads_under_the_prefix_with_each_suffix_trigger_the_producer(dev):
    producer_arn = function(dev, "csv-ingest-producer").outputs["arn"]
    notification = dev.one("aws:s3/bucketNotification:BucketNotification", "csv-ingest-producer-trigger").inputs
    assert notification["bucket"] == dev.one("aws:s3/bucket:Bucket", BUCKET).outputs["bucket"]
    targets = notification["lambdaFunctions"]
    # S3 takes one suffix filter per rule: one rule per suffix, alike but for it.
    assert [target["filterSuffix"] for target in targets] == [".csv", ".csv.gz", ".tsv", ".tsv.gz"]
    for target in targets:
        assert target["lambdaFunctionArn"] == producer_arn, target
        assert target["events"] == ["s3:ObjectCreated:*"], target
        assert target["filterPrefix"] == "uploads/", target


def test_notification_filters_come_from_config(plan_with):
    plan = plan_with(uploadsPrefix="incoming/csv/", uploadsSuffixes=[".CSV", ".txt.gz"])
    targets = plan.one("aws:s3/bucketNotification:BucketNotification", "csv-ingest-producer-trigger").inputs[
        "lambdaFunctions"
    ]
    assert [(t["filterPrefix"], t["filterSuffix"]) for t in targets] == [
        ("incoming/csv/", ".CSV"),
        ("incoming/csv/", ".txt.gz"),
    ]


def test_failed_upload_events_are_kept_for_replay_not_dropped(dev):
    config = dev.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "csv-ingest-producer-async")
    failed = dev.one("aws:sqs/queue:Queue", "csv-ingest-producer-failed-events")
    assert config.inputs["functionName"] == function(dev, "csv-ingest-producer").outputs["name"]
    assert config.inputs["destinationConfig"] == {"onFailure": {"destination": failed.outputs["arn"]}}
    assert failed.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    assert failed.inputs["sqsManagedSseEnabled"] is True


def test_producer_continuation_chain_is_not_cut_by_recursion_detection(dev):
    config = dev.one("aws:lambda/functionRecursionConfig:FunctionRecursionConfig", "csv-ingest-producer-recursion")
    assert config.inputs == {
        "functionName": function(dev, "csv-ingest-producer").outputs["name"],
        "recursiveLoop": "Allow",
    }


def test_only_this_bucket_in_this_account_may_invoke_the_producer(dev):
    permission = dev.one("aws:lambda/permission:Permission", "csv-ingest-producer-s3-invoke")
    notification = dev.one("aws:s3/bucketNotification:BucketNotification", "csv-ingest-producer-trigger")
    assert permission.inputs["principal"] == "s3.amazonaws.com"
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["sourceArn"] == dev.one("aws:s3/bucket:Bucket", BUCKET).outputs["arn"]
    assert permission.inputs["sourceAccount"] == ACCOUNT_ID
    assert permission.inputs["function"] == function(dev, "csv-ingest-producer").outputs["name"]
    assert permission.urn in notification.dependencies, "S3 validates the permission when the notification is put"
