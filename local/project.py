"""Where the project is and what its stack files say: read without Pulumi or the emulator, so that
the command line's everyday commands start fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT: str = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["name"]
"""The project's name, as `pulumi` reads it from Pulumi.yaml (the namespace of its config keys)."""


def stack_settings(stack: str) -> dict[str, Any]:
    """The `config:` map of `Pulumi.<stack>.yaml`; fails naming the file if there is none."""
    path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        stacks = sorted(p.name.split(".")[1] for p in REPO_ROOT.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack {stack!r}: {path.name} does not exist (stacks: {', '.join(stacks)})")
    return dict((yaml.safe_load(path.read_text()) or {}).get("config") or {})
