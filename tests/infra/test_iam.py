"""Least privilege: each function's policy allows exactly these actions on exactly these ARNs.

The expected sets are written out in full: adding an action, widening a resource or adding a
wildcard fails these tests.
"""

import pytest

from tests.infra.support import function, grants, policy

BUCKET, QUEUE = "aws:s3/bucket:Bucket", "aws:sqs/queue:Queue"
TABLE, LOGS = "aws:dynamodb/table:Table", "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"


def _arns(plan):
    def out(type_, name):
        return plan.one(type_, name).outputs["arn"]

    return {
        "bucket": out(BUCKET, "csv-ingest-uploads"),
        "queue": out(QUEUE, "csv-ingest-chunks"),
        "users": out(TABLE, "csv-ingest-data-users"),
        "jobs": out(TABLE, "csv-ingest-data-jobs"),
        "producer": function(plan, "csv-ingest-producer").outputs["arn"],
        "failed_events": out(QUEUE, "csv-ingest-producer-failed-events"),
        "signing_secret": out(SECRET, "csv-ingest-chunk-signing"),
    }


def _logs(plan, name):
    log_streams = f"{plan.one(LOGS, f'{name}-logs').outputs['arn']}:log-stream:*"
    return {("logs:CreateLogStream", log_streams), ("logs:PutLogEvents", log_streams)}


def test_producer_reads_uploads_writes_reports_sends_chunks_tracks_jobs_and_continues(dev):
    a = _arns(dev)
    assert grants(policy(dev, "csv-ingest-producer")) == _logs(dev, "csv-ingest-producer") | {
        ("s3:GetObject", f"{a['bucket']}/uploads/*"),
        ("s3:GetObjectVersion", f"{a['bucket']}/uploads/*"),
        ("s3:PutObject", f"{a['bucket']}/reports/*"),
        ("sqs:SendMessage", a["queue"]),
        ("dynamodb:PutItem", a["jobs"]),
        ("dynamodb:UpdateItem", a["jobs"]),
        ("lambda:InvokeFunction", a["producer"]),
        ("sqs:SendMessage", a["failed_events"]),
        ("secretsmanager:GetSecretValue", a["signing_secret"]),
    }


def test_worker_consumes_the_queue_reads_jobs_and_writes_users_and_progress(dev):
    a = _arns(dev)
    assert grants(policy(dev, "csv-ingest-worker")) == _logs(dev, "csv-ingest-worker") | {
        ("sqs:ReceiveMessage", a["queue"]),
        ("sqs:DeleteMessage", a["queue"]),
        ("sqs:GetQueueAttributes", a["queue"]),
        ("dynamodb:BatchGetItem", a["users"]),
        ("dynamodb:PartiQLInsert", a["users"]),
        ("dynamodb:PartiQLUpdate", a["users"]),
        ("dynamodb:GetItem", a["jobs"]),
        ("dynamodb:PutItem", a["jobs"]),
        ("dynamodb:UpdateItem", a["jobs"]),
        ("secretsmanager:GetSecretValue", a["signing_secret"]),
    }


def test_query_function_only_reads(dev):
    a = _arns(dev)
    assert grants(policy(dev, "csv-ingest-api-fn")) == _logs(dev, "csv-ingest-api-fn") | {
        ("dynamodb:GetItem", a["users"]),
        ("dynamodb:Scan", a["users"]),
        ("dynamodb:GetItem", a["jobs"]),
        ("dynamodb:Query", f"{a['jobs']}/index/recent-jobs"),
    }


@pytest.mark.parametrize("name", ["csv-ingest-producer", "csv-ingest-worker", "csv-ingest-api-fn"])
def test_policies_are_valid_documents_without_wildcard_actions_or_resources(dev, name):
    document = policy(dev, name)
    assert document["Version"] == "2012-10-17"
    for action, resource in grants(document):
        assert "*" not in action, f"{name}: wildcard action {action}"
        assert resource != "*" and resource.startswith("arn:aws:"), f"{name}: resource {resource}"
    sids = [stmt["Sid"] for stmt in document["Statement"]]
    assert len(sids) == len(set(sids)), f"{name}: duplicate statement ids {sids}"


def test_policies_follow_configured_prefixes(plan_with):
    plan = plan_with(uploadsPrefix="in/", reportsPrefix="out/")
    bucket = plan.one(BUCKET, "csv-ingest-uploads").outputs["arn"]
    pairs = grants(policy(plan, "csv-ingest-producer"))
    assert ("s3:GetObject", f"{bucket}/in/*") in pairs
    assert ("s3:PutObject", f"{bucket}/out/*") in pairs
