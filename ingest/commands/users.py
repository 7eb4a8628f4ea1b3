"""`ingest get` and `ingest list`: users as the API returns them.

    python -m ingest get EMAIL [--json] [--local | --stack NAME]
    python -m ingest list [--limit N | --all] [--json] [--local | --stack NAME]

`GET /users/{email}` (the email percent-encoded: it may hold `+` or `/`) and `GET /users?limit=`,
following `nextToken` with `--all`. Errors never repeat the email (README "Security").
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any, TextIO

from ingest.api import MAX_PAGE, segment, unexpected
from ingest.commands.jobs import page_size
from ingest.output import command, fail, fields, guarded, print_json, print_json_array, shown, table
from ingest.targets import Target, add_target_options, resolve_target

EXIT_ABSENT = 1
DEFAULT_LIST = 25
# What the API returns for a user (handlers/query/app.py USER_FIELDS), in that order.
USER_FIELDS = ("email", "name", "phone", "updatedAt", "uploadedAt", "sourceKey", "jobId", "row")
LIST_COLUMNS = ("email", "name", "phone", "updatedAt", "sourceKey", "row")


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest get` and `ingest list`."""
    get = commands.add_parser(
        "get",
        help="show one user by email",
        description="Show one user as GET /users/{email} returns it. Exit 1 when there is none.",
        epilog="example: python -m ingest get john@gmail.com --local",
    )
    get.add_argument("email", metavar="EMAIL", help="the email (any case: emails are stored lower-cased)")
    get.add_argument("--json", action="store_true", help="the user as one JSON object")
    add_target_options(get)
    get.set_defaults(run=_run_get)
    listing = commands.add_parser(
        "list",
        help="list users, a page or all of them",
        description="List users (GET /users): one page of --limit, or every page with --all.",
        epilog="example: python -m ingest list --all --json --local",
    )
    how_many = listing.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit", type=page_size, default=DEFAULT_LIST, metavar="N", help=f"one page of N (1–{MAX_PAGE}, default 25)"
    )
    how_many.add_argument("--all", action="store_true", help="every user, in the largest pages the API serves")
    listing.add_argument("--json", action="store_true", help="one JSON array of the users")
    add_target_options(listing)
    listing.set_defaults(run=_run_list)


def _run_get(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_user(resolve_target(options), options.email, options.json, out), "get")


def show_user(target: Target, email: str, as_json: bool, out: TextIO) -> int:
    response = target.api().get(f"/users/{segment(email)}")
    if response.status == 404:
        return fail(f"no user with that email in {target.label}", EXIT_ABSENT)
    if response.status == 400:  # the API's reason names the rule broken, never the value
        return fail(f"not an email the API accepts: {shown(response.message)}")
    if response.status != 200:
        raise unexpected(response, "GET /users/{email}")
    if as_json:
        print_json(response.body, out)
    else:
        fields(response.body, USER_FIELDS, out)
    return 0


def _run_list(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_users(resolve_target(options), options.limit, options.all, options.json, out), "list")


def show_users(target: Target, limit: int, all_pages: bool, as_json: bool, out: TextIO) -> int:
    """One page of `limit` users, or every user (`all_pages`, in the API's largest pages)."""
    api = target.api()
    if all_pages:
        users: Iterable[dict[str, Any]] = api.all_items("/users")
        more = False
    else:
        page = api.page("/users", limit)
        users, more = page.items, page.next_token is not None
    if as_json:
        print_json_array(users, out)  # item by item: a full listing is never held whole
        return 0
    listed = list(users)  # a table's columns are as wide as their widest cell: every row first
    if not listed:
        out.write(f"No users in {target.label} yet: upload a file ({command('upload', 'FILE')} {target.flags}).\n")
        return 0
    table(LIST_COLUMNS, (_row(user) for user in listed), out)
    out.write(f"{len(listed)} user(s)" + ("; there are more: --all lists every one" if more else "") + "\n")
    return 0


def _row(user: dict[str, Any]) -> list[Any]:
    return [user.get(column) for column in LIST_COLUMNS]
