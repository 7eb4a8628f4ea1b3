"""Local mode from the outside: start `python -m ingest local up` in a subprocess, talk to it, stop it.

Tests here reach the running stack the way a user does: boto3 against the emulator's endpoint with
the outputs' administrator keys or an IAM user's (`iam_user`), and HTTP against the API. Never by
calling handler code.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from local import emulator

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 30
# What a user's shell may hold: local mode must not hand any of it to its functions.
USER_AWS_ENVIRONMENT = {
    "AWS_PROFILE": "production-admin",
    "AWS_ACCESS_KEY_ID": "AKIAUSERSREALKEY0000",
    "AWS_SECRET_ACCESS_KEY": "users-real-secret",
    "AWS_SESSION_TOKEN": "users-real-token",
}

T = TypeVar("T")


def job_id_for(bucket: str, key: str, version_id: str) -> str:
    """The job id of an object version, as the README documents it (a hash of bucket, key and version)."""
    return hashlib.sha256(f"s3://{bucket}/{key}?versionId={version_id}".encode()).hexdigest()[:32]


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll until `check()` returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass(frozen=True)
class IamUser:
    """An IAM user of the account, made by the local administrator, with an access key of its own."""

    arn: str
    credentials: emulator.Credentials
    endpoint_url: str
    region: str

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client of the emulator with the user's keys; `config` as botocore's `Config` takes it."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            config=Config(**config),
        )


def iam_user(iam: Any, name: str, *statements: dict[str, Any]) -> IamUser:
    """User `name`, made with the administrator's IAM client `iam` (of a running stack or an in-process
    emulator), with an inline policy of these statements (none: no policy at all) and an access key."""
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if statements:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        iam.put_user_policy(UserName=name, PolicyName="own", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    credentials = emulator.Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    return IamUser(arn, credentials, iam.meta.endpoint_url, iam.meta.region_name)


@dataclass
class LocalStackProcess:
    """A stack running in local mode in a subprocess."""

    process: subprocess.Popen[bytes]
    stack: str
    state_root: Path
    console: Path
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.state_root / self.stack

    def client(self, service: str) -> Any:
        """A boto3 client of the emulator, with the local administrator's keys from the outputs."""
        return boto3.client(
            service,
            endpoint_url=self.outputs["awsEndpointUrl"],
            region_name=self.outputs["awsRegion"],
            aws_access_key_id=self.outputs["awsAccessKeyId"],
            aws_secret_access_key=self.outputs["awsSecretAccessKey"],
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

    def iam_user(self, name: str, *statements: dict[str, Any]) -> IamUser:
        """A new IAM user of the stack's account whose own policy is these statements, and its keys."""
        return iam_user(self.client("iam"), name, *statements)

    def api(
        self,
        path: str,
        *,
        method: str = "GET",
        key: str | None = "default",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> ApiResponse:
        """A request to the API; `key="default"` sends the stack's API key, None sends none."""
        sent = dict(headers or {})
        if key == "default" and self.outputs.get("apiKey"):
            sent["x-api-key"] = self.outputs["apiKey"]
        elif key not in (None, "default"):
            sent["x-api-key"] = key
        return http(method, self.outputs["apiUrl"] + path, sent, body)

    def log(self, source_fragment: str) -> str:
        """Everything a function (or the runtime) logged so far, from the state folder's log files."""
        texts = [p.read_text() for p in sorted((self.state / "logs").glob("*.log")) if source_fragment in p.name]
        return "\n".join(texts)

    def console_text(self) -> str:
        return self.console.read_text(errors="replace")

    def fault(self, **fault: Any) -> None:
        """Inject a failure into the emulator (`local.emulator.Fault`), as the local administrator."""
        send_admin(self.outputs, "POST", "/_local/faults", fault)

    def clear_faults(self) -> None:
        send_admin(self.outputs, "POST", "/_local/faults", {"clear": True})

    def hold_receives(self, role: str) -> None:
        """Refuse the SQS receives of a role (its event source's pollers) until `clear_faults`, and
        return once none begun before the refusal can still take a message: local mode's pollers
        wait at most a second per receive (`local.esm`), so two seconds after the first refusal every
        receive in progress has ended (seen: a receive already waiting took the first chunk, whose
        job then completed before the test could act on it)."""
        self.fault(service="sqs", action="ReceiveMessage", error_code="InternalError", principal=role)
        wait_for(lambda: self.applied_faults()[-1][1] > 0, 30, f"a receive of {role} refused")  # the fault just added
        time.sleep(2)

    def active_faults(self) -> list[dict[str, Any]]:
        """The faults still in force (`times` counting what each has left), as JSON objects."""
        return send_admin(self.outputs, "GET", "/_local/faults", None).body["faults"]

    def applied_faults(self) -> list[tuple[dict[str, Any], int]]:
        """Every fault injected since the last clear, in order, with how often it hit: requests
        answered with its error or delayed, messages or events delivered differently, processes killed."""
        return [
            (entry["fault"], entry["count"])
            for entry in send_admin(self.outputs, "GET", "/_local/faults", None).body["applied"]
        ]

    def upload(self, key: str, body: bytes) -> str:
        """Put an object; returns its version id."""
        return self.client("s3").put_object(Bucket=self.outputs["bucketName"], Key=key, Body=body)["VersionId"]

    def job(self, job_id: str) -> dict[str, Any] | None:
        response = self.api(f"/jobs/{job_id}")
        return response.body if response.status == 200 else None

    def finished_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        """Wait for the job to end (COMPLETE, COMPLETE_WITH_REJECTS or FAILED)."""

        def ended() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job and job.get("status") in ("COMPLETE", "COMPLETE_WITH_REJECTS", "FAILED") else None

        return wait_for(ended, timeout, f"job {job_id} to end")


def dead_letter_count(local: LocalStackProcess) -> int:
    """Messages in the stack's dead-letter queue, visible or not (SQS's approximate counts)."""
    attributes = local.client("sqs").get_queue_attributes(
        QueueUrl=local.outputs["deadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def http(method: str, url: str, headers: Mapping[str, str], body: bytes | None = None) -> ApiResponse:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, got = error.read(), error.code, dict(error.headers)
    try:
        parsed: Any = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        parsed = raw.decode(errors="replace")
    return ApiResponse(status=status, body=parsed, headers=got)


def signed_headers(
    credentials: Credentials, service: str, region: str, method: str, url: str, body: bytes | None
) -> dict[str, str]:
    """SigV4 headers for a request, as the AWS SDKs sign it."""
    request = AWSRequest(method=method, url=url, data=body or b"")
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


def send_admin(outputs: Mapping[str, Any], method: str, path: str, payload: Any) -> ApiResponse:
    url = outputs["awsEndpointUrl"] + path
    body = json.dumps(payload).encode()
    credentials = Credentials(outputs["awsAccessKeyId"], outputs["awsSecretAccessKey"])
    headers = signed_headers(credentials, "lambda", outputs["awsRegion"], method, url, body)
    headers["Content-Type"] = "application/json"
    response = http(method, url, headers, body)
    if response.status >= 300:
        raise AssertionError(f"{method} {path}: {response.status} {response.body}")
    return response


def _clean_environment() -> dict[str, str]:
    """The test runner's environment, with a user's AWS settings added that local mode must ignore."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(USER_AWS_ENVIRONMENT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_local(
    state_root: Path, *args: str, stack: str = "dev", timeout: float = START_TIMEOUT_SECONDS, cwd: Path = REPO_ROOT
) -> LocalStackProcess:
    """`python -m ingest local up` on free ports with its own state folder; returns once it is ready."""
    state_root.mkdir(parents=True, exist_ok=True)
    console = state_root / f"console-{stack}.txt"
    command = [sys.executable, "-m", "ingest", "local", "up", "--stack", stack, "--port", "0"]
    command += ["--state-dir", str(state_root), *args]
    with console.open("wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env=_clean_environment())
    running = LocalStackProcess(process=process, stack=stack, state_root=state_root, console=console)
    return wait_until_started(running, timeout, f"local mode ({stack}) to start")


def wait_until_started(running: LocalStackProcess, timeout: float, what: str) -> LocalStackProcess:
    """Wait until a started `local up` has published its outputs (and read them); stop it if it never does."""
    outputs_file = running.state / "outputs.json"

    def ready() -> dict[str, Any] | None:
        if running.process.poll() is not None:
            code = running.process.returncode
            raise AssertionError(f"local mode exited with {code}:\n{running.console_text()[-4000:]}")
        try:
            return json.loads(outputs_file.read_text())["outputs"]
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    try:
        running.outputs = wait_for(ready, timeout, what, interval=0.2)
    except BaseException:
        stop_local(running)
        raise
    return running


def local_processes(marker: str) -> list[int]:
    """Pids of processes whose command line or environment mentions `marker` (e.g. a state folder).

    The environment: a function's processes (and any process they start) have their HOME in the
    stack's folder, while their command line names the machine's shared task root."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            said = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in said.replace(b"\0", b" ").decode(errors="replace"):
            pids.append(int(entry.name))
    return pids


def stop_local(running: LocalStackProcess) -> int:
    """SIGTERM, as a service manager stops it; returns the exit code (killed after a grace period)."""
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
        try:
            running.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()
    return running.process.returncode


@contextmanager
def local_stack(state_root: Path, *args: str, stack: str = "dev") -> Iterator[LocalStackProcess]:
    running = start_local(state_root, *args, stack=stack)
    try:
        yield running
    finally:
        stop_local(running)


# What util-linux's unshare says, and its exit status, where the OS refuses it a namespace: unshare(2)
# fails with EPERM where unprivileged user namespaces are disabled (a sysctl, an AppArmor or container
# seccomp profile) and ENOSPC where user.max_user_namespaces is 0 (seen here: "unshare: unshare failed:
# No space left on device", exit 1, with that limit set to 0 in a user namespace of the test's own).
# https://man7.org/linux/man-pages/man2/unshare.2.html
UNSHARE_REFUSED = "unshare: unshare failed: Operation not permitted"


def refusing_unshare(folder: Path) -> Path:
    """An `unshare` in `folder` that refuses every namespace as util-linux's does on such an OS: put
    `folder` first on PATH and local mode finds it where it looks for unshare. Returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    unshare = folder / "unshare"
    unshare.write_text(f"#!/bin/sh\necho '{UNSHARE_REFUSED}' >&2\nexit 1\n")
    unshare.chmod(0o755)
    return folder


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    lines = [",".join(header), *(",".join(row) for row in rows)]
    return ("\n".join(lines) + "\n").encode()
