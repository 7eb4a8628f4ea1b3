"""How every handler talks to AWS: boto3's standard configuration, nothing else.

Endpoints, region and credentials come from the environment as boto3 resolves them (on Lambda,
the function's role; locally, `AWS_ENDPOINT_URL` may point at an emulator). A client the first
invocation needs is created once per execution environment, at import; one it may never need (the
producer's continuation, the signing secret's reader) when first used, once (`OnFirstUse`).

What a cold start pays for a client is botocore loading the service's model. The DynamoDB tables are
reached through `items_client` and `Table`, not boto3's DynamoDB resource: the same calls and the
same plain Python values, without the resource layer, whose model and generated classes cost a
cold start about 25 ms and serve nothing the handlers call. A function that needs nothing of boto3
but its clients (the query function) makes its client with botocore alone (`botocore_client`):
boto3's import, s3transfer's with it, is another 15–35 ms of its cold start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config


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
    """A DynamoDB client that takes and returns items as plain Python values (numbers as `Decimal`,
    condition objects from `boto3.dynamodb.conditions`): exactly the client a boto3 DynamoDB resource
    makes (`resource.meta.client`), with the four handlers boto3 registers on it
    (`boto3.dynamodb.transform.DynamoDBHighLevelResource`), minus the resource layer itself."""
    # Imported here, not with this module: the query function uses this module without boto3.
    import boto3
    from boto3.dynamodb.transform import TransformationInjector, copy_dynamodb_params

    client = boto3.client("dynamodb", config=config)
    events = client.meta.events  # this client's own copy: other clients stay in wire format
    # The caller's parameters are copied before being serialized in place.
    events.register("provide-client-params.dynamodb", copy_dynamodb_params, unique_id="dynamodb-create-params-copy")
    injector = TransformationInjector()
    events.register(
        "before-parameter-build.dynamodb",
        injector.inject_condition_expressions,
        unique_id="dynamodb-condition-expression",
    )
    events.register(
        "before-parameter-build.dynamodb", injector.inject_attribute_value_input, unique_id="dynamodb-attr-value-input"
    )
    events.register(
        "after-call.dynamodb", injector.inject_attribute_value_output, unique_id="dynamodb-attr-value-output"
    )
    return client


def botocore_client(service: str, config: Config) -> Any:
    """A low-level client made by a botocore session of its own, as `boto3.client` makes one (boto3
    customizes no client but S3's), in wire format. A new session per call, as boto3's default one
    is made per process: the credentials a session resolves are kept with it."""
    return botocore.session.get_session().create_client(service, config=config)


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
