"""The operator's commands, through their own process: `plan` (`demo` and `dlq` next)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.local.support import (
    REPO_ROOT,
)

COMMAND_TIMEOUT_SECONDS = 300


def ingest(*args: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
    """`python -m ingest …` in a process of its own, as a user runs it (no terminal: plain output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


# --- plan -------------------------------------------------------------------------------------------


def test_plan_prints_the_resource_tree_and_the_outputs() -> None:
    result = ingest("plan", "--stack", "dev")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Stack dev: ") and lines[0].endswith(" resources would be created")
    assert "csv-ingest:index:Pipeline  csv-ingest" in lines
    # A tree: the worker function is drawn inside the Worker component.
    worker = lines.index("  csv-ingest:ingest:Worker  csv-ingest-worker")
    function = next(
        n
        for n, line in enumerate(lines)
        if line.lstrip().startswith("aws:lambda/function:Function  csv-ingest-worker ")
    )
    assert function > worker and lines[function].startswith("    ")
    outputs = lines[lines.index("Outputs:") + 1 :]
    assert "  apiKey: [secret]" in outputs
    assert any(line.startswith("  workerLogGroupName: csv-ingest-worker-logs") for line in outputs)


def test_plan_with_an_invalid_setting_exits_2_with_the_programs_message() -> None:
    result = ingest("plan", "--set", "workerMemoryMb=5")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "csv-ingest:workerMemoryMb = 5 is out of range; allowed: 128–10240" in result.stderr
