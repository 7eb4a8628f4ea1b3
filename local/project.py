"""Where the project is and what its stack files say: read without Pulumi or the emulator, so that
the command line's everyday commands start fast."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.config import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT: str = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["name"]
"""The project's name, as `pulumi` reads it from Pulumi.yaml (the namespace of its config keys)."""
# "Stack names may only contain alphanumeric characters, hyphens, underscores, or periods"
# (https://www.pulumi.com/docs/iac/concepts/stacks/).
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def stack_settings(stack: str) -> dict[str, Any]:
    """The `config:` map of `Pulumi.<stack>.yaml`; fails naming the file if there is none, or if `stack`
    is not a stack's name (it names state folders and locks too: `dev/`, `..` or `` must never reach them)."""
    path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not STACK_NAME.fullmatch(stack) or stack in (".", "..") or not path.is_file():
        stacks = sorted(p.name.split(".")[1] for p in REPO_ROOT.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack {stack!r}: {path.name} does not exist (stacks: {', '.join(stacks)})")
    return dict((yaml.safe_load(path.read_text()) or {}).get("config") or {})


def stack_region(stack: str, settings: Mapping[str, Any]) -> str:
    """The stack's `aws:region`. `pulumi up` needs one, and local mode assumes none either: a stack
    file without it stops the command, saying how to set it."""
    region = settings.get("aws:region")
    if not region:
        raise ConfigError(
            f"Pulumi.{stack}.yaml sets no aws:region, which `pulumi up` needs too: add it with"
            f" `pulumi config set aws:region <region> --stack {stack}`"
        )
    return str(region)
