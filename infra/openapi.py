"""The query API as an OpenAPI 3 document, generated from the stack's schema.

The paths are the routes the function serves and the program deploys (`handlers/query/routes.py`),
the item's schema is the schema's columns with their JSON types (`handlers/query/views.py` says
how each is answered), the key's path parameter is named by the key column's attribute. The
repository's `openapi.yaml` is the document of the default schema (the users pipeline), kept equal
to this module's output by tests/security/test_openapi.py; regenerate it with

    .venv/bin/python -m infra.openapi > openapi.yaml

and with `--schema FILE` (a schema as `csv-ingest:schema` declares it, in JSON or YAML) the document
of another schema.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from handlers.common.jobs import COMPLETE, COMPLETE_WITH_REJECTS, FAILED, PARSING, QUEUED
from handlers.common.schema import DEFAULT_SCHEMA, DELIMITERS, ENCODINGS, Column, Schema, parse_schema
from handlers.query.routes import DEFAULT_LIMIT, MAX_LIMIT, PRIVATE_HEADERS, Routes, article, routes_for
from handlers.query.views import SOURCE_FIELDS
from infra.api import STAGE_NAME

# The document's name for API Gateway's `ANY` method, as API Gateway's own exports spell it
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-any-method.html).
ANY = "x-amazon-apigateway-any-method"
# A decimal's normal form (`handlers/common/schema.py`): no exponent, no leading zero but one before
# the point, no trailing zero after it, no `+`.
DECIMAL_PATTERN = r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"


def _pascal(words: str) -> str:
    """`device-models` → `DeviceModels`, `user` → `User`: a name for operations and schemas."""
    return "".join(part[:1].upper() + part[1:] for part in words.replace("-", " ").split())


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def column_schema(column: Column, *, key: bool = False) -> dict[str, Any]:
    """The JSON schema of a column's value in an answer (`handlers/query/views.py`)."""
    kind = column.type.name
    schema: dict[str, Any] = {"type": {"integer": "integer", "boolean": "boolean"}.get(kind, "string")}
    if kind == "decimal":
        schema["pattern"] = DECIMAL_PATTERN
    elif kind in ("date", "datetime"):
        schema["format"] = "date" if kind == "date" else "date-time"
    elif kind == "enum":
        # A null must be one of the values too: `nullable` does not widen `enum` (OpenAPI 3.0.3,
        # https://spec.openapis.org/oas/v3.0.3#fixed-fields-19).
        schema["enum"] = [*column.values, *([] if column.required else [None])]
    if not column.required:
        schema["nullable"] = True
    role = f"{kind}, the key" if key else kind
    exact = " An exact decimal, as a string." if kind == "decimal" else ""
    empty = " Null when its cell was empty." if not column.required else ""
    schema["description"] = _sentence(f"The `{column.name}` column ({role}): {column.type.normal_form}") + exact + empty
    return schema


def item_schema(schema: Schema) -> dict[str, Any]:
    """An item as the API answers it: its columns, key first, then where it came from."""
    columns = [schema.columns[i] for i in schema.checked_order]
    properties: dict[str, Any] = {c.attribute: column_schema(c, key=c is schema.key_column) for c in columns}
    properties.update(
        updatedAt={"type": "string", "description": "When the row was written (ISO 8601, UTC)."},
        uploadedAt={"type": "string", "description": "When the upload it came from was made; the latest upload wins."},
        sourceKey={"type": "string", "description": "The object key of that upload."},
        jobId=_ref("schemas", "JobId"),
        row={"type": "integer", "description": "The row's number in that file (1 is the first data row)."},
    )
    assert tuple(properties)[len(columns) :] == SOURCE_FIELDS, "the answer's fields, in order"
    return {"type": "object", "required": list(properties), "additionalProperties": False, "properties": properties}


def _private_headers() -> dict[str, Any]:
    names = {"Cache-Control": "CacheControl", "X-Content-Type-Options": "ContentTypeOptions"}
    assert set(names) == set(PRIVATE_HEADERS), "every header the API sends on every answer is documented"
    return {header: _ref("headers", names[header]) for header in PRIVATE_HEADERS}


def _ok(description: str, body: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _private_headers(),
        "content": {"application/json": {"schema": _ref("schemas", body)}},
    }


def _errors(*statuses: str) -> dict[str, Any]:
    names = {
        "400": "BadRequest",
        "403": "Forbidden",
        "404": "NotFound",
        "405": "MethodNotAllowed",
        "429": "TooManyRequests",
    }
    return {status: _ref("responses", names[status]) for status in statuses}


def _any(status: str) -> dict[str, Any]:
    return {ANY: {"responses": _errors(status)}}


# The document's own names beside the collection's: its schemas and operations.
_FIXED_SCHEMAS = frozenset({"Error", "JobId", "Job", "JobPage"})
_FIXED_OPERATIONS = frozenset({"listJobs", "getJob"})


def _names(schema: Schema, routes: Routes) -> tuple[str, str]:
    """The collection's names in the document, an item's and the collection's (`User`, `Users`);
    followed by `Item`/`Items` where they would be one of the document's own names (a collection
    named `errors` or `job-ids` must not replace `Error` or `JobId`)."""
    noun, plural = _pascal(routes.noun), _pascal(schema.name)
    taken = {noun, f"{noun}Page"} & _FIXED_SCHEMAS or {f"list{plural}", f"get{noun}"} & _FIXED_OPERATIONS
    return (f"{noun}Item", f"{plural}Items") if taken else (noun, plural)


def _paths(schema: Schema, routes: Routes) -> dict[str, Any]:
    (noun, plural), key = _names(schema, routes), schema.key_column
    key_parameter = {
        "name": key.attribute,
        "in": "path",
        "required": True,
        "description": (
            f"The {key.attribute} (the `{key.name}` column, {key.type.name}), percent-encoded; normalised before"
            f" the look-up as it is stored ({key.type.normal_form}). A `+` is a plus. An encoded slash (`%2F`)"
            " separates path segments, so such a path is not this route (404)."
        ),
        "schema": {"type": "string", "minLength": 1},
    }
    page = [_ref("parameters", "limit"), _ref("parameters", "startKey")]
    return {
        "/": _any("404"),
        routes.collection: {
            "get": {
                "operationId": f"list{plural}",
                "summary": f"One page of the stored {schema.name}.",
                "parameters": page,
                "responses": {
                    "200": _ok(
                        f"A page of {schema.name}, in no particular order; `nextToken` is null on the last page.",
                        f"{noun}Page",
                    ),
                    **_errors("400", "403", "429"),
                },
            },
            **_any("405"),
        },
        routes.item: {
            "get": {
                "operationId": f"get{noun}",
                "summary": f"The {routes.noun} stored under {article(key.attribute)} {key.attribute}.",
                "parameters": [key_parameter],
                "responses": {"200": _ok(f"The {routes.noun}.", noun), **_errors("400", "403", "404", "429")},
            },
            **_any("405"),
        },
        routes.jobs: {
            "get": {
                "operationId": "listJobs",
                "summary": "One page of jobs, newest upload first.",
                "description": "Read from an eventually consistent index: a job created a moment ago may show on"
                " the next call only.",
                "parameters": page,
                "responses": {
                    "200": _ok("A page of jobs; `nextToken` is null on the last page.", "JobPage"),
                    **_errors("400", "403", "429"),
                },
            },
            **_any("405"),
        },
        routes.job: {
            "get": {
                "operationId": "getJob",
                "summary": "One job (one uploaded object version).",
                "parameters": [
                    {
                        "name": "jobId",
                        "in": "path",
                        "required": True,
                        "description": "32 hexadecimal digits; anything else is no job (404).",
                        "schema": {"type": "string", "minLength": 1},
                    }
                ],
                "responses": {"200": _ok("The job.", "Job"), **_errors("400", "403", "404", "429")},
            },
            **_any("405"),
        },
        "/{proxy+}": _any("404"),
    }


def _header(description: str, value: str) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": {"type": "string", "enum": [value]}}


def _error_response(description: str, **headers: Any) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**headers, **_private_headers()},
        "content": {"application/json": {"schema": _ref("schemas", "Error")}},
    }


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "count", "nextToken"],
        "additionalProperties": False,
        "properties": {
            "items": {"type": "array", "maxItems": MAX_LIMIT, "items": _ref("schemas", item)},
            "count": {"type": "integer"},
            "nextToken": {"type": "string", "nullable": True},
        },
    }


def _job() -> dict[str, Any]:
    """A job record's public attributes (`handlers/common/jobs.py`)."""
    integer, text = {"type": "integer"}, {"type": "string"}
    properties: dict[str, Any] = {
        "jobId": _ref("schemas", "JobId"),
        "status": {"type": "string", "enum": [PARSING, QUEUED, COMPLETE, COMPLETE_WITH_REJECTS, FAILED]},
        "bucket": text,
        "key": text,
        "versionId": {"type": "string", "nullable": True},
        "objectSize": integer,
        "sequencer": {"type": "string", "nullable": True},
        "uploadedAt": text,
        "uploadedAtMs": integer,
        "startedAt": text,
        "queuedAt": text,
        "finishedAt": text,
        **dict.fromkeys(("rowsTotal", "rowsValid", "rowsRejected", "blankLines", "chunksTotal", "chunksDone"), integer),
        "rowsWritten": integer,
        "rowsSuperseded": integer,
        "extraColumns": {"type": "array", "items": text},
        "format": {
            "type": "object",
            "description": "How the file was read: gunzipped or not, its encoding, its delimiter (detected from"
            " the header line, or fixed by the stack or a `.tsv` key).",
            "required": ["gzip", "encoding", "delimiter", "detected"],
            "additionalProperties": False,
            "properties": {
                "gzip": {"type": "boolean"},
                "encoding": {"type": "string", "enum": list(ENCODINGS)},
                "delimiter": {"type": "string", "enum": list(DELIMITERS)},
                "detected": {"type": "boolean"},
            },
        },
        "rejectsReport": {
            "type": "string",
            "description": "`s3://bucket/reports/<jobId>/`, readable only by the stack's `reportReaders`.",
        },
        "rejectsParts": integer,
        "error": {
            "type": "string",
            "description": "Why the job FAILED; names rows, lines, byte offsets and columns, never a cell.",
        },
    }
    required = ["jobId", "status", "bucket", "key"]
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


def _description(schema: Schema) -> str:
    return f"""\
Read-only access to the {schema.name} the pipeline loaded and to its jobs (infra/api.py deploys it
as an API Gateway REST API, stage `{STAGE_NAME}`, with a Lambda proxy integration:
handlers/query/app.py). Generated from the stack's schema by infra/openapi.py.

Authentication follows the stack's `apiAuth` setting. This document describes `apiKey` mode
(dev's choice): every request sends its consumer's key in the `x-api-key` header. In `iam` mode
(prod's choice) no key is sent; requests are signed with SigV4 by a principal allowed
`execute-api:Invoke` on the API, and an unsigned request gets 403 `Missing Authentication Token`,
a refused one 403 with an IAM `Message`. In `none` mode (refused unless `allowPublicApi`) nothing
is checked.

The stage throttles requests (`apiThrottleRateLimit`, `apiThrottleBurstLimit`) and, in `apiKey`
mode, each key's daily quota (`apiQuotaPerDay`): beyond either, 429. Every error body is a JSON
object with a `message`, which never repeats a key or another value from the request.
Every answer carries `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`: the
function's, errors included, and API Gateway's own (its 403, 413, 429 and 5XX), to which the
API's DEFAULT_4XX and DEFAULT_5XX gateway responses add them.
A URL over 10,240 characters is refused (414) before routing (AWS does not document whether
that answer is a gateway response; local mode gives it the DEFAULT_4XX headers).

Every other method on these paths answers 405 (with `Allow: GET`), and every other path 404,
from the function (`{ANY}`, as API Gateway exports an `ANY` method).
tests/security/test_openapi.py keeps this document identical to the deployed API.
"""


def document(schema: Schema) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the query API of a stack with `schema`."""
    routes = routes_for(schema)
    noun, _plural = _names(schema, routes)
    private = (
        "On every answer, the function's and API Gateway's own (through its DEFAULT_4XX and DEFAULT_5XX gateway"
        " responses): "
    )
    return {
        "openapi": "3.0.3",
        "info": {"title": "csv-ingest query API", "version": "1", "description": _description(schema)},
        "servers": [
            {
                "url": f"https://{{restApiId}}.execute-api.{{region}}.amazonaws.com/{STAGE_NAME}",
                "description": "The stack's `apiUrl` output.",
                "variables": {"restApiId": {"default": "example"}, "region": {"default": "eu-west-1"}},
            }
        ],
        "security": [{"apiKey": []}],
        "paths": _paths(schema, routes),
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "The consumer's key (`pulumi stack output apiKeys --show-secrets`); `apiKey` mode"
                    " only.",
                }
            },
            "headers": {
                "CacheControl": _header(
                    private + "it may hold personal data (API Gateway's 403 can name the requested path, a key),"
                    " which no cache (browser or proxy) may keep.",
                    PRIVATE_HEADERS["Cache-Control"],
                ),
                "ContentTypeOptions": _header(
                    private + "no browser may read the body as another type than its `Content-Type`.",
                    PRIVATE_HEADERS["X-Content-Type-Options"],
                ),
            },
            "parameters": {
                "limit": {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": f"Items per page (default {DEFAULT_LIMIT}); anything but a whole number from 1"
                    f" to {MAX_LIMIT} is 400.",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                },
                "startKey": {
                    "name": "startKey",
                    "in": "query",
                    "required": False,
                    "description": "The previous page's `nextToken`, as issued for this listing; a token altered,"
                    " truncated or issued for the other listing is 400. Tokens are checked, not signed: a"
                    " well-formed one naming another position of this listing is served the page after that"
                    " position.",
                    "schema": {"type": "string"},
                },
            },
            "responses": {
                "BadRequest": _error_response("A parameter is invalid (the message names the rule, never the value)."),
                "Forbidden": _error_response(
                    "No API key, or not a key of this API's usage plan (API Gateway's `Forbidden`)."
                ),
                "NotFound": _error_response(f"No such {routes.noun}, job or route."),
                "MethodNotAllowed": _error_response(
                    "A known path asked with another method than GET.",
                    Allow={"schema": {"type": "string", "enum": ["GET"]}},
                ),
                "TooManyRequests": _error_response(
                    "Beyond the stage's or the key's throttle (`Too Many Requests`) or the key's quota"
                    " (`Limit Exceeded`)."
                ),
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["message"],
                    "additionalProperties": False,
                    "properties": {
                        "message": {"type": "string"},
                        "statusCode": {
                            "type": "integer",
                            "description": "Sent by the function (not by API Gateway's own responses); the HTTP"
                            " status.",
                        },
                    },
                },
                noun: item_schema(schema),
                "JobId": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "Job": _job(),
                f"{noun}Page": _page(noun),
                "JobPage": _page("Job"),
            },
        },
    }


class _Dumper(yaml.SafeDumper):
    """YAML as people write it: text of several lines as a literal block, lists indented, no anchors."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a part used twice is written twice, not as `&id001` and `*id001`


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _text)


def render(schema: Schema) -> str:
    """The document as the YAML of `openapi.yaml`."""
    header = "# Generated from the stack's schema by infra/openapi.py: `python -m infra.openapi > openapi.yaml`.\n"
    body = yaml.dump(document(schema), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return header + body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.openapi", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--schema",
        type=Path,
        help="a file declaring the schema (JSON or YAML, as csv-ingest:schema); default: the users pipeline",
    )
    options = parser.parse_args(argv)
    schema = DEFAULT_SCHEMA if options.schema is None else parse_schema(yaml.safe_load(options.schema.read_text()))
    sys.stdout.write(render(schema))
    return 0


if __name__ == "__main__":
    sys.exit(main())
