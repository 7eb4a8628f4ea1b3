"""What the running stack is made of, read from the program's own declarations.

After the deployer has run the program (`local.deployer`), every resource it declared is in a
`Plan` with the inputs the provider received and the identifiers the emulator gave back. The local
runtime (function hosts, event sources, the API) needs a few of those resources as typed values:
this module is the one place that reads them out of the plan. Nothing here names a resource,
an ARN or a route of its own: all of it comes from the program.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.event_filters import UnsupportedPattern, parse_patterns
from local.mocks import DeclaredResource, Plan


class NotEmulated(NotImplementedError):
    """The program declares something local mode cannot run as AWS would; `str()` says what."""


FUNCTION = "aws:lambda/function:Function"
EVENT_SOURCE_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
EVENT_INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
RECURSION_CONFIG = "aws:lambda/functionRecursionConfig:FunctionRecursionConfig"
PERMISSION = "aws:lambda/permission:Permission"
REST_API = "aws:apigateway/restApi:RestApi"
API_RESOURCE = "aws:apigateway/resource:Resource"
API_METHOD = "aws:apigateway/method:Method"
API_INTEGRATION = "aws:apigateway/integration:Integration"
API_STAGE = "aws:apigateway/stage:Stage"
API_DEPLOYMENT = "aws:apigateway/deployment:Deployment"
API_METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
API_USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
API_KEY = "aws:apigateway/apiKey:ApiKey"
API_USAGE_PLAN_KEY = "aws:apigateway/usagePlanKey:UsagePlanKey"
API_GATEWAY_RESPONSE = "aws:apigateway/response:Response"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
QUEUE = "aws:sqs/queue:Queue"
BUCKET = "aws:s3/bucket:Bucket"

# Lambda's defaults when the program leaves a setting out
# (https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html,
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128
DEFAULT_ASYNC_RETRIES = 2
DEFAULT_MAX_EVENT_AGE_SECONDS = 6 * 60 * 60
# An SQS event source without ScalingConfig scales up to the account's concurrency; locally, to this.
DEFAULT_QUEUE_CONCURRENCY = 5


def _number(value: Any, default: int) -> int:
    """A numeric input (the engine hands numbers over as floats), or the default when absent."""
    return default if value is None else int(value)


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function as the program configured it."""

    name: str
    arn: str
    role_arn: str
    handler: str
    """`module.path.function`, e.g. `handlers.query.app.handler`."""
    runtime: str
    archive: Path
    """The zip `pulumi up` would upload (built by the program itself, `infra.packaging`)."""
    code_sha256: str
    environment: Mapping[str, str]
    timeout_seconds: int
    memory_mb: int
    log_group: str | None
    reserved_concurrency: int | None
    """`reservedConcurrentExecutions`, if the program sets it."""

    @property
    def package(self) -> str:
        """The handler subpackage the archive is built from (`handlers.<package>.app.handler`)."""
        return self.handler.split(".")[1]


@dataclass(frozen=True)
class QueueEventSource:
    """An SQS event source mapping."""

    uuid: str
    function_arn: str
    queue_arn: str
    batch_size: int
    batching_window_seconds: int
    max_concurrency: int
    report_batch_item_failures: bool
    enabled: bool
    filters: tuple[Mapping[str, Any], ...] = ()
    """`FilterCriteria` patterns (`local.event_filters`): a message none matches is deleted unseen."""


@dataclass(frozen=True)
class AsyncInvokeConfig:
    """How a function's asynchronous invocations are retried and where failures go."""

    function_name: str
    max_retry_attempts: int
    max_event_age_seconds: int
    on_failure: str | None
    """ARN of the on-failure destination (an SQS queue here), if any."""
    on_success: str | None


@dataclass(frozen=True)
class InvokePermission:
    """A resource-based permission on a function (`aws:lambda/permission:Permission`)."""

    function_name: str
    action: str
    principal: str
    source_arn: str | None
    source_account: str | None


@dataclass(frozen=True)
class ApiMethod:
    """One method of one REST resource, with its Lambda proxy integration."""

    path: str
    """The resource path template, e.g. `/users/{email}` or `/{proxy+}` (`/` for the root)."""
    http_method: str
    """`GET`, …, or `ANY`."""
    authorization: str
    """`NONE` or `AWS_IAM`."""
    api_key_required: bool
    integration_type: str | None
    function_arn: str | None
    """The function a Lambda integration calls, from its URI."""
    integration_timeout_seconds: float | None = None
    """The integration's `timeoutMilliseconds`, if set; else the gateway's 29 s ("Custom timeout
    between 50 and 29,000 milliseconds. The default value is 29,000 milliseconds or 29 seconds",
    `timeoutInMillis` of https://docs.aws.amazon.com/apigateway/latest/api/API_Integration.html)."""


@dataclass(frozen=True)
class UsagePlan:
    """A usage plan: the keys it admits, their throttle and quota, on these stages."""

    id: str
    stages: tuple[tuple[str, str], ...]
    """(rest API id, stage name) pairs."""
    rate_limit: float | None
    burst_limit: int | None
    quota_limit: int | None
    quota_period: str | None
    key_ids: tuple[str, ...]


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    value: str
    enabled: bool


@dataclass(frozen=True)
class GatewayResponse:
    """A customised gateway response of the API (`aws:apigateway/response:Response`), as declared;
    `local.apigw` serves it."""

    response_type: str
    """`DEFAULT_4XX`, `MISSING_AUTHENTICATION_TOKEN`, …"""
    status_code: str | None
    response_parameters: tuple[tuple[str, str], ...]
    """(`gatewayresponse.header.<Name>`, value) pairs."""
    response_templates: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RestApiSpec:
    """A REST API with its deployed stage."""

    id: str
    name: str
    execution_arn: str
    stage_name: str
    methods: tuple[ApiMethod, ...]
    rate_limit: float | None
    """The stage's `*/*` method settings throttle, if any."""
    burst_limit: int | None
    usage_plans: tuple[UsagePlan, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    gateway_responses: tuple[GatewayResponse, ...] = ()


@dataclass
class Registry:
    """The parts of the deployed stack the local runtime reads."""

    region: str
    account_id: str
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    """By function name."""
    queue_sources: list[QueueEventSource] = field(default_factory=list)
    async_configs: dict[str, AsyncInvokeConfig] = field(default_factory=dict)
    """By function name."""
    recursion: dict[str, str] = field(default_factory=dict)
    """Function name → `Allow` / `Terminate`, kept here as moto has no PutFunctionRecursionConfig."""
    permissions: list[InvokePermission] = field(default_factory=list)
    apis: list[RestApiSpec] = field(default_factory=list)
    resource_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Bucket and queue policies (parsed), by the ARN of the bucket or queue they protect."""
    queue_urls: dict[str, str] = field(default_factory=dict)
    """Queue ARN → URL."""

    def function(self, name_or_arn: str) -> FunctionSpec:
        """A function by name, ARN or qualified ARN; fails naming the functions there are."""
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        if name not in self.functions:
            raise LookupError(f"no function {name!r}; functions: {', '.join(sorted(self.functions))}")
        return self.functions[name]

    @classmethod
    def from_plan(cls, plan: Plan, region: str, account_id: str) -> Registry:
        registry = cls(region=region, account_id=account_id)
        for resource in plan.resources:
            reader = _READERS.get(resource.type)
            if reader is not None:
                reader(registry, resource)
        registry.apis = [_rest_api(plan, api) for api in plan.of_type(REST_API)]
        return registry


def _read_function(registry: Registry, resource: DeclaredResource) -> None:
    inputs, outputs = resource.inputs, resource.outputs
    code = inputs["code"]
    logging_config = inputs.get("loggingConfig") or {}
    reserved = inputs.get("reservedConcurrentExecutions")
    spec = FunctionSpec(
        name=outputs["name"],
        arn=outputs["arn"],
        role_arn=inputs["role"],
        handler=inputs["handler"],
        runtime=inputs["runtime"],
        archive=Path(getattr(code, "path", code)),
        code_sha256=inputs.get("codeSha256", ""),
        environment=dict((inputs.get("environment") or {}).get("variables") or {}),
        timeout_seconds=_number(inputs.get("timeout"), DEFAULT_TIMEOUT_SECONDS),
        memory_mb=_number(inputs.get("memorySize"), DEFAULT_MEMORY_MB),
        log_group=logging_config.get("logGroup"),
        reserved_concurrency=None if reserved is None or reserved < 0 else int(reserved),
    )
    registry.functions[spec.name] = spec


def _read_event_source(registry: Registry, resource: DeclaredResource) -> None:
    inputs = resource.inputs
    source = inputs["eventSourceArn"]
    if not source.startswith("arn:aws:sqs:"):
        raise NotEmulated(f"{resource.name}: local mode runs SQS event sources only, not {source}")
    try:
        filters = parse_patterns((inputs.get("filterCriteria") or {}).get("filters") or [])
    except UnsupportedPattern as error:
        raise NotEmulated(f"{resource.name}: {error}") from error
    registry.queue_sources.append(
        QueueEventSource(
            uuid=resource.outputs.get("uuid") or resource.id or resource.name,
            function_arn=inputs["functionName"],
            queue_arn=source,
            batch_size=_number(inputs.get("batchSize"), 10),
            batching_window_seconds=_number(inputs.get("maximumBatchingWindowInSeconds"), 0),
            max_concurrency=_number(
                (inputs.get("scalingConfig") or {}).get("maximumConcurrency"), DEFAULT_QUEUE_CONCURRENCY
            ),
            report_batch_item_failures="ReportBatchItemFailures" in (inputs.get("functionResponseTypes") or []),
            enabled=inputs.get("enabled", True),
            filters=filters,
        )
    )


def _read_async_config(registry: Registry, resource: DeclaredResource) -> None:
    inputs = resource.inputs
    destinations = inputs.get("destinationConfig") or {}
    name = inputs["functionName"].split(":function:")[-1]
    registry.async_configs[name] = AsyncInvokeConfig(
        function_name=name,
        max_retry_attempts=_number(inputs.get("maximumRetryAttempts"), DEFAULT_ASYNC_RETRIES),
        max_event_age_seconds=_number(inputs.get("maximumEventAgeInSeconds"), DEFAULT_MAX_EVENT_AGE_SECONDS),
        on_failure=(destinations.get("onFailure") or {}).get("destination"),
        on_success=(destinations.get("onSuccess") or {}).get("destination"),
    )


def _read_recursion(registry: Registry, resource: DeclaredResource) -> None:
    registry.recursion[resource.inputs["functionName"]] = resource.inputs["recursiveLoop"]


def _read_permission(registry: Registry, resource: DeclaredResource) -> None:
    inputs = resource.inputs
    registry.permissions.append(
        InvokePermission(
            function_name=inputs["function"].split(":function:")[-1],
            action=inputs["action"],
            principal=inputs["principal"],
            source_arn=inputs.get("sourceArn"),
            source_account=inputs.get("sourceAccount"),
        )
    )


def _read_bucket_policy(registry: Registry, resource: DeclaredResource) -> None:
    bucket = resource.inputs["bucket"]
    registry.resource_policies[f"arn:aws:s3:::{bucket}"] = json.loads(resource.inputs["policy"])


def _read_queue_policy(registry: Registry, resource: DeclaredResource) -> None:
    url = resource.inputs["queueUrl"]
    arn = next((a for a, u in registry.queue_urls.items() if u == url), None)
    if arn is None:
        raise NotEmulated(f"{resource.name}: queue policy for {url}, a queue the program did not declare before it")
    registry.resource_policies[arn] = json.loads(resource.inputs["policy"])


def _read_queue(registry: Registry, resource: DeclaredResource) -> None:
    registry.queue_urls[resource.outputs["arn"]] = resource.outputs["url"]


_READERS = {
    FUNCTION: _read_function,
    EVENT_SOURCE_MAPPING: _read_event_source,
    EVENT_INVOKE_CONFIG: _read_async_config,
    RECURSION_CONFIG: _read_recursion,
    PERMISSION: _read_permission,
    BUCKET_POLICY: _read_bucket_policy,
    QUEUE_POLICY: _read_queue_policy,
    QUEUE: _read_queue,
}


def _function_of_uri(uri: str | None) -> str | None:
    """`arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations` → `<arn>`."""
    if not uri or "/functions/" not in uri:
        return None
    return uri.split("/functions/", 1)[1].removesuffix("/invocations")


def _rest_api(plan: Plan, api: DeclaredResource) -> RestApiSpec:
    api_id = api.id
    mine = [r for r in plan.resources if r.inputs.get("restApi") == api_id]
    paths: dict[str, str] = {api.outputs["rootResourceId"]: "/"}
    parents = {r.id: r for r in mine if r.type == API_RESOURCE}

    def path_of(resource_id: str) -> str:
        if resource_id not in paths:
            resource = parents[resource_id]
            parent = path_of(resource.inputs["parentId"])
            paths[resource_id] = parent.rstrip("/") + "/" + resource.inputs["pathPart"]
        return paths[resource_id]

    integrations = {
        (r.inputs["resourceId"], r.inputs["httpMethod"]): r.inputs for r in mine if r.type == API_INTEGRATION
    }
    methods = []
    for method in (r for r in mine if r.type == API_METHOD):
        key = (method.inputs["resourceId"], method.inputs["httpMethod"])
        integration = integrations.get(key) or {}
        methods.append(
            ApiMethod(
                path=path_of(method.inputs["resourceId"]),
                http_method=method.inputs["httpMethod"],
                authorization=method.inputs.get("authorization", "NONE"),
                api_key_required=bool(method.inputs.get("apiKeyRequired", False)),
                integration_type=integration.get("type"),
                function_arn=_function_of_uri(integration.get("uri")),
                integration_timeout_seconds=_milliseconds(integration.get("timeoutMilliseconds")),
            )
        )
    stages = [r for r in mine if r.type == API_STAGE]
    if len(stages) != 1:
        raise NotEmulated(f"{api.name}: local mode serves exactly one stage per API, found {len(stages)}")
    stage_name = stages[0].inputs["stageName"]
    methods = _deployed(methods, _deployment_of(mine, stages[0]))
    throttle: Mapping[str, Any] = {}
    for settings in (r for r in mine if r.type == API_METHOD_SETTINGS):
        if settings.inputs.get("stageName") == stage_name and settings.inputs.get("methodPath") == "*/*":
            throttle = settings.inputs.get("settings") or {}
    keys = {
        r.id: ApiKey(
            id=r.id,
            name=r.outputs.get("name", r.name),
            value=r.outputs["value"],
            enabled=bool(r.inputs.get("enabled", True)),
        )
        for r in plan.of_type(API_KEY)
    }
    plan_keys: dict[str, list[str]] = {}
    for link in plan.of_type(API_USAGE_PLAN_KEY):
        plan_keys.setdefault(link.inputs["usagePlanId"], []).append(link.inputs["keyId"])
    usage_plans = []
    for usage in plan.of_type(API_USAGE_PLAN):
        stages_of = tuple((s["apiId"], s["stage"]) for s in usage.inputs.get("apiStages") or [])
        if not any(api_id == a for a, _ in stages_of):
            continue
        limits = usage.inputs.get("throttleSettings") or {}
        quota = usage.inputs.get("quotaSettings") or {}
        usage_plans.append(
            UsagePlan(
                id=usage.id,
                stages=stages_of,
                rate_limit=limits.get("rateLimit"),
                burst_limit=None if limits.get("burstLimit") is None else int(limits["burstLimit"]),
                quota_limit=None if quota.get("limit") is None else int(quota["limit"]),
                quota_period=quota.get("period"),
                key_ids=tuple(plan_keys.get(usage.id, ())),
            )
        )
    used = {key for usage in usage_plans for key in usage.key_ids}
    return RestApiSpec(
        id=api_id,
        name=api.outputs.get("name", api.name),
        execution_arn=api.outputs["executionArn"],
        stage_name=stage_name,
        methods=tuple(methods),
        rate_limit=throttle.get("throttlingRateLimit"),
        burst_limit=None if throttle.get("throttlingBurstLimit") is None else int(throttle["throttlingBurstLimit"]),
        usage_plans=tuple(usage_plans),
        api_keys=tuple(keys[k] for k in keys if k in used),
        gateway_responses=tuple(
            GatewayResponse(
                response_type=r.inputs["responseType"],
                status_code=r.inputs.get("statusCode"),
                response_parameters=tuple(sorted((r.inputs.get("responseParameters") or {}).items())),
                response_templates=tuple(sorted((r.inputs.get("responseTemplates") or {}).items())),
            )
            for r in plan.of_type(API_GATEWAY_RESPONSE)
            if r.inputs.get("restApiId") == api_id
        ),
    )


def _milliseconds(value: Any) -> float | None:
    return None if value is None else float(value) / 1000


def _deployment_of(resources: list[DeclaredResource], stage: DeclaredResource) -> DeclaredResource | None:
    """The deployment a stage serves (its `deployment` input is the deployment's id)."""
    return next((r for r in resources if r.type == API_DEPLOYMENT and r.id == stage.inputs.get("deployment")), None)


def _deployed(methods: list[ApiMethod], deployment: DeclaredResource | None) -> list[ApiMethod]:
    """The methods a stage serves: those in its deployment's snapshot (`apiSummary`, path → method,
    recorded by `local.deployer` as the deployment was created), as API Gateway serves a stage its
    deployment and nothing declared since. A plan made without the emulator has no snapshot: every
    declared method then."""
    summary = None if deployment is None else deployment.outputs.get("apiSummary")
    if summary is None:
        return methods
    return [m for m in methods if m.http_method in (summary.get(m.path) or {})]


def permits_invoke(
    permissions: list[InvokePermission],
    function_name: str,
    principal: str,
    source_arn: str,
    source_account: str | None = None,
) -> bool:
    """Whether the function's resource policy lets a service principal invoke it for this source.

    Lambda checks this when a service (S3, API Gateway) invokes a function on a resource's behalf.
    `sourceArn` may hold `*` wildcards (API Gateway's `<api>/<stage>/*/*`).
    """
    for permission in permissions:
        if permission.function_name != function_name or permission.principal != principal:
            continue
        if permission.action not in ("lambda:InvokeFunction", "lambda:*"):
            continue
        if permission.source_arn is not None and not fnmatch.fnmatchcase(source_arn, permission.source_arn):
            continue
        if permission.source_account is not None and permission.source_account != source_account:
            continue
        return True
    return False
