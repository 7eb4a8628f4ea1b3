"""Print what `pulumi up` would deploy for a stack: its resources as a tree, and its outputs.

    python -m local.plan [--stack dev] [--set key=value ...]

Runs the stack's own program (`__main__.py`) under mocks (`local.mocks`): no AWS account, no
Pulumi CLI. An invalid setting stops it with the message `pulumi up` would show.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from infra.config import ConfigError
from local.mocks import DeclaredResource, Plan, run_program


def render(plan: Plan) -> str:
    """The plan as an indented tree of `type name` lines, a count by type, and the outputs."""
    by_parent: dict[str, list[DeclaredResource]] = {}
    for resource in plan.resources:
        by_parent.setdefault(resource.parent, []).append(resource)
    known = {r.urn for r in plan.resources}
    lines = [f"Stack {plan.stack}: {sum(r.custom for r in plan.resources)} resources would be created", ""]

    def walk(resource: DeclaredResource, depth: int) -> None:
        label = f"{resource.type}  {resource.name}"
        if resource.physical_name:
            label += f"  ({resource.physical_name})"
        lines.append("  " * depth + label)
        for child in by_parent.get(resource.urn, []):
            walk(child, depth + 1)

    for resource in plan.resources:
        if resource.parent not in known:
            walk(resource, 0)
    lines += ["", "By type:"]
    counts = Counter(r.type for r in plan.resources if r.custom)
    lines += [f"  {count:3d}  {type_}" for type_, count in sorted(counts.items())]
    if plan.warnings:
        lines += ["", "Warnings:", *(f"  {warning}" for warning in plan.warnings)]
    lines += ["", "Outputs:"]
    for key, value in sorted(plan.outputs.items()):
        shown = "[secret]" if key in plan.secret_outputs else value
        lines.append(f"  {key}: {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to use (default: dev)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    options = parser.parse_args(argv)
    overrides = {}
    for item in options.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = value
    try:
        plan = run_program(options.stack, overrides)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
