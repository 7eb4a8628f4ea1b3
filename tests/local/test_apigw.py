"""The local API Gateway: routing, the proxy event and response, auth, throttling, as API Gateway does them.

The gateway is served on a free port and called over HTTP; behind it, a stand-in function records
the events it gets and returns canned proxy responses (the thing under test is the gateway, not a
function). The last tests serve the program's own API in front of the real query handler.
"""

from __future__ import annotations

import base64
import http.client
import importlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from local.apigw import (
    MAX_REQUEST_BYTES,
    ApiGateway,
    InvokeOutcome,
    Quota,
    Routes,
    TokenBucket,
    UsageLimits,
    arn_like,
    may_invoke,
    proxy_reply,
    quota_period_start,
)
from local.registry import ApiKey, ApiMethod, GatewayResponse, InvokePermission, NotEmulated, RestApiSpec, UsagePlan

REGION, ACCOUNT = "eu-west-1", "123456789012"
API_ID = "abc123"
EXECUTION_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:query"
EMAIL = "someone@example.com"
EMAIL_IN_PATH = "someone%40example.com"


def method(path: str, http_method: str = "GET", **settings: Any) -> ApiMethod:
    values = {
        "authorization": "NONE",
        "api_key_required": False,
        "integration_type": "AWS_PROXY",
        "function_arn": FUNCTION_ARN,
    }
    return ApiMethod(path=path, http_method=http_method, **{**values, **settings})


def spec(*methods: ApiMethod, **settings: Any) -> RestApiSpec:
    values = {"rate_limit": None, "burst_limit": None}
    return RestApiSpec(
        id=API_ID, name="api", execution_arn=EXECUTION_ARN, stage_name="v1", methods=methods, **{**values, **settings}
    )


def permission(source_arn: str | None = f"{EXECUTION_ARN}/v1/*/*", **settings: Any) -> InvokePermission:
    values = {"function_name": "query", "action": "lambda:InvokeFunction", "principal": "apigateway.amazonaws.com"}
    return InvokePermission(**{**values, **settings}, source_arn=source_arn, source_account=None)


def echo(event: dict[str, Any]) -> Any:
    """A proxy response naming the resource the request reached."""
    return {"statusCode": 200, "body": json.dumps({"resource": event["resource"]})}


@dataclass
class Function:
    """Stands in for the integrated function: records (function ARN, event), answers with `respond`."""

    respond: Callable[[dict[str, Any]], Any] = echo
    error: dict[str, Any] | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, function_arn: str, event: dict[str, Any]) -> InvokeOutcome:
        self.calls.append((function_arn, event))
        if self.error is not None:
            return InvokeOutcome(payload=None, error=self.error)
        return InvokeOutcome(payload=self.respond(event), error=None)

    @property
    def event(self) -> dict[str, Any]:
        """The last event."""
        return self.calls[-1][1]


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Served:
    gateway: ApiGateway
    function: Function
    log: list[str]

    def call(
        self, http_method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b""
    ) -> Answer:
        """One request over HTTP, target and headers exactly as given (repeated headers stay repeated)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=30)
        try:
            connection.putrequest(http_method, target)
            for name, value in headers or []:
                connection.putheader(name, value)
            if body:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            return Answer(response.status, response.getheaders(), response.read())
        finally:
            connection.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start a gateway for an API on a free port; stopped after the test."""
    gateways: list[ApiGateway] = []

    def start(api: RestApiSpec, function: Function | None = None, **options: Any) -> Served:
        function = function or Function()
        log: list[str] = []
        options.setdefault("permissions", [permission()])
        gateway = ApiGateway(api, region=REGION, account_id=ACCOUNT, invoke=function, log=log.append, **options)
        gateways.append(gateway)
        gateway.bind()
        gateway.start()
        return Served(gateway, function, log)

    yield start
    for gateway in gateways:
        gateway.stop()


# --- Routing --------------------------------------------------------------------------------

ROUTED = spec(
    method("/users"),
    method("/users/me"),
    method("/users/{email}"),
    method("/users/{email}", "ANY", function_arn=FUNCTION_ARN + "-any"),
    method("/{proxy+}", "ANY"),
    method("/", "GET"),
)


@pytest.mark.parametrize(
    ("http_method", "path", "resource", "function_arn", "parameters"),
    [
        ("GET", "/users/me", "/users/me", FUNCTION_ARN, None),
        ("GET", f"/users/{EMAIL_IN_PATH}", "/users/{email}", FUNCTION_ARN, {"email": EMAIL_IN_PATH}),
        ("DELETE", "/users/x", "/users/{email}", FUNCTION_ARN + "-any", {"email": "x"}),
        ("GET", "/users/x/y", "/{proxy+}", FUNCTION_ARN, {"proxy": "users/x/y"}),
        ("POST", "/nope", "/{proxy+}", FUNCTION_ARN, {"proxy": "nope"}),
        ("GET", "/users/", "/users", FUNCTION_ARN, None),
        ("GET", "", "/", FUNCTION_ARN, None),
        ("GET", "/", "/", FUNCTION_ARN, None),
    ],
)
def test_literal_beats_parameter_beats_proxy_and_method_beats_any(
    serve, http_method, path, resource, function_arn, parameters
):
    served = serve(ROUTED, permissions=[permission(), permission(function_name="query-any")])
    answer = served.call(http_method, f"/v1{path}")
    assert answer.status == 200, answer.body
    called, event = served.function.calls[-1]
    assert (event["resource"], called, event["pathParameters"]) == (resource, function_arn, parameters)


def test_no_resource_or_method_is_missing_authentication_token(serve):
    served = serve(spec(method("/users"), method("/users/{email}")))
    for http_method, path in [("GET", "/nope"), ("POST", "/users"), ("GET", "/users/a/b"), ("GET", "/")]:
        answer = served.call(http_method, f"/v1{path}")
        assert (answer.status, answer.json()) == (403, {"message": "Missing Authentication Token"}), path
        assert answer.header("Content-Type") == ["application/json"]
    assert served.function.calls == []


def test_a_path_outside_the_stage_is_forbidden(serve):
    served = serve(ROUTED)
    for target in ["/users/me", "/v2/users/me", "/v1users", "/"]:
        answer = served.call("GET", target)
        assert (answer.status, answer.json()) == (403, {"message": "Forbidden"}), target
    assert served.function.calls == []


def test_an_intermediate_resource_without_methods_does_not_fall_back_to_the_proxy():
    routes = Routes([method("/jobs/{jobId}"), method("/{proxy+}", "ANY")])
    assert routes.route("/jobs", "GET") is None  # `/jobs` exists (the parent of `{jobId}`), no method
    assert routes.route("/other", "GET").resource_path == "/{proxy+}"


# --- The proxy event ------------------------------------------------------------------------


def test_event_carries_path_query_headers_and_request_context(serve):
    served = serve(ROUTED)
    answer = served.call(
        "GET",
        f"/v1/users/{EMAIL_IN_PATH}?limit=5&tag=a&tag=b&q=%2B+x&flag",
        headers=[("X-Multi", "one"), ("x-multi", "two"), ("User-Agent", "test-agent/1.0")],
    )
    assert answer.status == 200
    event = served.function.event
    assert event["httpMethod"] == "GET"
    assert event["path"] == f"/users/{EMAIL_IN_PATH}"
    assert event["resource"] == "/users/{email}"
    assert event["pathParameters"] == {"email": EMAIL_IN_PATH}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5"], "tag": ["a", "b"], "q": ["+ x"], "flag": [""]}
    assert event["queryStringParameters"] == {"limit": "5", "tag": "b", "q": "+ x", "flag": ""}
    assert event["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert event["headers"]["X-Multi"] == "two"
    assert event["headers"]["Host"] == f"127.0.0.1:{served.gateway.port}"
    assert event["stageVariables"] is None
    assert (event["body"], event["isBase64Encoded"]) == (None, False)
    context = event["requestContext"]
    assert context["stage"] == "v1"
    assert context["resourcePath"] == "/users/{email}"
    assert context["path"] == f"/v1/users/{EMAIL_IN_PATH}"
    assert context["httpMethod"] == "GET"
    assert (context["accountId"], context["apiId"], context["protocol"]) == (ACCOUNT, API_ID, "HTTP/1.1")
    assert answer.header("x-amzn-RequestId") == [context["requestId"]]
    assert answer.header("x-amz-apigw-id") == [context["extendedRequestId"]]
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["requestTime"])
    assert abs(context["requestTimeEpoch"] / 1000 - time.time()) < 60
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "test-agent/1.0"
    assert (context["identity"]["apiKey"], context["identity"]["userArn"]) == (None, None)


def test_event_without_query_or_path_parameters_has_nulls(serve):
    served = serve(ROUTED)
    served.call("GET", "/v1/users")
    event = served.function.event
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None


def test_request_ids_differ_and_resource_ids_are_stable(serve):
    served = serve(ROUTED)
    served.call("GET", "/v1/users/a")
    served.call("GET", "/v1/users/b")
    first, second = (event["requestContext"] for _, event in served.function.calls)
    assert first["requestId"] != second["requestId"]
    assert first["resourceId"] == second["resourceId"]


def test_text_body_is_a_string_and_binary_body_is_base64(serve):
    served = serve(ROUTED)
    served.call("POST", "/v1/anything", body='{"name": "Zoë"}'.encode())
    assert (served.function.event["body"], served.function.event["isBase64Encoded"]) == ('{"name": "Zoë"}', False)
    binary = bytes([0xFF, 0x00, 0x10, 0x80])
    served.call("POST", "/v1/anything", headers=[("Content-Type", "application/octet-stream")], body=binary)
    event = served.function.event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == binary


def test_powertools_rest_resolver_routes_the_event():
    """A function written the common way, on Powertools' `APIGatewayRestResolver`, resolves the gateway's
    event (the query function routes its paths itself since its cold start was trimmed; the event is
    still AWS's proxy event, which Powertools' resolver reads as AWS's own)."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    app = APIGatewayRestResolver()

    @app.get("/users/<email>")
    def user(email: str) -> dict[str, Any]:
        query = app.current_event.get_query_string_value("limit")
        return {"email": email, "limit": query, "stage": app.current_event.request_context.stage}

    function = Function(respond=lambda event: app.resolve(event, None))
    gateway = ApiGateway(
        ROUTED, region=REGION, account_id=ACCOUNT, invoke=function, permissions=[permission()], log=lambda _: None
    )
    try:
        gateway.bind()
        gateway.start()
        answer = Served(gateway, function, []).call("GET", f"/v1/users/{EMAIL_IN_PATH}?limit=5")
    finally:
        gateway.stop()
    assert answer.status == 200
    assert answer.json() == {"email": EMAIL_IN_PATH, "limit": "5", "stage": "v1"}
    assert answer.header("Content-Type") == ["application/json"]


# --- The proxy response ---------------------------------------------------------------------


def test_response_headers_merge_with_multi_value_headers_winning(serve):
    def respond(_event: dict[str, Any]) -> Any:
        return {
            "statusCode": 201,
            "headers": {"X-One": "1", "X-Both": "single", "Content-Type": "text/plain"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Both": ["multi"]},
            "body": "created",
        }

    served = serve(ROUTED, Function(respond))
    answer = served.call("POST", "/v1/x")
    assert (answer.status, answer.body) == (201, b"created")
    assert answer.header("X-One") == ["1"]
    assert answer.header("X-Both") == ["multi"]
    assert answer.header("Set-Cookie") == ["a=1", "b=2"]
    assert answer.header("Content-Type") == ["text/plain"]
    assert len(answer.header("x-amzn-RequestId")) == 1


def test_base64_response_body_is_sent_as_bytes(serve):
    payload = bytes(range(256))
    served = serve(
        ROUTED,
        Function(lambda _e: {"statusCode": 200, "body": base64.b64encode(payload).decode(), "isBase64Encoded": True}),
    )
    assert served.call("GET", "/v1/x").body == payload


@pytest.mark.parametrize(
    "result",
    [
        {"body": "no status"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "x", "extra": 1},
        {"statusCode": "OK", "body": "x"},
        {"statusCode": True, "body": "x"},
        {"statusCode": 200, "headers": {"X": {"nested": 1}}},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
        ["statusCode", 200],
        None,
    ],
)
def test_malformed_proxy_response_is_502(serve, result):
    served = serve(ROUTED, Function(lambda _e: result))
    answer = served.call("GET", "/v1/x")
    assert (answer.status, answer.json()) == (502, {"message": "Internal server error"})
    assert any("Malformed Lambda proxy response" in line for line in served.log)


def test_function_error_is_502(serve):
    served = serve(ROUTED, Function(error={"errorType": "KeyError", "errorMessage": EMAIL}))
    answer = served.call("GET", "/v1/x")
    assert (answer.status, answer.json()) == (502, {"message": "Internal server error"})
    assert not any(EMAIL in line for line in served.log)


def test_a_function_outliving_the_integration_timeout_is_504(serve):
    release = threading.Event()
    served = serve(ROUTED, Function(lambda e: release.wait(10) and echo(e)), integration_timeout_seconds=0.2)
    try:
        answer = served.call("GET", "/v1/x")
    finally:
        release.set()
    assert (answer.status, answer.json()) == (504, {"message": "Endpoint request timed out"})


def test_proxy_reply_defaults_content_type_to_json():
    reply = proxy_reply({"statusCode": 204})
    assert (reply.status, reply.body, dict(reply.headers)) == (204, b"", {"Content-Type": "application/json"})


def test_proxy_reply_takes_a_numeric_status_string():
    assert proxy_reply({"statusCode": "201", "body": "x"}).status == 201


# --- API keys, throttling, quotas -----------------------------------------------------------

KEYED = (method("/{proxy+}", "ANY", api_key_required=True),)
GOOD = ApiKey(id="k1", name="main", value="good-key-value-000000000001", enabled=True)
OTHER = ApiKey(id="k2", name="other", value="other-key-value-00000000002", enabled=True)
DISABLED = ApiKey(id="k3", name="off", value="disabled-key-value-00000003", enabled=False)
UNPLANNED = ApiKey(id="k4", name="loose", value="unplanned-key-value-0000004", enabled=True)
ELSEWHERE = ApiKey(id="k5", name="else", value="other-stage-key-value-00005", enabled=True)


def keyed(*, rate: float | None = None, burst: int | None = None, quota: int | None = None, **stage: Any):
    plan = UsagePlan(
        id="plan",
        stages=((API_ID, "v1"),),
        rate_limit=rate,
        burst_limit=burst,
        quota_limit=quota,
        quota_period="DAY" if quota else None,
        key_ids=("k1", "k2", "k3"),
    )
    other_stage = UsagePlan(
        id="plan-prod", stages=((API_ID, "prod"),), rate_limit=None, burst_limit=None, quota_limit=None,
        quota_period=None, key_ids=("k5",),
    )  # fmt: skip
    return spec(
        *KEYED, usage_plans=(plan, other_stage), api_keys=(GOOD, OTHER, DISABLED, UNPLANNED, ELSEWHERE), **stage
    )


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("x-api-key", "wrong")],
        [("x-api-key", DISABLED.value)],
        [("x-api-key", UNPLANNED.value)],
        [("x-api-key", ELSEWHERE.value)],
        [("Authorization", GOOD.value)],
    ],
    ids=["missing", "wrong", "disabled", "in-no-usage-plan", "plan-of-another-stage", "not-the-header"],
)
def test_api_key_method_without_a_valid_key_is_forbidden(serve, headers):
    served = serve(keyed())
    answer = served.call("GET", "/v1/users", headers=headers)
    assert (answer.status, answer.json()) == (403, {"message": "Forbidden"})
    assert served.function.calls == []


def test_api_key_method_with_its_key_reaches_the_function_with_the_key_in_the_identity(serve):
    served = serve(keyed())
    answer = served.call("GET", "/v1/users", headers=[("X-API-Key", GOOD.value)])
    assert answer.status == 200
    identity = served.function.event["requestContext"]["identity"]
    assert (identity["apiKey"], identity["apiKeyId"]) == (GOOD.value, GOOD.id)


def test_stage_throttle_refuses_beyond_the_burst_and_recovers_at_the_rate(serve):
    served = serve(spec(method("/{proxy+}", "ANY"), rate_limit=1, burst_limit=3))
    statuses = [served.call("GET", "/v1/x").status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = served.call("GET", "/v1/x")
    assert (refused.status, refused.json()) == (429, {"message": "Too Many Requests"})
    time.sleep(1.1)  # one token back at 1 request per second
    assert [served.call("GET", "/v1/x").status for _ in range(2)] == [200, 429]
    assert len(served.function.calls) == 4


def test_usage_plan_throttle_is_per_key(serve):
    served = serve(keyed(rate=0.01, burst=1))
    first = [served.call("GET", "/v1/x", headers=[("x-api-key", GOOD.value)]).status for _ in range(2)]
    other = served.call("GET", "/v1/x", headers=[("x-api-key", OTHER.value)]).status
    assert (first, other) == ([200, 429], 200)


def test_quota_is_per_key_and_answers_limit_exceeded(serve):
    served = serve(keyed(quota=2))
    statuses = [served.call("GET", "/v1/x", headers=[("x-api-key", GOOD.value)]).status for _ in range(2)]
    over = served.call("GET", "/v1/x", headers=[("x-api-key", GOOD.value)])
    assert statuses == [200, 200]
    assert (over.status, over.json()) == (429, {"message": "Limit Exceeded"})
    assert served.call("GET", "/v1/x", headers=[("x-api-key", OTHER.value)]).status == 200


def test_token_bucket_holds_burst_tokens_and_refills_at_rate():
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert [bucket.take(0.5), bucket.take(0.5)] == [True, False]  # 0.5 s × 2/s = one token
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # never above the burst


def test_quota_starts_afresh_each_period():
    assert quota_period_start("WEEK", datetime(2026, 11, 28, 23, tzinfo=UTC)).isoformat() == "2026-11-22"  # Sunday
    assert quota_period_start("MONTH", datetime(2026, 11, 28, tzinfo=UTC)).isoformat() == "2026-11-01"
    quota = Quota(limit=1, period="DAY")
    day, next_day = datetime(2026, 11, 28, 23, 59, tzinfo=UTC), datetime(2026, 11, 29, 0, 1, tzinfo=UTC)
    assert [quota.take(day), quota.take(day), quota.take(next_day)] == [True, False, True]


def test_usage_limits_check_the_key_throttle_before_the_stage_throttle():
    now = [0.0]
    api = keyed(rate=1, burst=1, rate_limit=1, burst_limit=2)
    limits = UsageLimits(api, clock=lambda: now[0])
    plan = api.usage_plans[0]
    assert limits.admit(GOOD, plan) is None
    assert limits.admit(GOOD, plan).status == 429  # the key's bucket is empty; the stage keeps its token
    assert limits.admit(OTHER, plan) is None
    assert limits.admit(None, None).status == 429  # now the stage's two tokens are gone


# --- IAM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    allowed: bool
    principal_arn: str | None
    access_key_id: str | None
    message: str


@dataclass
class Authorizer:
    decision: Decision
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, method, url, headers, body, action, resource_arn) -> Decision:
        self.calls.append(
            {
                "method": method,
                "url": url,
                "headers": dict(headers),
                "body": body,
                "action": action,
                "arn": resource_arn,
            }
        )
        return self.decision


IAM_API = spec(method("/users/{email}", "ANY", authorization="AWS_IAM"))
CALLER = f"arn:aws:iam::{ACCOUNT}:user/caller"
SIGNED = [
    ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA0000/20261128/eu-west-1/execute-api/aws4_request"),
    ("X-Amz-Date", "20261128T100000Z"),
]


def test_iam_method_without_a_signature_is_missing_authentication_token(serve):
    authorizer = Authorizer(Decision(True, CALLER, "AKIA0000", ""))
    served = serve(IAM_API, iam_authorizer=authorizer)
    answer = served.call("GET", f"/v1/users/{EMAIL_IN_PATH}")
    assert (answer.status, answer.json()) == (403, {"message": "Missing Authentication Token"})
    assert authorizer.calls == [] and served.function.calls == []


def test_iam_denial_is_403_with_the_authorizers_message(serve):
    message = f"User: {CALLER} is not authorized to perform: execute-api:Invoke on resource: x"
    served = serve(IAM_API, iam_authorizer=Authorizer(Decision(False, CALLER, "AKIA0000", message)))
    answer = served.call("GET", f"/v1/users/{EMAIL_IN_PATH}", headers=SIGNED)
    assert (answer.status, answer.json()) == (403, {"Message": message})
    assert served.function.calls == []


def test_iam_unauthenticated_signature_is_403_with_a_lowercase_message(serve):
    message = "The security token included in the request is invalid."
    served = serve(IAM_API, iam_authorizer=Authorizer(Decision(False, None, None, message)))
    answer = served.call("GET", "/v1/users/x", headers=SIGNED)
    assert (answer.status, answer.json()) == (403, {"message": message})


def test_iam_allowed_request_reaches_the_function_with_the_callers_identity(serve):
    authorizer = Authorizer(Decision(True, CALLER, "AKIA0000", ""))
    served = serve(IAM_API, iam_authorizer=authorizer)
    target = f"/v1/users/{EMAIL_IN_PATH}?b=2&a=1"
    answer = served.call("PUT", target, headers=SIGNED, body=b'{"x": 1}')
    assert answer.status == 200
    (call,) = authorizer.calls
    assert call["arn"] == f"{EXECUTION_ARN}/v1/PUT/users/{EMAIL_IN_PATH}"
    assert call["action"] == "execute-api:Invoke"
    assert call["url"] == f"http://127.0.0.1:{served.gateway.port}{target}"  # as the client signed it
    assert (call["method"], call["body"]) == ("PUT", b'{"x": 1}')
    assert call["headers"]["Authorization"] == SIGNED[0][1]
    identity = served.function.event["requestContext"]["identity"]
    assert (identity["userArn"], identity["accessKey"], identity["accountId"]) == (CALLER, "AKIA0000", ACCOUNT)


# --- The function's resource policy ---------------------------------------------------------


@pytest.mark.parametrize(
    "permissions",
    [
        [],
        [permission(f"{EXECUTION_ARN}/prod/*/*")],
        [permission(f"{EXECUTION_ARN}/v1/POST/*")],
        [permission(principal="s3.amazonaws.com")],
        [permission(function_name="another-function")],
        [permission(action="lambda:GetFunction")],
    ],
    ids=["none", "other-stage", "other-method", "other-principal", "other-function", "other-action"],
)
def test_without_a_permission_for_api_gateway_the_answer_is_500(serve, permissions):
    served = serve(ROUTED, permissions=permissions)
    answer = served.call("GET", "/v1/users/me")
    assert (answer.status, answer.json()) == (500, {"message": "Internal server error"})
    assert served.function.calls == []
    assert any("Invalid permissions on Lambda function" in line for line in served.log)


def test_a_permission_scoped_to_the_method_and_resource_lets_it_through(serve):
    scoped = permission(f"{EXECUTION_ARN}/v1/GET/users/{{email}}", function_name=FUNCTION_ARN, action="lambda:*")
    served = serve(ROUTED, permissions=[scoped])
    assert served.call("GET", "/v1/users/someone").status == 200
    assert served.call("GET", "/v1/users/me").status == 500


def test_arn_like_and_may_invoke():
    assert arn_like("arn:x:*/v1/*/*", "arn:x:api/v1/GET/users/{email}")
    assert arn_like("arn:x:api/v?/GET/", "arn:x:api/v1/GET/")
    assert not arn_like("arn:x:api/v1/GET/users.csv", "arn:x:api/v1/GET/usersXcsv")
    source = f"{EXECUTION_ARN}/v1/GET/"
    assert may_invoke([permission(source_arn=None)], FUNCTION_ARN, source, ACCOUNT)
    assert not may_invoke([permission(source_arn=None, principal="*")], FUNCTION_ARN, source, ACCOUNT)


# --- Serving --------------------------------------------------------------------------------


def test_requests_before_start_or_without_an_api_are_503():
    gateway = ApiGateway(None, region=REGION, account_id=ACCOUNT, invoke=Function(), permissions=[], log=lambda _: None)
    try:
        port = gateway.bind()
        served = Served(gateway, Function(), [])
        assert (served.call("GET", "/v1/users").status, served.call("GET", "/v1/users").json()) == (
            503,
            {"message": "Service Unavailable"},
        )
        gateway.start()
        assert served.call("GET", "/v1/users").status == 503  # still no API
        gateway.set_api(ROUTED)
        assert served.call("GET", "/v1/users").status == 500  # no permission yet
        gateway.set_permissions([permission()])
        assert served.call("GET", "/v1/users").status == 200
        assert gateway.invoke_url == f"http://127.0.0.1:{port}/v1"
    finally:
        gateway.stop()


def test_a_port_in_use_is_an_error_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        gateway = ApiGateway(ROUTED, region=REGION, account_id=ACCOUNT, invoke=Function(), permissions=[])
        with pytest.raises(OSError, match=f"port {port} .*in use"):
            gateway.bind(port)


def test_a_body_over_the_payload_limit_is_413_and_a_chunked_body_is_read_whole(serve):
    served = serve(ROUTED)
    connection = http.client.HTTPConnection("127.0.0.1", served.gateway.port, timeout=30)
    try:
        connection.request("POST", "/v1/x", body=iter([b"first,", b"second"]), encode_chunked=True)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b'{"resource": "/{proxy+}"}')
        assert served.function.event["body"] == "first,second"
    finally:
        connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", served.gateway.port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/x")
        connection.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
        connection.endheaders()  # the body is never sent: the gateway answers from the length alone
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (413, {"message": "Request Too Long"})
    finally:
        connection.close()
    assert len(served.function.calls) == 1


def test_concurrent_requests_are_served_concurrently(serve):
    both_in_flight = threading.Barrier(2, timeout=10)

    def respond(event: dict[str, Any]) -> Any:
        both_in_flight.wait()  # breaks (→ 502) unless the other request is being served at the same time
        return echo(event)

    served = serve(ROUTED, Function(respond))
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(served.call("GET", "/v1/x").status)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]


def test_access_log_has_one_line_per_request_without_request_values(serve):
    served = serve(keyed())
    headers = [("x-api-key", GOOD.value), ("X-Email", EMAIL)]
    served.call("POST", f"/v1/users/{EMAIL_IN_PATH}?email={EMAIL_IN_PATH}", headers=headers, body=EMAIL.encode())
    served.call("GET", f"/v2/{EMAIL_IN_PATH}")
    assert len(served.log) == 2
    assert re.fullmatch(r"POST /\{proxy\+\} 200 \d+ms [0-9a-f-]{36}", served.log[0])
    assert re.fullmatch(r"GET - 403 \d+ms [0-9a-f-]{36}", served.log[1])
    for secret in ("someone", GOOD.value):
        assert not any(secret in line for line in served.log)


# --- Gateway responses ----------------------------------------------------------------------

NO_STORE = "gatewayresponse.header.Cache-Control", "'no-store'"
NOSNIFF = "gatewayresponse.header.X-Content-Type-Options", "'nosniff'"


def customised(response_type: str, *parameters: tuple[str, str], **settings: Any) -> GatewayResponse:
    values = {"status_code": None, "response_templates": ()}
    return GatewayResponse(response_type=response_type, response_parameters=parameters, **{**values, **settings})


def private(answer: Answer) -> tuple[list[str], list[str]]:
    return answer.header("Cache-Control"), answer.header("X-Content-Type-Options")


def test_the_gateways_own_answers_carry_the_headers_of_the_default_4xx_and_5xx_responses(serve):
    # GIVEN an API whose DEFAULT_4XX and DEFAULT_5XX responses add static headers
    keys = keyed(rate=0.001, burst=1)
    api = spec(
        *keys.methods,
        method("/broken"),
        usage_plans=keys.usage_plans,
        api_keys=keys.api_keys,
        gateway_responses=(customised("DEFAULT_4XX", NO_STORE, NOSNIFF), customised("DEFAULT_5XX", NO_STORE, NOSNIFF)),
    )
    served = serve(api, Function(respond=lambda event: "not a dict" if event["resource"] == "/broken" else echo(event)))
    key = [("x-api-key", GOOD.value)]
    # THEN the function's own answer is its own: nothing is added to it
    assert (first := served.call("GET", "/v1/users", headers=key)).status == 200
    assert private(first) == ([], [])
    # AND each answer the gateway writes keeps its status and carries both headers, once
    answers = {
        "no key (403 Forbidden)": served.call("GET", "/v1/users"),
        "outside the stage (403)": served.call("GET", "/users"),
        "no route (403 Missing Authentication Token)": served.call("GET", "/v1/"),
        "malformed proxy response (502)": served.call("GET", "/v1/broken"),
        "the key's throttle (429)": served.call("GET", "/v1/users", headers=key),
    }
    assert [a.status for a in answers.values()] == [403, 403, 403, 502, 429]
    for what, answer in answers.items():
        assert private(answer) == (["no-store"], ["nosniff"]), what


def test_an_iam_denial_naming_the_path_carries_the_default_4xx_headers(serve):
    # IAM's message names the resource, an email in its path: no cache may keep it.
    message = f"User: {CALLER} is not authorized to perform: execute-api:Invoke on resource: .../{EMAIL_IN_PATH}"
    api = spec(*IAM_API.methods, gateway_responses=(customised("DEFAULT_4XX", NO_STORE, NOSNIFF),))
    served = serve(api, iam_authorizer=Authorizer(Decision(False, CALLER, "AKIA0000", message)))
    for headers in (SIGNED, []):  # refused, and unsigned (Missing Authentication Token)
        answer = served.call("GET", f"/v1/users/{EMAIL_IN_PATH}", headers=headers)
        assert (answer.status, private(answer)) == (403, (["no-store"], ["nosniff"])), headers


def test_a_response_type_customised_itself_wins_over_its_default(serve):
    api = spec(
        method("/users"),
        gateway_responses=(
            customised("DEFAULT_4XX", NO_STORE, NOSNIFF),
            customised("MISSING_AUTHENTICATION_TOKEN", ("gatewayresponse.header.X-Only", "'this'")),
        ),
    )
    served = serve(api)
    missing = served.call("GET", "/v1/nope")
    assert (missing.status, missing.header("X-Only"), private(missing)) == (403, ["this"], ([], []))
    assert private(served.call("GET", "/users")) == (["no-store"], ["nosniff"]), "outside the stage: the default"


def test_without_gateway_responses_the_gateways_answers_have_no_added_headers(serve):
    answer = serve(spec(method("/users"))).call("GET", "/v1/nope")
    assert (answer.status, private(answer)) == (403, ([], []))


@pytest.mark.parametrize(
    ("response", "named"),
    [
        (customised("DEFAULT_4XX", ("gatewayresponse.header.X-Id", "method.request.header.x-id")), "static"),
        (customised("DEFAULT_4XX", ("gatewayresponse.querystring.a", "'b'")), "header"),
        (customised("DEFAULT_4XX", NO_STORE, status_code="404"), "status code"),
        (customised("DEFAULT_5XX", response_templates=(("application/json", "{}"),)), "template"),
    ],
)
def test_a_gateway_response_local_mode_cannot_serve_as_aws_would_is_refused_naming_what(response, named):
    with pytest.raises(NotEmulated, match=named):
        ApiGateway(
            spec(method("/users"), gateway_responses=(response,)),
            region=REGION,
            account_id=ACCOUNT,
            invoke=Function(),
            permissions=[],
        )


# --- The program's own API ------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    """The dev stack's API and the functions' resource policies, as the program declares them."""

    api: RestApiSpec
    permissions: list[InvokePermission]


@pytest.fixture(scope="module")
def program() -> Program:
    from local.mocks import run_program
    from local.registry import Registry

    registry = Registry.from_plan(run_program("dev"), REGION, ACCOUNT)
    (api,) = registry.apis
    return Program(api, registry.permissions)


@pytest.mark.parametrize(
    ("http_method", "path", "resource", "declared"),
    [
        ("GET", "/users", "/users", "GET"),
        ("GET", f"/users/{EMAIL_IN_PATH}", "/users/{email}", "GET"),
        ("GET", "/jobs/0123456789abcdef0123456789abcdef", "/jobs/{jobId}", "GET"),
        ("DELETE", "/users", "/users", "ANY"),
        ("POST", "/users/x", "/users/{email}", "ANY"),
        ("PUT", "/jobs", "/jobs", "ANY"),
        ("DELETE", "/jobs/x", "/jobs/{jobId}", "ANY"),
        ("GET", "", "/", "ANY"),
        ("GET", "/nope/x", "/{proxy+}", "ANY"),
    ],
)
def test_every_route_of_the_program_resolves_to_the_method_it_declared(program, http_method, path, resource, declared):
    route = Routes(program.api.methods).route(path or "/", http_method)
    assert (route.resource_path, route.method.http_method) == (resource, declared)


def test_the_program_api_admits_its_key_and_refuses_others(serve, program):
    served = serve(program.api, permissions=program.permissions)
    (key,) = program.api.api_keys
    assert served.call("GET", "/v1/users", headers=[("x-api-key", key.value)]).status == 200
    assert served.call("GET", "/v1/users").status == 403
    assert served.call("GET", "/v1/users", headers=[("x-api-key", key.value[::-1])]).status == 403


def test_the_program_apis_own_answers_are_private(serve, program):
    """The dev stack's API Gateway 403 for a missing key (its body can name the resource path) and
    its 502 carry the headers the function puts on its own answers."""
    served = serve(program.api, Function(error={"errorType": "Crash"}), permissions=program.permissions)
    key = [("x-api-key", program.api.api_keys[0].value)]
    for what, answer, status in [
        ("no key", served.call("GET", f"/v1/users/{EMAIL_IN_PATH}"), 403),
        ("a wrong key", served.call("GET", "/v1/users", headers=[("x-api-key", "wrong")]), 403),
        ("the function failed", served.call("GET", "/v1/users", headers=key), 502),
    ]:
        assert (answer.status, private(answer)) == (status, (["no-store"], ["nosniff"])), what


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "query"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = FUNCTION_ARN
    aws_request_id: str = "local"


@pytest.fixture
def query_handler(monkeypatch) -> Iterator[Any]:
    """The real query handler (`handlers/query/app.py`) on moto, with one stored user."""
    import boto3
    from moto import mock_aws

    from handlers.common.schema import DEFAULT_SCHEMA

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "ITEMS_TABLE": "users",
        "SCHEMA": DEFAULT_SCHEMA.to_json(),
        "JOBS_TABLE": "jobs",
        "JOBS_INDEX": "recent-jobs",
        "POWERTOOLS_SERVICE_NAME": "query",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table, keys in {"users": ["email"], "jobs": ["jobId", "sk"]}.items():
            dynamodb.create_table(
                TableName=table,
                KeySchema=[
                    {"AttributeName": k, "KeyType": kind} for k, kind in zip(keys, ["HASH", "RANGE"], strict=False)
                ],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        dynamodb.put_item(TableName="users", Item={"email": {"S": EMAIL}, "name": {"S": "Someone"}})
        yield importlib.reload(importlib.import_module("handlers.query.app"))


def test_the_program_api_serves_the_real_query_handler(serve, program, query_handler):
    function = Function(respond=lambda event: query_handler.handler(event, LambdaContext()))
    served = serve(program.api, function, permissions=program.permissions)
    key = [("x-api-key", program.api.api_keys[0].value)]
    found = served.call("GET", f"/v1/users/{EMAIL_IN_PATH}", headers=key)
    assert (found.status, found.json()["email"], found.json()["name"]) == (200, EMAIL, "Someone")
    assert served.call("GET", "/v1/users/not-an-email", headers=key).status == 400
    assert served.call("GET", "/v1/users/nobody%40example.com", headers=key).status == 404
    assert served.call("DELETE", "/v1/users", headers=key).status == 405
    assert served.call("GET", "/v1/nope/x", headers=key).status == 404
    listed = served.call("GET", "/v1/users?limit=1", headers=key)
    assert (listed.status, listed.json()["count"]) == (200, 1)


def test_every_answer_of_the_real_query_handler_reaches_the_caller_private(serve, program, query_handler):
    """`Cache-Control: no-store` and `X-Content-Type-Options: nosniff`, as the function sets them,
    on its answers and its errors alike, through the gateway."""
    function = Function(respond=lambda event: query_handler.handler(event, LambdaContext()))
    served = serve(program.api, function, permissions=program.permissions)
    key = [("x-api-key", program.api.api_keys[0].value)]
    requests = [
        ("GET", f"/v1/users/{EMAIL_IN_PATH}", 200),
        ("GET", "/v1/users?limit=1", 200),
        ("GET", "/v1/users/not-an-email", 400),
        ("GET", "/v1/users/nobody%40example.com", 404),
        ("DELETE", "/v1/users", 405),
        ("GET", "/v1/nope/x", 404),
    ]
    for http_method, target, status in requests:
        answer = served.call(http_method, target, headers=key)
        assert answer.status == status, target
        assert (answer.header("Cache-Control"), answer.header("X-Content-Type-Options")) == (
            ["no-store"],
            ["nosniff"],
        ), f"{http_method} {target}"
