"""moto-backed AWS for the handler tests: fake credentials, one mock per test, handlers bound to it."""

from __future__ import annotations

import importlib
import io
import json
import logging
import secrets
import string
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from handlers.common.schema import DEFAULT_SCHEMA, SCHEMA_VARIABLE, Schema
from handlers.common.signing import SECRET_ARN_VARIABLE
from infra.config import DEFAULT_UPLOADS_SUFFIXES
from infra.tables import RECENT_JOBS
from local import partiql
from tests.handlers.harness import Deployment, global_index_request

REGION = "eu-west-1"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def schema() -> Schema:
    """The stack's schema the handlers run with: the default (users) unless a module overrides this."""
    return DEFAULT_SCHEMA


def _create_tables(dynamodb: object, schema: Schema) -> tuple[str, str]:
    # The keys infra/tables.py declares: items by the schema's key alone, jobs by (jobId, sk), with its index.
    items, jobs = f"csv-ingest-test-{schema.name}", "csv-ingest-test-jobs"
    key = schema.key_column
    dynamodb.create_table(  # type: ignore[attr-defined]
        TableName=items,
        KeySchema=[{"AttributeName": key.attribute, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key.attribute, "AttributeType": key.type.attribute_type}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(  # type: ignore[attr-defined]
        TableName=jobs,
        KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("jobId", "sk", RECENT_JOBS.hash_key, RECENT_JOBS.range_key)
        ],
        GlobalSecondaryIndexes=[global_index_request(RECENT_JOBS)],
        BillingMode="PAY_PER_REQUEST",
    )
    return items, jobs


@pytest.fixture
def deployment(aws_credentials: None, monkeypatch: pytest.MonkeyPatch, schema: Schema) -> Iterator[Deployment]:
    """Bucket (versioned), queue, tables; the three handlers imported with their environment."""
    # moto runs no PartiQL condition (MOTO-NOTES): the worker's statements run as AWS runs them, by
    # local mode's engine, in this process's mock as in the emulator.
    partiql.install()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        bucket = "csv-ingest-test-uploads"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        queue_url = sqs.create_queue(QueueName="csv-ingest-test-chunks")["QueueUrl"]
        users, jobs = _create_tables(dynamodb, schema)
        # The stack's chunk signing secret, as infra/signing.py draws it: 64 letters and digits.
        signing_secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(64))
        secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="csv-ingest-test-chunk-signing", SecretString=signing_secret
        )["ARN"]
        for name, value in {
            "UPLOAD_BUCKET": bucket,
            "UPLOADS_PREFIX": "uploads/",
            "UPLOADS_SUFFIXES": json.dumps(DEFAULT_UPLOADS_SUFFIXES),
            "REPORTS_PREFIX": "reports/",
            "QUEUE_URL": queue_url,
            "JOBS_TABLE": jobs,
            "ITEMS_TABLE": users,
            SCHEMA_VARIABLE: schema.to_json(),
            "JOBS_INDEX": RECENT_JOBS.name,
            "ROWS_PER_MESSAGE": "3",
            "MAX_MESSAGE_BYTES": "1048576",
            "MAX_UPLOAD_BYTES": str(64 * 1024 * 1024),
            "MAX_DECOMPRESSED_BYTES": str(256 * 1024 * 1024),
            "JOB_TTL_DAYS": "30",
            SECRET_ARN_VARIABLE: secret_arn,
            "AWS_LAMBDA_FUNCTION_NAME": "csv-ingest-producer",
            "POWERTOOLS_METRICS_NAMESPACE": "CsvIngest",
            "POWERTOOLS_SERVICE_NAME": "test",
        }.items():
            monkeypatch.setenv(name, value)
        modules = {
            name: importlib.reload(importlib.import_module(f"handlers.{name}.app"))
            for name in ("producer", "worker", "query")
        }
        deployment = Deployment(
            s3=s3,
            sqs=sqs,
            dynamodb=dynamodb,
            bucket=bucket,
            queue_url=queue_url,
            users_table=users,
            jobs_table=jobs,
            signing_secret=signing_secret,
            signing_secret_arn=secret_arn,
            **modules,
        )
        deployment.real_continue_job = modules["producer"].continue_job
        monkeypatch.setattr(
            modules["producer"],
            "continue_job",
            lambda job_id, segment, _seconds: deployment.continuations.append(
                {"continueJob": job_id, "segment": segment}
            ),
        )
        yield deployment


@pytest.fixture
def log_lines():
    """Capture a handler module's log lines, formatted by its own Powertools formatter."""
    attached = []

    def capture(module) -> io.StringIO:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(module.logger.registered_formatter)
        module.logger.addHandler(handler)
        attached.append((module.logger, handler))
        return stream

    yield capture
    for logger, handler in attached:
        logger.removeHandler(handler)
