"""The query stage: a read-only function behind a throttled, authenticated REST API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from handlers.common.schema import SCHEMA_VARIABLE, Schema
from handlers.query.routes import PRIVATE_HEADERS, routes_for
from infra.config import AUTH_MODES, FunctionSizing
from infra.function import FunctionDefaults, ServiceFunction, ServiceFunctionArgs
from infra.iam import assume_role_policy, policy_document, statement

STAGE_NAME = "v1"


def _routes(resources: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(parent path, path part) of every resource of `resources` and their parents, parents first
    ("" is the API's root); then `{proxy+}`, which catches every other path."""
    routes: dict[tuple[str, str], None] = {}
    for resource in resources:
        parts = resource.strip("/").split("/")
        for depth, part in enumerate(parts):
            routes["/".join(parts[:depth]), part] = None
    return (*routes, ("", "{proxy+}"))


def _methods(resources: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(path, method) of every method of the API serving GET on `resources`, each a Lambda proxy
    integration. GET serves the function's routes; ANY everywhere else sends every other request to
    the function too, so clients get its JSON 404 (unknown path) or 405 (known path, other method)
    instead of API Gateway's 403 "Missing Authentication Token"."""
    return (
        *((resource.strip("/"), "GET") for resource in resources),
        ("", "ANY"),
        *((f"{parent}/{part}" if parent else part, "ANY") for parent, part in _routes(resources)),
    )


# API Gateway's own answers carry the headers the function puts on each of its answers
# (handlers/query/routes.py's PRIVATE_HEADERS): its 403 for a missing key or an IAM denial can name the
# resource path, an email among them, so no cache may keep it, and no browser may read a body as
# another type. Each response type API Gateway writes falls back to DEFAULT_4XX or DEFAULT_5XX when
# not customised itself (https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html),
# so these two cover the 403s, 413, 429s, 502 and 504 alike, each keeping its own status and body.
GATEWAY_RESPONSE_TYPES = ("DEFAULT_4XX", "DEFAULT_5XX")
# One JSON object per request: what an operator needs to trace a call to its Lambda invocation.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.caller",
        "apiKeyId": "$context.identity.apiKeyId",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integration.error",
    },
    separators=(",", ":"),
)


def _slug(path: str) -> str:
    """`users/{email}` → `users-email`: a route as part of a resource name."""
    return path.replace("/", "-").replace("{", "").replace("}", "").replace("+", "") or "root"


def _formerly(name: str, applies: bool) -> list[pulumi.Alias]:
    """The earlier logical name a resource answers to, so it keeps its state rather than being replaced."""
    return [pulumi.Alias(name=name)] if applies else []


@dataclass
class QueryApiArgs:
    """Inputs of `QueryApi`."""

    schema: Schema
    """The stack's schema: the routes (`/{name}`, `/{name}/{<key attribute>}`) and the items' answers."""
    users_table_name: pulumi.Input[str]
    """The items table (the users table of the default schema)."""
    users_table_arn: pulumi.Input[str]
    """Its ARN."""
    jobs_table_name: pulumi.Input[str]
    """The jobs table."""
    jobs_table_arn: pulumi.Input[str]
    """Its ARN."""
    jobs_index_name: str
    """The jobs table's index of job records by upload time, which `GET /jobs` queries."""
    jobs_index_arn: pulumi.Input[str]
    """Its ARN (`<table arn>/index/<name>`)."""
    auth: str
    """`apiKey` (API key + usage plan), `iam` (SigV4) or `none`."""
    allow_public: bool
    """Acknowledges that `auth = "none"` lets anyone read the stored personal data."""
    consumers: Sequence[str]
    """Names of the API's consumers, one API key each (`apiKey` mode); the first is the main one."""
    quota_per_day: int
    """Requests per day each API key may make (`apiKey` mode)."""
    throttle_rate_limit: int
    """Stage steady-state requests per second."""
    throttle_burst_limit: int
    """Stage burst capacity."""
    manage_account: bool
    """Set the region's API Gateway CloudWatch role, without which access logs are not written."""
    account_id: pulumi.Input[str]
    """The stack's account: API Gateway may assume the CloudWatch role for this account's APIs only."""
    region: pulumi.Input[str]
    """The stack's region, whose API Gateway setting the role is."""
    sizing: FunctionSizing
    """Memory and timeout of the function."""
    defaults: FunctionDefaults
    """Runtime, architecture, log retention, tags."""

    def __post_init__(self) -> None:
        # Each resource and method is named from its path (`_slug`): the schema's collection is never
        # the root's or the catch-all's name (`handlers.common.schema.RESERVED_COLLECTIONS`).
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth = {self.auth!r}: use one of {', '.join(AUTH_MODES)}")
        if self.auth == "none" and not self.allow_public:
            raise ValueError("auth = 'none' needs allow_public = True: the API serves personal data")
        if self.auth == "apiKey" and (not self.consumers or len(set(self.consumers)) != len(self.consumers)):
            raise ValueError(f"consumers = {list(self.consumers)}: at least one, each named once")


class QueryApi(pulumi.ComponentResource):
    """Query function, REST API, stage with throttling and access logs, and its authentication."""

    function: aws.lambda_.Function
    """The query function."""
    rest_api: aws.apigateway.RestApi
    """The REST API."""
    stage: aws.apigateway.Stage
    """Its stage (`invoke_url` is the API's base URL)."""
    api_keys: dict[str, aws.apigateway.ApiKey]
    """Each consumer's API key, sent as `x-api-key`, in the configured order (`apiKey` mode; else empty)."""

    def __init__(self, name: str, args: QueryApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:api:QueryApi", name, None, opts)
        self._name, self._args = name, args
        # The REST resources and methods, from the routes the function serves for this schema
        # (handlers/query/routes.py): the function derives them from the same `SCHEMA`.
        resources = routes_for(args.schema).get
        self._rest_routes, self._rest_methods = _routes(resources), _methods(resources)
        service = ServiceFunction(
            f"{name}-fn",
            ServiceFunctionArgs(
                package="query",
                description=f"Answers GET {', '.join(resources)}",
                sizing=args.sizing,
                defaults=args.defaults,
                environment={
                    "ITEMS_TABLE": args.users_table_name,
                    SCHEMA_VARIABLE: args.schema.to_json(),
                    "JOBS_TABLE": args.jobs_table_name,
                    "JOBS_INDEX": args.jobs_index_name,
                },
                statements=lambda _own_arn: [
                    statement("ReadUsers", ["dynamodb:GetItem", "dynamodb:Scan"], [args.users_table_arn]),
                    statement("ReadJobs", ["dynamodb:GetItem"], [args.jobs_table_arn]),
                    # A Query on the index alone: the table's ARN does not cover its indexes, and
                    # the table itself (chunk markers included) is never queried or scanned.
                    statement("ListJobs", ["dynamodb:Query"], [args.jobs_index_arn]),
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.function = service.function
        self.rest_api = aws.apigateway.RestApi(
            name,
            description="csv-ingest query API",
            endpoint_configuration={"types": "REGIONAL"},
            tags=dict(args.defaults.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        deployment = self._create_routes()
        self.stage = self._create_stage(deployment)
        self.api_keys = self._create_api_keys() if args.auth == "apiKey" else {}
        if args.auth == "none":
            pulumi.log.warn(
                f"{name}: apiAuth is 'none' (allowPublicApi): anyone with the URL can read every stored name,"
                " email and phone; use it only for throwaway demo data",
                resource=self,
            )
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="apigateway.amazonaws.com",
            # Any method on any path of this API's stage: the function answers unknown ones itself.
            source_arn=pulumi.Output.concat(self.rest_api.execution_arn, "/", self.stage.stage_name, "/*/*"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"url": self.stage.invoke_url})

    def _create_routes(self) -> aws.apigateway.Deployment:
        name, args, api = self._name, self._args, self.rest_api
        child = pulumi.ResourceOptions(parent=self)
        resources: dict[str, aws.apigateway.Resource] = {}
        for parent, part in self._rest_routes:
            path = f"{parent}/{part}" if parent else part
            resources[path] = aws.apigateway.Resource(
                f"{name}-{_slug(path)}",
                rest_api=api.id,
                parent_id=resources[parent].id if parent else api.root_resource_id,
                path_part=part,
                opts=child,
            )
        wiring: list[pulumi.Resource] = []
        for path, http_method in self._rest_methods:
            resource_id = resources[path].id if path else api.root_resource_id
            method = aws.apigateway.Method(
                f"{name}-{http_method.lower()}-{_slug(path)}",
                rest_api=api.id,
                resource_id=resource_id,
                http_method=http_method,
                authorization="AWS_IAM" if args.auth == "iam" else "NONE",
                api_key_required=args.auth == "apiKey",
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{name}-{http_method.lower()}-{_slug(path)}",
                rest_api=api.id,
                resource_id=resource_id,
                http_method=method.http_method,
                type="AWS_PROXY",
                # Lambda is always invoked with POST, whatever the client's method.
                integration_http_method="POST",
                uri=self.function.invoke_arn,
                opts=child,
            )
            wiring += [method, integration]
        wiring += self._create_gateway_responses()
        # A deployment is a snapshot: a new one is needed whenever the routes, auth or gateway
        # responses change. `triggers` redeploys on a change; `depends_on` only orders the snapshot
        # after them (https://www.pulumi.com/registry/packages/aws/api-docs/apigateway/deployment/).
        fingerprint = hashlib.sha256(
            json.dumps(
                [self._rest_routes, self._rest_methods, args.auth, GATEWAY_RESPONSE_TYPES, PRIVATE_HEADERS]
            ).encode()
        ).hexdigest()
        return aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=api.id,
            # … or whenever the function is replaced, or the snapshot would call the old one.
            triggers={"routes": fingerprint, "function": self.function.invoke_arn},
            opts=pulumi.ResourceOptions(parent=self, depends_on=wiring),
        )

    def _create_gateway_responses(self) -> list[aws.apigateway.Response]:
        # A header's value is a static one between single quotes; a bare one would name a request
        # parameter (https://www.pulumi.com/registry/packages/aws/api-docs/apigateway/response/,
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-gateway-response-using-the-console.html).
        parameters = {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in PRIVATE_HEADERS.items()}
        return [
            aws.apigateway.Response(
                f"{self._name}-{response_type.lower().replace('_', '-')}",
                rest_api_id=self.rest_api.id,
                response_type=response_type,
                response_parameters=parameters,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for response_type in GATEWAY_RESPONSE_TYPES
        ]

    def _create_stage(self, deployment: aws.apigateway.Deployment) -> aws.apigateway.Stage:
        name, args = self._name, self._args
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            retention_in_days=args.defaults.log_retention_days,
            tags=dict(args.defaults.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        depends_on: list[pulumi.Resource] = []
        if args.manage_account:
            depends_on.append(self._create_account_logging_role())
        stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=self.rest_api.id,
            deployment=deployment.id,
            stage_name=STAGE_NAME,
            access_log_settings={"destination_arn": access_logs.arn, "format": ACCESS_LOG_FORMAT},
            tags=dict(args.defaults.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        aws.apigateway.MethodSettings(
            f"{name}-throttling",
            rest_api=self.rest_api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings={
                "throttling_rate_limit": args.throttle_rate_limit,
                "throttling_burst_limit": args.throttle_burst_limit,
                "metrics_enabled": True,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        return stage

    def _create_account_logging_role(self) -> aws.apigateway.Account:
        # Region-wide: API Gateway writes every API's logs of the region (other stacks' included)
        # with this one role, to log groups we do not know, so it is scoped to this account and
        # region, not to our log group. AWS documents the managed AmazonAPIGatewayPushToCloudWatchLogs
        # as having "all the required permissions"
        # (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html#set-up-access-logging-permissions);
        # it also grants logs:GetLogEvents and logs:FilterLogEvents, which read every log group of
        # the account, and which writing logs never needs: this inline policy keeps only the writes
        # and the look-ups that find or create a group and a stream. Deleting the setting clears it
        # for every API of the region, so the role, its policy and the setting are kept when this
        # stack is destroyed.
        name, args = self._name, self._args
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        role = aws.iam.Role(
            f"{name}-cloudwatch-role",
            assume_role_policy=assume_role_policy("apigateway.amazonaws.com", source_account=args.account_id),
            opts=kept,
        )
        log_groups = pulumi.Output.concat("arn:aws:logs:", args.region, ":", args.account_id, ":log-group:*")
        policy = aws.iam.RolePolicy(
            f"{name}-cloudwatch-role-logs",
            role=role.id,
            policy=policy_document(
                [
                    statement(
                        "FindOrCreateGroupsAndStreams",
                        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams"],
                        [log_groups],
                    ),
                    # The managed policy's look-up of groups, kept: this role serves every API of the
                    # region, and AWS does not say which of the managed policy's actions API Gateway
                    # calls (AmazonAPIGatewayPushToCloudWatchLogs grants it,
                    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonAPIGatewayPushToCloudWatchLogs.html).
                    # DescribeLogGroups has no resource type in the Service Authorization Reference
                    # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html):
                    # only "*" grants it; on a log group's ARN it grants nothing. It lists groups' names
                    # and settings, never their events.
                    statement("ListLogGroups", ["logs:DescribeLogGroups"], ["*"]),
                    statement(
                        "WriteLogEvents", ["logs:PutLogEvents"], [pulumi.Output.concat(log_groups, ":log-stream:*")]
                    ),
                ]
            ),
            opts=kept,
        )
        # Earlier versions attached the managed policy, and a retained attachment outlives its
        # removal from the program: this detaches any managed policy from the role.
        aws.iam.RolePolicyAttachmentsExclusive(
            f"{name}-cloudwatch-role-no-managed-policies", role_name=role.name, policy_arns=[], opts=kept
        )
        return aws.apigateway.Account(
            f"{name}-account",
            cloudwatch_role_arn=role.arn,
            # API Gateway checks the role when the setting is made.
            opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[policy])),
        )

    def _create_api_keys(self) -> dict[str, aws.apigateway.ApiKey]:
        name, args = self._name, self._args
        child = pulumi.ResourceOptions(parent=self)
        # Usage plan quotas are targets that clients can exceed at times, AWS warns: a brake on one
        # consumer's misuse, not a cost control
        # (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-usage-plans.html).
        plan = aws.apigateway.UsagePlan(
            f"{name}-plan",
            api_stages=[{"api_id": self.rest_api.id, "stage": self.stage.stage_name}],
            throttle_settings={"rate_limit": args.throttle_rate_limit, "burst_limit": args.throttle_burst_limit},
            quota_settings={"limit": args.quota_per_day, "period": "DAY"},
            tags=dict(args.defaults.tags),
            opts=child,
        )
        keys = {}
        for consumer in args.consumers:
            # One key per consumer, so one can be revoked or rotated (a new name) without the others.
            # The "default" consumer answers to the names of the single key stacks had before, so an
            # upgraded stack keeps that key and its value.
            before = consumer == "default"
            keys[consumer] = aws.apigateway.ApiKey(
                f"{name}-key-{consumer}",
                description=f"csv-ingest query API key of consumer {consumer}",
                enabled=True,
                tags={**args.defaults.tags, "consumer": consumer},
                opts=pulumi.ResourceOptions(parent=self, aliases=_formerly(f"{name}-key", before)),
            )
            aws.apigateway.UsagePlanKey(
                f"{name}-plan-key-{consumer}",
                key_id=keys[consumer].id,
                key_type="API_KEY",
                usage_plan_id=plan.id,
                opts=pulumi.ResourceOptions(parent=self, aliases=_formerly(f"{name}-plan-key", before)),
            )
        return keys
