"""`ingest plan`: what `pulumi up` would deploy for a stack, without AWS or the Pulumi CLI.

    python -m ingest plan [--stack dev] [--config-file PATH] [--set key=value ...]

The stack's own program runs under mocks (`local.mocks.run_program`) and `local.plan.render` draws
the result, so `make plan`, `python -m local.plan` and this command print the same thing.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from infra.config import ConfigError
from ingest.commands.local import EXIT_USAGE, pairs
from ingest.targets import add_config_file_option, stack_of


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest plan`."""
    plan = commands.add_parser(
        "plan",
        help="print what `pulumi up` would deploy for a stack",
        description=(
            "Run the stack's program under mocks and print what `pulumi up` would deploy: the resources as a"
            " tree, a count by type, the program's warnings and the outputs. Needs no AWS account or Pulumi CLI;"
            " an invalid setting stops it with the message `pulumi up` would show (exit 2)."
        ),
        epilog="example: python -m ingest plan --stack dev --set apiAuth=iam",
    )
    plan.add_argument(
        "--stack", help="the stack whose Pulumi.<stack>.yaml to use (default: dev, or the one --config-file names)"
    )
    add_config_file_option(plan)
    plan.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a stack setting")
    plan.set_defaults(run=_run)


def _run(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    from local.mocks import run_program  # the program under Pulumi's mocks: only this command needs them
    from local.plan import render

    overrides = pairs(options.set, "--set", parser)
    try:
        plan = run_program(stack_of(options), overrides, config_file=options.config_file)
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    out.write(render(plan) + "\n")
    return 0
