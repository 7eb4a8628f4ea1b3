"""How every handler talks to AWS: boto3's standard configuration, nothing else.

Endpoints, region and credentials come from the environment as boto3 resolves them (on Lambda,
the function's role; locally, `AWS_ENDPOINT_URL` may point at an emulator). Clients are created
once per execution environment, at import.
"""

from __future__ import annotations

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
