"""What a function's process runs on: its runtime's interpreter and the SDK that runtime provides.

Lambda runs a `python3.13` function on CPython 3.13, with boto3 and its dependencies in
/var/runtime (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html). Local mode does the
same: the interpreter comes from `infra.interpreters` (PATH, pyenv, uv), and the SDK is installed once
per machine, hash-checked from `local/runtime-sdk.lock`, into a folder of its own in the user's
cache (`$XDG_CACHE_HOME/csv-ingest/runtimes/`, by default `~/.cache/…`, as pip keeps its own: every
checkout and stack of the machine shares it), never the project venv's boto3, which is newer than
the runtime's. Code that
uses a module the runtime's Python removed (`cgi` in 3.13), or an SDK call the runtime's boto3 lacks,
fails locally as it fails on AWS.

Where the interpreter is missing, `Runtime.fallback` says so in one line and the functions run on
this process's interpreter (`local up --strict` refuses instead).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.interpreters import InterpreterNotFound, find_interpreter

SDK_LOCK = Path(__file__).with_name("runtime-sdk.lock")
# The XDG base directory specification's cache folder
# (https://specifications.freedesktop.org/basedir-spec/latest/): what may be deleted and made again.
RUNTIMES_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "csv-ingest" / "runtimes"
# pip over a slow index: an install of seven wheels (about 13 MB) well within this.
INSTALL_TIMEOUT_SECONDS = 600


class RuntimeUnavailable(RuntimeError):
    """The runtime's SDK could not be installed (offline, an index refusing a hash): start-up stops."""


class RuntimeMissing(RuntimeError):
    """The runtime's interpreter is not installed and `--strict` asked not to run on another."""


@dataclass(frozen=True)
class Runtime:
    """What a function of one Lambda runtime runs on here."""

    name: str
    """The Lambda runtime identifier, e.g. `python3.13`."""
    executable: Path
    libraries: Path
    """The runtime's SDK (Lambda's /var/runtime): on the function's path after its task root."""
    fallback: str | None = None
    """One line saying the runtime's interpreter is missing and what runs instead; None when it is its own."""


def install_command(python: Path, target: Path, lock: Path = SDK_LOCK) -> list[str]:
    """pip's hash-checking install of the lock into `target` (https://pip.pypa.io/en/stable/topics/secure-installs/):
    pip refuses any package whose version or bytes differ from the lock. Run with the project's own pip,
    for the runtime's Python version (every package of the lock is pure Python); the index and
    find-links pip already has are used as they are."""
    return [
        str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--only-binary=:all:", "--no-compile", "--require-hashes", f"--target={target}", "-r", str(lock),
    ]  # fmt: skip


def lock_digest(lock: Path = SDK_LOCK) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:16]


def sdk_folder(runtime: str, *, lock: Path = SDK_LOCK, root: Path = RUNTIMES_ROOT) -> Path:
    """The runtime's SDK, installed from the lock if this machine has not got it yet.

    Made once per machine and lock: in a temporary folder beside its place, compiled with the runtime's
    interpreter where there is one (Lambda's /var/runtime ships its bytecode, and a cold start reads it),
    then renamed into place, under a file lock, so that stacks starting at once (three test workers)
    neither install it twice nor read a half-made one."""
    final = root / f"{runtime}-{lock_digest(lock)}"
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{final.name}.lock"):
        if final.is_dir():  # another process made it while this one waited
            return final
        temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
        try:
            _install(runtime, temporary, lock)
            _compile(runtime, temporary)
            os.rename(temporary, final)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return final


def resolve(runtime: str, *, lock: Path = SDK_LOCK, root: Path = RUNTIMES_ROOT, strict: bool = False) -> Runtime:
    """The interpreter and SDK of `runtime`; on this process's interpreter, said in `fallback`, when
    the runtime's is not installed (`RuntimeMissing` instead when `strict`)."""
    libraries = sdk_folder(runtime, lock=lock, root=root)
    try:
        return Runtime(runtime, find_interpreter(runtime).executable, libraries)
    except InterpreterNotFound as error:
        if strict:
            raise RuntimeMissing(f"{error} (--strict: local mode does not run them on another Python)") from None
        here = ".".join(map(str, sys.version_info[:3]))
        line = f"{error}; its functions run on this Python ({here}) instead, which may accept what {runtime} refuses"
        return Runtime(runtime, Path(sys.executable), libraries, fallback=line)


def _install(runtime: str, target: Path, lock: Path) -> None:
    done = subprocess.run(
        install_command(Path(sys.executable), target, lock), capture_output=True, text=True,
        timeout=INSTALL_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        said = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = said[-1] if said else f"pip exited with {done.returncode}"
        raise RuntimeUnavailable(
            f"cannot install the SDK of the {runtime} runtime from {lock.name} (pip: {reason});"
            " local mode needs it once, from the package index pip is set to use"
        )


def _compile(runtime: str, target: Path) -> None:
    """The runtime's bytecode for every module, as Lambda's /var/runtime ships it; this process's too,
    for functions that fall back to it. A folder without bytecode still works, only slower to import."""
    interpreters = {Path(sys.executable)}
    with contextlib.suppress(InterpreterNotFound):
        interpreters.add(find_interpreter(runtime).executable)
    for python in interpreters:
        subprocess.run(
            [str(python), "-I", "-m", "compileall", "-q", "-j", "0", str(target)],
            capture_output=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
