"""The `ingest` command line from the outside: one local stack per test module, commands in their own process.

A test runs `python -m ingest …` as a user does (no terminal, so plain output) and reads its exit
code, stdout and stderr. Commands against `--local` run with a user's AWS settings in their
environment, pointing at a real account and at an endpoint nobody listens on: a local command that
picked any of them up would fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.local.support import REPO_ROOT, USER_AWS_ENVIRONMENT, LocalStackProcess, start_local, stop_local

COMMAND_TIMEOUT_SECONDS = 300
# What a user's shell may hold besides their keys: an endpoint (here, a port nobody listens on).
USER_ENDPOINT = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-2"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    """The dev stack running locally: workers take messages at once, asynchronous retries come within seconds."""
    running = start_local(
        tmp_path_factory.mktemp("ingest-state"),
        "--set",
        "workerBatchingWindowSeconds=0",
        "--retry-delays",
        "1,2",
    )
    yield running
    stop_local(running)


def run_ingest(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT_SECONDS,
    cwd: Path = REPO_ROOT,
) -> subprocess.CompletedProcess[str]:
    """`python -m ingest ARGS` in a process of its own, in `cwd` (a checkout), with `env` (default: the
    runner's, less any AWS_* and Pulumi's PULUMI_CONFIG*, which would change what a stack reads)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_CONFIG"))}
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env),
    )


def user_shell() -> dict[str, str]:
    """The environment of a user's shell: the runner's, less its AWS_*, plus a user's AWS settings
    (keys, a profile, an endpoint) that a local command must ignore."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(USER_AWS_ENVIRONMENT)
    env.update(USER_ENDPOINT)
    return env


def local_flags(stack: LocalStackProcess) -> tuple[str, ...]:
    """The options that name `stack`: `--local`, its stack and its state folder."""
    return ("--local", "--stack", stack.stack, "--state-dir", str(stack.state_root))


def local_command(
    stack: LocalStackProcess, *args: str, timeout: float = COMMAND_TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[str]:
    """`python -m ingest ARGS --local --state-dir …` against `stack`, from a shell holding a user's AWS settings."""
    return run_ingest(*args, *local_flags(stack), env=user_shell(), timeout=timeout)


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
