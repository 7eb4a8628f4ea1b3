"""The stack's query API over HTTP, authenticated as the stack requires.

A stack in `apiKey` mode has an `apiKey` output, sent as `x-api-key`; a stack in `iam` mode has
none, and each request is signed with SigV4 for `execute-api` in the stack's region, with the
target's credentials (the caller's on AWS, the emulator's administrator keys locally).

Paths are the API's routes with each segment percent-encoded (`segment()`): an email may hold `+`,
`/` or `%`, which must reach the handler as themselves.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from ingest.output import shown
from ingest.targets import TargetError

if TYPE_CHECKING:
    from ingest.targets import Target

REQUEST_TIMEOUT_SECONDS = 30
# The API's bounds on `limit` that every deployed version accepts (handlers/query/app.py): a page
# holds 1 to 100 items. `--limit` stays within them.
MAX_PAGE = 100
# The page a full listing (`list --all`) asks for. A page costs a request, a function invocation and
# a scan whatever it holds (locally 0.15 s for 1 item or 100), so a listing goes in the largest pages
# the API serves. An API that serves no more than `MAX_PAGE` refuses the first page (400: it has no
# startKey, so only its limit can be wrong), and is then asked for pages of `MAX_PAGE`.
LISTING_PAGE = 500


class ApiError(TargetError):
    """The API could not be reached, or refused the request (bad key, no permission, a server error).

    Messages name the route (e.g. `GET /users/{email}`), never a path holding an email.
    """


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    """The JSON body (None when empty; the raw text when it is not JSON)."""

    @property
    def message(self) -> str:
        """The API's error message (`{"message": …}`), or the body as text."""
        if isinstance(self.body, dict) and "message" in self.body:
            return str(self.body["message"])
        return str(self.body)[:200]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None


def segment(value: str) -> str:
    """One path segment, percent-encoded (`/`, `+`, `@` and `%` included)."""
    return urllib.parse.quote(value, safe="")


class ApiClient:
    """GET requests to one stack's API (the routes are all GETs)."""

    def __init__(self, base_url: str, *, api_key: str | None, signer: SigV4Auth | None, label: str) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._signer = signer
        self._label = label

    @classmethod
    def for_target(cls, target: Target) -> ApiClient:
        api_key = target.outputs.get("apiKey")
        signer = None if api_key else SigV4Auth(target.credentials(), "execute-api", target.region)
        return cls(target.outputs["apiUrl"], api_key=api_key, signer=signer, label=target.label)

    def get(self, path: str, query: Mapping[str, str] | None = None) -> ApiResponse:
        """GET `path` (segments already encoded); any HTTP status is returned, only a transport failure raises."""
        url = self._base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, method="GET", headers=self._headers(url))
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(f"cannot reach the API of {self._label} at {self._base_url}: {reason}") from None
        return ApiResponse(status=status, body=_parsed(raw))

    def _headers(self, url: str) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        elif self._signer is not None:
            signed = AWSRequest(method="GET", url=url, data=b"")
            self._signer.add_auth(signed)
            headers.update(dict(signed.headers.items()))
        return headers

    def page(self, path: str, limit: int, start: str | None = None) -> Page:
        """One page of a listing route (`/users`, `/jobs`): `{"items", "count", "nextToken"}`."""
        return _page(self._page_response(path, limit, start), path)

    def _page_response(self, path: str, limit: int, start: str | None = None) -> ApiResponse:
        return self.get(path, {"limit": str(limit), **({"startKey": start} if start else {})})

    def all_items(self, path: str, limit: int = LISTING_PAGE) -> Iterator[dict[str, Any]]:
        """Every item of a listing route, in pages of `limit` (of `MAX_PAGE` from an API that serves no
        larger ones), following `nextToken` as `startKey`."""
        first = self._page_response(path, limit)
        if first.status == 400 and limit > MAX_PAGE:
            limit = MAX_PAGE
            first = self._page_response(path, limit)
        page = _page(first, path)
        while True:
            yield from page.items
            if not page.next_token:
                return
            page = self.page(path, limit, page.next_token)


def _page(response: ApiResponse, path: str) -> Page:
    if response.status != 200:
        raise unexpected(response, f"GET {path}")
    return Page(items=list(response.body["items"]), next_token=response.body.get("nextToken"))


def unexpected(response: ApiResponse, route: str) -> ApiError:
    """The error for a status the command does not expect: the route, the status and the API's message."""
    hint = ""
    if response.status == 403:
        hint = " (the API refused the key or signature: is this the stack's own key, or your credentials' account?)"
    return ApiError(f"{route}: HTTP {response.status}: {shown(response.message)}{hint}")


def _parsed(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw.decode(errors="replace")
