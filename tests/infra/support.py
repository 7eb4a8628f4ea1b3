"""Helpers to read a `Plan`: functions, their policies, ARNs."""

from __future__ import annotations

import json
from typing import Any

from local.mocks import ACCOUNT_ID, DeclaredResource, Plan, PlanMocks

FUNCTION = "aws:lambda/function:Function"


def function(plan: Plan, name: str) -> DeclaredResource:
    return plan.one(FUNCTION, name)


def policy(plan: Plan, name: str) -> dict[str, Any]:
    """The parsed permission policy of a function (by the function's logical name)."""
    return json.loads(plan.one("aws:iam/rolePolicy:RolePolicy", f"{name}-policy").inputs["policy"])


def grants(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (action, resource) pair a policy allows."""
    pairs = set()
    for stmt in document["Statement"]:
        assert stmt["Effect"] == "Allow", stmt
        actions = [stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"]
        resources = [stmt["Resource"]] if isinstance(stmt["Resource"], str) else stmt["Resource"]
        pairs |= {(a, r) for a in actions for r in resources}
    return pairs


def arn(plan: Plan, type_: str, name: str) -> str:
    return plan.one(type_, name).outputs["arn"]


# What `local.mocks.PlanMocks` answers `aws.get_caller_identity` with: the principal running the plan,
# who `pulumi up` would be. Not an assumed role, so its session context's issuer is itself.
DEPLOYER = "arn:aws:iam::123456789012:user/local"


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    """The one statement of a policy document with this Sid; fails naming the Sids there are."""
    found = [s for s in document["Statement"] if s.get("Sid") == sid]
    assert len(found) == 1, f"expected one statement {sid!r}; found {[s.get('Sid') for s in document['Statement']]}"
    return found[0]


def queue_policy(plan: Plan, queue_name: str) -> dict[str, Any]:
    """The parsed policy of the queue with this logical name (the one QueuePolicy naming its URL)."""
    url = plan.one("aws:sqs/queue:Queue", queue_name).outputs["url"]
    [policy] = [p for p in plan.of_type("aws:sqs/queuePolicy:QueuePolicy") if p.inputs["queueUrl"] == url]
    return json.loads(policy.inputs["policy"])


def role_arn(plan: Plan, function_name: str) -> str:
    """The execution role ARN of a function (by the function's logical name)."""
    return plan.one("aws:iam/role:Role", f"{function_name}-role").outputs["arn"]


# `pulumi up` run from a session of a CI role: the deployers' exemptions must name the role, whose ARN
# is what aws:PrincipalArn carries for every session of it, never the session's own ARN.
CI_DEPLOYER = f"arn:aws:iam::{ACCOUNT_ID}:role/ci-deploy"


class AssumedRoleDeployer(PlanMocks):
    """The program's mocks, with the caller a session of the `ci-deploy` role."""

    def call(self, args):
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/ci-deploy/run-4711"
            return {"accountId": ACCOUNT_ID, "arn": arn, "userId": "AROAEXAMPLE:run-4711", "id": ACCOUNT_ID}, []
        return super().call(args)


# A second schema, whose key is no email: a product catalogue keyed by its SKU (text), with a column of
# every other kind of value. As `csv-ingest:schema` declares it in a stack file (a YAML mapping).
PRODUCTS: dict[str, Any] = {
    "name": "products",
    "key": "sku",
    "columns": [
        {"name": "sku", "type": "text", "maxLength": 64, "aliases": ["product id"]},
        {"name": "price", "type": "decimal", "min": 0, "required": True},
        {"name": "stock", "type": "integer", "min": 0},
        {"name": "active", "type": "boolean"},
        {"name": "since", "type": "date"},
        {"name": "status", "type": "enum", "values": ["draft", "live", "retired"]},
        {"name": "at", "type": "datetime", "attribute": "changedAt"},
    ],
}

# A schema keyed by a whole number, stored under another attribute name than its column's.
DEVICES: dict[str, Any] = {
    "name": "devices",
    "key": "serial",
    "columns": [
        {"name": "serial", "type": "integer", "attribute": "serialNumber", "min": 1},
        {"name": "status", "type": "enum", "values": ["active", "retired"]},
    ],
}
