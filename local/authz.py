"""IAM as AWS enforces it, for every request a non-administrator sends to the emulator.

moto's own enforcement is wrong in ways the program would notice (REPORT §1: DynamoDB checked
against `*`, `NotResource` ignored, `.` a regex wildcard, only `StringEquals` conditions evaluated,
a crash on `Service` trust principals), so local mode leaves it off and decides here:

1. who is calling: the access key → a role session (moto STS, session token checked) or an IAM user;
2. what the request needs: (IAM action, resource ARN) pairs, per service, as AWS's service
   authorisation reference lists them (`request_access`); a request that cannot be mapped is denied;
3. whether the caller's policies and the resource's policy allow each pair (`authorize`).

The evaluator follows AWS's same-account logic: allowed iff an identity policy or the resource policy
allows (the resource policy naming this principal, not only its account), and no applicable policy
denies explicitly. Conditions follow IAM's condition operators page: every operator it lists (string,
numeric, date on ISO 8601 or epoch values, Bool, Binary, IP address, ARN, `...IfExists`, `Null`) with
its `ForAnyValue:`/`ForAllValues:` qualifiers, and policy variables in `Resource`/`NotResource` and
condition values (`${aws:username}`, `${aws:PrincipalTag/...}`, defaults, `${*}`/`${?}`/`${$}`). A
form IAM does not document (an unknown operator or qualifier, a malformed variable) is refused when
the policy is written (`unsupported_forms`), naming the statement, rather than silently allowed or
denied. Limits: a request's context holds only the keys `request_context` (a caller's) and
`service_request_context` (an AWS service's) put in it, `CALLER_KEYS` and `SERVICE_KEYS`: no
`aws:SourceIp` or other network key, no session or request tags, no `sts:` key, no organization, no
service-specific key; a condition on another key is judged as AWS judges an absent key. Requests are
judged within one account: no SCPs or RCPs, no cross-account access. Each use of these in a policy the
program declares is listed at start-up under "not emulated" (`local.iam_gaps`), never passed in silence.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from local import partiql

ADMIN = "admin"
"""What `principal_of` answers for the local administrator's key."""

# ---------------------------------------------------------------------------------------------
# 1. Policy evaluation


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NEUTRAL = "neutral"
    """No statement applies: an implicit deny unless another policy allows."""


# A policy value once its variables are replaced: (text, is the policy's own text) segments. Wildcards
# apply in the policy's own text only; a variable's value, and `${*}`, `${?}`, `${$}`, are literal.
Segments = tuple[tuple[str, bool], ...]


@functools.lru_cache(maxsize=8192)
def _glob(segments: Segments, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters (`/` and `:` included), `?` one; nothing else is special."""
    parts = (
        ".*" if c == "*" and own else "." if c == "?" and own else re.escape(c) for text, own in segments for c in text
    )
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(((pattern, True),), ignore_case).fullmatch(value) is not None


# `${key}` or `${key, 'default'}` (a quote doubled inside the default), spaces around either ignored; the
# key's name is case-insensitive (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html,
# "Specifying default values" and "Special characters").
_VARIABLE = re.compile(r"\$\{\s*([^\s,'{}]+)\s*(?:,\s*'((?:[^']|'')*)'\s*)?\}")
_SPECIAL = frozenset({"*", "?", "$"})


def _resolve(text: str, context: RequestContext) -> Segments | None:
    """A policy value with its variables replaced from the request context; None when one has no value
    (absent, or a multivalued key) and no default: "If AWS cannot resolve a variable this might cause the
    entire statement to be invalid" (reference_policies_variables.html, above): the statement does not
    match, whatever its effect."""
    if "${" not in text:
        return ((text, True),)
    segments: list[tuple[str, bool]] = []
    at = 0
    for variable in _VARIABLE.finditer(text):
        segments.append((text[at : variable.start()], True))
        name, default = variable.group(1), variable.group(2)
        values = None if name in _SPECIAL else context.get(name)
        if name in _SPECIAL:
            segments.append((name, False))
        elif values is not None and len(values) == 1:
            segments.append((values[0], False))
        elif default is not None:
            segments.append((default.replace("''", "'"), False))
        else:
            return None
        at = variable.end()
    segments.append((text[at:], True))
    return tuple(segments)


def variable_keys(text: str) -> list[str]:
    """The condition keys a policy value's variables name (`${aws:username}` → `aws:username`), the
    special characters `${*}`, `${?}`, `${$}` aside."""
    return [found.group(1) for found in _VARIABLE.finditer(text) if found.group(1) not in _SPECIAL]


def _joined(segments: Segments) -> str:
    return "".join(text for text, _ in segments)


def arn_match(pattern: str, arn: str) -> bool:
    """`ArnLike`/`ArnEquals`: each of the six `:`-separated parts matched on its own, with wildcards."""
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    return len(pattern_parts) == len(arn_parts) == 6 and all(map(glob_match, pattern_parts, arn_parts))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    """A policy value as IAM compares it (`true`, not Python's `True`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def matches(wanted: str, actual: str) -> bool:
        try:
            return compare(float(actual), float(wanted))
        except ValueError:
            return False

    return matches


def _instant(text: str) -> datetime | None:
    """A date condition value: ISO 8601 (a date, or a date and time with `Z` or an offset) or epoch
    seconds, as the condition operators page allows
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Date)."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _date(compare: Callable[[datetime, datetime], bool]) -> Callable[[str, str], bool]:
    def matches(wanted: str, actual: str) -> bool:
        wanted_at, actual_at = _instant(wanted), _instant(actual)
        return wanted_at is not None and actual_at is not None and compare(actual_at, wanted_at)

    return matches


def _in_network(wanted: str, actual: str) -> bool:
    """`IpAddress`: the context's address within the policy's CIDR block (or address), IPv4 or IPv6."""
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


# Operator → (does one policy value match one context value, is the operator negated).
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda wanted, actual: wanted == actual, False),
    "StringNotEquals": (lambda wanted, actual: wanted == actual, True),
    "StringEqualsIgnoreCase": (lambda wanted, actual: wanted.casefold() == actual.casefold(), False),
    "StringNotEqualsIgnoreCase": (lambda wanted, actual: wanted.casefold() == actual.casefold(), True),
    "StringLike": (glob_match, False),
    "StringNotLike": (glob_match, True),
    "ArnEquals": (arn_match, False),
    "ArnLike": (arn_match, False),
    "ArnNotEquals": (arn_match, True),
    "ArnNotLike": (arn_match, True),
    "Bool": (lambda wanted, actual: wanted.lower() == actual.lower(), False),
    "NumericEquals": (_numeric(lambda a, w: a == w), False),
    "NumericNotEquals": (_numeric(lambda a, w: a == w), True),
    "NumericLessThan": (_numeric(lambda a, w: a < w), False),
    "NumericLessThanEquals": (_numeric(lambda a, w: a <= w), False),
    "NumericGreaterThan": (_numeric(lambda a, w: a > w), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, w: a >= w), False),
    "DateEquals": (_date(lambda a, w: a == w), False),
    "DateNotEquals": (_date(lambda a, w: a == w), True),
    "DateLessThan": (_date(lambda a, w: a < w), False),
    "DateLessThanEquals": (_date(lambda a, w: a <= w), False),
    "DateGreaterThan": (_date(lambda a, w: a > w), False),
    "DateGreaterThanEquals": (_date(lambda a, w: a >= w), False),
    "BinaryEquals": (lambda wanted, actual: wanted == actual, False),  # base64 text on both sides
    "IpAddress": (_in_network, False),
    "NotIpAddress": (_in_network, True),
}
_QUALIFIERS = ("", "ForAnyValue", "ForAllValues")
_LIKE = frozenset({"StringLike", "StringNotLike"})
"""Operators whose policy values are patterns: a variable's value is matched literally within them."""


@dataclass(frozen=True)
class RequestContext:
    """The condition keys a request carries (names compared case-insensitively, as IAM does)."""

    values: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, **keys: str | Sequence[str] | None) -> RequestContext:
        """`RequestContext.of(**{"aws:PrincipalArn": arn})`; None leaves a key absent."""
        return cls(
            {
                name.lower(): (value,) if isinstance(value, str) else tuple(value)
                for name, value in keys.items()
                if value is not None
            }
        )

    def get(self, key: str) -> tuple[str, ...] | None:
        return self.values.get(key.lower())


def _condition_holds(operator: str, key: str, wanted: Any, context: RequestContext, variables: bool) -> bool | None:
    """One `operator: {key: values}` entry; None when the operator is not one IAM documents.

    A key absent from the request context
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
    "Important", and reference_policies_condition-single-vs-multi-valued-context-keys.html): `...IfExists`
    matches; `ForAnyValue:` does not; `ForAllValues:` does; otherwise a negated operator (`StringNotLike`,
    `NotIpAddress`, `DateNotEquals`…) matches and any other does not.
    """
    qualifier, _, base = operator.rpartition(":")
    if not _known_operator(qualifier, base):
        return None
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    resolved = [_resolve(_text(v), context) if variables else ((_text(v), True),) for v in _listed(wanted)]
    if any(segments is None for segments in resolved):
        return False
    patterns = [segments for segments in resolved if segments is not None]
    actual = context.get(key)
    if base == "Null":
        return all((actual is None) == (_joined(w) == "true") for w in patterns)
    compare, negated = _OPERATORS[base]
    if actual is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        return False if qualifier == "ForAnyValue" else negated

    def hit(pattern: Segments, value: str) -> bool:
        if base in _LIKE:
            return _glob(pattern, False).fullmatch(value) is not None
        return compare(_joined(pattern), value)

    def one(value: str) -> bool:
        matched = any(hit(pattern, value) for pattern in patterns)
        return not matched if negated else matched

    if qualifier == "ForAllValues":
        return all(one(value) for value in actual)
    if qualifier == "ForAnyValue" or not negated:
        return any(one(value) for value in actual)
    return all(one(value) for value in actual)  # a negated single-valued operator: matches none


def _known_operator(qualifier: str, base: str) -> bool:
    """An operator the condition operators page lists (`Null` takes neither a qualifier nor `IfExists`)."""
    if base == "Null":
        return qualifier == ""
    return qualifier in _QUALIFIERS and base.removesuffix("IfExists") in _OPERATORS


def _conditions_hold(statement: Mapping[str, Any], context: RequestContext, variables: bool) -> bool:
    """Every entry must hold; an operator IAM does not document fails closed (an Allow does not apply,
    a Deny does). `unsupported_forms` refuses such a policy when it is written, so none is evaluated."""
    unknown_means = statement.get("Effect") == "Deny"
    for operator, entries in (statement.get("Condition") or {}).items():
        for key, wanted in entries.items():
            holds = _condition_holds(operator, key, wanted, context, variables)
            if not (unknown_means if holds is None else holds):
                return False
    return True


def _element_matches(statement: Mapping[str, Any], name: str, value: str, ignore_case: bool) -> bool:
    """`Action`/`NotAction`; a statement with neither applies to all."""
    if name in statement:
        return any(glob_match(p, value, ignore_case=ignore_case) for p in _listed(statement[name]))
    if f"Not{name}" in statement:
        return not any(glob_match(p, value, ignore_case=ignore_case) for p in _listed(statement[f"Not{name}"]))
    return True


def _resource_matches(statement: Mapping[str, Any], resource: str, context: RequestContext, variables: bool) -> bool:
    """`Resource`/`NotResource`, policy variables replaced; a statement with neither applies to all. A
    variable without a value matches no ARN in `Resource`, and makes a `NotResource` statement not apply."""
    for name, negated in (("Resource", False), ("NotResource", True)):
        if name not in statement:
            continue
        matched = False
        for pattern in _listed(statement[name]):
            segments = _resolve(pattern, context) if variables else ((pattern, True),)
            if segments is None:
                if negated:
                    return False
                continue
            matched = matched or _glob(segments, False).fullmatch(resource) is not None
        return matched != negated
    return True


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _listed(document.get("Statement") or [])


def _variables(document: Mapping[str, Any] | None) -> bool:
    """Policy variables are replaced in a policy of version 2012-10-17 only; in an older one `${…}` is
    literal text (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html)."""
    return (document or {}).get("Version") == "2012-10-17"


def _applies(
    statement: Mapping[str, Any], action: str, resource: str, context: RequestContext, variables: bool
) -> bool:
    return (
        _element_matches(statement, "Action", action, ignore_case=True)
        and _resource_matches(statement, resource, context, variables)
        and _conditions_hold(statement, context, variables)
    )


def evaluate(documents: Iterable[Mapping[str, Any]], action: str, resource: str, context: RequestContext) -> Decision:
    """Identity-based policies: an explicit Deny wins, then any Allow, else neutral."""
    decision = Decision.NEUTRAL
    for document in documents:
        variables = _variables(document)
        for statement in _statements(document):
            if _applies(statement, action, resource, context, variables):
                if statement.get("Effect") == "Deny":
                    return Decision.DENY
                if statement.get("Effect") == "Allow":
                    decision = Decision.ALLOW
    return decision


@dataclass(frozen=True)
class Identity:
    """An authenticated caller of the emulator."""

    arn: str
    """`aws:PrincipalArn`: the role's ARN for a role session, the user's ARN for a user."""
    caller_arn: str
    """The ARN AWS reports (`GetCallerIdentity`, denial messages): the assumed-role session ARN for a session."""
    account_id: str
    kind: str
    """`AssumedRole` or `User` (`aws:PrincipalType`)."""
    unique_id: str
    """`AROA…:session` or `AIDA…`: S3 events' `userIdentity.principalId` after `AWS:`."""
    secret_access_key: str
    policies: tuple[Mapping[str, Any], ...]
    """Its identity-based policies: inline and attached (and its groups', for a user)."""
    limits: tuple[Mapping[str, Any], ...] = ()
    """A session policy and a permissions boundary: each must also allow."""
    tags: tuple[tuple[str, str], ...] = ()
    """The user's or role's tags: `aws:PrincipalTag/<key>` in its requests' context."""


def _principal_match(statement: Mapping[str, Any], identity: Identity) -> str | None:
    """How a resource policy statement names the caller: `"principal"` itself, its `"account"`, or None.

    `{"Service": …}` and `{"Federated": …}` never name a role session or user.
    """
    if "Principal" in statement:
        named, negate = statement["Principal"], False
    elif "NotPrincipal" in statement:
        named, negate = statement["NotPrincipal"], True
    else:
        return None
    match: str | None = None
    values = ["*"] if named == "*" else _listed(named.get("AWS", [])) if isinstance(named, dict) else []
    for value in values:
        if value in ("*", identity.arn, identity.caller_arn):
            match = "principal"
            break
        if value in (identity.account_id, f"arn:aws:iam::{identity.account_id}:root"):
            match = "account"
    if negate:
        return None if match == "principal" else "principal"
    return match


def evaluate_resource_policy(
    document: Mapping[str, Any] | None, identity: Identity, action: str, resource: str, context: RequestContext
) -> Decision:
    """A bucket, queue or trust policy, same account: a Deny naming the caller or its account applies;
    an Allow grants only when it names the caller (one naming the account defers to identity policies).
    """
    decision = Decision.NEUTRAL
    for statement in _statements(document or {}):
        named = _principal_match(statement, identity)
        if named is None or not _applies(statement, action, resource, context, _variables(document)):
            continue
        if statement.get("Effect") == "Deny":
            return Decision.DENY
        if statement.get("Effect") == "Allow" and named == "principal":
            decision = Decision.ALLOW
    return decision


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""
    """Why not, in AWS's words: `because no identity-based policy allows the … action`, etc."""


# The condition keys of every request a role session or IAM user sends, each with how its value is found
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html): the one
# declaration `request_context` builds a caller's context from, and `CALLER_KEYS` names. Besides these,
# a caller's context holds `aws:PrincipalTag/<key>`, one per tag of the user or role.
_CALLER_CONTEXT: Mapping[str, Callable[[Identity, str, datetime], str | None]] = {
    # An IAM user's name; absent for a role session.
    "aws:username": lambda identity, region, now: identity.arn.rsplit("/", 1)[-1] if identity.kind == "User" else None,
    "aws:SecureTransport": lambda identity, region, now: "true",
    "aws:PrincipalIsAWSService": lambda identity, region, now: "false",
    "aws:PrincipalArn": lambda identity, region, now: identity.arn,
    "aws:PrincipalAccount": lambda identity, region, now: identity.account_id,
    "aws:PrincipalType": lambda identity, region, now: identity.kind,
    "aws:userid": lambda identity, region, now: identity.unique_id,
    "aws:RequestedRegion": lambda identity, region, now: region,
    "aws:CurrentTime": lambda identity, region, now: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "aws:EpochTime": lambda identity, region, now: str(int(now.timestamp())),
}
PRINCIPAL_TAG = "aws:PrincipalTag/"
CALLER_KEYS = frozenset(key.lower() for key in _CALLER_CONTEXT)
"""The keys (lower case) of a caller's request context, `aws:PrincipalTag/<key>` aside."""


def request_context(identity: Identity, region: str) -> RequestContext:
    """What AWS puts in every request's context, for this caller (`_CALLER_CONTEXT`).

    `aws:SecureTransport` is `true`: the loopback endpoint stands for AWS's TLS endpoints, which every
    SDK call from a function uses; the program's `DenyInsecureTransport` is meant for plaintext
    access, which does not exist here. `aws:SourceAccount`/`aws:SourceArn` are absent: only service
    principals send them (`service_request_context`). `aws:PrincipalIsAWSService` is in every signed
    request, and false for a role session or a user, the only callers here
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalisawsservice).
    """
    now = datetime.now(UTC)
    return RequestContext.of(
        **{f"{PRINCIPAL_TAG}{key}": value for key, value in identity.tags},
        **{key: value(identity, region, now) for key, value in _CALLER_CONTEXT.items()},
    )


def service_request_context(
    service: str, source_arn: str | None = None, source_account: str | None = None
) -> RequestContext:
    """What AWS puts in the context of a request an AWS service sends as its own principal, as local mode
    judges one (Lambda assuming an execution role, S3 invoking a function): the service's name, and the
    resource and account it acts for
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalservicename,
    #condition-keys-sourcearn, #condition-keys-sourceaccount)."""
    return RequestContext.of(
        **{"aws:PrincipalServiceName": service, "aws:SourceArn": source_arn, "aws:SourceAccount": source_account}
    )


SERVICE_KEYS = frozenset(service_request_context("service", "arn", "account").values)
"""The keys (lower case) `service_request_context` can supply: it is called with every one given."""


def authorize(
    identity: Identity,
    action: str,
    resource: str,
    resource_policy: Mapping[str, Any] | None,
    context: RequestContext,
    *,
    trust_policy: bool = False,
) -> Verdict:
    """Same-account evaluation of one (action, resource).

    `trust_policy`: the resource policy is a role's trust policy (sts:AssumeRole), which must itself
    allow the caller, or allow its account while an identity policy allows too.
    """
    by_identity = evaluate(identity.policies, action, resource, context)  # one decision: deny, allow or neither
    if by_identity is Decision.DENY:
        return Verdict(False, "with an explicit deny in an identity-based policy")
    on_resource = evaluate_resource_policy(resource_policy, identity, action, resource, context)
    if on_resource is Decision.DENY:
        return Verdict(False, "with an explicit deny in a resource-based policy")
    for limit in identity.limits:
        if evaluate([limit], action, resource, context) is not Decision.ALLOW:
            return Verdict(False, "because no session policy or permissions boundary allows the " + action + " action")
    if trust_policy:
        trusts_account = any(
            statement.get("Effect") == "Allow"
            and _principal_match(statement, identity) == "account"
            and _applies(statement, action, resource, context, _variables(resource_policy))
            for statement in _statements(resource_policy or {})
        )
        if on_resource is Decision.ALLOW or (trusts_account and by_identity is Decision.ALLOW):
            return Verdict(True)
        return Verdict(False, "because the role's trust policy does not allow it")
    if by_identity is Decision.ALLOW or on_resource is Decision.ALLOW:
        return Verdict(True)
    return Verdict(False, f"because no identity-based policy allows the {action} action")


def denial_message(identity: Identity, action: str, resource: str, verdict: Verdict) -> str:
    """AWS's wording; it names the principal, action and resource, never request contents."""
    return (
        f"User: {identity.caller_arn} is not authorized to perform: {action} on resource: {resource} {verdict.reason}"
    )


def resource_policy_key(resource_arn: str) -> str:
    """The ARN a resource-based policy is kept under: a bucket for its objects, a table for its
    indexes, a function without its qualifier, an API for its methods; otherwise the resource itself.
    """
    parts = resource_arn.split(":", 5)
    if len(parts) < 6:
        return resource_arn
    service, rest = parts[2], parts[5]
    if service == "s3":
        return ":".join([*parts[:5], rest.split("/", 1)[0]])
    if service == "dynamodb":
        return ":".join([*parts[:5], "/".join(rest.split("/")[:2])])
    if service == "lambda":
        return ":".join([*parts[:5], ":".join(rest.split(":")[:2])])
    if service == "execute-api":
        return ":".join([*parts[:5], rest.split("/", 1)[0]])
    return resource_arn


def unsupported_forms(document: Mapping[str, Any]) -> list[str]:
    """What of `document` this evaluator cannot judge as IAM documents it, one line per statement
    naming it (its Sid, or its place): an operator or qualifier the condition operators page does not
    list, or a `${` that is not a policy variable. Empty: every statement is evaluated as on AWS."""
    problems = []
    for place, statement in enumerate(_statements(document), 1):
        if not isinstance(statement, Mapping):
            problems.append(f"statement {place} is not a JSON object")
            continue
        named = f"statement {statement['Sid']!r}" if statement.get("Sid") else f"statement {place} (no Sid)"
        texts = [str(p) for name in ("Resource", "NotResource") for p in _listed(statement.get(name, []))]
        conditions = statement.get("Condition") or {}
        if not isinstance(conditions, Mapping):
            problems.append(f"{named}: Condition is not a JSON object")
            continue
        for operator, entries in conditions.items():
            qualifier, _, base = str(operator).rpartition(":")
            if not _known_operator(qualifier, base):
                problems.append(f"{named}: condition operator {operator} is not one IAM documents")
            if isinstance(entries, Mapping):
                texts += [_text(v) for values in entries.values() for v in _listed(values)]
        if _variables(document) and any("${" in _VARIABLE.sub("", text) for text in texts):
            problems.append(f"{named}: a '${{' that is not a policy variable (${{key}} or ${{key, 'default'}})")
    return problems


# ---------------------------------------------------------------------------------------------
# 2. Who is calling (moto's IAM and STS state; call inside the emulator's lock)


class UnknownCredentials(Exception):
    """The access key is not one the emulator issued, the session token is wrong, or it expired."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        """`InvalidClientTokenId` or `ExpiredToken`."""
        self.message = message


INVALID_TOKEN = "The security token included in the request is invalid."


def _parsed(document: Any) -> Mapping[str, Any]:
    return _parse_json(document) if isinstance(document, str) else document


@functools.lru_cache(maxsize=1024)
def _parse_json(text: str) -> Mapping[str, Any]:
    return json.loads(text)


def _managed_documents(policies: Iterable[Any]) -> list[Mapping[str, Any]]:
    documents = []
    for policy in policies:
        version = next((v for v in policy.versions if v.is_default), policy.versions[-1])
        documents.append(_parsed(version.document))
    return documents


def _boundary(iam: Any, boundary_arn: str | None) -> list[Mapping[str, Any]]:
    if not boundary_arn:
        return []
    policy = iam.managed_policies.get(boundary_arn)
    # A boundary the emulator does not hold allows nothing: on AWS one that does not exist cannot be
    # set, and AWS managed policies are not loaded locally (use a customer managed one).
    return _managed_documents([policy]) if policy is not None else [{"Statement": []}]


def resolve_identity(account_id: str, partition: str, access_key_id: str, session_token: str | None) -> Identity:
    """The role session or IAM user behind a key moto issued; raises UnknownCredentials otherwise."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    iam = iam_backends[account_id][partition]
    key = iam.access_keys.get(access_key_id)
    if key is None or key.status != "Active":
        raise UnknownCredentials("InvalidClientTokenId", INVALID_TOKEN)
    if key.role_arn is not None:
        session = sts_backends[account_id][partition].get_assumed_role_from_access_key(access_key_id)
        if session is None or session.session_token != session_token:
            raise UnknownCredentials("InvalidClientTokenId", INVALID_TOKEN)
        if session.expiration <= datetime.now(UTC).replace(tzinfo=None):
            raise UnknownCredentials("ExpiredToken", "The security token included in the request is expired")
        try:
            role = iam.get_role_by_arn(session.role_arn)
        except Exception:  # moto lets any ARN be assumed; a role that does not exist has no policies
            role = None
        policies = []
        limits = [_parsed(session.policy)] if session.policy else []
        if role is not None:
            policies = [_parsed(d) for d in role.policies.values()]
            policies += _managed_documents(role.managed_policies.values())
            limits += _boundary(iam, role.permissions_boundary_arn)
        return Identity(
            arn=session.role_arn,
            caller_arn=session.arn,
            account_id=account_id,
            kind="AssumedRole",
            unique_id=f"{role.id if role else 'AROA'}:{session.session_name}",
            secret_access_key=session.secret_access_key,
            policies=tuple(policies),
            limits=tuple(limits),
            tags=tuple((tag["Key"], tag["Value"]) for tag in (role.tags if role is not None else [])),
        )
    if session_token:
        raise UnknownCredentials("InvalidClientTokenId", INVALID_TOKEN)
    user = iam.get_user(key.user_name)
    policies = [_parsed(d) for d in user.policies.values()]
    policies += _managed_documents(user.managed_policies.values())
    for group in iam.get_groups_for_user(user.name):
        policies += [_parsed(d) for d in group.policies.values()]
        policies += _managed_documents(group.managed_policies.values())
    return Identity(
        arn=user.arn,
        caller_arn=user.arn,
        account_id=account_id,
        kind="User",
        unique_id=user.id,
        secret_access_key=key.secret_access_key,
        policies=tuple(policies),
        limits=tuple(_boundary(iam, getattr(user, "permissions_boundary", None))),
        tags=tuple((tag["Key"], tag["Value"]) for tag in iam.list_user_tags(user.name)),
    )


def trust_policy_of(account_id: str, partition: str, role_arn: str) -> Mapping[str, Any] | None:
    """A role's trust policy, for sts:AssumeRole by a non-administrator (None: no such role)."""
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[account_id][partition].get_role_by_arn(role_arn)
    except Exception:
        return None
    return _parsed(role.assume_role_policy_document)


# ---------------------------------------------------------------------------------------------
# 3. What a request needs


@dataclass(frozen=True)
class Access:
    """One permission a request needs: an IAM action on a resource ARN."""

    action: str
    resource: str


@dataclass(frozen=True)
class Call:
    """One HTTP request to the emulator, as the authoriser reads it."""

    service: str
    """The signing name from the credential scope (`dynamodb`, `sqs`, `s3`, …)."""
    region: str
    account_id: str
    method: str
    path: str
    """As sent (percent-encoded)."""
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes
    host: str

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class RequestAccess:
    """What one request asks for."""

    service: str
    operation: str
    """The API operation (`PutItem`, `SendMessageBatch`, `HeadObject`; for S3 bucket settings the IAM
    action's name), `""` when unknown."""
    accesses: tuple[Access, ...] = ()
    mapped: bool = True
    """False: the request could not be mapped to IAM actions, and a non-administrator is denied."""
    body: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The parsed parameters (JSON or form), for callers that look at one (SQS WaitTimeSeconds)."""
    statements: tuple[Access, ...] = ()
    """A PartiQL batch's accesses, one per statement in order, each checked on its own while the batch
    runs (`local.partiql`): a denied statement fails alone, the request does not."""

    @property
    def names(self) -> frozenset[str]:
        """The operation and its IAM action names without service prefix (what a Fault may name)."""
        actions = {a.action.split(":", 1)[1] for a in (*self.accesses, *self.statements)}
        return frozenset({self.operation, *actions} - {""})


def _unmapped(service: str, operation: str) -> RequestAccess:
    return RequestAccess(service, operation, (), mapped=False)


def _json_body(call: Call) -> dict[str, Any]:
    try:
        body = json.loads(call.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _form(call: Call) -> dict[str, str]:
    """Query-protocol parameters: the query string and a form body."""
    params = {k: v[0] for k, v in call.query.items() if v}
    if call.body and "x-www-form-urlencoded" in call.headers.get("content-type", "x-www-form-urlencoded"):
        params.update({k: v[0] for k, v in parse_qs(call.body.decode("utf-8", "replace")).items()})
    return params


def _target_operation(call: Call) -> str:
    """`X-Amz-Target: DynamoDB_20120810.PutItem` → `PutItem`; smithy RPC v2 paths likewise."""
    target = call.headers.get("x-amz-target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    match = re.fullmatch(r"/service/[^/]+/operation/([^/]+)", call.path)
    return match.group(1) if match else ""


_DYNAMODB_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_DYNAMODB_ACCOUNT_WIDE = {"ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups", "ListGlobalTables"}


def _dynamodb(call: Call) -> RequestAccess:
    """Every transaction item and every batch table is its own check (table or index ARN)."""
    op, body = _target_operation(call), _json_body(call)

    def table(name: str, index: str | None = None) -> str:
        arn = f"arn:aws:dynamodb:{call.region}:{call.account_id}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if op in ("TransactWriteItems", "TransactGetItems"):
        accesses = []
        for item in body.get("TransactItems") or []:
            for kind, spec in item.items():
                if kind not in _DYNAMODB_ITEM_ACTIONS or "TableName" not in spec:
                    return _unmapped("dynamodb", op)
                accesses.append(Access(f"dynamodb:{_DYNAMODB_ITEM_ACTIONS[kind]}", table(spec["TableName"])))
        return RequestAccess("dynamodb", op, tuple(accesses), body=body)
    if op in ("BatchExecuteStatement", "ExecuteStatement"):
        # Each statement needs dynamodb:PartiQL<Verb> on its table or index
        # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-iam.html). A batch's
        # statements are checked one by one as they run: AccessDenied is one of a statement's own
        # error codes (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchStatementError.html).
        requests = (body.get("Statements") or []) if op == "BatchExecuteStatement" else [body]
        statements = []
        for request in requests:
            found = partiql.target(request.get("Statement", "")) if isinstance(request, dict) else None
            if found is None:
                return _unmapped("dynamodb", op)
            action, name, index = found
            statements.append(Access(action, table(name, index)))
        if op == "ExecuteStatement":
            return RequestAccess("dynamodb", op, tuple(statements), body=body)
        return RequestAccess("dynamodb", op, (), body=body, statements=tuple(statements))
    if op in ("BatchWriteItem", "BatchGetItem"):
        tables = body.get("RequestItems") or {}
        return RequestAccess("dynamodb", op, tuple(Access(f"dynamodb:{op}", table(t)) for t in tables), body=body)
    if "TableName" in body:
        return RequestAccess(
            "dynamodb", op, (Access(f"dynamodb:{op}", table(body["TableName"], body.get("IndexName"))),), body=body
        )
    if "ResourceArn" in body:
        return RequestAccess("dynamodb", op, (Access(f"dynamodb:{op}", body["ResourceArn"]),), body=body)
    if op in _DYNAMODB_ACCOUNT_WIDE:
        return RequestAccess("dynamodb", op, (Access(f"dynamodb:{op}", "*"),), body=body)
    return _unmapped("dynamodb", op)


# IAM has no actions of their own for SQS batches: each entry is the single-message action.
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(call: Call) -> RequestAccess:
    """JSON protocol (`X-Amz-Target: AmazonSQS.X`, QueueUrl in the body) or query protocol (`Action=`)."""
    if call.headers.get("x-amz-target"):
        op, params = _target_operation(call), _json_body(call)
    else:
        params = _form(call)
        op = params.get("Action", "")
    if not op:
        return _unmapped("sqs", op)
    url_path = urlparse(params["QueueUrl"]).path if params.get("QueueUrl") else unquote(call.path)
    segments = [s for s in url_path.split("/") if s]
    if len(segments) >= 2:
        account, name = segments[-2], segments[-1]
    elif params.get("QueueName"):
        account, name = params.get("QueueOwnerAWSAccountId") or call.account_id, params["QueueName"]
    elif op == "ListQueues":
        return RequestAccess("sqs", op, (Access("sqs:ListQueues", "*"),), body=params)
    elif params.get("SourceArn"):  # message move tasks name their queue (a DLQ) by ARN
        return RequestAccess("sqs", op, (Access(f"sqs:{op}", params["SourceArn"]),), body=params)
    else:
        return _unmapped("sqs", op)
    resource = f"arn:aws:sqs:{call.region}:{account}:{name}"
    return RequestAccess("sqs", op, (Access(f"sqs:{_SQS_BATCH_ACTIONS.get(op, op)}", resource),), body=params)


# Bucket sub-resources → the IAM action for GET, PUT and DELETE (None: not an operation).
_S3_BUCKET_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "location": ("GetBucketLocation", None, None),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
    "replication": ("GetReplicationConfiguration", "PutReplicationConfiguration", "PutReplicationConfiguration"),
    "accelerate": ("GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
    "uploads": ("ListBucketMultipartUploads", None, None),
    "versions": ("ListBucketVersions", None, None),
}
# Object sub-resources → (GET, PUT, DELETE) action stems; `Version` is inserted for a versionId.
_S3_OBJECT_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "tagging": ("GetObject{v}Tagging", "PutObject{v}Tagging", "DeleteObject{v}Tagging"),
    "acl": ("GetObject{v}Acl", "PutObject{v}Acl", None),
    "attributes": ("GetObject{v}Attributes", None, None),
    "retention": ("GetObjectRetention", "PutObjectRetention", None),
    "legal-hold": ("GetObjectLegalHold", "PutObjectLegalHold", None),
}
# Query parameters that select the response rather than an operation.
_S3_LIST_PARAMETERS = {
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
    "marker",
    "optional-object-attributes",
}


def _s3_bucket_and_key(call: Call) -> tuple[str, str]:
    """Path style (an IP or `localhost` host, as moto routes it) or virtual-host style."""
    from moto.s3.utils import bucket_name_from_url

    path = unquote(call.path)
    host = call.host.split(":")[0]
    path_style = host in ("", "localhost") or "." not in host or re.fullmatch(r"[\d.]+", host) is not None
    bucket = None if path_style else bucket_name_from_url(f"http://{call.host}")
    if bucket:
        return bucket, path.lstrip("/")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _s3_sub_resource(call: Call, table: Mapping[str, tuple[str | None, str | None, str | None]]) -> str | None:
    return next((name for name in table if name in call.query), None)


def _s3(call: Call) -> RequestAccess:
    bucket, key = _s3_bucket_and_key(call)
    method = "GET" if call.method == "HEAD" else call.method
    column = {"GET": 0, "PUT": 1, "DELETE": 2}.get(method)
    if not bucket:
        if method == "GET":
            return RequestAccess("s3", "ListAllMyBuckets", (Access("s3:ListAllMyBuckets", "*"),))
        return _unmapped("s3", f"{call.method} /")
    if key:
        return _s3_object(call, bucket, key, method, column)
    arn = f"arn:aws:s3:::{bucket}"
    sub = _s3_sub_resource(call, _S3_BUCKET_SUBRESOURCES)
    if method == "POST" and "delete" in call.query:
        return _s3_delete_objects(call, bucket)
    if sub is None and not set(call.query) - _S3_LIST_PARAMETERS:
        listing = "ListObjectsV2" if call.param("list-type") == "2" else "ListObjects"
        operation = {"GET": listing, "HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}
        action = {"GET": "ListBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method)
        name = operation.get(call.method, "")
    else:
        action = _S3_BUCKET_SUBRESOURCES[sub][column] if sub is not None and column is not None else None
        name = action or ""
    if action is None:
        return _unmapped("s3", f"{call.method} bucket?{'&'.join(sorted(call.query))}")
    return RequestAccess("s3", name, (Access(f"s3:{action}", arn),))


def _s3_object(call: Call, bucket: str, key: str, method: str, column: int | None) -> RequestAccess:
    """Object operations; multipart steps are PutObject, a copy also needs GetObject on its source."""
    arn = f"arn:aws:s3:::{bucket}/{key}"
    version = "Version" if "versionId" in call.query else ""
    sub = _s3_sub_resource(call, _S3_OBJECT_SUBRESOURCES)
    if sub is not None:
        stem = _S3_OBJECT_SUBRESOURCES[sub][column] if column is not None else None
        if stem is None:
            return _unmapped("s3", f"{call.method} object?{sub}")
        action = stem.format(v=version)
        return RequestAccess("s3", action, (Access(f"s3:{action}", arn),))
    uploading = "uploadId" in call.query
    if method == "GET":
        action = "ListMultipartUploadParts" if uploading else f"GetObject{version}"
        operation = "ListParts" if uploading else "HeadObject" if call.method == "HEAD" else "GetObject"
        return RequestAccess("s3", operation, (Access(f"s3:{action}", arn),))
    if method == "DELETE":
        action = "AbortMultipartUpload" if uploading else f"DeleteObject{version}"
        return RequestAccess(
            "s3", "AbortMultipartUpload" if uploading else "DeleteObject", (Access(f"s3:{action}", arn),)
        )
    if method == "POST" and "restore" in call.query:
        return RequestAccess("s3", "RestoreObject", (Access("s3:RestoreObject", arn),))
    if method in ("PUT", "POST"):
        accesses = [Access("s3:PutObject", arn)]
        source = call.headers.get("x-amz-copy-source")
        if source:
            source_path, _, source_query = unquote(source).lstrip("/").partition("?")
            source_version = "Version" if "versionId=" in source_query else ""
            accesses.append(Access(f"s3:GetObject{source_version}", f"arn:aws:s3:::{source_path}"))
        return RequestAccess("s3", _s3_write_operation(call, bool(source)), tuple(accesses))
    return _unmapped("s3", f"{call.method} object")


def _s3_write_operation(call: Call, copy: bool) -> str:
    """The API operation of an object write (all of them need s3:PutObject)."""
    if call.method == "POST":
        if "uploads" in call.query:
            return "CreateMultipartUpload"
        return "CompleteMultipartUpload" if "uploadId" in call.query else "PostObject"
    if "uploadId" in call.query:
        return "UploadPartCopy" if copy else "UploadPart"
    return "CopyObject" if copy else "PutObject"


def _s3_delete_objects(call: Call, bucket: str) -> RequestAccess:
    """DeleteObjects is checked as DeleteObject (or DeleteObjectVersion) on every key it names."""
    try:
        root = ElementTree.fromstring(call.body)
    except ElementTree.ParseError:
        return _unmapped("s3", "DeleteObjects")
    accesses = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Object":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
        action = "s3:DeleteObjectVersion" if fields.get("VersionId") else "s3:DeleteObject"
        accesses.append(Access(action, f"arn:aws:s3:::{bucket}/{fields.get('Key', '')}"))
    return RequestAccess("s3", "DeleteObjects", tuple(accesses))


_LAMBDA_ROUTES: tuple[tuple[str, str, str, str], ...] = (
    # (method, path pattern, operation, IAM action); `fn` is the function name, ARN or partial ARN.
    ("POST", r"/2015-03-31/functions/(?P<fn>[^/]+)/invocations", "Invoke", "InvokeFunction"),
    ("GET", r"/2015-03-31/functions/(?P<fn>[^/]+)", "GetFunction", "GetFunction"),
    (
        "GET",
        r"/2015-03-31/functions/(?P<fn>[^/]+)/configuration",
        "GetFunctionConfiguration",
        "GetFunctionConfiguration",
    ),
    ("GET", r"/2015-03-31/functions", "ListFunctions", "ListFunctions"),
)


def function_arn(name: str, region: str, account_id: str, qualifier: str | None = None) -> str:
    """A function's ARN from a name, partial ARN (`acct:function:name`) or ARN, keeping a qualifier."""
    if name.startswith("arn:"):
        arn = name
    elif ":function:" in name:
        arn = f"arn:aws:lambda:{region}:{name}"
    else:
        arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    if qualifier and arn.count(":") == 6:
        arn = f"{arn}:{qualifier}"
    return arn


def _lambda(call: Call) -> RequestAccess:
    path = call.path.rstrip("/") or "/"
    for method, pattern, operation, action in _LAMBDA_ROUTES:
        match = re.fullmatch(pattern, path)
        if match and call.method == method:
            fn = match.groupdict().get("fn")
            arn = function_arn(unquote(fn), call.region, call.account_id, call.param("Qualifier")) if fn else "*"
            return RequestAccess("lambda", operation, (Access(f"lambda:{action}", arn),))
    return _unmapped("lambda", f"{call.method} {path}")


def _sts(call: Call) -> RequestAccess:
    """GetCallerIdentity needs no permission (AWS allows it even under an explicit Deny)."""
    params = _form(call)
    op = params.get("Action", "")
    if op == "GetCallerIdentity":
        return RequestAccess("sts", op, (), body=params)
    if op == "AssumeRole" and params.get("RoleArn"):
        return RequestAccess("sts", op, (Access("sts:AssumeRole", params["RoleArn"]),), body=params)
    return _unmapped("sts", op)


def _logs(call: Call) -> RequestAccess:
    """Log writes are checked on the stream's ARN (what `log-group:NAME:log-stream:*` grants)."""
    op, body = _target_operation(call), _json_body(call)
    group, stream = body.get("logGroupName"), body.get("logStreamName")
    if not group or op not in ("CreateLogStream", "PutLogEvents", "DescribeLogStreams", "CreateLogGroup"):
        return _unmapped("logs", op)
    arn = f"arn:aws:logs:{call.region}:{call.account_id}:log-group:{group}"
    resource = f"{arn}:log-stream:{stream}" if stream else arn
    return RequestAccess("logs", op, (Access(f"logs:{op}", resource),), body=body)


# IAM request parameters that name the resource an action is checked on, and its ARN's form
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
# The first one a request carries wins: attaching a policy is checked on the role, not the policy.
_IAM_RESOURCES = (
    ("InstanceProfileName", "arn:aws:iam::{account}:instance-profile/{}"),
    ("RoleName", "arn:aws:iam::{account}:role/{}"),
    ("UserName", "arn:aws:iam::{account}:user/{}"),
    ("GroupName", "arn:aws:iam::{account}:group/{}"),
    ("PolicyArn", "{}"),
    ("PolicyName", "arn:aws:iam::{account}:policy/{}"),  # CreatePolicy (an inline policy names its owner first)
)


def _iam(call: Call) -> RequestAccess:
    """An IAM action on the role, user, group, instance profile or policy the request names
    (without its path: the program's roles have none); account-wide `List*` on `*`; else unmapped."""
    params = _form(call)
    op = params.get("Action", "")
    resource = next(
        (form.format(params[name], account=call.account_id) for name, form in _IAM_RESOURCES if params.get(name)),
        "*" if op.startswith("List") else None,
    )
    if not op or resource is None:
        return _unmapped("iam", op)
    return RequestAccess("iam", op, (Access(f"iam:{op}", resource),), body=params)


def _cloudwatch(call: Call) -> RequestAccess:
    """PutMetricData has no resource-level permissions: `*` (a namespace condition may narrow it)."""
    op = _target_operation(call) or _form(call).get("Action", "")
    if op == "PutMetricData":
        return RequestAccess("cloudwatch", op, (Access("cloudwatch:PutMetricData", "*"),))
    return _unmapped("cloudwatch", op)


# Secrets Manager (JSON protocol, `X-Amz-Target: secretsmanager.<Operation>`): each action on the secret
# the request names, by its full ARN; account-wide ones on `*`
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html).
_SECRETSMANAGER_ACCOUNT_WIDE = {"ListSecrets", "GetRandomPassword"}


def _secret_arn(call: Call, secret_id: str) -> str:
    """The ARN IAM checks a request naming `secret_id` against: the secret's full ARN, whether the
    request names it by ARN, by partial ARN (without the six characters Secrets Manager appends) or by
    name. A secret that does not exist is checked as the ARN its name would start (the request is
    refused unless a policy allows that, and fails in moto if it is allowed)."""
    from moto.secretsmanager.models import secretsmanager_backends

    # A snapshot of moto's secrets (taken in one step under the GIL): its store scans itself on
    # every lookup, which another request could change under it.
    secrets = list(dict.values(secretsmanager_backends[call.account_id][call.region].secrets))
    for secret in secrets:
        if secret_id in (secret.arn, secret.name, secret.arn.rsplit("-", 1)[0]):
            return secret.arn
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:aws:secretsmanager:{call.region}:{call.account_id}:secret:{secret_id}"


def _secretsmanager(call: Call) -> RequestAccess:
    """An action on the secret `SecretId` names; BatchGetSecretValue, GetSecretValue on each listed
    secret too (a batch by filter cannot be mapped before it runs); CreateSecret is the
    administrator's (unmapped)."""
    op, body = _target_operation(call), _json_body(call)
    secret_id = body.get("SecretId")
    if isinstance(secret_id, str) and secret_id:
        return RequestAccess(
            "secretsmanager", op, (Access(f"secretsmanager:{op}", _secret_arn(call, secret_id)),), body=body
        )
    if op == "BatchGetSecretValue" and isinstance(body.get("SecretIdList"), list) and not body.get("Filters"):
        listed = [Access("secretsmanager:GetSecretValue", _secret_arn(call, str(s))) for s in body["SecretIdList"]]
        return RequestAccess("secretsmanager", op, (Access(f"secretsmanager:{op}", "*"), *listed), body=body)
    if op in _SECRETSMANAGER_ACCOUNT_WIDE:
        return RequestAccess("secretsmanager", op, (Access(f"secretsmanager:{op}", "*"),), body=body)
    return _unmapped("secretsmanager", op)


_MAPPERS: dict[str, Callable[[Call], RequestAccess]] = {
    "dynamodb": _dynamodb,
    "sqs": _sqs,
    "s3": _s3,
    "lambda": _lambda,
    "sts": _sts,
    "iam": _iam,
    "logs": _logs,
    "monitoring": _cloudwatch,
    "cloudwatch": _cloudwatch,
    "secretsmanager": _secretsmanager,
}


SERVICES = frozenset(_MAPPERS)
"""The signing names of the services local mode emulates for a caller other than the administrator: any
other service's request is answered as not emulated, in its own protocol (`local.protocols`)."""


def request_access(call: Call) -> RequestAccess:
    """The IAM actions and resources one request needs; `mapped=False` for what this cannot read."""
    mapper = _MAPPERS.get(call.service)
    if mapper is None:
        return _unmapped(call.service, _target_operation(call) or call.method)  # a path may hold names
    return mapper(call)


# ---------------------------------------------------------------------------------------------
# 4. Requests that set or remove a resource-based policy


@dataclass(frozen=True)
class PolicyChange:
    """What a request does to one resource's policy, applied once the request succeeds: the requests
    after it are judged by the policy as it now is, as on AWS."""

    resource: str
    """The ARN the policy is kept under (`resource_policy_key`)."""
    document: dict[str, Any] | None
    """The new policy; None: the resource has none any more."""


class MalformedPolicy(ValueError):
    """A policy that is not a JSON object: refused before it is stored, as AWS refuses it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        """The service's error code for it."""


# Reads the policy text a request sets from the request (None: the request leaves the policy alone).
_PolicyText = Callable[[Call, RequestAccess], str | None]


@dataclass(frozen=True)
class _PolicyWriter:
    """How one IAM action's requests change the policy of the resource they are checked on."""

    text: _PolicyText | None
    """Where the request carries the new policy; None: the request removes the policy."""
    malformed: str
    """The service's error code for a policy that is not a JSON object."""
    empty_removes: bool = False
    """An empty policy removes it (SQS's `Policy` attribute)."""


def _sqs_policy_attribute(call: Call, access: RequestAccess) -> str | None:
    """The `Policy` attribute of SetQueueAttributes or CreateQueue: `Attributes` in the JSON protocol,
    `Attribute.N.Name`/`Attribute.N.Value` in the query protocol."""
    attributes = access.body.get("Attributes")
    if isinstance(attributes, Mapping):
        text = attributes.get("Policy")
        return text if isinstance(text, str) else None
    for name, value in access.body.items():
        if name.startswith("Attribute.") and name.endswith(".Name") and value == "Policy":
            return str(access.body.get(name.removesuffix(".Name") + ".Value", ""))
    return None


def _request_body(call: Call, access: RequestAccess) -> str:
    return call.body.decode("utf-8", "replace")


def _json_field(name: str) -> _PolicyText:
    """A JSON request's field holding the policy (Secrets Manager's `ResourcePolicy`)."""

    def text(call: Call, access: RequestAccess) -> str | None:
        value = access.body.get(name)
        return value if isinstance(value, str) else None

    return text


# By IAM action, with the service's error code for a malformed policy (SetQueueAttributes:
# InvalidAttributeValue, an empty Policy removing it,
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html;
# PutBucketPolicy: MalformedPolicy, https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html;
# PutResourcePolicy: MalformedPolicyDocumentException,
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutResourcePolicy.html). Deleting a
# queue or a bucket deletes its policy: one made again under its name starts with none. A service
# whose requests `request_access` maps adds its entries here. SNS has none: topic policies are not
# emulated, and no SNS request of anyone but the administrator is mapped, so none is allowed.
POLICY_WRITERS: dict[str, _PolicyWriter] = {
    "sqs:setqueueattributes": _PolicyWriter(_sqs_policy_attribute, "InvalidAttributeValue", empty_removes=True),
    "sqs:createqueue": _PolicyWriter(_sqs_policy_attribute, "InvalidAttributeValue", empty_removes=True),
    "sqs:deletequeue": _PolicyWriter(None, "InvalidAttributeValue"),
    "s3:putbucketpolicy": _PolicyWriter(_request_body, "MalformedPolicy"),
    "s3:deletebucketpolicy": _PolicyWriter(None, "MalformedPolicy"),
    "s3:deletebucket": _PolicyWriter(None, "MalformedPolicy"),
    "secretsmanager:putresourcepolicy": _PolicyWriter(
        _json_field("ResourcePolicy"), "MalformedPolicyDocumentException"
    ),
    "secretsmanager:deleteresourcepolicy": _PolicyWriter(None, "MalformedPolicyDocumentException"),
}


# Request parameters of IAM and STS that carry a policy document (an identity policy, a trust policy, a
# session policy), refused with MalformedPolicyDocument as those services refuse a policy they cannot read
# (https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html,
# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
_POLICY_PARAMETERS = {"iam": ("PolicyDocument", "AssumeRolePolicyDocument"), "sts": ("Policy",)}


def _refuse_unsupported(document: Any, code: str, resource: str) -> None:
    """A policy whose statements this evaluator cannot judge as IAM does is refused, naming them, rather
    than stored and then silently allowing or denying (`unsupported_forms`)."""
    problems = unsupported_forms(document) if isinstance(document, Mapping) else []
    if problems:
        raise MalformedPolicy(code, f"local mode cannot evaluate the policy for {resource}: " + "; ".join(problems))


def policy_change(call: Call, access: RequestAccess) -> PolicyChange | None:
    """The resource policy this request sets or removes, if it does; raises MalformedPolicy for a policy
    that is not a JSON object (its text is not repeated: a policy may hold anything a caller typed), or
    one using a form IAM does not document, whether a resource policy or an IAM or STS request's."""
    for parameter in _POLICY_PARAMETERS.get(call.service, ()):
        text = access.body.get(parameter)
        if isinstance(text, str) and text:
            try:
                document = json.loads(text)
            except ValueError:
                continue  # IAM's own validation refuses it
            resource = access.accesses[0].resource if access.accesses else call.service
            _refuse_unsupported(document, "MalformedPolicyDocument", resource)
    for needed in access.accesses:
        writer = POLICY_WRITERS.get(needed.action.lower())
        if writer is None:
            continue
        resource = resource_policy_key(needed.resource)
        if writer.text is None:
            return PolicyChange(resource, None)
        text = writer.text(call, access)
        if text is None:
            return None
        if not text and writer.empty_removes:
            return PolicyChange(resource, None)
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise MalformedPolicy(writer.malformed, f"the policy for {resource} is not a JSON policy document")
        _refuse_unsupported(document, writer.malformed, resource)
        return PolicyChange(resource, document)
    return None
