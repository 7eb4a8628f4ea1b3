"""Requests a handler builds in DynamoDB's wire format, sent as the JSON they already are.

DynamoDB speaks JSON: a request's body is its parameters as a JSON object
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.LowLevelAPI.html).
botocore's serializer makes that body by walking the operation's model for every value, which for a
batch of 25 PartiQL statements costs four times the `json.dumps` of the same parameters: most of the
worker's CPU per row once its writes were batched. For the operations named here, whose parameters the
caller builds as JSON values already (strings, numbers' strings, booleans, lists and maps: no blob,
which only botocore's serializer turns into base64, and which `json.dumps` refuses), the body is
`json.dumps` of the parameters, as botocore would make it. Their answers, read by `json.loads` as
they come: botocore's parser walks the model for every value of them too (a `BatchGetItem` of 100
keys: half its CPU). Values stay as the JSON has them: a blob would stay base64 text where botocore
decodes it, and the callers read strings only (`rowVersion`, `email`). Errors (any status from 300 up)
are parsed by botocore as ever, so a refused call raises the same `ClientError`.

Three of botocore's documented events
(https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html), on this client only:
`before-parameter-build` keeps the body and leaves botocore only the bulky member's outline to
serialize (its headers, target and endpoint come out as ever: a `BatchGetItem`'s table names, which
its endpoint rules read, stay); `before-call`, after serialization and before signing, puts the body
in; `before-parse` reads a success's body, leaving botocore an empty object to parse (its
`ResponseMetadata` comes out as ever) and the body read to add to what it returns. Validation of
parameters is off on such a client: the service validates the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

_BODY = "wire_json_body"
"""Where the body waits, in the call's request context, between the two events."""


def _outline_of_batch_execute_statement(params: dict[str, Any]) -> None:
    params["Statements"] = []


def _outline_of_batch_get_item(params: dict[str, Any]) -> None:
    # The table names stay: the endpoint rules read them (`ResourceArnList`).
    params["RequestItems"] = {table: {"Keys": []} for table in params["RequestItems"]}


OUTLINES: Mapping[str, Callable[[dict[str, Any]], None]] = {
    "BatchExecuteStatement": _outline_of_batch_execute_statement,
    "BatchGetItem": _outline_of_batch_get_item,
}
"""The operations sent as built, each with what it leaves botocore to serialize: its bulky member emptied."""


def send_as_built(client: Any) -> None:
    """Send `OUTLINES`' operations of this DynamoDB `client` with `json.dumps` of their parameters as the body."""
    protocol = getattr(client.meta.service_model, "resolved_protocol", client.meta.service_model.protocol)
    if protocol != "json":
        raise ValueError(f"{client.meta.service_model.service_name} speaks {protocol!r}, not JSON")
    service = client.meta.service_model.service_id.hyphenize()
    events = client.meta.events
    for operation, outline in OUTLINES.items():
        events.register(f"before-parameter-build.{service}.{operation}", _keep_body(outline))
        events.register(f"before-call.{service}.{operation}", _put_body)
        events.register(f"before-parse.{service}.{operation}", _read_answer)


def _keep_body(outline: Callable[[dict[str, Any]], None]) -> Callable[..., None]:
    def keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # botocore's own call of json.dumps, with its defaults (JSONSerializer.serialize_to_request).
        context[_BODY] = json.dumps(params).encode("utf-8")
        outline(params)

    return keep


def _put_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    params["body"] = context.pop(_BODY)


def _read_answer(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict["status_code"] < 300:
        customized_response_dict.update(json.loads(response_dict["body"]))
        response_dict["body"] = b"{}"
