"""Deploy the stack's own program onto the emulator: `pulumi up`, with mocks in place of the provider.

`deploy(stack, emulator, ...)` runs `__main__.py` under `LocalMocks`. Each resource the program
declares reaches `LocalMocks.new_resource` with the inputs the AWS provider would receive; its
creator makes the same API calls against the emulator and returns the identifiers the emulator gave
(queue URLs, API ids, API key values, event source mapping UUIDs), so every reference between
resources resolves to the emulator. Nothing here names a resource of the program: what is created
is what the program declares, and a new resource type the program starts using shows up as "not
emulated" until it gets a creator here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from local import iam_gaps
from local.declared_inputs import RecordingInputs, declared, recording_plan, unapplied, unread
from local.deploy_checks import check_role_trusts_lambda, check_s3_may_invoke, check_sqs_event_source
from local.mocks import Plan, PlanMocks, _auto_name, _resolved, run_program
from local.registry import Registry

# Why each type the program may declare is not created in the emulator: listed at start-up.
NOT_EMULATED: Mapping[str, str] = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": "no metrics are computed locally, so alarms would never fire",
    "aws:cloudwatch/dashboard:Dashboard": "no CloudWatch console locally",
    "aws:apigateway/account:Account": "region-wide API Gateway logging role; local access logs go to the log files",
    "aws:sns/topicSubscription:TopicSubscription": "nothing is e-mailed locally",
    "aws:sns/topicPolicy:TopicPolicy": (
        "nothing publishes to the alarm topic locally (alarms are not emulated); tested in tests/infra"
    ),
    "aws:lambda/functionRecursionConfig:FunctionRecursionConfig": (
        "recorded; Lambda's recursive-loop detection is not emulated (moto has no PutFunctionRecursionConfig)"
    ),
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": "recorded; moto does not store or apply it",
}

# The stage-wide (`*/*`) throttle is applied (`local.apigw`); every other method setting is listed.
APPLIED_METHOD_SETTINGS = ("throttlingRateLimit", "throttlingBurstLimit")
_METHOD_SETTINGS_PAGE = "https://docs.aws.amazon.com/apigateway/latest/api/API_MethodSetting.html"
_METHOD_SETTING_GAPS = {
    "metricsEnabled": "no CloudWatch metrics are computed locally",
    "loggingLevel": "no execution logs locally (access logs are written)",
    "dataTraceEnabled": "no execution logs locally (access logs are written)",
    "cachingEnabled": "no stage cache locally: every request reaches the function",
}


def not_emulated_inputs(type_: str, inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(input, why) for each method setting the program declares and local mode does not apply: the
    settings are one input local mode reads, for the throttle; the others in it are listed here.
    Every other input local mode does not read is found by `local.declared_inputs`."""
    if type_ == "aws:apigateway/methodSettings:MethodSettings":
        return _method_settings_not_emulated(inputs)
    return []


def _method_settings_not_emulated(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    settings = inputs.get("settings") or {}
    path = inputs.get("methodPath")
    if path != "*/*":
        return [
            ("settings", f"local mode applies the stage-wide */* settings only, not {path}'s ({_METHOD_SETTINGS_PAGE})")
        ]
    return [
        (f"settings.{key}", f"{_METHOD_SETTING_GAPS.get(key, 'not applied locally')} ({_METHOD_SETTINGS_PAGE})")
        for key, value in settings.items()
        if key not in APPLIED_METHOD_SETTINGS and declared(value)
    ]


@dataclass(frozen=True)
class Revocation:
    """One statement taken out of a function's role policy: `<role>=<statement Sid>`.

    Deploys the program as if that statement had never been written, to see what breaks: least
    privilege, checked from the other side. `role` matches any part of a role policy's logical name
    (`worker` for `csv-ingest-worker-policy`); the Sid is the statement's (`WriteUsers`).
    """

    role: str
    sid: str

    @classmethod
    def parse(cls, text: str) -> Revocation:
        role, sep, sid = text.partition("=")
        if not sep or not role or not sid:
            raise ValueError(f"--revoke {text!r}: expected ROLE=STATEMENT_SID, e.g. worker=WriteUsers")
        return cls(role=role, sid=sid)

    def apply(self, logical_name: str, document: dict[str, Any]) -> bool:
        """Drop the statement from a matching role's policy document; True if it was there."""
        if self.role not in logical_name:
            return False
        statements = document.get("Statement", [])
        kept = [s for s in statements if s.get("Sid") != self.sid]
        document["Statement"] = kept
        return len(kept) < len(statements)


class EmulatorLike:
    """What the deployer needs of the emulator (`local.emulator.Emulator`)."""

    region: str
    account_id: str
    resource_policies: dict[str, dict[str, Any]]
    """Resource policies the emulator's IAM applies, by the ARN of what they protect."""

    def client(self, service: str) -> Any:  # pragma: no cover - protocol
        raise NotImplementedError


@dataclass
class DeployContext:
    """What creators share: the emulator, how the API is served, and what was left out."""

    emulator: EmulatorLike
    api_base_url: Callable[[str], str]
    """REST API id → the local base URL its stages are served under (`http://127.0.0.1:<port>`)."""
    revocations: Sequence[Revocation] = ()
    revoked: set[Revocation] = field(default_factory=set)
    not_emulated: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, logical name, why) of every declared resource not created in the emulator."""
    api_paths: dict[tuple[str, str], str] = field(default_factory=dict)
    """(REST API id, resource id) → the resource's path, as each resource is created."""
    api_methods: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    """REST API id → (path, HTTP method) → the method as `apiSummary` shows it, as each method is created."""
    reads: dict[str, set[str]] = field(default_factory=dict)
    """URN → the inputs local mode read of each resource it created (`local.declared_inputs`)."""

    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """One administrator client per service, shared by the creators (clients are thread-safe)."""
        if service not in self._clients:
            self._clients[service] = self.emulator.client(service)
        return self._clients[service]

    @property
    def region(self) -> str:
        return self.emulator.region

    @property
    def account(self) -> str:
        return self.emulator.account_id


# A creator: (context, logical name, physical name, inputs) → (id, attributes AWS would return).
Creator = Callable[[DeployContext, str, str, Mapping[str, Any]], tuple[str, dict[str, Any]]]


def _pascal(value: Any, renames: Mapping[str, str] | None = None) -> Any:
    """Provider inputs (camelCase keys, float numbers) → the AWS API's shape (PascalCase keys, ints)."""
    renames = renames or {}
    if isinstance(value, dict):
        return {renames.get(k, k[:1].upper() + k[1:]): _pascal(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v, renames) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _tags(inputs: Mapping[str, Any]) -> dict[str, str]:
    return dict(inputs.get("tags") or {})


def _int(value: Any) -> int:
    return int(value)


# --- S3 ---------------------------------------------------------------------------------------------


def _bucket(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    bucket = inputs.get("bucket") or physical
    s3 = ctx.client("s3")
    location = {} if ctx.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": ctx.region}}
    s3.create_bucket(Bucket=bucket, **location)
    if tags := _tags(inputs):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    return bucket, {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "region": ctx.region,
    }


def _bucket_versioning(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    configuration = _pascal(inputs["versioningConfiguration"])
    ctx.client("s3").put_bucket_versioning(Bucket=inputs["bucket"], VersioningConfiguration=configuration)
    return inputs["bucket"], {}


def _public_access_block(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    configuration = {key[:1].upper() + key[1:]: bool(inputs.get(key, False)) for key in flags}
    ctx.client("s3").put_public_access_block(Bucket=inputs["bucket"], PublicAccessBlockConfiguration=configuration)
    return inputs["bucket"], {}


def _ownership_controls(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    rule = _pascal(inputs["rule"])
    ctx.client("s3").put_bucket_ownership_controls(Bucket=inputs["bucket"], OwnershipControls={"Rules": [rule]})
    return inputs["bucket"], {}


def _encryption(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    rules = _pascal(inputs["rules"], {"kmsMasterKeyId": "KMSMasterKeyID", "sseAlgorithm": "SSEAlgorithm"})
    ctx.client("s3").put_bucket_encryption(Bucket=inputs["bucket"], ServerSideEncryptionConfiguration={"Rules": rules})
    return inputs["bucket"], {}


def _lifecycle(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    rules = _pascal(inputs["rules"], {"id": "ID"})
    for rule in rules:
        rule.setdefault("Filter", {})
    ctx.client("s3").put_bucket_lifecycle_configuration(
        Bucket=inputs["bucket"], LifecycleConfiguration={"Rules": rules}
    )
    return inputs["bucket"], {}


def _filter_rules(target: Mapping[str, Any]) -> dict[str, Any]:
    rules = [
        {"Name": kind, "Value": target[f"filter{kind.capitalize()}"]}
        for kind in ("prefix", "suffix")
        if target.get(f"filter{kind.capitalize()}")
    ]
    return {"Filter": {"Key": {"FilterRules": rules}}} if rules else {}


def _notification(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    configuration: dict[str, Any] = {}
    for key, arn_key, api_key in (
        ("lambdaFunctions", "lambdaFunctionArn", "LambdaFunctionConfigurations"),
        ("queues", "queueArn", "QueueConfigurations"),
        ("topics", "topicArn", "TopicConfigurations"),
    ):
        targets = inputs.get(key) or []
        if key == "lambdaFunctions" and targets:
            check_s3_may_invoke(ctx.client("lambda"), inputs["bucket"], ctx.account, [t[arn_key] for t in targets])
        if targets:
            configuration[api_key] = [
                {arn_key[0].upper() + arn_key[1:]: t[arn_key], "Events": list(t["events"]), **_filter_rules(t)}
                for t in targets
            ]
    ctx.client("s3").put_bucket_notification_configuration(
        Bucket=inputs["bucket"], NotificationConfiguration=configuration
    )
    return inputs["bucket"], {}


def _recorded_only(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    """Policies local mode applies itself (see `NOT_EMULATED`): the registry reads them from the plan."""
    return name, {}


# --- SQS -------------------------------------------------------------------------------------------

_QUEUE_ATTRIBUTES = {
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "maxMessageSize": "MaximumMessageSize",
    "delaySeconds": "DelaySeconds",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "redrivePolicy": "RedrivePolicy",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
    "fifoQueue": "FifoQueue",
    "contentBasedDeduplication": "ContentBasedDeduplication",
    "kmsMasterKeyId": "KmsMasterKeyId",
}


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _queue(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    queue_name = inputs.get("name") or physical
    attributes = {api: _attribute_text(inputs[key]) for key, api in _QUEUE_ATTRIBUTES.items() if key in inputs}
    sqs = ctx.client("sqs")
    url = sqs.create_queue(QueueName=queue_name, Attributes=attributes, tags=_tags(inputs))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, {"name": queue_name, "arn": arn, "url": url}


def _queue_policy(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    # moto stores a queue policy without applying it; local mode's authoriser applies it.
    ctx.client("sqs").set_queue_attributes(QueueUrl=inputs["queueUrl"], Attributes={"Policy": inputs["policy"]})
    return inputs["queueUrl"], {}


# --- DynamoDB --------------------------------------------------------------------------------------


def _table(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    table = inputs.get("name") or physical
    keys = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
    if inputs.get("rangeKey"):
        keys.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": table,
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]
        ],
        "BillingMode": inputs.get("billingMode", "PROVISIONED"),
        "DeletionProtectionEnabled": bool(inputs.get("deletionProtectionEnabled", False)),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = {
            "ReadCapacityUnits": _int(inputs.get("readCapacity", 1)),
            "WriteCapacityUnits": _int(inputs.get("writeCapacity", 1)),
        }
    indexes = [_global_index(index, request["BillingMode"]) for index in inputs.get("globalSecondaryIndexes") or []]
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    if (inputs.get("serverSideEncryption") or {}).get("enabled"):
        request["SSESpecification"] = {"Enabled": True}
    if tags := _tags(inputs):
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    dynamodb = ctx.client("dynamodb")
    arn = dynamodb.create_table(**request)["TableDescription"]["TableArn"]
    ttl = inputs.get("ttl") or {}
    if ttl.get("enabled"):
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]}
        )
    if (inputs.get("pointInTimeRecovery") or {}).get("enabled"):
        dynamodb.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return table, {"name": table, "arn": arn}


def _global_index(index: Mapping[str, Any], billing_mode: str) -> dict[str, Any]:
    """A `globalSecondaryIndexes` entry as CreateTable takes it (`hashKey`/`rangeKey`, or `keySchemas`)."""
    if index.get("keySchemas"):
        keys = [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in index["keySchemas"]]
    else:
        keys = [{"AttributeName": index["hashKey"], "KeyType": "HASH"}]
        if index.get("rangeKey"):
            keys.append({"AttributeName": index["rangeKey"], "KeyType": "RANGE"})
    projection: dict[str, Any] = {"ProjectionType": index.get("projectionType", "ALL")}
    if index.get("nonKeyAttributes"):
        projection["NonKeyAttributes"] = list(index["nonKeyAttributes"])
    created: dict[str, Any] = {"IndexName": index["name"], "KeySchema": keys, "Projection": projection}
    if billing_mode == "PROVISIONED":
        created["ProvisionedThroughput"] = {
            "ReadCapacityUnits": _int(index.get("readCapacity", 1)),
            "WriteCapacityUnits": _int(index.get("writeCapacity", 1)),
        }
    return created


# --- Logs, SNS ------------------------------------------------------------------------------------


def _log_group(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    group = inputs.get("name") or physical
    logs = ctx.client("logs")
    logs.create_log_group(logGroupName=group, tags=_tags(inputs))
    if inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=group, retentionInDays=_int(inputs["retentionInDays"]))
    return group, {"name": group, "arn": f"arn:aws:logs:{ctx.region}:{ctx.account}:log-group:{group}"}


def _topic(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    topic = inputs.get("name") or physical
    tags = [{"Key": k, "Value": v} for k, v in _tags(inputs).items()]
    arn = ctx.client("sns").create_topic(Name=topic, **({"Tags": tags} if tags else {}))["TopicArn"]
    return arn, {"name": topic, "arn": arn}


# --- Secrets Manager -------------------------------------------------------------------------------


def _secret(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    secret_name = inputs.get("name") or physical
    request: dict[str, Any] = {"Name": secret_name}
    if inputs.get("description"):
        request["Description"] = inputs["description"]
    if tags := _tags(inputs):
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    arn = ctx.client("secretsmanager").create_secret(**request)["ARN"]
    return arn, {"name": secret_name, "arn": arn}


def _secret_version(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    created = ctx.client("secretsmanager").put_secret_value(
        SecretId=inputs["secretId"], SecretString=_resolved(inputs["secretString"])
    )
    return f"{inputs['secretId']}|{created['VersionId']}", {"arn": created["ARN"], "versionId": created["VersionId"]}


def _secret_policy(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    # moto stores a secret's policy without applying it; local mode's authoriser applies it, as it does
    # the bucket's and the queues'.
    arn = inputs["secretArn"]
    ctx.client("secretsmanager").put_resource_policy(
        SecretId=arn, ResourcePolicy=inputs["policy"], BlockPublicPolicy=bool(inputs.get("blockPublicPolicy"))
    )
    ctx.emulator.resource_policies[arn] = json.loads(inputs["policy"])
    return arn, {}


# --- IAM -------------------------------------------------------------------------------------------


def _role(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    """A role with the policies it declares itself: each of `inlinePolicies` (`name`, `policy`) put as
    a role policy is, `managedPolicyArns` attached, `permissionsBoundary` set; an entry with no
    policy (the "empty block" that has the provider remove every other inline policy) puts nothing
    (https://www.pulumi.com/registry/packages/aws/api-docs/iam/role/)."""
    role = inputs.get("name") or physical
    request = {"RoleName": role, "AssumeRolePolicyDocument": inputs["assumeRolePolicy"]}
    if inputs.get("description"):
        request["Description"] = inputs["description"]
    if tags := _tags(inputs):
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    iam = ctx.client("iam")
    if boundary := inputs.get("permissionsBoundary"):  # local IAM applies it to the role's sessions (`local.authz`)
        _require_policy(iam, boundary)
        request["PermissionsBoundary"] = boundary
    created = iam.create_role(**request)["Role"]
    for policy in inputs.get("inlinePolicies") or []:
        if policy.get("policy"):
            _put_role_policy(ctx, name, role, policy["name"], policy["policy"])
    for arn in inputs.get("managedPolicyArns") or []:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    return role, {"name": role, "arn": created["Arn"], "uniqueId": created["RoleId"]}


def _require_policy(iam: Any, arn: str) -> None:
    """A managed policy the emulator holds, or AWS's refusal of one it cannot find (IAM's CreateRole:
    NoSuchEntity, https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html). moto accepts
    any ARN as a boundary, and local IAM would then deny the role everything."""
    try:
        iam.get_policy(PolicyArn=arn)
    except iam.exceptions.NoSuchEntityException:
        local = " (AWS managed policies are not loaded locally: use a customer managed policy)"
        managed = arn.startswith("arn:aws:iam::aws:policy/")
        raise ValueError(
            f"CreateRole: NoSuchEntity: Policy {arn} does not exist or is not attachable{local if managed else ''}"
        ) from None


def _role_policy(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    policy_name = inputs.get("name") or physical
    _put_role_policy(ctx, name, inputs["role"], policy_name, inputs["policy"])
    return f"{inputs['role']}:{policy_name}", {"name": policy_name}


def _put_role_policy(ctx: DeployContext, logical_name: str, role: str, policy_name: str, policy: str) -> None:
    """Put a role policy (a `RolePolicy`, or a role's inline policy), less the statements `--revoke`
    takes out of it: `logical_name` is what a revocation matches (the declaring resource's)."""
    document = json.loads(policy)
    for revocation in ctx.revocations:
        if revocation.apply(logical_name, document):
            ctx.revoked.add(revocation)
    ctx.client("iam").put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(document))


def _exclusive_attachments(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    iam, role = ctx.client("iam"), inputs["roleName"]
    wanted = set(inputs.get("policyArns") or [])
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}
    for arn in attached - wanted:
        iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    for arn in wanted - attached:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    return role, {}


# --- Lambda ----------------------------------------------------------------------------------------


def _function(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    function = inputs.get("name") or physical
    code = inputs["code"]
    archive = Path(getattr(code, "path", code))
    request: dict[str, Any] = {
        "FunctionName": function,
        "Role": inputs["role"],
        "Runtime": inputs["runtime"],
        "Handler": inputs["handler"],
        "Code": {"ZipFile": archive.read_bytes()},
        "Timeout": _int(inputs.get("timeout", 3)),
        "MemorySize": _int(inputs.get("memorySize", 128)),
        "Architectures": list(inputs.get("architectures") or ["x86_64"]),
        "Description": inputs.get("description", ""),
        "Environment": {"Variables": dict((inputs.get("environment") or {}).get("variables") or {})},
        "Tags": _tags(inputs),
    }
    if inputs.get("loggingConfig"):
        request["LoggingConfig"] = _pascal(inputs["loggingConfig"])
    check_role_trusts_lambda(ctx.client("iam"), request["Role"])
    created = ctx.client("lambda").create_function(**request)
    arn = created["FunctionArn"]
    invoke_arn = f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    return function, {
        "name": function,
        "arn": arn,
        "invokeArn": invoke_arn,
        "qualifiedArn": f"{arn}:$LATEST",
        "version": "$LATEST",
        "codeSha256": created["CodeSha256"],
    }


def _permission(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    request = {
        "FunctionName": inputs["function"],
        "StatementId": inputs.get("statementId") or physical,
        "Action": inputs["action"],
        "Principal": inputs["principal"],
    }
    for key, api in (("sourceArn", "SourceArn"), ("sourceAccount", "SourceAccount")):
        if inputs.get(key):
            request[api] = inputs[key]
    ctx.client("lambda").add_permission(**request)
    return request["StatementId"], {"statementId": request["StatementId"]}


def _event_source_mapping(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    request: dict[str, Any] = {
        "EventSourceArn": inputs["eventSourceArn"],
        "FunctionName": inputs["functionName"],
        "Enabled": bool(inputs.get("enabled", True)),
    }
    for key, api in (("batchSize", "BatchSize"), ("maximumBatchingWindowInSeconds", "MaximumBatchingWindowInSeconds")):
        if key in inputs:
            request[api] = _int(inputs[key])
    if inputs.get("scalingConfig"):
        request["ScalingConfig"] = _pascal(inputs["scalingConfig"])
    if inputs.get("functionResponseTypes"):
        request["FunctionResponseTypes"] = list(inputs["functionResponseTypes"])
    check_sqs_event_source(ctx.client("sqs"), ctx.client("lambda"), request)
    created = ctx.client("lambda").create_event_source_mapping(**request)
    return created["UUID"], {"uuid": created["UUID"], "functionArn": created.get("FunctionArn")}


def _event_invoke_config(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    request: dict[str, Any] = {"FunctionName": inputs["functionName"]}
    if "maximumRetryAttempts" in inputs:
        request["MaximumRetryAttempts"] = _int(inputs["maximumRetryAttempts"])
    if "maximumEventAgeInSeconds" in inputs:
        request["MaximumEventAgeInSeconds"] = _int(inputs["maximumEventAgeInSeconds"])
    if inputs.get("destinationConfig"):
        request["DestinationConfig"] = _pascal(inputs["destinationConfig"])
    ctx.client("lambda").put_function_event_invoke_config(**request)
    return inputs["functionName"], {}


# --- API Gateway -----------------------------------------------------------------------------------


def _rest_api(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    api_name = inputs.get("name") or physical
    endpoint = inputs.get("endpointConfiguration") or {}
    types = endpoint.get("types")
    created = ctx.client("apigateway").create_rest_api(
        name=api_name,
        description=inputs.get("description", ""),
        endpointConfiguration={"types": [types] if isinstance(types, str) else list(types or ["EDGE"])},
        tags=_tags(inputs),
    )
    api_id = created["id"]
    ctx.api_paths[api_id, created["rootResourceId"]] = "/"
    return api_id, {
        "name": api_name,
        "rootResourceId": created["rootResourceId"],
        "executionArn": f"arn:aws:execute-api:{ctx.region}:{ctx.account}:{api_id}",
        "arn": f"arn:aws:apigateway:{ctx.region}::/restapis/{api_id}",
    }


def _api_resource(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    created = ctx.client("apigateway").create_resource(
        restApiId=inputs["restApi"], parentId=inputs["parentId"], pathPart=inputs["pathPart"]
    )
    ctx.api_paths[inputs["restApi"], created["id"]] = created["path"]
    return created["id"], {"path": created["path"]}


def _api_method(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    ctx.client("apigateway").put_method(
        restApiId=inputs["restApi"],
        resourceId=inputs["resourceId"],
        httpMethod=inputs["httpMethod"],
        authorizationType=inputs.get("authorization", "NONE"),
        apiKeyRequired=bool(inputs.get("apiKeyRequired", False)),
    )
    path = ctx.api_paths[inputs["restApi"], inputs["resourceId"]]
    ctx.api_methods.setdefault(inputs["restApi"], {})[path, inputs["httpMethod"]] = {
        "authorizationType": inputs.get("authorization", "NONE"),
        "apiKeyRequired": bool(inputs.get("apiKeyRequired", False)),
    }
    return f"agm-{inputs['restApi']}-{inputs['resourceId']}-{inputs['httpMethod']}", {}


def _api_integration(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    request = {
        "restApiId": inputs["restApi"],
        "resourceId": inputs["resourceId"],
        "httpMethod": inputs["httpMethod"],
        "type": inputs["type"],
    }
    if inputs.get("integrationHttpMethod"):
        request["integrationHttpMethod"] = inputs["integrationHttpMethod"]
    if inputs.get("uri"):
        request["uri"] = inputs["uri"]
    ctx.client("apigateway").put_integration(**request)
    return f"agi-{inputs['restApi']}-{inputs['resourceId']}-{inputs['httpMethod']}", {}


def _api_deployment(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    """A deployment is a snapshot of the API's methods as they are when it is created; a stage serves
    its deployment's snapshot, so a method created after it (not in its `depends_on`, or added
    without a redeploy) is not served ("After creating your API, you must deploy it to make it
    callable by your users", https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-deploy-api.html;
    `depends_on` and `triggers`, https://www.pulumi.com/registry/packages/aws/api-docs/apigateway/deployment/).
    The snapshot is kept as GetDeployment's `apiSummary` shows it, path → method → settings
    (https://docs.aws.amazon.com/apigateway/latest/api/API_GetDeployment.html); `local.registry`
    serves a stage what its deployment's summary holds."""
    created = ctx.client("apigateway").create_deployment(restApiId=inputs["restApi"])
    summary: dict[str, dict[str, Any]] = {}
    for (path, method), settings in list(ctx.api_methods.get(inputs["restApi"], {}).items()):
        summary.setdefault(path, {})[method] = dict(settings)
    return created["id"], {"apiSummary": summary}


def _api_stage(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    api_id, stage = inputs["restApi"], inputs["stageName"]
    apigateway = ctx.client("apigateway")
    apigateway.create_stage(restApiId=api_id, stageName=stage, deploymentId=inputs["deployment"], tags=_tags(inputs))
    access_logs = inputs.get("accessLogSettings")
    if access_logs:
        apigateway.update_stage(
            restApiId=api_id,
            stageName=stage,
            patchOperations=[
                {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": access_logs["destinationArn"]},
                {"op": "replace", "path": "/accessLogSettings/format", "value": access_logs["format"]},
            ],
        )
    return f"ags-{api_id}-{stage}", {
        "invokeUrl": f"{ctx.api_base_url(api_id)}/{stage}",
        "executionArn": f"arn:aws:execute-api:{ctx.region}:{ctx.account}:{api_id}/{stage}",
        "arn": f"arn:aws:apigateway:{ctx.region}::/restapis/{api_id}/stages/{stage}",
    }


def _method_settings(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    path = inputs["methodPath"]
    settings = inputs.get("settings") or {}
    operations = [
        {"op": "replace", "path": f"/{path}/{api_path}", "value": _attribute_text(settings[key])}
        for key, api_path in (
            ("throttlingRateLimit", "throttling/rateLimit"),
            ("throttlingBurstLimit", "throttling/burstLimit"),
            ("metricsEnabled", "metrics/enabled"),
        )
        if key in settings
    ]
    ctx.client("apigateway").update_stage(
        restApiId=inputs["restApi"], stageName=inputs["stageName"], patchOperations=operations
    )
    return f"{inputs['restApi']}-{inputs['stageName']}-{path}", {}


def _usage_plan(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    request: dict[str, Any] = {
        "name": inputs.get("name") or physical,
        "apiStages": [{"apiId": s["apiId"], "stage": s["stage"]} for s in inputs.get("apiStages") or []],
        "tags": _tags(inputs),
    }
    if inputs.get("throttleSettings"):
        throttle = inputs["throttleSettings"]
        request["throttle"] = {"rateLimit": float(throttle["rateLimit"]), "burstLimit": _int(throttle["burstLimit"])}
    if inputs.get("quotaSettings"):
        quota = inputs["quotaSettings"]
        request["quota"] = {"limit": _int(quota["limit"]), "period": quota["period"]}
    created = ctx.client("apigateway").create_usage_plan(**request)
    return created["id"], {"name": request["name"]}


def _api_key(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    key_name = inputs.get("name") or physical
    request: dict[str, Any] = {
        "name": key_name,
        "description": inputs.get("description", ""),
        "enabled": bool(inputs.get("enabled", True)),
        "tags": _tags(inputs),
    }
    if inputs.get("value"):
        request["value"] = inputs["value"]
    created = ctx.client("apigateway").create_api_key(**request)
    return created["id"], {"name": key_name, "value": created["value"]}


def _usage_plan_key(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    created = ctx.client("apigateway").create_usage_plan_key(
        usagePlanId=inputs["usagePlanId"], keyId=inputs["keyId"], keyType=inputs["keyType"]
    )
    return created["id"], {}


def _gateway_response(ctx: DeployContext, name: str, physical: str, inputs: Mapping[str, Any]):
    # Stored in the emulator as declared; local.apigw serves it (from the plan, through local.registry).
    request: dict[str, Any] = {"restApiId": inputs["restApiId"], "responseType": inputs["responseType"]}
    for key in ("statusCode", "responseParameters", "responseTemplates"):
        if inputs.get(key):
            request[key] = inputs[key]
    ctx.client("apigateway").put_gateway_response(**request)
    return f"aggr-{inputs['restApiId']}-{inputs['responseType']}", {}


CREATORS: Mapping[str, Creator] = {
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_versioning,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _public_access_block,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _ownership_controls,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _encryption,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _lifecycle,
    "aws:s3/bucketNotification:BucketNotification": _notification,
    "aws:s3/bucketPolicy:BucketPolicy": _recorded_only,
    "aws:sqs/queue:Queue": _queue,
    "aws:sqs/queuePolicy:QueuePolicy": _queue_policy,
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": _recorded_only,
    "aws:dynamodb/table:Table": _table,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:sns/topic:Topic": _topic,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretVersion:SecretVersion": _secret_version,
    "aws:secretsmanager/secretPolicy:SecretPolicy": _secret_policy,
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": _exclusive_attachments,
    "aws:lambda/function:Function": _function,
    "aws:lambda/permission:Permission": _permission,
    "aws:lambda/eventSourceMapping:EventSourceMapping": _event_source_mapping,
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": _event_invoke_config,
    "aws:lambda/functionRecursionConfig:FunctionRecursionConfig": _recorded_only,
    "aws:apigateway/restApi:RestApi": _rest_api,
    "aws:apigateway/resource:Resource": _api_resource,
    "aws:apigateway/method:Method": _api_method,
    "aws:apigateway/integration:Integration": _api_integration,
    "aws:apigateway/deployment:Deployment": _api_deployment,
    "aws:apigateway/stage:Stage": _api_stage,
    "aws:apigateway/methodSettings:MethodSettings": _method_settings,
    "aws:apigateway/usagePlan:UsagePlan": _usage_plan,
    "aws:apigateway/apiKey:ApiKey": _api_key,
    "aws:apigateway/usagePlanKey:UsagePlanKey": _usage_plan_key,
    "aws:apigateway/response:Response": _gateway_response,
}


class DeployError(RuntimeError):
    """The emulator refused a resource the program declared: names the resource and the reason."""


class LocalMocks(PlanMocks):
    """The provider, played by the emulator: each declared resource is created there."""

    def __init__(self, region: str, context: DeployContext) -> None:
        super().__init__(region, context.account)
        self.context = context

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        urn = self.urns.get((args.typ, args.name), args.name)
        physical = str(args.inputs.get("name") or _auto_name(args.name, urn))
        creator = CREATORS.get(args.typ)
        if creator is None or args.typ in NOT_EMULATED:
            why = NOT_EMULATED.get(args.typ, "local mode has no creator for this type")
            self.context.not_emulated.append((args.typ, args.name, why))
        # What its policies rely on that local mode's IAM cannot evaluate, whether or not it is created.
        for key, why in iam_gaps.resource_gaps(args.typ, args.inputs, self.context.account):
            self.context.not_emulated.append((args.typ, f"{args.name}.{key}", why))
        if creator is None:
            return super().new_resource(args)
        # What the creator reads is applied; what no part of local mode reads is listed (`deploy`).
        inputs = args.inputs
        if args.typ not in NOT_EMULATED:
            inputs = RecordingInputs(args.inputs, self.context.reads.setdefault(urn, set()))
        try:
            resource_id, attributes = creator(self.context, args.name, physical, inputs)
        except Exception as error:  # the emulator's refusal, named by resource
            raise DeployError(f"{args.typ} {args.name}: {error}") from error
        for key, why in not_emulated_inputs(args.typ, args.inputs):
            self.context.not_emulated.append((args.typ, f"{args.name}.{key}", why))
        if "name" in attributes or args.typ == "aws:s3/bucket:Bucket":
            self.physical_names[urn] = attributes.get("name") or attributes["bucket"]
        return resource_id, {**args.inputs, **attributes}


@dataclass
class Deployment:
    """What `deploy` leaves: the plan (resources with the emulator's ids), and what was left out."""

    plan: Plan
    not_emulated: list[tuple[str, str, str]]


def deploy(
    stack: str,
    emulator: EmulatorLike,
    api_base_url: Callable[[str], str],
    *,
    overrides: Mapping[str, Any] | None = None,
    revocations: Sequence[Revocation] = (),
    transformations: Sequence[pulumi.ResourceTransformation] = (),
    config_file: Path | None = None,
) -> Deployment:
    """Run the stack's program against the emulator, with `config_file`'s settings when given;
    fails on the first resource it refuses."""
    context = DeployContext(emulator=emulator, api_base_url=api_base_url, revocations=revocations)
    plan = run_program(
        stack,
        overrides,
        mocks_factory=lambda region: LocalMocks(region, context),
        transformations=transformations,
        config_file=config_file,
    )
    unmatched = [r for r in revocations if r not in context.revoked]
    if unmatched:
        listed = ", ".join(f"{r.role}={r.sid}" for r in unmatched)
        raise DeployError(f"--revoke {listed}: no role policy of the program matching that name has that statement")
    return Deployment(plan=plan, not_emulated=[*context.not_emulated, *_unread_inputs(plan, context)])


def _unread_inputs(plan: Plan, context: DeployContext) -> list[tuple[str, str, str]]:
    """(type, `<logical name>.<input>`, why) of each input of a created resource that neither its
    creator nor the local runtime reads, or that they read without applying its value (`unapplied`).
    The runtime reads the plan through `local.registry` only (the function hosts, event sources and
    API take its typed values): its reading of the plan, done here as start-up does it next, completes
    what was read. Inputs listed already (method settings) are not listed twice."""
    created = set(context.reads)  # each created resource's creator read through a recording
    Registry.from_plan(recording_plan(plan, context.reads), context.region, context.account)
    listed = {name for _, name, _ in context.not_emulated}
    return [
        (resource.type, f"{resource.name}.{key}", why)
        for resource in plan.resources
        if resource.urn in created
        for key, why in [*unread(resource, context.reads[resource.urn]), *unapplied(resource)]
        if f"{resource.name}.{key}" not in listed
    ]
