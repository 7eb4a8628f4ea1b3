"""csv-ingest: deploy the serverless CSV ingestion pipeline of this stack (`pulumi up`)."""

import pulumi

from infra.config import load_config
from infra.pipeline import Pipeline, PipelineArgs

config = load_config(pulumi.Config("csv-ingest").get)
pipeline = Pipeline(
    "csv-ingest",
    PipelineArgs(config=config, tags={"project": "csv-ingest", "stack": pulumi.get_stack()}),
)

pulumi.export("bucketName", pipeline.storage.bucket.bucket)
pulumi.export("uploadsPrefix", config.uploads_prefix)
pulumi.export("uploadsSuffix", config.uploads_suffix)
pulumi.export("queueUrl", pipeline.queue.queue.url)
pulumi.export("deadLetterQueueUrl", pipeline.queue.dead_letter_queue.url)
pulumi.export("failedUploadEventsQueueUrl", pipeline.producer.failed_events.url)
# Where the worker logs why a chunk failed: `ingest dlq peek` looks each dead-lettered message up there.
pulumi.export("workerLogGroupName", pipeline.worker.function.logging_config.log_group)
pulumi.export("usersTableName", pipeline.tables.users.name)
pulumi.export("jobsTableName", pipeline.tables.jobs.name)
pulumi.export("apiUrl", pipeline.api.stage.invoke_url)
if pipeline.api.api_keys:
    keys = {consumer: key.value for consumer, key in pipeline.api.api_keys.items()}
    pulumi.export("apiKeys", pulumi.Output.secret(keys))
    # The first consumer's key under the name tools used when there was a single key.
    pulumi.export("apiKey", pulumi.Output.secret(next(iter(keys.values()))))
pulumi.export("dashboardUrl", pipeline.observability.dashboard_url)
