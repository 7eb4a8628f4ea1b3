"""IAM's condition operators and policy variables, as AWS documents them (issue 20, item 7).

Each case is a rule of https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
reference_policies_condition-single-vs-multi-valued-context-keys.html or reference_policies_variables.html,
checked against the evaluator on its own, then through a running emulator: a local mode stricter than
AWS sends its users hunting for bugs they do not have; one more lenient passes what AWS refuses.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import authz
from local.emulator import Emulator
from tests.local.conftest import ACCOUNT, REGION
from tests.local.support import iam_user

TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/users"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/worker"
USER = f"arn:aws:iam::{ACCOUNT}:user/ann"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def caller(kind: str = "AssumedRole", tags: tuple[tuple[str, str], ...] = (), *policies: Any) -> authz.Identity:
    arn = USER if kind == "User" else ROLE
    return authz.Identity(
        arn=arn,
        caller_arn=arn if kind == "User" else f"arn:aws:sts::{ACCOUNT}:assumed-role/worker/session",
        account_id=ACCOUNT,
        kind=kind,
        unique_id="AIDAANN" if kind == "User" else "AROAWORKER:session",
        secret_access_key="secret",
        policies=policies,
        **({"tags": tags} if tags else {}),
    )


def put_allowed(who: authz.Identity, resource: str = TABLE) -> bool:
    return authz.authorize(who, "dynamodb:PutItem", resource, None, authz.request_context(who, REGION)).allowed


def with_condition(condition: dict[str, Any], kind: str = "AssumedRole") -> bool:
    """Is PutItem allowed by an Allow carrying `condition` (and nothing else)?"""
    statement = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE, "Condition": condition}
    return put_allowed(caller(kind, (), policy(statement)))


# (condition, allowed, the rule) - aws:SourceIp, aws:TagKeys, aws:SourceArn and aws:username (for a role)
# are absent from these requests' context.
CONDITIONS = [
    # Absent keys: "If the key that you specify in a policy condition is not present in the request
    # context, the values do not match and the condition is false. If the policy condition requires that
    # the key is not matched, such as StringNotLike or ArnNotLike, and the right key is not present, the
    # condition is true" (the operators page, "Important").
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, False, "ForAnyValue on an absent key is false"),
    ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a"]}}, False, "ForAnyValue, even negated, is false"),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, True, "ForAllValues on an absent key is true"),
    ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, True, "a negated operator matches an absent key"),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, False, "IpAddress does not"),
    ({"DateNotEquals": {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"}}, True, "nor does a negated date"),
    ({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}}, True, "ArnNotLike on an absent key is true"),
    ({"StringEqualsIfExists": {"aws:SourceArn": "x"}}, True, "...IfExists matches an absent key"),
    ({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "a"}}, True, "...IfExists with ForAnyValue too"),
    # Dates: ISO 8601 or epoch values, on either side.
    ({"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}}, True, "ISO 8601 date and time, Z"),
    ({"DateGreaterThan": {"aws:CurrentTime": "2100-01-01"}}, False, "ISO 8601 date alone"),
    ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00+02:00"}}, True, "ISO 8601 with an offset"),
    ({"DateLessThan": {"aws:CurrentTime": "4102444800"}}, True, "epoch seconds against an ISO time"),
    ({"DateLessThanEquals": {"aws:EpochTime": "2100-01-01T00:00:00Z"}}, True, "an ISO value against epoch time"),
    ({"DateGreaterThanEquals": {"aws:EpochTime": 1577836800}}, True, "an epoch number against epoch time"),
    ({"DateEquals": {"aws:CurrentTime": "not a date"}}, False, "a value that is no date matches nothing"),
    # Binary and IP address operators on present keys.
    ({"BinaryEquals": {"aws:PrincipalType": "AssumedRole"}}, True, "BinaryEquals compares the base64 text"),
    # Policy variables in condition values (reference_policies_variables.html).
    ({"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:role/worker"}}, True, "in text"),
    ({"StringLike": {"aws:userid": "${aws:userid}"}}, True, "aws:userid"),
    ({"StringEquals": {"aws:PrincipalType": "${aws:username}"}}, False, "no aws:username for a role: no match"),
    ({"StringNotEquals": {"aws:PrincipalType": "${aws:username}"}}, False, "nor for a negated operator"),
    ({"StringEquals": {"aws:PrincipalType": "${aws:username, 'AssumedRole'}"}}, True, "a default stands in"),
    ({"StringLike": {"aws:PrincipalType": "Assumed${*}"}}, False, "${*} is a literal asterisk"),
    ({"StringLike": {"aws:PrincipalType": "Assumed*"}}, True, "while * is a wildcard"),
]


@pytest.mark.parametrize(("condition", "expected", "rule"), CONDITIONS, ids=[case[2] for case in CONDITIONS])
def test_conditions_evaluate_as_aws_documents(condition: dict[str, Any], expected: bool, rule: str) -> None:
    assert with_condition(condition) is expected, rule


def test_a_deny_with_an_absent_key_under_for_any_value_does_not_apply() -> None:
    # The false alarm of the issue: a Deny whose ForAnyValue key the request lacks denied locally (a
    # negated operator under ForAnyValue was taken as matching the absent key).
    deny = {
        "Effect": "Deny",
        "Action": "dynamodb:*",
        "Resource": "*",
        "Condition": {"ForAnyValue:StringNotLike": {"aws:TagKeys": ["public*"]}},
    }
    allow = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE}
    assert put_allowed(caller("AssumedRole", (), policy(allow, deny)))


def test_variables_in_resources_take_the_callers_values() -> None:
    own = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": f"{TABLE[: -len('users')]}${{aws:username}}-*"}
    user = caller("User", (), policy(own))
    assert put_allowed(user, TABLE.replace("users", "ann-scratch"))
    assert not put_allowed(user, TABLE.replace("users", "bob-scratch"))
    assert not put_allowed(caller("AssumedRole", (), policy(own)), TABLE.replace("users", "-scratch"))  # no username
    by_tag = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": f"{TABLE}-${{aws:PrincipalTag/team}}"}
    assert put_allowed(caller("AssumedRole", (("team", "ingest"),), policy(by_tag)), f"{TABLE}-ingest")
    assert not put_allowed(caller("AssumedRole", (), policy(by_tag)), f"{TABLE}-")


def test_a_variable_without_value_keeps_a_not_resource_deny_from_applying() -> None:
    allow = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "dynamodb:PutItem", "NotResource": f"{TABLE}-${{aws:username}}"}
    assert put_allowed(caller("AssumedRole", (), policy(allow, deny)))
    assert not put_allowed(caller("User", (), policy(allow, deny)))  # ann's own table only


def test_variables_are_literal_text_in_an_older_policy_version() -> None:
    old = {
        "Version": "2008-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*-${aws:username}"}],
    }
    assert put_allowed(caller("User", (), old), f"{TABLE}-${{aws:username}}")
    assert not put_allowed(caller("User", (), old), f"{TABLE}-ann")


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ({"StringMatchesRegex": {"aws:PrincipalType": ".*"}}, "condition operator StringMatchesRegex"),
        ({"ForSomeValues:StringEquals": {"aws:TagKeys": "a"}}, "condition operator ForSomeValues:StringEquals"),
        ({"NullIfExists": {"aws:TagKeys": "true"}}, "condition operator NullIfExists"),
        ({"StringEquals": {"aws:PrincipalType": "${aws:username"}}, "a '${' that is not a policy variable"),
    ],
)
def test_a_form_iam_does_not_document_is_named_by_its_statement(condition: dict[str, Any], problem: str) -> None:
    statement = {
        "Sid": "Odd",
        "Effect": "Allow",
        "Action": "dynamodb:PutItem",
        "Resource": TABLE,
        "Condition": condition,
    }
    fine = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE, "Condition": CONDITIONS[0][0]}
    assert authz.unsupported_forms(policy(fine, statement)) == [f"statement 'Odd': {problem}" + _tail(problem)]


def _tail(problem: str) -> str:
    if problem.startswith("condition operator"):
        return " is not one IAM documents"
    return " (${key} or ${key, 'default'})"


# --- through a running emulator ------------------------------------------------------------------


def test_policy_variables_and_absent_keys_through_the_emulator(emulator: Emulator) -> None:
    # GIVEN a user whose policy names its own tables by ${aws:username}, with a Deny that AWS leaves
    # aside for lack of aws:TagKeys (ForAnyValue) and a NotIpAddress one for lack of aws:SourceIp
    name = f"ann{uuid.uuid4().hex[:6]}"
    dynamodb = emulator.client("dynamodb")
    for table in (f"{name}-scratch", f"other{name}-scratch"):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    own_tables = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/${{aws:username}}-*"
    created = iam_user(
        emulator.client("iam"),
        name,
        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": own_tables},
        {
            "Effect": "Deny",
            "Action": "dynamodb:*",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["public"]}},
        },
    )
    user = emulator.client("dynamodb", created.credentials)

    # WHEN it writes to its own table and to another's
    user.put_item(TableName=f"{name}-scratch", Item={"pk": {"S": "1"}})
    with pytest.raises(ClientError) as other:
        user.put_item(TableName=f"other{name}-scratch", Item={"pk": {"S": "1"}})

    # THEN its own is written, the other refused
    assert dynamodb.get_item(TableName=f"{name}-scratch", Key={"pk": {"S": "1"}}).get("Item") == {"pk": {"S": "1"}}
    assert other.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_policy_the_evaluator_cannot_judge_is_refused_when_written_naming_its_statement(emulator: Emulator) -> None:
    iam = emulator.client("iam")
    role = f"odd-{uuid.uuid4().hex[:6]}"
    trust = policy({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    odd = policy(
        {
            "Sid": "OnlyFromOurNetwork",
            "Effect": "Allow",
            "Action": "dynamodb:PutItem",
            "Resource": TABLE,
            "Condition": {"IpAddressLike": {"aws:SourceIp": "10.*"}},
        }
    )
    with pytest.raises(ClientError) as refused:
        iam.put_role_policy(RoleName=role, PolicyName="odd", PolicyDocument=json.dumps(odd))
    error = refused.value.response["Error"]
    assert error["Code"] == "MalformedPolicyDocument"
    assert "statement 'OnlyFromOurNetwork': condition operator IpAddressLike" in error["Message"]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []


def test_a_program_whose_role_policy_the_evaluator_cannot_judge_stops_start_up_naming_it() -> None:
    # GIVEN the program with a statement using an operator IAM does not document in each role policy
    import pulumi

    from local.deployer import DeployError, deploy

    def odd_statement(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ != "aws:iam/rolePolicy:RolePolicy":
            return None

        def with_odd(text: str) -> str:
            document = json.loads(text)
            odd = {"Sid": "FromTheOffice", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
            odd["Condition"] = {"IpAddressLike": {"aws:SourceIp": "10.*"}}
            return json.dumps({**document, "Statement": [*document["Statement"], odd]})

        policy_text = pulumi.Output.from_input(args.props["policy"]).apply(with_odd)
        return pulumi.ResourceTransformationResult({**args.props, "policy": policy_text}, args.opts)

    emulator = Emulator(REGION, ACCOUNT)
    emulator.start()
    try:
        # WHEN local mode deploys it
        with pytest.raises(DeployError) as refused:
            deploy("dev", emulator, lambda api_id: "http://127.0.0.1:9", transformations=[odd_statement])
    finally:
        emulator.stop()

    # THEN start-up stops on one line naming the resource, IAM's error code and the statement
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("aws:iam/rolePolicy:RolePolicy "), message
    assert "MalformedPolicyDocument" in message
    assert "statement 'FromTheOffice': condition operator IpAddressLike is not one IAM documents" in message
