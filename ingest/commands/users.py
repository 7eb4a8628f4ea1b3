"""`ingest get` and `ingest list`: the stack's items (users by default) as the API returns them.

    python -m ingest get KEY [--json] [--local | --stack NAME]
    python -m ingest list [--limit N | --all] [--json] [--local | --stack NAME]

`GET /{name}/{key}` (the key percent-encoded: an email may hold `+` or `/`) and `GET /{name}?limit=`,
following `nextToken` with `--all`; `/users/{email}` and `/users` for the default schema. The stack's
schema (`Target.schema`, its `schema` output) says the routes (`handlers.query.routes.routes_for`)
and the fields, in the API's order (`handlers.query.views.view_fields`). Errors never repeat the key
(README "Security").
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any, TextIO

from handlers.common.schema import Schema
from handlers.query.routes import article, routes_for
from handlers.query.views import SOURCE_FIELDS, view_fields
from ingest.api import MAX_PAGE, segment, unexpected
from ingest.commands.jobs import page_size
from ingest.output import command, fail, fields, guarded, print_json, print_json_array, shown, table
from ingest.targets import Target, add_target_options, resolve_target

EXIT_ABSENT = 1
DEFAULT_LIST = 25
# What `list` shows of where each item came from, after its columns: the answer's `SOURCE_FIELDS`
# but those a table has no room for (`--json` has them all).
LIST_SOURCE_FIELDS = tuple(name for name in SOURCE_FIELDS if name not in ("uploadedAt", "jobId"))


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest get` and `ingest list`."""
    get = commands.add_parser(
        "get",
        help="show one item by its key (a user by email)",
        description=(
            "Show one item of the stack's schema as GET /{name}/{key} returns it (a user: GET /users/{email}),"
            " its columns then where it came from. Exit 1 when there is none."
        ),
        epilog="example: python -m ingest get john@gmail.com --local",
    )
    get.add_argument(
        "key",
        metavar="KEY",
        help="the item's key, as any cell of the key column may spell it (emails in any case: they are stored"
        " lower-cased)",
    )
    get.add_argument("--json", action="store_true", help="the item as one JSON object")
    add_target_options(get)
    get.set_defaults(run=_run_get)
    listing = commands.add_parser(
        "list",
        help="list items (users by default), a page or all of them",
        description="List the stack's items (GET /{name}; users: GET /users): one page of --limit, or every page"
        " with --all.",
        epilog="example: python -m ingest list --all --json --local",
    )
    how_many = listing.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit", type=page_size, default=DEFAULT_LIST, metavar="N", help=f"one page of N (1–{MAX_PAGE}, default 25)"
    )
    how_many.add_argument("--all", action="store_true", help="every item, in the largest pages the API serves")
    listing.add_argument("--json", action="store_true", help="one JSON array of the items")
    add_target_options(listing)
    listing.set_defaults(run=_run_list)


def _run_get(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_item(resolve_target(options), options.key, options.json, out), "get")


def show_item(target: Target, key: str, as_json: bool, out: TextIO) -> int:
    """One item by its key; exit 1 when there is none, 2 when the key breaks its column's rule."""
    schema = target.schema
    routes = routes_for(schema)
    response = target.api().get(f"{routes.collection}/{segment(key)}")
    attribute = schema.key_attribute
    if response.status == 404:
        return fail(f"no {routes.noun} with that {attribute} in {target.label}", EXIT_ABSENT)
    if response.status == 400:  # the API's reason names the rule broken, never the value
        return fail(f"not {article(attribute)} {attribute} the API accepts: {shown(response.message)}")
    if response.status != 200:
        raise unexpected(response, f"GET {routes.item}")
    if as_json:
        print_json(response.body, out)
    else:
        fields(_cells(response.body), view_fields(schema), out)
    return 0


def _run_list(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    return guarded(lambda: show_items(resolve_target(options), options.limit, options.all, options.json, out), "list")


def show_items(target: Target, limit: int, all_pages: bool, as_json: bool, out: TextIO) -> int:
    """One page of `limit` items, or every item (`all_pages`, in the API's largest pages)."""
    schema = target.schema
    routes = routes_for(schema)
    api = target.api()
    if all_pages:
        items: Iterable[dict[str, Any]] = api.all_items(routes.collection)
        more = False
    else:
        page = api.page(routes.collection, limit)
        items, more = page.items, page.next_token is not None
    if as_json:
        print_json_array(items, out)  # item by item: a full listing is never held whole
        return 0
    listed = list(items)  # a table's columns are as wide as their widest cell: every row first
    if not listed:
        out.write(
            f"No {schema.name} in {target.label} yet: upload a file ({command('upload', 'FILE')} {target.flags}).\n"
        )
        return 0
    columns = list_columns(schema)
    table(columns, ([_cells(item).get(column) for column in columns] for item in listed), out)
    out.write(f"{len(listed)} {routes.noun}(s)" + ("; there are more: --all lists every one" if more else "") + "\n")
    return 0


def list_columns(schema: Schema) -> tuple[str, ...]:
    """The columns `list` shows: the item's fields in the API's order, less those in the answer only
    (`email, name, phone, updatedAt, sourceKey, row` for users)."""
    return tuple(name for name in view_fields(schema) if name not in SOURCE_FIELDS or name in LIST_SOURCE_FIELDS)


def _cells(item: dict[str, Any]) -> dict[str, Any]:
    """An item's fields as a table shows them: a boolean as JSON writes it (`true`), not Python's `True`."""
    return {name: ("true" if value else "false") if isinstance(value, bool) else value for name, value in item.items()}
