"""The README's `aws` and `curl` lines against a stack running locally, run as a user runs them: in a
shell that evaluated `local outputs --env`, with the real AWS CLI and the real curl (issue 19, items
3 and 11).

Each shell holds a user's own AWS settings (keys, a session token, a profile, an endpoint) that the
evaluated lines must replace, and proxies that lead nowhere with only 127.0.0.1 exempt: a request
that tried to leave this machine would fail, so a command that answers reached the emulator.

The stack is prod, whose API authenticates with IAM (SigV4), the mode the `curl --aws-sigv4` line
is for.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.sigv4 import MISMATCH_MESSAGE
from tests.ingest.conftest import USER_ENDPOINT
from tests.local.support import REPO_ROOT, USER_AWS_ENVIRONMENT, LocalStackProcess, start_local, stop_local, wait_for

pytestmark = pytest.mark.long(seconds=70)

README = REPO_ROOT / "README.md"
SAMPLE = REPO_ROOT / "tests" / "data" / "users.csv"
SHELL_TIMEOUT_SECONDS = 180
# Anything that is not 127.0.0.1 goes through a proxy nobody listens on (the AWS CLI, boto3 and curl
# all read these), and fails.
NOWHERE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}
# The AWS CLI that requirements.lock installs beside this interpreter (aws-cli v1).
LOCKED_AWS_CLI = Path(sys.executable).parent / "aws"
# More AWS CLIs to try, colon-separated (e.g. an aws-cli v2 installed elsewhere).
EXTRA_AWS_CLIS = "CSV_INGEST_TEST_AWS_CLIS"


def _aws_clis() -> list[Path]:
    """The locked aws-cli v1, any other `aws` on PATH, and those EXTRA_AWS_CLIS names."""
    clis = [LOCKED_AWS_CLI]
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != LOCKED_AWS_CLI.parent)
    found = shutil.which("aws", path=path)
    if found:
        clis.append(Path(found))
    clis += [Path(name) for name in os.environ.get(EXTRA_AWS_CLIS, "").split(os.pathsep) if name]
    return list(dict.fromkeys(clis))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    running = start_local(tmp_path_factory.mktemp("cli-tools-state"), stack="prod")
    yield running
    stop_local(running)


@pytest.fixture(scope="module")
def sample_loaded(stack: LocalStackProcess) -> LocalStackProcess:
    """The stack with the README's sample loaded (john@gmail.com among its users)."""
    stack.upload("uploads/sample.csv", SAMPLE.read_bytes())
    table = stack.outputs["usersTableName"]
    users = stack.client("dynamodb")
    wait_for(
        lambda: users.get_item(TableName=table, Key={"email": {"S": "john@gmail.com"}}).get("Item"),
        180,
        "the sample's users to be written",
    )
    return stack


def users_shell(stack: LocalStackProcess, workdir: Path) -> dict[str, str]:
    """A user's shell: their own AWS settings and home, proxies that lead nowhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "PROXY" not in k.upper()}
    env |= USER_AWS_ENVIRONMENT | USER_ENDPOINT | NOWHERE
    env["HOME"] = str(workdir)  # no ~/.aws of the runner's
    return env


def in_shell(
    stack: LocalStackProcess, workdir: Path, line: str, *, path_first: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`line` in bash, after the README's `eval "$(… local outputs --env)"` for `stack`."""
    flags = ["--stack", stack.stack, "--state-dir", str(stack.state_root)]
    outputs = shlex.join([sys.executable, "-m", "ingest", "local", "outputs", "--env", *flags])
    env = users_shell(stack, workdir)
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-c", f'set -u; eval "$(cd {shlex.quote(str(REPO_ROOT))} && {outputs})"\n{line}'],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=SHELL_TIMEOUT_SECONDS,
    )


def readme_aws_lines() -> list[str]:
    """Every `aws …` line of the README's shell blocks before "Deploy to AWS" (the local-mode ones),
    without its trailing comment."""
    local_part = README.read_text().split("\n## Deploy to AWS", 1)[0]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", local_part, flags=re.S):
        for line in block.splitlines():
            if line.startswith("aws "):
                lines.append(re.sub(r"\s+# .*$", "", line))
    return lines


def version_of(cli: Path, workdir: Path) -> str:
    ran = subprocess.run([str(cli), "--version"], capture_output=True, text=True, timeout=60, cwd=workdir)
    return (ran.stdout or ran.stderr).strip()


@pytest.mark.parametrize("cli", _aws_clis(), ids=str)
def test_every_readme_aws_line_reaches_the_local_stack_and_nothing_else(
    cli: Path, stack: LocalStackProcess, tmp_path: Path
) -> None:
    # GIVEN a user's shell set up by the README's eval line, with this aws CLI first on PATH
    if not cli.exists():
        pytest.fail(f"{cli} is missing: requirements.lock installs aws-cli v1 beside the interpreter")
    (tmp_path / "tests" / "data").mkdir(parents=True)
    for copy in (tmp_path / "users.csv", tmp_path / "tests" / "data" / "users.csv"):
        shutil.copyfile(SAMPLE, copy)
    readme_lines = readme_aws_lines()
    # and the issue's own lines: SQS (which aws-cli v1 sends to AWS's endpoint) and DynamoDB
    lines = [
        *readme_lines,
        'aws sqs get-queue-attributes --queue-url "$INGEST_QUEUE_URL" --attribute-names QueueArn',
        'aws dynamodb describe-table --table-name "$INGEST_USERS_TABLE_NAME" --query Table.TableArn --output text',
    ]
    version = version_of(cli, tmp_path)

    # WHEN each line runs there THEN each answers, from the emulator
    for line in lines:
        ran = in_shell(stack, tmp_path, line, path_first=cli.parent)
        assert ran.returncode == 0, f"{version}: {line}\nstdout: {ran.stdout}\nstderr: {ran.stderr}"
        if line.startswith("aws sqs get-queue-attributes"):
            attributes = json.loads(ran.stdout)["Attributes"]
            if "QueueArn" in line:
                assert attributes["QueueArn"].endswith(stack.outputs["queueUrl"].rsplit("/")[-1]), attributes
        if line.startswith("aws dynamodb describe-table"):
            assert ran.stdout.strip().endswith(f"table/{stack.outputs['usersTableName']}"), ran.stdout
        if line.startswith("aws logs "):
            assert "events" in json.loads(ran.stdout), ran.stdout
    bucket, s3 = stack.outputs["bucketName"], stack.client("s3")
    for line in readme_lines:
        if line.startswith("aws s3 cp "):
            key = re.search(r'"s3://\$INGEST_BUCKET_NAME/([^"]+)"', line)
            assert key, line
            s3.head_object(Bucket=bucket, Key=key.group(1))  # the emulator holds what was copied
    # The README shows the AWS CLI with each service a user reaches the stack's data through.
    for service in ("s3", "logs", "sqs"):
        assert any(line.startswith(f"aws {service} ") for line in readme_lines), (service, readme_lines)


def test_an_sdk_reading_only_the_exported_environment_reaches_the_stack(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    # aws-cli v2 (2.13.0 and later) resolves endpoints as botocore does from AWS_ENDPOINT_URL, with no
    # customisation of its own on top: a script's boto3 client made from the exported environment
    # alone is that resolution, for each service the README's lines use.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os, boto3\n"
        "print(json.dumps({\n"
        "  's3': boto3.client('s3').head_bucket(Bucket=os.environ['INGEST_BUCKET_NAME'])['ResponseMetadata']"
        "['HTTPStatusCode'],\n"
        "  'sqs': boto3.client('sqs').get_queue_attributes(QueueUrl=os.environ['INGEST_QUEUE_URL'],"
        " AttributeNames=['QueueArn'])['Attributes']['QueueArn'],\n"
        "  'dynamodb': boto3.client('dynamodb').describe_table(TableName=os.environ['INGEST_USERS_TABLE_NAME'])"
        "['Table']['TableArn'],\n"
        "  'logs': [g['logGroupName'] for g in boto3.client('logs').describe_log_groups("
        "logGroupNamePrefix=os.environ['INGEST_WORKER_LOG_GROUP_NAME'])['logGroups']],\n"
        "}))\n"
    )

    ran = in_shell(stack, tmp_path, f"{shlex.quote(sys.executable)} {shlex.quote(str(probe))}")

    assert ran.returncode == 0, ran.stderr
    seen: dict[str, Any] = json.loads(ran.stdout)
    assert seen["s3"] == 200
    assert seen["sqs"].endswith(stack.outputs["queueUrl"].rsplit("/")[-1])
    assert seen["dynamodb"].endswith(f"table/{stack.outputs['usersTableName']}")
    assert seen["logs"] == [stack.outputs["workerLogGroupName"]]


# --- curl --aws-sigv4 (item 11) -------------------------------------------------------------------
# SigV4 encodes a non-S3 path twice: the path as sent, URI-encoded once more (an `@` sent as is signs
# as %40, one sent as %40 as %2540), as botocore and the emulator do
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html;
# tests/local/test_emulator_signatures.py). curl before 8.9 signs the path as sent, unencoded; 8.9 to
# 8.13 encode it once, not an escape already there (`%40`); 8.14 encodes it as SigV4 asks.
LIBCURL_CLI = Path(__file__).resolve().parent / "libcurl_cli.py"


def readme_iam_user_line() -> tuple[str, tuple[int, ...]]:
    """The README's `curl --aws-sigv4 …/users/EMAIL` line, and the curl version it names as needed."""
    text = README.read_text()
    lines = [
        line
        for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)
        for line in block.splitlines()
        if line.startswith("curl --aws-sigv4") and "/users/" in line
    ]
    needed = re.search(r"curl (\d+)\.(\d+)\.(\d+) or later", text)
    assert len(lines) == 1 and needed, "the README shows one curl --aws-sigv4 line for a user, and its curl version"
    return re.sub(r"\s+# .*$", "", lines[0]), tuple(int(part) for part in needed.groups())


def curl_version(text: str) -> tuple[int, ...]:
    """`curl 7.88.1 (…)` or `PycURL/7.49.0 libcurl/8.23.0 …`: libcurl's version."""
    found = re.search(r"(?:libcurl/|^curl )(\d+)\.(\d+)\.(\d+)", text)
    assert found, text
    return tuple(int(part) for part in found.groups())


@pytest.mark.parametrize("spelled", ["john@gmail.com", "john%40gmail.com"])
def test_the_readmes_iam_curl_line_reads_a_user_with_the_curl_it_names(
    spelled: str, sample_loaded: LocalStackProcess, tmp_path: Path
) -> None:
    # GIVEN the README's line, run by a libcurl of the version it names or later
    line, needed = readme_iam_user_line()
    version = subprocess.run(
        [sys.executable, str(LIBCURL_CLI), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert curl_version(version) >= needed, version
    curl = f'curl() {{ {shlex.quote(sys.executable)} {shlex.quote(str(LIBCURL_CLI))} "$@"; }}'

    # WHEN the user's email is given as is, or percent-encoded
    ran = in_shell(sample_loaded, tmp_path, f"{curl}\n{line.replace('john@gmail.com', spelled)}")

    # THEN the API answers with the user
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["email"] == "john@gmail.com", ran.stdout


@pytest.mark.parametrize("spelled", ["john@gmail.com", "john%40gmail.com"])
def test_the_systems_curl_gets_what_the_readme_says_for_its_version(
    spelled: str, sample_loaded: LocalStackProcess, tmp_path: Path
) -> None:
    # The curl installed here (Debian 12's is 7.88.1): answered if it is of the version the README
    # names, refused as AWS refuses it otherwise.
    line, needed = readme_iam_user_line()
    found = shutil.which("curl")
    if found is None:
        pytest.skip("no curl on PATH")
    version = curl_version(subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60).stdout)
    if version < (7, 75, 0):
        pytest.skip(f"curl {version} has no --aws-sigv4")

    ran = in_shell(sample_loaded, tmp_path, line.replace("john@gmail.com", spelled))

    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    if version >= needed:
        assert answer["email"] == "john@gmail.com", (version, answer)
    else:
        assert answer == {"message": MISMATCH_MESSAGE}, (version, answer)
