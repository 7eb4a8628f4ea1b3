"""Stack outputs: what users need to upload, follow jobs and query."""

from handlers.common.schema import DEFAULT_SCHEMA, parse_schema
from tests.infra.support import DEVICES


def test_outputs_name_the_deployed_resources(dev):
    outputs = dev.outputs
    assert outputs["bucketName"] == dev.one("aws:s3/bucket:Bucket", "csv-ingest-uploads").outputs["bucket"]
    assert outputs["uploadsPrefix"] == "uploads/"
    assert outputs["uploadsSuffixes"] == [".csv", ".csv.gz", ".tsv", ".tsv.gz"]
    assert "uploadsSuffix" not in outputs, "replaced by the list"
    assert outputs["queueUrl"] == dev.one("aws:sqs/queue:Queue", "csv-ingest-chunks").outputs["url"]
    assert outputs["deadLetterQueueUrl"] == dev.one("aws:sqs/queue:Queue", "csv-ingest-chunks-dlq").outputs["url"]
    failed = dev.one("aws:sqs/queue:Queue", "csv-ingest-producer-failed-events").outputs["url"]
    assert outputs["failedUploadEventsQueueUrl"] == failed
    assert outputs["usersTableName"] == dev.one("aws:dynamodb/table:Table", "csv-ingest-data-users").outputs["name"]
    assert outputs["jobsTableName"] == dev.one("aws:dynamodb/table:Table", "csv-ingest-data-jobs").outputs["name"]
    assert outputs["apiUrl"].endswith(".amazonaws.com/v1")
    key = dev.one("aws:apigateway/apiKey:ApiKey", "csv-ingest-api-key-default").outputs["value"]
    assert (outputs["apiKey"], outputs["apiKeys"]) == (key, {"default": key})
    assert outputs["dashboardUrl"].startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/")


def test_only_the_api_keys_are_secret_outputs(dev):
    assert dev.secret_outputs == {"apiKey", "apiKeys"}


def test_the_worker_log_group_output_is_where_the_worker_logs(dev):
    group = dev.one("aws:cloudwatch/logGroup:LogGroup", "csv-ingest-worker-logs").outputs["name"]
    worker = dev.one("aws:lambda/function:Function", "csv-ingest-worker").outputs
    assert dev.outputs["workerLogGroupName"] == group == worker["loggingConfig"]["logGroup"]


def test_the_items_table_output_is_named_after_the_schema(plan_with):
    # `usersTableName` for the default schema (above), as before there were schemas.
    plan = plan_with(schema={**DEVICES, "name": "device-logs"})
    table = plan.one("aws:dynamodb/table:Table", "csv-ingest-data-device-logs").outputs["name"]
    assert plan.outputs["deviceLogsTableName"] == table
    assert "usersTableName" not in plan.outputs


FUNCTIONS = ("csv-ingest-producer", "csv-ingest-worker", "csv-ingest-api-fn")


def test_the_schema_output_is_the_schema_every_function_receives(dev, plan_with):
    # The commands learn a stack's schema from this output (`ingest get`, `list`, `dlq peek`): the
    # one declaration the functions run by, never a copy that could differ.
    devices = plan_with(schema=DEVICES)
    for plan, name in ((dev, "users"), (devices, "devices")):
        assert parse_schema(plan.outputs["schema"]).name == name
        for function in FUNCTIONS:
            variables = plan.one("aws:lambda/function:Function", function).inputs["environment"]["variables"]
            assert variables["SCHEMA"] == plan.outputs["schema"], function
    assert dev.outputs["schema"] == DEFAULT_SCHEMA.to_json()
