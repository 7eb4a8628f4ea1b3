"""Query API (API Gateway REST proxy): users by email, users by page, jobs by id, jobs by page.

- `GET /users/{email}` → 200 user | 400 not an email | 404
- `GET /users?limit=&startKey=` → 200 `{"items", "count", "nextToken"}` | 400 bad limit or token
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
from handlers.common.validation import InvalidValue, normalize_email
from handlers.query.routes import GET_RESOURCES, PRIVATE_HEADERS
from handlers.query.tokens import BY_EMAIL, BY_UPLOAD_TIME, InvalidToken, PageKey, decode_token, encode_token

# A page of at most 500: a full listing goes in few requests, each costing the same whatever it holds,
# and a page stays within what a synchronous invocation may answer (6 MB,
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html) however its fields are
# escaped: at worst about 10 KB a user, and a Scan reads at most 1 MB a call
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html).
DEFAULT_LIMIT, MAX_LIMIT = 25, 500
USER_FIELDS = ("email", "name", "phone", "updatedAt", "uploadedAt", "sourceKey", "jobId", "row")
JOB_ID = re.compile(r"[0-9a-f]{32}")
# The API's resources that serve GET (infra/api.py declares them, each with `ANY` beside its GET):
# API Gateway names the one a request reached in the event's `resource`, so an unknown path (404)
# is told from a known one asked with another method (405) by the gateway's routing, not by a
# second reading of the path here.


logger = Logger()

USERS_TABLE = os.environ["USERS_TABLE"]
JOBS_TABLE = os.environ["JOBS_TABLE"]
# The jobs table's index of job records by upload time (infra/tables.py declares it).
JOBS_INDEX = os.environ["JOBS_INDEX"]
# What a `/jobs` page token is bound to: the index, so a `/users` token is refused there.
JOBS_INDEX_SCOPE = f"{JOBS_TABLE}/index/{JOBS_INDEX}"
# Low-level, in wire format: keys go out through `to_wire_key`, items come back through `from_wire`
# (plain Python values), so that nothing of boto3 is imported (`handlers/common/aws.py`).
_dynamodb = botocore_client("dynamodb", client_config())
users = Table(_dynamodb, USERS_TABLE)
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
# this API: a `<name>` segment is one or more URI characters (RFC 3986's unreserved and sub-delims,
# ':' and '@', and what API Gateway hands over decoded: '%<> []{}|^'), never '/'; trailing slashes
# are ignored; the method compared in upper case; routes without a parameter tried first. The
# resolver itself is not imported: its package (every resolver and every event class Powertools
# has) was a third of this function's cold start, for four GET routes.
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
_ROUTES: list[tuple[re.Pattern[str], Callable[..., dict[str, Any]]]] = []


def get(rule: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Serve GET on `rule` (`/users/<email>`): the route is called with the request and its segments."""

    def register(route: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        segments = re.sub(r"<(\w+)>", lambda name: f"(?P<{name[1]}>{_SEGMENT})", rule.rstrip("/"))
        pattern = re.compile(f"^{segments}/*$")
        _ROUTES.append((pattern, route))
        _ROUTES.sort(key=lambda entry: bool(entry[0].groupindex))  # stable: static ones first
        return route

    return register


def resolve(event: dict[str, Any]) -> dict[str, Any]:
    """The proxy response for `event`: its route's JSON, or an error answered as JSON."""
    method, path = event["httpMethod"].upper(), event["path"]
    request = Request(event)
    try:
        for pattern, route in _ROUTES if method == "GET" else ():
            if matched := pattern.match(path):
                return answer(200, route(request, **matched.groupdict()))
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


def user_view(item: dict[str, Any]) -> dict[str, Any]:
    return {field: item.get(field) for field in USER_FIELDS}


def job_view(item: dict[str, Any]) -> dict[str, Any]:
    return public_view(item)


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        # The value is not repeated: a caller's input never comes back in an error.
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def no_route(method: str) -> str:
    return f"no route {method} here; the API serves GET {', '.join(GET_RESOURCES)}"


def routed_to(request: Request, resource: str) -> None:
    """Serve a route only when API Gateway routed the request to its resource: the path is matched
    its own way here (`%2F` is no separator, `/users//` is `/users`), the gateway's another
    (`/users/a%2Fb` and `/users//` reach `/{proxy+}`), and the gateway's routing is the API."""
    if request.resource != resource:
        raise Missing(no_route(request.method))


@get("/users/<email>")
def get_user(request: Request, email: str) -> dict[str, Any]:
    routed_to(request, "/users/{email}")
    try:
        # A path segment is percent-encoded, and '+' in it is a plus (emails may hold one), not a space.
        key = normalize_email(unquote(email))
    except InvalidValue as invalid:
        raise BadRequest(str(invalid)) from None
    item = from_wire(users.get_item(Key=to_wire_key({"email": key})).get("Item"))
    if item is None:
        raise Missing("no user with that email")  # errors never repeat personal data
    return user_view(item)


def page_of(
    request: Request,
    read: Callable[..., dict[str, Any]],
    scope: str,
    key: PageKey,
    view: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """One page of a listing, `?limit=&startKey=` taken from the request: `read` is the table's
    scan or query, called with `Limit` and the token's `ExclusiveStartKey`."""
    page_request: dict[str, Any] = {"Limit": parse_limit(request.query("limit"))}
    token = request.query("startKey")
    if token:
        try:
            page_request["ExclusiveStartKey"] = to_wire_key(decode_token(scope, token, key))
        except InvalidToken as invalid:
            raise BadRequest(str(invalid)) from None
    page = read(**page_request)
    items = [view(from_wire(item) or {}) for item in page.get("Items", [])]
    last = from_wire(page.get("LastEvaluatedKey"))
    return {"items": items, "count": len(items), "nextToken": encode_token(scope, last, key) if last else None}


@get("/users")
def list_users(request: Request) -> dict[str, Any]:
    routed_to(request, "/users")
    return page_of(request, users.scan, USERS_TABLE, BY_EMAIL, user_view)


@get("/jobs")
def list_jobs(request: Request) -> dict[str, Any]:
    routed_to(request, "/jobs")
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


@get("/jobs/<jobId>")
def get_job(request: Request, jobId: str) -> dict[str, Any]:  # noqa: N803 (route parameter name)
    routed_to(request, "/jobs/{jobId}")
    job_id = unquote(jobId)
    # Job ids are 32 hex digits; anything else cannot exist (and DynamoDB refuses keys over 2 KB).
    # Only a well-formed id is repeated in the error: anything else in its place may be what the
    # caller should not see again (an email typed in the wrong route).
    if not JOB_ID.fullmatch(job_id):
        raise Missing("no job with that id")
    item = from_wire(jobs.get_item(Key=to_wire_key(job_key(job_id))).get("Item"))
    if item is None:
        raise Missing(f"no job {job_id}")
    return job_view(item)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return answer(status, {"statusCode": status, "message": message}, headers)


def not_found(request: Request) -> dict[str, Any]:
    """The request reached the function but none of its routes. Messages name the resource
    template, never the path: a path holds an email."""
    resource, method = request.resource, request.method
    if resource not in GET_RESOURCES:
        return _error(404, no_route(method))
    if method == "GET":
        # The gateway routed a GET to one of ours, but its path parameter is not one the route can
        # read (a character no email or job id holds): the caller's input is at fault.
        return _error(400, f"the path is not a valid {resource}")
    return _error(405, f"{method} is not allowed on {resource}; use GET", {"Allow": "GET"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(event)


cold_start.loaded()  # the last statement of the module: everything above is loaded
