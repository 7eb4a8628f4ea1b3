"""Configuration: both stacks build, their differences hold, every invalid value is refused by name."""

from pathlib import Path

import pytest

from infra.config import ConfigError, load_config, parse_settings, render_reference_table
from local.mocks import run_program, stack_settings

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
