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

import os
import re
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import unquote

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError, ServiceError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.conditions import Key

from handlers.common.aws import client_config
from handlers.common.dynamo import plain
from handlers.common.jobs import RECENT_JOBS_PARTITION, RECENT_JOBS_PK, job_key, public_view
from handlers.common.validation import InvalidValue, normalize_email
from handlers.query.routes import GET_RESOURCES, PRIVATE_HEADERS
from handlers.query.tokens import BY_EMAIL, BY_UPLOAD_TIME, InvalidToken, PageKey, decode_token, encode_token

DEFAULT_LIMIT, MAX_LIMIT = 25, 100
USER_FIELDS = ("email", "name", "phone", "updatedAt", "uploadedAt", "sourceKey", "jobId", "row")
JOB_ID = re.compile(r"[0-9a-f]{32}")
# The API's resources that serve GET (infra/api.py declares them, each with `ANY` beside its GET):
# API Gateway names the one a request reached in the event's `resource`, so an unknown path (404)
# is told from a known one asked with another method (405) by the gateway's routing, not by a
# second reading of the path here.


logger = Logger()
app = APIGatewayRestResolver()

USERS_TABLE = os.environ["USERS_TABLE"]
JOBS_TABLE = os.environ["JOBS_TABLE"]
# The jobs table's index of job records by upload time (infra/tables.py declares it).
JOBS_INDEX = os.environ["JOBS_INDEX"]
# What a `/jobs` page token is bound to: the index, so a `/users` token is refused there.
JOBS_INDEX_SCOPE = f"{JOBS_TABLE}/index/{JOBS_INDEX}"
_dynamodb = boto3.resource("dynamodb", config=client_config())
users = _dynamodb.Table(USERS_TABLE)
jobs = _dynamodb.Table(JOBS_TABLE)


class Missing(ServiceError):
    """404 for an absent user or job. (Powertools routes its own `NotFoundError` to the
    unknown-route handler, which must tell 404 from 405 by path alone.)"""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


def user_view(item: dict[str, Any]) -> dict[str, Any]:
    return {field: plain(item.get(field)) for field in USER_FIELDS}


def job_view(item: dict[str, Any]) -> dict[str, Any]:
    return plain(public_view(item))


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        # The value is not repeated: a caller's input never comes back in an error.
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def no_route(method: str) -> str:
    return f"no route {method} here; the API serves GET {', '.join(GET_RESOURCES)}"


def routed_to(resource: str) -> None:
    """Serve a route only when API Gateway routed the request to its resource: the resolver
    matches the raw path its own way (`%2F` is no separator, `/users//` is `/users`), the gateway
    another (`/users/a%2Fb` and `/users//` reach `/{proxy+}`), and the gateway's routing is the API."""
    if app.current_event.resource != resource:
        raise Missing(no_route(app.current_event.http_method))


@app.get("/users/<email>")
def get_user(email: str) -> dict[str, Any]:
    routed_to("/users/{email}")
    try:
        # A path segment is percent-encoded, and '+' in it is a plus (emails may hold one), not a space.
        key = normalize_email(unquote(email))
    except InvalidValue as invalid:
        raise BadRequestError(str(invalid)) from None
    item = users.get_item(Key={"email": key}).get("Item")
    if item is None:
        raise Missing("no user with that email")  # errors never repeat personal data
    return user_view(item)


def page_of(
    read: Callable[..., dict[str, Any]], scope: str, key: PageKey, view: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """One page of a listing, `?limit=&startKey=` taken from the request: `read` is the table's
    scan or query, called with `Limit` and the token's `ExclusiveStartKey`."""
    request: dict[str, Any] = {"Limit": parse_limit(app.current_event.get_query_string_value("limit"))}
    token = app.current_event.get_query_string_value("startKey")
    if token:
        try:
            request["ExclusiveStartKey"] = decode_token(scope, token, key)
        except InvalidToken as invalid:
            raise BadRequestError(str(invalid)) from None
    page = read(**request)
    items = [view(item) for item in page.get("Items", [])]
    last = page.get("LastEvaluatedKey")
    return {"items": items, "count": len(items), "nextToken": encode_token(scope, last, key) if last else None}


@app.get("/users")
def list_users() -> dict[str, Any]:
    routed_to("/users")
    return page_of(users.scan, USERS_TABLE, BY_EMAIL, user_view)


@app.get("/jobs")
def list_jobs() -> dict[str, Any]:
    routed_to("/jobs")
    # Only job records carry the index's keys (chunk markers do not), all under one partition
    # value, sorted by upload time: read backwards, the newest first. Never a scan of the table.
    newest_first = partial(
        jobs.query,
        IndexName=JOBS_INDEX,
        KeyConditionExpression=Key(RECENT_JOBS_PK).eq(RECENT_JOBS_PARTITION),
        ScanIndexForward=False,
    )
    return page_of(newest_first, JOBS_INDEX_SCOPE, BY_UPLOAD_TIME, job_view)


@app.get("/jobs/<jobId>")
def get_job(jobId: str) -> dict[str, Any]:  # noqa: N803 (route parameter name)
    routed_to("/jobs/{jobId}")
    job_id = unquote(jobId)
    # Job ids are 32 hex digits; anything else cannot exist (and DynamoDB refuses keys over 2 KB).
    # Only a well-formed id is repeated in the error: anything else in its place may be what the
    # caller should not see again (an email typed in the wrong route).
    if not JOB_ID.fullmatch(job_id):
        raise Missing("no job with that id")
    item = jobs.get_item(Key=job_key(job_id)).get("Item")
    if item is None:
        raise Missing(f"no job {job_id}")
    return job_view(item)


def _error(status: int, message: str) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body={"statusCode": status, "message": message}
    )


@app.not_found
def not_found(_error_: NotFoundError) -> Response:
    """The request reached the function but none of its routes. Messages name the resource
    template, never the path: a path holds an email."""
    resource, method = app.current_event.resource, app.current_event.http_method
    if resource not in GET_RESOURCES:
        return _error(404, no_route(method))
    if method == "GET":
        # The gateway routed a GET to one of ours, but its path parameter is not one the route can
        # read (a character no email or job id holds): the caller's input is at fault.
        return _error(400, f"the path is not a valid {resource}")
    response = _error(405, f"{method} is not allowed on {resource}; use GET")
    response.headers["Allow"] = "GET"
    return response


@app.exception_handler(ServiceError)
def service_error(error: ServiceError) -> Response:
    return _error(error.status_code, error.msg)


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response:
    logger.exception("unexpected error")  # carries the request id (correlation id) and the trace
    return _error(500, "internal error")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    # Here, once, after routes, error handlers and the not-found handler alike have answered. The
    # REST resolver answers in `multiValueHeaders`, which API Gateway's proxy output format reads
    # (and prefers to `headers` for a name in both):
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format
    response.setdefault("multiValueHeaders", {}).update({name: [value] for name, value in PRIVATE_HEADERS.items()})
    return response
