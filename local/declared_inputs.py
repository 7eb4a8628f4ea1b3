"""Which inputs the program declares that local mode never reads: each is listed at start-up.

Local mode reads a resource's inputs in two places: its creator (`local.deployer.CREATORS`) as it
creates the resource in the emulator, and `local.registry`, which reads the plan for the local
runtime (the function hosts, the event sources and the API take its typed values, never the plan).
Both read through `RecordingInputs`, which notes every key asked for. Once both have read, an input
the program declared and no one asked for has no effect locally, and `unread` names it, with why,
for start-up's "not emulated" listing. Which unread inputs are listed is derived, never written: by
hand here are only the few that mean nothing locally by nature (`NOT_APPLICABLE`) and, for some inputs
local mode knows it leaves unread, a better reason than the generic one (`REASONS`). Reading is not
applying, though: the inputs local mode reads but whose effect it does not reproduce are named by
hand (`UNAPPLIED`, with the values that matter) and listed whenever declared so (`unapplied`).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from local.mocks import DeclaredResource, Plan

# Inputs that mean nothing in a local run, whatever the resource: each is for `pulumi` itself
# (how it replaces or destroys what it deployed), and local mode never updates nor destroys a
# resource: every `local up` deploys the program afresh onto an empty emulator.
NOT_APPLICABLE: Mapping[str, str] = {
    "forceDestroy": "empties the bucket when `pulumi destroy` deletes it; local mode never deletes it",
    "recoveryWindowInDays": "how long `pulumi destroy` lets a deleted secret be recovered; local mode never deletes it",
    "triggers": "redeploys when its values change on `pulumi up`; every local up deploys afresh",
    "skipDestroy": "leaves the resource behind on `pulumi destroy`; local mode never deletes it",
}

# Why, where local mode knows it leaves an input unread: by type, then input.
REASONS: Mapping[str, Mapping[str, str]] = {
    "aws:lambda/function:Function": {
        "deadLetterConfig": (
            "a failed asynchronous event is not sent to the function's dead-letter queue locally; an"
            " on-failure destination is (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html)"
        ),
        "layers": (
            "layers are not extracted into /opt locally: the function runs its own archive only"
            " (https://docs.aws.amazon.com/lambda/latest/dg/chapter-layers.html)"
        ),
        "vpcConfig": (
            "no VPC locally: the function reaches the emulator whatever its subnets and security groups"
            " allow (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html)"
        ),
    },
}


def declared(value: Any) -> bool:
    """An input set to something: a block of empty lists (`vpcConfig` with no subnets) is not; a 0 is."""
    if isinstance(value, dict):
        return any(declared(v) for v in value.values())
    if value is None or isinstance(value, bool):
        return value is True
    return value not in ("", [], "OFF")


class RecordingInputs(dict[str, Any]):
    """A resource's inputs that note, in `read`, each key local mode asks for: by `[]`, `get` or
    `in`; iterating them (`_pascal`, `dict(...)`, `**`) reads them all. A `dict`, so code reading
    inputs (type checks, `json.dumps`) sees no difference."""

    def __init__(self, inputs: Mapping[str, Any], read: set[str]) -> None:
        super().__init__(inputs)
        self.read = read

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self.read.update(super().keys())
        return super().__iter__()

    def keys(self) -> Any:
        self.read.update(super().keys())
        return super().keys()

    def items(self) -> Any:
        self.read.update(super().keys())
        return super().items()

    def values(self) -> Any:
        self.read.update(super().keys())
        return super().values()


def recording_plan(plan: Plan, reads: dict[str, set[str]]) -> Plan:
    """The plan as `local.registry` reads it, each resource's reads added to `reads[urn]`."""
    resources = [
        DeclaredResource(**{**vars(r), "inputs": RecordingInputs(r.inputs, reads.setdefault(r.urn, set()))})
        for r in plan.resources
    ]
    return Plan(stack=plan.stack, resources=resources, outputs=plan.outputs, secret_outputs=plan.secret_outputs)


@dataclass(frozen=True)
class Unapplied:
    """An input local mode reads but whose effect it does not reproduce, when its value is one of these."""

    when: Callable[[Any], bool]
    why: str


def _host_architecture() -> str:
    """This machine's instruction set in Lambda's words (`x86_64` or `arm64`)."""
    return {"aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "x86_64")


# Read, and stored in the emulator, but with no effect locally: listed whenever declared so. By type,
# then input; each with the AWS page of what it does there.
UNAPPLIED: Mapping[str, Mapping[str, Unapplied]] = {
    "aws:lambda/function:Function": {
        "architectures": Unapplied(
            lambda value: any(arch != _host_architecture() for arch in value or ()),
            f"functions run on this machine's instruction set ({_host_architecture()}): native code built for"
            " the declared one is not run locally (https://docs.aws.amazon.com/lambda/latest/dg/foundation-arch.html)",
        ),
        "loggingConfig": Unapplied(
            lambda value: (value or {}).get("logFormat") == "JSON",
            "Lambda's own START, END and REPORT lines are written as text locally, not as the JSON objects"
            " of the JSON log format (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html)",
        ),
    },
    "aws:apigateway/stage:Stage": {
        "accessLogSettings": Unapplied(
            lambda value: bool((value or {}).get("format")),
            "the local gateway writes its own access log line (no request values), not this format"
            " (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html)",
        ),
    },
    "aws:dynamodb/table:Table": {
        "ttl": Unapplied(
            lambda value: bool((value or {}).get("enabled")),
            "the emulator stores the TTL setting but never deletes an expired item"
            " (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html)",
        ),
    },
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {
        "rules": Unapplied(
            declared,
            "the emulator stores the rules but never expires an object nor aborts an upload"
            " (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lifecycle-mgmt.html)",
        ),
    },
}


def unapplied(resource: DeclaredResource) -> list[tuple[str, str]]:
    """(input, why) for each input of `resource` local mode reads but does not apply, as declared."""
    return [
        (key, gap.why)
        for key, gap in UNAPPLIED.get(resource.type, {}).items()
        if key in resource.inputs and gap.when(resource.inputs[key])
    ]


def unread(resource: DeclaredResource, read: set[str]) -> list[tuple[str, str]]:
    """(input, why) for each input the program declared on `resource` that local mode never read."""
    return [
        (key, _why(resource.type, key))
        for key, value in resource.inputs.items()
        if key not in read and not key.startswith("__") and key not in NOT_APPLICABLE and declared(value)
    ]


def _why(type_: str, key: str) -> str:
    """The reason local mode gives, else: no part of it reads the input, with the type's inputs page
    (`aws:lambda/function:Function` → https://www.pulumi.com/registry/packages/aws/api-docs/lambda/function/)."""
    known = REASONS.get(type_, {}).get(key)
    if known is not None:
        return known
    package, path = type_.split(":", 2)[:2]
    module, resource = path.split("/", 1)
    page = f"https://www.pulumi.com/registry/packages/{package}/api-docs/{module}/{resource.lower()}/"
    return f"no part of local mode reads this input: it has no effect locally ({page})"
