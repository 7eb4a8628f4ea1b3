"""The keys chunks are signed with: one secret per stack, one key per job derived from it.

The stack's signing secret lives in AWS Secrets Manager (`infra/signing.py`), whose policy lets only
the producer's and the worker's roles (and the deployers) read it. A job's key is
HMAC-SHA256(secret, jobId): the producer signs the job's chunks with it (`chunks.sign`), the worker
derives the same key to check them. Nothing derived from the secret is stored anywhere — not on the
job record, its index or their backups — so reading the jobs table, unlike reading the secret, gives
no key.

The secret is read once per execution environment, when a handler first needs a key, never at import:
an invocation that signs or checks nothing (a validation segment, an upload event refused) does not
pay for the call, and none pays for it during the cold start's import. Its value is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Any

from handlers.common.aws import botocore_client, client_config

# The environment variable that names the secret's ARN (set by infra/producer.py and infra/worker.py).
SECRET_ARN_VARIABLE = "CHUNK_SIGNING_SECRET_ARN"
# A secret shorter than this is a deployment mistake, not a key: the program draws 64 letters and digits.
MIN_SECRET_CHARACTERS = 32


class JobKeys:
    """Each job's key for its chunks' MACs, derived from the stack's signing secret.

    `read_secret` returns the secret's value; it is called once, on the first `for_job`, and its
    value kept for the life of the object (one per execution environment). Thread-safe."""

    def __init__(self, read_secret: Callable[[], str]) -> None:
        self._read_secret = read_secret
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    @classmethod
    def in_secrets_manager(cls, secret_arn: str, client: Callable[[], Any] | None = None) -> JobKeys:
        """Keys from the secret `secret_arn` names, read with GetSecretValue (its current version) by a
        client made when it is first needed: `client()`, or botocore's standard one for the function."""

        def read() -> str:
            secrets_manager = client() if client is not None else _default_client()
            return secrets_manager.get_secret_value(SecretId=secret_arn)["SecretString"]

        return cls(read)

    def for_job(self, job_id: str) -> bytes:
        """The 32-byte key the chunks of `job_id` are signed with."""
        return hmac.new(self._stack_secret(), job_id.encode(), hashlib.sha256).digest()

    def _stack_secret(self) -> bytes:
        if self._secret is None:
            with self._lock:  # the first caller reads it; the others wait for its value
                if self._secret is None:
                    secret = self._read_secret()
                    if len(secret) < MIN_SECRET_CHARACTERS:
                        raise ValueError(
                            f"the chunk signing secret holds {len(secret)} characters, fewer than"
                            f" {MIN_SECRET_CHARACTERS}: not the value the program draws"
                        )
                    self._secret = secret.encode()
        return self._secret


def _default_client() -> Any:
    # Made when first needed: a handler that never reads the secret never loads Secrets Manager's model.
    return botocore_client("secretsmanager", client_config())
