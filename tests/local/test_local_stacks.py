"""Local mode as a command: several stacks at once, least privilege enforced, clear failures, clean exits."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from infra.config import ConfigError, load_config
from local.project import PROJECT, stack_settings
from tests.local.support import (
    REPO_ROOT,
    LocalStackProcess,
    csv_bytes,
    http,
    local_processes,
    signed_headers,
    start_local,
    stop_local,
    wait_for,
)

pytestmark = pytest.mark.long(seconds=290)

ROWS = csv_bytes(["name", "mail", "phone"], [["Ann", "ann@example.com", ""], ["Bob", "bob@example.com", ""]])


def run_command(*args: str, cwd: Path = REPO_ROOT, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


# --- least privilege: one statement removed, and the function that needed it is refused -------------

# service → (the statement revoked, the function that needs it, the action refused)
# service: (the statement revoked, the function refused, the action, the error the function meets, as
# AWS reports it: a HEAD request's refusal has no body, so S3's is a bare 403, which the producer
# names when it refuses the event).
REVOKED = {
    "s3": ("producer=ReadUploads", "producer", "s3:GetObject", "not readable (HeadObject answered 403)"),
    "sqs": ("producer=SendChunks", "producer", "sqs:SendMessage", "(AccessDenied) when calling the SendMessageBatch"),
    "dynamodb": (
        "worker=WriteUsers",
        "worker",
        "dynamodb:BatchGetItem",  # the first call of a chunk's write: its stored versions
        "(AccessDeniedException) when calling the BatchGetItem",
    ),
}


@pytest.fixture(scope="module")
def revoked_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalStackProcess]]:
    root = tmp_path_factory.mktemp("revoked")
    with ThreadPoolExecutor(len(REVOKED)) as pool:
        futures = {
            service: pool.submit(start_local, root / service, "--revoke", revoke, "--retry-delays", "1,2")
            for service, (revoke, _, _, _) in REVOKED.items()
        }
        stacks = {service: future.result() for service, future in futures.items()}
    yield stacks
    for running in stacks.values():
        stop_local(running)


@pytest.mark.parametrize("service", sorted(REVOKED))
def test_a_function_without_one_statement_is_refused_by_that_service(
    revoked_stacks: dict[str, LocalStackProcess], service: str
) -> None:
    running = revoked_stacks[service]
    _, function, action, error = REVOKED[service]
    running.upload("uploads/least-privilege.csv", ROWS)

    def refused() -> bool:
        denials = [line for line in running.log("iam").splitlines() if f"not authorized to perform: {action}" in line]
        return any(f"{function}-role" in line for line in denials)

    wait_for(refused, 60, f"the emulator to refuse the {function}'s {action}", interval=0.5)
    # … and the function met the refusal: its invocation failed with AWS's error.
    wait_for(lambda: error in running.log(function), 30, f"the {function} to log AWS's refusal")


# --- two stacks at once, and the API's IAM mode ---------------------------------------------------


@pytest.fixture(scope="module")
def dev_and_prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStackProcess, LocalStackProcess]]:
    root = tmp_path_factory.mktemp("two-stacks")
    with ThreadPoolExecutor(2) as pool:
        dev, prod = pool.map(lambda stack: start_local(root, stack=stack), ["dev", "prod"])
    yield dev, prod
    for running in (dev, prod):
        stop_local(running)


def test_dev_and_prod_run_at_once_on_their_own_ports(dev_and_prod: tuple[LocalStackProcess, LocalStackProcess]) -> None:
    dev, prod = dev_and_prod
    assert dev.outputs["apiUrl"] != prod.outputs["apiUrl"]
    assert dev.outputs["awsEndpointUrl"] != prod.outputs["awsEndpointUrl"]
    assert dev.api("/users?limit=1").status == 200
    for running in (dev, prod):
        printed = run_command(
            "local", "outputs", "--stack", running.stack, "--json", "--state-dir", str(running.state_root)
        )
        assert printed.returncode == 0, printed.stderr
        assert '"apiUrl": "' + running.outputs["apiUrl"] in printed.stdout


def test_each_running_stack_has_an_administrator_secret_of_its_own(
    dev_and_prod: tuple[LocalStackProcess, LocalStackProcess],
) -> None:
    dev, prod = dev_and_prod
    assert dev.outputs["awsAccessKeyId"] == prod.outputs["awsAccessKeyId"]
    assert dev.outputs["awsSecretAccessKey"] != prod.outputs["awsSecretAccessKey"]


def test_prod_api_in_iam_mode_wants_a_signature_of_an_identity_allowed_to_invoke(
    dev_and_prod: tuple[LocalStackProcess, LocalStackProcess],
) -> None:
    _, prod = dev_and_prod
    invoke = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/v1/GET/users"}
    analyst = prod.iam_user("analyst", invoke).credentials
    credentials = Credentials(analyst.access_key_id, analyst.secret_access_key)
    region = prod.outputs["awsRegion"]

    def signed(method: str, path: str) -> int:
        url = prod.outputs["apiUrl"] + path
        return http(method, url, signed_headers(credentials, "execute-api", region, method, url, None)).status

    assert prod.api("/users", key=None).status == 403
    assert signed("GET", "/users") == 200
    assert signed("GET", "/jobs/" + "0" * 32) == 403  # signed, but the policy allows GET /users only


def test_outputs_of_a_stack_that_is_not_running_exit_non_zero(tmp_path: Path) -> None:
    printed = run_command("local", "outputs", "--stack", "dev", "--state-dir", str(tmp_path))
    assert printed.returncode == 1
    assert "not running" in printed.stderr


# --- failures at start-up: clear, non-zero, nothing left behind -------------------------------------


def _fails_cleanly(state: Path, *args: str, cwd: Path = REPO_ROOT) -> str:
    printed = run_command("local", "up", "--port", "0", "--state-dir", str(state), *args, cwd=cwd)
    assert printed.returncode == 2, printed.stdout + printed.stderr
    assert not local_processes(str(state))
    assert not (state / "dev" / "outputs.json").exists()
    return printed.stderr


def test_an_unknown_stack_is_named_with_the_stacks_there_are(tmp_path: Path) -> None:
    error = _fails_cleanly(tmp_path, "--stack", "staging")
    assert "no stack 'staging'" in error and "dev" in error and "prod" in error


def test_an_invalid_setting_stops_start_up_with_the_programs_own_message(tmp_path: Path) -> None:
    error = _fails_cleanly(tmp_path, "--set", "workerTimeoutSeconds=0")
    # What the program's own validation says of that setting, as `pulumi up` would print it.
    settings = {**stack_settings("dev"), f"{PROJECT}:workerTimeoutSeconds": "0"}
    with pytest.raises(ConfigError) as programs:
        load_config(lambda key: settings.get(f"{PROJECT}:{key}"))
    assert f"error: {programs.value}" in error


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        printed = run_command("local", "up", "--port", str(port), "--state-dir", str(tmp_path))
    assert printed.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in printed.stderr
    assert "--port" in printed.stderr  # what to do about it
    assert not local_processes(str(tmp_path))


def finished(process: subprocess.Popen[str], timeout: float) -> tuple[int | None, str]:
    """The process's exit code and stderr once it ends within `timeout`; (None, …) if it had to be
    stopped (SIGTERM, then SIGKILL): a test that fails must leave nothing running."""
    try:
        _, stderr = process.communicate(timeout=timeout)
        return process.returncode, stderr
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        return None, stderr


# How long `local up` may take to end after an interrupt: its own bound on stopping (20 s,
# `STOP_TIMEOUT_SECONDS`) and a loaded machine's slowness besides.
INTERRUPTED_EXIT_SECONDS = 90

# `python -m ingest ARGS` that sends itself SIGINT at one point of start-up (its first argument), as
# Ctrl-C may land anywhere. "pulumi": inside the Pulumi engine's asyncio loop (the command's only
# one), in the callback that hands an RPC's result back to a resource's registration: the
# KeyboardInterrupt dropped the callback, and the engine then waited for that registration for ever
# (seen: `local up` alive 8 minutes after Ctrl-C, in `run_program`). "warm": while the functions'
# first processes start.
INTERRUPTING_AT = textwrap.dedent(
    """
    import asyncio.futures, signal, sys
    import local.functions
    from ingest.cli import main

    def interrupting(original, at_call):
        calls = 0
        def wrapper(*args, **kwargs):
            nonlocal calls
            calls += 1
            if calls == at_call:
                print("interrupting", file=sys.stderr, flush=True)
                signal.raise_signal(signal.SIGINT)
            return original(*args, **kwargs)
        return wrapper

    where = sys.argv.pop(1)
    if where == "pulumi":
        asyncio.futures._copy_future_state = interrupting(asyncio.futures._copy_future_state, 20)
    elif where == "warm":
        local.functions.FunctionHost.warm = interrupting(local.functions.FunctionHost.warm, 1)
    sys.exit(main(sys.argv[1:]))
    """
)


def assert_interrupted_start_up_ended(process: subprocess.Popen[str], state_root: Path) -> str:
    """`local up`, interrupted during start-up, exits 130 within a bounded time, leaving no process
    and no state file; returns its stderr. Whatever happens, nothing is left running."""
    try:
        code, stderr = finished(process, INTERRUPTED_EXIT_SECONDS)
        assert code is not None, f"local up still ran {INTERRUPTED_EXIT_SECONDS} s after the interrupt:\n{stderr}"
        assert code == 130, stderr
        assert "interrupted during start-up" in stderr
        # Its functions' processes end with it (killed by `stop()`, or at their pipe's end).
        wait_for(lambda: not local_processes(str(state_root)), 30, "every process of the stack to end")
        assert not (state_root / "dev" / "outputs.json").exists()
        return stderr
    finally:
        for pid in local_processes(str(state_root)):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("where", ["pulumi", "warm"])
def test_an_interrupt_inside_start_up_ends_local_up_and_all_it_started(tmp_path: Path, where: str) -> None:
    command = [sys.executable, "-c", INTERRUPTING_AT, where, "local", "up", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--state-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    stderr = assert_interrupted_start_up_ended(process, tmp_path)

    assert "interrupting" in stderr  # the interrupt came where it was meant to


def test_ctrl_c_during_start_up_stops_everything(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "ingest", "local", "up", "--port", "0", "--state-dir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait for start-up to begin (imports take seconds on a fresh clone, which compiles every module),
    # then interrupt it inside: the emulator starting, the program deploying.
    assert process.stderr is not None
    first = process.stderr.readline()
    assert "starting stack 'dev'" in first, first
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)

    assert_interrupted_start_up_ended(process, tmp_path)


# --- the code itself: a function that does not import, and a handler edited while running ----------


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The project's tracked files in a folder of their own, to edit without touching the checkout."""
    copy = tmp_path / "repo"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    for name in tracked.stdout.splitlines():
        source = REPO_ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def test_a_function_that_does_not_import_stops_start_up_naming_it(repo_copy: Path) -> None:
    worker = repo_copy / "handlers" / "worker" / "app.py"
    source = worker.read_text()
    future = "from __future__ import annotations\n"
    worker.write_text(source.replace(future, future + "import a_module_the_archive_lacks\n", 1))

    error = _fails_cleanly(repo_copy / ".local", cwd=repo_copy)

    assert "csv-ingest-worker" in error and "does not import" in error
    assert "a_module_the_archive_lacks" in error


def test_a_handler_edited_while_running_takes_effect_on_the_next_invocation(repo_copy: Path) -> None:
    running = start_local(repo_copy / ".local", cwd=repo_copy)
    try:
        before = running.api("/users/nobody@example.com")
        assert before.status == 404
        query = repo_copy / "handlers" / "query" / "app.py"
        text = query.read_text()
        missing = 'f"no {ROUTES.noun} with that {KEY.attribute}"'  # the 404 of an absent item
        assert missing in text
        query.write_text(text.replace(missing, '"no such user here"'))

        after = wait_for(
            lambda: (
                (r := running.api("/users/nobody@example.com")).status == 404
                and "no such user here" in str(r.body)
                and r
            ),
            30,
            "the edited handler to answer",
        )
        assert after.status == 404
    finally:
        stop_local(running)


def test_stopping_leaves_no_process_behind(tmp_path: Path) -> None:
    running = start_local(tmp_path)
    try:
        running.upload("uploads/one.csv", ROWS)
        wait_for(lambda: len(local_processes(str(tmp_path))) > 1, 30, "functions to start")
    except BaseException:
        stop_local(running)  # a failure here must not leave the stack running either
        raise

    assert stop_local(running) == 0
    assert not local_processes(str(tmp_path))
