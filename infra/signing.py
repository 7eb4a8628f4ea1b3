"""The stack's chunk signing secret: the producer signs each chunk with a key derived from it, the
worker checks it (`handlers/common/signing.py`).

The secret lives in Secrets Manager, not in the jobs table: a principal allowed to read job records
(the query function's role, a reader of a point-in-time backup, an operator's role granted
`dynamodb:GetItem`) must not be able to sign a chunk. Its policy lets only the producer's and the
worker's roles, and the deployers, read it, and only the deployers change it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.iam import deny_unless_principal, policy_document

# The secret's value: 64 letters and digits (about 381 bits), drawn by Secrets Manager's
# GetRandomPassword (pulumi-aws `aws.secretsmanager.get_random_password`,
# https://www.pulumi.com/registry/packages/aws/api-docs/secretsmanager/getrandompassword/). No
# punctuation: the value is used as it is, never quoted or escaped.
SECRET_CHARACTERS = 64
# How long a deleted secret can still be restored: AWS's default and longest
# (0, or 7 to 30 days: https://www.pulumi.com/registry/packages/aws/api-docs/secretsmanager/secret/).
# Chunks in flight and in the dead-letter queue can be checked only with this secret: one deleted by
# mistake must be recoverable for as long as a dead letter is kept (14 days) and then some.
RECOVERY_WINDOW_DAYS = 30
# What changes the secret or who may read it, rather than reading it. A principal allowed
# PutSecretValue (or UpdateSecret, a rotation of its own, or a version's staging label) would choose
# the value and sign chunks with it; one allowed PutResourcePolicy or DeleteResourcePolicy would lift
# the read deny; DeleteSecret or a replication would take the secret away or copy it out of this
# policy's reach. Only the deployers may. (Actions: https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_Operations.html)
SECRET_ADMINISTRATION = (
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
)


@dataclass
class SigningSecretArgs:
    """Inputs of `SigningSecret`."""

    deployers: Sequence[pulumi.Input[str]]
    """IAM role or user ARNs that alone may change the secret: whoever runs `pulumi up`, who also
    reads it (the provider reads a version back after creating it and on every refresh)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the secret."""

    def __post_init__(self) -> None:
        if not self.deployers:
            raise ValueError("deployers is empty: the secret's policy would refuse the stack its own updates")


class SigningSecret(pulumi.ComponentResource):
    """A Secrets Manager secret holding a random value drawn once, and, once the functions that use
    it exist, its policy (`restrict_access`)."""

    arn: pulumi.Output[str]
    """The secret's ARN: what the functions read (GetSecretValue) and their policies name."""

    def __init__(self, name: str, args: SigningSecretArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:security:SigningSecret", name, None, opts)
        self._name, self._deployers = name, list(args.deployers)
        child = pulumi.ResourceOptions(parent=self)
        # Encrypted with the AWS managed key aws/secretsmanager, whose key policy lets any principal of
        # the account use it through Secrets Manager: who reads the value is this secret's policy's
        # and IAM's to say (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
        self._secret = aws.secretsmanager.Secret(
            name,
            description="Chunk signing secret: each job's chunk key is HMAC-SHA256(this, jobId)",
            recovery_window_in_days=RECOVERY_WINDOW_DAYS,
            tags=dict(args.tags),
            opts=child,
        )
        value = aws.secretsmanager.get_random_password_output(
            password_length=SECRET_CHARACTERS, exclude_punctuation=True, opts=pulumi.InvokeOutputOptions(parent=self)
        ).random_password
        aws.secretsmanager.SecretVersion(
            f"{name}-value",
            secret_id=self._secret.id,
            secret_string=pulumi.Output.secret(value),
            # Every `pulumi up` draws a new value (the invoke runs each time); the first one is kept.
            # A new value would make every chunk in flight or in the DLQ unverifiable. Rotating the
            # secret is a deliberate act: replace this resource when no chunk is in flight.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secret_string"]),
        )
        self.arn = self._secret.arn
        self.register_outputs({"secretArn": self.arn})

    def restrict_access(self, readers: Sequence[pulumi.Input[str]]) -> aws.secretsmanager.SecretPolicy:
        """Declare the secret's policy: only `readers` (the producer's and the worker's roles) and the
        deployers read it; only the deployers change it, its policy, or delete it.

        The deployers read it because the provider does: it creates a version with PutSecretValue, then
        reads it back with GetSecretValue, and reads it again on every refresh
        (terraform-provider-aws, internal/service/secretsmanager/secret_version.go,
        https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/secretsmanager/secret_version.go).
        BatchGetSecretValue is authorised as GetSecretValue on each secret it returns
        (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html),
        so the deny covers it too.
        """
        secret = [self._secret.arn]
        return aws.secretsmanager.SecretPolicy(
            f"{self._name}-policy",
            secret_arn=self._secret.arn,
            policy=policy_document(
                [
                    deny_unless_principal(
                        "OnlyPipelineReads",
                        "secretsmanager:GetSecretValue",
                        secret,
                        [*readers, *self._deployers],
                    ),
                    deny_unless_principal("OnlyDeployersAdminister", SECRET_ADMINISTRATION, secret, self._deployers),
                ]
            ),
            # Secrets Manager refuses a policy that would grant broad access (a wildcard principal in an
            # Allow); this one only denies, and stays refused if someone adds such an Allow.
            block_public_policy=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
