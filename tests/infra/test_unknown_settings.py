"""A setting of ours that the program does not know stops it, naming the key and the closest known
one (issue 19, item 10): through `ingest plan` and `local up` in their own processes, from `--set`
and from `Pulumi.<stack>.yaml`, and the program as `pulumi up` runs it (its config handed over in
the PULUMI_CONFIG environment variable). Keys of other namespaces (`aws:region`) are not ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, load_config, parse_settings
from local.project import stack_settings
from tests.ingest.conftest import run_ingest
from tests.local.support import REPO_ROOT, local_processes, start_local, stop_local

COMMAND_TIMEOUT_SECONDS = 180
TYPO = "workerMaxConcurency"  # one r missing
TYPO_MESSAGE = (
    "unknown setting csv-ingest:workerMaxConcurency: did you mean csv-ingest:workerMaxConcurrency?"
    " (every setting is listed in README.md, Configuration)"
)


@pytest.fixture
def project_with_typo(tmp_path: Path) -> Path:
    """A copy of this checkout's program whose Pulumi.dev.yaml misspells workerMaxConcurrency."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if name.startswith(("tests/", "bench/")) or not source.is_file():
            continue
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(source.read_bytes())
    stack_file = tmp_path / "Pulumi.dev.yaml"
    settings = yaml.safe_load(stack_file.read_text())
    settings["config"][f"csv-ingest:{TYPO}"] = settings["config"].pop("csv-ingest:workerMaxConcurrency")
    stack_file.write_text(yaml.safe_dump(settings))
    return tmp_path


def test_an_unknown_key_names_itself_and_the_closest_known_one() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings({TYPO: 3})

    assert str(refused.value) == TYPO_MESSAGE


def test_a_key_in_another_case_is_unknown_and_names_the_one_meant() -> None:
    with pytest.raises(
        ConfigError, match=r"csv-ingest:WorkerMaxConcurrency: did you mean csv-ingest:workerMaxConcurrency\?"
    ):
        parse_settings({"WorkerMaxConcurrency": 3})


def test_a_key_like_none_of_ours_names_the_closest_without_presuming_it_was_meant() -> None:
    with pytest.raises(
        ConfigError, match=r"^unknown setting csv-ingest:zzz \(the closest known one is csv-ingest:\w+\)"
    ):
        parse_settings({"zzz": 1})


def test_load_config_refuses_an_unknown_key_the_stack_sets() -> None:
    raw = {TYPO: "3", "workerBatchSize": "10"}

    with pytest.raises(ConfigError) as refused:
        load_config(raw.get, raw)

    assert str(refused.value) == TYPO_MESSAGE


def test_a_misspelled_set_stops_the_plan() -> None:
    result = run_ingest("plan", "--stack", "dev", "--set", f"{TYPO}=3")

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {TYPO_MESSAGE}\n"


def test_a_misspelled_key_in_the_stack_file_stops_the_plan(project_with_typo: Path) -> None:
    result = run_ingest("plan", "--stack", "dev", cwd=project_with_typo)

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {TYPO_MESSAGE}\n"


def test_other_namespaces_are_not_ours() -> None:
    # aws:region and a provider's settings are Pulumi's and the providers' to check.
    result = run_ingest("plan", "--stack", "dev", "--set", "aws:skipMetadataApiCheck=true")

    assert result.returncode == 0, result.stderr


def test_a_misspelled_key_stops_local_up_and_leaves_nothing_running(project_with_typo: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"

    for where, extra in ((project_with_typo, ()), (REPO_ROOT, ("--set", f"{TYPO}=3"))):
        try:
            running = start_local(state, *extra, cwd=where, timeout=COMMAND_TIMEOUT_SECONDS)
        except AssertionError as refused:  # start_local: "local mode exited with CODE:" and its console
            assert str(refused).startswith("local mode exited with 2:"), str(refused)
            assert f"error: {TYPO_MESSAGE}" in str(refused)
        else:
            stop_local(running)
            pytest.fail(f"local up started with csv-ingest:{TYPO} set ({where})")
        assert local_processes(str(state)) == []


def test_the_program_stops_on_a_misspelled_key_as_pulumi_up_runs_it(tmp_path: Path) -> None:
    # `pulumi up` runs __main__.py with the stack's config in PULUMI_CONFIG, "project:key" → text
    # (the Python language host); here under the plan's mocks instead of an engine.
    config = {key: v if isinstance(v, str) else json.dumps(v) for key, v in stack_settings("dev").items()}
    config[f"csv-ingest:{TYPO}"] = config.pop("csv-ingest:workerMaxConcurrency")
    program = (
        "import runpy, pulumi\n"
        "from local.mocks import PlanMocks\n"
        "pulumi.runtime.set_mocks(PlanMocks('eu-west-1'), project='csv-ingest', stack='dev', preview=False)\n"
        "try:\n"
        "    runpy.run_path('__main__.py', run_name='__main__')\n"
        "except pulumi.RunError as stopped:\n"  # Pulumi prints a RunError's message alone, no traceback
        "    print('RunError:', stopped)\n"
        "    raise SystemExit(1)\n"
        "print('the program ran to its end')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_CONFIG"))}
    env["PULUMI_CONFIG"] = json.dumps(config)

    ran = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )

    assert ran.returncode != 0 and "the program ran to its end" not in ran.stdout, ran.stdout
    assert ran.stdout.strip() == f"RunError: {TYPO_MESSAGE}", (ran.stdout, ran.stderr[-2000:])
