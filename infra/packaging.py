"""Deterministic Lambda archives: the same code always gives the same bytes, hence no redeploy.

An archive holds the `handlers` package's shared modules, the function's own subpackage, and the
libraries the Lambda runtime lacks. From handlers/ it takes `.py` files and `py.typed` only; any
other file in a packaged folder stops the build, naming it. The libraries are copied from the
installed distributions exactly as their RECORD files list them (each file checked against its
recorded hash) and only at the version requirements.lock pins, so Lambda runs exactly the versions
the tests ran. We bundle rather
than use the public Powertools layer: a layer ARN names a layer *version* per region and
architecture that we cannot check here against the pinned package version, while a copy of the
installed files is that version by construction, and costs about 1 MB zipped.
The runtime's own boto3 is used: it ships with every Python runtime, and the handlers call only
long-stable APIs (S3 GetObject/PutObject, SQS SendMessageBatch, DynamoDB item and transaction calls).

Every `.py` of an archive ships with its bytecode, compiled by the declared runtime's interpreter
(`infra.bytecode`): Lambda's task root is read-only, so without it each cold start compiles every
module it imports. Where that interpreter is not installed, the archive holds sources alone and
`FunctionArchive.without_bytecode` says why; the program warns with it (it deploys and runs, but
each cold start compiles).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import os
import re
import threading
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.bytecode import CompileError, compiled
from infra.interpreters import InterpreterNotFound, find_interpreter

REPO_ROOT = Path(__file__).resolve().parents[1]
HANDLERS_DIR = REPO_ROOT / "handlers"
BUILD_DIR = REPO_ROOT / ".build"
# Compiled modules, by interpreter version and source (infra.bytecode): shared by every build.
BYTECODE_CACHE = BUILD_DIR / "bytecode"
# Every installed version, pinned with hashes (pip-compile, from requirements.txt).
LOCK_FILE = REPO_ROOT / "requirements.lock"
# `name==version` or `name[extras]==version` at the start of a line of a pip requirements file.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)
# Distributions the handlers import that the Lambda Python runtime does not provide.
BUNDLED_DISTRIBUTIONS = ("aws-lambda-powertools", "typing-extensions", "jmespath")
# Shared handler code every function gets besides its own subpackage.
SHARED_PACKAGES = ("common",)
# Installer bookkeeping that differs between pip and uv, or direct and indirect installs.
_INSTALL_RECORDS = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
# Zip timestamps cannot be before 1980; a fixed one keeps the bytes reproducible.
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_COMPRESS_LEVEL = 9
# How `_write_archive` lays entries out: part of every archive's label, so a change here rewrites them.
_MODE = 0o644
_ARCHIVE_FORMAT = f"deflate-{_COMPRESS_LEVEL} {_FIXED_DATE} {_MODE:o}".encode()


class PackagingError(RuntimeError):
    """An archive would hold something other than the reviewed code and the installed libraries."""


@dataclass(frozen=True)
class FunctionArchive:
    """A built archive: where it is and its base64 SHA-256 (Lambda's `CodeSha256`)."""

    path: Path
    sha256: str
    entries: tuple[str, ...]
    without_bytecode: str | None = None
    """Why the archive holds sources alone (its runtime's interpreter is not installed), or None."""


def _is_handler_source(path: Path) -> bool:
    return path.suffix == ".py" or path.name == "py.typed"


def _handler_files(function: str) -> Iterator[tuple[str, Path]]:
    yield "handlers/__init__.py", HANDLERS_DIR / "__init__.py"
    for package in (*SHARED_PACKAGES, function):
        root = HANDLERS_DIR / package
        if not (root / "__init__.py").is_file():
            raise FileNotFoundError(f"handler package {root} is missing (expected {root / '__init__.py'})")
        for path in sorted(root.rglob("*")):
            if not path.is_file() or "__pycache__" in path.relative_to(root).parts:
                continue
            name = path.relative_to(REPO_ROOT).as_posix()
            # Whatever sits in a handler folder would ship to Lambda: a .env, an editor's folder or
            # a CSV dump has no place there, so it stops the build rather than leak.
            if not _is_handler_source(path):
                raise PackagingError(
                    f"{name} is not handler code: only .py files and py.typed are packaged; move it out of handlers/"
                )
            yield name, path


def _recorded_hash(path: Path) -> str:
    """A file's hash as a RECORD file writes it: `sha256=` and urlsafe base64 without padding."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def normalized_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (`Typing_Extensions` → `typing-extensions`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_file: Path) -> dict[str, str]:
    """The version a pip requirements file pins for each distribution, by normalised name."""
    return {normalized_name(name): version for name, version in _PIN.findall(lock_file.read_text())}


def _check_locked(name: str, dist: importlib.metadata.Distribution, pins: dict[str, str]) -> None:
    """Refuse to bundle a library whose installed version is not the one requirements.lock pins."""
    pinned = pins.get(normalized_name(name))
    if pinned is None:
        raise PackagingError(f"{name} is bundled but {LOCK_FILE.name} does not pin it: add it to requirements.txt")
    if dist.version != pinned:
        raise PackagingError(
            f"{name} {dist.version} is installed but {LOCK_FILE.name} pins {name}=={pinned}:"
            f" run pip install --require-hashes -r {LOCK_FILE.name}"
        )


def _distribution_files(name: str, pins: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """The files of an installed distribution, exactly as its RECORD lists them and unchanged since."""
    dist = importlib.metadata.distribution(name)
    _check_locked(name, dist, pins)
    if dist.read_text("RECORD") is None:
        raise PackagingError(f"{name} has no RECORD file: reinstall it with pip from requirements.lock")
    for file in dist.files or ():
        # Outside the package tree (console scripts), compiled caches, and installer bookkeeping.
        if file.parts[0] == ".." or "__pycache__" in file.parts or file.suffix == ".pyc":
            continue
        if file.name in _INSTALL_RECORDS:
            continue
        path = Path(str(dist.locate_file(file)))
        if not path.is_file():
            raise PackagingError(f"{name}: {file} is in its RECORD but not installed; reinstall it")
        if file.hash is not None and _recorded_hash(path) != f"{file.hash.mode}={file.hash.value}":
            raise PackagingError(f"{name}: {file} differs from its RECORD (changed since install); reinstall it")
        yield file.as_posix(), path


def archive_entries(function: str) -> list[tuple[str, Path]]:
    """Every (name in the archive, source file) of a function's archive, in a fixed order."""
    entries = dict(_handler_files(function))
    pins = locked_versions(LOCK_FILE)
    for dist in BUNDLED_DISTRIBUTIONS:
        entries.update(_distribution_files(dist, pins))
    return sorted(entries.items())


def _with_bytecode(paths: dict[str, Path], runtime: str) -> tuple[list[tuple[str, bytes]], str | None]:
    """Each entry's bytes and, for each `.py`, its bytecode for `runtime`; or the sources alone and why not."""
    sources = [(name, path.read_bytes()) for name, path in paths.items()]
    try:
        interpreter = find_interpreter(runtime)
    except InterpreterNotFound as missing:
        return sources, f"the archive holds no bytecode, so each cold start compiles it: {missing}"
    modules = [(name, paths[name], data) for name, data in sources if name.endswith(".py")]
    try:
        bytecode = compiled(modules, interpreter, BYTECODE_CACHE)
    except CompileError as error:
        raise PackagingError(str(error)) from None
    return sorted([*sources, *bytecode.items()]), None


def build_archive(function: str, runtime: str, build_dir: Path = BUILD_DIR) -> FunctionArchive:
    """Write `<build_dir>/<function>.zip` for `handlers/<function>` on `runtime` (`python3.13`) and return it."""
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{function}.zip"
    entries, without_bytecode = _with_bytecode(dict(archive_entries(function)), runtime)
    label = _entries_label(entries)
    # The bytes labelled and the bytes hashed are the same read: a build of other entries renaming its
    # archive over this one at the same time cannot pair its hash with these entries.
    written = _kept(target, entries, label) or _write_archive(target, entries, label)
    digest = base64.b64encode(hashlib.sha256(written).digest()).decode()
    return FunctionArchive(
        path=target,
        sha256=digest,
        entries=tuple(name for name, _ in entries),
        without_bytecode=without_bytecode,
    )


def _entries_label(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """What an archive of these entries, written as `_write_archive` writes them, is labelled with."""
    digest = hashlib.sha256(_ARCHIVE_FORMAT)
    for name, data in entries:
        digest.update(b"%d:%s%d:" % (len(name.encode()), name.encode(), len(data)))
        digest.update(data)
    return b"csv-ingest entries sha256:" + digest.hexdigest().encode()


def _kept(archive: Path, entries: Sequence[tuple[str, bytes]], label: bytes) -> bytes | None:
    """The bytes of the archive an earlier build left, if its comment is `label` and it holds exactly
    these entries (names and CRC-32s, so that one added or changed in place since is seen); else None."""
    try:
        data = archive.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as written:
            held = [(info.filename, info.CRC) for info in written.infolist()]
            comment = written.comment
    except (OSError, zipfile.BadZipFile):
        return None
    wanted = [(name, zlib.crc32(content)) for name, content in entries]
    return data if comment == label and held == wanted else None


def _write_archive(target: Path, entries: Sequence[tuple[str, bytes]], label: bytes) -> bytes:
    """The archive, its entries in order with fixed dates and modes, labelled with what it holds.

    The label (the zip comment) lets the next build of the same entries keep this file rather than
    compress it all again: every plan and every `local up` builds each archive. Written beside the
    target and renamed over it: a program run at the same time (two stacks planned or started at
    once) reads either the old archive or the new one, never half of one."""
    partial = target.with_name(f".{target.stem}.{os.getpid()}.{threading.get_ident()}.zip")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = _MODE << 16  # rw-r--r--, whatever the checkout's umask
            archive.writestr(info, data, compresslevel=_COMPRESS_LEVEL)
        archive.comment = label
    written = partial.read_bytes()
    os.replace(partial, target)
    return written
