"""What a cold start pays for: each handler's import makes the clients its first invocation calls and
nothing else (no boto3 resource layer, no client for a rare path, no Powertools resolver package),
and the resource-free DynamoDB access reads and writes items exactly as boto3's resource does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.transform import TransformationInjector, copy_dynamodb_params
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from moto import mock_aws

from handlers.common import items
from handlers.common.aws import OnFirstUse, Table, client_config, items_client
from handlers.common.dynamo import from_wire, plain
from handlers.common.schema import DEFAULT_SCHEMA, SCHEMA_VARIABLE

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
# Every variable a handler reads at import (infra/*.py sets them on AWS); nothing is called.
ENVIRONMENT = {
    "ITEMS_TABLE": "users",
    SCHEMA_VARIABLE: DEFAULT_SCHEMA.to_json(),
    "JOBS_TABLE": "jobs",
    "JOBS_INDEX": "recent-jobs",
    "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/chunks",
    "UPLOAD_BUCKET": "uploads",
    "UPLOADS_PREFIX": "uploads/",
    "UPLOADS_SUFFIXES": '[".csv", ".csv.gz", ".tsv", ".tsv.gz"]',
    "REPORTS_PREFIX": "reports/",
    "ROWS_PER_MESSAGE": "200",
    "MAX_MESSAGE_BYTES": "1048576",
    "MAX_UPLOAD_BYTES": "1073741824",
    "MAX_DECOMPRESSED_BYTES": "53687091200",
    "CHUNK_SIGNING_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:signing-AbCdEf",
    "AWS_LAMBDA_FUNCTION_NAME": "producer",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: an import that calls AWS fails
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Records, in a fresh interpreter, every client made and every model loaded by the handler's import
# (boto3's resource layer loads a `resources-1` model of its own). Botocore only: boto3 is the
# handler's to import or not.
_PROBE = """
import gc, json, sys
import botocore.loaders, botocore.session
made = {"clients": [], "models": [], "collecting_while_made": []}
create_client, load_model = botocore.session.Session.create_client, botocore.loaders.Loader.load_service_model
def recording_client(self, service_name, *args, **kwargs):
    made["clients"].append(service_name)
    made["collecting_while_made"].append(gc.isenabled())
    return create_client(self, service_name, *args, **kwargs)
def recording_model(self, service_name, type_name, *args, **kwargs):
    made["models"].append(type_name)
    return load_model(self, service_name, type_name, *args, **kwargs)
botocore.session.Session.create_client = recording_client
botocore.loaders.Loader.load_service_model = recording_model
import importlib
importlib.import_module(sys.argv[1])
made["modules"] = sorted(sys.modules)
made["collecting_after"], made["frozen"] = gc.isenabled(), gc.get_freeze_count()
print(json.dumps(made))
"""


def imported(module: str) -> dict[str, Any]:
    """The clients made, the models loaded and the modules imported by importing `module` afresh."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module],
        env={**ENVIRONMENT, "PATH": os.environ.get("PATH", "")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("module", "clients"),
    [
        # An upload's first invocation: HeadObject, the job record, the chunks' sends. Lambda's
        # client (a continuation) is made when a file first outlasts an invocation.
        ("handlers.producer.app", ["dynamodb", "s3", "sqs"]),
        # The job record, the progress counter and the rows' reads and writes: DynamoDB only.
        ("handlers.worker.app", ["dynamodb"]),
        ("handlers.query.app", ["dynamodb"]),
    ],
)
def test_a_handler_makes_at_import_the_clients_of_its_first_invocation_only(module, clients):
    made = imported(module)
    assert sorted(set(made["clients"])) == clients
    assert "resources-1" not in made["models"], "boto3's resource layer loads a model of its own that no call needs"
    # The signing secret is read when the first chunk is signed or checked, never at import.
    assert "secretsmanager" not in made["clients"]


@pytest.mark.parametrize("module", ["handlers.producer.app", "handlers.worker.app", "handlers.query.app"])
def test_a_handler_loads_with_the_collector_paused_and_leaves_it_collecting(module):
    # handlers/common/cold_start.py: no collection walks the clients' models while they are made; what
    # the import made is frozen out of later collections, which run again for the invocations.
    made = imported(module)
    assert made["collecting_while_made"] and not any(made["collecting_while_made"])
    assert made["collecting_after"] is True
    assert made["frozen"] > 10_000


def test_the_query_function_loads_neither_a_powertools_resolver_nor_boto3():
    """Its four GET routes do not need the package of every resolver and event class Powertools has,
    and its one client, in wire format, needs botocore only: boto3 would bring s3transfer with it."""
    modules = imported("handlers.query.app")["modules"]
    assert [m for m in modules if m.startswith("aws_lambda_powertools.event_handler")] == []
    assert [m for m in modules if m.startswith("aws_lambda_powertools.utilities.data_classes")] == []
    assert [m for m in modules if m.split(".")[0] in ("boto3", "s3transfer")] == []


def test_the_worker_loads_neither_powertools_batch_utility_nor_its_event_classes():
    """A partial batch response is a loop of ours (`handlers/worker/batch.py`): Powertools' batch
    utility brings every event class it has, and asyncio, into the cold start."""
    modules = imported("handlers.worker.app")["modules"]
    assert [m for m in modules if m.startswith("aws_lambda_powertools.utilities.batch")] == []
    assert [m for m in modules if m.startswith("aws_lambda_powertools.utilities.data_classes")] == []


@pytest.mark.parametrize("module", ["handlers.producer.app", "handlers.worker.app"])
def test_the_producer_and_the_worker_import_neither_boto3_nor_s3transfer(module):
    """Their clients are botocore's and their items plain Python through `handlers.common.items`:
    boto3 would bring s3transfer (and multiprocessing) into the cold start for none of their calls."""
    modules = imported(module)["modules"]
    assert [m for m in modules if m.split(".")[0] in ("boto3", "s3transfer")] == []


VALUES = [
    None,
    True,
    0,
    -12,
    Decimal("3.14"),
    Decimal("1E+125"),
    "Zoë",
    "",
    b"\x00\xff",
    bytearray(b"ab"),
    Binary(b"cd"),
    {"a", "b"},
    {1, Decimal("2.5")},
    {b"x", b"y"},
    [1, "two", None, [False]],
    ("tuple", 1),
    {"map": {"inner": [Decimal("-0.125")]}, "set": {"s"}},
]


@pytest.mark.parametrize("value", VALUES, ids=[f"value{n}" for n in range(len(VALUES))])
def test_a_value_goes_to_the_wire_and_back_as_boto3s_serializer_and_deserializer_take_it(value):
    wire = items.to_wire(value)
    assert wire == TypeSerializer().serialize(value)
    assert items.from_wire(wire) == TypeDeserializer().deserialize(wire)


@pytest.mark.parametrize(
    "value", [1.5, Decimal("NaN"), Decimal("Infinity"), Decimal("1.000000000000000000000000000000000000001"), object()]
)
def test_a_value_boto3_refuses_is_refused_with_the_same_error(value):
    with pytest.raises(Exception) as boto3s:
        TypeSerializer().serialize(value)
    with pytest.raises(type(boto3s.value)) as ours:
        items.to_wire(value)
    assert str(ours.value) == str(boto3s.value)


def test_from_wire_reads_every_attribute_type_as_boto3s_deserializer_does():
    wire = {
        "s": {"S": "Zoë"},
        "n": {"N": "42"},
        "fraction": {"N": "-0.125"},
        "big": {"N": "12345678901234567890123456789012345678"},
        "yes": {"BOOL": True},
        "none": {"NULL": True},
        "bytes": {"B": b"\x00\xff"},
        "map": {"M": {"inner": {"L": [{"N": "1"}, {"S": "two"}, {"M": {}}]}}},
        "strings": {"SS": ["b", "a"]},
        "numbers": {"NS": ["2", "1.5"]},
    }
    boto3s = plain({k: TypeDeserializer().deserialize(v) for k, v in wire.items()})
    ours = from_wire(wire)
    for name in ("strings", "numbers"):  # sets: their order is the set's, in both
        assert sorted(ours.pop(name)) == sorted(boto3s.pop(name)), name
    assert ours == boto3s
    assert type(ours["n"]) is int and type(ours["fraction"]) is float
    assert from_wire(None) is None


# -- items_client and Table: the resource's behaviour without the resource ------------------------


@pytest.fixture
def tables(monkeypatch):
    """One moto table, reached both through boto3's resource and through `items_client` + `Table`."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        resource = boto3.resource("dynamodb", region_name=REGION)
        resource.create_table(
            TableName="things",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
        )
        yield resource.Table("things"), Table(items_client(client_config()), "things")


ITEM = {
    "pk": "p",
    "sk": "a",
    "count": 3,
    "ratio": Decimal("0.25"),
    "tags": {"x", "y"},
    "nested": {"list": [1, "two", None, True], "map": {"k": Decimal("-7")}},
}


def test_an_item_written_and_read_through_table_is_what_the_resource_writes_and_reads(tables):
    resource_table, table = tables
    table.put_item(Item=ITEM)
    assert table.get_item(Key={"pk": "p", "sk": "a"})["Item"] == ITEM
    assert resource_table.get_item(Key={"pk": "p", "sk": "a"})["Item"] == ITEM, "stored as the resource stores it"
    resource_table.put_item(Item={**ITEM, "sk": "b"})
    assert table.get_item(Key={"pk": "p", "sk": "b"})["Item"] == {**ITEM, "sk": "b"}


def test_conditions_and_updates_go_through_table_as_through_the_resource(tables):
    resource_table, table = tables
    for sk in ("a", "b", "c"):
        table.put_item(Item={**ITEM, "sk": sk})
    query = {"KeyConditionExpression": Key("pk").eq("p") & Key("sk").gt("a"), "ScanIndexForward": False}
    assert [i["sk"] for i in table.query(**query)["Items"]] == ["c", "b"]
    assert table.query(**query)["Items"] == resource_table.query(**query)["Items"]
    assert [i["sk"] for i in table.scan(FilterExpression=Attr("sk").eq("b"))["Items"]] == ["b"]
    updated = table.update_item(
        Key={"pk": "p", "sk": "a"},
        UpdateExpression="SET #count = #count + :one",
        ExpressionAttributeNames={"#count": "count"},
        ExpressionAttributeValues={":one": 1},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert updated["count"] == 4
    with pytest.raises(table.meta.client.exceptions.ConditionalCheckFailedException):
        table.put_item(Item=ITEM, ConditionExpression="attribute_not_exists(pk)")
    table.delete_item(Key={"pk": "p", "sk": "a"})
    assert "Item" not in resource_table.get_item(Key={"pk": "p", "sk": "a"})


def test_table_leaves_the_callers_values_unchanged(tables):
    _, table = tables
    item = {"pk": "p", "sk": "a", "nested": {"n": 1}}
    table.put_item(Item=item)
    assert item == {"pk": "p", "sk": "a", "nested": {"n": 1}}


def test_other_dynamodb_clients_keep_the_wire_format(tables):
    """The serializing handlers are registered on the items client's own events only."""
    _, table = tables
    table.put_item(Item=ITEM)
    plain_client = boto3.client("dynamodb", region_name=REGION)
    assert plain_client.get_item(TableName="things", Key={"pk": {"S": "p"}, "sk": {"S": "a"}})["Item"]["count"] == {
        "N": "3"
    }


# -- OnFirstUse ------------------------------------------------------------------------------------


def test_a_client_on_first_use_is_made_once_whichever_thread_comes_first():
    made, go = [], threading.Event()

    class Client:
        def invoke(self) -> str:
            return "invoked"

    def make() -> Client:
        go.wait(5)
        made.append(1)
        return Client()

    lazy = OnFirstUse(make)
    assert made == [], "nothing is made before a call"
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(lazy.invoke())) for _ in range(8)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(10)
    assert (answers, len(made)) == (["invoked"] * 8, 1)


def test_a_value_given_twice_in_one_call_is_serialized_once_in_each_place(tables):
    """The parameters are copied as boto3 copies them, every reference apart: serializing one place
    in place must not serialize the other twice."""
    _, table = tables
    model = table.meta.client.meta.service_model.operation_model("TransactGetItems")
    key = {"pk": "p", "sk": "a"}
    params = {"TransactItems": [{"Get": {"TableName": "things", "Key": key}}] * 2}
    ours = items._copied(params)
    items._serialized(ours, model)
    boto3s = copy_dynamodb_params(params)
    TransformationInjector().inject_attribute_value_input(boto3s, model)
    assert ours == boto3s
    assert ours["TransactItems"][1]["Get"]["Key"] == {"pk": {"S": "p"}, "sk": {"S": "a"}}
    assert params["TransactItems"][0]["Get"]["Key"] == {"pk": "p", "sk": "a"}, "the caller's values unchanged"
