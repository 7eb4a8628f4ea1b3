"""The checks AWS makes when a resource is created, made here before the emulator creates it.

moto creates what it is asked to; AWS refuses some of it. Each check below is one refusal AWS
documents, made by the creator of the resource AWS makes it for (`local.deployer`), so the checks
run in the order AWS meets them: the order the program's resources are created in. A refusal stops
start-up with AWS's own operation, error code and message (`Refused`), the deployer adding the
resource's type and logical name.

What each check reads, it reads from the emulator (the role's trust policy, the function's resource
policy, the queue's attributes, the function's timeout), as AWS reads its own state: whatever the
program declared, or left out, is what is checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from local import authz

LAMBDA_SERVICE = "lambda.amazonaws.com"
S3_SERVICE = "s3.amazonaws.com"

# CreateEventSourceMapping, BatchSize and MaximumBatchingWindowInSeconds: "Amazon Simple Queue Service
# – Default 10. For standard queues the max is 10,000. For FIFO queues the max is 10." and "For
# streams and Amazon SQS event sources, when you set BatchSize to a value greater than 10, you must
# set MaximumBatchingWindowInSeconds to at least 1."
# (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html)
SQS_BATCH_WITHOUT_WINDOW = 10
SQS_STANDARD_MAX_BATCH = 10_000
SQS_FIFO_MAX_BATCH = 10


class Refused(Exception):
    """AWS's answer to a call it refuses: the API operation, its error code and message."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement") or []
    return statements if isinstance(statements, list) else [statements]


def _services(principal: Any) -> list[str]:
    if not isinstance(principal, Mapping):
        return []
    named = principal.get("Service", [])
    return named if isinstance(named, list) else [named]


def _names_service(statement: Mapping[str, Any], service: str) -> bool:
    """Whether a resource or trust policy statement applies to a service principal: `"*"`, or the
    service listed under `Service` (or left out of a `NotPrincipal`)."""
    if "Principal" in statement:
        principal = statement["Principal"]
        return principal == "*" or service in _services(principal)
    if "NotPrincipal" in statement:
        return service not in _services(statement["NotPrincipal"])
    return False


def service_allowed(
    document: Mapping[str, Any] | None, service: str, action: str, resource: str, context: authz.RequestContext
) -> bool:
    """Whether a resource policy (a trust policy, a function's policy) lets `service` do `action` on
    `resource`: a statement naming the service allows it and none naming it denies it. The statements
    are evaluated by IAM's evaluator (`local.authz.evaluate`); only the principal is matched here,
    as `authz` matches role sessions and users, never services."""
    statements = [s for s in _statements(document or {}) if _names_service(s, service)]
    decision = authz.evaluate([{"Statement": statements}], action, resource, context)
    return decision is authz.Decision.ALLOW


def _parsed(document: Any) -> Mapping[str, Any]:
    return json.loads(document) if isinstance(document, str) else document


# --- CreateFunction --------------------------------------------------------------------------------


def check_role_trusts_lambda(iam: Any, role_arn: str) -> None:
    """CreateFunction: Lambda assumes the execution role when the function is created, and refuses a
    role whose trust policy does not let `lambda.amazonaws.com` call `sts:AssumeRole`
    (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html: "the trust policy
    specifies Lambda as the trusted principal"; the refusal is CreateFunction's
    InvalidParameterValueException, https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html).
    The request carries `aws:PrincipalServiceName`, as a service principal's does
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalservicename)."""
    role_name = role_arn.rsplit("/", 1)[-1]
    try:
        trust = _parsed(iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"])
    except iam.exceptions.NoSuchEntityException:
        trust = None
    context = authz.service_request_context(LAMBDA_SERVICE)
    if trust is None or not service_allowed(trust, LAMBDA_SERVICE, "sts:AssumeRole", role_arn, context):
        raise Refused(
            "CreateFunction",
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        )


# --- PutBucketNotificationConfiguration ------------------------------------------------------------


def check_s3_may_invoke(lambda_client: Any, bucket: str, account_id: str, function_arns: list[str]) -> None:
    """PutBucketNotificationConfiguration: "In the case of Lambda destinations, Amazon S3 verifies
    that the Lambda function permissions grant Amazon S3 permission to invoke the function from the
    Amazon S3 bucket", and refuses the configuration with InvalidArgument, "Unable to validate the
    following destination configurations"
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketNotificationConfiguration.html,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/grant-destinations-permissions-to-s3.html).
    S3 invokes with the bucket as `aws:SourceArn` and its owner as `aws:SourceAccount`."""
    context = authz.service_request_context(S3_SERVICE, f"arn:aws:s3:::{bucket}", account_id)
    for arn in function_arns:
        try:
            policy = _parsed(lambda_client.get_policy(FunctionName=arn)["Policy"])
        except lambda_client.exceptions.ResourceNotFoundException:
            policy = None
        if not service_allowed(policy, S3_SERVICE, "lambda:InvokeFunction", arn.removesuffix(":$LATEST"), context):
            raise Refused(
                "PutBucketNotificationConfiguration",
                "InvalidArgument",
                f"Unable to validate the following destination configurations ({arn})",
            )


# --- CreateEventSourceMapping ----------------------------------------------------------------------


def check_sqs_batch_size(batch_size: int | None, batching_window_seconds: int | None, fifo: bool) -> None:
    """CreateEventSourceMapping on an SQS queue: BatchSize at most 10 on a FIFO queue, 10,000 on a
    standard one, and above 10 only with a batching window of at least one second (see
    `SQS_BATCH_WITHOUT_WINDOW`)."""
    if batch_size is None:
        return
    limit = SQS_FIFO_MAX_BATCH if fifo else SQS_STANDARD_MAX_BATCH
    if not 1 <= batch_size <= limit:
        raise Refused(
            "CreateEventSourceMapping",
            "InvalidParameterValueException",
            f"BatchSize {batch_size}: for {'FIFO' if fifo else 'standard'} SQS queues it must be 1 to {limit}",
        )
    if batch_size > SQS_BATCH_WITHOUT_WINDOW and (batching_window_seconds or 0) < 1:
        raise Refused(
            "CreateEventSourceMapping",
            "InvalidParameterValueException",
            f"BatchSize {batch_size} with MaximumBatchingWindowInSeconds {batching_window_seconds or 0}: for"
            " Amazon SQS event sources, when you set BatchSize to a value greater than 10, you must set"
            " MaximumBatchingWindowInSeconds to at least 1",
        )


def check_visibility_covers_timeout(visibility_timeout_seconds: int, function_timeout_seconds: int) -> None:
    """CreateEventSourceMapping on an SQS queue: Lambda refuses a queue whose visibility timeout is
    shorter than the function's timeout, or a message would come back while its batch still runs
    ("To allow your function time to process each batch of records, set the source queue's
    visibility timeout to at least six times the timeout that you configure on your function",
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html; the refusal's message
    is Lambda's own, "Queue visibility timeout: X seconds is less than Function timeout: Y seconds")."""
    if visibility_timeout_seconds < function_timeout_seconds:
        raise Refused(
            "CreateEventSourceMapping",
            "InvalidParameterValueException",
            f"Queue visibility timeout: {visibility_timeout_seconds} seconds is less than Function timeout:"
            f" {function_timeout_seconds} seconds",
        )


def check_sqs_event_source(sqs: Any, lambda_client: Any, request: Mapping[str, Any]) -> None:
    """The checks CreateEventSourceMapping makes for an SQS queue, in its order: the request's own
    parameters, then the queue and the function as they are."""
    source = request["EventSourceArn"]
    if not source.startswith("arn:aws:sqs:"):
        return
    _, _, _, _, owner, queue_name = source.split(":", 5)
    url = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=owner)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "FifoQueue"])["Attributes"]
    fifo = attributes.get("FifoQueue", "false") == "true"
    check_sqs_batch_size(request.get("BatchSize"), request.get("MaximumBatchingWindowInSeconds"), fifo)
    timeout = lambda_client.get_function_configuration(FunctionName=request["FunctionName"])["Timeout"]
    check_visibility_covers_timeout(int(attributes["VisibilityTimeout"]), int(timeout))
