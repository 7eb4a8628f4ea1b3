"""Tables: users keyed by email alone; jobs by (jobId, sk); recovery and protection per stack."""

import pytest

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
    assert jobs["attributes"] == [{"name": "jobId", "type": "S"}, {"name": "sk", "type": "S"}]


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


def test_job_ttl_is_enabled_only_when_configured(dev, plan_with):
    assert dev.one(TABLE, JOBS).inputs["ttl"] == {"attributeName": "expiresAt", "enabled": True}
    assert "ttl" not in dev.one(TABLE, USERS).inputs
    assert "ttl" not in plan_with(jobTtlDays=0).one(TABLE, JOBS).inputs
