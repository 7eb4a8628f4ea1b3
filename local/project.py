"""Where the project is and what its stack files say: read without Pulumi or the emulator, so that
the command line's everyday commands start fast."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.config import ConfigError, PipelineConfig, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT: str = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["name"]
"""The project's name, as `pulumi` reads it from Pulumi.yaml (the namespace of its config keys)."""
# "Stack names may only contain alphanumeric characters, hyphens, underscores, or periods"
# (https://www.pulumi.com/docs/iac/concepts/stacks/).
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")


# A stack file is named `Pulumi.<stack>.yaml` ("automatically named Pulumi.<stack-name>.yaml",
# https://www.pulumi.com/docs/iac/concepts/config/): its name says which stack it configures.
STACK_FILE = re.compile(r"Pulumi\.(?P<stack>.+)\.yaml")


def stack_file(stack: str, config_file: Path | None = None) -> Path:
    """Where `stack`'s settings are: `config_file` when given (`--config-file`, as `pulumi
    --config-file` takes one: https://www.pulumi.com/docs/iac/cli/commands/pulumi_config/), else
    `Pulumi.<stack>.yaml` at the project's root."""
    return Path(config_file) if config_file is not None else REPO_ROOT / f"Pulumi.{stack}.yaml"


def stack_of_file(config_file: Path) -> str:
    """The stack a stack file configures: the `<stack>` of its name `Pulumi.<stack>.yaml`. A file
    named otherwise is refused, saying why: its name is the stack's, which names the local state
    folder and the outputs (`--stack` gives another name to a file named so)."""
    named = STACK_FILE.fullmatch(Path(config_file).name)
    if named is None or not _is_stack_name(named["stack"]):
        raise ConfigError(
            f"{config_file}: a stack file is named Pulumi.<stack>.yaml, and its name says which stack it"
            " configures (letters, digits, '-', '_' and '.'): rename it, e.g. Pulumi.products.yaml"
        )
    return named["stack"]


def _is_stack_name(stack: str) -> bool:
    return bool(STACK_NAME.fullmatch(stack)) and stack not in (".", "..")


def stack_settings(stack: str, config_file: Path | None = None) -> dict[str, Any]:
    """The `config:` map of the stack's file (`stack_file`); fails naming the file if there is none,
    or if `stack` is not a stack's name (it names state folders and locks too: `dev/`, `..` or ``
    must never reach them)."""
    path = stack_file(stack, config_file)
    if config_file is not None:
        if not _is_stack_name(stack):
            raise FileNotFoundError(f"no stack {stack!r}: not a stack's name (letters, digits, '-', '_' and '.')")
        if not path.is_file():
            raise FileNotFoundError(f"no stack file {path}: it does not exist or is not a file")
    elif not _is_stack_name(stack) or not path.is_file():
        stacks = sorted(p.name.split(".")[1] for p in REPO_ROOT.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack {stack!r}: {path.name} does not exist (stacks: {', '.join(stacks)})")
    return dict((yaml.safe_load(path.read_text()) or {}).get("config") or {})


def stack_region(stack: str, settings: Mapping[str, Any], config_file: Path | None = None) -> str:
    """The stack's `aws:region`. `pulumi up` needs one, and local mode assumes none either: a stack
    file without it stops the command, saying how to set it."""
    region = settings.get("aws:region")
    if not region:
        where = f" --config-file {config_file}" if config_file is not None else ""
        raise ConfigError(
            f"{stack_file(stack, config_file).name} sets no aws:region, which `pulumi up` needs too: add it with"
            f" `pulumi config set aws:region <region> --stack {stack}{where}`"
        )
    return str(region)


def stack_config(stack: str, config_file: Path | None = None) -> PipelineConfig:
    """The stack's settings validated as the program validates them (`load_config`), read from its
    file alone: what a command needs of a stack that need not run (`upload --check`: its schema and
    upload limit). `ConfigError` for a setting the program would refuse."""
    settings = stack_settings(stack, config_file)
    ours = {key.split(":", 1)[1]: value for key, value in settings.items() if key.startswith(f"{PROJECT}:")}
    return load_config(ours.get, ours)
