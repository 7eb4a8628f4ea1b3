"""Run the stack's own Pulumi program under mocks and record every resource it declares.

`run_program("dev")` executes `__main__.py` with the settings of `Pulumi.dev.yaml`, as `pulumi up`
would, but against `PlanMocks`: each resource gets the physical name and attributes (ARN, URL, …)
AWS would give it, so outputs flow into later inputs exactly as in a deployment. The result, a
`Plan`, lists what the program would deploy with the inputs the provider would receive. The unit
tests assert on it; `python -m local.plan` prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import runpy
import secrets
import string
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from local.project import PROJECT, REPO_ROOT, stack_region, stack_settings

ACCOUNT_ID = "123456789012"


@dataclass
class DeclaredResource:
    """One resource the program declared, with the inputs the provider would receive."""

    urn: str
    id: str | None
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]

    physical_name: str | None
    """The resource's own name in AWS, as the mocks derived it (None for unnamed resources)."""
    retain_on_delete: bool = False
    """Kept in AWS when the stack deletes it."""
    dependencies: tuple[str, ...] = ()
    """URNs of the resources it explicitly depends on."""
    aliases: tuple[str, ...] = ()
    """Earlier logical names it answers to (`pulumi.Alias(name=...)`): state under them is kept."""
    ignore_changes: tuple[str, ...] = ()
    """Inputs a later `pulumi up` leaves as they were first deployed (`ignore_changes`)."""


@dataclass
class Plan:
    """Everything the program declared, in declaration order, and its stack outputs."""

    stack: str
    resources: list[DeclaredResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    """What the program logged as warnings (`pulumi.log.warn`), as `pulumi up` would show them."""

    def of_type(self, type_: str) -> list[DeclaredResource]:
        """Every resource of a Pulumi type token (e.g. `aws:sqs/queue:Queue`)."""
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> DeclaredResource:
        """The resource of this type with this logical name; fails naming what exists."""
        found = [r for r in self.of_type(type_) if r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_))
            raise LookupError(f"expected one {type_} named {name!r}; declared: {names}")
        return found[0]


def _auto_name(name: str, urn: str) -> str:
    """A physical name the way Pulumi auto-names: the logical name plus a random-looking suffix.

    Derived from the URN, so one program always gets the same names.
    """
    suffix = hashlib.sha256(urn.encode()).hexdigest()[:7]
    return f"{name}-{suffix}"


class PlanMocks(pulumi.runtime.Mocks):
    """Answers the engine like AWS would: physical names, ARNs, URLs; and invokes."""

    def __init__(self, region: str, account_id: str = ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id
        self.urns: dict[tuple[str, str], str] = {}
        self.physical_names: dict[str, str] = {}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:iam::{self.account_id}:user/local"
            return {"accountId": self.account_id, "arn": arn, "userId": "LOCAL", "id": self.account_id}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": self.region, "name": self.region, "id": self.region}, []
        if args.token == "aws:iam/getSessionContext:getSessionContext":
            return _session_context(args.args["arn"]), []
        if args.token == "aws:secretsmanager/getRandomPassword:getRandomPassword":
            return {"randomPassword": _random_password(args.args), "id": self.region}, []
        raise NotImplementedError(f"no mock for invoke {args.token}")

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        urn = self.urns.get((args.typ, args.name), args.name)
        state = dict(args.inputs)
        attributes = self._attributes(args.typ, args.name, urn, state)
        if "name" in attributes or args.typ == "aws:s3/bucket:Bucket":
            self.physical_names[urn] = attributes.get("name") or attributes["bucket"]
        state.update(attributes)
        return state.pop("id", f"{args.name}-id"), state

    def _attributes(self, typ: str, name: str, urn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The attributes AWS sets on create, for every type the program reads outputs of."""
        region, account = self.region, self.account_id
        physical = inputs.get("name") or _auto_name(name, urn)
        if typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or physical
            return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "id": bucket}
        if typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
            return {"name": physical, "arn": f"arn:aws:sqs:{region}:{account}:{physical}", "url": url, "id": url}
        if typ == "aws:dynamodb/table:Table":
            return {"name": physical, "arn": f"arn:aws:dynamodb:{region}:{account}:table/{physical}", "id": physical}
        if typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{region}:{account}:function:{physical}"
            invoke = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
            return {"name": physical, "arn": arn, "invokeArn": invoke, "id": physical}
        if typ == "aws:iam/role:Role":
            return {"name": physical, "arn": f"arn:aws:iam::{account}:role/{physical}", "id": physical}
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            return {"name": physical, "arn": f"arn:aws:logs:{region}:{account}:log-group:{physical}", "id": physical}
        if typ == "aws:sns/topic:Topic":
            return {"name": physical, "arn": f"arn:aws:sns:{region}:{account}:{physical}", "id": f"{physical}"}
        if typ == "aws:apigateway/restApi:RestApi":
            api_id = hashlib.sha256(urn.encode()).hexdigest()[:10]
            return {
                "name": physical,
                "id": api_id,
                "rootResourceId": f"{api_id}-root",
                "executionArn": f"arn:aws:execute-api:{region}:{account}:{api_id}",
            }
        if typ == "aws:apigateway/stage:Stage":
            url = f"https://{inputs['restApi']}.execute-api.{region}.amazonaws.com/{inputs['stageName']}"
            return {"invokeUrl": url}
        if typ == "aws:apigateway/apiKey:ApiKey":
            return {"name": physical, "value": hashlib.sha256(urn.encode()).hexdigest()[:40]}
        if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            return {"arn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{physical}"}
        if typ == "aws:secretsmanager/secret:Secret":
            # Secrets Manager appends a hyphen and six random characters to the name in the ARN
            # (https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot.html#ARN_secretnamehyphen).
            suffix = hashlib.sha256(urn.encode()).hexdigest()[:6]
            arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{physical}-{suffix}"
            return {"name": physical, "arn": arn, "id": arn}
        if typ == "aws:secretsmanager/secretVersion:SecretVersion":
            version = hashlib.sha256(urn.encode()).hexdigest()[:32]
            return {"arn": inputs["secretId"], "versionId": version, "id": f"{inputs['secretId']}|{version}"}
        if typ == "aws:cloudwatch/dashboard:Dashboard":
            return {"dashboardArn": f"arn:aws:cloudwatch::{account}:dashboard/{inputs['dashboardName']}"}
        return {}


def _random_password(args: Mapping[str, Any]) -> str:
    """A fresh value as Secrets Manager's GetRandomPassword draws it: `passwordLength` characters
    (32 by default) of letters, digits and punctuation, less the classes the call excludes
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetRandomPassword.html)."""
    alphabet = "".join(
        chars
        for flag, chars in (
            ("excludeLowercase", string.ascii_lowercase),
            ("excludeUppercase", string.ascii_uppercase),
            ("excludeNumbers", string.digits),
            ("excludePunctuation", string.punctuation),
        )
        if not args.get(flag)
    )
    return "".join(secrets.choice(alphabet) for _ in range(int(args.get("passwordLength") or 32)))


def _session_context(arn: str) -> dict[str, Any]:
    """`aws.iam.get_session_context` as the provider answers it: for an assumed-role session
    (`arn:aws:sts::<account>:assumed-role/<role>/<session>`) the role's IAM ARN is the issuer; any
    other ARN passes through as its own issuer
    (https://www.pulumi.com/registry/packages/aws/api-docs/iam/getsessioncontext/). The provider
    reads a role's path from IAM; a mock has no IAM to read, so the role is taken to have none."""
    session = re.fullmatch(
        r"arn:(?P<partition>[^:]+):sts::(?P<account>\d+):assumed-role/(?P<role>[^/]+)/(?P<name>.+)", arn
    )
    if session is None:
        return {"arn": arn, "issuerArn": arn, "id": arn}
    issuer = f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}"
    return {"arn": arn, "issuerArn": issuer, "issuerName": session["role"], "sessionName": session["name"], "id": arn}


class _WarningRecorder(logging.Handler):
    """Keeps the program's warnings (the mock engine logs them through `logging`) on the plan."""

    def __init__(self, plan: Plan) -> None:
        super().__init__(logging.WARNING)
        self.plan = plan

    def emit(self, record: logging.LogRecord) -> None:
        self.plan.warnings.append(record.getMessage())


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock engine, also keeping each resource's parent and the stack's outputs."""

    def __init__(self, mocks: PlanMocks, plan: Plan) -> None:
        super().__init__(mocks)
        self._plan_mocks = mocks
        self.plan = plan

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        self._plan_mocks.urns[(request.type, request.name)] = urn
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registration = self.resources[urn]
            self.plan.resources.append(
                DeclaredResource(
                    urn=urn,
                    id=registration.id,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=request.custom,
                    inputs=_resolved(rpc.deserialize_properties(request.object)),
                    outputs=dict(registration.state or {}),
                    physical_name=self._plan_mocks.physical_names.get(urn),
                    retain_on_delete=bool(request.retainOnDelete),
                    dependencies=tuple(request.dependencies),
                    aliases=tuple(a.spec.name for a in request.aliases if a.HasField("spec") and a.spec.name),
                    ignore_changes=tuple(request.ignoreChanges),
                )
            )
        return response


def _resolved(value: Any) -> Any:
    """Unwrap secrets (`{"4dabf18193072939515e22adb298388d": ..., "value": v}`) into plain values."""
    if isinstance(value, dict):
        if rpc._special_sig_key in value and "value" in value:
            return _resolved(value["value"])
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


def _config_text(value: Any) -> str:
    """A setting as the Pulumi CLI hands it to the program: structured values (lists) as JSON."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    mocks_factory: Callable[[str], PlanMocks] = PlanMocks,
    transformations: Sequence[pulumi.ResourceTransformation] = (),
    config_file: Path | None = None,
) -> Plan:
    """Execute `__main__.py` for `stack` under mocks; `overrides` replace settings (short keys).
    The settings are `Pulumi.<stack>.yaml`'s, or `config_file`'s (`--config-file`).

    `mocks_factory(region)` makes the mocks that answer the engine: `PlanMocks` for a plan, or local
    mode's mocks that create each resource in the emulator (`local.deployer`). `transformations` are
    registered as stack transformations before the program runs, as `pulumi.runtime.
    register_stack_transformation` would in the program (a benchmark's variant of the stack).
    """
    settings = stack_settings(stack, config_file)
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if value is None:
            settings.pop(full, None)
        else:
            settings[full] = value
    region = stack_region(stack, settings, config_file)
    plan = Plan(stack=stack)
    mocks = mocks_factory(region)
    logger = logging.getLogger(f"{__name__}.{stack}.{id(plan)}")
    logger.propagate = False
    logger.addHandler(_WarningRecorder(plan))
    with _event_loop():
        _run_under_mocks(plan, mocks, logger, settings, transformations)
    return plan


@contextlib.contextmanager
def _event_loop() -> Iterator[None]:
    """An asyncio event loop for the Pulumi engine on this thread. The engine runs on the calling
    thread's loop (`asyncio.get_event_loop()`), which asyncio makes on request for the main thread
    only: on another (local mode's start-up thread, `ingest.commands.local.start_interruptibly`)
    one is made here, and closed once the program has run."""
    if threading.current_thread() is threading.main_thread():
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _run_under_mocks(
    plan: Plan,
    mocks: PlanMocks,
    logger: logging.Logger,
    settings: Mapping[str, Any],
    transformations: Sequence[pulumi.ResourceTransformation],
) -> None:
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=plan.stack, preview=False, logger=logger, monitor=_RecordingMonitor(mocks, plan)
    )
    pulumi.runtime.set_all_config({key: _config_text(value) for key, value in settings.items()})

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        for transformation in transformations:
            pulumi.runtime.register_stack_transformation(transformation)
        runpy.run_path(str(REPO_ROOT / "__main__.py"), run_name="__main__")
        exported = pulumi.runtime.settings.get_root_resource().outputs  # what pulumi.export set
        secret = {key: pulumi.Output.from_input(value).is_secret() for key, value in exported.items()}
        return pulumi.Output.all(
            pulumi.Output.from_input(exported).apply(plan.outputs.update),
            pulumi.Output.from_input(secret).apply(
                lambda flags: plan.secret_outputs.update(k for k, v in flags.items() if v)
            ),
        )

    program()
