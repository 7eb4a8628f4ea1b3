"""The subcommands of `python -m ingest`, one module each.

Each module has `register(commands)`, which adds its parser(s) and sets `run(options, parser, out)`
as their default: the function that carries the command out and returns the exit code.
"""

from __future__ import annotations

from ingest.commands import demo, dlq, jobs, local, plan, rejects, upload, users

# In the order `--help` lists them.
COMMANDS = (
    local,
    upload,
    jobs,
    users,
    rejects,
    dlq,
    plan,
    demo,
)
