"""Each function runs on its runtime's interpreter with its runtime's SDK, installed once per machine
from a hash-checked lock; a runtime that is not installed is said at start-up, and refused by --strict.

What the function host runs on that interpreter (a module 3.13 removed, the SDK's version) is tested
in test_functions.py; here: the install, and `local up` without the interpreter.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import local.runtimes
from local.runtimes import SDK_LOCK, install_command, sdk_folder
from tests.local.support import REPO_ROOT, local_processes, wait_for
from tests.test_supply_chain import unhashed_install

# Start-up compiles and deploys the program: a minute is plenty even on a loaded machine.
COMMAND_TIMEOUT_SECONDS = 180


def test_the_runtimes_sdk_is_installed_hash_checked_from_a_lock() -> None:
    command = shlex.join(install_command(Path(sys.executable), Path("/tmp/target")))
    assert unhashed_install(command) is None, command
    assert SDK_LOCK.is_file() and SDK_LOCK.suffix == ".lock"


def test_stacks_starting_at_once_install_the_sdk_once_and_never_read_half_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installs = []
    seen_while_installing = []

    def install(runtime: str, target: Path, lock: Path) -> None:  # pip's part, tested in test_functions
        installs.append(target)
        (target / "boto3").mkdir()
        threading.Event().wait(0.5)  # long enough for the others to arrive and wait
        seen_while_installing.extend(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
        (target / "boto3" / "__init__.py").write_text("")

    monkeypatch.setattr(local.runtimes, "_install", install)
    monkeypatch.setattr(local.runtimes, "_compile", lambda runtime, target: None)
    found: list[Path] = []
    threads = [threading.Thread(target=lambda: found.append(sdk_folder("python3.13", root=tmp_path))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(installs) == 1
    assert len(found) == 3 and len(set(found)) == 1
    assert (found[0] / "boto3" / "__init__.py").is_file()
    assert seen_while_installing == []  # made aside, renamed into place whole
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [found[0].name]


def _without_interpreters(tmp_path: Path) -> dict[str, str]:
    """The caller's environment, where no Python of any runtime can be found (PATH, pyenv, uv)."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PATH=str(empty), PYENV_ROOT=str(empty), UV_PYTHON_INSTALL_DIR=str(empty), PYTHONUNBUFFERED="1")
    return env


def _local_up(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """`local up ARGS` without interpreters; what it prints goes to tmp_path's `stdout` and `stderr`."""
    command = [sys.executable, "-m", "ingest", "local", "up", "--port", "0", "--state-dir", str(tmp_path / "state")]
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        return subprocess.Popen(
            [*command, *args],
            cwd=REPO_ROOT,
            env=_without_interpreters(tmp_path),
            stdout=stdout,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )


def test_without_the_runtimes_interpreter_strict_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    refused = _local_up(tmp_path, "--strict")
    refused.wait(timeout=COMMAND_TIMEOUT_SECONDS)
    stderr = (tmp_path / "stderr").read_text()

    assert refused.returncode == 2, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert errors[0].startswith("error: no Python 3.13 for the python3.13 runtime: looked for python3.13 on PATH")
    assert "install it with `pyenv install 3.13`" in errors[0] and "--strict" in errors[0]
    assert not local_processes(str(tmp_path))


def test_without_the_runtimes_interpreter_start_up_says_so_in_one_line_and_runs_on_this_python(
    tmp_path: Path,
) -> None:
    running = _local_up(tmp_path)
    printed = tmp_path / "stdout"
    try:
        # The banner is printed once start-up is over: its last line says how to stop.
        banner_or_exit = lambda: "Ctrl-C stops everything." in printed.read_text() or running.poll() is not None  # noqa: E731
        wait_for(banner_or_exit, COMMAND_TIMEOUT_SECONDS, "local up to start")
        assert running.poll() is None, (tmp_path / "stderr").read_text()
    finally:
        os.killpg(running.pid, signal.SIGINT)
        running.wait(timeout=90)
    stdout, stderr = printed.read_text(), (tmp_path / "stderr").read_text()

    assert running.returncode == 0, stderr
    said = [line for line in stdout.splitlines() if "no Python 3.13" in line]
    here = ".".join(map(str, sys.version_info[:3]))
    assert said == [
        "Warning: no Python 3.13 for the python3.13 runtime: looked for python3.13 on PATH,"
        f" in {tmp_path / 'empty' / 'versions'} and in {tmp_path / 'empty'};"
        " install it with `pyenv install 3.13` or `uv python install 3.13`;"
        f" its functions run on this Python ({here}) instead, which may accept what python3.13 refuses"
    ], stdout
    assert not local_processes(str(tmp_path))
