"""A runtime's interpreter is found where it is installed, and only a final CPython of its version is taken."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import infra.interpreters as interpreters
from infra.interpreters import InterpreterNotFound, find_interpreter


@pytest.fixture
def only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A PATH of one folder, and no pyenv or uv Pythons: the candidates are what the test puts there."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "no-uv"))
    interpreters.search.cache_clear()
    yield folder
    interpreters.search.cache_clear()


def _fake(folder: Path, name: str, answer: str) -> Path:
    """An executable that answers the interpreter's question with `answer`, whatever it is asked."""
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{answer}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_real_interpreter_of_the_runtime_is_found_with_its_cache_tag() -> None:
    found = find_interpreter("python3.12")

    assert found.version[:2] == (3, 12)
    assert found.cache_tag == "cpython-312"
    assert os.access(found.executable, os.X_OK)


def test_a_python_of_another_version_under_the_runtimes_name_is_passed_over_and_named(only: Path) -> None:
    fake = _fake(only, "python3.13", f"cpython cpython-312 final 3 12 1 {only}/python3.13")

    with pytest.raises(InterpreterNotFound) as missing:
        find_interpreter("python3.13")

    assert f"passed over: {fake} is cpython 3.12.1" in str(missing.value)
    assert "install it with `pyenv install 3.13` or `uv python install 3.13`" in str(missing.value)


def test_a_pre_release_is_passed_over_its_bytecode_would_not_be_read(only: Path) -> None:
    fake = _fake(only, "python3.13", f"cpython cpython-313 beta 3 13 0 {only}/python3.13")

    with pytest.raises(InterpreterNotFound, match=f"{fake} is cpython 3.13.0 beta, a pre-release"):
        find_interpreter("python3.13")


def test_a_missing_interpreter_is_looked_for_once(only: Path) -> None:
    with pytest.raises(InterpreterNotFound):
        find_interpreter("python3.13")
    _fake(only, "python3.13", f"cpython cpython-313 final 3 13 1 {only}/python3.13")

    with pytest.raises(InterpreterNotFound):  # the outcome is kept for the process
        find_interpreter("python3.13")
    interpreters.search.cache_clear()
    assert find_interpreter("python3.13").version == (3, 13, 1)
