"""How every handler talks to AWS: boto3's standard configuration, nothing else.

Endpoints, region and credentials come from the environment as boto3 resolves them (on Lambda,
the function's role; locally, `AWS_ENDPOINT_URL` may point at an emulator). A client the first
invocation needs is created once per execution environment, at import; one it may never need (the
producer's continuation, the signing secret's reader) when first used, once (`OnFirstUse`).

What a cold start pays for a client is botocore loading the service's model. The DynamoDB tables are
reached through `items_client` and `Table`, not boto3's DynamoDB resource: the same calls and the
same plain Python values, without the resource layer, whose model and generated classes cost a
cold start about 25 ms and serve nothing the handlers call. No handler imports boto3: its clients are
botocore's (`botocore_client`), from one session, and boto3's import, s3transfer's with it, would be
another 15–50 ms of each cold start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config

from handlers.common.items import register_items


def client_config(max_pool_connections: int = 10, attempts: int = 3, *, validate: bool = True) -> Config:
    """Standard retry mode; a pool wide enough for the handler's own threads.

    `validate=False` skips botocore's client-side check of each request against the API's shapes
    (`parameter_validation`, which botocore's docs suggest turning off for speed): for calls whose
    parameters typed code builds, in a loop where that check is a tenth of the CPU. The service still
    validates every request."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        max_pool_connections=max_pool_connections,
        parameter_validation=validate,
    )


def items_client(config: Config) -> Any:
    """A DynamoDB client that takes and returns items as plain Python values (numbers as `Decimal`):
    the client a boto3 DynamoDB resource makes (`resource.meta.client`), its values serialized and
    deserialized as boto3 does (`handlers.common.items`), without the resource layer nor boto3."""
    client = botocore_client("dynamodb", config)
    register_items(client.meta.events)  # this client's own copy: other clients stay in wire format
    return client


_session: botocore.session.Session | None = None
_session_lock = threading.Lock()


def botocore_client(service: str, config: Config) -> Any:
    """A low-level client in wire format, made by botocore alone as `boto3.client` makes one (boto3
    customizes no client but S3's, with its transfer methods, which no handler calls). All of them
    from one botocore session per process, as boto3's default session: the credentials it resolves
    and the endpoint data it loads are loaded once. Made under a lock: a session is not thread-safe."""
    global _session
    with _session_lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session.create_client(service, config=config)


class TableMeta:
    """What callers read of a table's `meta`: the client its calls go through."""

    def __init__(self, client: Any) -> None:
        self.client = client


class Table:
    """One table's item calls, as boto3's `Table` resource makes them: the client's call with
    `TableName` filled in (a `TableName` passed in wins, as there) and its response returned as is.
    Items are what `client` takes: plain Python values for an `items_client`, the wire format for a
    `botocore_client`."""

    def __init__(self, client: Any, name: str) -> None:
        self.name = name
        self.meta = TableMeta(client)

    def _call(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        return getattr(self.meta.client, operation)(**{"TableName": self.name, **kwargs})

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_item", kwargs)

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("put_item", kwargs)

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("update_item", kwargs)

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("delete_item", kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("query", kwargs)

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("scan", kwargs)


class OnFirstUse:
    """A client made by `make` when one of its attributes is first read, then kept for the execution
    environment: for calls a cold start's first invocation may never make, whose service model it
    then never loads. Thread-safe: one client, whichever thread comes first."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # Only reached for what this object lacks: the client's methods and attributes.
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
        return getattr(self._client, name)
