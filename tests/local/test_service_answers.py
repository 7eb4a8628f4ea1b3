"""Service answers as AWS gives them (issue 20, item 6), through a running emulator with boto3.

- A service local mode does not emulate answers in that service's own protocol (query, JSON, rest-json,
  rest-xml: botocore's model of it says which) with an error botocore parses, once: a client that cannot
  parse an answer retries it as a transient failure, and a function calling SNS would loop.
- S3 answers a missing key with 403 AccessDenied to a caller without s3:ListBucket on the bucket, 404
  NoSuchKey to one with it (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
  "Permissions"; https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions").
- DynamoDB refuses an ExpressionAttributeValues or ExpressionAttributeNames entry no expression uses
  (ValidationException), which moto accepts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.emulator import Credentials, Emulator
from tests.local.conftest import REGION
from tests.local.support import iam_user


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def user(emulator: Emulator, *statements: dict[str, Any]) -> Credentials:
    return iam_user(emulator.client("iam"), unique("user"), *statements).credentials


def allow(actions: Any, resources: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def attempts_of(client: Any, call: Callable[[Any], Any]) -> tuple[ClientError, int]:
    """The error `call(client)` raises, and how many HTTP requests the client sent for it."""
    sent: list[str] = []

    def count(**_: Any) -> None:
        sent.append("request")

    client.meta.events.register("before-send", count)
    try:
        with pytest.raises(ClientError) as raised:
            call(client)
    finally:
        client.meta.events.unregister("before-send", count)
    return raised.value, len(sent)


# --- services local mode does not emulate ---------------------------------------------------------

# (service, a call, its protocol in botocore's model) - one of each protocol the clients speak.
NOT_EMULATED = [
    ("sns", lambda c: c.list_topics(), "query"),
    ("kinesis", lambda c: c.list_streams(), "json"),
    ("appsync", lambda c: c.list_graphql_apis(), "rest-json"),
    ("route53", lambda c: c.list_hosted_zones(), "rest-xml"),
    ("ec2", lambda c: c.describe_vpcs(), "ec2"),
]


@pytest.mark.parametrize(("service", "call", "protocol"), NOT_EMULATED, ids=[c[2] for c in NOT_EMULATED])
def test_a_service_local_mode_does_not_emulate_answers_once_in_its_own_protocol(
    emulator: Emulator, service: str, call: Callable[[Any], Any], protocol: str
) -> None:
    # GIVEN a user whose policy allows everything (IAM is not what stops it)
    client = emulator.client(service, user(emulator, allow("*", "*")))

    # WHEN it calls a service local mode does not emulate
    error, attempts = attempts_of(client, call)

    # THEN botocore reads the error, which says so, after one request
    assert error.response["Error"]["Code"] == "NotEmulated", (protocol, error.response)
    assert f"local mode does not emulate {service}" in error.response["Error"]["Message"], protocol
    assert attempts == 1, protocol


@pytest.mark.parametrize(("service", "call", "protocol"), NOT_EMULATED, ids=[c[2] for c in NOT_EMULATED])
def test_a_key_the_emulator_did_not_issue_is_refused_in_the_services_own_protocol(
    emulator: Emulator, service: str, call: Callable[[Any], Any], protocol: str
) -> None:
    stranger = Credentials("AKIAUNKNOWN0000000000", "not-a-secret-the-emulator-knows")
    error, attempts = attempts_of(emulator.client(service, stranger), call)
    assert error.response["Error"]["Code"] == "InvalidClientTokenId", (protocol, error.response)
    assert attempts == 1, protocol


@pytest.mark.parametrize("service", ["braket", "pricing"])
def test_a_service_moto_lacks_answers_the_administrator_once_in_its_own_protocol(
    emulator: Emulator, service: str
) -> None:
    calls = {"braket": lambda c: c.search_devices(filters=[]), "pricing": lambda c: c.describe_services()}
    error, attempts = attempts_of(emulator.client(service), calls[service])
    assert error.response["Error"]["Code"] == "NotEmulated", error.response
    assert f"local mode does not emulate {service}" in error.response["Error"]["Message"]
    assert attempts == 1


# --- S3: a missing key ----------------------------------------------------------------------------


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(emulator: Emulator) -> None:
    # GIVEN a bucket, a user allowed to read its objects only, and one allowed to list it too
    bucket, admin = unique("answers"), emulator.client("s3")
    admin.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    admin.put_object(Bucket=bucket, Key="present.csv", Body=b"a\n")
    objects = f"arn:aws:s3:::{bucket}/*"
    reader = emulator.client("s3", user(emulator, allow("s3:GetObject", objects)))
    lister = emulator.client(
        "s3", user(emulator, allow("s3:GetObject", objects), allow("s3:ListBucket", f"arn:aws:s3:::{bucket}"))
    )

    def answer(client: Any, call: str) -> tuple[int, str]:
        with pytest.raises(ClientError) as raised:
            getattr(client, call)(Bucket=bucket, Key="missing.csv")
        return raised.value.response["ResponseMetadata"]["HTTPStatusCode"], raised.value.response["Error"]["Code"]

    # WHEN each asks for a key that does not exist
    # THEN the reader learns nothing of what the bucket holds; the lister is told the key is missing
    assert answer(reader, "get_object") == (403, "AccessDenied")
    assert answer(reader, "head_object") == (403, "403")  # a HEAD answer has no body: the status is the code
    assert answer(lister, "get_object") == (404, "NoSuchKey")
    assert answer(lister, "head_object") == (404, "404")
    assert reader.get_object(Bucket=bucket, Key="present.csv")["Body"].read() == b"a\n"
    anywhere = emulator.client("s3", user(emulator, allow("s3:GetObject", "*")))
    with pytest.raises(ClientError) as no_bucket:  # a missing bucket stays NoSuchBucket
        anywhere.get_object(Bucket=unique("nowhere"), Key="missing.csv")
    assert no_bucket.value.response["Error"]["Code"] == "NoSuchBucket"


# --- DynamoDB: expression attributes no expression uses ---------------------------------------------


@pytest.fixture(scope="module")
def table(emulator: Emulator) -> str:
    name = unique("answers")
    emulator.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


UNUSED = {":unused": {"S": "x"}, ":other": {"N": "1"}}
# (operation, request) - accepted as they are (`absent` is an attribute no item has), refused with two
# values added that no expression uses; moto accepted those (it checks
# UpdateItem's values only).
UNUSED_VALUES: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
    (
        "put_item",
        lambda t: {"TableName": t, "Item": {"pk": {"S": "p"}}, "ConditionExpression": "attribute_not_exists(absent)"},
    ),
    (
        "delete_item",
        lambda t: {"TableName": t, "Key": {"pk": {"S": "p"}}, "ConditionExpression": "attribute_not_exists(absent)"},
    ),
    (
        "query",
        lambda t: {
            "TableName": t,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "p"}},
        },
    ),
    (
        "scan",
        lambda t: {"TableName": t, "FilterExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}},
    ),
    (
        "transact_write_items",
        lambda t: {
            "TransactItems": [
                {
                    "Put": {
                        "TableName": t,
                        "Item": {"pk": {"S": "p"}},
                        "ConditionExpression": "attribute_not_exists(absent)",
                    }
                }
            ]
        },
    ),
]


def _with_unused(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    if operation == "transact_write_items":
        put = request["TransactItems"][0]["Put"]
        put["ExpressionAttributeValues"] = {**put.get("ExpressionAttributeValues", {}), **UNUSED}
        return request
    return {**request, "ExpressionAttributeValues": {**request.get("ExpressionAttributeValues", {}), **UNUSED}}


@pytest.mark.parametrize(("operation", "request_of"), UNUSED_VALUES, ids=[case[0] for case in UNUSED_VALUES])
def test_an_unused_expression_attribute_value_is_a_validation_exception(
    emulator: Emulator, table: str, operation: str, request_of: Callable[[str], dict[str, Any]]
) -> None:
    client = emulator.client("dynamodb")
    getattr(client, operation)(**request_of(table))  # every value used: accepted

    with pytest.raises(ClientError) as refused:
        getattr(client, operation)(**_with_unused(operation, request_of(table)))

    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert (
        error["Message"] == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:other, :unused}"
    )
