"""Archives: each function gets its handlers and the bundled libraries, in reproducible bytes."""

import importlib.metadata
import zipfile

import pytest

from infra.packaging import build_archive


@pytest.mark.parametrize("package", ["producer", "worker", "query"])
def test_archive_holds_the_function_its_shared_code_and_no_other_function(tmp_path, package):
    archive = build_archive(package, tmp_path)
    names = set(zipfile.ZipFile(archive.path).namelist())
    assert {"handlers/__init__.py", "handlers/common/__init__.py", f"handlers/{package}/app.py"} <= names
    others = {"producer", "worker", "query"} - {package}
    assert not [n for n in names if n.split("/")[:2] in (["handlers", o] for o in others)]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_archive_bundles_powertools_at_the_tested_version(tmp_path):
    archive = build_archive("worker", tmp_path)
    with zipfile.ZipFile(archive.path) as zf:
        names = zf.namelist()
        assert "aws_lambda_powertools/__init__.py" in names
        [metadata] = [n for n in names if n.startswith("aws_lambda_powertools-") and n.endswith("/METADATA")]
        version = next(line for line in zf.read(metadata).decode().splitlines() if line.startswith("Version: "))
    assert version == f"Version: {importlib.metadata.version('aws-lambda-powertools')}"


def test_unchanged_code_builds_the_same_bytes_and_hash(tmp_path):
    first = build_archive("producer", tmp_path / "a")
    second = build_archive("producer", tmp_path / "b")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    with zipfile.ZipFile(first.path) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_changed_code_changes_the_hash(tmp_path, monkeypatch):
    import infra.packaging as packaging

    handlers = tmp_path / "repo" / "handlers"
    for package in ("", "common", "worker"):
        (handlers / package).mkdir(parents=True, exist_ok=True)
        (handlers / package / "__init__.py").write_text("")
    monkeypatch.setattr(packaging, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(packaging, "HANDLERS_DIR", handlers)
    (handlers / "worker" / "app.py").write_text("X = 1\n")
    before = build_archive("worker", tmp_path / "out")
    (handlers / "worker" / "app.py").write_text("X = 2\n")
    after = build_archive("worker", tmp_path / "out")
    assert before.sha256 != after.sha256
