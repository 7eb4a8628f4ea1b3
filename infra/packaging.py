"""Deterministic Lambda archives: the same code always gives the same bytes, hence no redeploy.

An archive holds the `handlers` package's shared modules, the function's own subpackage, and the
libraries the Lambda runtime lacks. Those libraries are copied from the installed distributions
(pinned in requirements.txt), so Lambda runs exactly the versions the tests ran. We bundle rather
than use the public Powertools layer: a layer ARN names a layer *version* per region and
architecture that we cannot check here against the pinned package version, while a copy of the
installed files is that version by construction, and costs about 1 MB zipped.
The runtime's own boto3 is used: it ships with every Python runtime, and the handlers call only
long-stable APIs (S3 GetObject/PutObject, SQS SendMessageBatch, DynamoDB item and transaction calls).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HANDLERS_DIR = REPO_ROOT / "handlers"
BUILD_DIR = REPO_ROOT / ".build"
# Distributions the handlers import that the Lambda Python runtime does not provide.
BUNDLED_DISTRIBUTIONS = ("aws-lambda-powertools", "typing-extensions", "jmespath")
# Shared handler code every function gets besides its own subpackage.
SHARED_PACKAGES = ("common",)
# Installer bookkeeping that differs between pip and uv, or direct and indirect installs.
_INSTALL_RECORDS = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
# Zip timestamps cannot be before 1980; a fixed one keeps the bytes reproducible.
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class FunctionArchive:
    """A built archive: where it is and its base64 SHA-256 (Lambda's `CodeSha256`)."""

    path: Path
    sha256: str
    entries: tuple[str, ...]


def _is_source(path: Path) -> bool:
    return "__pycache__" not in path.parts and path.suffix != ".pyc"


def _handler_files(function: str) -> Iterator[tuple[str, Path]]:
    yield "handlers/__init__.py", HANDLERS_DIR / "__init__.py"
    for package in (*SHARED_PACKAGES, function):
        root = HANDLERS_DIR / package
        if not (root / "__init__.py").is_file():
            raise FileNotFoundError(f"handler package {root} is missing (expected {root / '__init__.py'})")
        for path in sorted(root.rglob("*")):
            if path.is_file() and _is_source(path):
                yield path.relative_to(REPO_ROOT).as_posix(), path


def _distribution_files(name: str) -> Iterator[tuple[str, Path]]:
    dist = importlib.metadata.distribution(name)
    for file in dist.files or ():
        path = Path(str(dist.locate_file(file)))
        if file.parts[0] != ".." and path.is_file() and _is_source(path) and file.name not in _INSTALL_RECORDS:
            yield file.as_posix(), path


def archive_entries(function: str) -> list[tuple[str, Path]]:
    """Every (name in the archive, source file) of a function's archive, in a fixed order."""
    entries = dict(_handler_files(function))
    for dist in BUNDLED_DISTRIBUTIONS:
        entries.update(_distribution_files(dist))
    return sorted(entries.items())


def build_archive(function: str, build_dir: Path = BUILD_DIR) -> FunctionArchive:
    """Write `<build_dir>/<function>.zip` for `handlers/<function>` and return it with its hash."""
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{function}.zip"
    entries = archive_entries(function)
    with zipfile.ZipFile(target, "w") as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # rw-r--r--, whatever the checkout's umask
            archive.writestr(info, source.read_bytes(), compresslevel=9)
    digest = base64.b64encode(hashlib.sha256(target.read_bytes()).digest()).decode()
    return FunctionArchive(path=target, sha256=digest, entries=tuple(name for name, _ in entries))
