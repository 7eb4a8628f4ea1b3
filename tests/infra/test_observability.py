"""Observability: alarms on the DLQ, queue age, function errors and API 5xx; a dashboard."""

import json

import pytest

from local.mocks import ACCOUNT_ID
from tests.infra.support import DEPLOYER, function, statement

WATCH = "csv-ingest-watch"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _queue_name(plan, name):
    return plan.one("aws:sqs/queue:Queue", name).outputs["name"]


@pytest.mark.parametrize(
    ("alarm", "namespace", "metric", "threshold"),
    [
        ("dlq-messages", "AWS/SQS", "ApproximateNumberOfMessagesVisible", 0),
        ("failed-uploads", "AWS/SQS", "ApproximateNumberOfMessagesVisible", 0),
        ("queue-age", "AWS/SQS", "ApproximateAgeOfOldestMessage", 900),
        ("producer-errors", "AWS/Lambda", "Errors", 0),
        ("worker-errors", "AWS/Lambda", "Errors", 0),
        ("api-5xx", "AWS/ApiGateway", "5XXError", 0),
    ],
)
def test_alarms_watch_what_loses_or_delays_data_and_notify_the_topic(dev, alarm, namespace, metric, threshold):
    inputs = dev.one(ALARM, f"{WATCH}-{alarm}").inputs
    assert (inputs["namespace"], inputs["metricName"], inputs["threshold"]) == (namespace, metric, threshold)
    assert inputs["comparisonOperator"] == "GreaterThanThreshold"
    topic = dev.one("aws:sns/topic:Topic", f"{WATCH}-alarms").outputs["arn"]
    assert inputs["alarmActions"] == [topic]


def test_alarms_watch_this_stacks_resources(dev):
    def dimensions(alarm):
        return dev.one(ALARM, f"{WATCH}-{alarm}").inputs["dimensions"]

    assert dimensions("dlq-messages") == {"QueueName": _queue_name(dev, "csv-ingest-chunks-dlq")}
    assert dimensions("failed-uploads") == {"QueueName": _queue_name(dev, "csv-ingest-producer-failed-events")}
    assert dimensions("queue-age") == {"QueueName": _queue_name(dev, "csv-ingest-chunks")}
    assert dimensions("worker-errors") == {"FunctionName": function(dev, "csv-ingest-worker").outputs["name"]}
    assert dimensions("producer-errors") == {"FunctionName": function(dev, "csv-ingest-producer").outputs["name"]}
    api_name = dev.one("aws:apigateway/restApi:RestApi", "csv-ingest-api").outputs["name"]
    assert dimensions("api-5xx") == {"ApiName": api_name, "Stage": "v1"}


def test_queue_age_threshold_comes_from_config(prod):
    assert prod.one(ALARM, f"{WATCH}-queue-age").inputs["threshold"] == 600


def test_alarm_email_is_subscribed_only_when_configured(dev, prod):
    assert not dev.of_type("aws:sns/topicSubscription:TopicSubscription")
    [subscription] = prod.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == (
        "email",
        "data-platform-oncall@example.com",
    )


def test_dashboard_shows_the_pipeline_and_is_exported(dev):
    dashboard = dev.one("aws:cloudwatch/dashboard:Dashboard", f"{WATCH}-dashboard").inputs
    body = json.loads(dashboard["dashboardBody"])
    metrics = [m for widget in body["widgets"] for m in widget["properties"]["metrics"]]
    assert [
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        _queue_name(dev, "csv-ingest-chunks-dlq"),
    ] in (metrics)
    assert any(m[:2] == ["CsvIngest", "RowsWritten"] for m in metrics)
    assert dev.outputs["dashboardUrl"].endswith(f"#dashboards:name={dashboard['dashboardName']}")


TOPIC = f"{WATCH}-alarms"


def _topic_policy(plan):
    topic_arn = plan.one("aws:sns/topic:Topic", TOPIC).outputs["arn"]
    [policy] = [p for p in plan.of_type("aws:sns/topicPolicy:TopicPolicy") if p.inputs["arn"] == topic_arn]
    return topic_arn, json.loads(policy.inputs["policy"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_alarm_topic_denies_requests_without_tls(request, stack):
    topic_arn, document = _topic_policy(request.getfixturevalue(stack))
    assert document["Version"] == "2012-10-17"
    deny = statement(document, "DenyInsecureTransport")
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sns:*"), TOPIC
    assert deny["Resource"] == [topic_arn], TOPIC
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, TOPIC


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_cloudwatch_may_publish_for_this_stacks_alarms_only(request, stack):
    plan = request.getfixturevalue(stack)
    topic_arn, document = _topic_policy(plan)
    allow = statement(document, "AlarmsOfThisAccountPublish")
    assert allow["Effect"] == "Allow", TOPIC
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}, TOPIC
    assert (allow["Action"], allow["Resource"]) == ("sns:Publish", [topic_arn]), TOPIC
    # Not `alarm:*`: any alarm of the account, made by whoever may put one, could page the on-call.
    alarms = sorted(alarm.outputs["arn"] for alarm in plan.of_type(ALARM))
    assert len(alarms) == 6 and all(
        arn.startswith(f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT_ID}:alarm:") for arn in alarms
    )
    condition = allow["Condition"]
    assert set(condition) == {"StringEquals", "ArnEquals"}, TOPIC
    assert condition["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}, f"{TOPIC}: the confused deputy"
    assert sorted(condition["ArnEquals"]["aws:SourceArn"]) == alarms, (
        f"{TOPIC}: CloudWatch could publish for alarms other than the stack's own"
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_principal_of_the_account_may_publish_whatever_its_own_policy_allows(request, stack):
    topic_arn, document = _topic_policy(request.getfixturevalue(stack))
    deny = statement(document, "OnlyAlarmsPublish")
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sns:Publish"), TOPIC
    assert deny["Resource"] == [topic_arn], TOPIC
    # Set for every signed request: true only when a service principal acts itself (the alarms).
    assert deny["Condition"] == {"Bool": {"aws:PrincipalIsAWSService": "false"}}, TOPIC


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_deploying_principal_may_change_or_delete_the_topic(request, stack):
    topic_arn, document = _topic_policy(request.getfixturevalue(stack))
    deny = statement(document, "OnlyDeployersAdminister")
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*"), TOPIC
    assert set(TOPIC_ADMINISTRATION) <= set(deny["Action"]), TOPIC
    assert deny["Resource"] == [topic_arn], TOPIC
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER]}}, TOPIC


TOPIC_ADMINISTRATION = ["sns:SetTopicAttributes", "sns:AddPermission", "sns:RemovePermission", "sns:DeleteTopic"]
# The actions SNS accepts in a topic's policy; `sns:Unsubscribe` and `sns:SetSubscriptionAttributes` are
# not among them (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-language-api-permissions-reference.html).
TOPIC_POLICY_ACTIONS = {
    "sns:AddPermission",
    "sns:DeleteTopic",
    "sns:GetDataProtectionPolicy",
    "sns:GetTopicAttributes",
    "sns:ListSubscriptionsByTopic",
    "sns:ListTagsForResource",
    "sns:Publish",
    "sns:PutDataProtectionPolicy",
    "sns:RemovePermission",
    "sns:SetTopicAttributes",
    "sns:Subscribe",
}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_deploying_principal_subscribes_to_the_topic_or_filters_its_messages(request, stack):
    # A subscription of someone else's receives every alarm; a data protection policy can drop them.
    # Confirming the on-call's subscription (the e-mail's link) is ConfirmSubscription, unsigned.
    _, document = _topic_policy(request.getfixturevalue(stack))
    deny = statement(document, "OnlyDeployersAdminister")
    assert deny["Action"] == [*TOPIC_ADMINISTRATION, "sns:Subscribe", "sns:PutDataProtectionPolicy"], TOPIC
    assert "sns:ConfirmSubscription" not in deny["Action"], TOPIC


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_topic_policy_names_only_actions_sns_accepts_in_a_topic_policy(request, stack):
    # SNS refuses a topic policy naming another action, and `pulumi up` with it.
    _, document = _topic_policy(request.getfixturevalue(stack))
    for entry in document["Statement"]:
        actions = [entry["Action"]] if isinstance(entry["Action"], str) else entry["Action"]
        named = {action for action in actions if "*" not in action}
        assert named <= TOPIC_POLICY_ACTIONS, f"{TOPIC} {entry['Sid']}: {sorted(named - TOPIC_POLICY_ACTIONS)}"


def test_the_topic_policy_grants_cloudwatch_alone(dev):
    _, document = _topic_policy(dev)
    assert [s["Sid"] for s in document["Statement"] if s["Effect"] == "Allow"] == ["AlarmsOfThisAccountPublish"]
