"""Every package a command of this repository installs is pinned in a lock and checked against its hashes.

pip's hash-checking mode refuses a package whose version or bytes differ from the lock, and refuses
any requirement without a hash (https://pip.pypa.io/en/stable/topics/secure-installs/). An install
without `--require-hashes`, or naming a package beside the lock, takes whatever the index serves that
day: for `make lock`, the very tool that writes the project's hashes.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from infra.packaging import locked_versions

REPO_ROOT = Path(__file__).resolve().parents[1]
CI_SCRIPT = REPO_ROOT / ".ci" / "run"
# pip options that take a value (the next argument), as the install commands here may write them.
_VALUED = {"-r", "--requirement", "-c", "--constraint"}


def _make(*arguments: str) -> str:
    return subprocess.run(
        ["make", "--no-print-directory", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout


def _makefile_commands(target: str) -> list[str]:
    """The commands `make <target>` runs, variables expanded by make itself (`-n`: printed, not run).

    `target` as the Makefile writes it: make expands its variables first (`$(VENV)/.installed`).
    """
    expanded = _make("-s", f"--eval=__expand: ; @echo {target}", "__expand").strip()
    printed = _make("-n", "-B", expanded)
    return [line.strip() for line in printed.replace("\\\n", " ").splitlines() if line.strip()]


def _makefile_targets_that_install() -> list[str]:
    """Each Makefile rule whose recipe runs `pip install`, as written (`$(VENV)/.installed`, `lock`)."""
    targets, rule = [], None
    for line in (REPO_ROOT / "Makefile").read_text().splitlines():
        if line and not line[0].isspace() and ":" in line and not line.startswith("#") and "=" not in line:
            rule = line.split(":", 1)[0].strip()
        elif line.startswith("\t") and "pip install" in line and rule not in targets:
            targets.append(rule)
    return targets


def _ci_commands() -> list[str]:
    text = CI_SCRIPT.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _install_arguments(command: str) -> list[str] | None:
    """The arguments after `pip install` in a shell command (`…/pip install`, `python -m pip install`)."""
    words = shlex.split(command)
    for i, word in enumerate(words[:-1]):
        is_pip = Path(word).name == "pip" or (word == "pip" and i > 0 and words[i - 1] == "-m")
        if is_pip and words[i + 1] == "install":
            return words[i + 2 :]
    return None


def unhashed_install(command: str) -> str | None:
    """Why this command installs something that is not hash-checked from a lock file; None if it does not."""
    arguments = _install_arguments(command)
    if arguments is None:
        return None
    if "--require-hashes" not in arguments:
        return "pip install without --require-hashes"
    requirement_files = []
    for i, argument in enumerate(arguments):
        if argument in _VALUED:
            if argument in {"-r", "--requirement"}:
                requirement_files.append(arguments[i + 1])
            continue
        if i > 0 and arguments[i - 1] in _VALUED:
            continue
        if argument in {"-e", "--editable"} or not argument.startswith("-"):
            return f"installs {argument!r} beside the lock"
    if not requirement_files:
        return "installs no requirements file"
    for name in requirement_files:
        if not name.endswith(".lock") or not (REPO_ROOT / name).is_file():
            return f"-r {name} is not a lock file of this repository"
    return None


def _lock_files_installed() -> set[str]:
    found = set()
    for command in [*(c for t in _makefile_targets_that_install() for c in _makefile_commands(t)), *_ci_commands()]:
        arguments = _install_arguments(command) or []
        found |= {arguments[i + 1] for i, a in enumerate(arguments[:-1]) if a in {"-r", "--requirement"}}
    return found


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (".venv/bin/pip install --require-hashes -r requirements.lock", None),
        (".venv/bin/python -m pip install --quiet --require-hashes -r requirements-tools.lock", None),
        (".venv-tools/bin/pip install --quiet pip-tools==7.6.2", "without --require-hashes"),
        (".venv/bin/pip install --require-hashes -r requirements.lock pip-tools", "'pip-tools' beside the lock"),
        (".venv/bin/pip install --require-hashes -e .", "'-e' beside the lock"),
        (".venv/bin/pip install --require-hashes -r requirements.txt", "not a lock file"),
        ("python3 -m venv .venv", None),
    ],
)
def test_the_check_tells_a_hashed_install_from_one_that_is_not(command: str, reason: str | None) -> None:
    found = unhashed_install(command)
    if reason is None:
        assert found is None, (command, found)
    else:
        assert found is not None and reason in found, (command, found)


def test_make_lock_installs_its_tool_only_from_a_hashed_lock() -> None:
    commands = _makefile_commands("lock")
    installs = [c for c in commands if _install_arguments(c) is not None]
    assert installs, f"make lock installs nothing? {commands}"
    problems = {c: unhashed_install(c) for c in installs if unhashed_install(c)}
    assert not problems, f"make lock: {problems}"


def test_every_install_of_make_and_ci_is_hash_checked_from_a_lock() -> None:
    targets = _makefile_targets_that_install()
    assert {"lock", "$(VENV)/.installed"} <= set(targets), targets
    commands = [c for t in targets for c in _makefile_commands(t)] + _ci_commands()
    problems = {c: unhashed_install(c) for c in commands if unhashed_install(c)}
    assert not problems, problems


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-tools.lock"])
def test_each_lock_pins_its_requirements_file_and_hashes_every_pin(lock: str) -> None:
    assert lock in _lock_files_installed(), f"nothing installs {lock}"
    source = REPO_ROOT / lock.replace(".lock", ".txt")
    wanted, locked = locked_versions(source), locked_versions(REPO_ROOT / lock)
    assert wanted, f"{source.name} pins nothing"
    assert {name: locked.get(name) for name in wanted} == wanted, f"regenerate {lock}: make lock"
    lines = (REPO_ROOT / lock).read_text().splitlines()
    pins = [i for i, line in enumerate(lines) if line[:1].isalnum() and "==" in line]
    assert len(pins) == len(locked), f"{lock}: a pin locked_versions does not read"
    unhashed = [lines[i] for i in pins if not lines[i + 1].lstrip().startswith("--hash=sha256:")]
    assert not unhashed, f"{lock} pins without hashes: {unhashed}"


def _options(command: str) -> set[str]:
    """A pip-compile command's options and files, `--opt value` written as pip-compile's header does."""
    words = shlex.split(command.replace("--output-file ", "--output-file="))
    return {w for w in words[1:] if w != "--quiet"}


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-tools.lock"])
def test_each_lock_header_is_the_command_make_lock_runs(lock: str) -> None:
    # The header is the lock's own record of how it was written: `make lock` must write it that way.
    header = re.search(r"^#\s+(pip-compile .*)$", (REPO_ROOT / lock).read_text(), re.MULTILINE)
    assert header, f"{lock} has no pip-compile command in its header"
    compiles = [c for c in _makefile_commands("lock") if Path(shlex.split(c)[0]).name == "pip-compile"]
    written = [c for c in compiles if f"--output-file={lock}" in _options(c)]
    assert len(written) == 1, f"make lock does not write {lock}: {compiles}"
    assert _options(written[0]) == _options(header.group(1)), (written[0], header.group(1))
