"""Inputs the program declares that local mode once read and dropped (issue 20, item 8): each either
takes effect or is listed at start-up under "not emulated", with the AWS page it was checked against.
So is what a declared policy relies on that local mode's IAM cannot evaluate (`local.iam_gaps`,
tested on the plan in tests/local/test_iam_gaps.py), and any input no part of local mode reads
(`local.declared_inputs`; the program as it is: tests/local/test_unread_inputs.py). A role's own
inline and managed policies are applied, as IAM applies them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from botocore.exceptions import ClientError

from local.apigw import ApiGateway
from local.deployer import Deployment, Revocation, deploy
from local.emulator import Emulator
from local.mocks import run_program
from local.registry import Registry
from tests.local.support import http
from tests.local.test_apigw import ACCOUNT, REGION, Function, method, permission, spec
from tests.local.test_iam_gaps import BUCKET_POLICY, OFFICE_ONLY, QUEUE_POLICY, adding_statement

pytestmark = pytest.mark.long(seconds=40)

INTEGRATION = "aws:apigateway/integration:Integration"


def setting(type_: str, **inputs: Any) -> pulumi.ResourceTransformation:
    """A stack transformation that sets these inputs on every resource of `type_`."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != type_:
            return None
        return pulumi.ResourceTransformationResult({**args.props, **inputs}, args.opts)

    return transformation


def test_the_programs_integration_timeout_is_read() -> None:
    plan = run_program("dev", transformations=[setting(INTEGRATION, timeout_milliseconds=1500)])
    (api,) = Registry.from_plan(plan, REGION, ACCOUNT).apis
    assert {m.integration_timeout_seconds for m in api.methods} == {1.5}


def test_an_integration_timeout_ends_a_slow_call_with_api_gateways_504_when_it_passes() -> None:
    def slow(event: dict[str, Any]) -> Any:
        time.sleep(3)
        return {"statusCode": 200, "body": "{}"}

    api = spec(method("/slow", integration_timeout_seconds=0.5))
    gateway = ApiGateway(
        api, region=REGION, account_id=ACCOUNT, invoke=Function(slow), log=[].append, permissions=[permission()]
    )
    gateway.bind()
    gateway.start()
    try:
        began = time.monotonic()
        answer = http("GET", f"http://127.0.0.1:{gateway.port}/v1/slow", {})
        waited = time.monotonic() - began
    finally:
        gateway.stop()
    assert (answer.status, answer.body) == (504, {"message": "Endpoint request timed out"})
    assert waited < 2.5  # the integration's 0.5 s, not the function's 3 s nor API Gateway's 29 s


ROLE = "aws:iam/role:Role"
INLINE = "inspect-dead-letters"


def role_named(part: str, **inputs: Any) -> pulumi.ResourceTransformation:
    """A stack transformation that sets these inputs on the role whose logical name holds `part`."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != ROLE or part not in args.name:
            return None
        return pulumi.ResourceTransformationResult({**args.props, **inputs}, args.opts)

    return transformation


def dead_letter_statement(sid: str, action: str) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:*-dlq-*"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """An emulator of its own: the whole program is deployed onto it (moto's state is the process's)."""
    emulator = Emulator(REGION, ACCOUNT)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def deployment(emulator: Emulator) -> Deployment:
    """The program deployed once as local up deploys it, with every input these tests add."""
    # every function with a dead-letter queue, a layer, a VPC and more /tmp than local mode gives it
    function_inputs = setting(
        "aws:lambda/function:Function",
        dead_letter_config={"target_arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:function-dlq"},
        layers=[LAYER],
        vpc_config={"subnet_ids": ["subnet-0123"], "security_group_ids": ["sg-0123"]},
        ephemeral_storage={"size": 2048},
    )

    # the stage's method settings with a cache and execution logs
    def cached(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:apigateway/methodSettings:MethodSettings":
            return None
        settings = {**args.props["settings"], "caching_enabled": True, "logging_level": "INFO"}
        return pulumi.ResourceTransformationResult({**args.props, "settings": settings}, args.opts)

    # a bucket policy statement on the caller's address, and queue policies letting another account send
    partner = {
        "Sid": "PartnerSends",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": "sqs:SendMessage",
        "Resource": "*",
    }
    policies = [adding_statement(BUCKET_POLICY, OFFICE_ONLY), adding_statement(QUEUE_POLICY, partner)]

    # the query function's role with an inline policy (one statement revoked) and a permissions boundary;
    # the worker's with a managed policy
    inline = {
        "Version": "2012-10-17",
        "Statement": [
            dead_letter_statement("InspectDeadLetters", "sqs:GetQueueAttributes"),
            dead_letter_statement("ListDeadLetterTags", "sqs:ListQueueTags"),
        ],
    }
    describe_tables = {
        "Sid": "DescribeTables",
        "Effect": "Allow",
        "Action": "dynamodb:DescribeTable",
        "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/*",
    }
    managed = emulator.client("iam").create_policy(
        PolicyName="describe-tables",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [describe_tables]}),
    )["Policy"]["Arn"]
    sqs_read_only = {"Sid": "ReadQueues", "Effect": "Allow", "Action": ["sqs:Get*", "sqs:List*"], "Resource": "*"}
    boundary = emulator.client("iam").create_policy(
        PolicyName="sqs-read-only",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [sqs_read_only]}),
    )["Policy"]["Arn"]
    roles = [
        role_named(
            "api-fn",
            inline_policies=[{"name": INLINE, "policy": json.dumps(inline)}],
            permissions_boundary=boundary,
        ),
        role_named("worker", managed_policy_arns=[managed]),
    ]

    return deploy(
        "dev",
        emulator,
        lambda api_id: "http://127.0.0.1:9",
        transformations=[function_inputs, cached, *policies, *roles],
        revocations=[Revocation.parse("api-fn=ListDeadLetterTags")],
    )


LAYER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:shared:1"


def listed_of(deployment: Deployment) -> dict[str, str]:
    return {name: why for _, name, why in deployment.not_emulated}


def test_inputs_local_mode_does_not_apply_are_listed_at_start_up_with_their_page(deployment: Deployment) -> None:
    # GIVEN the inputs the fixture adds, WHEN the program is deployed as local up deploys it
    listed = listed_of(deployment)

    # THEN each is listed, named by resource and input, with the AWS page
    functions = [r.name for r in deployment.plan.of_type("aws:lambda/function:Function")]
    assert functions
    for function in functions:
        for key in ("deadLetterConfig", "layers", "vpcConfig"):
            assert "https://docs.aws.amazon.com/lambda/" in listed[f"{function}.{key}"]
    (settings,) = deployment.plan.of_type("aws:apigateway/methodSettings:MethodSettings")
    for key in ("cachingEnabled", "loggingLevel", "metricsEnabled"):
        assert "API_MethodSetting.html" in listed[f"{settings.name}.settings.{key}"]
    assert not any(".settings.throttling" in name for name in listed)  # the stage throttle is applied
    assert json.dumps(listed).count(LAYER) == 0  # what is listed is the input's name, not its value
    # and each policy statement local mode cannot evaluate, by resource, Sid and key or account, and no other
    (bucket_policy,) = deployment.plan.of_type(BUCKET_POLICY)
    queue_policies = [r.name for r in deployment.plan.of_type(QUEUE_POLICY)]
    assert "statement 'OfficeOnly'" in listed[f"{bucket_policy.name}.policy"]
    assert "aws:SourceIp" in listed[f"{bucket_policy.name}.policy"]
    for queue_policy in queue_policies:
        assert "statement 'PartnerSends'" in listed[f"{queue_policy}.policy"]
        assert "999999999999" in listed[f"{queue_policy}.policy"]
    policy_inputs = {name for name in listed if name.rsplit(".", 1)[-1] in ("policy", "assumeRolePolicy")}
    assert policy_inputs == {f"{name}.policy" for name in [bucket_policy.name, *queue_policies]}


def test_an_input_no_part_of_local_mode_reads_is_listed_with_the_types_page(deployment: Deployment) -> None:
    # GIVEN functions declaring ephemeralStorage, which neither a creator nor the registry reads
    listed = listed_of(deployment)
    functions = [r.name for r in deployment.plan.of_type("aws:lambda/function:Function")]

    # THEN each is listed by resource and input, with the type's inputs page; never in silence
    for function in functions:
        assert (
            "https://www.pulumi.com/registry/packages/aws/api-docs/lambda/function/"
            in listed[f"{function}.ephemeralStorage"]
        )
    # while inputs local mode applies are not listed
    assert not any(name.endswith((".inlinePolicies", ".managedPolicyArns", ".permissionsBoundary")) for name in listed)


def test_a_roles_inline_and_managed_policies_grant_locally_what_they_grant_on_aws(
    emulator: Emulator, deployment: Deployment
) -> None:
    # GIVEN the query function's role with an inline policy, and the worker's with a managed policy
    roles = {r.name: r.outputs["arn"] for r in deployment.plan.of_type(ROLE)}
    (query_role,) = [arn for name, arn in roles.items() if "api-fn" in name]
    (worker_role,) = [arn for name, arn in roles.items() if "worker" in name]
    (dead_letters,) = [r.outputs["url"] for r in deployment.plan.of_type("aws:sqs/queue:Queue") if "dlq" in r.name]

    (table,) = [r.outputs["name"] for r in deployment.plan.of_type("aws:dynamodb/table:Table") if "users" in r.name]

    def client_of(service: str, role_arn: str) -> Any:
        return emulator.client(service, emulator.assume_role(role_arn, session_name="declared-inputs"))

    # WHEN each asks for what only that policy allows, THEN local IAM allows it, as AWS would
    query = client_of("sqs", query_role)
    assert query.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]
    assert client_of("dynamodb", worker_role).describe_table(TableName=table)["Table"]
    # and a statement revoked (--revoke api-fn=ListDeadLetterTags) is not in the inline policy
    with pytest.raises(ClientError) as revoked:
        query.list_queue_tags(QueueUrl=dead_letters)
    assert revoked.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    # nor does the query role get the worker's managed policy
    with pytest.raises(ClientError) as not_attached:
        client_of("dynamodb", query_role).describe_table(TableName=table)
    assert not_attached.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_roles_permissions_boundary_denies_locally_what_its_policies_allow_outside_it(
    emulator: Emulator, deployment: Deployment
) -> None:
    # GIVEN the query function's role, whose policies let it read users, bounded by SQS read-only access
    (query_role,) = [r.outputs["arn"] for r in deployment.plan.of_type(ROLE) if "api-fn" in r.name]
    (table,) = [r.outputs["name"] for r in deployment.plan.of_type("aws:dynamodb/table:Table") if "users" in r.name]
    session = emulator.assume_role(query_role, session_name="bounded")

    # WHEN it reads a user, THEN the boundary denies it, as on AWS: the effective permissions are what
    # both the identity policies and the boundary allow
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html)
    with pytest.raises(ClientError) as bounded:
        emulator.client("dynamodb", session).get_item(TableName=table, Key={"email": {"S": "a@example.com"}})
    assert bounded.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "permissions boundary" in bounded.value.response["Error"]["Message"]
