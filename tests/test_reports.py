"""RELIABILITY.md and SECURITY.md hold exactly what the suites' proofs render (tests/evidence.py)."""

from __future__ import annotations

import pytest

from tests.evidence import REPORTS, blocks, collect, rewritten


@pytest.mark.parametrize("report", sorted(REPORTS))
def test_the_report_is_what_the_proofs_render(report: str) -> None:
    path = REPORTS[report]  # type: ignore[index]
    text = path.read_text()
    assert rewritten(text, blocks(report, collect()), path) == text, "regenerate: python -m tests.evidence --write"  # type: ignore[arg-type]


def test_every_proof_names_a_test_of_its_module_and_has_a_figure() -> None:
    proofs = collect()  # raises naming a proof whose test is missing
    for proof in proofs:
        assert proof.test.startswith("test_"), proof
        assert proof.figures, f"{proof.module}: {proof.name!r} states no figure"
