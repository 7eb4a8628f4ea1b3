"""Errors in the wire protocol of the client that sent a request, for services local mode does not emulate.

An SDK parses an error by its service's protocol (botocore's model: `metadata.protocol`, or the first of
`metadata.protocols` it supports): XML for `query`, `ec2` and `rest-xml`, JSON for `json` and `rest-json`,
CBOR for `smithy-rpc-v2-cbor`. An answer it cannot parse is a transient failure to botocore ("invalid XML
received. Further retries may succeed"), retried until its attempts run out, so a function calling SNS
locally looped on it instead of stopping on an error. The request itself says which protocol its client
chose when the model lists several (`X-Amz-Target` for JSON, `smithy-protocol` for CBOR, a form body for
query); otherwise the service's model, read by botocore's loader under the request's signing name, does.
The shapes are those of AWS's protocol specifications as botocore's parsers read them
(https://smithy.io/2.0/aws/protocols/aws-query-protocol.html#operation-error-serialization,
https://smithy.io/2.0/aws/protocols/aws-ec2-query-protocol.html#operation-error-serialization,
https://smithy.io/2.0/aws/protocols/aws-restxml-protocol.html#error-response-serialization,
https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html#operation-error-serialization,
https://smithy.io/2.0/aws/protocols/aws-restjson1-protocol.html#operation-error-serialization,
https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html#operation-error-serialization).
"""

from __future__ import annotations

import functools
import json
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass

XML_PROTOCOLS = frozenset({"query", "ec2", "rest-xml"})


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@functools.lru_cache(maxsize=256)
def model_protocols(signing_name: str) -> tuple[str, ...]:
    """The protocols botocore's model of the service named `signing_name` lists, () when it has none
    by that name (most services' signing name is their model's name: sns, kinesis, route53, ec2)."""
    import botocore.session
    from botocore.exceptions import DataNotFoundError

    loader = botocore.session.get_session().get_component("data_loader")
    try:
        metadata = loader.load_service_model(signing_name, "service-2")["metadata"]
    except (DataNotFoundError, ValueError):
        return ()
    return tuple(metadata.get("protocols") or [metadata.get("protocol", "")])


def protocol_of(signing_name: str, headers: Mapping[str, str]) -> str:
    """The protocol the request's client speaks (header names lower-case)."""
    if headers.get("smithy-protocol", "").lower() == "rpc-v2-cbor":
        return "smithy-rpc-v2-cbor"
    if "x-amz-target" in headers:
        return "json"
    listed = model_protocols(signing_name)
    form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    if form and "ec2" in listed:
        return "ec2"
    if form or "query" in listed[:1]:
        return "query"
    if listed and listed[0] in ("rest-xml", "rest-json", "ec2"):
        return listed[0]
    return "rest-json"


def error(signing_name: str, headers: Mapping[str, str], status: int, code: str, message: str) -> Answer:
    """An error with `code` and `message` in the protocol of the request's client."""
    protocol = protocol_of(signing_name, headers)
    request_id = f"{time.time_ns():032x}"[-32:]
    sender = "Receiver" if status >= 500 else "Sender"
    text = _xml(message)
    if protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{text}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        return Answer(status, [("Content-Type", "text/xml")], body.encode())
    if protocol in XML_PROTOCOLS:
        body = (
            f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code><Message>{text}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return Answer(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body.encode())
    if protocol == "smithy-rpc-v2-cbor":
        body = _cbor_map({"__type": code, "message": message})
        headers_out = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return Answer(status, [*headers_out, ("x-amzn-RequestId", request_id)], body)
    content_type = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
    payload = {"__type": code, "message": message}
    answer_headers = [("Content-Type", content_type), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code)]
    return Answer(status, answer_headers, json.dumps(payload).encode())


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cbor_text(text: str) -> bytes:
    """A CBOR text string (major type 3, RFC 8949 §3.1)."""
    data = text.encode()
    size = len(data)
    if size < 24:
        head = bytes([0x60 | size])
    elif size < 0x100:
        head = bytes([0x78, size])
    elif size < 0x10000:
        head = b"\x79" + struct.pack(">H", size)
    else:
        head = b"\x7a" + struct.pack(">I", size)
    return head + data


def _cbor_map(fields: Mapping[str, str]) -> bytes:
    """A CBOR map of text strings (major type 5, fewer than 24 entries)."""
    return bytes([0xA0 | len(fields)]) + b"".join(_cbor_text(k) + _cbor_text(v) for k, v in fields.items())
