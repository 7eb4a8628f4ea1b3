"""TransactWriteItems in local mode is all or nothing, as on AWS: "either all of them succeed, or all
of them fail" (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
A failed transaction leaves every item it named as it was, and moto's table exactly as it was, while
only the items it names are backed up (`local.moto_patches` §11)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.emulator import Emulator
from tests.local.conftest import ACCOUNT, REGION


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_table(emulator: Emulator, *, range_key: bool, streams: bool = False) -> str:
    """A table keyed on `pk` (and `sk`), with a global index on `status` and three items in it."""
    name = unique("transact")
    keys = ["pk", "sk"] if range_key else ["pk"]
    extra: dict[str, Any] = {}
    if streams:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    dynamodb = emulator.client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in zip(keys, ("HASH", "RANGE"), strict=False)],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in [*keys, "status"]],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        **extra,
    )
    for pk in ("a", "b", "c"):
        dynamodb.put_item(TableName=name, Item={**key(pk, range_key), "status": {"S": "old"}, "n": {"N": "1"}})
    return name


def key(pk: str, range_key: bool) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": "s"}} if range_key else {"pk": {"S": pk}}


def model(emulator: Emulator, table: str) -> list[Any]:
    """moto's table as it holds it: every partition (empty ones too) and item, in its dicts' order."""
    from moto.dynamodb.models import dynamodb_backends

    held = dynamodb_backends[ACCOUNT][REGION].get_table(table)
    if held.range_key_attr is None:
        return [(pk.value, item.to_json()) for pk, item in held.items.items()]
    return [(pk.value, [(sk.value, item.to_json()) for sk, item in items.items()]) for pk, items in held.items.items()]


def seen(emulator: Emulator, table: str) -> dict[str, Any]:
    """What a reader sees: a scan, a query of the global index, the table's item count."""
    dynamodb = emulator.client("dynamodb")
    return {
        "scan": dynamodb.scan(TableName=table, ConsistentRead=True)["Items"],
        "index": dynamodb.query(
            TableName=table,
            IndexName="by-status",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "new"}},
        )["Items"],
        "count": dynamodb.describe_table(TableName=table)["Table"]["ItemCount"],
    }


def changes(table: str, range_key: bool) -> list[dict[str, Any]]:
    """A Put of a new item (in a new partition), an Update of a stored item and of an absent one, a
    Delete of a stored item, and a ConditionCheck that holds (its key absent)."""
    new = {**key("new", range_key), "status": {"S": "new"}}
    return [
        {"Put": {"TableName": table, "Item": new, "ConditionExpression": "attribute_not_exists(pk)"}},
        {
            "Update": {
                "TableName": table,
                "Key": key("a", range_key),
                "UpdateExpression": "SET #s = :s ADD n :one REMOVE gone",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":s": {"S": "new"}, ":one": {"N": "1"}},
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": key("absent", range_key),
                "UpdateExpression": "SET #s = :s",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":s": {"S": "new"}},
            }
        },
        {"Delete": {"TableName": table, "Key": key("b", range_key)}},
        {
            "ConditionCheck": {
                "TableName": table,
                "Key": key("nothing", range_key),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]


def failing(table: str, range_key: bool, kind: str) -> dict[str, Any]:
    """An operation of `kind` on item c whose condition is false: c is stored."""
    condition = "attribute_not_exists(pk)"
    if kind == "Put":
        item = {**key("c", range_key), "n": {"N": "9"}}
        return {"Put": {"TableName": table, "Item": item, "ConditionExpression": condition}}
    target = {"TableName": table, "Key": key("c", range_key), "ConditionExpression": condition}
    if kind == "Update":
        return {"Update": {**target, "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "9"}}}}
    return {kind: target}


def cancellation(call: Any) -> tuple[str, list[str]]:
    with pytest.raises(ClientError) as raised:
        call()
    reasons = raised.value.response.get("CancellationReasons", [])
    return raised.value.response["Error"]["Code"], [reason["Code"] for reason in reasons]


@pytest.mark.parametrize("range_key", [False, True], ids=["hash key", "hash and range key"])
@pytest.mark.parametrize("kind", ["ConditionCheck", "Put", "Update", "Delete"])
def test_a_transaction_whose_last_operation_fails_leaves_the_table_as_it_was(
    emulator: Emulator, range_key: bool, kind: str
) -> None:
    table = create_table(emulator, range_key=range_key)
    before_model, before_seen = model(emulator, table), seen(emulator, table)

    code, reasons = cancellation(
        lambda: emulator.client("dynamodb").transact_write_items(
            TransactItems=[*changes(table, range_key), failing(table, range_key, kind)]
        )
    )

    assert (code, reasons) == ("TransactionCanceledException", ["None"] * 5 + ["ConditionalCheckFailed"])
    assert seen(emulator, table) == before_seen
    assert model(emulator, table) == before_model  # partitions and order too: nothing added, nothing moved


@pytest.mark.parametrize("range_key", [False, True], ids=["hash key", "hash and range key"])
def test_a_transaction_that_succeeds_makes_every_change(emulator: Emulator, range_key: bool) -> None:
    table = create_table(emulator, range_key=range_key)

    emulator.client("dynamodb").transact_write_items(TransactItems=changes(table, range_key))

    after = {item["pk"]["S"]: item for item in seen(emulator, table)["scan"]}
    assert sorted(after) == ["a", "absent", "c", "new"]
    assert after["a"]["n"] == {"N": "2"} and after["a"]["status"] == {"S": "new"}
    assert after["c"] == {**key("c", range_key), "status": {"S": "old"}, "n": {"N": "1"}}


def test_a_transaction_over_two_tables_that_fails_in_the_second_leaves_the_first_as_it_was(
    emulator: Emulator,
) -> None:
    first, second = create_table(emulator, range_key=True), create_table(emulator, range_key=False)
    before = [model(emulator, first), model(emulator, second)]

    code, reasons = cancellation(
        lambda: emulator.client("dynamodb").transact_write_items(
            TransactItems=[*changes(first, True), *changes(second, False)[:4], failing(second, False, "ConditionCheck")]
        )
    )

    assert (code, reasons) == ("TransactionCanceledException", ["None"] * 9 + ["ConditionalCheckFailed"])
    assert [model(emulator, first), model(emulator, second)] == before


def test_a_transaction_naming_one_item_twice_writes_nothing(emulator: Emulator) -> None:
    table = create_table(emulator, range_key=True)
    before = model(emulator, table)
    twice = {"Delete": {"TableName": table, "Key": key("new", True)}}  # the item the first operation puts

    code, _ = cancellation(
        lambda: emulator.client("dynamodb").transact_write_items(TransactItems=[*changes(table, True), twice])
    )

    assert code == "ValidationException"  # "no two actions can target the same item"
    assert model(emulator, table) == before


def test_a_transaction_with_an_item_of_two_operations_writes_nothing(emulator: Emulator) -> None:
    """A TransactWriteItem holds one operation (moto refuses it only when it reaches it)."""
    table = create_table(emulator, range_key=True)
    before = model(emulator, table)
    put, update = changes(table, True)[:2]

    code, _ = cancellation(
        lambda: emulator.client("dynamodb").transact_write_items(
            TransactItems=[changes(table, True)[3], {**put, **update}]
        )
    )

    assert code == "ValidationException"
    assert model(emulator, table) == before


def test_a_transaction_naming_its_table_by_arn_is_undone_too(emulator: Emulator) -> None:
    """TableName may be the table's ARN (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Put.html)."""
    table = create_table(emulator, range_key=True)
    arn = emulator.client("dynamodb").describe_table(TableName=table)["Table"]["TableArn"]
    before = model(emulator, table)

    code, _ = cancellation(
        lambda: emulator.client("dynamodb").transact_write_items(
            TransactItems=[*changes(arn, True), failing(arn, True, "ConditionCheck")]
        )
    )

    assert code == "TransactionCanceledException"
    assert model(emulator, table) == before


def test_a_failed_transaction_leaves_no_stream_record(emulator: Emulator) -> None:
    from moto.dynamodb.models import dynamodb_backends

    table = create_table(emulator, range_key=True, streams=True)

    def records() -> int:
        return len(dynamodb_backends[ACCOUNT][REGION].get_table(table).stream_shard.items)

    before = records()
    cancellation(
        lambda: emulator.client("dynamodb").transact_write_items(
            TransactItems=[*changes(table, True), failing(table, True, "ConditionCheck")]
        )
    )
    failed = records()
    emulator.client("dynamodb").transact_write_items(TransactItems=changes(table, True))

    assert failed == before
    assert records() > before  # the same changes, made, are recorded
