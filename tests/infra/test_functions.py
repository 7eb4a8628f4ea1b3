"""Functions: sizing and runtime from config, env naming exactly their resources, logs, the mapping."""

import functools
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import infra.function
import infra.interpreters as interpreters
from handlers.common.schema import DEFAULT_SCHEMA, parse_schema
from infra.function import METRICS_NAMESPACE
from infra.packaging import build_archive
from tests.infra.support import FUNCTION, PRODUCTS, function

PRODUCER, WORKER, QUERY = "csv-ingest-producer", "csv-ingest-worker", "csv-ingest-api-fn"


@pytest.mark.parametrize(("name", "memory", "timeout"), [(PRODUCER, 512, 300), (WORKER, 256, 60), (QUERY, 128, 10)])
def test_dev_functions_use_the_article_sizing_on_arm64_python313(dev, name, memory, timeout):
    fn = function(dev, name).inputs
    assert (fn["memorySize"], fn["timeout"]) == (memory, timeout)
    assert (fn["runtime"], fn["architectures"]) == ("python3.13", ["arm64"])


def test_runtime_architecture_and_sizing_come_from_config(plan_with):
    plan = plan_with(runtime="python3.12", architecture="x86_64", workerMemoryMb=1024, workerTimeoutSeconds=30)
    fn = function(plan, WORKER).inputs
    assert (fn["runtime"], fn["architectures"], fn["memorySize"], fn["timeout"]) == (
        "python3.12",
        ["x86_64"],
        1024,
        30,
    )


def test_producer_is_told_the_configured_upload_size_limit(plan_with):
    variables = function(plan_with(maxUploadBytes=10 * 1024**2), PRODUCER).inputs["environment"]["variables"]
    assert variables["MAX_UPLOAD_BYTES"] == str(10 * 1024**2), PRODUCER


def test_producer_is_told_the_configured_decompressed_size_limit(plan_with):
    variables = function(plan_with(maxDecompressedBytes=3 * 1024**3), PRODUCER).inputs["environment"]["variables"]
    assert variables["MAX_DECOMPRESSED_BYTES"] == str(3 * 1024**3), PRODUCER


def test_producer_checks_events_against_the_notifications_own_prefix_and_suffixes(plan_with):
    plan = plan_with(uploadsPrefix="incoming/", uploadsSuffixes=[".CSV", ".txt.gz"])
    variables = function(plan, PRODUCER).inputs["environment"]["variables"]
    triggers = plan.one("aws:s3/bucketNotification:BucketNotification", f"{PRODUCER}-trigger").inputs["lambdaFunctions"]
    filters = (variables["UPLOADS_PREFIX"], json.loads(variables["UPLOADS_SUFFIXES"]))
    assert filters == ("incoming/", [".CSV", ".txt.gz"]), PRODUCER
    assert {t["filterPrefix"] for t in triggers} == {"incoming/"}, f"{PRODUCER}-trigger"
    assert [t["filterSuffix"] for t in triggers] == [".CSV", ".txt.gz"], f"{PRODUCER}-trigger"


def test_environment_names_exactly_the_resources_each_function_uses(dev):
    def outputs(type_, name, attribute):
        return dev.one(type_, name).outputs[attribute]

    queue_url = outputs("aws:sqs/queue:Queue", "csv-ingest-chunks", "url")
    items = outputs("aws:dynamodb/table:Table", "csv-ingest-data-users", "name")
    schema = DEFAULT_SCHEMA.to_json()
    jobs = outputs("aws:dynamodb/table:Table", "csv-ingest-data-jobs", "name")
    bucket = outputs("aws:s3/bucket:Bucket", "csv-ingest-uploads", "bucket")
    signing_secret = outputs("aws:secretsmanager/secret:Secret", "csv-ingest-chunk-signing", "arn")
    expected = {
        PRODUCER: {
            "UPLOAD_BUCKET": bucket,
            "UPLOADS_PREFIX": "uploads/",
            "UPLOADS_SUFFIXES": '[".csv", ".csv.gz", ".tsv", ".tsv.gz"]',
            "REPORTS_PREFIX": "reports/",
            "QUEUE_URL": queue_url,
            "JOBS_TABLE": jobs,
            "ROWS_PER_MESSAGE": "200",
            "MAX_MESSAGE_BYTES": "1048576",
            "JOB_TTL_DAYS": "30",
            "MAX_UPLOAD_BYTES": str(5 * 1024**3),
            "MAX_DECOMPRESSED_BYTES": str(50 * 1024**3),
            "CHUNK_SIGNING_SECRET_ARN": signing_secret,
            "SCHEMA": schema,
        },
        WORKER: {
            "ITEMS_TABLE": items,
            "JOBS_TABLE": jobs,
            "CHUNK_SIGNING_SECRET_ARN": signing_secret,
            "SCHEMA": schema,
        },
        QUERY: {"ITEMS_TABLE": items, "JOBS_TABLE": jobs, "JOBS_INDEX": "recent-jobs", "SCHEMA": schema},
    }
    services = {PRODUCER: "producer", WORKER: "worker", QUERY: "query"}
    for name, resources in expected.items():
        variables = function(dev, name).inputs["environment"]["variables"]
        assert variables == {
            "POWERTOOLS_SERVICE_NAME": services[name],
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **resources,
        }, name


@pytest.mark.parametrize("name", [PRODUCER, WORKER, QUERY])
def test_every_function_is_handed_the_stacks_schema_and_the_worker_its_table(plan_with, name):
    plan = plan_with(schema=PRODUCTS)
    variables = function(plan, name).inputs["environment"]["variables"]
    # The functions parse it back with the program's own parser: the schema they run is the one declared.
    assert parse_schema(variables["SCHEMA"], "SCHEMA") == parse_schema(PRODUCTS), name
    if name != PRODUCER:
        table = plan.one("aws:dynamodb/table:Table", "csv-ingest-data-products").outputs["name"]
        assert variables["ITEMS_TABLE"] == table, name


@pytest.mark.parametrize("name", [PRODUCER, WORKER, QUERY])
def test_functions_log_json_to_their_own_log_group_with_retention(dev, prod, name):
    for plan, days in ((dev, 7), (prod, 90)):
        group = plan.one("aws:cloudwatch/logGroup:LogGroup", f"{name}-logs")
        assert group.inputs["retentionInDays"] == days
        assert function(plan, name).inputs["loggingConfig"] == {"logFormat": "JSON", "logGroup": group.outputs["name"]}


@pytest.fixture
def no_interpreters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine where no Python of any runtime is installed where the program looks for one (PATH,
    pyenv, uv). The program's archives are built under tmp_path meanwhile: sources-only archives
    must not replace the checkout's .build/, which a local stack started at the same time reads."""
    nowhere = tmp_path / "no-pythons"
    nowhere.mkdir()
    for variable in ("PATH", "PYENV_ROOT", "UV_PYTHON_INSTALL_DIR"):
        monkeypatch.setenv(variable, str(nowhere))
    monkeypatch.setattr(infra.function, "build_archive", functools.partial(build_archive, build_dir=tmp_path / "build"))
    interpreters.search.cache_clear()  # an interpreter found by an earlier test is not looked for again
    yield
    interpreters.search.cache_clear()


# The dev stack's own runtime, and another: the install line must name the runtime declared, whichever.
@pytest.mark.parametrize("overrides", [{}, {"runtime": "python3.12"}], ids=["declared", "python3.12"])
def test_without_the_runtimes_interpreter_the_plan_warns_for_each_function_how_to_install_it(
    plan_with, no_interpreters, overrides
):
    plan = plan_with(**overrides)

    functions = plan.of_type(FUNCTION)
    assert {fn.inputs["runtime"] for fn in functions} == {overrides.get("runtime", "python3.13")}
    assert len(plan.warnings) == len(functions), plan.warnings  # one line per function, nothing else
    for fn in functions:
        runtime = fn.inputs["runtime"]
        version = runtime.removeprefix("python")
        said = [w for w in plan.warnings if w.startswith(f"{fn.name}: ")]
        assert len(said) == 1, (fn.name, plan.warnings)
        warning = said[0]
        assert f"no Python {version} for the {runtime} runtime" in warning, warning
        # Copied from between the backticks, each is a whole command installing the runtime's version:
        # pyenv and uv both take a minor version and install its latest patch release
        # (https://github.com/pyenv/pyenv#prefix-auto-resolution-to-the-latest-version,
        # https://docs.astral.sh/uv/concepts/python-versions/#requesting-a-version).
        assert re.findall(r"`([^`]*)`", warning) == [f"pyenv install {version}", f"uv python install {version}"]
        # … and the archive it warns about deploys the sources alone.
        with zipfile.ZipFile(fn.inputs["code"].path) as archive:
            names = archive.namelist()
        assert "handlers/__init__.py" in names and not [n for n in names if n.endswith(".pyc")], fn.name


@pytest.mark.parametrize(("name", "package"), [(PRODUCER, "producer"), (WORKER, "worker"), (QUERY, "query")])
def test_functions_deploy_their_own_archive_under_its_hash(dev, name, package):
    fn = function(dev, name).inputs
    archive = build_archive(package, fn["runtime"])
    assert fn["handler"] == f"handlers.{package}.app.handler"
    assert fn["code"].path == str(archive.path)
    assert fn["codeSha256"] == archive.sha256


def test_worker_mapping_reports_batch_item_failures_with_configured_batching(dev, prod):
    for plan, batch, concurrency, window in ((dev, 5, 5, 5), (prod, 10, 50, 2)):
        mapping = plan.one("aws:lambda/eventSourceMapping:EventSourceMapping", "csv-ingest-worker-queue")
        assert mapping.inputs["eventSourceArn"] == plan.one("aws:sqs/queue:Queue", "csv-ingest-chunks").outputs["arn"]
        assert mapping.inputs["functionName"] == function(plan, WORKER).outputs["arn"]
        assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping.inputs["batchSize"] == batch
        assert mapping.inputs["maximumBatchingWindowInSeconds"] == window
        assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": concurrency}
        policy = plan.one("aws:iam/rolePolicy:RolePolicy", f"{WORKER}-policy")
        assert policy.urn in mapping.dependencies, "Lambda checks the role's SQS permissions on create"


def test_roles_trust_only_lambda(dev):
    for name in (PRODUCER, WORKER, QUERY):
        trust = json.loads(dev.one("aws:iam/role:Role", f"{name}-role").inputs["assumeRolePolicy"])
        assert trust["Version"] == "2012-10-17"
        assert trust["Statement"] == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ], name
