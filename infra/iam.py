"""IAM policy documents as data: one shape for every policy the pipeline writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi

POLICY_VERSION = "2012-10-17"


def statement(sid: str, actions: Sequence[str], resources: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """An Allow statement: actions listed one by one, on exactly these resources."""
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": list(resources)}


def policy_document(statements: Sequence[dict[str, Any]]) -> pulumi.Output[str]:
    """A permission policy as JSON, resolving any ARNs (outputs) inside its statements."""
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": list(statements)})


def deny_insecure_transport(service: str, resources: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """Deny any request to `service` (``"s3"``, ``"sqs"``, ``"sns"``) on these resources that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": f"{service}:*",
        "Resource": list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def deny(sid: str, actions: str | Sequence[str], resources: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """Deny `actions` (one action as written, or a list) on these resources to every principal.

    In a resource policy, `"Principal": "*"` makes the deny apply to whoever calls, whatever their own
    policies allow: an explicit deny in any applicable policy wins
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html).
    """
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions if isinstance(actions, str) else list(actions),
        "Resource": list(resources),
    }


def deny_to_iam_principals(
    sid: str, actions: str | Sequence[str], resources: Sequence[pulumi.Input[str]]
) -> dict[str, Any]:
    """Deny `actions` on these resources to every IAM principal; a service principal acting itself is not one.

    `aws:PrincipalIsAWSService` is in the context of every signed request, true only when an AWS service
    makes it with its own service principal (CloudWatch publishing an alarm), false for every role,
    user or root, and for a service acting with an IAM principal's credentials
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalisawsservice).
    A service principal still needs an Allow in the resource's policy: this only keeps the deny from
    ever being the one in its way.
    """
    statement = deny(sid, actions, resources)
    statement["Condition"] = {"Bool": {"aws:PrincipalIsAWSService": "false"}}
    return statement


def deny_unless_principal(
    sid: str,
    actions: str | Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    principal_arns: Sequence[pulumi.Input[str]],
) -> dict[str, Any]:
    """Deny `actions` on these resources to every principal but these IAM roles or users.

    `aws:PrincipalArn` is the role's ARN for a role session (not the session's ARN), so a role
    listed here covers every session of it
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn).
    A request without the key — an AWS service acting as itself — is denied too. With no principal
    listed, the actions are denied to everyone (a condition on an empty list would be no condition).
    """
    statement = deny(sid, actions, resources)
    if principal_arns:
        statement["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": list(principal_arns)}}
    return statement


def assume_role_policy(service: str, source_account: pulumi.Input[str] | None = None) -> pulumi.Input[str]:
    """Trust policy letting one AWS service assume a role, on behalf of `source_account` only if given.

    Written as data rather than `aws.iam.get_policy_document`: it needs no provider call at plan
    time (nor under mocks). `aws:SourceAccount` keeps the service from assuming the role for
    another account's resources (the confused deputy).
    """
    trust: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if source_account is None:
        return json.dumps({"Version": POLICY_VERSION, "Statement": [trust]})
    trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": [trust]})
