"""Helpers to read a `Plan`: functions, their policies, ARNs."""

from __future__ import annotations

import json
from typing import Any

from local.mocks import DeclaredResource, Plan

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
