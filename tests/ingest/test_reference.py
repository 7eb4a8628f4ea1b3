"""The README's command reference and the packaging metadata say what the code does."""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from ingest.cli import parser
from ingest.reference import EXAMPLE, readme_block, render_reference, subcommands

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
# requirements.txt's packages that only the tests and CI use (tests, lint, benchmarks, the policy linter,
# the AWS CLI and libcurl the README's lines are run with): never installed with the command.
DEV_ONLY = {"pytest", "pytest-xdist", "ruff", "py-spy", "hypothesis", "schemathesis", "parliament", "awscli", "pycurl"}


def test_readme_command_reference_matches_the_parser():
    assert readme_block(README.read_text()) == render_reference(), "regenerate with: python -m ingest.reference --write"


def test_every_subcommand_has_a_description_and_an_example_that_parses():
    root = parser()
    for command, _help in subcommands(root):
        assert command.description, f"{command.prog}: no description"
        assert command.epilog and command.epilog.startswith(EXAMPLE), f"{command.prog}: no example in --help"
        # The command inside the example's shell line (which may wrap it, as `eval "$(…)"`).
        found = re.search(r"python -m ingest ([^)\"]+)", command.epilog)
        assert found, f"{command.prog}: its example does not run python -m ingest"
        argv = shlex.split(found.group(1))
        parsed = root.parse_args(argv)  # an example the parser refuses exits here, naming it
        assert callable(parsed.run), f"{command.prog}: its example runs nothing"


def test_the_console_script_is_the_command_line():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    module, _, function = project["scripts"]["csv-ingest"].partition(":")
    assert getattr(importlib.import_module(module), function) is importlib.import_module("ingest.cli").main


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>~! ]", requirement, maxsplit=1)[0].lower()


def test_pyproject_dependencies_are_requirements_txt_without_the_test_tools():
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    pinned = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert sorted(declared) == sorted(r for r in pinned if _name(r) not in DEV_ONLY), (
        "pyproject.toml's dependencies must be requirements.txt's pins, less the test, lint and benchmark tools"
    )


def test_the_command_line_loads_neither_the_emulator_nor_pulumi_until_a_command_runs_a_stack():
    # Everyday commands (get, list, job, upload --stack …) start in a quarter of a second instead of
    # two thirds: moto and Pulumi are imported by `local up`, `demo` and `plan` only, when they run.
    probe = "import sys, ingest.cli; ingest.cli.parser(); print(sorted({'moto', 'pulumi'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
