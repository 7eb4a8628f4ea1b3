"""The query API's routes and the headers of its answers, declared once: the function serves them, the
program (`infra/api.py`) builds the REST API's resources, methods and gateway responses from them,
and the OpenAPI document (`infra/openapi.py`) describes them.

The routes follow the stack's schema (`handlers/common/schema.py`): its collection's name is the path
(`/users`), and the key column's attribute names the path parameter of one item (`/users/{email}`).
Jobs are the pipeline's own, the same whatever the schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.common.schema import Schema


@dataclass(frozen=True)
class Routes:
    """The resources the function answers GET on, as API Gateway names them in the event's `resource`."""

    collection: str
    """A page of items: `/users`."""
    item: str
    """One item by its key: `/users/{email}`."""
    noun: str
    """What one item is called in messages and the document: `user`."""
    jobs: str = "/jobs"
    """A page of jobs, newest upload first."""
    job: str = "/jobs/{jobId}"
    """One job by its id."""

    @property
    def get(self) -> tuple[str, ...]:
        """Every resource served, in the order the program declares them."""
        return (self.collection, self.item, self.jobs, self.job)


def routes_for(schema: Schema) -> Routes:
    """The routes of the API of `schema`: `/{name}`, `/{name}/{<key attribute>}`, `/jobs`, `/jobs/{jobId}`.

    `parse_schema` keeps the name a lowercase path segment other than `jobs`, and the attribute an
    identifier, so both are valid in a resource path and as a path parameter."""
    return Routes(
        collection=f"/{schema.name}",
        item=f"/{schema.name}/{{{schema.key_attribute}}}",
        noun=item_noun(schema.name),
    )


def item_noun(collection: str) -> str:
    """One item of `collection`, as messages name it: a plural in `s` without it (`users` → `user`,
    `products` → `product`); any other name, and one in `ss`, `us` or `is` (`status`, `address`),
    followed by `item` (`inventory item`, `status item`). A rule of thumb: the schema declares no noun."""
    if len(collection) > 1 and collection.endswith("s") and not collection.endswith(("ss", "us", "is")):
        return collection[:-1]
    return f"{collection} item"


def article(word: str) -> str:
    """`a` or `an` before `word`, by its first letter: `an email`, `a sku`. A `u` takes `a`, as most
    attribute names in `u` are said with a "you" (`a user_id`, `a url`). A rule of thumb, like `item_noun`."""
    return "an" if word[:1].lower() in "aeio" else "a"


# A page of at most 500: a full listing goes in few requests, each costing the same whatever it holds,
# and a page stays within what a synchronous invocation may answer (6 MB,
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html) however its fields are
# escaped: a Scan reads at most 1 MB a call
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html), which JSON's
# escapes make at most 3 MB unless cells hold control characters (6 bytes each, `\u0001`); the
# default schema's users are at worst about 10 KB each, escaped.
DEFAULT_LIMIT, MAX_LIMIT = 25, 500
"""`?limit=` when absent, and the most it may be."""

# Every answer may carry personal data (an item, a page of items) or be an error about a request
# that did: no cache, the browser's or a proxy's, may keep it (`no-store`), and no browser may read
# its JSON as another type (`nosniff`: a cell sniffed as HTML would run). OWASP's REST Security
# Cheat Sheet asks for both on every API response:
# https://cheatsheetseries.owasp.org/cheatsheets/REST_Security_Cheat_Sheet.html#security-headers
PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
"""On every answer: the function's own (`handlers/query/app.py`) and API Gateway's (`infra/api.py`)."""
