"""One Lambda function with everything it owns: code archive, log group, role and policy.

Every stage that runs code (producer, worker, query API) builds one of these, so the three functions
share one definition of "a well-configured function": structured logs to a log group with
retention, a role that trusts only Lambda, and a policy of exactly the statements the stage passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import FunctionSizing
from infra.iam import assume_role_policy, policy_document, statement
from infra.packaging import build_archive

# CloudWatch namespace of the handlers' custom metrics (embedded metric format).
METRICS_NAMESPACE = "CsvIngest"

# Statements that may name the function itself (the producer continues by invoking itself).
StatementsFactory = Callable[[pulumi.Output[str]], Sequence[dict[str, Any]]]


@dataclass(frozen=True)
class FunctionDefaults:
    """What every function of the stack shares."""

    runtime: str
    """Lambda Python runtime identifier, e.g. `python3.13`."""
    architecture: str
    """`arm64` or `x86_64`."""
    log_retention_days: int
    """Retention of each function's log group."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags applied to every child."""


@dataclass
class ServiceFunctionArgs:
    """Inputs of a `ServiceFunction`."""

    package: str
    """Subpackage of `handlers/` holding the function's code (`handlers/<package>/app.py`)."""
    sizing: FunctionSizing
    """Memory and timeout."""
    defaults: FunctionDefaults
    """Runtime, architecture, log retention and tags."""
    environment: Mapping[str, pulumi.Input[str]]
    """Environment variables: the resources the function uses, and its settings."""
    statements: StatementsFactory
    """Builds the policy statements from the function's own ARN (beyond writing its logs)."""
    description: str = ""
    """Shown in the Lambda console."""


class ServiceFunction(pulumi.ComponentResource):
    """A Lambda function with its log group, execution role and least-privilege policy."""

    function: aws.lambda_.Function
    """The function (`name`, `arn`, `invoke_arn`)."""
    role: aws.iam.Role
    """Its execution role."""
    policy: aws.iam.RolePolicy
    """Its permission policy; event sources that Lambda validates against the role depend on it."""
    log_group: aws.cloudwatch.LogGroup
    """Where its logs go."""

    def __init__(self, name: str, args: ServiceFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:compute:ServiceFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        defaults, tags = args.defaults, dict(args.defaults.tags)
        archive = build_archive(args.package, defaults.runtime)
        if archive.without_bytecode is not None:
            pulumi.log.warn(f"{name}: {archive.without_bytecode}", resource=self)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=defaults.log_retention_days, tags=tags, opts=child
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            description=f"Execution role of {name}",
            tags=tags,
            opts=child,
        )
        self.function = aws.lambda_.Function(
            name,
            description=args.description,
            role=self.role.arn,
            runtime=defaults.runtime,
            architectures=[defaults.architecture],
            handler=f"handlers.{args.package}.app.handler",
            code=pulumi.FileArchive(str(archive.path)),
            # Lambda's own hash of the zip: unchanged code keeps the same hash, so no redeploy.
            code_sha256=archive.sha256,
            memory_size=args.sizing.memory_mb,
            timeout=args.sizing.timeout_seconds,
            environment={
                "variables": {
                    "POWERTOOLS_SERVICE_NAME": args.package,
                    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                    **args.environment,
                }
            },
            # Logs go to our log group (with retention), never to an auto-created one kept forever.
            logging_config={"log_format": "JSON", "log_group": self.log_group.name},
            tags=tags,
            opts=child,
        )
        log_streams = pulumi.Output.concat(self.log_group.arn, ":log-stream:*")
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=policy_document(
                [
                    statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_streams]),
                    *args.statements(self.function.arn),
                ]
            ),
            opts=child,
        )
        self.register_outputs({"functionName": self.function.name, "functionArn": self.function.arn})
