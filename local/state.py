"""A running local stack's state folder (`.local/<stack>/`): its outputs, for the command line and
other tools to find the stack. Written by `local.session`; read here without the emulator."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.project import REPO_ROOT

STATE_ROOT = REPO_ROOT / ".local"
OUTPUTS_FILE = "outputs.json"


def state_dir(state_root: Path, stack: str) -> Path:
    return state_root / stack


def hold_stack(state_root: Path, stack: str) -> int | None:
    """Take the lock that says "a process runs this stack locally", for as long as this process holds
    the descriptor returned (None: another process holds it; nothing is touched then).

    A lock, not the state file: the state file is written once start-up is done, so a second start
    during the first one's start-up would find none and take the folder over. An advisory `flock`
    taken with LOCK_NB either succeeds or fails at once, and the kernel releases it when its holder
    exits however it exits, SIGKILL included (flock(2)). The lock file sits beside the state folder,
    which start-up empties: a lock file deleted while held would let a second process lock a new one."""
    state_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(state_root / f"{stack}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it
    names one process, where a pid alone may be reused after `local up` was killed or the machine
    restarted. None where /proc is not there (macOS): the pid is then all there is to go by."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[19]


def _runs(state: dict[str, Any]) -> bool:
    """The process that wrote `state` still runs: its pid is alive and, where both are known, it is the
    same process (a stale file whose pid another process now holds is not a running stack)."""
    pid = int(state.get("pid", -1))
    if not _alive(pid):
        return False
    recorded, now = state.get("pidStarted"), process_started(pid)
    return recorded is None or now is None or recorded == now


@dataclass(frozen=True)
class RunningStack:
    """A stack running locally, as its state folder describes it."""

    outputs: dict[str, Any]
    """The program's outputs (secrets shown) and the emulator's endpoint, region and admin keys."""
    secrets: frozenset[str]
    """Names of the outputs that are secret (the program's, and the admin's secret key)."""


def running_outputs(stack: str, state_root: Path = STATE_ROOT) -> RunningStack | None:
    """The stack running locally, or None when it does not run."""
    path = state_dir(state_root, stack) / OUTPUTS_FILE
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not _runs(state):
        return None
    return RunningStack(outputs=dict(state["outputs"]), secrets=frozenset(state["secretOutputs"]))
