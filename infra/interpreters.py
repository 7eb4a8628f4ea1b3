"""The Python interpreter of a Lambda runtime (`python3.13`) on this machine, wherever it is installed.

Two things need the runtime's own interpreter, not the one running the program: the archives'
bytecode (a `.pyc` is only read by the interpreter version that wrote it: PEP 3147), and local mode,
which runs each function as Lambda does, on its declared runtime. It is looked for, in this order:
`python3.N` on PATH, pyenv's versions (`$PYENV_ROOT`, or `~/.pyenv`), and uv's managed Pythons
(`$UV_PYTHON_INSTALL_DIR`, or `~/.local/share/uv/python`). Each candidate is asked its version,
since a pyenv shim on PATH may stand for a version that is not installed.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# A Lambda Python runtime identifier (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
_RUNTIME = re.compile(r"^python(3)\.(\d+)$")
# What a candidate prints about itself: its real path, its cache tag and its version.
_ASK = (
    "import sys; print(sys.implementation.name, sys.implementation.cache_tag, sys.version_info.releaselevel,"
    " *sys.version_info[:3], sys.executable)"
)
_ASK_TIMEOUT_SECONDS = 30


class InterpreterNotFound(LookupError):
    """No interpreter of a runtime's version is installed; the message says where it looked and how to install one."""


@dataclass(frozen=True)
class Interpreter:
    """A CPython of a runtime's minor version: where it is, and the tag its bytecode files carry."""

    runtime: str
    """The Lambda runtime it stands for, e.g. `python3.13`."""
    executable: Path
    """The interpreter itself (a pyenv shim resolved to the binary it runs)."""
    version: tuple[int, int, int]
    cache_tag: str
    """`cpython-313`: what names its bytecode files (`app.cpython-313.pyc`)."""

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def runtime_version(runtime: str) -> tuple[int, int]:
    """`python3.13` → (3, 13)."""
    matched = _RUNTIME.match(runtime)
    if matched is None:
        raise ValueError(f"{runtime!r} is not a Lambda Python runtime identifier (python3.N)")
    return int(matched.group(1)), int(matched.group(2))


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _uv_root() -> Path:
    return Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local" / "share" / "uv" / "python")


def _newest_first(paths: Iterator[Path]) -> list[Path]:
    """Installed versions' folders, the highest patch release first (`3.13.10` before `3.13.9`)."""

    def patch(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))

    return sorted(paths, key=patch, reverse=True)


def _candidates(major: int, minor: int) -> Iterator[Path]:
    name = f"python{major}.{minor}"
    on_path = shutil.which(name)
    if on_path is not None:
        yield Path(on_path)
    yield from _newest_first(_pyenv_root().glob(f"versions/{major}.{minor}.*/bin/{name}"))
    yield from _newest_first(_uv_root().glob(f"cpython-{major}.{minor}.*/bin/{name}"))


def _ask(candidate: Path, runtime: str) -> Interpreter | str:
    """The candidate as an `Interpreter`, or why it is not one (it does not run, or is another Python)."""
    try:
        answer = subprocess.run(
            [str(candidate), "-I", "-S", "-c", _ASK],
            capture_output=True,
            text=True,
            timeout=_ASK_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{candidate} did not answer within {_ASK_TIMEOUT_SECONDS} s"
    except OSError as error:
        return f"{candidate} does not run ({error.strerror})"
    fields = answer.stdout.split(maxsplit=6) if answer.returncode == 0 else []
    if len(fields) != 7:
        return f"{candidate} does not run (exit {answer.returncode})"
    implementation, cache_tag, level = fields[:3]
    version = (int(fields[3]), int(fields[4]), int(fields[5]))
    found = f"{candidate} is {implementation} {'.'.join(map(str, version))}"
    if implementation != "cpython" or version[:2] != runtime_version(runtime):
        return found
    # A pre-release writes bytecode of another magic number, which the runtime's final release ignores.
    if level != "final":
        return f"{found} {level}, a pre-release"
    return Interpreter(runtime, Path(fields[6].strip()), version, cache_tag)


@functools.cache
def search(runtime: str) -> Interpreter | str:
    """The interpreter of `runtime`, or why there is none: the outcome is kept for the process, so a
    missing interpreter is not looked for again (`search.cache_clear()` forgets it)."""
    major, minor = runtime_version(runtime)
    passed_over = []
    for candidate in _candidates(major, minor):
        found = _ask(candidate, runtime)
        if isinstance(found, Interpreter):
            return found
        passed_over.append(found)
    return (
        f"no Python {major}.{minor} for the {runtime} runtime: looked for python{major}.{minor} on PATH,"
        f" in {_pyenv_root() / 'versions'} and in {_uv_root()}"
        + (f" (passed over: {'; '.join(passed_over)})" if passed_over else "")
        + f"; install it with `pyenv install {major}.{minor}` or `uv python install {major}.{minor}`"
    )


def find_interpreter(runtime: str) -> Interpreter:
    """The interpreter of `runtime` (`python3.13`); `InterpreterNotFound` says where it looked."""
    found = search(runtime)
    if isinstance(found, str):
        raise InterpreterNotFound(found)
    return found
