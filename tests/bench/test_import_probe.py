"""§8's cold imports (`bench/query_api.py`), run on the function's runtime: a probe of the shipped
archive reads the bytecode the archive carries, a probe of its sources compiles them, and neither
measures the other (`-B` stops the interpreter from writing bytecode, not from reading it)."""

from __future__ import annotations

import py_compile
import subprocess
from pathlib import Path

import pytest

from bench.query_api import ImportProbe
from infra.config import load_config
from infra.interpreters import find_interpreter
from local.project import PROJECT, stack_settings
from local.registry import FunctionSpec

RUNTIME = load_config(lambda key: stack_settings("dev").get(f"{PROJECT}:{key}")).runtime


def _probe(tmp_path: Path, *, shipped: bool) -> ImportProbe:
    task_root = tmp_path / "task"
    (task_root / "handlers" / "tiny").mkdir(parents=True)
    (task_root / "handlers" / "__init__.py").write_text("")
    (task_root / "handlers" / "tiny" / "__init__.py").write_text("")
    (task_root / "handlers" / "tiny" / "app.py").write_text("import json\nVALUE = json.dumps([1])\n")
    (tmp_path / "runtime").mkdir()
    spec = FunctionSpec(
        name="tiny",
        arn="arn:aws:lambda:eu-west-1:123456789012:function:tiny",
        role_arn="arn:aws:iam::123456789012:role/tiny",
        handler="handlers.tiny.app.handler",
        runtime=RUNTIME,
        archive=tmp_path / "tiny.zip",
        code_sha256="",
        environment={},
        timeout_seconds=3,
        memory_mb=128,
        log_group=None,
        reserved_concurrency=None,
    )
    return ImportProbe(spec, task_root, tmp_path / "runtime", "http://127.0.0.1:9", find_interpreter(RUNTIME), shipped)


def _compile_with_the_runtime(task_root: Path) -> None:
    """The task root's bytecode, as the runtime's interpreter writes it beside each module."""
    code = f"import compileall; compileall.compile_dir({str(task_root)!r}, quiet=1)"
    subprocess.run([str(find_interpreter(RUNTIME).executable), "-I", "-S", "-c", code], check=True)


def test_a_sources_probe_imports_and_profiles_on_the_runtime_writing_no_bytecode(tmp_path):
    probe = _probe(tmp_path, shipped=False)

    assert "handlers" in probe.import_profile()
    on_the_runtime = f"import sys; assert sys.implementation.cache_tag == {probe.interpreter.cache_tag!r}"
    assert probe.median_ms(f"import handlers.tiny.app; {on_the_runtime}", 1) > 0
    assert not list(probe.task_root.rglob("__pycache__")), "a run writes no bytecode in the task root"


def test_a_sources_probe_refuses_a_task_root_holding_bytecode_rather_than_read_it(tmp_path):
    probe = _probe(tmp_path, shipped=False)
    _compile_with_the_runtime(probe.task_root)

    with pytest.raises(RuntimeError, match="the task root holds bytecode, so an import would not measure sources"):
        probe.import_profile()
    with pytest.raises(RuntimeError, match="the task root holds bytecode"):
        probe.median_ms("import handlers.tiny.app", 1)


def test_a_shipped_probe_refuses_a_task_root_without_the_runtimes_bytecode(tmp_path):
    probe = _probe(tmp_path, shipped=True)
    # Bytecode of the interpreter running the tests is not the runtime's: it would not be read.
    py_compile.compile(str(probe.task_root / "handlers" / "tiny" / "app.py"))

    tag = probe.interpreter.cache_tag
    with pytest.raises(RuntimeError, match=f"holds no {tag} bytecode, so an import would not measure the shipped"):
        probe.median_ms("import handlers.tiny.app", 1)
    _compile_with_the_runtime(probe.task_root)
    assert probe.median_ms("import handlers.tiny.app", 1) > 0
