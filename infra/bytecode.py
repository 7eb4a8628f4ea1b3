"""An archive's bytecode, compiled by its runtime's own interpreter, so a cold start reads it instead of compiling.

Lambda's task root is read-only, so an archive of sources alone is compiled again at every cold
start, handlers and bundled libraries alike (BENCHMARKS.md §8 measures what that costs). A `.pyc`
is read only by the interpreter version that wrote it (its name carries the version's cache tag,
PEP 3147), hence compiled by the runtime's interpreter (`infra.interpreters`). Each is an
*unchecked hash-based* pyc (PEP 552): the interpreter reads it without comparing it with its source's
modification time, which a zip cannot carry exactly (2-second resolution, and our entries' times are
fixed), and its bytes depend on the source and the interpreter's version only, so an archive stays
reproducible: the same on every machine with the same CPython release. (Releases of one minor version
usually compile alike, but not always: python/cpython#135390 changed 3.13's bytecode in a patch
release and rolled it back.) Its recorded file
name is the archive path (`handlers/worker/app.py`), never the checkout's; loading it, the import
system puts the real path in tracebacks (`_imp._fix_co_filename`, called by
`importlib._bootstrap_external._compile_bytecode`).

Compiled files are kept in a cache keyed by the interpreter's version, how they are compiled, the
archive path and the source's hash: a rebuild compiles only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from infra.interpreters import Interpreter

# Run by the runtime's interpreter: compiles each (source, pyc, archive name) it is given on stdin,
# and prints a JSON object of the names that failed with why.
_COMPILE = """
import json, py_compile, sys
failed = {}
for source, target, name in json.load(sys.stdin):
    try:
        py_compile.compile(source, cfile=target, dfile=name, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError as error:
        line = getattr(error.exc_value, "lineno", None)
        failed[name] = (f"line {line}: " if line else "") + error.msg.strip().splitlines()[-1]
print(json.dumps(failed))
"""
# What `_COMPILE` makes, in the cache's path: a change to how files are compiled never reuses old ones.
_COMPILED_AS = "unchecked-hash-opt0"
_COMPILE_TIMEOUT_SECONDS = 300


class CompileError(RuntimeError):
    """A source the runtime's interpreter cannot compile: the archive would fail to import on Lambda."""


def pyc_name(name: str, interpreter: Interpreter) -> str:
    """Where the import system looks for a module's bytecode: `a/b.py` → `a/__pycache__/b.cpython-313.pyc`."""
    path = PurePosixPath(name)
    return (path.parent / "__pycache__" / f"{path.stem}.{interpreter.cache_tag}.pyc").as_posix()


def _cached_path(cache: Path, name: str, source: bytes) -> Path:
    digest = hashlib.sha256(name.encode() + b"\0" + source).hexdigest()
    return cache / f"{digest}.pyc"


def compiled(sources: Sequence[tuple[str, Path, bytes]], interpreter: Interpreter, cache_dir: Path) -> dict[str, bytes]:
    """The bytecode of each `(archive name, file, its bytes)` source, by the name of its `.pyc` in the archive."""
    cache = cache_dir / interpreter.version_text / _COMPILED_AS
    cache.mkdir(parents=True, exist_ok=True)
    wanted = {name: _cached_path(cache, name, data) for name, _, data in sources}
    missing = [(name, path) for name, path, _ in sources if not wanted[name].is_file()]
    if missing:
        _compile(missing, wanted, interpreter, cache)
    return {pyc_name(name, interpreter): wanted[name].read_bytes() for name, _, _ in sources}


def _compile(missing: list[tuple[str, Path]], wanted: dict[str, Path], interpreter: Interpreter, cache: Path) -> None:
    # Compiled into a folder of our own, then each renamed into the cache: a build running at the
    # same time (two stacks started at once) reads a whole file or none.
    with tempfile.TemporaryDirectory(dir=cache, prefix=".compiling-") as scratch:
        jobs = [(str(path), str(Path(scratch) / f"{index}.pyc"), name) for index, (name, path) in enumerate(missing)]
        done = subprocess.run(
            [str(interpreter.executable), "-I", "-S", "-c", _COMPILE],
            input=json.dumps(jobs),
            capture_output=True,
            text=True,
            timeout=_COMPILE_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise CompileError(
                f"{interpreter.executable} ({interpreter.runtime}) could not compile the archive's sources:"
                f" {done.stderr.strip()[-500:]}"
            )
        failed: dict[str, str] = json.loads(done.stdout)
        if failed:
            name, why = sorted(failed.items())[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise CompileError(
                f"{name} does not compile on {interpreter.runtime} ({interpreter.version_text}): {why}{more}"
            )
        for _, target, name in jobs:
            os.replace(target, wanted[name])
