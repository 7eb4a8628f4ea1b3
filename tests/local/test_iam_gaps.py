"""What a declared policy relies on that local mode's IAM cannot evaluate (issue 20): listed at start-up.

Local mode's request contexts hold only the keys `local.authz` puts in them; a condition on any other
key (`aws:SourceIp`, an organization's ID, a session tag…) is judged as on an absent key, whatever AWS
would decide with the real value, and a principal or resource of another account is never judged
as AWS's cross-account logic would. Each such use in a policy the program declares is listed under
"not emulated", naming the resource, the statement and the key, with the AWS page. These tests run
the program under mocks (`run_program`, no emulator); `tests/local/test_declared_inputs.py` checks
the same listing through local up's deploy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from local import authz
from local.iam_gaps import (
    CROSS_ACCOUNT_PAGE,
    GLOBAL_KEYS_PAGE,
    ORGANIZATIONS_PAGE,
    SESSION_TAGS_PAGE,
    STS_KEYS_PAGE,
    plan_gaps,
)
from local.iam_gaps import policy_gaps as gaps_of_policy
from local.mocks import ACCOUNT_ID, run_program

BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
PERMISSION = "aws:lambda/permission:Permission"
OTHER_ACCOUNT = "999999999999"

Transformation = Callable[[pulumi.ResourceTransformationArgs], pulumi.ResourceTransformationResult | None]


# A bucket policy statement on the caller's network address, which local requests never carry.
OFFICE_ONLY = {
    "Sid": "OfficeOnly",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": "*",
    "Condition": {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
}


def adding_statement(type_: str, statement: dict[str, Any]) -> Transformation:
    """A stack transformation that adds `statement` to the `policy` of every resource of `type_`."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != type_:
            return None

        def added(text: str) -> str:
            document = json.loads(text)
            return json.dumps({**document, "Statement": [*document["Statement"], statement]})

        policy = pulumi.Output.from_input(args.props["policy"]).apply(added)
        return pulumi.ResourceTransformationResult({**args.props, "policy": policy}, args.opts)

    return transformation


def test_the_program_as_it_is_relies_on_no_key_or_account_local_mode_cannot_evaluate() -> None:
    # Its conditions are on aws:SecureTransport, aws:PrincipalArn and aws:PrincipalIsAWSService (every
    # caller's context has them), and on aws:SourceAccount/aws:SourceArn for service principals
    # (what local mode supplies when S3 invokes a function): nothing to list.
    assert plan_gaps(run_program("dev"), ACCOUNT_ID) == []


def test_a_bucket_policy_statement_on_the_source_ip_is_listed_naming_resource_statement_and_key() -> None:
    plan = run_program("dev", transformations=[adding_statement(BUCKET_POLICY, OFFICE_ONLY)])

    (bucket_policy,) = plan.of_type(BUCKET_POLICY)
    ((type_, name, why),) = plan_gaps(plan, ACCOUNT_ID)
    assert (type_, name) == (BUCKET_POLICY, f"{bucket_policy.name}.policy")
    assert "statement 'OfficeOnly'" in why and "aws:SourceIp" in why and GLOBAL_KEYS_PAGE in why


def test_a_queue_policy_allowing_another_account_is_listed_as_cross_account() -> None:
    partner = {
        "Sid": "PartnerSends",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        "Action": "sqs:SendMessage",
        "Resource": "*",
    }
    plan = run_program("dev", transformations=[adding_statement(QUEUE_POLICY, partner)])

    listed = plan_gaps(plan, ACCOUNT_ID)
    queue_policies = sorted(f"{r.name}.policy" for r in plan.of_type(QUEUE_POLICY))
    assert sorted(name for _, name, _ in listed) == queue_policies
    for _, _, why in listed:
        assert "'PartnerSends'" in why and OTHER_ACCOUNT in why and CROSS_ACCOUNT_PAGE in why


def test_a_function_permission_for_another_account_or_an_organization_is_listed() -> None:
    def for_a_partner(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != PERMISSION or args.props.get("principal") != "s3.amazonaws.com":
            return None
        props = {**args.props, "source_account": OTHER_ACCOUNT, "principal_org_id": "o-a1b2c3d4e5"}
        return pulumi.ResourceTransformationResult(props, args.opts)

    plan = run_program("dev", transformations=[for_a_partner])

    listed = {name: why for type_, name, why in plan_gaps(plan, ACCOUNT_ID) if type_ == PERMISSION}
    (permission,) = (r for r in plan.of_type(PERMISSION) if r.inputs["principal"] == "s3.amazonaws.com")
    assert set(listed) == {f"{permission.name}.sourceAccount", f"{permission.name}.principalOrgId"}
    assert OTHER_ACCOUNT in listed[f"{permission.name}.sourceAccount"]
    assert CROSS_ACCOUNT_PAGE in listed[f"{permission.name}.sourceAccount"]
    assert "aws:PrincipalOrgID" in listed[f"{permission.name}.principalOrgId"]
    assert ORGANIZATIONS_PAGE in listed[f"{permission.name}.principalOrgId"]


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(sid: str, **elements: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", **elements}


@pytest.mark.parametrize(
    ("key", "page"),
    [
        ("aws:SourceIp", GLOBAL_KEYS_PAGE),
        ("aws:SourceVpc", GLOBAL_KEYS_PAGE),
        ("aws:SourceVpce", GLOBAL_KEYS_PAGE),
        ("aws:VpcSourceIp", GLOBAL_KEYS_PAGE),
        ("aws:PrincipalOrgID", ORGANIZATIONS_PAGE),
        ("aws:PrincipalOrgPaths", ORGANIZATIONS_PAGE),
        ("aws:ResourceOrgID", ORGANIZATIONS_PAGE),
        ("aws:RequestTag/team", SESSION_TAGS_PAGE),
        ("aws:TagKeys", SESSION_TAGS_PAGE),
        ("sts:TransitiveTagKeys", STS_KEYS_PAGE),
        ("sts:RoleSessionName", STS_KEYS_PAGE),
        ("aws:ResourceTag/team", GLOBAL_KEYS_PAGE),
        ("aws:MultiFactorAuthPresent", GLOBAL_KEYS_PAGE),
        ("s3:prefix", "https://docs.aws.amazon.com/service-authorization/"),
        ("dynamodb:LeadingKeys", "https://docs.aws.amazon.com/service-authorization/"),
    ],
)
def test_a_key_local_mode_never_supplies_is_listed_with_its_page(key: str, page: str) -> None:
    (why,) = gaps_of_policy(policy(allow("Keyed", Condition={"StringEquals": {key: "x"}})), ACCOUNT_ID)
    assert "statement 'Keyed'" in why and key in why and page in why


@pytest.mark.parametrize(
    "condition",
    [
        {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}},
        {"Null": {"aws:SourceVpce": "true"}},
        {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}},
        {"StringEquals": {"AWS:SOURCEIP": "10.0.0.1"}},  # key names are case-insensitive
    ],
)
def test_a_key_absent_locally_is_listed_whatever_the_operator(condition: dict[str, Any]) -> None:
    # the emulator cannot tell what AWS would decide with a real value, even where absence is defined
    assert len(gaps_of_policy(policy(allow("Guarded", Condition=condition)), ACCOUNT_ID)) == 1


def test_a_policy_variable_on_a_key_absent_locally_is_listed() -> None:
    statement = allow("PerVpc", Resource="arn:aws:s3:::bucket/${aws:SourceVpc}/*")
    (why,) = gaps_of_policy(policy(statement), ACCOUNT_ID)
    assert "'PerVpc'" in why and "aws:SourceVpc" in why


def test_a_statement_without_sid_is_named_by_its_place() -> None:
    unnamed = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}},
    }
    (why,) = gaps_of_policy(policy(allow("First"), unnamed), ACCOUNT_ID)
    assert "statement 2 (no Sid)" in why


def test_a_resource_of_another_account_is_listed_and_one_of_this_account_or_any_is_not() -> None:
    statement = allow(
        "Queues",
        Action="sqs:SendMessage",
        Resource=[
            f"arn:aws:sqs:eu-west-1:{OTHER_ACCOUNT}:theirs",
            f"arn:aws:sqs:eu-west-1:{ACCOUNT_ID}:ours",
            "arn:aws:sqs:*:*:any",
            "arn:aws:s3:::bucket/key",
        ],
    )
    (why,) = gaps_of_policy(policy(statement), ACCOUNT_ID)
    assert f"arn:aws:sqs:eu-west-1:{OTHER_ACCOUNT}:theirs" in why and CROSS_ACCOUNT_PAGE in why


@pytest.mark.parametrize(
    "principal",
    [OTHER_ACCOUNT, f"arn:aws:iam::{OTHER_ACCOUNT}:role/partner", f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/r/s"],
)
def test_a_principal_of_another_account_is_listed(principal: str) -> None:
    (why,) = gaps_of_policy(policy(allow("Partner", Principal={"AWS": [principal]})), ACCOUNT_ID)
    assert OTHER_ACCOUNT in why and CROSS_ACCOUNT_PAGE in why


def test_keys_and_principals_local_mode_supplies_are_not_listed() -> None:
    statements = [
        allow("Tls", Condition={"Bool": {"aws:SecureTransport": "false"}}),
        allow("Who", Condition={"ArnNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT_ID}:role/r"}}),
        allow("Tagged", Condition={"StringEquals": {"aws:PrincipalTag/team": "data"}}),
        allow("Home", Resource="arn:aws:s3:::bucket/${aws:username}/*"),
        allow("Special", Resource="arn:aws:s3:::bucket/${*}"),
        allow(
            "Deputy",
            Principal={"Service": "s3.amazonaws.com"},
            Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}, "ArnLike": {"aws:SourceArn": "arn:*"}},
        ),
        allow("Mine", Principal={"AWS": [f"arn:aws:iam::{ACCOUNT_ID}:root", ACCOUNT_ID, "*"]}),
    ]
    assert gaps_of_policy(policy(*statements), ACCOUNT_ID) == []


def test_every_key_request_context_puts_in_a_callers_context_counts_as_supplied() -> None:
    # The supplied keys are read from the declaration `request_context` builds contexts from: a key
    # added there is never listed, and none is listed that it supplies.
    user = authz.Identity(
        arn=f"arn:aws:iam::{ACCOUNT_ID}:user/someone",
        caller_arn=f"arn:aws:iam::{ACCOUNT_ID}:user/someone",
        account_id=ACCOUNT_ID,
        kind="User",
        unique_id="AIDAEXAMPLE",
        secret_access_key="secret",
        policies=(),
        tags=(("team", "data"),),
    )
    context = authz.request_context(user, "eu-west-1")
    conditions = {"StringEquals": {key: "x" for key in context.values}}
    assert len(context.values) >= 10
    assert gaps_of_policy(policy(allow("All", Condition=conditions)), ACCOUNT_ID) == []
