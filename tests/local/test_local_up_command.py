"""`local up` and `make up` as a user meets them day to day (issue 19): a second start refused without
harm, Ctrl-C at any point of start-up, a quiet console, hints that work when copied, one-line mistakes.

Every test runs the real command in a process of its own."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.local.support import (
    REPO_ROOT,
    LocalStackProcess,
    csv_bytes,
    local_processes,
    start_local,
    stop_local,
    wait_for,
    wait_until_started,
)
from tests.local.test_local_stacks import finished
from tests.pty_command import PtyCommand

pytestmark = pytest.mark.long(seconds=350)

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


@pytest.mark.parametrize("stack", ["dev/", "..", "", "dev/../dev"])
def test_a_stack_name_that_is_not_one_is_refused_before_it_names_a_folder_or_a_lock(
    running_dev: LocalStackProcess, stack: str
) -> None:
    # A stack's name names its state folder and its lock: `dev/` would take another lock than the running
    # dev's and empty its folder; `` and `..` folders above it (the checkout itself, by default).
    state_root = running_dev.state_root
    marker = state_root / "keep-me"
    marker.write_text("a file beside the stacks' folders")
    before = (running_dev.state / "outputs.json").read_bytes()

    refused = ingest("local", "up", "--port", "0", "--stack", stack, "--state-dir", str(state_root / "nested"))
    refused_beside = ingest("local", "up", "--port", "0", "--stack", stack, "--state-dir", str(state_root))

    for done in (refused, refused_beside):
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"no stack {stack!r}" in done.stderr
    assert marker.read_text() == "a file beside the stacks' folders"
    assert (running_dev.state / "outputs.json").read_bytes() == before
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


# --- 8: the terminal shows each job's start and end and every warning and error; --logs every line -----


class Terminal(PtyCommand):
    """`python -m ingest local up ARGS` whose stdout and stderr are a terminal (a pty, 80 columns), as
    `make up` runs in one. `stop()` ends it as Ctrl-C does."""

    def __init__(self, state_root: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NO_COLOR"))}
        env.update(TERM="xterm-256color", PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "ingest", "local", "up", "--port", "0", "--state-dir", str(state_root)]
        super().__init__([*command, *args], env, columns=80, rows=24)
        self.state_root = state_root

    def text(self) -> str:
        return super().text().replace("\r\n", "\n")

    def ready(self) -> LocalStackProcess:
        """The stack, once started (its outputs as `start_local` reads them)."""
        outputs = self.state_root / "dev" / "outputs.json"

        def started() -> dict[str, Any] | None:
            assert self.process.poll() is None, self.text()
            return json.loads(outputs.read_text())["outputs"] if outputs.exists() else None

        running = LocalStackProcess(self.process, "dev", self.state_root, self.state_root / "unused")  # type: ignore[arg-type]
        running.outputs = wait_for(started, COMMAND_TIMEOUT_SECONDS, "local up to start", interval=0.5)
        return running

    def stop(self) -> str:
        """Ctrl-C; everything it printed once it has ended (killed if it does not, 90 s on)."""
        return self.finish(90, interrupt=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    running = Terminal(tmp_path)
    yield running
    running.stop()
    assert not local_processes(str(tmp_path))


def test_the_terminal_shows_each_jobs_start_and_end_and_the_warnings_not_every_log_line(terminal: Terminal) -> None:
    stack = terminal.ready()
    # GIVEN two uploads, one that completes and one whose header fails it, and a request refused
    stack.upload("uploads/good.csv", csv_bytes(["name", "mail"], [[f"U{n}", f"u{n}@example.com"] for n in range(50)]))
    stack.upload("uploads/bad.csv", b"a,b\n1,2\n")
    forged = boto3.client(
        "s3",
        endpoint_url=stack.outputs["awsEndpointUrl"],
        region_name=stack.outputs["awsRegion"],
        aws_access_key_id=stack.outputs["awsAccessKeyId"],
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError):
        forged.list_buckets()
    wait_for(lambda: terminal.text().count(" finished: ") == 2, 180, "both jobs to end on the terminal")

    # THEN the terminal has a line for each job's start and end and one for the refusal …
    shown = terminal.text().split("Ctrl-C stops everything.", 1)[1]
    lines = [line for line in shown.splitlines() if line.strip()]
    assert (
        len([line for line in lines if re.fullmatch(r"job [0-9a-f]{32} started: uploads/\w+\.csv \(\S+ bytes\)", line)])
        == 2
    )
    assert any(
        re.fullmatch(r"job [0-9a-f]{32} finished: COMPLETE: 50 rows, 50 valid, 0 rejected", line) for line in lines
    )
    assert any(re.fullmatch(r"job [0-9a-f]{32} finished: FAILED: incomplete header: .*", line) for line in lines)
    assert any(line.startswith("[iam] refused a request signed with") for line in lines)
    # … and none of the stream's routine lines (a warning the machine's load may cause would be shown,
    # rightly: the count of lines is not asserted).
    routine = ("START RequestId:", "END RequestId:", "REPORT RequestId:", '"level":"INFO"')
    assert not [line for line in lines if any(mark in line for mark in routine)], shown
    # … and every line is still in the log files.
    assert "START RequestId:" in stack.log("producer") and "REPORT RequestId:" in stack.log("worker")
    assert '"message":"chunk written"' in stack.log("worker")


# --- 9: the banner's next steps, and its line for every log line, work when copied -------------------


def _hinted(banner: str, marker: str) -> list[str]:
    """The command lines the banner prints after the line holding `marker` (indented, up to a blank line)."""
    after = banner.split(marker, 1)[1].split("\n", 1)[1]
    return [line.strip() for line in after.split("\n\n", 1)[0].splitlines()]


def _run_hint(line: str, state_root: Path) -> LocalStackProcess:
    """Start the stack with a command line the banner printed, exactly as printed; returns once ready."""
    assert str(state_root) in line  # the hint keeps this test's state folder: it runs no stack of the user's
    console = state_root / "hinted.txt"
    with console.open("wb") as sink:
        process = subprocess.Popen(shlex.split(line), cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT)
    return wait_until_started(LocalStackProcess(process, "dev", state_root, console), COMMAND_TIMEOUT_SECONDS, line)


# --- 5 and 6: a port in use names the option to change, as a command that works; a port out of range --


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 some other program listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def port_error(stderr: str) -> str:
    """The one line that says why start-up stopped (after the line that says it starts)."""
    # make's own line says the recipe failed: `make: ***`, or `make[1]: ***` under another make (`make test`)
    theirs = re.compile(r"local mode: starting|make(\[\d+\])?: \*\*\* ")
    lines = [line for line in stderr.splitlines() if not theirs.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: port "), stderr
    assert "[Errno" not in lines[0]
    return lines[0]


def start_hint(error: str) -> str:
    """The command line a port-in-use error says to run instead."""
    return error.split("(0: any free one): ", 1)[1]


@pytest.mark.parametrize(("option", "what"), [("--port", "the API"), ("--emulator-port", "the emulator")])
def test_a_port_in_use_says_which_option_sets_it_as_a_command_that_works(
    tmp_path: Path, option: str, what: str
) -> None:
    with taken_port() as port:
        refused = ingest("local", "up", "--port", "0", option, str(port), "--state-dir", str(tmp_path))
    assert refused.returncode == 2, refused.stderr
    error = port_error(refused.stderr)
    assert error.startswith(f"error: port {port} on 127.0.0.1 is in use: {what} cannot listen there;")

    hint = start_hint(error)

    assert f"{option} 0" in hint
    assert stop_local(_run_hint(hint, tmp_path)) == 0
    assert not local_processes(str(tmp_path))


def test_under_make_up_a_port_in_use_says_make_up_port_n(tmp_path: Path) -> None:
    # `make up` as the user runs it, but never (re)building the venv the tests run in (`-o FILE` marks
    # it old: "the file itself will not be remade",
    # https://www.gnu.org/software/make/manual/html_node/Avoiding-Compilation.html).
    make = ["make", "--no-print-directory", "-o", ".venv/.installed"]
    with taken_port() as port:
        refused = subprocess.run(
            [*make, "up", f"PORT={port}", f"ARGS=--state-dir {tmp_path}"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
    assert refused.returncode != 0

    hint = start_hint(port_error(refused.stderr))  # make adds a line of its own: the recipe failed

    assert hint == f"make up PORT=0 ARGS='--state-dir {tmp_path}'"
    started = subprocess.Popen(
        [*make, *shlex.split(hint)[1:]],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: (tmp_path / "dev" / "outputs.json").exists(), COMMAND_TIMEOUT_SECONDS, "make up to start")
    finally:
        os.killpg(started.pid, signal.SIGTERM)  # make and the command it runs, as Ctrl-C reaches both
        started.communicate(timeout=60)
    assert not local_processes(str(tmp_path))


@pytest.mark.parametrize("option", ["--port", "--emulator-port"])
def test_a_port_out_of_range_is_one_line_and_exit_2(tmp_path: Path, option: str) -> None:
    refused = ingest("local", "up", option, "99999", "--state-dir", str(tmp_path))

    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: "), refused.stderr
    assert "'99999': expected a port from 0 (any free one) to 65535" in refused.stderr
