"""Configuration: both stacks build, their differences hold, every invalid value is refused by name."""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from handlers.common.schema import DEFAULT_SCHEMA, parse_schema, render_types_table
from infra.config import ConfigError, load_config, parse_settings, render_reference_table
from local.mocks import run_program, stack_settings
from tests.infra.support import PRODUCTS

README = Path(__file__).resolve().parents[2] / "README.md"


def _stack_config(stack):
    return parse_settings(
        {key.split(":", 1)[1]: v for key, v in stack_settings(stack).items() if key.startswith("csv")}
    )


def test_dev_uses_the_article_sizing():
    dev = _stack_config("dev")
    assert (dev.producer.memory_mb, dev.producer.timeout_seconds) == (512, 300)
    assert (dev.worker.memory_mb, dev.worker.timeout_seconds) == (256, 60)
    assert (dev.query.memory_mb, dev.query.timeout_seconds) == (128, 10)
    assert (dev.worker_batch_size, dev.worker_batching_window_seconds, dev.worker_max_concurrency) == (5, 5, 5)


def test_prod_is_protected_recoverable_alarmed_and_authenticated():
    dev, prod = _stack_config("dev"), _stack_config("prod")
    assert (dev.point_in_time_recovery, dev.deletion_protection, dev.retain_on_delete) == (False, False, False)
    assert (prod.point_in_time_recovery, prod.deletion_protection, prod.retain_on_delete) == (True, True, True)
    assert dev.force_destroy and not prod.force_destroy
    assert prod.worker_max_concurrency > dev.worker_max_concurrency
    assert prod.alarm_email and not dev.alarm_email
    assert prod.api_auth != "none" and dev.api_auth != "none"


def test_missing_settings_take_documented_defaults():
    config = parse_settings({})
    assert (config.runtime, config.architecture, config.api_auth) == ("python3.13", "arm64", "apiKey")
    assert config.table_billing_mode == "PAY_PER_REQUEST"


def test_load_config_reads_strings_as_the_pulumi_cli_stores_them():
    raw = {"workerBatchSize": "10", "pointInTimeRecovery": "true", "alarmEmail": "ops@example.com"}
    config = load_config(raw.get)
    assert (config.worker_batch_size, config.point_in_time_recovery, config.alarm_email) == (
        10,
        True,
        "ops@example.com",
    )


def test_list_settings_read_yaml_lists_and_the_json_the_pulumi_cli_hands_over():
    role = "arn:aws:iam::123456789012:role/ops/redrive"
    assert parse_settings({}).queue_redrive_principals == ()
    assert parse_settings({"queueRedrivePrincipals": [role]}).queue_redrive_principals == (role,)
    assert load_config({"queueRedrivePrincipals": f'["{role}"]'}.get).queue_redrive_principals == (role,)
    assert parse_settings({}).deployer_principals == ()
    assert parse_settings({"deployerPrincipals": [role]}).deployer_principals == (role,)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"workerBatchSize": 50, "workerBatchingWindowSeconds": 0}, "csv-ingest:workerBatchingWindowSeconds"),
        ({"workerBatchSize": 10001, "workerBatchingWindowSeconds": 5}, "csv-ingest:workerBatchSize = 10001"),
        ({"workerMaxConcurrency": 1}, "csv-ingest:workerMaxConcurrency = 1 is out of range; allowed: 2–1000"),
        ({"workerMaxConcurrency": 1001}, "csv-ingest:workerMaxConcurrency = 1001 is out of range; allowed: 2–1000"),
        ({"producerMemoryMb": 127}, "csv-ingest:producerMemoryMb = 127 is out of range; allowed: 128–10240"),
        ({"workerMemoryMb": 10241}, "csv-ingest:workerMemoryMb = 10241 is out of range; allowed: 128–10240"),
        ({"queryTimeoutSeconds": 30}, "csv-ingest:queryTimeoutSeconds = 30 is out of range; allowed: 1–29"),
        ({"producerTimeoutSeconds": 901}, "csv-ingest:producerTimeoutSeconds = 901 is out of range"),
        ({"apiAuth": "none"}, "csv-ingest:apiAuth = 'none' needs csv-ingest:allowPublicApi = true"),
        ({"apiKeys": []}, "csv-ingest:apiKeys has 0 entries; allowed: list of at least 1 distinct consumer names"),
        ({"apiKeys": ["crm sync"]}, "csv-ingest:apiKeys entry 'crm sync' is not allowed"),
        ({"apiKeys": ["a" * 65]}, "csv-ingest:apiKeys entry 'aaaa"),
        ({"apiKeys": ["crm", "crm"]}, "csv-ingest:apiKeys lists 'crm' more than once"),
        ({"apiQuotaPerDay": 0}, "csv-ingest:apiQuotaPerDay = 0 is out of range; allowed: 1–10000000"),
        ({"apiAuth": "basic"}, "csv-ingest:apiAuth = 'basic' is not allowed; use one of: apiKey, iam, none"),
        ({"logRetentionDays": -1}, "csv-ingest:logRetentionDays = -1 is not allowed; use one of: 1, 3, 5"),
        ({"logRetentionDays": 10}, "csv-ingest:logRetentionDays = 10 is not allowed"),
        ({"jobTtlDays": -1}, "csv-ingest:jobTtlDays = -1 is out of range; allowed: 0–3650"),
        ({"maxMessageBytes": 1048577}, "csv-ingest:maxMessageBytes = 1048577 is out of range; allowed: 65536–1048576"),
        ({"maxMessageBytes": 1024}, "csv-ingest:maxMessageBytes = 1024 is out of range"),
        ({"maxUploadBytes": 1048575}, "csv-ingest:maxUploadBytes = 1048575 is out of range; allowed: 1048576–"),
        ({"maxUploadBytes": 5 * 1024**4 + 1}, "csv-ingest:maxUploadBytes = 5497558138881 is out of range"),
        ({"uploadsExpirationDays": 0}, "csv-ingest:uploadsExpirationDays = 0 is out of range; allowed: 1–3650"),
        ({"queueRedrivePrincipals": "ops"}, "csv-ingest:queueRedrivePrincipals = 'ops' is not a list of text"),
        (
            {"queueRedrivePrincipals": ["arn:aws:sts::123456789012:assumed-role/ops/alice"]},
            "csv-ingest:queueRedrivePrincipals entry 'arn:aws:sts::123456789012:assumed-role/ops/alice' is not allowed",
        ),
        ({"queueRedrivePrincipals": ["arn:aws:iam::123456789012:role/*"]}, "entry 'arn:aws:iam::123456789012:role/*'"),
        (
            {"queueRedrivePrincipals": ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/a"]},
            "csv-ingest:queueRedrivePrincipals lists 'arn:aws:iam::123456789012:role/a' more than once",
        ),
        (
            # A session's ARN is never a request's aws:PrincipalArn: listed, it would lock nobody in.
            {"deployerPrincipals": ["arn:aws:sts::123456789012:assumed-role/ci-deploy/run-4711"]},
            "csv-ingest:deployerPrincipals entry 'arn:aws:sts::123456789012:assumed-role/ci-deploy/run-4711'",
        ),
        ({"maxReceiveCount": 4}, "csv-ingest:maxReceiveCount = 4 is out of range; allowed: 5–1000"),
        ({"runtime": "python3.9"}, "csv-ingest:runtime = 'python3.9' is not allowed"),
        ({"architecture": "arm"}, "csv-ingest:architecture = 'arm' is not allowed; use one of: arm64, x86_64"),
        ({"tableBillingMode": "ON_DEMAND"}, "csv-ingest:tableBillingMode = 'ON_DEMAND' is not allowed"),
        ({"rowsPerMessage": "ten"}, "csv-ingest:rowsPerMessage = 'ten' is not a whole number"),
        ({"pointInTimeRecovery": "yes"}, "csv-ingest:pointInTimeRecovery = 'yes' is not a boolean"),
        ({"reportsPrefix": "uploads/reports/"}, "csv-ingest:reportsPrefix = 'uploads/reports/' overlaps"),
        ({"uploadsPrefix": "uploads"}, "csv-ingest:uploadsPrefix = 'uploads' must be a folder"),
        ({"alarmEmail": "oncall"}, "csv-ingest:alarmEmail = 'oncall' is not an email address"),
        ({"workerBatchsize": 10}, "unknown setting csv-ingest:workerBatchsize"),
    ],
)
def test_invalid_setting_is_refused_naming_the_key_and_the_allowed_values(settings, message):
    with pytest.raises(ConfigError) as raised:
        parse_settings(settings)
    assert message in str(raised.value)


def test_a_public_api_needs_the_acknowledgement():
    assert parse_settings({"apiAuth": "none", "allowPublicApi": True}).api_auth == "none"


def test_the_program_itself_stops_on_an_invalid_setting():
    with pytest.raises(ConfigError, match="csv-ingest:apiAuth = 'open' is not allowed"):
        run_program("dev", {"apiAuth": "open"})


def test_a_stack_without_a_region_is_refused_rather_than_given_one():
    # run_program's overrides drop a key given None: the stack file as if it had no aws:region.
    with pytest.raises(ConfigError, match=r"Pulumi\.dev\.yaml sets no aws:region.*pulumi config set aws:region"):
        run_program("dev", {"aws:region": None})


def test_readme_configuration_table_matches_the_settings():
    assert render_reference_table() in README.read_text(), "regenerate with: python -m infra.config"


def test_readme_column_types_table_matches_the_types():
    assert render_types_table() in README.read_text(), "regenerate with: python -m infra.config --types"


# --- csv-ingest:schema --------------------------------------------------------------------------


def test_without_a_schema_setting_the_stack_ingests_users_as_before():
    assert parse_settings({}).schema == DEFAULT_SCHEMA
    assert load_config({}.get).schema == DEFAULT_SCHEMA
    assert _stack_config("dev").schema == _stack_config("prod").schema == DEFAULT_SCHEMA


def test_schema_setting_reads_a_yaml_mapping_and_the_json_the_pulumi_cli_hands_over():
    # `Pulumi.<stack>.yaml` holds a mapping; `pulumi up` hands a structured value to the program as
    # JSON text (https://github.com/pulumi/pulumi/pull/3342), which `pulumi.Config.get` returns as is.
    expected = parse_schema(PRODUCTS)
    from_yaml = parse_settings({"schema": PRODUCTS}).schema
    from_cli = load_config({"schema": json.dumps(PRODUCTS)}.get, ["schema"]).schema
    assert from_yaml == from_cli == expected
    assert (from_cli.name, from_cli.key, from_cli.key_attribute) == ("products", "sku", "sku")


def _products(change):
    declared = copy.deepcopy(PRODUCTS)
    change(declared)
    return declared


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            _products(lambda s: s["columns"][2].update(type="number")),
            "csv-ingest:schema.columns[2].type = 'number' is not allowed; use one of: text, email, phone, integer,"
            " decimal, boolean, date, datetime, enum",
        ),
        (
            _products(lambda s: s["columns"][2].update(maxLength=10)),
            "csv-ingest:schema.columns[2].maxLength is not a setting here; allowed: name, type, attribute, aliases,"
            " required, min, max",
        ),
        (_products(lambda s: s.update(key="id")), "csv-ingest:schema.key = 'id' names no column; use one of: sku,"),
        (_products(lambda s: s.update(name="Products")), "csv-ingest:schema.name = 'Products' is not allowed"),
        (
            _products(lambda s: s.update(name="jobs")),
            "csv-ingest:schema.name = 'jobs' is taken: the API's jobs, root, proxy resources",
        ),
        (
            _products(lambda s: s["columns"][5].pop("values")),
            "csv-ingest:schema.columns[5].values is not a list of the values allowed; declare at least one",
        ),
        (_products(lambda s: s.update(owner="me")), "csv-ingest:schema.owner is not a setting here"),
        (
            _products(lambda s: s["columns"][3].update(name="price")),
            "csv-ingest:schema.columns[3] is stored as 'price', as columns[1] is",
        ),
        ("products", "csv-ingest:schema is not a mapping; declare name, key and columns"),
        ([PRODUCTS], "csv-ingest:schema is not a mapping"),
    ],
    ids=[
        "unknown-type",
        "option-of-another-type",
        "key-naming-no-column",
        "bad-name",
        "reserved-name",
        "enum-without-values",
        "unknown-field",
        "duplicate-column",
        "not-json",
        "a-list",
    ],
)
def test_invalid_schema_is_refused_naming_the_path_and_what_is_allowed(schema, message):
    for raw in (schema, json.dumps(schema) if not isinstance(schema, str) else schema):
        with pytest.raises(ConfigError) as raised:
            parse_settings({"schema": raw})
        assert str(raised.value).startswith(message), str(raised.value)


def test_the_program_itself_stops_on_an_invalid_schema():
    with pytest.raises(ConfigError, match=re.escape("csv-ingest:schema.columns[2].type = 'number' is not allowed")):
        run_program("dev", {"schema": _products(lambda s: s["columns"][2].update(type="number"))})


def test_the_readme_schema_example_is_a_valid_setting():
    readme = README.read_text()
    section = readme[readme.index("\n## Schema\n") :]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert example, "README.md, Schema: no YAML example"
    settings = yaml.safe_load(example.group(1))["config"]
    config = parse_settings({k.split(":", 1)[1]: v for k, v in settings.items() if k.startswith("csv-ingest:")})
    assert config.schema != DEFAULT_SCHEMA


NOTES = {
    "name": "notes",
    "key": "id",
    "columns": [{"name": "id", "type": "integer"}, {"name": "body", "type": "text", "maxLength": 4096}],
}


def test_a_schema_whose_largest_row_cannot_fit_a_chunk_is_refused_naming_both_settings():
    # Ten chunks make one SendMessageBatch call: a 64 KiB queue leaves a chunk about 4 KB of rows, and a
    # row of 4,096 characters outside the BMP encodes to 49 KB of ASCII JSON.
    with pytest.raises(ConfigError) as raised:
        parse_settings({"schema": NOTES, "maxMessageBytes": 65536})
    message = str(raised.value)
    assert message.startswith("csv-ingest:schema does not fit csv-ingest:maxMessageBytes = 65536:"), message
    assert "encodes to up to 49208 bytes" in message and "raise maxMessageBytes" in message, message
    assert parse_settings({"schema": NOTES}).schema.name == "notes", "a 1 MiB queue has room for it"


# --- csv-ingest:uploadsSuffixes, csv-ingest:maxDecompressedBytes ----------------------------------


def test_uploads_suffixes_default_to_csv_tsv_and_their_gzip_forms():
    assert parse_settings({}).uploads_suffixes == (".csv", ".csv.gz", ".tsv", ".tsv.gz")
    assert _stack_config("dev").uploads_suffixes == _stack_config("prod").uploads_suffixes


def test_uploads_suffixes_read_a_yaml_list_and_the_json_the_pulumi_cli_hands_over():
    assert parse_settings({"uploadsSuffixes": [".csv"]}).uploads_suffixes == (".csv",)
    assert load_config({"uploadsSuffixes": '[".CSV", ".txt.gz"]'}.get).uploads_suffixes == (".CSV", ".txt.gz")


@pytest.mark.parametrize(
    ("suffixes", "message"),
    [
        ([], "csv-ingest:uploadsSuffixes has 0 entries; allowed: list of at least 1 distinct key suffixes"),
        ([".csv", ""], "csv-ingest:uploadsSuffixes entry '' is not allowed"),
        # S3 takes a filter value of at most 1,024 characters.
        ([".csv", "x" * 1025], "csv-ingest:uploadsSuffixes entry 'xxxx"),
        # S3 matches a filter as written, and takes no wildcard and no unencoded space.
        ([".c*v"], "csv-ingest:uploadsSuffixes entry '.c*v' is not allowed"),
        ([".c sv"], "csv-ingest:uploadsSuffixes entry '.c sv' is not allowed"),
        ([".csv", ".csv"], "csv-ingest:uploadsSuffixes lists '.csv' more than once"),
        ('".csv"', "csv-ingest:uploadsSuffixes = '\".csv\"' is not a list of text"),
    ],
)
def test_an_invalid_uploads_suffix_is_refused_naming_the_setting(suffixes, message):
    with pytest.raises(ConfigError) as raised:
        parse_settings({"uploadsSuffixes": suffixes})
    assert message in str(raised.value)


def test_uploads_suffixes_must_fit_the_producers_environment():
    # Each suffix may be as long as S3's filter allows; all of them go to the producer in its 4 KB environment.
    fits = [f".{n}{'x' * 40}" for n in range(10)]
    assert parse_settings({"uploadsSuffixes": fits}).uploads_suffixes == tuple(fits)
    with pytest.raises(ConfigError) as raised:
        parse_settings({"uploadsSuffixes": [*fits, ".more" + "x" * 60]})
    assert str(raised.value) == (
        "csv-ingest:uploadsSuffixes takes 529 bytes as the producer receives them (a JSON list); at most 512: fewer"
        " or shorter suffixes"
    )


@pytest.mark.parametrize(
    ("suffixes", "longer", "shorter"),
    [([".gz", ".csv.gz"], ".csv.gz", ".gz"), ([".csv", "users.csv", ".tsv"], "users.csv", ".csv")],
)
def test_overlapping_uploads_suffixes_are_refused_naming_both(suffixes, longer, shorter):
    # S3 refuses two rules of one notification whose suffixes overlap for the same event types: a key
    # ending in the longer one ends in the shorter one too.
    with pytest.raises(ConfigError) as raised:
        parse_settings({"uploadsSuffixes": suffixes})
    message = str(raised.value)
    assert message.startswith("csv-ingest:uploadsSuffixes: "), message
    assert f"{longer!r} ends with {shorter!r}" in message, message


def test_the_old_single_uploads_suffix_setting_names_its_replacement():
    expected = 'csv-ingest:uploadsSuffix is now csv-ingest:uploadsSuffixes, a list (e.g. [".csv", ".csv.gz"])'
    for refuse in (
        lambda: parse_settings({"uploadsSuffix": ".csv"}),
        lambda: load_config({}.get, ["uploadsSuffix"]),
        lambda: run_program("dev", {"uploadsSuffix": ".csv"}),  # the stack file still setting it
    ):
        with pytest.raises(ConfigError) as raised:
            refuse()
        assert str(raised.value) == expected


def test_the_decompressed_size_limit_defaults_to_50_gib_within_its_range():
    assert parse_settings({}).max_decompressed_bytes == 50 * 1024**3
    assert parse_settings({"maxDecompressedBytes": 1024**2}).max_decompressed_bytes == 1024**2
    assert load_config({"maxDecompressedBytes": str(2 * 1024**4)}.get).max_decompressed_bytes == 2 * 1024**4
    for outside in (1024**2 - 1, 500 * 1024**4 + 1):
        with pytest.raises(ConfigError, match=f"csv-ingest:maxDecompressedBytes = {outside} is out of range"):
            parse_settings({"maxDecompressedBytes": outside})
