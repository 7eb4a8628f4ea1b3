"""Start-up refuses what AWS refuses when the program's resources are created (issue 20, item 4).

Each test deploys the program onto a fresh in-process emulator (`local.deployer.deploy`, what
`local up` runs first) with a stack transformation that introduces one mistake AWS refuses at
deploy time, and checks that start-up stops with AWS's error, naming the resource as the program
declares it. The program as it is deploys (the API test below deploys it whole).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest

from local.apigw import ApiGateway
from local.deployer import DeployError, Deployment, deploy
from local.emulator import Emulator
from local.project import stack_region, stack_settings
from local.registry import Registry
from tests.local.support import http
from tests.local.test_apigw import Function

pytestmark = pytest.mark.long(seconds=160)

STACK = "dev"
REGION = stack_region(STACK, stack_settings(STACK))
ACCOUNT = "123456789012"

Transformation = Callable[[pulumi.ResourceTransformationArgs], pulumi.ResourceTransformationResult | None]


@pytest.fixture
def deployed() -> Iterator[Callable[..., Deployment]]:
    """Deploy the program with these transformations onto an emulator of its own (moto's state is the
    process's: each deploy gets a fresh one)."""
    emulators: list[Emulator] = []

    def run(*transformations: Transformation) -> Deployment:
        emulator = Emulator(REGION, ACCOUNT)
        emulators.append(emulator)
        emulator.start()
        return deploy(STACK, emulator, lambda api_id: "http://127.0.0.1:9", transformations=transformations)

    yield run
    for emulator in emulators:
        emulator.stop()


def changing(type_: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Transformation:
    """A stack transformation that changes the inputs of every resource of `type_` (None: as they are)."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != type_:
            return None
        props = change(dict(args.props))
        return None if props is None else pulumi.ResourceTransformationResult(props, args.opts)

    return transformation


def test_a_batch_over_ten_without_a_batching_window_stops_start_up_with_lambdas_error(deployed) -> None:
    def batch_of_100(props: dict[str, Any]) -> dict[str, Any]:
        return {**props, "batch_size": 100, "maximum_batching_window_in_seconds": 0}

    with pytest.raises(DeployError) as refused:
        deployed(changing("aws:lambda/eventSourceMapping:EventSourceMapping", batch_of_100))

    message = str(refused.value)
    assert message.startswith("aws:lambda/eventSourceMapping:EventSourceMapping csv-ingest-worker-queue: ")
    assert "CreateEventSourceMapping: InvalidParameterValueException: BatchSize 100" in message
    assert "\n" not in message


def test_a_queue_visible_again_before_the_function_times_out_stops_start_up_with_lambdas_error(deployed) -> None:
    def visible_after_one_second(props: dict[str, Any]) -> dict[str, Any]:
        return {**props, "visibility_timeout_seconds": 1}

    with pytest.raises(DeployError) as refused:
        deployed(changing("aws:sqs/queue:Queue", visible_after_one_second))

    message = str(refused.value)
    assert message.startswith("aws:lambda/eventSourceMapping:EventSourceMapping csv-ingest-worker-queue: ")
    assert "CreateEventSourceMapping: InvalidParameterValueException: Queue visibility timeout: 1 seconds is" in message
    assert message.endswith("seconds")


def test_a_role_lambda_may_not_assume_stops_start_up_with_lambdas_error(deployed) -> None:
    def trusting_step_functions(props: dict[str, Any]) -> dict[str, Any] | None:
        trust = props["assume_role_policy"]
        if not isinstance(trust, str) or "lambda.amazonaws.com" not in trust:
            return None
        return {**props, "assume_role_policy": trust.replace("lambda.amazonaws.com", "states.amazonaws.com")}

    with pytest.raises(DeployError) as refused:
        deployed(changing("aws:iam/role:Role", trusting_step_functions))

    message = str(refused.value)
    assert message.startswith("aws:lambda/function:Function csv-ingest-")
    assert message.endswith(
        ": CreateFunction: InvalidParameterValueException:"
        " The role defined for the function cannot be assumed by Lambda."
    )


def test_a_trust_policy_denying_lambda_is_refused_though_another_statement_allows_it(deployed) -> None:
    def denying_lambda(props: dict[str, Any]) -> dict[str, Any] | None:
        trust = props["assume_role_policy"]
        if not isinstance(trust, str) or "lambda.amazonaws.com" not in trust:
            return None
        document = json.loads(trust)
        document["Statement"].append(
            {"Effect": "Deny", "Principal": {"Service": ["lambda.amazonaws.com"]}, "Action": "sts:AssumeRole"}
        )
        return {**props, "assume_role_policy": json.dumps(document)}

    with pytest.raises(DeployError, match="cannot be assumed by Lambda"):
        deployed(changing("aws:iam/role:Role", denying_lambda))


def test_an_s3_notification_to_a_function_s3_may_not_invoke_stops_start_up_with_s3s_error(deployed) -> None:
    def for_another_bucket(props: dict[str, Any]) -> dict[str, Any] | None:
        if props.get("principal") != "s3.amazonaws.com":
            return None
        return {**props, "source_arn": "arn:aws:s3:::another-bucket"}

    with pytest.raises(DeployError) as refused:
        deployed(changing("aws:lambda/permission:Permission", for_another_bucket))

    message = str(refused.value)
    assert message.startswith("aws:s3/bucketNotification:BucketNotification csv-ingest-producer-trigger: ")
    assert "PutBucketNotificationConfiguration: InvalidArgument: Unable to validate the following destination" in (
        message
    )


def late_method(path_slug: str) -> list[Transformation]:
    """The API's `ANY` method on `path_slug` (and its integration) left out of the deployment's
    `depends_on` and created only once the deployment exists: a method added without a redeploy."""
    name = f"csv-ingest-api-any-{path_slug}"
    gate: dict[str, asyncio.Future[str]] = {}

    def opened() -> asyncio.Future[str]:
        if "deployed" not in gate:
            gate["deployed"] = asyncio.get_event_loop().create_future()
        return gate["deployed"]

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ == "aws:apigateway/method:Method" and args.name == name:
            after = pulumi.Output.all(args.props["resource_id"], pulumi.Output.from_input(opened()))
            return pulumi.ResourceTransformationResult({**args.props, "resource_id": after[0]}, args.opts)
        if args.type_ == "aws:apigateway/deployment:Deployment":
            kept = [r for r in args.opts.depends_on or [] if getattr(r, "_name", None) != name]
            opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions())
            opts.depends_on = kept
            return pulumi.ResourceTransformationResult(args.props, opts)
        if args.type_ == "aws:apigateway/stage:Stage":

            def open_gate(deployment_id: str) -> str:
                if not opened().done():
                    opened().set_result(deployment_id)
                return deployment_id

            props = {**args.props, "deployment": pulumi.Output.from_input(args.props["deployment"]).apply(open_gate)}
            return pulumi.ResourceTransformationResult(props, args.opts)
        return None

    return [transformation]


def test_a_method_created_after_the_deployment_is_not_served(deployed) -> None:
    # GIVEN the catch-all ANY /{proxy+} created after the stage's deployment
    deployment = deployed(*late_method("proxy"))
    registry = Registry.from_plan(deployment.plan, REGION, ACCOUNT)
    (api,) = registry.apis
    served_paths = {(m.path, m.http_method) for m in api.methods}
    assert ("/{proxy+}", "ANY") not in served_paths
    assert ("/users", "GET") in served_paths

    # WHEN a path only it would have served is asked for, THEN API Gateway's own 403, as for any path
    # the deployment does not hold; a deployed route still reaches the function
    (key,) = api.api_keys
    gateway = ApiGateway(
        api, region=REGION, account_id=ACCOUNT, invoke=Function(), log=[].append, permissions=registry.permissions
    )
    gateway.bind()
    gateway.start()
    try:
        base, headers = f"http://127.0.0.1:{gateway.port}/{api.stage_name}", {"x-api-key": key.value}
        unknown = http("GET", f"{base}/nothing-here", headers)
        known = http("GET", f"{base}/users", headers)
    finally:
        gateway.stop()
    assert (unknown.status, unknown.body) == (403, {"message": "Missing Authentication Token"})
    assert known.status == 200


def test_a_permissions_boundary_the_emulator_does_not_hold_stops_start_up_naming_role_and_policy(deployed) -> None:
    # An AWS managed policy exists on AWS, but local mode does not load AWS's managed policies: a boundary
    # local IAM cannot read would deny the role everything, so start-up says so rather than run it.
    boundary = "arn:aws:iam::aws:policy/PowerUserAccess"

    def bounded(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:iam/role:Role" or "worker" not in args.name:
            return None
        return pulumi.ResourceTransformationResult({**args.props, "permissions_boundary": boundary}, args.opts)

    with pytest.raises(DeployError) as refused:
        deployed(bounded)

    message = str(refused.value)
    assert message.startswith("aws:iam/role:Role ")
    assert "worker" in message.split(":")[2]
    assert f"NoSuchEntity: Policy {boundary} does not exist or is not attachable" in message
    assert "AWS managed policies are not loaded locally" in message
    assert "\n" not in message
