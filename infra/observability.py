"""Observability: alarms on what loses or delays data, an alarm topic, and one dashboard.

Each function's log group (with retention) belongs to its `ServiceFunction`, since the function
must name it; this stage watches the pipeline as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.function import METRICS_NAMESPACE
from infra.iam import deny_insecure_transport, deny_to_iam_principals, deny_unless_principal, policy_document

# What changes the topic or where its messages go, all of them actions SNS accepts in a topic's policy
# (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-language-api-permissions-reference.html):
# its attributes (its policy among them), the statements AddPermission and RemovePermission add or
# remove, its deletion, a subscription (someone else's endpoint would receive every alarm) and its data
# protection policy (which can drop the messages published). SNS accepts no sns:Unsubscribe nor
# sns:SetSubscriptionAttributes in a topic policy: who may remove or change the on-call's subscription
# is for identity policies to say (SECURITY.md, "Not covered").
TOPIC_ADMINISTRATION = (
    "sns:SetTopicAttributes",
    "sns:AddPermission",
    "sns:RemovePermission",
    "sns:DeleteTopic",
    "sns:Subscribe",
    "sns:PutDataProtectionPolicy",
)


@dataclass
class ObservabilityArgs:
    """Inputs of `Observability`."""

    region: pulumi.Input[str]
    """Region of the dashboard's widgets, and of the alarms that may publish to the topic."""
    account_id: pulumi.Input[str]
    """The stack's account: only its alarms may publish to the topic."""
    deployers: Sequence[pulumi.Input[str]]
    """IAM role or user ARNs that alone may change or delete the topic: whoever runs `pulumi up`."""
    queue_name: pulumi.Input[str]
    """The ingest queue."""
    dead_letter_queue_name: pulumi.Input[str]
    """Its dead-letter queue."""
    producer_function_name: pulumi.Input[str]
    """The producer function."""
    producer_failed_events_queue_name: pulumi.Input[str]
    """Where upload events go that the producer failed after Lambda's retries."""
    worker_function_name: pulumi.Input[str]
    """The worker function."""
    query_function_name: pulumi.Input[str]
    """The query function."""
    api_name: pulumi.Input[str]
    """The REST API's name (the `ApiName` dimension of its metrics)."""
    api_stage_name: pulumi.Input[str]
    """Its stage."""
    queue_age_threshold_seconds: int
    """Alarm when the oldest message is older than this."""
    alarm_email: str = ""
    """Subscribed to the alarm topic when set."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the topic, alarms and dashboard."""


@dataclass(frozen=True)
class _AlarmSpec:
    suffix: str
    description: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str
    threshold: float


class Observability(pulumi.ComponentResource):
    """Alarm topic (+ optional email), CloudWatch alarms, and the pipeline dashboard."""

    topic: aws.sns.Topic
    """Where alarms notify."""
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """The alarms, by short name."""
    dashboard: aws.cloudwatch.Dashboard
    """The pipeline dashboard."""
    dashboard_url: pulumi.Output[str]
    """Console URL of the dashboard."""

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("csv-ingest:monitoring:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Not KMS-encrypted: CloudWatch alarms cannot publish to a topic under the AWS managed
        # key (aws/sns), and alarm notifications carry no row data.
        self.topic = aws.sns.Topic(f"{name}-alarms", tags=dict(args.tags), opts=child)
        if args.alarm_email:
            # Made by `pulumi up` as a deployer (sns:Subscribe); the e-mail's link confirms it with
            # ConfirmSubscription, which needs a signature only once AuthenticateOnUnsubscribe is set
            # (https://docs.aws.amazon.com/sns/latest/api/API_ConfirmSubscription.html): no policy is in its way.
            aws.sns.TopicSubscription(
                f"{name}-alarm-email", topic=self.topic.arn, protocol="email", endpoint=args.alarm_email, opts=child
            )
        self.alarms = {spec.suffix: self._alarm(name, spec, args) for spec in _alarm_specs(args)}
        # After the alarms, whose ARNs it names: a resource of its own, so the alarms (which name the
        # topic) and the policy (which names them) make no cycle.
        self._create_topic_policy(name, args, child)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"{name}-{pulumi.get_stack()}",
            dashboard_body=pulumi.Output.json_dumps(_dashboard_body(args)),
            opts=child,
        )
        self.dashboard_url = pulumi.Output.concat(
            "https://",
            args.region,
            ".console.aws.amazon.com/cloudwatch/home?region=",
            args.region,
            "#dashboards:name=",
            self.dashboard.dashboard_name,
        )
        self.register_outputs({"dashboardUrl": self.dashboard_url})

    def _create_topic_policy(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions) -> None:
        # Whoever may publish here may page the on-call with a forged alarm, or drown a real one.
        # Without a policy of ours, the topic's default one lets every principal of the account whose own
        # policy allows sns:Publish do so; this one lets CloudWatch publish for this stack's alarms only
        # (its service principal, with aws:SourceAccount and aws:SourceArn against the confused deputy,
        # as AWS's "Example cases for Amazon SNS access control" write it:
        # https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html). The source is
        # each alarm's own ARN, not `alarm:*`: an alarm anyone of the account made, naming this topic
        # as its action, would page the on-call too. Publish is denied to every IAM principal (a service
        # principal acting itself is not one), since in the same account an identity policy allowing it
        # would otherwise be enough.
        # The deployer keeps managing the topic through its own policy (nothing here allows it, nothing
        # denies it); only the deployers may do what TOPIC_ADMINISTRATION lists, as for the queues.
        # Requests without TLS are denied, as AWS's SNS security best practices advise
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-security-best-practices.html#enforce-encryption-data-in-transit).
        topic = [self.topic.arn]
        alarms_publish = {
            "Sid": "AlarmsOfThisAccountPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": args.account_id},
                "ArnEquals": {"aws:SourceArn": [alarm.arn for alarm in self.alarms.values()]},
            },
        }
        aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=self.topic.arn,
            policy=policy_document(
                [
                    deny_insecure_transport("sns", topic),
                    alarms_publish,
                    deny_to_iam_principals("OnlyAlarmsPublish", "sns:Publish", topic),
                    deny_unless_principal("OnlyDeployersAdminister", TOPIC_ADMINISTRATION, topic, list(args.deployers)),
                ]
            ),
            opts=opts,
        )

    def _alarm(self, name: str, spec: _AlarmSpec, args: ObservabilityArgs) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.suffix}",
            alarm_description=spec.description,
            namespace=spec.namespace,
            metric_name=spec.metric,
            dimensions=dict(spec.dimensions),
            statistic=spec.statistic,
            period=60,
            evaluation_periods=1,
            threshold=spec.threshold,
            comparison_operator="GreaterThanThreshold",
            # No datapoints means no traffic, not a failure.
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _alarm_specs(args: ObservabilityArgs) -> list[_AlarmSpec]:
    dlq = {"QueueName": args.dead_letter_queue_name}
    return [
        _AlarmSpec(
            "dlq-messages",
            "Chunks failed maxReceiveCount times and wait in the DLQ",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            dlq,
            "Maximum",
            0,
        ),
        _AlarmSpec(
            "failed-uploads",
            "Upload events failed the producer's retries and wait for replay",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": args.producer_failed_events_queue_name},
            "Maximum",
            0,
        ),
        _AlarmSpec(
            "queue-age",
            "The oldest queued chunk waits longer than the threshold",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": args.queue_name},
            "Maximum",
            args.queue_age_threshold_seconds,
        ),
        _AlarmSpec(
            "producer-errors",
            "The producer failed an invocation",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": args.producer_function_name},
            "Sum",
            0,
        ),
        _AlarmSpec(
            "worker-errors",
            "The worker failed an invocation",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": args.worker_function_name},
            "Sum",
            0,
        ),
        _AlarmSpec(
            "api-5xx",
            "The query API answered 5xx",
            "AWS/ApiGateway",
            "5XXError",
            {"ApiName": args.api_name, "Stage": args.api_stage_name},
            "Sum",
            0,
        ),
    ]


def _dashboard_body(args: ObservabilityArgs) -> dict[str, Any]:
    def widget(title: str, metrics: list[list[Any]], x: int, y: int) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": args.region, "stat": "Sum", "period": 60, "metrics": metrics},
        }

    functions = [args.producer_function_name, args.worker_function_name, args.query_function_name]
    rows = ["RowsParsed", "RowsRejected", "RowsWritten", "RowsSuperseded", "WriteRetries", "WriteThrottles"]
    return {
        "widgets": [
            widget(
                "Queue depth",
                [
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", args.queue_name],
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", args.dead_letter_queue_name],
                ],
                0,
                0,
            ),
            widget(
                "Oldest message age (s)",
                [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", args.queue_name, {"stat": "Maximum"}]],
                12,
                0,
            ),
            widget("Function errors", [["AWS/Lambda", "Errors", "FunctionName", fn] for fn in functions], 0, 6),
            widget("Function throttles", [["AWS/Lambda", "Throttles", "FunctionName", fn] for fn in functions], 12, 6),
            widget("Rows", [[METRICS_NAMESPACE, metric, "service", _service(metric)] for metric in rows], 0, 12),
            widget(
                "API responses",
                [
                    ["AWS/ApiGateway", metric, "ApiName", args.api_name, "Stage", args.api_stage_name]
                    for metric in ("Count", "4XXError", "5XXError")
                ],
                12,
                12,
            ),
        ]
    }


def _service(metric: str) -> str:
    """The handler that emits a custom metric (its `service` dimension)."""
    return "producer" if metric in ("RowsParsed", "RowsRejected") else "worker"
