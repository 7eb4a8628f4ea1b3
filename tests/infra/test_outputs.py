"""Stack outputs: what users need to upload, follow jobs and query."""


def test_outputs_name_the_deployed_resources(dev):
    outputs = dev.outputs
    assert outputs["bucketName"] == dev.one("aws:s3/bucket:Bucket", "csv-ingest-uploads").outputs["bucket"]
    assert outputs["uploadsPrefix"] == "uploads/"
    assert outputs["uploadsSuffix"] == ".csv"
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
