"""Which stack a command talks to, and how: `--local` (a stack running on this machine) or `--stack NAME`.

A `Target` is a stack's outputs plus the way to reach its AWS services and its API:

- **local** (`--local`, `--stack` picks which, default `dev` or the stack `--config-file` names):
  the outputs `python -m ingest local up` wrote to its state folder (`local.session.running_outputs`).
  Clients go to the emulator's endpoint with its administrator keys and nothing of the user's AWS
  configuration: a profile or an `AWS_ENDPOINT_URL` in the shell must never send a local command to
  a real account.
- **deployed** (`--stack NAME` alone): the outputs of `pulumi stack output --json --show-secrets`, run
  in this checkout. Clients use the caller's own AWS configuration (the default credential chain:
  `AWS_PROFILE`, SSO, `AWS_ENDPOINT_URL`, …) in the stack's region, `aws:region` of
  `Pulumi.<stack>.yaml` (or of `--config-file`): the stack lives there whatever region the shell
  happens to name.

Either way the stack's schema (`Target.schema`) is its `schema` output: the declaration the program
gave every function, so `get`, `list` and `dlq peek` show the stack's own columns.

Anything the user must fix first (no such stack running, no Pulumi CLI, no credentials) is a
`TargetError`: one line saying what to do, which the commands print and exit 2 with.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import Credentials

from handlers.common.schema import DEFAULT_SCHEMA, Schema, SchemaError, parse_schema
from infra.config import ConfigError
from local.project import REPO_ROOT, stack_of_file, stack_settings
from local.state import STATE_ROOT, running_outputs

if TYPE_CHECKING:
    from ingest.api import ApiClient

DEFAULT_STACK = "dev"
PULUMI_INSTALL_URL = "https://www.pulumi.com/docs/iac/download-install/"
# `pulumi stack output` reads the backend (the Pulumi Cloud or a bucket): slow, but not this slow.
PULUMI_TIMEOUT_SECONDS = 120
# Retries of throttled and transient AWS errors, as the AWS CLI does ("standard" mode).
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


class TargetError(Exception):
    """One line saying what to do; the CLI prints it to stderr and exits 2."""


@dataclass
class Target:
    """A stack to talk to: its outputs, and clients and an API client that reach it."""

    label: str
    """How messages name it: "local stack dev" or "stack prod"."""
    outputs: dict[str, Any]
    """The stack's outputs (secrets shown), as `pulumi stack output --json --show-secrets` gives them."""
    region: str
    local: bool
    stack: str
    session: boto3.Session = field(repr=False)
    """Where clients get their credentials and settings (local: the emulator's admin keys only)."""
    endpoint_url: str | None = None
    """The emulator's endpoint (local); None for AWS, or whatever the caller's configuration names."""
    state_root: Path = STATE_ROOT
    """Where a local stack keeps its state (`--state-dir`, hidden: the default but in tests)."""
    config_file: Path | None = None
    """The stack's settings file when it is not `Pulumi.<stack>.yaml` at the root (`--config-file`)."""
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def flags(self) -> str:
        """The options that name this target again, for a command line to copy (the state folder too,
        when it is not the default, and a deployed stack's settings file: a hint must reach the stack
        the user chose)."""
        if not self.local:
            return shlex.join(["--stack", self.stack, *config_file_words(self.config_file)])
        return shlex.join(["--local", *stack_words(self.stack, self.state_root)])

    @cached_property
    def schema(self) -> Schema:
        """The stack's schema, from its outputs (`schema_of`)."""
        return schema_of(self.outputs, self.label)

    def client(self, service: str) -> Any:
        """A boto3 client of `service` in the stack's region (one per service, reused)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG
            )
        return self._clients[service]

    def credentials(self) -> Credentials:
        """The keys requests to the API are signed with (IAM mode); temporary ones refresh themselves."""
        found = self.session.get_credentials()
        if found is None:
            raise TargetError(_NO_CREDENTIALS)
        return found

    def api(self) -> ApiClient:
        """The stack's query API: its `apiKey` output sent as `x-api-key`, or else requests signed with SigV4."""
        from ingest.api import ApiClient  # ingest.api needs Target for its types only

        return ApiClient.for_target(self)


def schema_of(outputs: dict[str, Any], label: str) -> Schema:
    """A stack's schema: its `schema` output, the program's own declaration. A stack deployed before
    there were schemas has none, and ingests users: the default schema."""
    declared = outputs.get("schema")
    if declared is None:
        return DEFAULT_SCHEMA
    try:
        return parse_schema(declared, "schema")
    except SchemaError as error:
        raise TargetError(f"{label} has a schema output this command cannot read ({error})") from None


_NO_CREDENTIALS = (
    "no AWS credentials: configure them (aws configure, aws sso login, or AWS_PROFILE), or use --local"
    " for a stack running on this machine"
)


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """`--local`, `--stack NAME`, `--config-file PATH` and the hidden `--state-dir` (where local
    stacks keep their state)."""
    where = parser.add_argument_group("stack")
    where.add_argument(
        "--local",
        action="store_true",
        help="the stack running on this machine (python -m ingest local up)",
    )
    where.add_argument(
        "--stack",
        metavar="NAME",
        help=f"the stack (default: {DEFAULT_STACK}, or the one --config-file names); without --local, one deployed"
        " with pulumi up",
    )
    add_config_file_option(where)
    where.add_argument("--state-dir", type=Path, default=STATE_ROOT, help=argparse.SUPPRESS)


def add_config_file_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--config-file PATH`: the stack's settings in a file beyond the project's root, as `pulumi
    --config-file` takes one (https://www.pulumi.com/docs/iac/cli/commands/pulumi_config/)."""
    parser.add_argument(
        "--config-file",
        type=Path,
        metavar="PATH",
        help="the stack's settings file, Pulumi.<stack>.yaml, when it is not at the project's root (e.g."
        " examples/products/Pulumi.products.yaml); its <stack> names the stack unless --stack does",
    )


def stack_of(options: argparse.Namespace) -> str:
    """The stack the options name: `--stack`, else the `<stack>` of `--config-file`'s name
    `Pulumi.<stack>.yaml`, else `DEFAULT_STACK`. `ConfigError` for a settings file named otherwise."""
    if options.stack is not None:  # as given, even empty: `stack_settings` refuses what is not a stack's name
        return str(options.stack)
    config_file = getattr(options, "config_file", None)
    return stack_of_file(config_file) if config_file is not None else DEFAULT_STACK


def config_file_words(config_file: Path | None) -> list[str]:
    """`--config-file PATH` when the stack's settings are in a file of their own; nothing otherwise."""
    return ["--config-file", str(config_file)] if config_file is not None else []


def resolve_target(options: argparse.Namespace) -> Target:
    """The stack `--local`/`--stack`/`--config-file` name; `TargetError` when it cannot be reached."""
    try:
        stack = stack_of(options)
    except ConfigError as error:
        raise TargetError(str(error)) from None
    if options.local:
        return local_target(stack, options.state_dir)
    return deployed_target(stack, options.config_file)


def stack_words(stack: str, state_root: Path) -> list[str]:
    """`--stack` for a local stack, and `--state-dir` when its state is not in the default folder: what
    a hint's command needs to reach the stack the user chose."""
    return ["--stack", stack, *state_dir_words(state_root)]


def state_dir_words(state_root: Path) -> list[str]:
    """`--state-dir` when `state_root` is not the default folder; nothing when it is."""
    return ["--state-dir", str(state_root)] if Path(state_root).resolve() != STATE_ROOT.resolve() else []


def local_target(stack: str, state_root: Path = STATE_ROOT) -> Target:
    running = running_outputs(stack, state_root)
    if running is None:
        from ingest.output import command  # here: ingest.output imports this module's TargetError

        raise TargetError(
            f"stack {stack} is not running locally: start it with"
            f" `{command('local', 'up', *stack_words(stack, state_root))}`"
        )
    outputs = running.outputs
    return Target(
        label=f"local stack {stack}",
        outputs=outputs,
        region=outputs["awsRegion"],
        local=True,
        stack=stack,
        session=_sealed_session(outputs["awsAccessKeyId"], outputs["awsSecretAccessKey"], outputs["awsRegion"]),
        endpoint_url=outputs["awsEndpointUrl"],
        state_root=state_root,
    )


def _sealed_session(access_key_id: str, secret_access_key: str, region: str) -> boto3.Session:
    """A session with these keys and nothing from the user's AWS configuration (files, profile, env keys)."""
    # No profile, whatever AWS_PROFILE says (it may name a real account's); no config or credentials files.
    core = botocore.session.Session(session_vars={"profile": (None, [], None, None)})
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    return boto3.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
        botocore_session=core,
    )


def deployed_target(stack: str, config_file: Path | None = None) -> Target:
    """A stack deployed with `pulumi up`, reached with the caller's own AWS configuration; its
    settings in `config_file` when given."""
    region = _stack_region(stack, config_file)
    outputs = pulumi_outputs(stack)
    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        raise TargetError(_NO_CREDENTIALS)
    return Target(
        label=f"stack {stack}",
        outputs=outputs,
        region=region,
        local=False,
        stack=stack,
        session=session,
        config_file=config_file,
    )


def _stack_region(stack: str, config_file: Path | None = None) -> str:
    """The stack's `aws:region`: where `pulumi up` put it (the shell's AWS_REGION may name another)."""
    try:
        settings = stack_settings(stack, config_file)
    except FileNotFoundError as error:
        raise TargetError(str(error)) from None
    region = settings.get("aws:region")
    if not region:
        where = shlex.join(["--stack", stack, *config_file_words(config_file)])
        name = config_file or f"Pulumi.{stack}.yaml"
        raise TargetError(f"{name} sets no aws:region: set it (pulumi config set aws:region REGION {where})")
    return str(region)


def pulumi_outputs(stack: str) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets --stack NAME`, run in this checkout."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise TargetError(
            f"the Pulumi CLI is not installed (no `pulumi` on PATH): install it ({PULUMI_INSTALL_URL}) and"
            " log in to the stack's backend, or use --local for a stack running on this machine"
        )
    command = [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        result = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise TargetError(
            f"`pulumi stack output --stack {stack}` did not answer in {PULUMI_TIMEOUT_SECONDS} s"
        ) from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit code {result.returncode}"
        raise TargetError(f"`pulumi stack output --stack {stack}` failed: {why}")
    try:
        outputs = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise TargetError(f"`pulumi stack output --json --stack {stack}` printed something that is not JSON") from None
    if not isinstance(outputs, dict) or not outputs.get("apiUrl") or not outputs.get("bucketName"):
        raise TargetError(
            f"stack {stack} has no apiUrl or bucketName output: deploy it first (pulumi up --stack {stack})"
        )
    return outputs
