"""The function host runs functions as Lambda does: from their archive, isolated, warm, bounded in time.

Runtime mechanics use a throwaway handler package built into an archive under tmp_path (one module
whose behaviour the event picks); one test runs the real query archive.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import infra.packaging
import local.functions
from handlers.common.schema import DEFAULT_SCHEMA
from infra.config import load_config
from infra.packaging import FunctionArchive, PackagingError, build_archive, locked_versions
from local.emulator import Faults, KillFault, KillOrder
from local.functions import CodeSource, FunctionHost, HostClosed, InvocationResult
from local.netns import refusal
from local.project import PROJECT, stack_settings
from local.registry import FunctionSpec
from local.runtimes import SDK_LOCK, sdk_folder
from tests.local.support import UNSHARE_REFUSED, refusing_unshare

REGION = "eu-west-1"
PACKAGE = "handlers_local_test"
HANDLER = f"{PACKAGE}.app.handler"
# The runtime the program declares for dev.
RUNTIME = load_config(lambda key: stack_settings("dev").get(f"{PROJECT}:{key}")).runtime
EVENTS = Path(__file__).resolve().parents[1] / "events"

# One test handler; the event's "action" picks what it does.
APP = """
import os, socket, sys, time

VERSION = "v1"
invocations = 0


def handler(event, context):
    global invocations
    invocations += 1
    action = event.get("action", "count")
    print(f"running {action}")
    if action == "count":
        return {"invocations": invocations, "pid": os.getpid(), "key": os.environ["AWS_ACCESS_KEY_ID"]}
    if action == "sleep":
        time.sleep(event["seconds"])
        return {"pid": os.getpid(), "key": os.environ["AWS_ACCESS_KEY_ID"]}
    if action == "context":
        return {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
            "identity": context.identity,
            "custom": None if context.client_context is None else context.client_context.custom,
        }
    if action == "raise":
        raise ValueError("no such thing")
    if action == "exit":
        print("about to exit")
        os._exit(3)
    if action == "crash":
        os.kill(os.getpid(), 11)
    if action == "unserialisable":
        return {"when": object()}
    if action == "spawn":
        import subprocess

        child = subprocess.Popen(["sleep", "60"])
        print(f"started {child.pid}")
        if event.get("then_sleep"):
            time.sleep(event["then_sleep"])
        return child.pid
    if action == "environment":
        home = os.environ["HOME"]
        return {"environ": dict(os.environ), "path": sys.path, "home": os.listdir(home), "cwd": os.getcwd()}
    if action == "import":
        module = __import__(event["module"])
        return getattr(module, "__file__", None)
    if action == "connect":
        connection = socket.create_connection((event["host"], event["port"]), timeout=2)
        connection.close()
        return "connected"
    if action == "raw-connect":
        with socket.socket() as raw:
            raw.settimeout(2)
            raw.connect((event["host"], event["port"]))
        return "connected"
    if action == "boto3":
        import boto3
        from botocore.config import Config

        client = boto3.client("sqs", endpoint_url=event["endpoint"], config=Config(retries={"max_attempts": 1}))
        client.list_queues()
        return "listed"
    if action == "version":
        return VERSION
    if action == "interpreter":
        import boto3, botocore

        return {"python": list(sys.version_info[:2]), "boto3": boto3.__version__, "botocore": botocore.__file__}
    if action == "subprocess-connect":
        import subprocess

        probe = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)"
        command = [sys.executable, "-c", probe + "; print('connected')", event["host"], str(event["port"])]
        done = subprocess.run(command, capture_output=True, text=True)
        return done.stdout.strip() or done.stderr.strip().splitlines()[-1]
    if action == "allocate":
        held = b"\x01" * (event["megabytes"] << 20)  # every page written: resident, not only reserved
        size = len(held) >> 20
        del held  # a spike: gone before the handler returns
        time.sleep(event.get("then_sleep", 0))
        return size
    raise AssertionError(action)
"""


def _sha256(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


@dataclass
class Code:
    """A handler package in a folder of its own, and the archives built from it."""

    root: Path
    builds: int = 0
    refusal: str | None = None
    last: FunctionArchive | None = None
    """When set, builds fail with this PackagingError, as the packager refuses a stray file."""

    def write(self, app: str) -> None:
        package = self.root / PACKAGE
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "app.py").write_text(app)

    def build(self, _package: str, _runtime: str, build_dir: Path) -> FunctionArchive:
        if self.refusal is not None:
            raise PackagingError(self.refusal)
        self.builds += 1
        build_dir.mkdir(exist_ok=True)
        target = build_dir / f"build-{self.builds}.zip"
        files = sorted(self.root.rglob("*.py"))
        with zipfile.ZipFile(target, "w") as archive:
            for path in files:
                archive.writestr(zipfile.ZipInfo(path.relative_to(self.root).as_posix()), path.read_bytes())
        self.last = FunctionArchive(target, _sha256(target), tuple(p.name for p in files))
        return self.last


@dataclass
class Log:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, name: str, line: str) -> None:
        self.lines.append((name, line))

    def text(self) -> list[str]:
        return [line for _, line in self.lines]


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class CredentialCounter:
    """Issues new credentials on each call, as the emulator's STS would per process."""

    def __init__(self) -> None:
        self.issued = 0
        self._lock = threading.Lock()

    def __call__(self) -> Credentials:
        with self._lock:
            self.issued += 1
            return Credentials(f"ASIALOCAL{self.issued:04d}", "secret", f"token-{self.issued}")


def _spec(
    archive: Path,
    *,
    handler: str = HANDLER,
    timeout: int = 3,
    runtime: str = RUNTIME,
    memory_mb: int = 256,
    **environment: str,
) -> FunctionSpec:
    return FunctionSpec(
        name="test-fn",
        arn=f"arn:aws:lambda:{REGION}:123456789012:function:test-fn",
        role_arn="arn:aws:iam::123456789012:role/test-fn",
        handler=handler,
        runtime=runtime,
        archive=archive,
        code_sha256=_sha256(archive),
        environment=environment,
        timeout_seconds=timeout,
        memory_mb=memory_mb,
        log_group="/aws/lambda/test-fn",
        reserved_concurrency=None,
    )


@dataclass
class Harness:
    code: Code
    log: Log
    credentials: CredentialCounter
    work_dir: Path
    hosts: list[FunctionHost] = field(default_factory=list)

    def host(
        self,
        *,
        app: str = APP,
        timeout: int = 3,
        max_concurrency: int = 10,
        endpoint_url: str = "http://127.0.0.1:9",
        kills: Callable[[], KillOrder | None] | None = None,
        runtime: str = RUNTIME,
        memory_mb: int = 256,
    ) -> FunctionHost:
        self.code.write(app)
        archive = self.code.build(PACKAGE, runtime, self.code.root.parent).path
        spec = _spec(archive, timeout=timeout, runtime=runtime, memory_mb=memory_mb, TABLE="users-table")
        host = FunctionHost(
            spec,
            credentials=self.credentials,
            endpoint_url=endpoint_url,
            region=REGION,
            log=self.log,
            work_dir=self.work_dir,
            max_concurrency=max_concurrency,
            source=CodeSource(root=self.code.root, build=self.code.build),
            kills=kills,
        )
        self.hosts.append(host)
        return host


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(Code(tmp_path / "src"), Log(), CredentialCounter(), tmp_path / "state")
    yield harness
    for host in harness.hosts:
        host.close()


def _gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie its new parent has not reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def _ends(pid: int) -> bool:
    """A process that is not our child dies asynchronously after SIGKILL: wait (boundedly) for it."""
    stopped = threading.Event()
    for _ in range(500):
        if _gone(pid):
            return True
        stopped.wait(0.01)
    return False


def _concurrently(host: FunctionHost, events: list[dict[str, Any]]) -> list[InvocationResult]:
    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(host.invoke, events))


def test_a_warm_process_keeps_module_state(harness: Harness) -> None:
    host = harness.host()
    results = [host.invoke({"action": "count"}) for _ in range(3)]
    assert [r.payload["invocations"] for r in results] == [1, 2, 3]
    assert len({r.payload["pid"] for r in results}) == 1
    assert [r.cold_start for r in results] == [True, False, False]
    assert harness.credentials.issued == 1


def test_log_has_lambdas_lines_around_the_functions_own(harness: Harness) -> None:
    host = harness.host()
    first = host.invoke({"action": "count"}, request_id="req-1")
    host.invoke({"action": "count"}, request_id="req-2")
    assert first.request_id == "req-1"
    assert {name for name, _ in harness.log.lines} == {"test-fn"}
    lines = harness.log.text()
    start, end = lines.index("START RequestId: req-1 Version: $LATEST"), lines.index("END RequestId: req-1")
    assert lines[start + 1 : end] == ["running count"]
    reports = [line for line in lines if line.startswith("REPORT")]
    assert re.fullmatch(
        r"REPORT RequestId: req-1\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB"
        r"\tMax Memory Used: [1-9]\d* MB\tInit Duration: [\d.]+ ms",
        reports[0],
    )
    assert "Init Duration" not in reports[1]  # warm


def test_context_is_lambdas(harness: Harness) -> None:
    host = harness.host(timeout=3)
    result = host.invoke({"action": "context"}, request_id="req-ctx", client_context={"custom": {"k": "v"}})
    context = result.payload
    assert context["function_name"] == "test-fn"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == host.spec.arn
    assert int(context["memory_limit_in_mb"]) == 256
    assert context["aws_request_id"] == "req-ctx"
    assert context["log_group_name"] == "/aws/lambda/test-fn"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", context["log_stream_name"])
    assert 1000 < context["remaining"] <= 3000  # the deadline is the start plus the 3 s timeout
    assert context["identity"] is None
    assert context["custom"] == {"k": "v"}


def test_all_busy_starts_a_new_process_with_fresh_credentials(harness: Harness) -> None:
    host = harness.host()
    results = _concurrently(host, [{"action": "sleep", "seconds": 0.5}] * 2)
    assert all(r.ok and r.cold_start for r in results)
    assert len({r.payload["pid"] for r in results}) == 2
    assert harness.credentials.issued == 2
    assert len({r.payload["key"] for r in results}) == 2  # each process has its own credentials


def test_at_most_max_concurrency_processes_run(harness: Harness) -> None:
    host = harness.host(max_concurrency=2)
    seen_busy: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen_busy.append(host.busy)
            stop.wait(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = _concurrently(host, [{"action": "sleep", "seconds": 0.3}] * 5)
    finally:
        stop.set()
        watcher.join()
    assert all(r.ok for r in results)
    assert len({r.payload["pid"] for r in results}) == 2  # the other three waited for a warm one
    assert sum(r.cold_start for r in results) == 2
    assert max(seen_busy) == 2
    assert host.busy == 0


def test_a_timed_out_invocation_is_killed_and_the_next_runs_fresh(harness: Harness) -> None:
    host = harness.host(timeout=1)
    before = host.invoke({"action": "count"})
    result = host.invoke({"action": "sleep", "seconds": 30}, request_id="req-slow")
    assert result.timed_out and not result.ok and result.payload is None
    assert result.error is not None and result.error["errorType"] == "Sandbox.Timedout"
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z req-slow Task timed out after 1\.00 seconds"
    assert re.fullmatch(pattern, result.error["errorMessage"])
    assert result.error["errorMessage"] in harness.log.text()
    assert _gone(before.payload["pid"])
    after = host.invoke({"action": "count"})
    assert after.ok and after.cold_start
    assert after.payload["invocations"] == 1
    assert after.payload["pid"] != before.payload["pid"]


def test_a_raised_error_has_lambdas_shape_and_the_process_stays_warm(harness: Harness) -> None:
    host = harness.host()
    failed = host.invoke({"action": "raise"})
    assert not failed.ok and not failed.timed_out and failed.payload is None
    assert failed.error is not None
    assert failed.error["errorType"] == "ValueError"
    assert failed.error["errorMessage"] == "no such thing"
    assert any('raise ValueError("no such thing")' in frame for frame in failed.error["stackTrace"])
    assert "[ERROR] ValueError: no such thing" in harness.log.text()
    after = host.invoke({"action": "count"})
    assert not after.cold_start and after.payload["invocations"] == 2


def test_a_process_that_exits_is_reported_and_replaced(harness: Harness) -> None:
    host = harness.host()
    pid = host.invoke({"action": "count"}).payload["pid"]
    exited = host.invoke({"action": "exit"}, request_id="req-exit")
    assert exited.error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: req-exit Error: Runtime exited with error: exit status 3",
        "stackTrace": [],
    }
    lines = harness.log.text()
    assert lines.index("about to exit") < lines.index("END RequestId: req-exit")
    assert _gone(pid)
    after = host.invoke({"action": "count"})
    assert after.ok and after.cold_start and after.payload["pid"] != pid


def test_a_process_that_crashes_is_reported_with_its_signal(harness: Harness) -> None:
    host = harness.host()
    crashed = host.invoke({"action": "crash"}, request_id="req-crash")
    assert crashed.error is not None and crashed.error["errorType"] == "Runtime.ExitError"
    assert crashed.error["errorMessage"] == (
        "RequestId: req-crash Error: Runtime exited with error: signal: segmentation fault"
    )
    assert host.invoke({"action": "count"}).ok


def test_a_kill_fault_kills_the_process_mid_invocation_as_lambda_ends_one_out_of_memory(harness: Harness) -> None:
    faults = Faults()
    faults.add(KillFault("test-fn", after_seconds=0.3, times=1))
    host = harness.host(kills=lambda: faults.kill_order(host.spec.name))
    pid = host.invoke({"action": "count"}).payload["pid"]  # spared: it ends well before 0.3 s

    killed = host.invoke({"action": "sleep", "seconds": 20}, request_id="req-killed")

    assert killed.error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: req-killed Error: Runtime exited with error: signal: killed",
        "stackTrace": [],
    }
    assert not killed.timed_out and _gone(pid)
    assert faults.applied() == [(KillFault("test-fn", after_seconds=0.3, times=1), 1)] and faults.list() == []
    after = host.invoke({"action": "sleep", "seconds": 0.5})  # the fault is spent: nothing more is killed
    assert after.ok and after.cold_start and after.payload["pid"] != pid


def test_invocations_shorter_than_a_kill_fault_are_spared_and_it_waits_for_one_that_is_not(harness: Harness) -> None:
    faults = Faults()
    faults.add(KillFault("test-fn", after_seconds=1.0, times=1))
    host = harness.host(kills=lambda: faults.kill_order(host.spec.name))

    quick = [host.invoke({"action": "count"}) for _ in range(3)]
    slow = host.invoke({"action": "sleep", "seconds": 20})

    assert [r.payload["invocations"] for r in quick] == [1, 2, 3]  # one warm process, never killed
    assert slow.error is not None and slow.error["errorMessage"].endswith("signal: killed")
    assert faults.applied()[0][1] == 1


def test_a_result_that_is_not_json_is_a_marshal_error(harness: Harness) -> None:
    host = harness.host()
    result = host.invoke({"action": "unserialisable"})
    assert result.error is not None and result.error["errorType"] == "Runtime.MarshalError"
    assert result.error["errorMessage"].startswith("Unable to marshal response: Object of type object")
    assert not host.invoke({"action": "count"}).cold_start  # the process stays warm


@pytest.mark.parametrize(
    ("app", "error_type", "message"),
    [
        ("import os\nTABLE = os.environ['NO_SUCH_SETTING']\n", "KeyError", "'NO_SUCH_SETTING'"),
        ("def handle(event, context):\n    return 1\n", "Runtime.HandlerNotFound",
         f"Handler 'handler' missing on module '{PACKAGE}.app'"),
        ("def handler(event, context) return 1\n", "Runtime.UserCodeSyntaxError", None),
    ],
)  # fmt: skip
def test_an_init_failure_is_reported_with_lambdas_error_type(
    harness: Harness, app: str, error_type: str, message: str | None
) -> None:
    host = harness.host(app=app)
    result = host.invoke({})
    assert result.error is not None and result.error["errorType"] == error_type
    if message is not None:
        assert result.error["errorMessage"] == message
    assert any(line.startswith(f"[ERROR] {error_type}: ") for line in harness.log.text())
    assert host.pids == []


def test_warm_runs_init_ahead_and_the_first_invocation_still_reports_it(harness: Harness) -> None:
    host = harness.host()
    assert host.warm() is None
    assert len(host.pids) == 1 and harness.credentials.issued == 1
    assert host.warm() is None  # one is up already
    first = host.invoke({"action": "count"})
    assert first.cold_start and first.payload["pid"] == host.pids[0]
    assert "Init Duration" in next(line for line in harness.log.text() if line.startswith("REPORT"))


def test_warm_returns_an_import_error_as_text(harness: Harness) -> None:
    host = harness.host(app="import pulumi\n\ndef handler(event, context):\n    return 1\n")
    text = host.warm()
    assert text is not None
    assert text.startswith(f"Runtime.ImportModuleError: Unable to import module '{PACKAGE}.app'")
    assert "Traceback (most recent call last):" in text and "import pulumi" in text
    assert host.pids == [] and host.busy == 0


@pytest.mark.parametrize("library", ["pulumi", "moto", "aws_lambda_powertools", "yaml"])
def test_a_library_the_archive_lacks_fails_to_import_as_on_lambda(harness: Harness, library: str) -> None:
    host = harness.host(app=f"import {library}\n\ndef handler(event, context):\n    return 1\n")
    result = host.invoke({})
    assert result.cold_start and result.error is not None
    assert result.error["errorType"] == "Runtime.ImportModuleError"
    assert result.error["errorMessage"] == f"Unable to import module '{PACKAGE}.app': No module named '{library}'"
    lines = harness.log.text()
    assert f"[ERROR] Runtime.ImportModuleError: {result.error['errorMessage']}" in lines
    assert any(line.startswith("INIT_REPORT") and "Runtime.ImportModuleError" in line for line in lines)
    assert host.pids == []  # the process exited; the next invocation tries init again


def test_the_runtime_provides_boto3_and_its_dependencies_only(harness: Harness) -> None:
    host = harness.host()
    for module in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six"):
        result = host.invoke({"action": "import", "module": module})
        assert result.ok, result.error
        # From the runtime's own SDK folder, not the venv's site-packages.
        assert Path(result.payload).is_relative_to(host.runtime.libraries), result.payload
    assert host.invoke({"action": "import", "module": "requests"}).error["errorType"] == "ModuleNotFoundError"


def test_a_function_runs_on_its_declared_runtimes_python_with_that_runtimes_sdk(harness: Harness) -> None:
    runtime = harness.host(runtime="python3.13").invoke({"action": "interpreter"})
    assert runtime.ok, runtime.error
    assert runtime.payload["python"] == [3, 13]
    # The SDK pinned for the runtime (local/runtime-sdk.lock), never the project venv's newer one.
    assert runtime.payload["boto3"] == locked_versions(SDK_LOCK)["boto3"] != importlib.metadata.version("boto3")
    assert Path(runtime.payload["botocore"]).is_relative_to(sdk_folder("python3.13"))


CGI_APP = "import cgi\n\ndef handler(event, context):\n    return cgi.__name__\n"


def test_a_module_python313_removed_fails_on_python313_as_on_lambda(harness: Harness) -> None:
    result = harness.host(app=CGI_APP, runtime="python3.13").invoke({})
    assert result.error is not None and result.error["errorType"] == "Runtime.ImportModuleError", result.error
    assert result.error["errorMessage"] == f"Unable to import module '{PACKAGE}.app': No module named 'cgi'"


def test_the_same_module_imports_on_python312(harness: Harness) -> None:
    result = harness.host(app=CGI_APP, runtime="python3.12").invoke({})
    assert result.ok, result.error
    assert result.payload == "cgi"


@pytest.mark.parametrize("runtime", ["python3.11", "python3.12", "python3.13"])
def test_the_bootstrap_runs_on_every_python_runtime(harness: Harness, runtime: str) -> None:
    host = harness.host(runtime=runtime)
    first, context = host.invoke({}), host.invoke({"action": "context"})
    assert first.ok and context.ok, (first.error, context.error)
    assert first.payload["invocations"] == 1 and context.payload["function_name"] == "test-fn"
    assert host.invoke({"action": "interpreter"}).payload["python"] == [3, int(runtime.rsplit(".", 1)[1])]


def _report(harness: Harness, request_id: str) -> str:
    return next(line for line in harness.log.text() if line.startswith(f"REPORT RequestId: {request_id}"))


@pytest.mark.parametrize("then_sleep", [0, 2], ids=["spike-then-return", "spike-then-work"])
def test_a_function_past_its_memory_fails_out_of_memory_as_lambda_ends_it(harness: Harness, then_sleep: int) -> None:
    host = harness.host(memory_mb=128)
    result = host.invoke({"action": "allocate", "megabytes": 400, "then_sleep": then_sleep})

    assert result.error is not None, result.payload
    assert result.error["errorType"] == "Runtime.OutOfMemory"
    assert (
        result.error["errorMessage"]
        == f"RequestId: {result.request_id} Error: Runtime exited with error: signal: killed"
    )
    report = _report(harness, result.request_id)
    assert "\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t" in report
    assert report.endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert host.pids == []  # the environment is gone: the next invocation starts a new one
    assert host.invoke({}).ok


def test_an_init_phase_past_the_functions_memory_fails_out_of_memory(harness: Harness) -> None:
    host = harness.host(
        app="HELD = b'\\x01' * (400 << 20)\n\ndef handler(event, context):\n    return 1\n", memory_mb=128
    )
    result = host.invoke({})

    assert result.error is not None and result.error["errorType"] == "Runtime.OutOfMemory", result
    assert result.error["errorMessage"] == "Runtime exited with error: signal: killed"
    assert any(
        line.startswith("INIT_REPORT") and line.endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
        for line in harness.log.text()
    ), harness.log.text()
    assert host.pids == []


def test_a_function_within_its_memory_is_unaffected(harness: Harness) -> None:
    host = harness.host(memory_mb=256)
    result = host.invoke({"action": "allocate", "megabytes": 100})

    assert result.ok and result.payload == 100, result.error
    used = int(re.search(r"Max Memory Used: (\d+) MB", _report(harness, result.request_id)).group(1))
    assert 100 < used < 256
    assert "Status" not in _report(harness, result.request_id)


def test_the_environment_is_lambdas_and_nothing_of_the_callers(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_PROFILE": "production",
        "AWS_ACCESS_KEY_ID": "AKIAUSERKEY",
        "AWS_SECRET_ACCESS_KEY": "user-secret",
        "AWS_DEFAULT_PROFILE": "production",
        "PYTHONPATH": "/somewhere",
        "USER_SETTING": "x",
    }.items():
        monkeypatch.setenv(name, value)
    host = harness.host(endpoint_url="http://127.0.0.1:4566")
    result = host.invoke({"action": "environment"})
    environ, path = result.payload["environ"], result.payload["path"]
    # LC_CTYPE is Python's own locale coercion where LANG's locale is not installed.
    assert set(environ) - {"LC_CTYPE"} == {
        "TABLE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_EXECUTION_ENV",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
        "LANG",
        "PATH",
        "HOME",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_EC2_METADATA_DISABLED",
    }
    assert environ["TABLE"] == "users-table"
    assert (environ["AWS_ACCESS_KEY_ID"], environ["AWS_SESSION_TOKEN"]) == ("ASIALOCAL0001", "token-1")
    assert environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert environ["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{RUNTIME}"
    assert environ["AWS_CONFIG_FILE"] == environ["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert Path(environ["HOME"]).is_relative_to(harness.work_dir) and result.payload["home"] == []
    # Task root first (it is the working directory too), then the runtime's libraries, then the stdlib.
    assert path[:2] == [environ["LAMBDA_TASK_ROOT"], environ["LAMBDA_RUNTIME_DIR"]]
    assert result.payload["cwd"] == environ["LAMBDA_TASK_ROOT"]
    assert Path(environ["LAMBDA_TASK_ROOT"]).is_relative_to(harness.work_dir)
    assert not any("site-packages" in entry for entry in path)


@pytest.mark.parametrize(
    ("action", "host_name"),
    [("connect", "10.255.255.1"), ("raw-connect", "10.255.255.1"), ("connect", "sqs.eu-west-1.amazonaws.com")],
)
def test_connections_off_this_machine_are_refused(harness: Harness, action: str, host_name: str) -> None:
    host = harness.host()
    result = host.invoke({"action": action, "host": host_name, "port": 443})
    assert result.error is not None
    assert result.error["errorType"] == "PermissionError"
    assert result.error["errorMessage"] == f"local mode: connections leave 127.0.0.1 only; refused {host_name}:443"


def test_boto3_aimed_at_aws_is_refused_and_the_log_says_why(harness: Harness) -> None:
    host = harness.host()
    result = host.invoke({"action": "boto3", "endpoint": "https://sqs.eu-west-1.amazonaws.com"})
    assert result.error is not None and result.error["errorType"] == "EndpointConnectionError"
    refusal = "[ERROR] local mode: connections leave 127.0.0.1 only; refused sqs.eu-west-1.amazonaws.com:443"
    assert refusal in harness.log.text()


def test_connections_to_the_emulator_pass(harness: Harness) -> None:
    with socket.create_server(("127.0.0.1", 0)) as emulator:
        port = emulator.getsockname()[1]
        host = harness.host(endpoint_url=f"http://127.0.0.1:{port}")
        assert host.invoke({"action": "raw-connect", "host": "127.0.0.1", "port": port}).payload == "connected"
        assert host.invoke({"action": "connect", "host": "localhost", "port": port}).payload == "connected"


def test_a_process_the_function_starts_reaches_the_emulator_and_nothing_else(harness: Harness) -> None:
    with socket.create_server(("127.0.0.1", 0)) as emulator, socket.create_server(("127.0.0.1", 0)) as other:
        emulator_port, other_port = emulator.getsockname()[1], other.getsockname()[1]
        host = harness.host(endpoint_url=f"http://127.0.0.1:{emulator_port}")

        def reach(host_name: str, port: int) -> str:
            result = host.invoke({"action": "subprocess-connect", "host": host_name, "port": port})
            assert result.ok, result.error
            return result.payload

        assert reach("127.0.0.1", emulator_port) == "connected"
        assert "Connection refused" in reach("127.0.0.1", other_port)  # another service of this machine
        assert "Network is unreachable" in reach("10.255.255.1", 80)  # off this machine: no route at all


@pytest.fixture
def namespace_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine as one whose OS refuses a network namespace: an `unshare` that refuses, first on PATH."""
    monkeypatch.setenv("PATH", f"{refusing_unshare(tmp_path / 'refusing')}{os.pathsep}{os.environ['PATH']}")
    refusal.cache_clear()  # the probe's outcome is kept for the process: probe this machine anew
    yield
    refusal.cache_clear()


def test_where_the_os_refuses_a_namespace_functions_run_and_their_own_connections_are_still_checked(
    harness: Harness, namespace_refused: None
) -> None:
    # The probe says so in one line, in the OS's own words, and what holds without a namespace.
    assert refusal() == (
        f"network: this machine refuses a network namespace ({UNSHARE_REFUSED}); a function's own connections"
        " off 127.0.0.1 are refused, but processes it starts can reach any address"
    )
    with socket.create_server(("127.0.0.1", 0)) as emulator, socket.create_server(("127.0.0.1", 0)) as other:
        emulator_port, other_port = emulator.getsockname()[1], other.getsockname()[1]
        host = harness.host(endpoint_url=f"http://127.0.0.1:{emulator_port}")

        reached = host.invoke({"action": "raw-connect", "host": "127.0.0.1", "port": emulator_port})
        own = host.invoke({"action": "connect", "host": "10.255.255.1", "port": 443})
        started = host.invoke({"action": "subprocess-connect", "host": "127.0.0.1", "port": other_port})

    assert reached.ok and reached.payload == "connected", reached.error  # the function runs, unconfined
    assert own.error is not None and own.error["errorType"] == "PermissionError"  # the audit hook still holds
    # … and, as the line says, a process the function starts is not held: it reaches another service here.
    assert started.ok and started.payload == "connected", started.error


def test_edited_code_runs_on_the_next_invocation(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local.functions, "RELOAD_CHECK_SECONDS", 0.0)
    host = harness.host()
    first = host.invoke({"action": "version"})
    old_pid = host.pids[0]
    assert first.payload == "v1"
    harness.code.write(APP.replace('VERSION = "v1"', 'VERSION = "v2-edited"'))
    second = host.invoke({"action": "version"})
    assert second.payload == "v2-edited" and second.cold_start
    assert _gone(old_pid)
    assert harness.code.last is not None
    assert f"test-fn: code changed, new archive {harness.code.last.sha256[:12]}" in harness.log.text()
    third = host.invoke({"action": "version"})
    assert third.payload == "v2-edited" and not third.cold_start


def test_a_build_that_fails_is_reported_on_the_invocation(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local.functions, "RELOAD_CHECK_SECONDS", 0.0)
    host = harness.host()
    assert host.invoke({"action": "version"}).ok
    harness.code.refusal = f"{PACKAGE}/notes.txt is not handler code"
    harness.code.write(APP + "\n# edited\n")
    failed = host.invoke({"action": "version"})
    assert failed.error is not None and failed.error["errorType"] == "Local.BuildFailed"
    assert "notes.txt is not handler code" in failed.error["errorMessage"]
    harness.code.refusal = None
    harness.code.write(APP.replace('VERSION = "v1"', 'VERSION = "fixed"'))
    assert host.invoke({"action": "version"}).payload == "fixed"


def test_a_syntax_error_in_edited_code_is_reported_not_raised(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local.functions, "RELOAD_CHECK_SECONDS", 0.0)
    host = harness.host()
    assert host.invoke({"action": "version"}).ok
    harness.code.write(APP + "\ndef broken(:\n")
    result = host.invoke({"action": "version"})
    assert result.error is not None and result.error["errorType"] == "Runtime.UserCodeSyntaxError"


def test_close_leaves_no_process_and_no_files(harness: Harness) -> None:
    host = harness.host()
    _concurrently(host, [{"action": "sleep", "seconds": 0.2}] * 3)
    pids = host.pids
    assert len(pids) == 3
    host.close()
    assert all(_gone(pid) for pid in pids)
    assert list(harness.work_dir.iterdir()) == []
    with pytest.raises(HostClosed):
        host.invoke({"action": "count"})


def test_processes_a_function_started_end_with_its_environment(harness: Harness) -> None:
    host = harness.host(timeout=1)
    timed_out = host.invoke({"action": "spawn", "then_sleep": 30})
    assert timed_out.timed_out
    started = [int(line.split()[1]) for line in harness.log.text() if line.startswith("started ")]
    assert len(started) == 1 and _ends(started[0])
    orphan = host.invoke({"action": "spawn"}).payload
    assert not _gone(orphan)  # a warm environment keeps what it started, as on Lambda
    host.close()
    assert _ends(orphan)


def test_close_ends_a_running_invocation(harness: Harness) -> None:
    host = harness.host(timeout=30)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(host.invoke, {"action": "sleep", "seconds": 30})
        while not host.pids:
            threading.Event().wait(0.01)
        pid = host.pids[0]
        host.close()
        result = running.result(timeout=5)
    assert result.error is not None and result.error["errorType"] == "Runtime.ExitError"
    assert _gone(pid)


def _api_event(path: str, query: dict[str, str] | None = None, resource: str = "/{proxy+}") -> dict[str, Any]:
    """API Gateway's proxy event for `path`, routed to `resource` (the function serves the route the
    gateway matched, so the two must agree as they do on AWS)."""
    event = json.loads((EVENTS / "api_gateway_rest.json").read_text())
    event["path"] = path
    event["resource"] = event["requestContext"]["resourcePath"] = resource
    event["requestContext"]["path"] = f"/v1{path}"
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = None if query is None else {k: [v] for k, v in query.items()}
    return event


@pytest.fixture(scope="module")
def query_archive(tmp_path_factory: pytest.TempPathFactory) -> FunctionArchive:
    return build_archive("query", RUNTIME, tmp_path_factory.mktemp("build"))


def test_the_real_query_archive_runs_in_the_isolated_runtime(
    query_archive: FunctionArchive, tmp_path: Path, unused_port: Callable[[], int]
) -> None:
    spec = _spec(
        query_archive.path,
        handler="handlers.query.app.handler",
        ITEMS_TABLE="users",
        SCHEMA=DEFAULT_SCHEMA.to_json(),
        JOBS_TABLE="jobs",
        JOBS_INDEX="recent-jobs",
    )
    log = Log()
    dead_endpoint = f"http://127.0.0.1:{unused_port()}"
    with FunctionHost(
        spec,
        credentials=CredentialCounter(),
        endpoint_url=dead_endpoint,
        region=REGION,
        log=log,
        work_dir=tmp_path,
    ) as host:
        unknown = host.invoke(_api_event("/nowhere"))
        bad_limit = host.invoke(_api_event("/users", {"limit": "0"}, resource="/users"))
        needs_dynamodb = host.invoke(_api_event("/jobs/" + "a" * 32, resource="/jobs/{jobId}"))
    assert unknown.ok and unknown.payload["statusCode"] == 404
    assert bad_limit.ok and bad_limit.payload["statusCode"] == 400
    # The table read went to AWS_ENDPOINT_URL (nothing listens there): a 500, not an import error.
    assert needs_dynamodb.ok and needs_dynamodb.payload["statusCode"] == 500
    assert any(dead_endpoint in line for line in log.text())
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def unused_port() -> Callable[[], int]:
    def pick() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    return pick


def test_editing_the_real_handlers_reloads_through_the_programs_packaging(
    query_archive: FunctionArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The program's packaging, pointed at a copy of handlers/ so that this test edits only its own files.
    checkout = tmp_path / "checkout"
    shutil.copytree(infra.packaging.HANDLERS_DIR, checkout / "handlers", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(infra.packaging, "REPO_ROOT", checkout)
    monkeypatch.setattr(infra.packaging, "HANDLERS_DIR", checkout / "handlers")
    monkeypatch.setattr(local.functions, "RELOAD_CHECK_SECONDS", 0.0)
    spec = _spec(
        query_archive.path,
        handler="handlers.query.app.handler",
        ITEMS_TABLE="users",
        SCHEMA=DEFAULT_SCHEMA.to_json(),
        JOBS_TABLE="jobs",
        JOBS_INDEX="recent-jobs",
    )
    log = Log()
    with FunctionHost(
        spec,
        credentials=CredentialCounter(),
        endpoint_url="http://127.0.0.1:9",
        region=REGION,
        log=log,
        work_dir=tmp_path / "state",
        source=CodeSource(root=checkout / "handlers"),
    ) as host:
        before = host.invoke(_api_event("/nowhere"))
        app = checkout / "handlers" / "query" / "app.py"
        app.write_text(app.read_text().replace('f"no route {method} here;', 'f"nothing {method} here;'))
        after = host.invoke(_api_event("/nowhere"))
    assert json.loads(before.payload["body"])["message"].startswith("no route GET here;")
    assert json.loads(after.payload["body"])["message"].startswith("nothing GET here;")
    assert after.cold_start
    assert any(line.startswith(f"{spec.name}: code changed, new archive ") for line in log.text())


def test_large_events_and_results_pass_whole(harness: Harness) -> None:
    host = harness.host(app="def handler(event, context):\n    return {'echo': event['blob'] * 2}\n")
    blob = "x" * 3_000_000  # well past a pipe's buffer both ways
    result = host.invoke({"blob": blob})
    assert result.ok and result.payload == {"echo": blob * 2}


def test_a_result_past_lambdas_response_limit_fails_as_on_lambda(harness: Harness) -> None:
    host = harness.host(app="def handler(event, context):\n    return 'x' * 6_300_000\n")
    result = host.invoke({})
    assert result.error is not None and result.error["errorType"] == "Function.ResponseSizeTooLarge"
