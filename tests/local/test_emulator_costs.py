"""What the emulator's DynamoDB paths cost the worker's requests: linear in what a request carries,
with the same answers as before they were made cheaper (`local.moto_patches` §8, `local.partiql`)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import partiql
from local.emulator import Emulator
from tests.local.test_partiql import batch, codes, create_users_table, insert


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_table(emulator: Emulator) -> str:
    name = unique("costs")
    emulator.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    return name


@pytest.fixture
def table(emulator: Emulator) -> Iterator[str]:
    yield create_table(emulator)


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Counter[str]:
    """Count the calls of `owner.name`, which still runs as it did."""
    calls: Counter[str] = Counter()
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


# --- items ---------------------------------------------------------------------------------------


def test_an_item_is_sized_once_per_attribute_when_it_is_built(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    sized = counting(monkeypatch, DynamoType, "size")

    Item(DynamoType({"S": "key"}), None, {f"a{i}": {"S": "value"} for i in range(200)})

    assert sized["size"] <= 200


@pytest.mark.parametrize("write", ["PutItem", "PartiQL INSERT"])
def test_an_item_over_the_size_limit_is_refused_and_one_under_it_is_stored(
    emulator: Emulator, table: str, write: str
) -> None:
    dynamodb = emulator.client("dynamodb")

    def put(pk: str, attributes: int) -> None:
        item = {"pk": {"S": pk}, **{f"a{i}": {"S": "x" * 150_000} for i in range(attributes)}}
        if write == "PutItem":
            dynamodb.put_item(TableName=table, Item=item)
            return
        names = ", ".join(f"'{name}': ?" for name in item)
        statement = {"Statement": f'INSERT INTO "{table}" VALUE {{{names}}}', "Parameters": list(item.values())}
        error = dynamodb.batch_execute_statement(Statements=[statement])["Responses"][0].get("Error")
        if error is not None:
            raise ClientError({"Error": error}, "BatchExecuteStatement")

    with pytest.raises(ClientError) as refused:
        put("over", 3)
    put("under", 2)

    assert "Item size has exceeded the maximum allowed size" in refused.value.response["Error"]["Message"]
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"pk": {"S": "over"}})
    assert len(dynamodb.get_item(TableName=table, Key={"pk": {"S": "under"}})["Item"]) == 3


# --- PartiQL statements --------------------------------------------------------------------------


def test_a_statement_text_is_read_once_however_many_times_batches_send_it(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = create_users_table(emulator, unique("users"))
    tokenised = counting(monkeypatch, partiql, "_tokens")

    first = batch(emulator, *(insert(table, f"a{i}@example.com", 1) for i in range(25)))
    second = batch(emulator, *(insert(table, f"b{i}@example.com", 1) for i in range(25)))

    assert codes(first) == codes(second) == [None] * 25
    assert tokenised["_tokens"] <= 2  # once for what IAM checks it against, once to run it
