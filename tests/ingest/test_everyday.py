"""The everyday commands against a running local stack, each through its own process: `upload`
(with `--wait`), `job`, `jobs`, `get`, `list`, `rejects`, and the `--stack` path with `pulumi
stack output` replaced by a stub that prints the local stack's outputs."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.common.jobs import job_id_for
from ingest.cli import parser
from ingest.commands.rejects import parse_part
from ingest.commands.upload import part_size
from ingest.targets import TargetError
from local.mocks import ACCOUNT_ID
from tests.ingest.conftest import USER_ENDPOINT, local_command, run_ingest, write_csv
from tests.local.support import REPO_ROOT, USER_AWS_ENVIRONMENT, LocalStackProcess, local_stack

pytestmark = pytest.mark.long(seconds=100)

SUMMARY_KEYS = {
    "jobId",
    "status",
    "rowsTotal",
    "rowsValid",
    "rowsRejected",
    "rowsWritten",
    "rowsSuperseded",
    "rejectsReport",
    "durationSeconds",
}
SAMPLE = REPO_ROOT / "tests" / "data" / "users.csv"
# More users than one page of the API (100): `list --all` must follow `nextToken`.
MANY_USERS = 230
# What the emulator adds to the program's outputs; `pulumi stack output` has none of them.
LOCAL_ONLY_OUTPUTS = ("awsEndpointUrl", "awsRegion", "awsAccessKeyId", "awsSecretAccessKey")


def last_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON on stdout, which must be all there is (one document, on its last line)."""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"stdout is not one JSON line:\n{result.stdout}\nstderr:\n{result.stderr}"
    return json.loads(lines[-1])


def upload_and_wait(stack: LocalStackProcess, path: Path, *extra: str) -> dict[str, Any]:
    result = local_command(stack, "upload", str(path), "--wait", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return last_json(result)


@pytest.fixture(scope="module")
def sample_job(stack: LocalStackProcess) -> dict[str, Any]:
    """The article's 10-row sample, uploaded and waited for."""
    return upload_and_wait(stack, SAMPLE)


@pytest.fixture(scope="module")
def many_users(stack: LocalStackProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rows = [f"Listed User {n},listed{n:04d}@many.example.com,+4470000{n:05d}" for n in range(MANY_USERS)]
    path = write_csv(tmp_path_factory.mktemp("many") / "many.csv", ["name,mail,phone", *rows])
    return upload_and_wait(stack, path)


# --- upload --------------------------------------------------------------------------------------


def test_upload_wait_on_a_valid_file_prints_the_summary_and_exits_0(stack: LocalStackProcess) -> None:
    result = local_command(stack, "upload", str(SAMPLE), "--key", "everyday/valid.csv", "--wait")

    assert result.returncode == 0, result.stderr
    bucket = stack.outputs["bucketName"]
    key = f"{stack.outputs['uploadsPrefix']}everyday/valid.csv"
    version = stack.client("s3").head_object(Bucket=bucket, Key=key)["VersionId"]
    job_id = job_id_for(bucket, key, version)
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0][-2:] == ["job", job_id], result.stdout
    assert ["Job", f"{job_id}:", "COMPLETE", "in"] == lines[1][:4]
    assert ["rows", "total", "10"] in lines
    assert ["written", "10"] in lines and ["rejected", "0"] in lines and ["superseded", "0"] in lines
    assert not any("rejects report" in " ".join(line) for line in lines)


def test_upload_wait_json_is_one_object_with_the_apis_keys(sample_job: dict[str, Any]) -> None:
    assert set(sample_job) >= SUMMARY_KEYS
    assert sample_job["status"] == "COMPLETE"
    counts = [sample_job[k] for k in ("rowsTotal", "rowsValid", "rowsRejected", "rowsWritten", "rowsSuperseded")]
    assert counts == [10, 10, 0, 10, 0]
    assert sample_job["rejectsReport"] is None
    assert sample_job["durationSeconds"] >= 0


def test_upload_wait_on_a_partly_invalid_file_completes_with_rejects(stack: LocalStackProcess, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "partly.csv",
        [
            "name,mail,phone",
            "Good One,good1@partly.example.com,+441234567890",
            "Bad Mail,not-an-email,+441234567891",
            ",noname@partly.example.com,+441234567892",
            "Good Two,good2@partly.example.com,",
            "Bad Phone,badphone@partly.example.com,12",
        ],
    )

    job = upload_and_wait(stack, path)

    assert job["status"] == "COMPLETE_WITH_REJECTS"
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"], job["rowsWritten"]) == (5, 2, 3, 2)
    assert job["rejectsReport"] == f"s3://{stack.outputs['bucketName']}/reports/{job['jobId']}/"


def test_rejects_lists_each_rejected_row_with_its_reason(stack: LocalStackProcess, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "rejects.csv",
        ["name,mail,phone", "Fine,fine@rejects.example.com,", "Bad Mail,nope,", ",noname@rejects.example.com,"],
    )
    job = upload_and_wait(stack, path)

    listed = local_command(stack, "rejects", job["jobId"], "--json")
    shown = local_command(stack, "rejects", job["jobId"])

    assert listed.returncode == 0, listed.stderr
    rows = last_json(listed)
    assert [(r["row"], r["line"], r["mail"]) for r in rows] == [(2, 3, "nope"), (3, 4, "noname@rejects.example.com")]
    assert rows[0]["reason"] == "mail is not a valid email address (local@dotted.domain)"
    assert rows[1]["reason"] == "name is empty"
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["row", "line", "reason", "name", "mail", "phone"]
    assert lines[2].split()[:2] == ["2", "3"] and "mail is not a valid email address" in lines[2]
    assert lines[-1].startswith(f"2 rejected row(s) of job {job['jobId']}")


def test_rejects_of_a_job_without_rejected_rows_says_so(stack: LocalStackProcess, sample_job: dict[str, Any]) -> None:
    shown = local_command(stack, "rejects", sample_job["jobId"])
    listed = local_command(stack, "rejects", sample_job["jobId"], "--json")

    assert shown.returncode == 0 and shown.stdout == f"Job {sample_job['jobId']} rejected no rows.\n"
    assert listed.returncode == 0 and last_json(listed) == []


def test_upload_wait_on_a_file_without_a_mail_column_fails_giving_the_reason_once(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "nomail.csv", ["name,phone", "Ann,+441234567890"])

    result = local_command(stack, "upload", str(path), "--wait")

    assert result.returncode == 1
    reason = "incomplete header: missing mail column(s)"
    assert re.match(r"Job [0-9a-f]{32}: FAILED", result.stdout.splitlines()[1]), result.stdout
    assert re.fullmatch(rf"error: job [0-9a-f]{{32}} FAILED: {re.escape(reason)}[^\n]*\n", result.stderr), result.stderr
    assert (result.stdout + result.stderr).count(reason) == 1, result.stdout + result.stderr
    assert not re.search(r" -$", result.stdout, re.M), result.stdout  # no count the job never set, shown as "-"


def test_a_large_file_goes_up_in_parts_and_its_job_is_the_uploaded_versions(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    # Over the 16 MiB threshold, and without a mail column: its job fails at the header, at once.
    path = tmp_path / "large.csv"
    row = "Someone With A Long Name,+441234567890\n"
    path.write_text("name,phone\n" + row * (17 * 1024 * 1024 // len(row) + 1), encoding="utf-8")

    result = local_command(stack, "upload", str(path), "--wait", "--json")

    assert result.returncode == 1, result.stderr
    job = last_json(result)
    bucket, key = stack.outputs["bucketName"], f"{stack.outputs['uploadsPrefix']}large.csv"
    s3 = stack.client("s3")
    assert s3.head_object(Bucket=bucket, Key=key, PartNumber=1)["PartsCount"] == 2
    assert job["jobId"] == job_id_for(bucket, key, s3.head_object(Bucket=bucket, Key=key)["VersionId"])
    assert job["status"] == "FAILED" and job["objectSize"] == path.stat().st_size


def test_a_file_with_another_suffix_is_refused_before_upload(stack: LocalStackProcess, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "users.txt", ["name,mail", "Ann,ann@suffix.example.com"])

    result = local_command(stack, "upload", str(path), "--wait")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error: users.txt does not end in .csv, .csv.gz, .tsv or .tsv.gz: local stack dev ingests only keys ending"
    )
    listed = stack.client("s3").list_objects_v2(Bucket=stack.outputs["bucketName"], Prefix="uploads/users.txt")
    assert listed.get("KeyCount") == 0


def test_upload_without_wait_prints_the_job_of_the_version_it_put(stack: LocalStackProcess) -> None:
    result = local_command(stack, "upload", str(SAMPLE), "--key", "nowait.csv", "--json")

    assert result.returncode == 0, result.stderr
    uploaded = last_json(result)
    bucket, key = stack.outputs["bucketName"], f"{stack.outputs['uploadsPrefix']}nowait.csv"
    assert (uploaded["bucket"], uploaded["key"]) == (bucket, key)
    assert uploaded["versionId"] == stack.client("s3").head_object(Bucket=bucket, Key=key)["VersionId"]
    assert uploaded["jobId"] == job_id_for(bucket, key, uploaded["versionId"])


def test_upload_wait_that_runs_out_of_time_exits_3(stack: LocalStackProcess, tmp_path: Path) -> None:
    rows = [f"Slow {n},slow{n}@timeout.example.com," for n in range(300)]
    path = write_csv(tmp_path / "slow.csv", ["name,mail,phone", *rows])

    result = local_command(stack, "upload", str(path), "--wait", "--timeout", "0.001", "--json")

    assert result.returncode == 3
    job = last_json(result)
    assert set(job) >= SUMMARY_KEYS and job["status"] not in ("COMPLETE", "COMPLETE_WITH_REJECTS", "FAILED")
    assert re.match(rf"error: job {job['jobId']} did not end within 0.001 s", result.stderr), result.stderr


# --- job and jobs ------------------------------------------------------------------------------


def test_job_shows_the_job_the_api_returns(stack: LocalStackProcess, sample_job: dict[str, Any]) -> None:
    as_json = local_command(stack, "job", sample_job["jobId"], "--json")
    shown = local_command(stack, "job", sample_job["jobId"])

    assert as_json.returncode == 0, as_json.stderr
    job = last_json(as_json)
    assert "durationSeconds" not in job  # the API's job, not upload's summary of it
    assert {k: sample_job[k] for k in job} == job
    lines = [line.split() for line in shown.stdout.splitlines()]
    assert shown.returncode == 0
    assert lines[0] == ["field", "value"] and lines[2] == ["jobId", sample_job["jobId"]]
    assert ["status", "COMPLETE"] in lines and ["rowsWritten", "10"] in lines


def test_job_that_does_not_exist_exits_1(stack: LocalStackProcess) -> None:
    result = local_command(stack, "job", "0" * 32)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"error: no job {'0' * 32} in local stack dev\n"


def test_jobs_lists_the_newest_upload_first(stack: LocalStackProcess, tmp_path: Path) -> None:
    first = upload_and_wait(stack, write_csv(tmp_path / "first.csv", ["name,mail", "A,a@order.example.com"]))
    second = upload_and_wait(stack, write_csv(tmp_path / "second.csv", ["name,mail", "B,b@order.example.com"]))

    result = local_command(stack, "jobs", "--limit", "5", "--json")
    shown = local_command(stack, "jobs", "--limit", "2")

    assert result.returncode == 0, result.stderr
    jobs = last_json(result)
    assert [j["jobId"] for j in jobs[:2]] == [second["jobId"], first["jobId"]]
    assert [j["uploadedAt"] for j in jobs] == sorted((j["uploadedAt"] for j in jobs), reverse=True)
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:3] == ["jobId", "status", "key"]
    assert lines[2].split()[:3] == [second["jobId"], "COMPLETE", "uploads/second.csv"] and len(lines) == 4


# --- get and list ------------------------------------------------------------------------------


def test_get_shows_a_user_by_email_in_any_case(stack: LocalStackProcess, sample_job: dict[str, Any]) -> None:
    as_json = local_command(stack, "get", "John@Gmail.com", "--json")
    shown = local_command(stack, "get", "john@gmail.com")

    assert as_json.returncode == 0, as_json.stderr
    user = last_json(as_json)
    assert (user["email"], user["name"], user["phone"], user["row"]) == ("john@gmail.com", "John Doe", "9876543210", 1)
    assert shown.returncode == 0
    assert ["name", "John", "Doe"] in [line.split() for line in shown.stdout.splitlines()]


def test_get_of_an_absent_user_exits_1_without_repeating_the_email(stack: LocalStackProcess) -> None:
    result = local_command(stack, "get", "nobody+tag@absent.example.com", "--json")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "error: no user with that email in local stack dev\n"


def test_list_shows_one_page_and_says_there_are_more(stack: LocalStackProcess, many_users: dict[str, Any]) -> None:
    as_json = local_command(stack, "list", "--limit", "3", "--json")
    shown = local_command(stack, "list", "--limit", "3")

    assert as_json.returncode == 0, as_json.stderr
    assert len(last_json(as_json)) == 3
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["email", "name", "phone", "updatedAt", "sourceKey", "row"]
    assert len(lines) == 2 + 3 + 1
    assert lines[-1] == "3 user(s); there are more: --all lists every one"


def test_list_all_follows_every_page(stack: LocalStackProcess, many_users: dict[str, Any]) -> None:
    result = local_command(stack, "list", "--all", "--json")

    assert result.returncode == 0, result.stderr
    listed = [user["email"] for user in last_json(result)]
    scanned = [
        item["email"]["S"]
        for page in stack.client("dynamodb").get_paginator("scan").paginate(TableName=stack.outputs["usersTableName"])
        for item in page["Items"]
    ]
    assert len(listed) == len(set(listed)) > 100
    assert sorted(listed) == sorted(scanned)


# --- targets -----------------------------------------------------------------------------------


def _stub_pulumi(folder: Path, outputs: dict[str, Any] | None, *, fail_with: str | None = None) -> Path:
    """A `pulumi` executable that records its arguments and prints `outputs` (or fails with `fail_with`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "outputs.json").write_text(json.dumps(outputs))
    if fail_with is None:
        body = f'cat "{folder}/outputs.json"\n'
    else:
        body = f"echo 'Logging in…' >&2\necho '{fail_with}' >&2\nexit 255\n"
    script = folder / "pulumi"
    script.write_text(f'#!/bin/sh\necho "$@" > "{folder}/argv"\n{body}')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def _deployed_environment(stack: LocalStackProcess, path_first: Path) -> dict[str, str]:
    """A shell set up for AWS as `local outputs --env` sets it up, with the stub first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=stack.outputs["awsEndpointUrl"],
        AWS_ACCESS_KEY_ID=stack.outputs["awsAccessKeyId"],
        AWS_SECRET_ACCESS_KEY=stack.outputs["awsSecretAccessKey"],
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PATH=f"{path_first}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def test_a_deployed_stack_is_reached_through_pulumi_outputs_and_the_callers_aws_settings(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    outputs = {k: v for k, v in stack.outputs.items() if k not in LOCAL_ONLY_OUTPUTS}
    stub = _stub_pulumi(tmp_path / "bin", outputs)
    env = _deployed_environment(stack, stub)
    path = write_csv(tmp_path / "deployed.csv", ["name,mail", "Dee Ployed,dee@deployed.example.com"])

    uploaded = run_ingest("upload", str(path), "--stack", "dev", "--wait", "--json", env=env)
    got = run_ingest("get", "dee@deployed.example.com", "--stack", "dev", "--json", env=env)

    assert uploaded.returncode == 0, uploaded.stderr
    assert last_json(uploaded)["rowsWritten"] == 1
    assert got.returncode == 0, got.stderr
    assert last_json(got)["name"] == "Dee Ployed"
    assert (stub / "argv").read_text().split() == ["stack", "output", "--json", "--show-secrets", "--stack", "dev"]


def test_rejects_read_by_a_principal_the_stack_does_not_list_names_the_setting_that_lists_readers(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    # An analyst whose own policy allows every S3 action, on a deployed stack listing no report reader.
    analyst = stack.iam_user("analyst", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}).credentials
    job = upload_and_wait(stack, write_csv(tmp_path / "unreadable.csv", ["name,mail", "Bad Mail,nope@"]))
    outputs = {k: v for k, v in stack.outputs.items() if k not in LOCAL_ONLY_OUTPUTS}
    env = _deployed_environment(stack, _stub_pulumi(tmp_path / "bin", outputs))
    env.update(AWS_ACCESS_KEY_ID=analyst.access_key_id, AWS_SECRET_ACCESS_KEY=analyst.secret_access_key)

    refused = run_ingest("rejects", job["jobId"], "--stack", "dev", env=env)

    assert refused.returncode == 2, refused.stderr
    assert "csv-ingest:reportReaders" in refused.stderr
    assert "nope@" not in refused.stderr + refused.stdout  # the rejected cell stays in the report


def test_dead_letters_peeked_at_by_a_principal_the_stack_does_not_list_names_the_setting_that_lists_operators(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    # An operator whose own policy allows every SQS and Logs action, on a deployed stack listing no
    # queueRedrivePrincipals: the DLQ's policy refuses it, and the command says which setting lists operators.
    everything = {"Effect": "Allow", "Action": ["sqs:*", "logs:*"], "Resource": "*"}
    operator = stack.iam_user("operator-unlisted", everything).credentials
    outputs = {k: v for k, v in stack.outputs.items() if k not in LOCAL_ONLY_OUTPUTS}
    env = _deployed_environment(stack, _stub_pulumi(tmp_path / "bin", outputs))
    env.update(AWS_ACCESS_KEY_ID=operator.access_key_id, AWS_SECRET_ACCESS_KEY=operator.secret_access_key)

    refused = run_ingest("dlq", "peek", "--stack", "dev", env=env)

    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: access denied"), refused.stderr
    assert "csv-ingest:queueRedrivePrincipals" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_suffix_an_upload_needs_is_the_stacks(stack: LocalStackProcess, tmp_path: Path) -> None:
    outputs = {k: v for k, v in stack.outputs.items() if k not in LOCAL_ONLY_OUTPUTS} | {"uploadsSuffixes": [".tsv"]}
    env = _deployed_environment(stack, _stub_pulumi(tmp_path / "bin", outputs))

    result = run_ingest("upload", str(SAMPLE), "--stack", "dev", env=env)

    assert result.returncode == 2
    assert result.stderr == (
        "error: users.csv does not end in .tsv: stack dev ingests only keys ending in .tsv"
        " (rename the file, or upload it as --key users.tsv)\n"
    )


def test_without_the_pulumi_cli_a_deployed_stack_exits_2_saying_what_to_do(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    env = _deployed_environment(stack, tmp_path)
    env["PATH"] = str(tmp_path)  # nothing there

    result = run_ingest("list", "--stack", "dev", env=env)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: the Pulumi CLI is not installed (no `pulumi` on PATH): install it")
    assert "or use --local" in result.stderr


def test_pulumi_failing_is_reported_with_its_last_line(stack: LocalStackProcess, tmp_path: Path) -> None:
    stub = _stub_pulumi(tmp_path / "bin", None, fail_with="error: no stack named dev found")

    result = run_ingest("jobs", "--stack", "dev", env=_deployed_environment(stack, stub))

    assert result.returncode == 2
    assert result.stderr == "error: `pulumi stack output --stack dev` failed: error: no stack named dev found\n"


def test_a_deployed_stack_without_aws_credentials_exits_2_saying_what_to_do(tmp_path: Path) -> None:
    stub = _stub_pulumi(
        tmp_path / "bin", {"apiUrl": "https://api.invalid/v1", "bucketName": "b", "uploadsPrefix": "u/"}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{stub}{os.pathsep}{env.get('PATH', '')}",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )

    result = run_ingest("list", "--stack", "dev", env=env)

    assert result.returncode == 2
    assert result.stderr.startswith("error: no AWS credentials: configure them"), result.stderr


def test_the_readmes_env_lines_point_a_users_shell_at_the_stack(stack: LocalStackProcess, tmp_path: Path) -> None:
    # A shell holding a user's keys, session token, profile and endpoint runs the README's
    # `eval "$(python -m ingest local outputs --env)"`; then boto3 there (as the aws CLI would) reaches
    # the emulator as its administrator, and the API answers with the exported key, as curl would.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os, urllib.request, boto3\n"
        "identity = boto3.client('sts').get_caller_identity()\n"
        "request = urllib.request.Request(os.environ['INGEST_API_URL'] + '/users?limit=1',"
        " headers={'x-api-key': os.environ['INGEST_API_KEY']})\n"
        "with urllib.request.urlopen(request) as answer:\n"
        "    print(json.dumps({'arn': identity['Arn'], 'status': answer.status,"
        " 'token': os.environ.get('AWS_SESSION_TOKEN'), 'profile': os.environ.get('AWS_PROFILE')}))\n"
    )
    outputs = f"{sys.executable} -m ingest local outputs --env --stack {stack.stack} --state-dir {stack.state_root}"
    shell = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | USER_AWS_ENVIRONMENT | USER_ENDPOINT
    ran = subprocess.run(
        ["bash", "-c", f'set -e; eval "$({outputs})"; {sys.executable} {probe}'],
        cwd=REPO_ROOT,
        env=shell,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert seen["status"] == 200
    assert seen["token"] is None and seen["profile"] is None  # the user's, unset
    assert seen["arn"].split(":")[4] == ACCOUNT_ID  # the emulator's account answered, not the user's endpoint


def test_a_local_stack_that_is_not_running_exits_2_saying_how_to_start_it(tmp_path: Path) -> None:
    result = run_ingest("get", "ann@example.com", "--local", "--stack", "prod", "--state-dir", str(tmp_path))

    assert result.returncode == 2
    hint = f"{Path(sys.executable).relative_to(REPO_ROOT)} -m ingest local up --stack prod --state-dir {tmp_path}"
    assert result.stderr == f"error: stack prod is not running locally: start it with `{hint}`\n"


@pytest.mark.parametrize("command", ["upload", "job", "jobs", "get", "list", "rejects"])
def test_every_everyday_command_has_help_with_an_example(command: str) -> None:
    commands = next(a for a in parser()._actions if a.dest == "command")
    text = commands.choices[command].format_help()

    assert f"example: python -m ingest {command} " in text
    assert "--local" in text and "--stack NAME" in text and "--state-dir" not in text


# --- a stack whose API wants IAM signatures ------------------------------------------------------


@pytest.fixture(scope="module")
def iam_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    """prod, whose API is in `iam` mode: no key, every request signed with SigV4."""
    state = tmp_path_factory.mktemp("iam-state")
    with local_stack(state, "--set", "workerBatchingWindowSeconds=0", stack="prod") as running:
        yield running


def test_an_iam_stacks_api_is_signed_with_the_targets_credentials(iam_stack: LocalStackProcess, tmp_path: Path) -> None:
    assert "apiKey" not in iam_stack.outputs
    outputs = {k: v for k, v in iam_stack.outputs.items() if k not in LOCAL_ONLY_OUTPUTS}
    env = _deployed_environment(iam_stack, _stub_pulumi(tmp_path / "bin", outputs))

    uploaded = local_command(iam_stack, "upload", str(SAMPLE), "--wait", "--json")  # the admin keys sign
    deployed = run_ingest("get", "john@gmail.com", "--stack", "prod", "--json", env=env)  # the caller's keys sign
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    refused = run_ingest("get", "john@gmail.com", "--stack", "prod", env=env)

    assert uploaded.returncode == 0, uploaded.stderr
    assert last_json(uploaded)["rowsWritten"] == 10
    assert deployed.returncode == 0, deployed.stderr
    assert last_json(deployed)["name"] == "John Doe"
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: GET /users/{email}: HTTP 403"), refused.stderr


# --- pieces without a stack ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [16 * 1024**2, 160 * 1024**3, 5 * 1024**4])
def test_parts_are_whole_mebibytes_of_at_least_16_and_never_over_10_000(size: int) -> None:
    step = part_size(size)

    assert step >= 16 * 1024**2 and step % 1024**2 == 0
    assert -(-size // step) <= 10_000


def test_a_report_part_of_another_layout_is_refused_naming_it() -> None:
    with pytest.raises(TargetError, match=r"^reports/j/rejects-0001.csv: not a rejects report part"):
        list(parse_part(io.StringIO("name,mail\nAnn,ann@example.com\n"), "reports/j/rejects-0001.csv"))
