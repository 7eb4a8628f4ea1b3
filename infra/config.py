"""The stack's configuration: every setting declared once, read once, validated, typed.

Each `Setting` names its key in `Pulumi.<stack>.yaml` (namespace `csv-ingest:`), its default, the
values it allows and what it does. `load_config` reads them into one frozen `PipelineConfig`;
components receive its values and never touch `pulumi.Config`. The README's configuration table is
rendered from the same declarations (`render_reference_table`), and a test keeps the two in sync.

One setting is structured: `schema`, the stack's columns, types and key (`handlers.common.schema`),
checked by the same `parse_schema` the functions read it back with; its types table in the README is
rendered from the types' declarations (`render_types_table`).
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.common.schema import DEFAULT_SCHEMA, Schema, SchemaError, parse_schema, render_types_table
from handlers.producer.packing import row_budget_problem
from handlers.producer.sources import DEFAULT_MAX_DECOMPRESSED_BYTES

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
RUNTIMES = ("python3.11", "python3.12", "python3.13")
ARCHITECTURES = ("arm64", "x86_64")
AUTH_MODES = ("apiKey", "iam", "none")
BILLING_MODES = ("PAY_PER_REQUEST", "PROVISIONED")


class ConfigError(ValueError):
    """A stack setting is missing, malformed or out of range; the message names the key."""


@dataclass(frozen=True)
class Items:
    """What every entry of a list setting must be: a pattern, how the docs name it, and how many."""

    pattern: str
    described: str
    min_count: int = 0


@dataclass(frozen=True)
class Setting:
    """One key of `Pulumi.<stack>.yaml`: its type, default, allowed values and meaning."""

    key: str
    kind: type
    default: Any
    doc: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[Any, ...] | None = None
    items: Items | None = None
    """For a list setting (`kind` tuple): what its entries must be."""

    def allowed(self) -> str:
        """The allowed values, as the README and error messages state them."""
        if self.items is not None:
            least = f"at least {self.items.min_count} " if self.items.min_count else ""
            return f"list of {least}distinct {self.items.described}"
        if self.kind is Schema:
            return "a mapping of `name`, `key` and `columns` (see [Schema](#schema))"
        if self.choices is not None:
            return ", ".join(str(c) for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum}–{self.maximum}"
        if self.minimum is not None:
            return f"≥ {self.minimum}"
        return {bool: "true, false", str: "text"}.get(self.kind, self.kind.__name__)

    def parse(self, raw: Any) -> Any:
        """Convert a raw config value (YAML or CLI string) to this setting's type and check it."""
        value = _coerce(self.key, self.kind, raw)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"csv-ingest:{self.key} = {raw!r} is not allowed; use one of: {self.allowed()}")
        if self.kind is int and (
            (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum)
        ):
            raise ConfigError(f"csv-ingest:{self.key} = {value} is out of range; allowed: {self.allowed()}")
        if self.items is not None:
            self._check_items(value)
        return value

    def _check_items(self, values: tuple[str, ...]) -> None:
        assert self.items is not None
        for value in values:
            if not re.fullmatch(self.items.pattern, value):
                raise ConfigError(f"csv-ingest:{self.key} entry {value!r} is not allowed; allowed: {self.allowed()}")
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ConfigError(f"csv-ingest:{self.key} lists {repeated[0]!r} more than once; allowed: {self.allowed()}")
        if len(values) < self.items.min_count:
            raise ConfigError(f"csv-ingest:{self.key} has {len(values)} entries; allowed: {self.allowed()}")

    def render_default(self) -> str:
        """The default as the README shows it."""
        if self.kind is bool:
            return str(self.default).lower()
        if self.kind is tuple:
            return json.dumps(list(self.default))
        if self.kind is Schema:
            columns = ", ".join(column.name for column in self.default.columns)
            return f"{self.default.name}: {columns}; key {self.default.key}"
        return str(self.default) if self.default != "" else "(empty)"


def _coerce(key: str, kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise ConfigError(f"csv-ingest:{key} = {raw!r} is not a boolean; use true or false")
    if kind is int:
        if isinstance(raw, bool):
            raise ConfigError(f"csv-ingest:{key} = {raw!r} is not a whole number")
        try:
            return int(str(raw).strip(), 10)
        except ValueError:
            raise ConfigError(f"csv-ingest:{key} = {raw!r} is not a whole number") from None
    if kind is tuple:
        # A YAML list arrives as a list; the Pulumi CLI hands a structured value to the program as JSON.
        values = raw
        if isinstance(raw, str):
            try:
                values = json.loads(raw)
            except ValueError:
                values = None
        if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"csv-ingest:{key} = {raw!r} is not a list of text; use a YAML list or a JSON array")
        return tuple(v.strip() for v in values)
    if kind is Schema:
        # A YAML mapping arrives as a mapping; the Pulumi CLI hands it to the program as JSON text
        # (https://github.com/pulumi/pulumi/pull/3342): `parse_schema` takes either. Its errors start
        # with the path of the mistake (`schema.columns[2].type`), under our namespace here.
        try:
            return parse_schema(raw, key)
        except SchemaError as mistake:
            raise ConfigError(f"csv-ingest:{mistake}") from None
    return str(raw).strip()


# An IAM role or user as `aws:PrincipalArn` names it: the role's own ARN (path included), never an
# assumed-role session's `arn:aws:sts::…` ARN, and no wildcard.
IAM_PRINCIPAL_ARN = Items(
    r"arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)/[A-Za-z0-9_+=,.@/-]+",
    "IAM role or user ARNs (arn:aws:iam::<account>:role/<name>)",
)

# A suffix as an S3 notification filter takes it literally: at most 1,024 characters
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_FilterRule.html), no wildcard, and nothing that
# must be URL-encoded in a filter, such as a space
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html): S3's safe
# characters for key names (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html) but `*`.
# What the suffixes may take of the producer's environment, as JSON (`_check_relations` says why).
MAX_SUFFIXES_JSON_BYTES = 512
UPLOAD_SUFFIX = Items(
    r"[A-Za-z0-9!_.'()-]{1,1024}",
    "key suffixes of 1–1024 letters, digits and ! _ . ' ( ) -",
    min_count=1,
)
DEFAULT_UPLOADS_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")

# Settings that were renamed: a stack file still setting the old key is told the new one.
RENAMED = {
    "uploadsSuffix": 'csv-ingest:uploadsSuffix is now csv-ingest:uploadsSuffixes, a list (e.g. [".csv", ".csv.gz"])',
}

S = Setting
SETTINGS: tuple[Setting, ...] = (
    S(
        "schema",
        Schema,
        DEFAULT_SCHEMA,
        "What an upload's rows are: the collection's name (API path, table), its key column, and its columns"
        " with their types. Changing `name` or `key` replaces the table.",
    ),
    S("runtime", str, "python3.13", "Python runtime of every function.", choices=RUNTIMES),
    S("architecture", str, "arm64", "Instruction set of every function.", choices=ARCHITECTURES),
    S("producerMemoryMb", int, 512, "Producer memory (MB).", 128, 10240),
    S("producerTimeoutSeconds", int, 300, "Producer timeout; a longer file continues in a new invocation.", 10, 900),
    S("workerMemoryMb", int, 256, "Worker memory (MB).", 128, 10240),
    S("workerTimeoutSeconds", int, 60, "Worker timeout; the queue's visibility timeout derives from it.", 1, 900),
    S("queryMemoryMb", int, 128, "Query API function memory (MB).", 128, 10240),
    S("queryTimeoutSeconds", int, 10, "Query API function timeout (API Gateway stops waiting at 29 s).", 1, 29),
    # 200: a full SendMessageBatch (10 messages) carries 2,000 rows, one send call per 2,000 rows
    # (BENCHMARKS.md, API calls); a chunk of 200 rows is ~16 KB, far under the message budget.
    S("rowsPerMessage", int, 200, "Valid rows packed into one SQS message (also capped by message size).", 1, 1000),
    S(
        "maxMessageBytes",
        int,
        1_048_576,
        "The queue's maximum message size, and the producer's byte budget for one SendMessageBatch call.",
        65_536,
        1_048_576,
    ),
    S("workerBatchSize", int, 10, "Messages per worker invocation; above 10 needs a batching window.", 1, 10000),
    S("workerBatchingWindowSeconds", int, 5, "Seconds the mapping may wait to fill a batch.", 0, 300),
    S("workerMaxConcurrency", int, 5, "Maximum concurrent worker invocations (mapping scaling config).", 2, 1000),
    S("maxReceiveCount", int, 5, "Deliveries of a message before it moves to the dead-letter queue.", 5, 1000),
    S(
        "queueRedrivePrincipals",
        tuple,
        (),
        "The roles operators peek at and redrive the DLQ with: besides the producer, the only principals that"
        " may send to the queue, and the only ones that may receive, delete or purge dead letters.",
        items=IAM_PRINCIPAL_ARN,
    ),
    # `pulumi up` changes the queues and the alarm topic (their attributes and policies) as the principal
    # running it, which the program exempts from the resources' own denies (infra/pipeline.py). Another
    # principal that deploys the stack later must be listed before it does: the policies in force decide
    # whether its update of them is allowed.
    S(
        "deployerPrincipals",
        tuple,
        (),
        "Principals besides the one running `pulumi up` that may change or delete the queues and the alarm"
        " topic (their policies included) and delete rejects reports: every other role that deploys this stack.",
        items=IAM_PRINCIPAL_ARN,
    ),
    S("tableBillingMode", str, "PAY_PER_REQUEST", "Billing mode of both tables.", choices=BILLING_MODES),
    S("tableReadCapacity", int, 5, "Read capacity units per table (PROVISIONED only).", 1, 40000),
    S("tableWriteCapacity", int, 5, "Write capacity units per table (PROVISIONED only).", 1, 40000),
    S("pointInTimeRecovery", bool, False, "Point-in-time recovery on both tables."),
    S("deletionProtection", bool, False, "Deletion protection on both tables."),
    S("retainOnDelete", bool, False, "Keep the bucket and tables in AWS when the stack deletes them."),
    S("forceDestroy", bool, False, "Let `pulumi destroy` empty and delete a non-empty upload bucket."),
    S("jobTtlDays", int, 0, "Days a job record is kept before DynamoDB TTL expires it (0: kept forever).", 0, 3650),
    S("logRetentionDays", int, 14, "Retention of function and API access logs.", choices=LOG_RETENTION_DAYS),
    S("uploadsPrefix", str, "uploads/", "Key prefix whose objects trigger the producer."),
    # One S3 notification rule per suffix (infra/producer.py): a rule takes one suffix filter.
    S(
        "uploadsSuffixes",
        tuple,
        DEFAULT_UPLOADS_SUFFIXES,
        "Key suffixes whose objects trigger the producer, each matched as written (`users.CSV` starts no job);"
        " no two may overlap (one ending with the other). A key ending `.gz` is gunzipped; one ending `.tsv` or"
        " `.tsv.gz` is tab-delimited (unless `schema.format.delimiter` fixes the delimiter).",
        items=UPLOAD_SUFFIX,
    ),
    # 1 MiB (one record) up to S3's largest object, 5 TiB; the default is S3's largest single PUT.
    S(
        "maxUploadBytes",
        int,
        5 * 1024**3,
        "Largest upload the producer ingests; a larger one fails its job before it is read.",
        1024**2,
        5 * 1024**4,
    ),
    # What this bounds is a gzip bomb and how long one file takes to read, not S3, which bounds only the
    # compressed object (maxUploadBytes, at most 5 TiB). Deflate expands up to 1032:1
    # (https://zlib.net/zlib_tech.html), so a bomb within maxUploadBytes inflates to a thousand times its
    # size, while text compresses about 2.5–3:1 (RFC 1951, 1.1: https://www.rfc-editor.org/rfc/rfc1951;
    # a users CSV of random names measured 1.9:1). The default lets a 5 GiB upload (maxUploadBytes'
    # default) expand tenfold. The maximum, a hundred times S3's largest object, only keeps out a
    # mistyped figure: at the producer's few thousand rows a second (BENCHMARKS.md) such a file would
    # take years to read.
    S(
        "maxDecompressedBytes",
        int,
        DEFAULT_MAX_DECOMPRESSED_BYTES,
        "Largest size a `.gz` upload may decompress to; a larger one fails its job (a gzip bomb stops at this size).",
        1024**2,
        100 * 5 * 1024**4,
    ),
    S("reportsPrefix", str, "reports/", "Key prefix of the rejects reports; must not overlap the uploads prefix."),
    S(
        "reportReaders",
        tuple,
        (),
        "The only principals that may read rejects reports (they hold rejected rows' cells); empty: nobody.",
        items=IAM_PRINCIPAL_ARN,
    ),
    S("noncurrentVersionDays", int, 30, "Days a replaced or deleted object version is kept.", 1, 3650),
    S("reportsExpirationDays", int, 90, "Days a rejects report is kept.", 1, 3650),
    S("uploadsExpirationDays", int, 30, "Days an upload stays current before it expires (then noncurrent).", 1, 3650),
    S("apiAuth", str, "apiKey", "API authentication: API key + usage plan, IAM (SigV4), or none.", choices=AUTH_MODES),
    S("allowPublicApi", bool, False, "Acknowledges that `apiAuth: none` serves the stored personal data to anyone."),
    S(
        "apiKeys",
        tuple,
        ("default",),
        "API consumers (`apiKey` mode): each gets its own key; replacing a name rotates that key.",
        items=Items(r"[A-Za-z0-9-]{1,64}", "consumer names ([A-Za-z0-9-]{1,64})", min_count=1),
    ),
    S("apiQuotaPerDay", int, 10000, "Requests per day each API key may make (`apiKey` mode).", 1, 10_000_000),
    S("apiThrottleRateLimit", int, 50, "Stage steady-state request rate (requests/s).", 1, 10000),
    S("apiThrottleBurstLimit", int, 100, "Stage burst capacity (requests).", 1, 5000),
    S("manageApiGatewayAccount", bool, True, "Set the region's API Gateway CloudWatch role (needed for access logs)."),
    S("alarmEmail", str, "", "Address subscribed to the alarm topic (empty: no subscription)."),
    S("queueAgeAlarmSeconds", int, 900, "Alarm when the oldest queued message is older than this.", 60, 1209600),
)
del S


@dataclass(frozen=True)
class FunctionSizing:
    """Memory and timeout of one function."""

    memory_mb: int
    timeout_seconds: int


@dataclass(frozen=True)
class PipelineConfig:
    """Every stack setting, validated. Field names are the snake_case of the config keys."""

    schema: Schema
    runtime: str
    architecture: str
    producer: FunctionSizing
    worker: FunctionSizing
    query: FunctionSizing
    rows_per_message: int
    max_message_bytes: int
    worker_batch_size: int
    worker_batching_window_seconds: int
    worker_max_concurrency: int
    max_receive_count: int
    queue_redrive_principals: tuple[str, ...]
    deployer_principals: tuple[str, ...]
    table_billing_mode: str
    table_read_capacity: int
    table_write_capacity: int
    point_in_time_recovery: bool
    deletion_protection: bool
    retain_on_delete: bool
    force_destroy: bool
    job_ttl_days: int
    log_retention_days: int
    uploads_prefix: str
    uploads_suffixes: tuple[str, ...]
    max_upload_bytes: int
    max_decompressed_bytes: int
    reports_prefix: str
    report_readers: tuple[str, ...]
    noncurrent_version_days: int
    reports_expiration_days: int
    uploads_expiration_days: int
    api_auth: str
    allow_public_api: bool
    api_keys: tuple[str, ...]
    api_quota_per_day: int
    api_throttle_rate_limit: int
    api_throttle_burst_limit: int
    manage_api_gateway_account: bool
    alarm_email: str
    queue_age_alarm_seconds: int

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        """A message stays invisible while the worker may still be working on it.

        AWS: at least six times the function timeout (so a throttled batch can be retried before
        the message reappears), plus the batching window the message may wait before its batch starts.
        """
        return 6 * self.worker.timeout_seconds + self.worker_batching_window_seconds


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def parse_settings(raw: Mapping[str, Any]) -> PipelineConfig:
    """Build the validated config from raw values keyed by setting key (missing keys take defaults)."""
    _refuse_unknown(raw)
    values = {_snake(s.key): s.parse(raw[s.key]) if raw.get(s.key) is not None else s.default for s in SETTINGS}
    sizing = {
        fn: FunctionSizing(values.pop(f"{fn}_memory_mb"), values.pop(f"{fn}_timeout_seconds"))
        for fn in ("producer", "worker", "query")
    }
    config = PipelineConfig(**sizing, **values)
    _check_relations(config)
    return config


def _check_relations(config: PipelineConfig) -> None:
    """Rules between settings, which no single range can state."""
    # The producer packs rows into chunks a tenth of maxMessageBytes (one SendMessageBatch call takes ten):
    # a schema whose largest valid row cannot fit one would stop every upload, so the plan stops instead.
    problem = row_budget_problem(config.schema, config.max_message_bytes)
    if problem is not None:
        raise ConfigError(
            f"csv-ingest:schema does not fit csv-ingest:maxMessageBytes = {config.max_message_bytes}: {problem}"
        )
    if config.worker_batch_size > 10 and config.worker_batching_window_seconds < 1:
        raise ConfigError(
            f"csv-ingest:workerBatchSize = {config.worker_batch_size} needs csv-ingest:workerBatchingWindowSeconds"
            " of at least 1: Lambda allows batches above 10 only with a batching window"
        )
    for key, prefix in (("uploadsPrefix", config.uploads_prefix), ("reportsPrefix", config.reports_prefix)):
        if not prefix.endswith("/") or prefix.startswith("/") or prefix == "/":
            raise ConfigError(f"csv-ingest:{key} = {prefix!r} must be a folder such as 'uploads/' (ending in '/')")
    if config.reports_prefix.startswith(config.uploads_prefix) or config.uploads_prefix.startswith(
        config.reports_prefix
    ):
        raise ConfigError(
            f"csv-ingest:reportsPrefix = {config.reports_prefix!r} overlaps csv-ingest:uploadsPrefix ="
            f" {config.uploads_prefix!r}: a report would trigger the producer"
        )
    if overlap := _overlapping_suffix(config.uploads_suffixes):
        longer, shorter = overlap
        # S3 refuses a notification whose rules for the same event types have overlapping prefixes and
        # overlapping suffixes (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html;
        # "Configuration is ambiguously defined", https://repost.aws/knowledge-center/lambda-s3-event-configuration-error):
        # the producer's rules share their prefix, so no suffix may end with another.
        raise ConfigError(
            f"csv-ingest:uploadsSuffixes: {longer!r} ends with {shorter!r}, so a key ending in the one ends in the"
            " other; S3 refuses notification rules whose suffixes overlap: list only one of them"
        )
    if (size := len(json.dumps(list(config.uploads_suffixes)))) > MAX_SUFFIXES_JSON_BYTES:
        # The producer receives them in its environment, which Lambda caps at 4 KB in all
        # (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), half of it the schema's.
        raise ConfigError(
            f"csv-ingest:uploadsSuffixes takes {size} bytes as the producer receives them (a JSON list); at most"
            f" {MAX_SUFFIXES_JSON_BYTES}: fewer or shorter suffixes"
        )
    if config.api_auth == "none" and not config.allow_public_api:
        raise ConfigError(
            "csv-ingest:apiAuth = 'none' needs csv-ingest:allowPublicApi = true: without authentication anyone"
            " with the URL reads every stored name, email and phone (use apiKey or iam)"
        )
    if config.alarm_email and ("@" not in config.alarm_email or " " in config.alarm_email):
        raise ConfigError(f"csv-ingest:alarmEmail = {config.alarm_email!r} is not an email address")


def _overlapping_suffix(suffixes: tuple[str, ...]) -> tuple[str, str] | None:
    """The first (longer, shorter) pair of suffixes where the longer ends with the shorter, if any."""
    for longer in suffixes:
        for shorter in suffixes:
            if longer != shorter and longer.endswith(shorter):
                return longer, shorter
    return None


def load_config(get: Callable[[str], Any], keys: Iterable[str] = ()) -> PipelineConfig:
    """Read every setting through `get` (e.g. `pulumi.Config("csv-ingest").get`) and validate it.

    `keys` are the keys the stack sets under `csv-ingest:` (Pulumi reads a key only when asked for
    it, so a misspelled one would otherwise go unread): one the program does not know stops it."""
    _refuse_unknown(keys)
    raw = {s.key: get(s.key) for s in SETTINGS}
    return parse_settings({key: value for key, value in raw.items() if value is not None})


def _refuse_unknown(keys: Iterable[str]) -> None:
    """A ConfigError naming each key no setting declares, with the known key closest to it."""
    known = {s.key.lower(): s.key for s in SETTINGS}
    renamed = sorted(set(keys) & RENAMED.keys())
    if renamed:
        raise ConfigError(RENAMED[renamed[0]])
    unknown = sorted(set(keys) - set(known.values()))
    if not unknown:
        return
    named = []
    for key in unknown:
        # Case is ignored (`WorkerMaxConcurrency` meant ours). Below difflib's usual cutoff (0.6, that of
        # get_close_matches) a key is like none of ours: the closest is named without presuming it was meant.
        ratio, closest = max(
            (difflib.SequenceMatcher(None, key.lower(), lower).ratio(), proper) for lower, proper in known.items()
        )
        if ratio >= 0.6:
            named.append(f"csv-ingest:{key}: did you mean csv-ingest:{closest}?")
        else:
            named.append(f"csv-ingest:{key} (the closest known one is csv-ingest:{closest})")
    what = "unknown setting" if len(named) == 1 else "unknown settings"
    raise ConfigError(f"{what} {'; '.join(named)} (every setting is listed in README.md, Configuration)")


def render_reference_table() -> str:
    """The README's configuration reference, rendered from `SETTINGS`."""
    rows = ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        rows.append(f"| `{s.key}` | `{s.render_default()}` | {s.allowed()} | {s.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m infra.config [--types]: the README's configuration (or types) table
    print(render_types_table() if "--types" in sys.argv[1:] else render_reference_table())
