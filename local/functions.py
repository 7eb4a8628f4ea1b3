"""The function host: each Lambda function runs from its own archive, in processes of its own, as Lambda runs it.

A `FunctionHost` is one function's execution environments. Each environment is an OS process
running `local/bootstrap.py` on the declared runtime's interpreter over the unpacked archive (the
bytes `pulumi up` would upload), with only the environment Lambda gives a function (its variables,
its role's credentials, the emulator as `AWS_ENDPOINT_URL`) and only the libraries Lambda's Python
runtime provides, in the versions it provides (`local.runtimes`). A process stays
warm between invocations (module-level state survives); a new one starts when every warm one is
busy, up to the concurrency the caller allows. An invocation past the function's timeout kills its
process. When the handler code changes, the archive is rebuilt and new processes run the new code.
A kill fault (`local.emulator.KillFault`) SIGKILLs a process in the middle of an invocation, as
Lambda ends one out of memory: the invocation fails as any crashed runtime does.

Local mode's own log lines and errors name functions, request ids and hosts, never data: what a
function prints is its own and passes through unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from infra.packaging import HANDLERS_DIR, FunctionArchive, build_archive
from local.netns import EmulatorRelay, confined, refusal
from local.registry import FunctionSpec
from local.runtimes import Runtime, resolve

if TYPE_CHECKING:
    from local.emulator import Credentials, KillOrder

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# Lambda's limit on the init phase of an on-demand function.
INIT_TIMEOUT_SECONDS = 10.0
# A stat walk of the handler sources costs well under a millisecond; at most this often is plenty.
RELOAD_CHECK_SECONDS = 0.5
# How often a running invocation's memory is read (`_MemoryWatch`): the kernel keeps the peak, so a
# shorter spike is still seen; this is only how late the kill may come.
MEMORY_POLL_SECONDS = 0.05
# How long END waits for the log lines an invocation wrote before it (they come through reader threads).
LOG_DRAIN_SECONDS = 2.0
# Lambda's PATH without its own /var/lang/bin and /opt/bin.
PATH = "/usr/local/bin:/usr/bin:/bin"
# How long a process that closed its protocol pipe gets to exit before it is killed.
EXIT_WAIT_SECONDS = 1.0
# How long close() waits for running invocations to see their process killed and dispose of it.
CLOSE_WAIT_SECONDS = 5.0
# A local stack's state is its user's alone: the outputs' keys, logs naming jobs and uploads' keys,
# the functions' code and whatever a function writes (a scratch file may hold an uploaded cell).
# Folders are made 0700 and files 0600; processes that run a stack create under umask 077.
OWNER_ONLY_FOLDER, OWNER_ONLY_FILE, OWNER_ONLY_UMASK = 0o700, 0o600, 0o077

_logger = logging.getLogger(__name__)


class HostClosed(RuntimeError):
    """An invocation asked of (or waiting on) a host that has been closed."""


@dataclass(frozen=True)
class InvocationResult:
    """How one invocation ended, as Lambda reports it to its caller."""

    request_id: str
    payload: Any
    """The handler's return value, JSON round-tripped (None when it failed)."""
    error: dict[str, Any] | None
    """`{"errorMessage", "errorType", "stackTrace"}` as Lambda reports it; None on success."""
    timed_out: bool
    cold_start: bool
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class CodeSource:
    """Where a function's code comes from, for hot reload: the folder to watch and how to rebuild.

    The default is the repository's handlers/ and the program's own packaging; tests point it at a
    folder of their own.
    """

    root: Path = HANDLERS_DIR
    build: Callable[[str, str, Path], FunctionArchive] = build_archive
    """Builds the archive of a handler package (`spec.package`) for a runtime into a folder (the host's own)."""

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Every `.py` file under the root with its mtime and size: cheap, and changes with any edit."""
        found = []
        for path in self.root.rglob("*.py"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # deleted while walking: the next walk sees the change
            found.append((path.as_posix(), stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(found))


def archive_sha256(path: Path) -> str:
    """Lambda's `CodeSha256` of an archive: base64 of the SHA-256 of its bytes."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def _lambda_time(moment: float) -> str:
    """A timestamp as Lambda writes it in its messages: `2026-11-29T10:00:00.123Z`."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": []}


def error_text(error: dict[str, Any]) -> str:
    """A Lambda error as a reader wants it: `Type: message` and the traceback, if there is one."""
    text = f"{error['errorType']}: {error['errorMessage']}"
    if error.get("stackTrace"):
        text += "\nTraceback (most recent call last):\n" + "".join(error["stackTrace"]).rstrip("\n")
    return text


def _exit_reason(returncode: int | None) -> str:
    """Lambda's wording for how a runtime process ended: `exit status 3`, `signal: killed`."""
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        return f"signal: {signal.strsignal(-returncode) or -returncode}".lower()
    return f"exit status {returncode}"


@dataclass(frozen=True)
class _Code:
    """One unpacked archive: the task root processes start in."""

    sha256: str
    task_root: Path


class _Ended(Exception):
    """The process closed its end of the protocol: it exited (or is exiting)."""


class _Channel:
    """The host's end of the protocol pipes: JSON lines out, JSON lines in with a deadline."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self._write_fd = write_fd
        self._read_fd = read_fd
        self._buffer = b""
        self._poll = select.poll()  # not select(): descriptors past 1024 are fine with many functions
        self._poll.register(read_fd, select.POLLIN)

    @staticmethod
    def encode(message: dict[str, Any]) -> bytes:
        return json.dumps(message).encode() + b"\n"

    def send(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self._write_fd, data) :]
        except (BrokenPipeError, OSError) as error:
            raise _Ended from error

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None once `deadline` (monotonic) has passed without one."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not self._poll.poll(math.ceil(remaining * 1000)):
                continue
            chunk = os.read(self._read_fd, 1 << 16)
            if not chunk:
                raise _Ended
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        for fd in (self._write_fd, self._read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class _LogPump:
    """Forwards a process's output (stdout and stderr, one pipe as in Lambda's log) to `log`, line by line.

    The bootstrap writes its marker after every invocation; `wait_marks(n)` returns once n have
    passed, so END is logged after every line the invocation wrote, in the order it wrote them.
    """

    def __init__(self, name: str, output: IO[bytes], marker: str, log: Callable[[str, str], None]) -> None:
        self._name = name
        self._marker = marker
        self._log = log
        self._marks = 0
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(output,), name=f"{name}-log", daemon=True)
        self._thread.start()

    def _pump(self, output: IO[bytes]) -> None:
        with output:
            for raw in output:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                text, marked, _ = line.partition(self._marker)
                if text or not marked:  # a line printed without a newline ends just before the marker
                    self._emit(text)
                if marked:
                    with self._changed:
                        self._marks += 1
                        self._changed.notify_all()
        with self._changed:  # the process is gone: nothing more will come, wait no longer
            self._marks = sys.maxsize
            self._changed.notify_all()

    def _emit(self, line: str) -> None:
        try:
            self._log(self._name, line)
        except Exception:
            # The pump must keep draining, or a full pipe would block the function.
            _logger.exception("%s: the log callback failed", self._name)

    def wait_marks(self, count: int, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._marks >= count, timeout)

    def join(self) -> None:
        self._thread.join(timeout=LOG_DRAIN_SECONDS)


@dataclass
class _Outcome:
    """What one round trip to a process gave, before it becomes an `InvocationResult`."""

    payload: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    reusable: bool = True
    out_of_memory: bool = False


@dataclass(eq=False)
class _Process:
    """One execution environment: a bootstrap process, its protocol channel and its log pump."""

    popen: subprocess.Popen[bytes]
    channel: _Channel
    pump: _LogPump
    code: _Code
    invocations: int = 0
    init_ms: float = 0.0
    alive: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def peak_memory_mb(self) -> int:
        """The process's peak resident memory (VmHWM), as Lambda's "Max Memory Used" reports it."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return math.ceil(int(line.split()[1]) / 1024)
        except OSError:
            pass
        return 0

    def signal_kill(self) -> None:
        """SIGKILL only: safe from any thread; whoever runs the process then sees it end and disposes of it.

        To its whole process group (it leads its own session), so processes the function started go too.
        Only while it is not reaped: until then its id cannot belong to anything else.
        """
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def exit_reason(self) -> str:
        """How a process that closed its protocol pipe ended; killed if it lingers, with what it started."""
        deadline = time.monotonic() + EXIT_WAIT_SECONDS
        while not self._exited() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.signal_kill()  # an exited process keeps the status it exited with
        self.popen.wait()
        return _exit_reason(self.popen.returncode)

    def _exited(self) -> bool:
        """Whether it has exited, without reaping it (the group may still have members to kill)."""
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def kill(self) -> None:
        """SIGKILL, reap, close the protocol pipes and drain the log: only by the thread that owns the
        process (its invoker, or any thread while it is idle), as closing pipes under a reader is unsafe."""
        with self.lock:
            if not self.alive:
                return
            self.alive = False
        self.signal_kill()
        self.popen.wait()
        self.channel.close()
        self.pump.join()


class _MemoryWatch:
    """Lambda's memory limit on one invocation: a process whose peak resident memory passes the
    function's `memory_mb` is killed, and the invocation fails out of memory.

    Read from the kernel's own high-water mark of the process's resident memory (`VmHWM`, what
    Lambda's "Max Memory Used" reports), polled while the invocation runs and read once more when
    it ends, before its answer is accepted: a spike shorter than the polling interval still shows in
    the mark, so nothing slips through; only the kill may come one interval after the limit was
    passed. The other ways were tried against this machine and Python: a cgroup's `memory.max` needs
    cgroup v2 with a delegated subtree (this machine has v1, not writable); `RLIMIT_AS` and
    `RLIMIT_DATA` count address space, not resident memory (an interpreter reserves far more than it
    touches), and turn the excess into a `MemoryError` the handler can catch, where Lambda's kill
    cannot be caught. Only the function's own process is measured, not processes it starts."""

    def __init__(self, process: _Process, limit_mb: int) -> None:
        self._process = process
        self._limit_mb = limit_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"memory-{process.pid}", daemon=True)
        self.peak_mb = 0
        self.exceeded = False

    def __enter__(self) -> _MemoryWatch:
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(MEMORY_POLL_SECONDS) and not self.exceeded:
            self._check()

    def _check(self) -> None:
        self.peak_mb = max(self.peak_mb, self._process.peak_memory_mb())
        if self.peak_mb > self._limit_mb and not self.exceeded:
            self.exceeded = True
            self._process.signal_kill()

    def settle(self) -> None:
        """Stop watching and read the mark a last time (the process is not reaped yet: it is still there)."""
        self._stop.set()
        self._thread.join()
        self._check()

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class _ArmedKill:
    """An injected kill of one invocation's process after a delay (`KillOrder`), disarmed when the
    invocation ends. A kill that lands just after the reply spares the invocation, whose answer
    stands, but the process is gone: `late` tells its owner to dispose of it."""

    def __init__(self, order: KillOrder | None, process: _Process) -> None:
        self._order = order
        self._process = process
        self._lock = threading.Lock()
        self._running = True
        self._fired = False
        self.late = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> _ArmedKill:
        if self._order is not None:
            self._timer = threading.Timer(self._order.after_seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _fire(self) -> None:
        with self._lock:
            if self._running:
                self._fired = True
                self._process.signal_kill()

    def settle(self, outcome: _Outcome) -> None:
        """Disarm; tell the fault whether the invocation was killed."""
        self._disarm()
        self.late = self._fired and outcome.reusable
        if self._order is not None:
            (self._order.spared if self.late or not self._fired else self._order.fired)()
            self._order = None

    def _disarm(self) -> None:
        with self._lock:
            self._running = False
        if self._timer is not None:
            self._timer.cancel()

    def __exit__(self, *_exc: object) -> None:
        self._disarm()
        if self._order is not None:  # the round trip raised before `settle`: nothing was killed by us
            self._order.spared()


def _kill_all(processes: set[_Process]) -> None:
    """At interpreter exit, a host nobody closed: no process outlives it."""
    for process in list(processes):
        process.signal_kill()


class FunctionHost:
    """One function's execution environments (processes)."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        credentials: Callable[[], Credentials],
        endpoint_url: str,
        region: str,
        log: Callable[[str, str], None],
        work_dir: Path,
        max_concurrency: int = 10,
        source: CodeSource | None = None,
        kills: Callable[[], KillOrder | None] | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        """`credentials()` is called for every new process (its role's STS credentials); `log(name, line)`
        gets every line the function prints and Lambda's START/END/REPORT lines; archives are unpacked
        under `work_dir` and removed by `close()`. `source` is what hot reload watches and rebuilds
        (the repository's handlers/ by default). `kills()`, asked at the start of every invocation, says
        whether to kill its process mid-way (`local.emulator.Faults.kill_order`). `runtime` is what its
        processes run on (`local.runtimes.resolve(spec.runtime)` by default: the declared runtime's
        interpreter and SDK)."""
        if max_concurrency < 1:
            raise ValueError(f"{spec.name}: max_concurrency must be at least 1, got {max_concurrency}")
        self.spec = spec
        self.max_concurrency = max_concurrency
        self._credentials = credentials
        self._endpoint_url = endpoint_url
        self._region = region
        self._log = log
        self._source = source or CodeSource()
        self._kills = kills
        self.runtime = runtime or resolve(spec.runtime)
        self._relay: EmulatorRelay | None = None
        work_dir.mkdir(mode=OWNER_ONLY_FOLDER, parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix=f"{spec.name}-", dir=work_dir))  # 0700
        try:
            self._home = self._dir / "home"
            self._home.mkdir(mode=OWNER_ONLY_FOLDER)
            self._runtime_dir = self.runtime.libraries
            self._code = self._unpack(spec.archive)
            # A function's whole process tree reaches the emulator only (`local.netns`), where the OS allows.
            emulator = urllib.parse.urlsplit(endpoint_url)
            if refusal() is None and emulator.hostname == "127.0.0.1" and emulator.port:
                self._relay = EmulatorRelay(emulator.port)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._changed = threading.Condition()
        self._processes: set[_Process] = set()
        self._idle: list[_Process] = []
        self._starting = 0
        self._busy = 0
        self._closed = False
        self._finalizer = weakref.finalize(self, _kill_all, self._processes)
        self._reload_lock = threading.Lock()
        self._next_check = time.monotonic() + RELOAD_CHECK_SECONDS
        self._fingerprint = self._source.fingerprint()
        self._build_error: str | None = None

    # -- public ---------------------------------------------------------------------------------

    @property
    def busy(self) -> int:
        """Invocations running now (including those whose process is still starting)."""
        with self._changed:
            return self._busy

    @property
    def pids(self) -> list[int]:
        """The process ids of the execution environments alive now."""
        with self._changed:
            return [p.pid for p in self._processes]

    def invoke(
        self, event: Any, *, request_id: str | None = None, client_context: dict[str, Any] | None = None
    ) -> InvocationResult:
        """Run one invocation, blocking until it ends: on a warm process if one is idle, else on a new
        one while fewer than `max_concurrency` exist, else after waiting for one to free up."""
        request_id = request_id or str(uuid.uuid4())
        build_error = self._reload_if_changed()
        if build_error is not None:
            return InvocationResult(request_id, None, _error("Local.BuildFailed", build_error), False, False, 0.0)
        process = self._acquire()
        if process is None:
            process, failure = self._start()
            if process is None:
                return InvocationResult(request_id, None, failure, False, True, 0.0)
        try:
            request = {"event": event, "client_context": client_context}
            return self._run(process, request_id, request)
        finally:
            self._release(process)

    def warm(self) -> str | None:
        """Run one environment's init phase now unless one is up; None when the handler imports, else
        Lambda's error as text (type, message, traceback), for start-up to stop on.

        The environment stays warm: the next invocation uses it, reported as its cold start."""
        with self._changed:
            if self._processes:
                return None
        process = self._acquire()
        if process is None:
            process, failure = self._start()
            if process is None:
                assert failure is not None
                return error_text(failure)
        self._release(process)
        return None

    def close(self) -> None:
        """Kill every process (busy ones too: their invocations end as exits) and remove what was unpacked."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = [p for p in self._processes if p not in idle]
            self._processes.difference_update(idle)
            self._changed.notify_all()
        for process in idle:
            process.kill()
        for process in busy:  # their invokers dispose of them (`_release`), then say so
            process.signal_kill()
        with self._changed:
            self._changed.wait_for(lambda: not self._processes, CLOSE_WAIT_SECONDS)
        if self._relay is not None:
            self._relay.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> FunctionHost:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- execution environments -----------------------------------------------------------------

    def _acquire(self) -> _Process | None:
        """A warm idle process, or None when a new one may start, once the concurrency allows either."""
        with self._changed:
            while True:
                if self._closed:
                    raise HostClosed(f"{self.spec.name}: the function host is closed")
                if self._idle:
                    self._busy += 1
                    return self._idle.pop()  # the most recently used, as Lambda favours
                if len(self._processes) + self._starting < self.max_concurrency:
                    self._starting += 1
                    self._busy += 1
                    return None
                self._changed.wait()

    def _release(self, process: _Process) -> None:
        """Back to the idle ones, or gone: dead, timed out, closed, or running code that changed."""
        with self._changed:
            if process.alive and not self._closed and process.code == self._code:
                self._idle.append(process)
                self._busy -= 1
                self._changed.notify_all()
                return
        process.kill()
        with self._changed:  # only once it is reaped: close() waits for this
            self._processes.discard(process)
            self._busy -= 1
            self._changed.notify_all()
        self._remove_unused(process.code)

    def _environment(self, credentials: Credentials, code: _Code, log_stream: str) -> dict[str, str]:
        """The function's variables plus what Lambda sets; nothing from this process's environment."""
        spec = self.spec
        environment = {
            **{key: str(value) for key, value in spec.environment.items()},
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group or f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(code.task_root),
            "LAMBDA_RUNTIME_DIR": str(self._runtime_dir),
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": PATH,
            "HOME": str(self._home),
            # The emulator, and no way to anything else: no shared config, profile or instance metadata.
            "AWS_ENDPOINT_URL": self._endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if credentials.session_token is not None:
            environment["AWS_SESSION_TOKEN"] = credentials.session_token
        return environment

    def _start(self) -> tuple[_Process | None, dict[str, Any] | None]:
        """A new process through its init phase: (process, None), or (None, Lambda's init error).

        Called holding a start slot (`_acquire` returned None), which becomes the process or is given back.
        """
        process = None
        try:
            process = self._spawn(self._code)
            with self._changed:
                self._processes.add(process)  # from here on, close() kills it
                self._starting -= 1
                closed = self._closed
            if closed:
                raise HostClosed(f"{self.spec.name}: the function host is closed")
            failure = self._init(process)
        except BaseException:
            if process is not None:
                process.kill()
            with self._changed:
                if process is None:
                    self._starting -= 1
                else:
                    self._processes.discard(process)
                self._busy -= 1
                self._changed.notify_all()
            raise
        if failure is not None:
            with self._changed:
                self._processes.discard(process)
                self._busy -= 1
                self._changed.notify_all()
            return None, failure
        return process, None

    def _spawn(self, code: _Code) -> _Process:
        log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        environment = self._environment(self._credentials(), code, log_stream)
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        marker = f"\x1f{secrets.token_hex(16)}\x1f"
        command = [
            str(self.runtime.executable), "-I", "-S", "-u", str(BOOTSTRAP), str(code.task_root),
            str(self._runtime_dir), self.spec.handler, str(request_read), str(response_write), marker,
        ]  # fmt: skip
        if self._relay is not None:
            command = confined([*command, str(urllib.parse.urlsplit(self._endpoint_url).port), str(self._relay.path)])
        try:
            popen = subprocess.Popen(
                command,
                env=environment,
                cwd=code.task_root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(request_read, response_write),
                # Its own session: Ctrl-C reaches the host, which then stops its processes in order.
                start_new_session=True,
                # What the function writes (its bytecode, its scratch files) is its owner's alone.
                umask=OWNER_ONLY_UMASK,
            )  # fmt: skip
        except BaseException:
            for fd in (request_write, response_read):
                os.close(fd)
            raise
        finally:
            os.close(request_read)
            os.close(response_write)
        assert popen.stdout is not None
        return _Process(
            popen=popen,
            channel=_Channel(request_write, response_read),
            pump=_LogPump(self.spec.name, popen.stdout, marker, self._log),
            code=code,
        )

    def _init(self, process: _Process) -> dict[str, Any] | None:
        """Wait out the init phase (the handler's import); on failure kill the process and return the error."""
        started = time.monotonic()
        ended = False
        with _MemoryWatch(process, self.spec.memory_mb) as memory_watch:  # the init phase has the same limit
            try:
                ready = process.channel.receive(started + max(INIT_TIMEOUT_SECONDS, self.spec.timeout_seconds))
            except _Ended:
                ready, ended = None, True
            memory_watch.settle()
        process.init_ms = (time.monotonic() - started) * 1000
        if memory_watch.exceeded:
            ready = {"init_error": _error("Runtime.OutOfMemory", "Runtime exited with error: signal: killed")}
        elif ended:
            ready = {"init_error": _error("Runtime.ExitError", f"Runtime exited with error: {process.exit_reason()}")}
        elif ready is None:
            seconds = process.init_ms / 1000
            ready = {"init_error": _error("Sandbox.Timedout", f"Init phase timed out after {seconds:.2f} seconds")}
        if "init_error" not in ready:
            return None
        process.kill()  # also waits until its traceback has been logged
        failure: dict[str, Any] = ready["init_error"]
        self._log(
            self.spec.name,
            f"INIT_REPORT Init Duration: {process.init_ms:.2f} ms\tPhase: init\tStatus: error"
            f"\tError Type: {failure['errorType']}",
        )
        return failure

    def _run(self, process: _Process, request_id: str, request: dict[str, Any]) -> InvocationResult:
        """One invocation on a process, with Lambda's START/END/REPORT lines around the function's own."""
        name, timeout = self.spec.name, self.spec.timeout_seconds
        started_wall, started = time.time(), time.monotonic()
        message = {**request, "id": request_id, "arn": self.spec.arn, "deadline_ms": (started_wall + timeout) * 1000}
        data = _Channel.encode(message)  # an event that is not JSON fails here, before anything ran
        self._log(name, f"START RequestId: {request_id} Version: $LATEST")
        cold = process.invocations == 0  # its first invocation follows its init, wherever that ran
        process.invocations += 1
        with (
            _ArmedKill(self._kills() if self._kills is not None else None, process) as kill,
            _MemoryWatch(process, self.spec.memory_mb) as memory_watch,
        ):
            outcome = self._round_trip(process, data, started + timeout)
            memory_watch.settle()
            kill.settle(outcome)
        duration_ms = (time.monotonic() - started) * 1000
        memory = memory_watch.peak_mb
        if memory_watch.exceeded:
            # As Lambda ends it: the runtime killed, whatever it was doing or had answered
            # (https://repost.aws/knowledge-center/lambda-runtime-error: "Runtime exited with error").
            reason = "Runtime exited with error: signal: killed"
            outcome = _Outcome(reusable=False, out_of_memory=True)
            outcome.error = _error("Runtime.OutOfMemory", f"RequestId: {request_id} Error: {reason}")
            self._log(name, f"RequestId: {request_id} Error: {reason}")
            memory = self.spec.memory_mb  # Lambda's process cannot use more: the REPORT says the size
        elif outcome.timed_out:
            text = f"{_lambda_time(time.time())} {request_id} Task timed out after {timeout:.2f} seconds"
            outcome.error = _error("Sandbox.Timedout", text)
            self._log(name, text)
        elif not outcome.reusable:
            reason = f"Runtime exited with error: {process.exit_reason()}"
            outcome.error = _error("Runtime.ExitError", f"RequestId: {request_id} Error: {reason}")
            self._log(name, f"RequestId: {request_id} Error: {reason}")
        else:
            process.pump.wait_marks(process.invocations, LOG_DRAIN_SECONDS)
        if not outcome.reusable or kill.late:
            process.kill()
        self._log(name, f"END RequestId: {request_id}")
        self._log(name, self._report(request_id, duration_ms, memory, process.init_ms if cold else None, outcome))
        return InvocationResult(request_id, outcome.payload, outcome.error, outcome.timed_out, cold, duration_ms)

    @staticmethod
    def _round_trip(process: _Process, data: bytes, deadline: float) -> _Outcome:
        try:
            process.channel.send(data)
            reply = process.channel.receive(deadline)
        except _Ended:
            return _Outcome(reusable=False)
        if reply is None:
            return _Outcome(timed_out=True, reusable=False)
        if "error" in reply:
            return _Outcome(error=reply["error"])
        return _Outcome(payload=reply["ok"])

    def _report(
        self, request_id: str, duration_ms: float, memory_mb: int, init_ms: float | None, outcome: _Outcome
    ) -> str:
        fields = [
            f"REPORT RequestId: {request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {math.ceil(duration_ms)} ms",
            f"Memory Size: {self.spec.memory_mb} MB",
            f"Max Memory Used: {memory_mb} MB",
        ]
        if init_ms is not None:
            fields.append(f"Init Duration: {init_ms:.2f} ms")
        if outcome.out_of_memory:
            fields.append("Status: error\tError Type: Runtime.OutOfMemory")
        elif outcome.timed_out:
            fields.append("Status: timeout")
        elif not outcome.reusable:
            fields.append("Status: error\tError Type: Runtime.ExitError")
        return "\t".join(fields)

    # -- code and hot reload --------------------------------------------------------------------

    def _unpack(self, archive: Path) -> _Code:
        """A fresh task root holding the archive's files, as Lambda unpacks it into /var/task."""
        sha256 = archive_sha256(archive)
        task_root = Path(tempfile.mkdtemp(prefix="task-", dir=self._dir))
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(task_root)
        return _Code(sha256=sha256, task_root=task_root)

    def _reload_if_changed(self) -> str | None:
        """Rebuild and switch to new code when the sources changed; the build error while it fails."""
        if time.monotonic() < self._next_check:
            return self._build_error
        # Invocations that arrive during a rebuild wait for it: after an edit, none runs the old code.
        with self._reload_lock:
            now = time.monotonic()
            if now < self._next_check:
                return self._build_error
            self._next_check = now + RELOAD_CHECK_SECONDS
            fingerprint = self._source.fingerprint()
            if fingerprint != self._fingerprint:
                self._fingerprint = fingerprint
                self._build_error = self._rebuild()
            return self._build_error

    def _rebuild(self) -> str | None:
        name = self.spec.name
        try:
            # Into the host's own folder: the program's .build/ stays as it built it, and two stacks
            # running the same function never write one file at once.
            archive = self._source.build(self.spec.package, self.spec.runtime, self._dir / "build")
            if archive.sha256 == self._code.sha256:
                return None
            code = self._unpack(archive.path)
        except Exception as error:  # PackagingError, a missing package, an unreadable file
            message = f"{name}: code changed but the archive did not build: {error}"
            self._log(name, message)
            return message
        with self._changed:
            old, self._code = self._code, code
            retired = [p for p in self._idle if p.code != code]
            self._idle = [p for p in self._idle if p.code == code]
            self._processes.difference_update(retired)
        for process in retired:
            process.kill()
        self._remove_unused(old)
        self._log(name, f"{name}: code changed, new archive {archive.sha256[:12]}")
        return None

    def _remove_unused(self, code: _Code) -> None:
        """Delete a retired task root once no process runs from it."""
        with self._changed:
            if code == self._code or any(p.code == code for p in self._processes) or self._starting:
                return
        shutil.rmtree(code.task_root, ignore_errors=True)
