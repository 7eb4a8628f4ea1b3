"""The program's REST API, served on 127.0.0.1 as API Gateway serves it.

A client of the deployed stack talks to `https://<api>.execute-api.<region>.amazonaws.com/<stage>/…`;
locally it talks to `http://127.0.0.1:<port>/<stage>/…` and must see the same answers: the same
routing (literal over `{param}` over `{proxy+}`, a method over `ANY`), the same gateway responses
(403 `Missing Authentication Token`, 403 `Forbidden`, 429 `Too Many Requests` / `Limit Exceeded`,
502 for a malformed proxy response, 504 past the integration timeout), with the headers the API's
customised gateway responses add to them, the same Lambda proxy event
(REST format 1.0) and the same checks in the same order: IAM, API key, throttling and quota, then the
function's resource policy. Everything served comes from the `RestApiSpec` the program declared
(`local.registry`); nothing here names a route of its own.

Personal data travels in paths, query strings, headers and bodies (emails are path parameters), so
this module's own log lines name the method, the resource *template*, the status and the request id,
never a value from the request.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl

from local.registry import ApiKey, ApiMethod, InvokePermission, NotEmulated, RestApiSpec, UsagePlan

_LOG = logging.getLogger(__name__)

# API Gateway ends every integration call after 29 seconds, however long the function may run
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
INTEGRATION_TIMEOUT_SECONDS = 29.0
# API Gateway's payload limit for a REST API request
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# The longest URL a regional REST API accepts, in characters
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html);
# locally the request target (stage, path and query) is counted, the scheme and host being local.
MAX_URL_CHARACTERS = 10240
# An encoded slash separates segments when a REST API matches a path to its resources, as a
# plain one does: `/users/a%2Fb` is not `/users/{email}` (AWS does not document this; it is how
# deployed REST and HTTP APIs are reported to behave, and the safer reading for a path parameter).
_ENCODED_SLASH = re.compile("%2F", re.IGNORECASE)
# The principal a function's resource policy must name for API Gateway to invoke it.
API_GATEWAY_PRINCIPAL = "apigateway.amazonaws.com"
INVOKE_ACTIONS = ("lambda:invokefunction", "lambda:*")
# The top-level fields a Lambda proxy response may have; any other makes it malformed (502)
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format).
PROXY_RESPONSE_FIELDS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# How often the accept loop looks for `stop()`: the longest `stop()` waits.
_SHUTDOWN_POLL_SECONDS = 0.05
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class InvokeOutcome:
    """What the function host reports for one synchronous invocation."""

    payload: Any
    """The function's return value (decoded JSON) when it succeeded."""
    error: dict[str, Any] | None
    """Lambda's error object (`errorType`, `errorMessage`, …) when it raised, timed out or crashed."""


class Invoker(Protocol):
    """Invokes a function synchronously (RequestResponse) with an event."""

    def __call__(self, function_arn: str, event: dict[str, Any]) -> InvokeOutcome: ...


class SignedDecisionLike(Protocol):
    """The emulator's verdict on a SigV4-signed request (`local.emulator.Emulator.authorize_signed`)."""

    allowed: bool
    principal_arn: str | None
    """The signer, once the signature is verified; None when the caller is not authenticated."""
    access_key_id: str | None
    message: str


class IamAuthorizer(Protocol):
    """Verifies a request's signature and whether its signer may perform `action` on `resource_arn`."""

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, action: str, resource_arn: str
    ) -> SignedDecisionLike: ...


# --- What goes back to the client ------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """An HTTP response, before the per-request headers (request ids) are added."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    response_type: str | None = None
    """The gateway response type of an answer API Gateway writes itself; None for the function's."""


def gateway_reply(status: int, message: str, response_type: str, *, key: str = "message") -> Reply:
    """A response API Gateway writes itself (a "gateway response"): a JSON object with one message."""
    body = json.dumps({key: message}).encode()
    return Reply(status, (("Content-Type", "application/json"),), body, response_type)


# The gateway responses, their types and default bodies
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html).
# An answer of no documented type is of its status's default type, DEFAULT_4XX or DEFAULT_5XX.
INVALID_API_KEY = gateway_reply(403, "Forbidden", "INVALID_API_KEY")
# A path outside the stage: no documented type.
FORBIDDEN = gateway_reply(403, "Forbidden", "DEFAULT_4XX")
MISSING_AUTHENTICATION_TOKEN = gateway_reply(403, "Missing Authentication Token", "MISSING_AUTHENTICATION_TOKEN")
THROTTLED = gateway_reply(429, "Too Many Requests", "THROTTLED")
QUOTA_EXCEEDED = gateway_reply(429, "Limit Exceeded", "QUOTA_EXCEEDED")
REQUEST_TOO_LARGE = gateway_reply(413, "Request Too Long", "REQUEST_TOO_LARGE")
# Not a documented gateway response type: what a URL over the quota gets here, in the same shape.
URL_TOO_LONG = gateway_reply(414, "Request-URI Too Long", "DEFAULT_4XX")
INTERNAL_SERVER_ERROR = gateway_reply(500, "Internal server error", "DEFAULT_5XX")
BAD_GATEWAY = gateway_reply(502, "Internal server error", "DEFAULT_5XX")
SERVICE_UNAVAILABLE = gateway_reply(503, "Service Unavailable", "DEFAULT_5XX")
INTEGRATION_TIMEOUT = gateway_reply(504, "Endpoint request timed out", "INTEGRATION_TIMEOUT")
# An IAM refusal: ACCESS_DENIED for a caller known but not allowed; for a signature that fails,
# INVALID_SIGNATURE (an expired token or an unknown key are not told apart here: all three are 403).
IAM_ACCESS_DENIED, IAM_SIGNATURE_REFUSED = "ACCESS_DENIED", "INVALID_SIGNATURE"
# A customised response's header: `gatewayresponse.header.<Name>` mapped to a static value between
# single quotes (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-gateway-response-using-the-console.html).
_HEADER_PARAMETER = "gatewayresponse.header."


def gateway_response_headers(api: RestApiSpec) -> dict[str, tuple[tuple[str, str], ...]]:
    """Response type → the headers its customised gateway response adds. A customisation local
    mode cannot serve as API Gateway would (a value taken from the request, a parameter that is no
    header, a status code, a body template) raises `NotEmulated` naming it."""
    headers: dict[str, tuple[tuple[str, str], ...]] = {}
    for response in api.gateway_responses:
        where = f"{api.name}: gateway response {response.response_type}"
        if response.status_code is not None:
            raise NotEmulated(f"{where} sets status code {response.status_code}; local mode keeps each type's own")
        if response.response_templates:
            raise NotEmulated(f"{where} has a body template; local mode writes API Gateway's default bodies")
        headers[response.response_type] = tuple(
            _static_header(where, *parameter) for parameter in response.response_parameters
        )
    return headers


def _static_header(where: str, parameter: str, value: str) -> tuple[str, str]:
    if not parameter.startswith(_HEADER_PARAMETER):
        raise NotEmulated(f"{where} maps {parameter}: local mode serves header parameters only")
    if len(value) < 2 or not value.startswith("'") or not value.endswith("'"):
        raise NotEmulated(f"{where} maps {parameter} to a request value: local mode serves static values only")
    return parameter.removeprefix(_HEADER_PARAMETER), value[1:-1]


def with_gateway_headers(reply: Reply, headers: Mapping[str, tuple[tuple[str, str], ...]]) -> Reply:
    """An answer the gateway wrote, with the headers of its type's customised response, else of its
    status's default (DEFAULT_4XX, DEFAULT_5XX), as API Gateway falls back; the function's, as is."""
    if reply.response_type is None:
        return reply
    added = headers.get(reply.response_type, headers.get(f"DEFAULT_{reply.status // 100}XX", ()))
    return Reply(reply.status, (*reply.headers, *added), reply.body, reply.response_type)


# --- Routing --------------------------------------------------------------------------------


@dataclass
class _Resource:
    """One node of the resource tree; resources between declared ones exist without methods."""

    path: str
    literals: dict[str, _Resource] = field(default_factory=dict)
    variable: tuple[str, _Resource] | None = None
    """`{name}`: any one non-empty segment."""
    greedy: tuple[str, _Resource] | None = None
    """`{name+}`: one segment or more."""
    methods: dict[str, ApiMethod] = field(default_factory=dict)

    def child(self, part: str) -> _Resource:
        path = self.path.rstrip("/") + "/" + part
        if part.startswith("{") and part.endswith("+}"):
            if self.greedy is None:
                self.greedy = (part[1:-2], _Resource(path))
            return self.greedy[1]
        if part.startswith("{") and part.endswith("}"):
            if self.variable is None:
                self.variable = (part[1:-1], _Resource(path))
            return self.variable[1]
        return self.literals.setdefault(part, _Resource(path))


@dataclass(frozen=True)
class Route:
    """What a request resolved to: the method, its resource template and the path parameters."""

    method: ApiMethod
    resource_path: str
    """The template, e.g. `/users/{email}`."""
    path: str
    """The request's path without the stage, percent-encoded as sent, e.g. `/users/a%40b.com`."""
    path_parameters: Mapping[str, str]


class Routes:
    """The API's resources as API Gateway matches them.

    At each level a literal segment beats `{param}`, which beats `{proxy+}` (greedy, one segment or
    more); a branch that fails deeper falls back to the next kind, so `/users/a/b` reaches
    `/{proxy+}` when `/users/{email}` has no child. Then the method: the request's own beats `ANY`.
    """

    def __init__(self, methods: Sequence[ApiMethod]) -> None:
        self._root = _Resource("/")
        for method in methods:
            node = self._root
            for part in (p for p in method.path.split("/") if p):
                node = node.child(part)
            node.methods[method.http_method.upper()] = method

    def route(self, path: str, http_method: str) -> Route | None:
        """The method serving `path` (percent-encoded as sent, without the stage), or None (403)."""
        segments = _ENCODED_SLASH.sub("/", path).split("/")[1:]
        if segments and segments[-1] == "":
            segments.pop()  # `/users/` is `/users`
        found = self._match(self._root, segments, {})
        if found is None:
            return None
        resource, parameters = found
        method = resource.methods.get(http_method.upper()) or resource.methods.get("ANY")
        if method is None:
            return None
        return Route(method, resource.path, path, parameters)

    def _match(
        self, node: _Resource, segments: list[str], parameters: dict[str, str]
    ) -> tuple[_Resource, dict[str, str]] | None:
        if not segments:
            return node, parameters
        head, rest = segments[0], segments[1:]
        literal = node.literals.get(head)
        if literal is not None and (found := self._match(literal, rest, parameters)):
            return found
        if head and node.variable is not None:
            name, child = node.variable
            if found := self._match(child, rest, {**parameters, name: head}):
                return found
        if head and node.greedy is not None:
            name, child = node.greedy
            return child, {**parameters, name: "/".join(segments)}
        return None


# --- Throttling and quotas ------------------------------------------------------------------


class TokenBucket:
    """API Gateway's throttle: `burst` is the bucket's size, `rate` the tokens added per second.

    A request takes a token or is refused (429); the bucket starts full
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html).
    """

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = float(rate), int(burst)
        self._tokens, self._at = float(burst), now

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


def quota_period_start(period: str, at: datetime) -> date:
    """The first day (UTC) of the quota period `at` falls in: the day, the week from Sunday, the month."""
    day = at.astimezone(UTC).date()
    if period == "DAY":
        return day
    if period == "WEEK":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if period == "MONTH":
        return day.replace(day=1)
    raise ValueError(f"quota period {period!r}: API Gateway knows DAY, WEEK and MONTH")


class Quota:
    """A usage plan's quota for one key: `limit` requests per period, then 429 `Limit Exceeded`."""

    def __init__(self, limit: int, period: str) -> None:
        self.limit, self.period = limit, period
        self._start: date | None = None
        self._used = 0

    def take(self, at: datetime) -> bool:
        start = quota_period_start(self.period, at)
        if start != self._start:
            self._start, self._used = start, 0
        if self._used >= self.limit:
            return False
        self._used += 1
        return True


def _bucket(rate: float | None, burst: int | None, now: float) -> TokenBucket | None:
    """A throttle when both limits are set; without them API Gateway applies only the account's."""
    return None if rate is None or burst is None else TokenBucket(rate, burst, now)


class UsageLimits:
    """The stage's throttle and each API key's usage-plan throttle and quota, shared by all requests."""

    def __init__(
        self,
        api: RestApiSpec,
        clock: Callable[[], float] = time.monotonic,
        calendar_now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock, self._calendar_now = clock, calendar_now
        self._lock = threading.Lock()
        self._stage = _bucket(api.rate_limit, api.burst_limit, clock())
        self._key_buckets: dict[str, TokenBucket | None] = {}
        self._quotas: dict[str, Quota | None] = {}

    def admit(self, key: ApiKey | None, plan: UsagePlan | None) -> Reply | None:
        """None when the request may go on; else the 429 to answer."""
        with self._lock:
            now = self._clock()
            if key is not None and plan is not None:
                if key.id not in self._key_buckets:
                    self._key_buckets[key.id] = _bucket(plan.rate_limit, plan.burst_limit, now)
                bucket = self._key_buckets[key.id]
                if bucket is not None and not bucket.take(now):
                    return THROTTLED
            if self._stage is not None and not self._stage.take(now):
                return THROTTLED
            if key is not None and plan is not None:
                if key.id not in self._quotas:
                    limited = plan.quota_limit is not None and plan.quota_period is not None
                    self._quotas[key.id] = Quota(plan.quota_limit, plan.quota_period) if limited else None  # type: ignore[arg-type]
                quota = self._quotas[key.id]
                if quota is not None and not quota.take(self._calendar_now()):
                    return QUOTA_EXCEEDED
            return None


def key_of(api: RestApiSpec, value: str | None) -> tuple[ApiKey, UsagePlan] | None:
    """The enabled key with this value and the usage plan that admits it on this stage, if any."""
    if not value:
        return None
    for key in api.api_keys:
        if key.enabled and secrets.compare_digest(key.value.encode(), value.encode()):
            for plan in api.usage_plans:
                if key.id in plan.key_ids and (api.id, api.stage_name) in plan.stages:
                    return key, plan
    return None


# --- The function's resource policy -----------------------------------------------------------


def arn_like(pattern: str, value: str) -> bool:
    """IAM's `ArnLike`: `*` matches any run of characters, `?` any one; the rest literally."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def may_invoke(permissions: Sequence[InvokePermission], function_arn: str, source_arn: str, account_id: str) -> bool:
    """Whether some permission on the function lets API Gateway invoke it from `source_arn`."""
    name = function_arn.split(":function:")[-1].split(":")[0]
    return any(
        permission.function_name.split(":function:")[-1].split(":")[0] == name
        and permission.principal == API_GATEWAY_PRINCIPAL
        and permission.action.lower() in INVOKE_ACTIONS
        and (permission.source_arn is None or arn_like(permission.source_arn, source_arn))
        and (permission.source_account is None or permission.source_account == account_id)
        for permission in permissions
    )


# --- The Lambda proxy event and response -------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """An HTTP request as it arrived: the target exactly as sent, every header line in order."""

    method: str
    target: str
    """Path and query, percent-encoded as the client sent them."""
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str
    port: int
    oversized: bool = False
    """The body is over API Gateway's payload limit (and was not read)."""

    @property
    def raw_path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def raw_query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> str | None:
        """The last value of a header, by case-insensitive name."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[-1] if values else None


def _multi_map(pairs: Iterable[tuple[str, str]], fold_case: bool) -> dict[str, list[str]]:
    """Repeated names gathered in order (headers by case-insensitive name, under the first spelling)."""
    grouped: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = spelling.setdefault(name.lower() if fold_case else name, name)
        grouped.setdefault(key, []).append(value)
    return grouped


def _last_values(multi: dict[str, list[str]]) -> dict[str, str] | None:
    """The single-value view API Gateway also sends: the last value of each name; null when empty."""
    return {name: values[-1] for name, values in multi.items()} or None


def _request_time(epoch_seconds: float) -> str:
    """`dd/MMM/yyyy:HH:mm:ss +0000`, in English whatever the locale."""
    at = time.gmtime(epoch_seconds)
    return f"{at.tm_mday:02d}/{_MONTHS[at.tm_mon - 1]}/{at.tm_year}:{time.strftime('%H:%M:%S', at)} +0000"


def _resource_id(api_id: str, resource_path: str) -> str:
    """A stable id per resource, shaped like API Gateway's (10 lowercase alphanumerics)."""
    return hashlib.sha256(f"{api_id}{resource_path}".encode()).hexdigest()[:10]


def _event_headers(request: Request) -> list[tuple[str, str]]:
    """The request's headers plus the `X-Forwarded-*` ones API Gateway adds in front of the function."""
    pairs = [(k, v) for k, v in request.headers if k.lower() not in ("x-forwarded-for", "x-forwarded-port")]
    forwarded = request.header("X-Forwarded-For")
    pairs.append(("X-Forwarded-For", f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip))
    pairs.append(("X-Forwarded-Port", str(request.port)))
    if request.header("X-Forwarded-Proto") is None:
        pairs.append(("X-Forwarded-Proto", "http"))
    return pairs


def _body(raw: bytes) -> tuple[str | None, bool]:
    """The body as the event carries it: text, base64 when not UTF-8, null when empty."""
    if not raw:
        return None, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True


def proxy_event(
    api: RestApiSpec,
    account_id: str,
    route: Route,
    request: Request,
    *,
    request_id: str,
    extended_request_id: str,
    received_at: float,
    identity: Mapping[str, Any],
) -> dict[str, Any]:
    """The REST API (format 1.0) Lambda proxy event for a routed request.

    Path and path parameters stay percent-encoded as sent (REST APIs do not decode them; the query
    function decodes its `{email}` itself); query strings are form-decoded, as API Gateway does.
    """
    headers = _multi_map(_event_headers(request), fold_case=True)
    query = _multi_map(parse_qsl(request.raw_query, keep_blank_values=True), fold_case=False)
    body, is_base64 = _body(request.body)
    host = request.header("Host") or f"127.0.0.1:{request.port}"
    return {
        "resource": route.resource_path,
        "path": route.path,
        "httpMethod": request.method,
        "headers": _last_values(headers),
        "multiValueHeaders": headers or None,
        "queryStringParameters": _last_values(query),
        "multiValueQueryStringParameters": query or None,
        "pathParameters": dict(route.path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": account_id,
            "apiId": api.id,
            "resourceId": _resource_id(api.id, route.resource_path),
            "resourcePath": route.resource_path,
            "httpMethod": request.method,
            "path": f"/{api.stage_name}{route.path}",
            "stage": api.stage_name,
            "requestId": request_id,
            "extendedRequestId": extended_request_id,
            "requestTime": _request_time(received_at),
            "requestTimeEpoch": int(received_at * 1000),
            "protocol": "HTTP/1.1",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.header("User-Agent"),
                "user": None,
                "apiKey": None,
                "apiKeyId": None,
                **identity,
            },
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


class MalformedProxyResponse(ValueError):
    """The function's result is not a Lambda proxy response (API Gateway answers 502)."""


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedProxyResponse("a header value is not a string, number or boolean")


def proxy_reply(payload: Any) -> Reply:
    """The HTTP response a Lambda proxy result stands for; `MalformedProxyResponse` when it is none.

    `headers` and `multiValueHeaders` are merged; for a name in both, the multi-value list wins.
    """
    if not isinstance(payload, dict):
        raise MalformedProxyResponse(f"the result is a {type(payload).__name__}, not an object")
    unknown = set(payload) - PROXY_RESPONSE_FIELDS
    if unknown:
        raise MalformedProxyResponse(f"unexpected fields {sorted(unknown)}")
    status = payload.get("statusCode")
    if isinstance(status, str) and status.isascii() and status.isdigit():
        status = int(status)  # accepted as a number, as AWS's own blueprints send it ("200")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedProxyResponse("statusCode is missing or not an HTTP status")
    single = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedProxyResponse("headers or multiValueHeaders is not an object")
    if not all(isinstance(values, list) for values in multi.values()):
        raise MalformedProxyResponse("a multiValueHeaders entry is not a list")
    merged = [(name, _header_text(value)) for name, value in single.items() if name not in multi]
    merged += [(name, _header_text(value)) for name, values in multi.items() for value in values]
    body = payload.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedProxyResponse("body is not a string")
    encoded = payload.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise MalformedProxyResponse("isBase64Encoded is not a boolean")
    try:
        content = base64.b64decode(body or "", validate=True) if encoded else (body or "").encode()
    except binascii.Error:
        raise MalformedProxyResponse("isBase64Encoded is true but the body is not base64") from None
    if not any(name.lower() == "content-type" for name, _ in merged):
        merged.append(("Content-Type", "application/json"))
    return Reply(status, tuple(merged), content)


# --- The gateway -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Served:
    """One request's answer and what the access log says about it."""

    reply: Reply
    resource_path: str | None


class ApiGateway:
    """One REST API's deployed stage, served over HTTP on `host`.

    The session binds the port first (the program's `invokeUrl` must point at it while the program
    still runs), then passes the final definition (`set_api`) and calls `start`: until both, every
    request gets 503.
    """

    def __init__(
        self,
        api: RestApiSpec | None,
        *,
        region: str,
        account_id: str,
        invoke: Invoker,
        permissions: Sequence[InvokePermission],
        iam_authorizer: IamAuthorizer | None = None,
        log: Callable[[str], None] = _LOG.info,
        host: str = "127.0.0.1",
        integration_timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self.region, self.account_id, self.host = region, account_id, host
        self._invoke, self._permissions = invoke, tuple(permissions)
        self._iam_authorizer, self._log = iam_authorizer, log
        self._integration_timeout = integration_timeout_seconds
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self._definition: tuple[RestApiSpec, Routes, UsageLimits, dict[str, tuple[tuple[str, str], ...]]] | None = None
        if api is not None:
            self.set_api(api)

    # Life cycle

    def bind(self, port: int = 0) -> int:
        """Bind the port now and answer 503 until `start`; the port bound (a free one for 0)."""
        if self._server is not None:
            return self._server.server_address[1]
        try:
            server = _Server((self.host, port), _Handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise OSError(
                    error.errno, f"port {port} on {self.host} is in use: the API cannot listen there"
                ) from error
            raise OSError(error.errno, f"cannot listen on {self.host}:{port}: {error.strerror}") from error
        server.gateway = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            args=(_SHUTDOWN_POLL_SECONDS,),
            name=f"apigw-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return server.server_address[1]

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the API gateway is not bound yet: call bind()")
        return self._server.server_address[1]

    @property
    def invoke_url(self) -> str:
        """The stage's `invokeUrl`, locally (no trailing slash)."""
        if self._definition is None:
            raise RuntimeError("the API gateway has no API yet: pass one or call set_api()")
        return f"http://{self.host}:{self.port}/{self._definition[0].stage_name}"

    def start(self) -> None:
        """Serve requests (each on a thread of its own); binds a free port if `bind` was not called."""
        if self._server is None:
            self.bind()
        self._started = True

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server, self._started = self._server, None, False
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set_permissions(self, permissions: Sequence[InvokePermission]) -> None:
        """The functions' resource policies from now on (the deployer learns them with the API)."""
        self._permissions = tuple(permissions)

    def set_api(self, api: RestApiSpec) -> None:
        """Serve this definition from now on (throttle and quota counts start afresh)."""
        self._definition = (api, Routes(api.methods), UsageLimits(api), gateway_response_headers(api))

    # Requests

    def serve(self, request: Request) -> Reply:
        """Answer one request, with API Gateway's request-id headers; logs one access line."""
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        extended_id = base64.b64encode(secrets.token_bytes(10)).decode()[:14] + "="
        try:
            served = self._serve(request, request_id, extended_id, time.time())
        except Exception as error:  # a defect of local mode: the client gets API Gateway's 500
            self._log(f"API {request.method} request {request_id} failed in the local gateway: {type(error).__name__}")
            served = _Served(INTERNAL_SERVER_ERROR, None)
        definition = self._definition
        reply = served.reply if definition is None else with_gateway_headers(served.reply, definition[3])
        elapsed_ms = round((time.monotonic() - started) * 1000)
        self._log(f"{request.method} {served.resource_path or '-'} {reply.status} {elapsed_ms}ms {request_id}")
        headers = (*reply.headers, ("x-amzn-RequestId", request_id), ("x-amz-apigw-id", extended_id))
        return Reply(reply.status, headers, reply.body)

    def _serve(self, request: Request, request_id: str, extended_id: str, received_at: float) -> _Served:
        definition = self._definition
        if definition is None or not self._started:
            return _Served(SERVICE_UNAVAILABLE, None)
        if request.oversized:
            return _Served(REQUEST_TOO_LARGE, None)
        if len(request.target) > MAX_URL_CHARACTERS:
            return _Served(URL_TOO_LONG, None)
        api, routes, limits, _headers = definition
        stage_prefix = f"/{api.stage_name}"
        path = request.raw_path
        if path != stage_prefix and not path.startswith(stage_prefix + "/"):
            return _Served(FORBIDDEN, None)
        route = routes.route(path[len(stage_prefix) :] or "/", request.method)
        if route is None:
            return _Served(MISSING_AUTHENTICATION_TOKEN, None)
        method, resource = route.method, route.resource_path
        identity: dict[str, Any] = {}
        if method.authorization == "AWS_IAM":
            refusal = self._authorize_iam(api, request, route, identity)
            if refusal is not None:
                return _Served(refusal, resource)
        elif method.authorization != "NONE":
            self._log(f"{request.method} {resource}: authorization {method.authorization} is not emulated")
            return _Served(INTERNAL_SERVER_ERROR, resource)
        key_and_plan = None
        if method.api_key_required:
            key_and_plan = key_of(api, request.header("x-api-key"))
            if key_and_plan is None:
                return _Served(INVALID_API_KEY, resource)
            key, _plan = key_and_plan
            identity.update(apiKey=key.value, apiKeyId=key.id)
        refusal = limits.admit(*(key_and_plan or (None, None)))
        if refusal is not None:
            return _Served(refusal, resource)
        if method.integration_type != "AWS_PROXY" or method.function_arn is None:
            self._log(
                f"{request.method} {resource}: integration {method.integration_type} is not emulated"
                " (local mode serves Lambda proxy integrations)"
            )
            return _Served(INTERNAL_SERVER_ERROR, resource)
        # API Gateway calls the function as the method's ARN (resource template, request method),
        # the ARN a permission's SourceArn names (CDK's `Method.methodArn` is built the same way).
        source_arn = f"{api.execution_arn}/{api.stage_name}/{request.method}/{resource.lstrip('/')}"
        if not may_invoke(self._permissions, method.function_arn, source_arn, self.account_id):
            self._log(
                f"{request.method} {resource}: Execution failed due to configuration error: Invalid permissions on"
                f" Lambda function: API {api.id} may not invoke {method.function_arn} from {source_arn}"
            )
            return _Served(INTERNAL_SERVER_ERROR, resource)
        event = proxy_event(
            api,
            self.account_id,
            route,
            request,
            request_id=request_id,
            extended_request_id=extended_id,
            received_at=received_at,
            identity=identity,
        )
        timeout = method.integration_timeout_seconds or self._integration_timeout
        return _Served(self._integrate(method.function_arn, event, request.method, resource, timeout), resource)

    def _authorize_iam(
        self, api: RestApiSpec, request: Request, route: Route, identity: dict[str, Any]
    ) -> Reply | None:
        """SigV4 and `execute-api:Invoke` on the request's ARN; fills the event's IAM identity."""
        signed = request.header("Authorization") is not None or "X-Amz-Signature=" in request.raw_query
        if not signed:
            return MISSING_AUTHENTICATION_TOKEN
        if self._iam_authorizer is None:
            self._log(f"{request.method} {route.resource_path}: AWS_IAM method but no IAM authorizer given")
            return INTERNAL_SERVER_ERROR
        # The signer signed the URL it sent: scheme, Host as sent, path and query as sent.
        host = request.header("Host") or f"{self.host}:{request.port}"
        resource_arn = f"{api.execution_arn}/{api.stage_name}/{request.method}/{route.path.lstrip('/')}"
        headers = {name: value for name, value in request.headers}
        decision = self._iam_authorizer(
            request.method, f"http://{host}{request.target}", headers, request.body, "execute-api:Invoke", resource_arn
        )
        if not decision.allowed:
            # An identity that is known but not allowed gets IAM's `Message`; a request whose
            # signature or key fails gets the gateway's own lowercase `message`.
            if decision.principal_arn:
                return gateway_reply(403, decision.message, IAM_ACCESS_DENIED, key="Message")
            return gateway_reply(403, decision.message, IAM_SIGNATURE_REFUSED)
        principal = decision.principal_arn or ""
        identity.update(
            accessKey=decision.access_key_id,
            userArn=decision.principal_arn,
            accountId=principal.split(":")[4] if principal.count(":") >= 5 else None,
        )
        return None

    def _integrate(
        self, function_arn: str, event: dict[str, Any], http_method: str, resource: str, timeout: float
    ) -> Reply:
        """Invoke the function, waiting at most the integration's timeout, and map its result."""
        outcome: list[InvokeOutcome | BaseException] = []

        def call() -> None:
            try:
                outcome.append(self._invoke(function_arn, event))
            except BaseException as error:  # reported below, in the request's thread
                outcome.append(error)

        caller = threading.Thread(target=call, name="apigw-integration", daemon=True)
        caller.start()
        caller.join(timeout)
        if not outcome:
            self._log(f"{http_method} {resource}: Execution failed due to a timeout error")
            return INTEGRATION_TIMEOUT
        result = outcome[0]
        if isinstance(result, BaseException):
            self._log(f"{http_method} {resource}: invoking the function failed: {type(result).__name__}")
            return INTERNAL_SERVER_ERROR
        if result.error is not None:
            kind = result.error.get("errorType", "error") if isinstance(result.error, dict) else "error"
            self._log(
                f"{http_method} {resource}: Lambda execution failed with status 200"
                f" due to customer function error: {kind}"
            )
            return BAD_GATEWAY
        try:
            return proxy_reply(result.payload)
        except MalformedProxyResponse as malformed:
            self._log(
                f"{http_method} {resource}: Execution failed due to configuration error:"
                f" Malformed Lambda proxy response ({malformed})"
            )
            return BAD_GATEWAY


# --- HTTP ------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """One thread per connection, so concurrent requests are served concurrently."""

    daemon_threads = True
    gateway: ApiGateway


class _Handler(BaseHTTPRequestHandler):
    """Reads the request exactly as sent (raw target, repeated headers) and writes the reply."""

    protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway expect
    # Headers and body leave in two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK, 40 ms per request on Linux.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "local-apigateway"

    server: _Server

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "Bad Request", "the request's length or chunked encoding is invalid")
            return
        if body is None:
            self.close_connection = True  # the unread body is still on the connection
        request = Request(
            method=self.command,
            target=self.path,
            headers=tuple(self.headers.items()),
            body=body or b"",
            source_ip=self.client_address[0],
            port=self.server.server_address[1],
            oversized=body is None,
        )
        reply = self.server.gateway.serve(request)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _read_body(self) -> bytes | None:
        """The body (de-chunked), or None when it is over the payload limit; ValueError if garbled."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunks()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunks(self) -> bytes | None:
        chunks: list[bytes] = []
        received = 0
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            received += size
            if received > MAX_REQUEST_BYTES:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    # BaseHTTPRequestHandler dispatches on `do_<METHOD>`: every method API Gateway accepts.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the gateway writes its own access log, without request values."""
