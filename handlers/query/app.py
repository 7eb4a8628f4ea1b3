"""Query API (API Gateway REST proxy): items by key, items by page, jobs by id, jobs by page.

The items' routes follow the stack's schema (`SCHEMA`, `handlers/query/routes.py`); for the default
schema they are `/users/{email}` and `/users`:
- `GET /{name}/{key}` → 200 item | 400 not a valid key (the key column's reason) | 404
- `GET /{name}?limit=&startKey=` → 200 `{"items", "count", "nextToken"}` | 400 bad limit or token
- `GET /jobs/{jobId}` → 200 job | 404
- `GET /jobs?limit=&startKey=` → 200 `{"items", "count", "nextToken"}`, newest upload first | 400
  bad limit or token. Read from the jobs table's `recent-jobs` index, which is eventually
  consistent: a job created a moment ago may show on the next call only.
- Anything else → 404 (unknown path) or 405 (known path, other method); an unexpected error → a
  generic 500, logged with the request id.

Every answer of the function, errors included, carries `Cache-Control: no-store` and
`X-Content-Type-Options: nosniff` (`routes.PRIVATE_HEADERS`).
"""

from __future__ import annotations

# First: the collector is paused while the rest loads (handlers/common/cold_start.py).
from handlers.common import cold_start  # isort: skip

import json
import os
import re
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.common.aws import Table, botocore_client, client_config
from handlers.common.dynamo import from_wire, to_wire_key
from handlers.common.jobs import RECENT_JOBS_PARTITION, RECENT_JOBS_PK, job_key, public_view
from handlers.common.schema import from_environment, render
from handlers.common.validation import InvalidValue
from handlers.query.routes import DEFAULT_LIMIT, MAX_LIMIT, PRIVATE_HEADERS, routes_for
from handlers.query.tokens import BY_UPLOAD_TIME, InvalidToken, PageKey, by_key, decode_token, encode_token
from handlers.query.views import ItemView

JOB_ID = re.compile(r"[0-9a-f]{32}")


logger = Logger()

# The stack's schema, as the program declared it (infra/api.py sets both).
SCHEMA = from_environment(os.environ)
ITEMS_TABLE = os.environ["ITEMS_TABLE"]
# The API's resources that serve GET (infra/api.py declares them from the same schema, each with
# `ANY` beside its GET): API Gateway names the one a request reached in the event's `resource`, so
# an unknown path (404) is told from a known one asked with another method (405) by the gateway's
# routing, not by a second reading of the path here.
ROUTES = routes_for(SCHEMA)
KEY = SCHEMA.key_column
# How an item is answered (its columns typed, then where it came from), and how a page of items
# hands its last key on: as the key's normal form, bound to the items table.
item_view = ItemView(SCHEMA)
BY_ITEM_KEY = by_key(KEY)
JOBS_TABLE = os.environ["JOBS_TABLE"]
# The jobs table's index of job records by upload time (infra/tables.py declares it).
JOBS_INDEX = os.environ["JOBS_INDEX"]
# What a `/jobs` page token is bound to: the index, so an items token is refused there.
JOBS_INDEX_SCOPE = f"{JOBS_TABLE}/index/{JOBS_INDEX}"
# Low-level, in wire format: keys go out typed (`{"S": …}`, `{"N": …}`), items come back as they are
# stored and are typed by the view, so that nothing of boto3 is imported (`handlers/common/aws.py`).
_dynamodb = botocore_client("dynamodb", client_config())
items = Table(_dynamodb, ITEMS_TABLE)
jobs = Table(_dynamodb, JOBS_TABLE)


class HttpError(Exception):
    """An answer other than 200: its status and a message that never repeats the caller's input."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BadRequest(HttpError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class Missing(HttpError):
    """404 for an absent user or job, or a path no route serves."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


class Request:
    """The parts of API Gateway's proxy event (REST, payload 1.0) a route reads."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    @property
    def resource(self) -> str:
        return self.event["resource"]

    @property
    def method(self) -> str:
        return self.event["httpMethod"]

    def query(self, name: str) -> str | None:
        return (self.event.get("queryStringParameters") or {}).get(name)


# --- routing -----------------------------------------------------------------------------------
# Routes match the request's path as Powertools' `APIGatewayRestResolver` matched it when it routed
# this API: a `{parameter}` segment is one or more URI characters (RFC 3986's unreserved and sub-delims,
# ':' and '@', and what API Gateway hands over decoded: '%<> []{}|^'), never '/'; trailing slashes
# are ignored; the method compared in upper case; routes without a parameter tried first. The
# resolver itself is not imported: its package (every resolver and every event class Powertools
# has) was a third of this function's cold start, for four GET routes.
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
_ROUTES: list[tuple[re.Pattern[str], Callable[..., dict[str, Any]]]] = []


def get(resource: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Serve GET on `resource`, as API Gateway names it (`/users/{email}`): the route is called with
    the request and the path's segment of each `{parameter}`, in order."""

    def register(route: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        segments = re.sub(r"\\{\w+\\}", lambda _parameter: f"({_SEGMENT})", re.escape(resource.rstrip("/")))
        pattern = re.compile(f"^{segments}/*$")
        _ROUTES.append((pattern, route))
        _ROUTES.sort(key=lambda entry: bool(entry[0].groups))  # stable: static ones first
        return route

    return register


def resolve(event: dict[str, Any]) -> dict[str, Any]:
    """The proxy response for `event`: its route's JSON, or an error answered as JSON."""
    method, path = event["httpMethod"].upper(), event["path"]
    request = Request(event)
    try:
        for pattern, route in _ROUTES if method == "GET" else ():
            if matched := pattern.match(path):
                return answer(200, route(request, *matched.groups()))
        return not_found(request)
    except HttpError as error:
        return _error(error.status, error.message)
    except Exception:
        logger.exception("unexpected error")  # carries the request id (correlation id) and the trace
        return _error(500, "internal error")


def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A proxy response whose body is `body` as compact JSON. The REST API reads headers from
    `multiValueHeaders` (and prefers them to `headers` for a name in both); every answer, errors
    included, carries `PRIVATE_HEADERS`:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format"""
    every = {"Content-Type": "application/json", **(headers or {}), **PRIVATE_HEADERS}
    return {
        "statusCode": status,
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
        "multiValueHeaders": {name: [value] for name, value in every.items()},
    }


def job_view(item: dict[str, Any]) -> dict[str, Any]:
    """A job record (wire format) as the API answers it: its public attributes."""
    return public_view(from_wire(item) or {})


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        # The value is not repeated: a caller's input never comes back in an error.
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def no_route(method: str) -> str:
    return f"no route {method} here; the API serves GET {', '.join(ROUTES.get)}"


def routed_to(request: Request, resource: str) -> None:
    """Serve a route only when API Gateway routed the request to its resource: the path is matched
    its own way here (`%2F` is no separator, `/users//` is `/users`), the gateway's another
    (`/users/a%2Fb` and `/users//` reach `/{proxy+}`), and the gateway's routing is the API."""
    if request.resource != resource:
        raise Missing(no_route(request.method))


@get(ROUTES.item)
def get_item(request: Request, segment: str) -> dict[str, Any]:
    routed_to(request, ROUTES.item)
    try:
        # A path segment is percent-encoded, and '+' in it is a plus (emails may hold one), not a space.
        # The key is looked up in its normal form, as stored; the reason names the column and its
        # rule, never the value.
        key = KEY.normalize(unquote(segment))
    except InvalidValue as invalid:
        raise BadRequest(str(invalid)) from None
    wire_key = {KEY.attribute: {KEY.type.attribute_type: render(key)}}
    item = items.get_item(Key=wire_key).get("Item")
    if item is None:
        raise Missing(f"no {ROUTES.noun} with that {KEY.attribute}")  # errors never repeat personal data
    return item_view(item)


def page_of(
    request: Request,
    read: Callable[..., dict[str, Any]],
    scope: str,
    key: PageKey,
    view: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a listing, `?limit=&startKey=` taken from the request: `read` is the table's
    scan or query, called with `Limit` and the token's `ExclusiveStartKey`; `view` makes each item's
    answer from its wire format."""
    page_request: dict[str, Any] = {"Limit": parse_limit(request.query("limit"))}
    token = request.query("startKey")
    if token:
        try:
            page_request["ExclusiveStartKey"] = decode_token(scope, token, key)
        except InvalidToken as invalid:
            raise BadRequest(str(invalid)) from None
    page = read(**page_request)
    listed = [view(item) for item in page.get("Items", [])]
    last = page.get("LastEvaluatedKey")
    return {"items": listed, "count": len(listed), "nextToken": encode_token(scope, last, key) if last else None}


@get(ROUTES.collection)
def list_items(request: Request) -> dict[str, Any]:
    routed_to(request, ROUTES.collection)
    return page_of(request, items.scan, ITEMS_TABLE, BY_ITEM_KEY, item_view)


@get(ROUTES.jobs)
def list_jobs(request: Request) -> dict[str, Any]:
    routed_to(request, ROUTES.jobs)
    # Only job records carry the index's keys (chunk markers do not), all under one partition
    # value, sorted by upload time: read backwards, the newest first. Never a scan of the table.
    newest_first = partial(
        jobs.query,
        IndexName=JOBS_INDEX,
        KeyConditionExpression="#partition = :partition",
        ExpressionAttributeNames={"#partition": RECENT_JOBS_PK},
        ExpressionAttributeValues={":partition": {"S": RECENT_JOBS_PARTITION}},
        ScanIndexForward=False,
    )
    return page_of(request, newest_first, JOBS_INDEX_SCOPE, BY_UPLOAD_TIME, job_view)


@get(ROUTES.job)
def get_job(request: Request, segment: str) -> dict[str, Any]:
    routed_to(request, ROUTES.job)
    job_id = unquote(segment)
    # Job ids are 32 hex digits; anything else cannot exist (and DynamoDB refuses keys over 2 KB).
    # Only a well-formed id is repeated in the error: anything else in its place may be what the
    # caller should not see again (an email typed in the wrong route).
    if not JOB_ID.fullmatch(job_id):
        raise Missing("no job with that id")
    item = jobs.get_item(Key=to_wire_key(job_key(job_id))).get("Item")
    if item is None:
        raise Missing(f"no job {job_id}")
    return job_view(item)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return answer(status, {"statusCode": status, "message": message}, headers)


def not_found(request: Request) -> dict[str, Any]:
    """The request reached the function but none of its routes. Messages name the resource
    template, never the path: a path holds an email."""
    resource, method = request.resource, request.method
    if resource not in ROUTES.get:
        return _error(404, no_route(method))
    if method == "GET":
        # The gateway routed a GET to one of ours, but its path parameter is not one the route can
        # read (a character no key or job id holds): the caller's input is at fault.
        return _error(400, f"the path is not a valid {resource}")
    return _error(405, f"{method} is not allowed on {resource}; use GET", {"Allow": "GET"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(event)


cold_start.loaded()  # the last statement of the module: everything above is loaded
