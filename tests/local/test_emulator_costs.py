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


# Every type of attribute value, nested ones too, as moto's models hold them.
EVERY_TYPE = {
    "s": {"S": "Ann"},
    "empty": {"S": ""},
    "n": {"N": "1.50"},
    "b": {"B": "AAEC"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": ["AAE=", "AgM="]},
    "null": {"NULL": True},
    "bool": {"BOOL": False},
    "l": {"L": [{"S": "x"}, {"N": "2"}, {"M": {"k": {"BOOL": True}}}]},
    "m": {"M": {"inner": {"L": [{"S": "y"}]}, "n": {"N": "3"}}},
}


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


# --- projections ---------------------------------------------------------------------------------

PROJECTIONS = [
    [["s"], ["n"]],
    [["m"], ["m"], ["missing"]],
    [["m", "inner"], ["s"]],
    [["l[0]"], ["b"]],
    [["ss"], ["ns"], ["bs"], ["null"], ["bool"], ["empty"]],
]


@pytest.mark.parametrize("projection", PROJECTIONS, ids=str)
def test_a_projection_is_the_item_moto_projects(emulator: Emulator, projection: list[list[str]]) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from local import moto_patches

    # binary values as moto's request parser hands them over: bytes
    stored = {**EVERY_TYPE, "n": {"N": "0012.50"}, "b": {"B": b"\x00\x01"}, "bs": {"BS": [b"\x00", b"\x02"]}}
    item = Item(DynamoType({"S": "key"}), None, stored)
    mine, moto = item.project(projection), moto_patches._original.get("project", Item.project)(item, projection)

    assert mine.to_json() == moto.to_json()
    assert (mine.hash_key, mine.range_key) == (moto.hash_key, moto.range_key)


def test_a_batch_get_converts_only_the_attributes_it_projects(
    emulator: Emulator, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    dynamodb = emulator.client("dynamodb")
    for i in range(100):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}, **EVERY_TYPE})
    converted = counting(monkeypatch, DynamoType, "to_regular_json")

    answer = dynamodb.batch_get_item(
        RequestItems={
            table: {
                "Keys": [{"pk": {"S": f"k{i}"}} for i in range(100)],
                "ProjectionExpression": "#k, #s",
                "ExpressionAttributeNames": {"#k": "pk", "#s": "s"},
            }
        }
    )

    assert sorted(item["pk"]["S"] for item in answer["Responses"][table]) == sorted(f"k{i}" for i in range(100))
    assert all(item["s"] == EVERY_TYPE["s"] and len(item) == 2 for item in answer["Responses"][table])
    assert converted["to_regular_json"] <= 200  # was 2,400: every attribute, once for each projected one


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


# --- responses -----------------------------------------------------------------------------------


def moto_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item as moto's models hold it."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    return {name: DynamoType(value) for name, value in item.items()}


def moto_response(operation: str, result: dict[str, Any]) -> bytes:
    """The body moto's DynamoDB handler answers `result` with (`DynamoResult`, its JSON serializer)."""
    from moto.core.responses import ActionContext
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    service = get_service_model("dynamodb")
    context = ActionContext(
        service, service.operation_model(operation), get_serializer_class("dynamodb", "json"), DynamoHandler()
    )
    return DynamoResult(result).execute_result(context)[2]


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("GetItem", {"Item": moto_item(EVERY_TYPE)}),
        ("GetItem", {"Item": EVERY_TYPE}),
        ("BatchGetItem", {"Responses": {"t": [moto_item(EVERY_TYPE), {"s": {"S": "x"}}]}, "UnprocessedKeys": {}}),
        (
            "BatchExecuteStatement",
            {
                "Responses": [
                    {"TableName": "t"},
                    {"Error": {"Code": "ConditionalCheckFailed", "Message": "m", "Item": moto_item(EVERY_TYPE)}},
                    {"Error": {"Code": "DuplicateItem", "Message": "m"}},
                ]
            },
        ),
        (
            "Query",
            {"Items": [moto_item(EVERY_TYPE)], "Count": 1, "ScannedCount": 1, "LastEvaluatedKey": {"s": {"S": "a"}}},
        ),
        ("DescribeTable", {"Table": {"TableName": "t", "KeySchema": [{"AttributeName": "s", "KeyType": "HASH"}]}}),
    ],
    ids=["GetItem", "GetItem wire", "BatchGetItem", "BatchExecuteStatement", "Query", "DescribeTable"],
)
def test_responses_are_the_bytes_moto_answers(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, operation: str, result: dict[str, Any]
) -> None:
    from moto.core.serialize import BaseJSONSerializer, JSONSerializer

    answered = moto_response(operation, result)
    # moto's own serialization of a structure (local mode's is on the JSON protocol's class)
    monkeypatch.setattr(JSONSerializer, "_serialize_type_structure", BaseJSONSerializer._serialize_type_structure)
    assert answered == moto_response(operation, result)


def test_a_batch_get_looks_up_no_member_of_a_plain_structure_one_by_one(
    emulator: Emulator, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.serialize import ResponseSerializer

    dynamodb = emulator.client("dynamodb")
    for i in range(100):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}, **EVERY_TYPE})
    looked_up = counting(monkeypatch, ResponseSerializer, "get_value")

    answer = dynamodb.batch_get_item(
        RequestItems={
            table: {
                "Keys": [{"pk": {"S": f"k{i}"}} for i in range(100)],
                "ProjectionExpression": "#k, #s",
                "ExpressionAttributeNames": {"#k": "pk", "#s": "s"},
            }
        }
    )

    assert len(answer["Responses"][table]) == 100
    assert looked_up["get_value"] <= 10  # was ten a value: one per type AttributeValue may hold
