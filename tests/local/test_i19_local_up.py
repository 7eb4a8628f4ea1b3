"""`local up` and `make up` as a user meets them day to day (issue 19): a second start refused without
harm, Ctrl-C at any point of start-up, a quiet console, hints that work when copied, one-line mistakes.

Every test runs the real command in a process of its own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local.support import REPO_ROOT, LocalStackProcess, local_processes, start_local, stop_local, wait_for
from tests.local.test_local_stacks import finished

# Imports take seconds on a loaded machine (a fresh clone compiles every module first).
COMMAND_TIMEOUT_SECONDS = 120


def ingest(*args: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


# --- 1: a refused second start touches nothing of the running stack ---------------------------------


@pytest.fixture(scope="module")
def running_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    running = start_local(tmp_path_factory.mktemp("refused"))
    yield running
    stop_local(running)


@pytest.mark.parametrize(
    "second_start",
    [("local", "up", "--port", "0"), ("demo", "--rows", "100")],
    ids=["local-up", "demo"],  # `make up` and `make run`
)
def test_a_refused_second_start_leaves_the_running_stack_as_it_was(
    running_dev: LocalStackProcess, second_start: tuple[str, ...]
) -> None:
    state_file = running_dev.state / "outputs.json"
    before = state_file.read_bytes()

    refused = ingest(*second_start, "--state-dir", str(running_dev.state_root))

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "already runs locally" in refused.stderr
    assert state_file.read_bytes() == before
    outputs = ingest("local", "outputs", "--stack", "dev", "--json", "--state-dir", str(running_dev.state_root))
    assert outputs.returncode == 0, outputs.stderr
    assert json.loads(outputs.stdout)["apiUrl"] == running_dev.outputs["apiUrl"]
    assert running_dev.api("/users?limit=1").status == 200


def test_a_start_during_another_ones_start_up_is_refused_and_harms_nothing(tmp_path: Path) -> None:
    # GIVEN a `local up` frozen in the middle of its start-up (its state folder claimed, not yet ready)
    command = [sys.executable, "-m", "ingest", "local", "up", "--port", "0", "--state-dir", str(tmp_path)]
    first = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "dev" / "logs").is_dir(), COMMAND_TIMEOUT_SECONDS, "start-up to claim its state")
        first.send_signal(signal.SIGSTOP)
        # WHEN a second one starts
        second = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        code, stderr = finished(second, COMMAND_TIMEOUT_SECONDS)
        # THEN it is refused, and the first goes on to run
        assert code == 2, stderr
        assert "already runs locally" in stderr
        first.send_signal(signal.SIGCONT)
        wait_for(lambda: (tmp_path / "dev" / "outputs.json").exists(), COMMAND_TIMEOUT_SECONDS, "the first to start")
        outputs = ingest("local", "outputs", "--stack", "dev", "--json", "--state-dir", str(tmp_path))
        assert outputs.returncode == 0, outputs.stderr
    finally:
        first.send_signal(signal.SIGCONT)
        first.send_signal(signal.SIGTERM)
        assert finished(first, 60)[0] is not None
    assert not local_processes(str(tmp_path))
