"""What the emulator's DynamoDB paths cost the worker's requests: linear in what a request carries,
with the same answers as before they were made cheaper (`local.moto_patches` §8, `local.partiql`)."""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import authz, partiql
from local.emulator import Emulator
from tests.local.conftest import ACCOUNT, REGION
from tests.local.support import iam_user
from tests.local.test_emulator import create_table
from tests.local.test_partiql import batch, codes, create_users_table, insert, stored, update


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


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


def hundred_items_of_every_type(emulator: Emulator, table: str) -> Any:
    """`table` holding k0…k99, each with an attribute of every type; the client that wrote them."""
    dynamodb = emulator.client("dynamodb")
    for i in range(100):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}, **EVERY_TYPE})
    return dynamodb


def projected_keys_and_strings(table: str) -> dict[str, Any]:
    """A BatchGetItem of the 100 items, each projected to its key and its string."""
    keys = [{"pk": {"S": f"k{i}"}} for i in range(100)]
    return {
        table: {"Keys": keys, "ProjectionExpression": "#k, #s", "ExpressionAttributeNames": {"#k": "pk", "#s": "s"}}
    }


def test_a_batch_get_converts_only_the_attributes_it_projects(
    emulator: Emulator, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    dynamodb = hundred_items_of_every_type(emulator, table)
    converted = counting(monkeypatch, DynamoType, "to_regular_json")

    answer = dynamodb.batch_get_item(RequestItems=projected_keys_and_strings(table))

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


# --- requests ------------------------------------------------------------------------------------


def moto_parse(operation: str, body: dict[str, Any]) -> Any:
    """The parameters moto's DynamoDB handler reads from a request with this JSON body."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler

    parser = PROTOCOL_PARSERS["json"](
        get_service_model("dynamodb").operation_model(operation), map_type=DynamoHandler.PROTOCOL_PARSER_MAP_TYPE
    )
    request = {"method": "POST", "values": {}, "headers": {}, "url_path": "/", "url_params": {}}
    return parser.parse({**request, "body": json.dumps(body).encode()})  # type: ignore[typeddict-item]


def calls_made(work: Callable[[], Any]) -> int:
    """How many Python and built-in functions `work` calls: the interpreter's work, counted exactly."""
    made = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal made
        made += event in ("call", "c_call")

    sys.setprofile(count)
    try:
        work()
    finally:
        sys.setprofile(None)
    return made


def worker_batch(table: str) -> dict[str, Any]:
    """A BatchExecuteStatement of 25 of the worker's UPDATEs, 11 parameters each."""
    return {"Statements": [update(table, f"a{i}@example.com", 2) for i in range(25)]}


REQUESTS = [
    ("BatchExecuteStatement", {"Statements": [insert("t", "a@example.com", 1), update("t", "b@example.com", 2)]}),
    ("PutItem", {"TableName": "t", "Item": EVERY_TYPE, "ReturnValues": "ALL_OLD", "Unknown": {"S": "dropped"}}),
    ("BatchGetItem", {"RequestItems": {"t": {"Keys": [{"pk": {"S": "a"}}], "ProjectionExpression": "#k"}}}),
    ("Query", {"TableName": "t", "ExpressionAttributeValues": {":v": {"N": "1"}}, "Limit": 5, "ConsistentRead": True}),
    ("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a", "N": "1"}, "x": {"NULL": True}, "y": {"Q": "?"}}}),
    ("PutItem", {"TableName": "t", "Item": {"pk": {"S": None}, "z": {}}}),
]


@pytest.mark.parametrize(("operation", "body"), REQUESTS, ids=[f"{op}-{i}" for i, (op, _) in enumerate(REQUESTS)])
def test_requests_are_parsed_as_moto_parses_them(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, operation: str, body: dict[str, Any]
) -> None:
    from moto.core.parse import BaseJSONParser, JSONParser

    parsed = moto_parse(operation, body)
    # moto's own parsing of a structure (local mode's is on the JSON protocol's class)
    monkeypatch.setattr(JSONParser, "_parse_structure", BaseJSONParser._parse_structure)
    theirs = moto_parse(operation, body)

    assert parsed == theirs
    assert repr(parsed) == repr(theirs)  # the same members in the same order


def test_a_batch_of_the_workers_statements_is_parsed_in_half_the_calls_a_value(emulator: Emulator) -> None:
    body = worker_batch("users")

    made = calls_made(lambda: moto_parse("BatchExecuteStatement", body))

    assert made <= 15 * 25 * 11  # was 29 a value: every member an attribute value may have, looked for


def test_a_batch_of_the_workers_statements_runs_in_at_most_540_calls_a_statement(emulator: Emulator) -> None:
    from moto.dynamodb.models import dynamodb_backends

    table = create_users_table(emulator, unique("users"))
    batch(emulator, *(insert(table, f"a{i}@example.com", 1) for i in range(25)))
    updates = worker_batch(table)["Statements"]
    backend = dynamodb_backends[ACCOUNT][REGION]

    made = calls_made(lambda: partiql.batch_execute(backend, updates))

    assert all(stored(emulator, table, f"a{i}@example.com")["rowVersion"] == {"N": "2"} for i in range(25))
    # was 629: every string parameter searched for numbers, every string attribute sized through moto's type tests
    assert made <= 540 * 25


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

    dynamodb = hundred_items_of_every_type(emulator, table)
    looked_up = counting(monkeypatch, ResponseSerializer, "get_value")

    answer = dynamodb.batch_get_item(RequestItems=projected_keys_and_strings(table))

    assert len(answer["Responses"][table]) == 100
    assert looked_up["get_value"] <= 10  # was ten a value: one per type AttributeValue may hold


def test_a_batch_get_of_hints_is_serialized_in_at_most_50_calls_a_value(emulator: Emulator) -> None:
    hints = [moto_item({"email": {"S": f"a{i}@example.com"}, "rowVersion": {"S": "00000001"}}) for i in range(100)]

    made = calls_made(lambda: moto_response("BatchGetItem", {"Responses": {"users": hints}, "UnprocessedKeys": {}}))

    assert made <= 50 * 200  # was 90: each of the ten members an attribute value may have, looked for


def test_a_batch_of_statements_is_answered_in_at_most_50_calls_a_statement(emulator: Emulator) -> None:
    answers = {"Responses": [{"TableName": "users"}] * 25}

    made = calls_made(lambda: moto_response("BatchExecuteStatement", answers))

    assert made <= 50 * 25  # was 54


# --- transactions --------------------------------------------------------------------------------


def create_jobs_table(emulator: Emulator) -> str:
    """A table keyed as the jobs table is (`jobId`, `sk`), as the administrator; its name."""
    name = unique("jobs")
    emulator.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "jobId", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    return name


def count_chunk(table: str, chunk: int) -> list[dict[str, Any]]:
    """The worker's transaction (handlers/worker/progress.py): a chunk's marker, only if absent, and its
    counts added to the job, only if it exists."""
    marker = {"jobId": {"S": "job"}, "sk": {"S": f"chunk#{chunk:08d}"}, "rowsWritten": {"N": "200"}}
    return [
        {"Put": {"TableName": table, "Item": marker, "ConditionExpression": "attribute_not_exists(jobId)"}},
        {
            "Update": {
                "TableName": table,
                "Key": {"jobId": {"S": "job"}, "sk": {"S": "job"}},
                "UpdateExpression": "ADD chunksDone :one, rowsWritten :written",
                "ConditionExpression": "attribute_exists(jobId)",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":written": {"N": "200"}},
            }
        },
    ]


def test_a_transaction_copies_no_item_it_does_not_name(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import Item

    table = create_jobs_table(emulator)
    dynamodb = emulator.client("dynamodb")
    backend = dynamodb_backends[ACCOUNT][REGION]
    backend.put_item(table, {"jobId": {"S": "job"}, "sk": {"S": "job"}, "chunksDone": {"N": "500"}})
    for chunk in range(500):  # the job's markers so far
        backend.put_item(table, count_chunk(table, chunk)[0]["Put"]["Item"])
    copied: Counter[str] = Counter()
    deepcopy = Item.__deepcopy__

    def counted(item: Any, memo: dict[int, Any]) -> Any:
        copied[item.range_key.value] += 1
        return deepcopy(item, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counted)

    dynamodb.transact_write_items(TransactItems=count_chunk(table, 500))
    with pytest.raises(ClientError) as counted_before:  # a redelivered chunk: its marker is there
        dynamodb.transact_write_items(TransactItems=count_chunk(table, 500))

    job = dynamodb.get_item(TableName=table, Key={"jobId": {"S": "job"}, "sk": {"S": "job"}})["Item"]
    assert counted_before.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert job["chunksDone"] == {"N": "501"}
    # was every item of the table, twice: moto backed up the whole table before each transaction
    assert set(copied) <= {"job", "chunk#00000500"}


# --- IAM -----------------------------------------------------------------------------------------


def table_arn(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"


def test_a_batch_is_authorised_once_per_action_and_table_it_needs(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = create_users_table(emulator, unique("users"))
    user = iam_user(
        emulator.client("iam"),
        unique("writer"),
        {
            "Effect": "Allow",
            "Action": ["dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate"],
            "Resource": table_arn(table),
        },
    )
    batch(emulator, insert(table, "a@example.com", 1))
    authorised = counting(monkeypatch, authz, "authorize")

    responses = batch(
        emulator,
        update(table, "a@example.com", 2),
        *(insert(table, f"b{i}@example.com", 1) for i in range(24)),
        client=user.client("dynamodb"),
    )

    assert codes(responses) == [None] * 25
    assert authorised["authorize"] == 2  # PartiQLUpdate and PartiQLInsert on the table; was 25


def test_one_callers_verdicts_are_not_anothers(emulator: Emulator) -> None:
    table = create_users_table(emulator, unique("users"))
    allowed = iam_user(
        emulator.client("iam"),
        unique("inserter"),
        {"Effect": "Allow", "Action": ["dynamodb:PartiQLInsert"], "Resource": table_arn(table)},
    )
    refused = iam_user(
        emulator.client("iam"),
        unique("reader"),
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": table_arn(table)},
    )
    statements = [insert(table, f"a{i}@example.com", 1) for i in range(3)]

    first = batch(emulator, *statements, client=allowed.client("dynamodb"))
    second = batch(
        emulator, *(insert(table, f"b{i}@example.com", 1) for i in range(3)), client=refused.client("dynamodb")
    )

    assert codes(first) == [None] * 3
    assert codes(second) == ["AccessDenied"] * 3
    assert all(refused.arn in response["Error"]["Message"] for response in second)
    assert stored(emulator, table, "b0@example.com") is None


def test_a_policy_changed_between_two_batches_judges_the_second(emulator: Emulator) -> None:
    table = create_users_table(emulator, unique("users"))
    iam, name = emulator.client("iam"), unique("writer")
    user = iam_user(iam, name, {"Effect": "Allow", "Action": ["dynamodb:PartiQLInsert"], "Resource": table_arn(table)})
    dynamodb = user.client("dynamodb")

    before = batch(emulator, insert(table, "a@example.com", 1), client=dynamodb)
    deny = {"Effect": "Deny", "Action": ["dynamodb:PartiQLInsert"], "Resource": table_arn(table)}
    iam.put_user_policy(
        UserName=name, PolicyName="deny", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    )
    after = batch(emulator, insert(table, "b@example.com", 1), client=dynamodb)

    assert codes(before) == [None]
    assert codes(after) == ["AccessDenied"]
    assert "explicit deny" in after[0]["Error"]["Message"]


def test_a_callers_identity_policies_are_evaluated_once_per_decision(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = authz.Identity(
        arn="arn:aws:iam::123456789012:user/u",
        caller_arn="arn:aws:iam::123456789012:user/u",
        account_id="123456789012",
        kind="User",
        unique_id="AIDAEXAMPLE",
        secret_access_key="secret",
        policies=({"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]},),
    )
    evaluated = counting(monkeypatch, authz, "evaluate")

    verdicts = [
        authz.authorize(
            identity,
            action,
            "arn:aws:dynamodb:eu-west-1:123456789012:table/t",
            None,
            authz.request_context(identity, REGION),
        )
        for action in ("dynamodb:GetItem", "dynamodb:PutItem")
    ]

    assert [verdict.allowed for verdict in verdicts] == [True, False]
    assert evaluated["evaluate"] == 2  # one a decision; was two
