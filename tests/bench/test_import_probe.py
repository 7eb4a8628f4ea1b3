"""§8's cold imports (`bench/query_api.py`): a "compiled" import compiles, never reading bytecode
a cached run left in the task root (`-B` stops the interpreter from writing bytecode, not from
reading it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.query_api import ImportProbe
from local.registry import FunctionSpec


@pytest.fixture
def probe(tmp_path: Path) -> ImportProbe:
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
        runtime="python3.12",
        archive=tmp_path / "tiny.zip",
        code_sha256="",
        environment={},
        timeout_seconds=3,
        memory_mb=128,
        log_group=None,
        reserved_concurrency=None,
    )
    return ImportProbe(spec, task_root, tmp_path / "runtime", "http://127.0.0.1:9")


def test_a_compiled_import_is_timed_and_profiled_while_the_task_root_holds_no_bytecode(probe):
    assert "handlers" in probe.import_profile(bytecode=False)
    assert probe.median_ms("import handlers.tiny.app", 1, bytecode=False) > 0
    assert not list(probe.task_root.rglob("__pycache__")), "a compiled run writes no bytecode"


def test_after_a_cached_run_a_compiled_profile_or_timing_is_refused_not_silently_cached(probe):
    probe.seconds("import handlers.tiny.app", bytecode=True)  # writes the task root's bytecode
    assert list(probe.task_root.rglob("__pycache__"))
    with pytest.raises(RuntimeError, match="bytecode in the task root"):
        probe.import_profile(bytecode=False)
    with pytest.raises(RuntimeError, match="bytecode in the task root"):
        probe.median_ms("import handlers.tiny.app", 1, bytecode=False)
    assert probe.median_ms("import handlers.tiny.app", 1, bytecode=True) > 0
