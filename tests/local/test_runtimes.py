"""Each function runs on its runtime's interpreter with its runtime's SDK, installed once per machine
from a hash-checked lock; a runtime that is not installed is said at start-up, and refused by --strict.
So is a network namespace the OS refuses: functions then run without one.

What the function host runs on that interpreter (a module 3.13 removed, the SDK's version) and in its
namespace is tested in test_functions.py; here: the install, and `local up` without the interpreter
or the namespace.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

import local.runtimes
from local.runtimes import SDK_LOCK, install_command, sdk_folder
from tests.local.support import REPO_ROOT, UNSHARE_REFUSED, http, local_processes, refusing_unshare, wait_for
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


def _without_interpreters(tmp_path: Path, path: Path | None = None) -> dict[str, str]:
    """The caller's environment, where no Python of any runtime can be found (PATH, pyenv, uv). PATH is
    `path` (by default the same empty folder as pyenv's and uv's)."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PATH=str(path or empty), PYENV_ROOT=str(empty), UV_PYTHON_INSTALL_DIR=str(empty), PYTHONUNBUFFERED="1")
    return env


def _local_up(tmp_path: Path, *args: str, path: Path | None = None) -> subprocess.Popen[str]:
    """`local up ARGS` without interpreters (PATH: `path`); what it prints goes to tmp_path's `stdout` and `stderr`."""
    command = [sys.executable, "-m", "ingest", "local", "up", "--port", "0", "--state-dir", str(tmp_path / "state")]
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        return subprocess.Popen(
            [*command, *args],
            cwd=REPO_ROOT,
            env=_without_interpreters(tmp_path, path),
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


@dataclass(frozen=True)
class StartUp:
    """One `local up`, from start to Ctrl-C: where it ran, what it printed, and an API request's status."""

    folder: Path
    banner: str
    """What it printed up to the end of start-up (its last line says how to stop)."""
    stdout: str
    stderr: str
    returncode: int
    api_status: int
    """GET /users while it ran: the query function invoked."""


BANNER_END = "Ctrl-C stops everything."


@pytest.fixture(scope="module")
def started_without_interpreter_or_namespace(tmp_path_factory: pytest.TempPathFactory) -> StartUp:
    """`local up` where no Python of the runtime is installed and the OS refuses a network namespace
    (its `unshare`, the only command on PATH, refuses as util-linux's does there): one start, for
    the tests of both."""
    folder = tmp_path_factory.mktemp("fallbacks")
    running = _local_up(folder, path=refusing_unshare(folder / "bin"))
    printed = folder / "stdout"
    try:
        banner_or_exit = lambda: BANNER_END in printed.read_text() or running.poll() is not None  # noqa: E731
        wait_for(banner_or_exit, COMMAND_TIMEOUT_SECONDS, "local up to start")
        assert running.poll() is None, (folder / "stderr").read_text()
        outputs = json.loads((folder / "state" / "dev" / "outputs.json").read_text())["outputs"]
        key = {"x-api-key": outputs["apiKey"]} if outputs.get("apiKey") else {}
        api_status = http("GET", f"{outputs['apiUrl']}/users?limit=1", key).status
    finally:
        os.killpg(running.pid, signal.SIGINT)
        running.wait(timeout=90)
    stdout = printed.read_text()
    return StartUp(
        folder=folder,
        banner=stdout.split(BANNER_END, 1)[0],
        stdout=stdout,
        stderr=(folder / "stderr").read_text(),
        returncode=running.returncode,
        api_status=api_status,
    )


def test_without_the_runtimes_interpreter_start_up_says_so_in_one_line_and_runs_on_this_python(
    started_without_interpreter_or_namespace: StartUp,
) -> None:
    started = started_without_interpreter_or_namespace
    empty = started.folder / "empty"

    assert started.returncode == 0, started.stderr
    said = [line for line in started.stdout.splitlines() if "no Python 3.13" in line]
    here = ".".join(map(str, sys.version_info[:3]))
    assert said == [
        "Warning: no Python 3.13 for the python3.13 runtime: looked for python3.13 on PATH,"
        f" in {empty / 'versions'} and in {empty};"
        " install it with `pyenv install 3.13` or `uv python install 3.13`;"
        f" its functions run on this Python ({here}) instead, which may accept what python3.13 refuses"
    ], started.stdout
    assert started.api_status == 200
    assert not local_processes(str(started.folder))


def test_where_the_os_refuses_a_network_namespace_start_up_says_so_in_one_line_and_functions_run(
    started_without_interpreter_or_namespace: StartUp,
) -> None:
    started = started_without_interpreter_or_namespace

    said = [line for line in started.stdout.splitlines() if "namespace" in line]
    assert said == [
        f"Warning: network: this machine refuses a network namespace ({UNSHARE_REFUSED});"
        " a function's own connections off 127.0.0.1 are refused, but processes it starts can reach any address"
    ], started.stdout
    assert said[0] in started.banner.splitlines()  # said at start-up, with the other warnings
    # Its functions run all the same: each imported at start-up (start-up waits for it), and one invoked.
    assert started.returncode == 0, started.stderr
    assert started.api_status == 200
