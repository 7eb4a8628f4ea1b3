"""Requests sent as built (`handlers.common.wire_json`): the same request botocore's serializer makes."""

from __future__ import annotations

import json
import zlib
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from handlers.common.aws import botocore_client, client_config
from handlers.common.schema import DEFAULT_SCHEMA
from handlers.common.wire_json import send_as_built
from handlers.worker.writes import ItemLayout, Statements
from local import sigv4


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class Captured:
    """Every request a client sends, answered with `answer` (and `status`) and never sent."""

    def __init__(self, client: Any, answer: dict[str, Any], status: int = 200) -> None:
        self.requests: list[Any] = []
        self._answer, self._status = json.dumps(answer).encode(), status
        headers = {"x-amzn-RequestId": "R1", "x-amz-crc32": str(zlib.crc32(self._answer))}
        self._headers = headers
        client.meta.events.register("before-send.dynamodb", self._send)

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(request)
        return AWSResponse(request.url, self._status, self._headers, _Body(self._answer))


def client(
    aws_credentials: None, *, as_built: bool, answer: dict[str, Any] | None = None, status: int = 200
) -> tuple[Any, Captured]:
    # Its own session and keys: the handlers' shared session may hold another test's credentials.
    made = botocore.session.Session().create_client(
        "dynamodb",
        config=client_config(attempts=1, validate=not as_built),
        aws_access_key_id="testing",
        aws_secret_access_key=SECRET,
    )
    if as_built:
        send_as_built(made)
    return made, Captured(made, answer or {}, status)


SECRET = "wire-json-test-secret"
STATEMENTS = Statements("users", ItemLayout(DEFAULT_SCHEMA))
BATCH = [
    {
        "Statement": STATEMENTS.insert((True,)),  # with a phone
        "Parameters": [{"S": f"v{i}"} for i in range(10)] + [{"N": "7"}, {"S": "+4915112345678"}],
    },
    {
        "Statement": STATEMENTS.update((False,)),  # without one
        "Parameters": [{"S": "Zoë ✓"}] * 9 + [{"N": "12"}, {"S": "a@example.com"}, {"S": "v"}, {"S": "w"}],
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    },
]
READ = {
    "users": {
        "Keys": [{"email": {"S": f"p{i}@example.com"}} for i in range(100)],
        "ProjectionExpression": "#e, #v",
        "ExpressionAttributeNames": {"#e": "email", "#v": "rowVersion"},
        "ConsistentRead": False,
    },
    "arn:aws:dynamodb:eu-west-1:123456789012:table/other": {"Keys": [{"email": {"S": "x@example.com"}}]},
}
CALLS = [
    ("batch_execute_statement", {"Statements": BATCH}),
    ("batch_execute_statement", {"Statements": BATCH, "ReturnConsumedCapacity": "TOTAL"}),
    ("batch_get_item", {"RequestItems": READ}),
]


@pytest.mark.parametrize(("operation", "params"), CALLS, ids=["statements", "statements+capacity", "reads"])
def test_a_request_sent_as_built_is_the_request_botocore_makes(aws_credentials, operation, params):
    requests = []
    for as_built in (False, True):
        made, captured = client(aws_credentials, as_built=as_built)
        getattr(made, operation)(**json.loads(json.dumps(params)))
        [request] = captured.requests
        requests.append(request)
    serialized, built = requests

    assert json.loads(built.body) == json.loads(serialized.body) == params
    assert built.url == serialized.url
    for header in ("X-Amz-Target", "Content-Type", "Content-Length"):
        assert built.headers[header] == serialized.headers[header]
    signed_over_the_body_sent(serialized)
    signed_over_the_body_sent(built)


def signed_over_the_body_sent(request: Any) -> None:
    """The request's SigV4 signature verifies over the body it carries (signing came after the body)."""
    headers = {"host": urlsplit(request.url).netloc, **{k: _text(v) for k, v in request.headers.items()}}
    received = sigv4.Request.of(request.method, request.url, headers, request.body)
    signature = sigv4.parse(received)
    assert signature is not None
    sigv4.verify(signature, SECRET, received)
    tampered = sigv4.Request.of(received.method, request.url, received.headers, request.body + b" ")
    with pytest.raises(sigv4.Refused):
        sigv4.verify(signature, SECRET, tampered)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_the_parameters_the_caller_passed_are_left_as_they_were(aws_credentials):
    made, _ = client(aws_credentials, as_built=True)
    params = {"Statements": json.loads(json.dumps(BATCH))}
    made.batch_execute_statement(**params)
    assert params == {"Statements": BATCH}


def test_a_blob_is_refused_rather_than_sent_unencoded(aws_credentials):
    # botocore base64-encodes a B value; json.dumps cannot, and refuses it: no request goes out.
    made, captured = client(aws_credentials, as_built=True)
    statement = {"Statement": STATEMENTS.insert((False,)), "Parameters": [{"B": b"\x00\x01"}] * 10 + [{"N": "1"}]}
    with pytest.raises(TypeError, match="bytes"):
        made.batch_execute_statement(Statements=[statement])
    assert captured.requests == []


def test_other_operations_are_serialized_by_botocore(aws_credentials):
    made, captured = client(aws_credentials, as_built=True)
    made.put_item(TableName="users", Item={"email": {"S": "a@example.com"}, "blob": {"B": b"\x00"}})
    [request] = captured.requests
    assert json.loads(request.body)["Item"]["blob"] == {"B": "AA=="}


def test_only_a_json_service_is_sent_as_built(aws_credentials):
    s3 = botocore_client("s3", client_config())
    with pytest.raises(ValueError, match="not JSON"):
        send_as_built(s3)


STORED = {"email": {"S": "a@example.com"}, "rowVersion": {"S": "v9"}, "row": {"N": "3"}, "name": {"S": "Zoë"}}
ANSWERS = [
    (
        "batch_execute_statement",
        {"Statements": BATCH},
        {
            "Responses": [
                {"TableName": "users"},
                {"TableName": "users", "Error": {"Code": "ConditionalCheckFailed", "Message": "m", "Item": STORED}},
                {"Error": {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}},
            ],
            "ConsumedCapacity": [{"TableName": "users", "CapacityUnits": 3.0}],
        },
    ),
    (
        "batch_get_item",
        {"RequestItems": READ},
        {
            "Responses": {"users": [STORED, {"email": {"S": "b@example.com"}}]},
            "UnprocessedKeys": {"users": {"Keys": [{"email": {"S": "c@example.com"}}], "ConsistentRead": False}},
        },
    ),
]


@pytest.mark.parametrize(("operation", "params", "answer"), ANSWERS, ids=["statements", "reads"])
def test_an_answer_read_as_built_is_the_answer_botocore_parses(aws_credentials, operation, params, answer):
    parsed = []
    for as_built in (False, True):
        made, _ = client(aws_credentials, as_built=as_built, answer=answer)
        parsed.append(getattr(made, operation)(**params))
    by_botocore, read = parsed

    assert read == by_botocore
    assert read["ResponseMetadata"]["RequestId"] == "R1"
    assert {key: value for key, value in read.items() if key != "ResponseMetadata"} == answer


def test_a_refused_call_raises_as_botocore_makes_it(aws_credentials):
    refusal = {"__type": "com.amazonaws.dynamodb.v20120810#ValidationException", "message": "too many"}
    made, _ = client(aws_credentials, as_built=True, answer=refusal, status=400)
    with pytest.raises(ClientError) as raised:
        made.batch_execute_statement(Statements=BATCH)
    assert raised.value.response["Error"] == {"Code": "ValidationException", "Message": "too many"}


def test_a_stored_blob_is_read_as_its_base64_text_where_botocore_decodes_it(aws_credentials):
    # The module's documented difference: callers read strings only, and a blob (someone else's
    # attribute) stays the JSON's base64 text rather than botocore's bytes.
    answer = {"Responses": {"users": [{"email": {"S": "a@example.com"}, "photo": {"B": "AAE="}}]}}
    read = []
    for as_built in (False, True):
        made, _ = client(aws_credentials, as_built=as_built, answer=answer)
        read.append(made.batch_get_item(RequestItems=READ)["Responses"]["users"][0]["photo"])

    assert read == [{"B": b"\x00\x01"}, {"B": "AAE="}]
