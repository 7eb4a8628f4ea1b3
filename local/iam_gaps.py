"""What a policy the program declares relies on that local mode's IAM cannot evaluate: listed at start-up.

`local.authz` judges a request against the keys of the contexts it builds, and only those: a caller's
(`authz.request_context`: `authz.CALLER_KEYS` and the principal's tags) and an AWS service's acting as
itself (`authz.service_request_context`: `authz.SERVICE_KEYS`). A condition on any other key is judged
as on an absent key (`IpAddress` on `aws:SourceIp` never matches, `NotIpAddress` and `...IfExists`
always do), whatever AWS would decide with the real value. And every request is judged within one
account, outside any organization: a principal or resource of another account is never judged by
AWS's cross-account logic, nor a request by an organization's SCPs and RCPs.

None of that may pass in silence: each such use in a policy the program declares (a role's trust
policy, a role policy, a bucket, queue, topic or secret policy, wherever a resource's input holds a
policy document) and in a function permission is listed under "not emulated" at start-up
(`local.deployer`), naming the resource, the input, the statement and the key or account, with the
AWS page it was checked against.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from local import authz
from local.mocks import Plan

GLOBAL_KEYS_PAGE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html"
SERVICE_KEYS_PAGE = "https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html"
SESSION_TAGS_PAGE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html"
STS_KEYS_PAGE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html"
ORGANIZATIONS_PAGE = "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html"
CROSS_ACCOUNT_PAGE = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html"
)

PERMISSION = "aws:lambda/permission:Permission"


@dataclass(frozen=True)
class _Absence:
    """Why some keys are never in a local request's context, and the AWS page that defines them."""

    why: str
    page: str
    keys: frozenset[str] = frozenset()
    """Lower case."""
    prefixes: tuple[str, ...] = ()
    """Lower case."""

    def explains(self, key: str) -> bool:
        name = key.lower()
        return name in self.keys or name.startswith(self.prefixes)


# The first that explains a key says why it is absent. These only explain: what is absent is whatever
# `supplied` does not find in authz's contexts, listed or not here.
_NETWORK = _Absence(
    "requests reach the emulator from 127.0.0.1, never from a client's network, a VPC or a VPC endpoint",
    GLOBAL_KEYS_PAGE,
    keys=frozenset(
        {
            "aws:sourceip",
            "aws:sourcevpc",
            "aws:sourcevpcarn",
            "aws:sourcevpce",
            "aws:vpcsourceip",
            "aws:vpceaccount",
            "aws:vpceorgid",
            "aws:vpceorgpaths",
            "aws:ec2instancesourcevpc",
            "aws:ec2instancesourceprivateipv4",
        }
    ),
)
_ORGANIZATION = _Absence(
    "there is no organization locally: no organization ID or path, and no SCP or RCP is evaluated",
    ORGANIZATIONS_PAGE,
    keys=frozenset(
        {
            "aws:principalorgid",
            "aws:principalorgpaths",
            "aws:resourceorgid",
            "aws:resourceorgpaths",
            "aws:sourceorgid",
            "aws:sourceorgpaths",
        }
    ),
)
_ABSENCES = (
    _NETWORK,
    _ORGANIZATION,
    _Absence(
        "the tags a request carries (session tags passed to sts:AssumeRole or sts:TagSession, transitive"
        " tags, tags on a resource it creates) are not put in its context",
        SESSION_TAGS_PAGE,
        keys=frozenset({"aws:tagkeys"}),
        prefixes=("aws:requesttag/",),
    ),
    _Absence(
        "sts:AssumeRole's request keys (session name, source identity, external ID, transitive tag keys)"
        " are not put in its context",
        STS_KEYS_PAGE,
        prefixes=("sts:",),
    ),
    _Absence("local mode does not put this global key in any request's context", GLOBAL_KEYS_PAGE, prefixes=("aws:",)),
)
_SERVICE_KEY = _Absence("local mode puts no service-specific key in any request's context", SERVICE_KEYS_PAGE)

_ACCOUNT_ID = re.compile(r"\d{12}")


def supplied(key: str) -> bool:
    """Whether a request context local mode judges can hold `key` (names compared case-insensitively)."""
    name = key.lower()
    return name in authz.CALLER_KEYS or name in authz.SERVICE_KEYS or name.startswith(authz.PRINCIPAL_TAG.lower())


def _absence(key: str) -> _Absence:
    return next((absence for absence in _ABSENCES if absence.explains(key)), _SERVICE_KEY)


def _account_of(value: Any) -> str | None:
    """The account an account ID or an ARN names (None: neither, or a wildcard in its account field)."""
    text = str(value)
    if _ACCOUNT_ID.fullmatch(text):
        return text
    parts = text.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and _ACCOUNT_ID.fullmatch(parts[4]):
        return parts[4]
    return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _named(place: int, statement: Mapping[str, Any]) -> str:
    """A statement as `authz.unsupported_forms` names it: by Sid, or by its place."""
    return f"statement {statement['Sid']!r}" if statement.get("Sid") else f"statement {place} (no Sid)"


def _keys_used(statement: Mapping[str, Any], variables: bool) -> list[str]:
    """The condition keys a statement's conditions test, then those its policy variables name; each once,
    as first written."""
    keys: list[str] = []
    texts = [str(p) for name in ("Resource", "NotResource") for p in _listed(statement.get(name, []))]
    conditions = statement.get("Condition")
    for entries in conditions.values() if isinstance(conditions, Mapping) else ():
        if isinstance(entries, Mapping):
            keys += [str(key) for key in entries]
            texts += [str(v) for values in entries.values() for v in _listed(values)]
    if variables:
        keys += [key for text in texts for key in authz.variable_keys(text)]
    once: dict[str, str] = {}
    for key in keys:
        once.setdefault(key.lower(), key)
    return list(once.values())


def _other_accounts(statement: Mapping[str, Any], account_id: str) -> list[str]:
    """Each principal (`AWS`) and resource the statement names in an account other than this one, as
    `principal <ARN or ID>` or `resource <ARN>`."""
    named: list[tuple[str, Any]] = []
    for element in ("Principal", "NotPrincipal"):
        principal = statement.get(element)
        if isinstance(principal, Mapping):
            named += [(element.lower(), p) for p in _listed(principal.get("AWS", []))]
    named += [("resource", r) for element in ("Resource", "NotResource") for r in _listed(statement.get(element, []))]
    return [f"{what} {value}" for what, value in named if _account_of(value) not in (None, account_id)]


def _cross_account(what: str, account_id: str) -> str:
    return (
        f"{what} is of another account than the stack's ({account_id}): local mode judges every request"
        f" within one account, never by AWS's cross-account logic ({CROSS_ACCOUNT_PAGE})"
    )


def policy_gaps(document: Mapping[str, Any], account_id: str) -> list[str]:
    """What of a policy document local mode cannot evaluate as AWS would, one line per statement and key
    or account, naming the statement and saying why, with the AWS page. Empty: nothing."""
    variables = document.get("Version") == "2012-10-17"  # as `authz` replaces them
    statements = document.get("Statement") or []
    gaps = []
    for place, statement in enumerate(_listed(statements), 1):
        if not isinstance(statement, Mapping):
            continue  # refused when written (`authz.unsupported_forms`)
        named = _named(place, statement)
        for key in _keys_used(statement, variables):
            if not supplied(key):
                absence = _absence(key)
                gaps.append(
                    f"{named} relies on {key}, which local mode never puts in a request's context:"
                    f" {absence.why}, so it is judged as absent, whatever AWS would decide ({absence.page})"
                )
        gaps += [f"{named}: {_cross_account(what, account_id)}" for what in _other_accounts(statement, account_id)]
    return gaps


def _document(value: Any) -> Mapping[str, Any] | None:
    """A policy document, as an input holds one (JSON text or an object with `Statement`); else None."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) and "Statement" in value else None


def _policy_inputs(value: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(input path, document) for every input named `…policy`/`…Policy` that holds a policy document, at
    any depth (`assumeRolePolicy`, `policy`, `inlinePolicies[0].policy`)."""
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for name, inner in items:
        here = f"{path}[{name}]" if isinstance(name, int) else f"{path}.{name}" if path else str(name)
        document = _document(inner) if str(name).lower().endswith("policy") else None
        if document is not None:
            yield here, document
        else:
            yield from _policy_inputs(inner, here)


def _permission_gaps(inputs: Mapping[str, Any], account_id: str) -> list[tuple[str, str]]:
    """A function permission names its principal and source as inputs, not as a policy document: another
    account there, or an organization (Lambda's `aws:PrincipalOrgID` condition), is not evaluated."""
    gaps = [
        (name, _cross_account(f"{name} {inputs[name]}", account_id))
        for name in ("principal", "sourceAccount", "sourceArn")
        if inputs.get(name) and _account_of(inputs[name]) not in (None, account_id)
    ]
    if inputs.get("principalOrgId"):
        why = f"the permission's aws:PrincipalOrgID condition is never met locally: {_ORGANIZATION.why}"
        gaps.append(("principalOrgId", f"{why} ({_ORGANIZATION.page})"))
    return gaps


def resource_gaps(type_: str, inputs: Mapping[str, Any], account_id: str) -> list[tuple[str, str]]:
    """(input, why) for what a declared resource's policies rely on that local mode cannot evaluate."""
    gaps = [(path, why) for path, document in _policy_inputs(inputs) for why in policy_gaps(document, account_id)]
    if type_ == PERMISSION:
        gaps += _permission_gaps(inputs, account_id)
    return gaps


def plan_gaps(plan: Plan, account_id: str) -> list[tuple[str, str, str]]:
    """(type, `<logical name>.<input>`, why) for every declared resource, as start-up lists them."""
    return [
        (resource.type, f"{resource.name}.{path}", why)
        for resource in plan.resources
        if resource.custom
        for path, why in resource_gaps(resource.type, resource.inputs, account_id)
    ]
