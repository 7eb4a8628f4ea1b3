"""csv-ingest: deploy the serverless CSV ingestion pipeline of this stack (`pulumi up`)."""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from infra.config import ConfigError, load_config
from infra.pipeline import Pipeline, PipelineArgs
from infra.tables import table_output

NAMESPACE = "csv-ingest"
# Every key the stack sets, whatever its namespace: `pulumi up` hands them to the program as JSON in
# PULUMI_CONFIG (what get_config_env reads; Pulumi's Python language host sets it), mocks through
# set_all_config (CONFIG). Ours are validated whole: a misspelled one must not go unread.
stack_keys = {*CONFIG.get(), *get_config_env()}


class SettingsRefused(ConfigError, pulumi.RunError):
    """A stack setting refused. A `RunError`: `pulumi up` ends with its message alone, no traceback
    (https://www.pulumi.com/docs/reference/pkg/python/pulumi/#pulumi.RunError); a `ConfigError`: local
    mode, which runs this program itself, reports it as one line like every other."""


try:
    config = load_config(
        pulumi.Config(NAMESPACE).get, [key.split(":", 1)[1] for key in stack_keys if key.startswith(f"{NAMESPACE}:")]
    )
except ConfigError as refused:
    raise SettingsRefused(str(refused)) from None
pipeline = Pipeline(
    "csv-ingest",
    PipelineArgs(config=config, tags={"project": "csv-ingest", "stack": pulumi.get_stack()}),
)

pulumi.export("bucketName", pipeline.storage.bucket.bucket)
pulumi.export("uploadsPrefix", config.uploads_prefix)
# A list: an upload needs one of these suffixes to start a job.
pulumi.export("uploadsSuffixes", list(config.uploads_suffixes))
pulumi.export("queueUrl", pipeline.queue.queue.url)
pulumi.export("deadLetterQueueUrl", pipeline.queue.dead_letter_queue.url)
pulumi.export("failedUploadEventsQueueUrl", pipeline.producer.failed_events.url)
# Where the worker logs why a chunk failed: `ingest dlq peek` looks each dead-lettered message up there.
pulumi.export("workerLogGroupName", pipeline.worker.function.logging_config.log_group)
# `usersTableName` for the default schema, as before there were schemas.
pulumi.export(table_output(config.schema), pipeline.tables.items.name)
pulumi.export("jobsTableName", pipeline.tables.jobs.name)
# The schema as every function receives it (canonical JSON, `SCHEMA`): the commands that talk to the
# stack (`get`, `list`, `dlq peek`) learn its collection, key and columns from it, never from a copy.
pulumi.export("schema", config.schema.to_json())
pulumi.export("apiUrl", pipeline.api.stage.invoke_url)
if pipeline.api.api_keys:
    keys = {consumer: key.value for consumer, key in pipeline.api.api_keys.items()}
    pulumi.export("apiKeys", pulumi.Output.secret(keys))
    # The first consumer's key under the name tools used when there was a single key.
    pulumi.export("apiKey", pulumi.Output.secret(next(iter(keys.values()))))
pulumi.export("dashboardUrl", pipeline.observability.dashboard_url)
