"""Tables: users by email; jobs by (jobId, sk), indexed by upload time; recovery and protection per stack."""

import pytest

from infra.tables import RECENT_JOBS
from tests.handlers.harness import global_index_request

TABLE = "aws:dynamodb/table:Table"
USERS, JOBS = "csv-ingest-data-users", "csv-ingest-data-jobs"


def test_users_are_keyed_by_email_alone(dev):
    users = dev.one(TABLE, USERS).inputs
    assert users["hashKey"] == "email"
    assert "rangeKey" not in users
    assert users["attributes"] == [{"name": "email", "type": "S"}]


def test_jobs_hold_job_records_and_chunk_markers_under_one_key(dev):
    jobs = dev.one(TABLE, JOBS).inputs
    assert (jobs["hashKey"], jobs["rangeKey"]) == ("jobId", "sk")
    assert jobs["attributes"] == [
        {"name": "jobId", "type": "S"},
        {"name": "sk", "type": "S"},
        {"name": "recentPk", "type": "S"},
        {"name": "recentSk", "type": "S"},
    ]


def test_jobs_are_indexed_by_upload_time_with_their_whole_record(dev):
    [index] = dev.one(TABLE, JOBS).inputs["globalSecondaryIndexes"]
    assert index == {
        "name": "recent-jobs",
        "keySchemas": [
            {"attributeName": "recentPk", "keyType": "HASH"},
            {"attributeName": "recentSk", "keyType": "RANGE"},
        ],
        "projectionType": "ALL",
    }, f"{JOBS}: the recent-jobs index"
    assert "globalSecondaryIndexes" not in dev.one(TABLE, USERS).inputs


def test_the_handler_tests_create_the_index_the_program_deploys(dev):
    # tests/handlers' moto tables are made from the same declaration; this keeps the two renderings equal.
    [index] = dev.one(TABLE, JOBS).inputs["globalSecondaryIndexes"]
    deployed = {
        "IndexName": index["name"],
        "KeySchema": [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in index["keySchemas"]],
        "Projection": {"ProjectionType": index["projectionType"]},
    }
    assert deployed == global_index_request(RECENT_JOBS)


@pytest.mark.parametrize("name", [USERS, JOBS])
def test_tables_are_on_demand_and_encrypted_by_default(dev, name):
    table = dev.one(TABLE, name).inputs
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert "readCapacity" not in table and "writeCapacity" not in table
    assert table["serverSideEncryption"] == {"enabled": True}


@pytest.mark.parametrize("name", [USERS, JOBS])
def test_prod_tables_are_recoverable_protected_and_retained(dev, prod, name):
    assert dev.one(TABLE, name).inputs["pointInTimeRecovery"] == {"enabled": False}
    assert dev.one(TABLE, name).inputs["deletionProtectionEnabled"] is False
    assert not dev.one(TABLE, name).retain_on_delete
    assert prod.one(TABLE, name).inputs["pointInTimeRecovery"] == {"enabled": True}
    assert prod.one(TABLE, name).inputs["deletionProtectionEnabled"] is True
    assert prod.one(TABLE, name).retain_on_delete


def test_provisioned_billing_sets_capacity(plan_with):
    plan = plan_with(tableBillingMode="PROVISIONED", tableReadCapacity=7, tableWriteCapacity=9)
    table = plan.one(TABLE, USERS).inputs
    assert (table["billingMode"], table["readCapacity"], table["writeCapacity"]) == ("PROVISIONED", 7, 9)
    [index] = plan.one(TABLE, JOBS).inputs["globalSecondaryIndexes"]
    assert (index["readCapacity"], index["writeCapacity"]) == (7, 9), "an index with less would throttle the table"


def test_job_ttl_is_enabled_only_when_configured(dev, plan_with):
    assert dev.one(TABLE, JOBS).inputs["ttl"] == {"attributeName": "expiresAt", "enabled": True}
    assert "ttl" not in dev.one(TABLE, USERS).inputs
    assert "ttl" not in plan_with(jobTtlDays=0).one(TABLE, JOBS).inputs
