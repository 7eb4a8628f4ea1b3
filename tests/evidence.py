"""What the reliability and security suites prove, in one list: RELIABILITY.md and SECURITY.md are
rendered from it, so the reports cannot drift from the tests.

Each test module of those suites declares its proofs at module level::

    PROOFS = [
        Proof("RELIABILITY", "Faults", "every message delivered twice",
              injected="each SQS receive answered twice, in reverse order",
              figures={"rows checked": 6000}, test="test_every_message_delivered_twice"),
    ]

and its test asserts the figures it reaches (`assert checked == proof.figures["rows checked"]`), so a
figure in a report is one a passing test measured. `python -m tests.evidence --write` rewrites the
generated blocks of each report (between their markers); `tests/test_reports.py` fails while a report
differs from what the proofs render, or a proof names a test that does not exist.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS = REPO_ROOT / "tests"
Report = Literal["RELIABILITY", "SECURITY"]
REPORTS: dict[Report, Path] = {
    "RELIABILITY": REPO_ROOT / "RELIABILITY.md",
    "SECURITY": REPO_ROOT / "SECURITY.md",
}
TABLE_HEAD = "| What was tried | Injected | What held | Figures | Test |"


@dataclass(frozen=True)
class Proof:
    """One thing the suite tried, and what held."""

    report: Report
    section: str
    """The report's heading it goes under: "Faults", "Bad input", "Least privilege", …"""
    name: str
    """What was tried, in a few words."""
    injected: str
    """The fault, input or attack, precisely enough to reproduce."""
    held: str
    """What the test asserts held (the outcome), in a sentence."""
    figures: Mapping[str, int] = field(default_factory=dict)
    """Counts the test reaches and asserts: rows checked, calls denied, files, requests…"""
    test: str = ""
    """The test function proving it, in the module that declares it."""
    module: str = ""
    """Filled in by `collect` (the module's path under the repository)."""


def proof_modules() -> list[str]:
    """Every test module that declares PROOFS, by dotted name (found by reading, not importing)."""
    found = []
    for path in sorted(TESTS.rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        if any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and any(isinstance(t, ast.Name) and t.id == "PROOFS" for t in _targets(node))
            for node in tree.body
        ):
            found.append(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts))
    return found


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]


def collect() -> list[Proof]:
    proofs = []
    for name in proof_modules():
        module = importlib.import_module(name)
        path = str(Path(module.__file__ or "").relative_to(REPO_ROOT))
        for proof in module.PROOFS:
            if not hasattr(module, proof.test):
                raise LookupError(
                    f"{path}: proof {proof.name!r} names {proof.test!r}, which the module does not define"
                )
            proofs.append(dataclasses.replace(proof, module=path))
    return proofs


def _figures(figures: Mapping[str, int]) -> str:
    return "; ".join(f"{value:,} {what}" for what, value in figures.items()) or "—"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_proofs(report: Report, proofs: Iterable[Proof]) -> str:
    """The proofs of one report: a table per section, in the order sections first appear."""
    sections: dict[str, list[Proof]] = defaultdict(list)
    for proof in proofs:
        if proof.report == report:
            sections[proof.section].append(proof)
    total = sum(len(p) for p in sections.values())
    lines = [f"{total} proofs; each names the test of `make test` that asserts its figures."]
    for section, items in sections.items():
        lines += ["", f"### {section}", "", TABLE_HEAD, "|---|---|---|---|---|"]
        for p in items:
            lines.append(
                f"| {_cell(p.name)} | {_cell(p.injected)} | {_cell(p.held)} | {_cell(_figures(p.figures))} "
                f"| `{p.module}::{p.test}` |"
            )
    return "\n".join(lines)


def render_personal_data() -> str:
    """Where personal data rests and for how long, per stack, from the stacks' own settings."""
    from infra.config import parse_settings
    from infra.queue import DLQ_RETENTION_SECONDS, QUEUE_RETENTION_SECONDS
    from local.mocks import stack_settings

    stacks = sorted(p.name.split(".")[1] for p in REPO_ROOT.glob("Pulumi.*.yaml"))
    configs = {
        stack: parse_settings(
            {k.split(":", 1)[1]: v for k, v in stack_settings(stack).items() if k.startswith("csv-ingest:")}
        )
        for stack in stacks
    }

    def days(seconds: int) -> str:
        return f"{seconds // 86400} days"

    places = [
        ("upload (current version)", "every cell", "SSE-S3", lambda c: f"{c.uploads_expiration_days} days"),
        (
            "upload (replaced or expired version)",
            "every cell",
            "SSE-S3",
            lambda c: f"{c.noncurrent_version_days} more days",
        ),
        (
            "rejects report",
            "name, mail, phone of rejected rows",
            "SSE-S3",
            lambda c: f"{c.reports_expiration_days} days",
        ),
        (
            "users table",
            "name, email, phone",
            "KMS, AWS managed key (aws/dynamodb)",
            lambda c: "until replaced or deleted",
        ),
        (
            "users table backups",
            "name, email, phone",
            "KMS, AWS managed key (aws/dynamodb)",
            lambda c: "35 days (point-in-time recovery)" if c.point_in_time_recovery else "none",
        ),
        ("chunks queue (in flight)", "valid rows", "SSE-SQS", lambda c: f"at most {days(QUEUE_RETENTION_SECONDS)}"),
        ("dead-letter queue", "valid rows of refused chunks", "SSE-SQS", lambda c: days(DLQ_RETENTION_SECONDS)),
        (
            "job records",
            "none (counts, keys, reasons)",
            "KMS, AWS managed key (aws/dynamodb)",
            lambda c: f"{c.job_ttl_days} days" if c.job_ttl_days else "kept",
        ),
        ("function and API logs", "none (proved below)", "CloudWatch Logs", lambda c: f"{c.log_retention_days} days"),
    ]
    lines = [
        "| Where | Personal data | Encrypted at rest | " + " | ".join(f"Kept ({s})" for s in stacks) + " |",
        "|---|---|---|" + "---|" * len(stacks),
    ]
    for where, what, encrypted, kept in places:
        lines.append(f"| {where} | {what} | {encrypted} | " + " | ".join(kept(configs[s]) for s in stacks) + " |")
    return "\n".join(lines)


def blocks(report: Report, proofs: Iterable[Proof]) -> dict[str, str]:
    """The generated blocks of a report, by name."""
    generated = {"proofs": render_proofs(report, proofs)}
    if report == "SECURITY":
        generated["personal-data"] = render_personal_data()
    return generated


def markers(name: str) -> tuple[str, str]:
    return f"<!-- generated: {name} (python -m tests.evidence --write); do not edit -->", f"<!-- end: {name} -->"


def rewritten(text: str, generated: Mapping[str, str], path: Path) -> str:
    """`text` with each generated block replaced (each block's markers must be there once)."""
    for name, body in generated.items():
        begin, end = markers(name)
        if text.count(begin) != 1 or text.count(end) != 1:
            raise ValueError(f"{path.name} must hold each marker once:\n{begin}\n{end}")
        head, rest = text.split(begin)
        _, tail = rest.split(end)
        text = f"{head}{begin}\n\n{body}\n\n{end}{tail}"
    return text


def main(argv: list[str]) -> int:
    proofs = collect()
    stale = []
    for report, path in REPORTS.items():
        text = path.read_text()
        fresh = rewritten(text, blocks(report, proofs), path)
        if fresh != text:
            stale.append(path.name)
            if "--write" in argv:
                path.write_text(fresh)
    if stale and "--write" not in argv:
        print(f"stale: {', '.join(stale)} (python -m tests.evidence --write)", file=sys.stderr)
        return 1
    print(f"{'rewrote' if stale else 'up to date'}: {', '.join(stale) or ', '.join(p.name for p in REPORTS.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
