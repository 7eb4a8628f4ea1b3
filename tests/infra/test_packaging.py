"""Archives: each function gets its handlers and the bundled libraries, in reproducible bytes."""

import importlib.metadata
import re
import subprocess
import zipfile
from pathlib import PurePosixPath

import pytest

import infra.interpreters as interpreters
import infra.packaging as packaging
from infra.config import load_config
from infra.interpreters import find_interpreter
from infra.packaging import PackagingError, build_archive
from local.project import PROJECT, stack_settings

# The runtime the program declares for dev; this machine has its interpreter (pyenv).
RUNTIME = load_config(lambda key: stack_settings("dev").get(f"{PROJECT}:{key}")).runtime


@pytest.fixture
def handlers(tmp_path, monkeypatch):
    """A minimal handlers/ tree in a temporary repository, which the packager reads instead of ours."""
    root = tmp_path / "repo" / "handlers"
    for package in ("", "common", "worker"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "worker" / "app.py").write_text("X = 1\n")
    monkeypatch.setattr(packaging, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(packaging, "HANDLERS_DIR", root)
    return root


@pytest.fixture
def library(tmp_path, monkeypatch):
    """An installed distribution `fakelib` 1.0 in a temporary site directory, the only one bundled."""
    site = tmp_path / "site"
    (site / "fakelib").mkdir(parents=True)
    (site / "fakelib" / "__init__.py").write_text("VERSION = 1\n")
    info = site / "fakelib-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakelib\nVersion: 1.0\n")
    record = [
        f"fakelib/__init__.py,{packaging._recorded_hash(site / 'fakelib' / '__init__.py')},12",
        f"fakelib-1.0.dist-info/METADATA,{packaging._recorded_hash(info / 'METADATA')},50",
        "fakelib-1.0.dist-info/RECORD,,",
    ]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    found = importlib.metadata.PathDistribution(info)
    real = importlib.metadata.distribution
    monkeypatch.setattr(
        packaging.importlib.metadata, "distribution", lambda name: found if name == "fakelib" else real(name)
    )
    monkeypatch.setattr(packaging, "BUNDLED_DISTRIBUTIONS", ("fakelib",))
    _lock(tmp_path, monkeypatch, "FakeLib==1.0")
    return site


def _lock(tmp_path, monkeypatch, *pins):
    """Point the packager at a requirements.lock pinning these `name==version` lines."""
    lock = tmp_path / "requirements.lock"
    lock.write_text("".join(f"{pin} \\\n    --hash=sha256:{'0' * 64}\n    # via -r requirements.txt\n" for pin in pins))
    monkeypatch.setattr(packaging, "LOCK_FILE", lock)


@pytest.mark.parametrize("package", ["producer", "worker", "query"])
def test_archive_holds_the_function_its_shared_code_and_no_other_function(tmp_path, package):
    archive = build_archive(package, RUNTIME, tmp_path)
    names = set(zipfile.ZipFile(archive.path).namelist())
    assert {"handlers/__init__.py", "handlers/common/__init__.py", f"handlers/{package}/app.py"} <= names
    others = {"producer", "worker", "query"} - {package}
    assert not [n for n in names if n.split("/")[:2] in (["handlers", o] for o in others)]


def test_every_module_ships_with_the_bytecode_of_the_declared_runtime_and_no_other(tmp_path):
    tag = find_interpreter(RUNTIME).cache_tag
    names = set(zipfile.ZipFile(build_archive("worker", RUNTIME, tmp_path).path).namelist())
    sources = {n for n in names if n.endswith(".py")}
    bytecode = {n for n in names if n.endswith(".pyc")}
    # PEP 3147: a module's bytecode is in __pycache__ beside it, named for the interpreter that reads it.
    expected = {
        (PurePosixPath(n).parent / "__pycache__" / f"{PurePosixPath(n).stem}.{tag}.pyc").as_posix() for n in sources
    }
    assert bytecode == expected
    assert not [n for n in names if "__pycache__" in n and n not in bytecode]


def test_archive_bundles_powertools_at_the_tested_version(tmp_path):
    archive = build_archive("worker", RUNTIME, tmp_path)
    with zipfile.ZipFile(archive.path) as zf:
        names = zf.namelist()
        assert "aws_lambda_powertools/__init__.py" in names
        [metadata] = [n for n in names if n.startswith("aws_lambda_powertools-") and n.endswith("/METADATA")]
        version = next(line for line in zf.read(metadata).decode().splitlines() if line.startswith("Version: "))
    assert version == f"Version: {importlib.metadata.version('aws-lambda-powertools')}"


def test_unchanged_code_builds_the_same_bytes_and_hash(tmp_path):
    first = build_archive("producer", RUNTIME, tmp_path / "a")
    second = build_archive("producer", RUNTIME, tmp_path / "b")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    with zipfile.ZipFile(first.path) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_rebuild_of_unchanged_code_reuses_the_archive_and_a_change_rewrites_it(tmp_path, handlers):
    # Every plan and every `local up` builds each archive: compressing it again costs about half a
    # second a function, so an archive whose entries are unchanged is kept as it is.
    first = build_archive("worker", RUNTIME, tmp_path / "out")
    written = first.path.stat().st_mtime_ns, first.path.stat().st_ino

    again = build_archive("worker", RUNTIME, tmp_path / "out")

    assert (again.path.stat().st_mtime_ns, again.path.stat().st_ino) == written
    assert (again.sha256, again.entries) == (first.sha256, first.entries)
    (handlers / "worker" / "app.py").write_text("X = 2\n")
    changed = build_archive("worker", RUNTIME, tmp_path / "out")
    assert changed.sha256 != first.sha256
    assert zipfile.ZipFile(changed.path).read("handlers/worker/app.py") == b"X = 2\n"


def test_an_archive_damaged_or_replaced_in_place_is_written_again(tmp_path):
    first = build_archive("worker", RUNTIME, tmp_path / "out")
    for damage in (b"", first.path.read_bytes()[:-100], b"PK not a zip"):
        first.path.write_bytes(damage)
        rebuilt = build_archive("worker", RUNTIME, tmp_path / "out")
        assert rebuilt.sha256 == first.sha256
        assert zipfile.ZipFile(rebuilt.path).testzip() is None


def test_an_entry_added_to_a_built_archive_keeping_its_label_is_not_kept(tmp_path):
    first = build_archive("worker", RUNTIME, tmp_path / "out")
    with zipfile.ZipFile(first.path, "a") as archive:  # appending keeps the archive's comment
        archive.writestr("handlers/worker/injected.py", "import os\n")

    rebuilt = build_archive("worker", RUNTIME, tmp_path / "out")

    assert rebuilt.sha256 == first.sha256
    assert "handlers/worker/injected.py" not in zipfile.ZipFile(rebuilt.path).namelist()


def test_changed_code_changes_the_hash(tmp_path, handlers):
    before = build_archive("worker", RUNTIME, tmp_path / "out")
    (handlers / "worker" / "app.py").write_text("X = 2\n")
    after = build_archive("worker", RUNTIME, tmp_path / "out")
    assert before.sha256 != after.sha256


@pytest.mark.parametrize("stray", [".env", ".env.local", ".idea/workspace.xml", "users.csv", "notes/README.md"])
def test_a_stray_file_in_a_handler_folder_fails_the_build_naming_it(tmp_path, handlers, stray):
    path = handlers / "worker" / stray
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("SECRET=1\n")
    with pytest.raises(PackagingError, match=re.escape(f"handlers/worker/{stray} is not handler code")):
        build_archive("worker", RUNTIME, tmp_path / "out")
    (handlers / "worker" / stray).unlink()
    shared = handlers / "common" / stray
    shared.parent.mkdir(parents=True, exist_ok=True)
    shared.write_text("SECRET=1\n")
    with pytest.raises(PackagingError, match=re.escape(f"handlers/common/{stray}")):
        build_archive("worker", RUNTIME, tmp_path / "out")


def test_only_python_sources_and_py_typed_are_taken_from_handlers(tmp_path, handlers):
    (handlers / "common" / "py.typed").write_text("")
    (handlers / "worker" / "__pycache__").mkdir()
    (handlers / "worker" / "__pycache__" / "app.cpython-313.pyc").write_bytes(b"\0")
    (handlers / "query").mkdir()
    (handlers / "query" / "data.csv").write_text("another function's folder is not packaged\n")
    names = set(build_archive("worker", RUNTIME, tmp_path / "out").entries)
    handler_names = {n for n in names if n.startswith("handlers/") and not n.endswith(".pyc")}
    assert handler_names == {
        "handlers/__init__.py",
        "handlers/common/__init__.py",
        "handlers/common/py.typed",
        "handlers/worker/__init__.py",
        "handlers/worker/app.py",
    }


def test_libraries_are_taken_exactly_as_their_record_lists_them(tmp_path, handlers, library):
    (library / "fakelib" / "stray.txt").write_text("not installed by pip\n")
    names = set(build_archive("worker", RUNTIME, tmp_path / "out").entries)
    assert {n for n in names if not n.startswith("handlers/") and not n.endswith(".pyc")} == {
        "fakelib/__init__.py",
        "fakelib-1.0.dist-info/METADATA",
    }


def test_a_library_file_changed_since_install_fails_the_build(tmp_path, handlers, library):
    (library / "fakelib" / "__init__.py").write_text("VERSION = 2  # patched in place\n")
    with pytest.raises(PackagingError, match=re.escape("fakelib: fakelib/__init__.py differs from its RECORD")):
        build_archive("worker", RUNTIME, tmp_path / "out")


def test_a_library_file_missing_from_the_install_fails_the_build(tmp_path, handlers, library):
    (library / "fakelib" / "__init__.py").unlink()
    with pytest.raises(
        PackagingError, match=re.escape("fakelib: fakelib/__init__.py is in its RECORD but not installed")
    ):
        build_archive("worker", RUNTIME, tmp_path / "out")


def test_a_bundled_library_at_another_version_than_the_lock_fails_the_build(tmp_path, monkeypatch, handlers, library):
    _lock(tmp_path, monkeypatch, "fakelib==1.1")
    with pytest.raises(
        PackagingError, match=re.escape("fakelib 1.0 is installed but requirements.lock pins fakelib==1.1")
    ):
        build_archive("worker", RUNTIME, tmp_path / "out")


def test_a_bundled_library_the_lock_does_not_pin_fails_the_build(tmp_path, monkeypatch, handlers, library):
    _lock(tmp_path, monkeypatch, "otherlib==1.0")
    with pytest.raises(PackagingError, match=re.escape("fakelib is bundled but requirements.lock does not pin it")):
        build_archive("worker", RUNTIME, tmp_path / "out")


def test_the_lock_pins_every_requirement_at_its_version_with_hashes():
    # requirements.txt is the list people edit; a change there without regenerating the lock
    # (see its header) would install, test and bundle the old version.
    wanted = packaging.locked_versions(packaging.REPO_ROOT / "requirements.txt")
    locked = packaging.locked_versions(packaging.LOCK_FILE)
    assert {name: locked.get(name) for name in wanted} == wanted, "regenerate requirements.lock (see its header)"
    lines = packaging.LOCK_FILE.read_text().splitlines()
    pins = [i for i, line in enumerate(lines) if line[:1].isalnum() and "==" in line]
    assert len(pins) == len(locked)
    unhashed = [lines[i] for i in pins if not lines[i + 1].lstrip().startswith("--hash=sha256:")]
    assert not unhashed, f"requirements.lock pins without hashes: {unhashed}"


def test_the_runtimes_interpreter_imports_the_archives_bytecode_not_its_source(tmp_path, handlers):
    archive = build_archive("worker", RUNTIME, tmp_path / "out")
    task_root = tmp_path / "task"
    zipfile.ZipFile(archive.path).extractall(task_root)
    # The source no longer says what the bytecode does: what runs is what was compiled.
    (task_root / "handlers" / "worker" / "app.py").write_text("raise SystemExit('compiled from the source')\n")

    code = f"import sys; sys.path.insert(0, {str(task_root)!r}); import handlers.worker.app as m; print(m.X)"
    imported = subprocess.run(
        [str(find_interpreter(RUNTIME).executable), "-I", "-S", "-B", "-c", code],
        capture_output=True,
        text=True,
        check=False,
    )

    assert (imported.returncode, imported.stdout) == (0, "1\n"), imported.stderr


def test_code_the_declared_runtime_cannot_compile_fails_the_build_naming_the_file(tmp_path, handlers):
    # A type alias statement compiles on 3.12 and later: on a python3.11 function it would fail to import.
    (handlers / "worker" / "app.py").write_text("type Rows = list[dict[str, str]]\n")
    build_archive("worker", "python3.12", tmp_path / "newer")

    with pytest.raises(PackagingError, match=re.escape("handlers/worker/app.py does not compile on python3.11 (3.11.")):
        build_archive("worker", "python3.11", tmp_path / "older")


def test_bytecode_compiled_afresh_gives_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(packaging, "BYTECODE_CACHE", tmp_path / "cache-a")
    first = build_archive("worker", RUNTIME, tmp_path / "a")
    monkeypatch.setattr(packaging, "BYTECODE_CACHE", tmp_path / "cache-b")
    second = build_archive("worker", RUNTIME, tmp_path / "b")

    assert first.path.read_bytes() == second.path.read_bytes()


def test_without_the_runtimes_interpreter_the_archive_holds_sources_and_says_how_to_install_it(
    tmp_path, monkeypatch, handlers
):
    nowhere = tmp_path / "no-pythons"
    nowhere.mkdir()
    for variable in ("PATH", "PYENV_ROOT", "UV_PYTHON_INSTALL_DIR"):
        monkeypatch.setenv(variable, str(nowhere))
    interpreters.search.cache_clear()
    try:
        archive = build_archive("worker", RUNTIME, tmp_path / "out")
    finally:
        interpreters.search.cache_clear()

    assert not [name for name in archive.entries if name.endswith(".pyc")]
    version = RUNTIME.removeprefix("python")
    assert archive.without_bytecode is not None
    assert f"no Python {version} for the {RUNTIME} runtime" in archive.without_bytecode
    assert f"install it with `pyenv install {version}` or `uv python install {version}`" in archive.without_bytecode


def _recorded_name(pyc: bytes) -> str:
    """The file name a pyc's code object records, read by the runtime's interpreter (its marshal format)."""
    code = "import marshal, sys; print(marshal.loads(sys.stdin.buffer.read()[16:]).co_filename)"
    read = subprocess.run(
        [str(find_interpreter(RUNTIME).executable), "-I", "-S", "-c", code], input=pyc, capture_output=True, check=True
    )
    return read.stdout.decode().strip()


def test_bytecode_records_the_archive_path_never_the_checkouts(tmp_path):
    archive = build_archive("worker", RUNTIME, tmp_path)
    tag = find_interpreter(RUNTIME).cache_tag
    with zipfile.ZipFile(archive.path) as zf:
        recorded = _recorded_name(zf.read(f"handlers/worker/__pycache__/app.{tag}.pyc"))

    assert recorded == "handlers/worker/app.py"


def test_the_same_source_under_two_names_gets_the_bytecode_of_each_name(tmp_path, monkeypatch, handlers):
    # Two modules of identical text: each pyc must record its own path, so the cache tells them apart.
    (handlers / "worker" / "twin.py").write_text((handlers / "worker" / "app.py").read_text())
    monkeypatch.setattr(packaging, "BYTECODE_CACHE", tmp_path / "cache")
    archive = build_archive("worker", RUNTIME, tmp_path / "out")
    tag = find_interpreter(RUNTIME).cache_tag
    with zipfile.ZipFile(archive.path) as zf:
        pycs = [zf.read(f"handlers/worker/__pycache__/{module}.{tag}.pyc") for module in ("app", "twin")]
    names = [_recorded_name(pyc) for pyc in pycs]

    assert names == ["handlers/worker/app.py", "handlers/worker/twin.py"]


def test_a_syntax_error_names_the_file_and_line(tmp_path, handlers):
    (handlers / "worker" / "app.py").write_text("X = 1\nY = 2\nZ = (\n")

    with pytest.raises(PackagingError) as error:
        build_archive("worker", RUNTIME, tmp_path / "out")
    assert f"handlers/worker/app.py does not compile on {RUNTIME}" in str(error.value)
    assert "line 3" in str(error.value)
