"""Inputs the program declares that local mode once read and dropped (issue 20, item 8): each either
takes effect or is listed at start-up under "not emulated", with the AWS page it was checked against.
So is what a declared policy relies on that local mode's IAM cannot evaluate (`local.iam_gaps`,
tested on the plan in tests/local/test_iam_gaps.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from local.apigw import ApiGateway
from local.deployer import Deployment, deploy
from local.emulator import Emulator
from local.mocks import run_program
from local.registry import Registry
from tests.local.support import http
from tests.local.test_apigw import ACCOUNT, REGION, Function, method, permission, spec
from tests.local.test_iam_gaps import BUCKET_POLICY, QUEUE_POLICY, adding_statement

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


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator of its own: the whole program is deployed onto it (moto's state is the process's)."""
    emulator = Emulator(REGION, ACCOUNT)
    emulator.start()
    yield emulator
    emulator.stop()


def test_inputs_local_mode_does_not_apply_are_listed_at_start_up_with_their_page(emulator: Emulator) -> None:
    # GIVEN every function with a dead-letter queue, a layer and a VPC, and the stage's method
    # settings with a cache and execution logs
    layer = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:shared:1"
    function_inputs = setting(
        "aws:lambda/function:Function",
        dead_letter_config={"target_arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:function-dlq"},
        layers=[layer],
        vpc_config={"subnet_ids": ["subnet-0123"], "security_group_ids": ["sg-0123"]},
    )

    def cached(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:apigateway/methodSettings:MethodSettings":
            return None
        settings = {**args.props["settings"], "caching_enabled": True, "logging_level": "INFO"}
        return pulumi.ResourceTransformationResult({**args.props, "settings": settings}, args.opts)

    # and a bucket policy statement on the caller's address, and queue policies letting another account send
    office_only = {
        "Sid": "OfficeOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
    }
    partner = {
        "Sid": "PartnerSends",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": "sqs:SendMessage",
        "Resource": "*",
    }
    policies = [adding_statement(BUCKET_POLICY, office_only), adding_statement(QUEUE_POLICY, partner)]

    # WHEN the program is deployed as local up deploys it
    deployment: Deployment = deploy(
        "dev", emulator, lambda api_id: "http://127.0.0.1:9", transformations=[function_inputs, cached, *policies]
    )

    # THEN each is listed, named by resource and input, with the AWS page
    listed = {name: why for _, name, why in deployment.not_emulated}
    functions = [r.name for r in deployment.plan.of_type("aws:lambda/function:Function")]
    assert functions
    for function in functions:
        for key in ("deadLetterConfig", "layers", "vpcConfig"):
            assert "https://docs.aws.amazon.com/lambda/" in listed[f"{function}.{key}"]
    (settings,) = deployment.plan.of_type("aws:apigateway/methodSettings:MethodSettings")
    for key in ("cachingEnabled", "loggingLevel", "metricsEnabled"):
        assert "API_MethodSetting.html" in listed[f"{settings.name}.settings.{key}"]
    assert not any(".settings.throttling" in name for name in listed)  # the stage throttle is applied
    assert json.dumps(listed).count(layer) == 0  # what is listed is the input's name, not its value
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
