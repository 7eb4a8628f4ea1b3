"""A running stack's state folder: found while its `local up` runs, and only then."""

from __future__ import annotations

import json
import os
from pathlib import Path

from local.state import OUTPUTS_FILE, hold_stack, process_started, running_outputs, state_dir


def _write(root: Path, **state: object) -> None:
    folder = state_dir(root, "dev")
    folder.mkdir(parents=True)
    body = {"outputs": {"bucketName": "b"}, "secretOutputs": ["apiKey"], **state}
    (folder / OUTPUTS_FILE).write_text(json.dumps(body))


def test_the_stack_is_running_while_the_process_that_wrote_its_state_runs(tmp_path: Path) -> None:
    _write(tmp_path, pid=os.getpid(), pidStarted=process_started(os.getpid()))

    running = running_outputs("dev", tmp_path)

    assert running is not None and running.outputs == {"bucketName": "b"} and running.secrets == {"apiKey"}


def test_a_stale_state_whose_pid_another_process_now_holds_is_not_a_running_stack(tmp_path: Path) -> None:
    # `local up` killed (or the machine restarted) left its file; the pid is now this test's process.
    _write(tmp_path, pid=os.getpid(), pidStarted="1")

    assert running_outputs("dev", tmp_path) is None


def test_a_state_whose_process_is_gone_is_not_a_running_stack(tmp_path: Path) -> None:
    _write(tmp_path, pid=2**22 + 1)  # above Linux's largest pid

    assert running_outputs("dev", tmp_path) is None


def test_a_stack_is_held_by_one_process_at_a_time_and_free_once_let_go(tmp_path: Path) -> None:
    first = hold_stack(tmp_path, "dev")
    assert first is not None
    try:
        assert hold_stack(tmp_path, "dev") is None  # a second start, refused at once
        other = hold_stack(tmp_path, "prod")  # another stack is another lock
        assert other is not None
        os.close(other)
    finally:
        os.close(first)

    again = hold_stack(tmp_path, "dev")
    assert again is not None
    os.close(again)
