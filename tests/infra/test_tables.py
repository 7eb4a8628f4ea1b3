"""Tables: the schema's items by its key (users by email by default); jobs by (jobId, sk), indexed by
upload time; recovery and protection per stack."""

from typing import Any

import pulumi
import pytest

from infra.tables import RECENT_JOBS
from local.mocks import run_program
from tests.handlers.harness import global_index_request
from tests.infra.support import DEVICES, PRODUCTS

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


# --- the items table follows csv-ingest:schema -----------------------------------------------------

PRODUCTS_TABLE = "csv-ingest-data-products"


def test_the_items_table_is_named_and_keyed_by_the_schema(plan_with):
    plan = plan_with(schema=PRODUCTS)
    products = plan.one(TABLE, PRODUCTS_TABLE).inputs
    assert (products["hashKey"], products["attributes"]) == ("sku", [{"name": "sku", "type": "S"}]), PRODUCTS_TABLE
    assert "rangeKey" not in products
    assert {t.name for t in plan.of_type(TABLE)} == {PRODUCTS_TABLE, JOBS}, "no users table beside it"


def test_a_whole_number_key_is_a_number_partition_key_under_its_attribute(plan_with):
    devices = plan_with(schema=DEVICES).one(TABLE, "csv-ingest-data-devices").inputs
    assert (devices["hashKey"], devices["attributes"]) == ("serialNumber", [{"name": "serialNumber", "type": "N"}])


def test_prod_keeps_its_items_table_protected_recoverable_and_retained_whatever_the_schema():
    prod = run_program("prod", {"schema": PRODUCTS})
    products = prod.one(TABLE, PRODUCTS_TABLE)
    assert products.inputs["deletionProtectionEnabled"] is True, PRODUCTS_TABLE
    assert products.inputs["pointInTimeRecovery"] == {"enabled": True}, PRODUCTS_TABLE
    assert products.retain_on_delete, PRODUCTS_TABLE


def _table_options(stack: str, overrides: dict[str, Any]) -> dict[str, pulumi.ResourceOptions]:
    """The resource options each table is declared with, by logical name (a stack transformation sees them)."""
    seen: dict[str, pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        if args.type_ == TABLE:
            seen[args.name] = args.opts

    run_program(stack, overrides, transformations=[record])
    return seen


def test_a_change_of_the_keys_type_replaces_the_items_table_rather_than_updating_it():
    # A new hashKey replaces the table (the provider's hash_key is ForceNew); a key of the same name whose
    # type changes (text to integer) changes `attributes` alone, which DynamoDB cannot update in place.
    options = _table_options("dev", {"schema": PRODUCTS})
    assert "attributes" in (options[PRODUCTS_TABLE].replace_on_changes or []), PRODUCTS_TABLE
    assert not options[JOBS].replace_on_changes, JOBS


@pytest.fixture
def said(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the program says at plan time (`pulumi.log.info`), as `pulumi preview` shows it."""
    lines: list[str] = []
    monkeypatch.setattr(pulumi.log, "info", lambda message, *args, **kwargs: lines.append(message))
    return lines


def test_the_plan_says_in_words_that_a_new_schema_name_or_key_replaces_the_table(said):
    run_program("dev", {"schema": PRODUCTS})
    [line] = [line for line in said if PRODUCTS_TABLE in line]
    assert "keyed on sku (S)" in line, line
    assert "csv-ingest:schema.name or csv-ingest:schema.key" in line and "replaces" in line, line
    assert "new, empty table" in line and "deleted with its items" in line, line


def test_the_plan_says_prod_keeps_the_old_table_in_aws_when_it_is_replaced(said):
    run_program("prod", {"schema": DEVICES})
    [line] = [line for line in said if "csv-ingest-data-devices" in line]
    assert "keyed on serialNumber (N)" in line, line
    assert "retainOnDelete" in line and "left in AWS" in line, line
