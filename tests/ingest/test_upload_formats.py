"""`ingest upload` and the files people have: the stack's suffixes, `--gzip` (compressed on the way
up, streamed), and `--check` saying how a file is read (gzip, encoding, delimiter) before anything
goes up, against the stack's limits on what goes up. The pieces without a stack run in this process;
uploads run against a local stack, each command in its own process, but for a file changing while it
goes up, whose reads a test hooks: put into moto in this process."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import random
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from handlers.common.jobs import job_id_for
from handlers.common.schema import DEFAULT_SCHEMA_DECLARATION
from infra.config import DEFAULT_UPLOADS_SUFFIXES
from ingest.commands.upload import MULTIPART_THRESHOLD, FileChanged, SteadyFile, put, upload_name
from ingest.file_check import EXIT_FAILS, EXIT_VALID
from ingest.gzip_stream import GZIP_READ_BYTES, GzipReader
from ingest.targets import Target, TargetError
from tests.ingest.conftest import local_command, run_ingest
from tests.local.support import LocalStackProcess

pytestmark = pytest.mark.long(seconds=60)

# An Excel "CSV UTF-8" export from a European locale: a byte order mark, CRLF, semicolons, and a
# header spelled as people spell it.
EXCEL_ROWS = ["Full Name;E-mail;Phone Number", "José Müller;jose@excel.example.com;+49 151 1234567"]
EXCEL_BYTES = ("\ufeff" + "".join(row + "\r\n" for row in EXCEL_ROWS)).encode("utf-8")


def target(outputs: dict[str, Any]) -> Target:
    """A deployed stack of these outputs: `upload_name` reads its suffixes and label only."""
    return Target("stack dev", outputs, "eu-west-1", False, "dev", boto3.Session(region_name="eu-west-1"))


STACK = target({"uploadsPrefix": "uploads/", "uploadsSuffixes": list(DEFAULT_UPLOADS_SUFFIXES)})


def refusal(stack: Target, path: str, key: str | None = None, *, gzip: bool = False) -> str:
    with pytest.raises(TargetError) as refused:
        upload_name(stack, Path(path), key, gzip=gzip)
    return str(refused.value)


def suggested_key(message: str) -> str:
    """The `--key NAME` a refusal suggests, as a shell reads it when the user copies it."""
    return shlex.split(message.rpartition("--key ")[2].removesuffix(")"))[0]


# --- the stack's suffixes --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["users.csv", "users.csv.gz", "export.tsv", "2024/export.tsv.gz"])
def test_a_name_ending_in_any_of_the_stacks_suffixes_goes_up_as_it_is(name: str) -> None:
    assert upload_name(STACK, Path("ignored.csv"), name) == name


def test_a_name_ending_in_none_of_the_stacks_suffixes_is_refused_listing_them() -> None:
    message = refusal(STACK, "people.txt")

    assert message == (
        "people.txt does not end in .csv, .csv.gz, .tsv or .tsv.gz: stack dev ingests only keys ending in"
        " .csv, .csv.gz, .tsv or .tsv.gz (rename the file, or upload it as --key people.csv)"
    )


@pytest.mark.parametrize("name", ["my people.txt", "export", "it's.CSV", "2024/a.b.txt"])
def test_the_key_a_refusal_suggests_is_taken_when_copied(name: str) -> None:
    key = suggested_key(refusal(STACK, "ignored.csv", name))

    assert upload_name(STACK, Path("ignored.csv"), key) == key


def test_a_stack_without_the_list_is_read_by_its_single_suffix_or_else_the_programs_default() -> None:
    older = target({"uploadsPrefix": "uploads/", "uploadsSuffix": ".csv"})
    oldest = target({"uploadsPrefix": "uploads/"})

    assert "stack dev ingests only keys ending in .csv (rename" in refusal(older, "export.tsv")
    assert upload_name(oldest, Path("export.tsv"), None) == "export.tsv"


# --- --gzip ------------------------------------------------------------------------------------------


def test_gzip_puts_gz_after_the_files_name() -> None:
    assert upload_name(STACK, Path("/data/people.csv"), None, gzip=True) == "people.csv.gz"


def test_gzip_under_a_key_that_is_no_gzip_suffix_of_the_stack_is_refused_with_one_that_is() -> None:
    message = refusal(STACK, "people.csv", "2024/people.csv", gzip=True)

    assert message.startswith(
        "2024/people.csv does not end in .csv.gz or .tsv.gz: stack dev ingests gzip files only under keys ending in"
    )
    assert suggested_key(message) == "2024/people.csv.gz"


def test_gzip_to_a_stack_that_takes_no_gzip_file_names_the_setting() -> None:
    plain = target({"uploadsPrefix": "uploads/", "uploadsSuffixes": [".csv"]})

    message = refusal(plain, "people.csv", gzip=True)

    assert message.startswith("--gzip: stack dev ingests no gzip files")
    assert "add .csv.gz to csv-ingest:uploadsSuffixes" in message


@pytest.mark.parametrize("check", [(), ("--check",)], ids=["upload", "check"])
def test_gzip_of_a_file_that_is_gzip_already_is_refused_before_anything_else(
    tmp_path: Path, check: tuple[str, ...]
) -> None:
    path = tmp_path / "people.csv.gz"
    path.write_bytes(gzip.compress(EXCEL_BYTES))

    result = run_ingest("upload", *check, str(path), "--gzip", "--stack", "dev")

    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}: is gzip already (it starts with gzip's bytes 1f 8b)")
    assert "without --gzip" in result.stderr


def test_the_compressing_reader_fills_every_read_and_holds_one_read_and_one_block_at_most() -> None:
    # Incompressible bytes: the compressed stream is as large as the file, three reads of it.
    data = random.Random(22).randbytes(3 * MULTIPART_THRESHOLD)
    reader = GzipReader(io.BytesIO(data))

    reads = []
    while part := reader.read(MULTIPART_THRESHOLD):
        reads.append(part)

    assert [len(part) for part in reads[:-1]] == [MULTIPART_THRESHOLD] * (len(reads) - 1)
    assert len(reads) == 4  # deflate adds a little to incompressible data
    assert reader.most_held <= MULTIPART_THRESHOLD + GZIP_READ_BYTES + 1024
    assert gzip.decompress(b"".join(reads)) == data


# --- --check: how a file is read ---------------------------------------------------------------------


def check(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_ingest("upload", "--check", str(path), *args)


def read_as(stdout: str) -> dict[str, str]:
    """The "Read as:" table of a check, as {aspect: how}."""
    lines = stdout.splitlines()
    start = lines.index("Read as:") + 3  # its header and rule
    rows = lines[start : lines.index("", start)]
    return {row.split(maxsplit=1)[0]: row.split(maxsplit=1)[1].strip() for row in rows}


def test_check_of_an_excel_semicolon_export_says_its_delimiter_was_detected(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(EXCEL_BYTES)

    result = check(path)
    as_json = json.loads(check(path, "--json").stdout)

    assert result.returncode == EXIT_VALID, result.stdout + result.stderr
    assert read_as(result.stdout) == {
        "gzip": "no",
        "encoding": "utf-8 (the default; csv-ingest:schema.format.encoding sets another)",
        "delimiter": "semicolon (detected from the header line)",
    }
    mapping = [line.split() for line in result.stdout.splitlines() if "←" in line]
    assert mapping == [
        ["name", "text", "←", "Full", "Name", "(1)"],
        ["mail", "email", "←", "E-mail", "(2)"],
        ["phone", "phone", "←", "Phone", "Number", "(3)"],
    ]
    assert as_json["format"] == {
        "gzip": False,
        "encoding": "utf-8",
        "delimiter": "semicolon",
        "delimiterFrom": "detected",
    }
    for cell in ("José", "Müller", "jose@", "1234567"):
        assert cell not in result.stdout + json.dumps(as_json), cell


def test_check_of_a_tsv_file_reads_it_as_tab_by_its_name(tmp_path: Path) -> None:
    path = tmp_path / "export.tsv"
    path.write_text("name\tmail\tphone\nAnn Tab\tann@tab.example.com\t+441234567890\n", encoding="utf-8")

    result = check(path)

    assert result.returncode == EXIT_VALID, result.stdout + result.stderr
    assert read_as(result.stdout)["delimiter"] == "tab (the name ends in .tsv)"
    assert "Rows: 1 read, 1 valid, 0 rejected, 0 blank lines" in result.stdout


def test_check_of_a_tab_file_named_csv_detects_tab(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("name\tmail\tphone\nAnn Tab\tann@tab.example.com\t+441234567890\n", encoding="utf-8")

    result = check(path, "--json")

    assert result.returncode == EXIT_VALID, result.stdout + result.stderr
    assert json.loads(result.stdout)["format"]["delimiter"] == "tab"
    assert json.loads(result.stdout)["format"]["delimiterFrom"] == "detected"


def test_check_against_a_cp1252_stack_reads_the_file_in_cp1252(tmp_path: Path) -> None:
    schema = {**DEFAULT_SCHEMA_DECLARATION, "format": {"encoding": "cp1252", "delimiter": "semicolon"}}
    config_file = tmp_path / "Pulumi.windows.yaml"
    config_file.write_text(yaml.safe_dump({"config": {"csv-ingest:schema": schema}}), encoding="utf-8")
    path = tmp_path / "windows.csv"
    path.write_bytes(
        "name;mail\r\nRené Dupont;rene@windows.example.com\r\n€uro Fan;euro@windows.example.com\r\n".encode("cp1252")
    )

    result = check(path, "--config-file", str(config_file))

    assert result.returncode == EXIT_VALID, result.stdout + result.stderr
    assert read_as(result.stdout) == {
        "gzip": "no",
        "encoding": "cp1252 (set by csv-ingest:schema.format.encoding)",
        "delimiter": "semicolon (fixed by csv-ingest:schema.format.delimiter)",
    }
    assert "Rows: 2 read, 2 valid, 0 rejected, 0 blank lines" in result.stdout
    assert "René" not in result.stdout and "€" not in result.stdout


def test_check_of_a_gz_file_reads_it_compressed_and_with_gzip_checks_the_file_compressed(tmp_path: Path) -> None:
    compressed = tmp_path / "excel.csv.gz"
    compressed.write_bytes(gzip.compress(EXCEL_BYTES))
    plain = tmp_path / "excel.csv"
    plain.write_bytes(EXCEL_BYTES)

    of_gz = check(compressed)
    with_gzip = check(plain, "--gzip")

    assert of_gz.returncode == with_gzip.returncode == EXIT_VALID, of_gz.stdout + with_gzip.stdout
    assert read_as(of_gz.stdout)["gzip"] == "yes (the name ends in .gz)"
    assert read_as(with_gzip.stdout)["gzip"] == "yes (the name ends in .gz)"  # excel.csv.gz, as it goes up
    assert "Rows: 1 read, 1 valid" in of_gz.stdout and "Rows: 1 read, 1 valid" in with_gzip.stdout


# --- --check: the limits of what goes up -------------------------------------------------------------

MIB = 1024 * 1024


def limits_file(tmp_path: Path, **settings: int) -> Path:
    """A stack file setting these of the stack's settings (`maxUploadBytes=…`), the rest their defaults."""
    path = tmp_path / "Pulumi.limits.yaml"
    path.write_text(yaml.safe_dump({"config": {f"csv-ingest:{k}": v for k, v in settings.items()}}), encoding="utf-8")
    return path


def compressible_csv(path: Path, size: int) -> Path:
    """A valid users file of at least `size` bytes whose rows repeat a pattern: gzip makes it a fifth as large."""
    lines, written = ["name,mail,phone\n"], 16
    while written < size:
        n = len(lines)
        lines.append(f"Person {n},person{n}@limits.example.com,+4420{n:07d}\n")
        written += len(lines[-1])
    path.write_text("".join(lines), encoding="ascii")
    return path


def gzipped_size(path: Path) -> int:
    """The size of what `upload --gzip` sends of the file: `GzipReader`'s output."""
    with path.open("rb") as file:
        return len(GzipReader(file).read())


def failure(result: subprocess.CompletedProcess[str]) -> str | None:
    return json.loads(result.stdout)["failure"]


def test_check_with_gzip_holds_the_compressed_size_to_max_upload_bytes(tmp_path: Path) -> None:
    # GIVEN a file over the stack's maxUploadBytes whose gzip is well under it
    config = limits_file(tmp_path, maxUploadBytes=MIB)
    path = compressible_csv(tmp_path / "people.csv", 3 * MIB)
    assert gzipped_size(path) < MIB

    plain = check(path, "--config-file", str(config), "--json")
    gzipped = check(path, "--gzip", "--config-file", str(config), "--json")

    # THEN the file as it is would be refused, and the object --gzip uploads is not
    assert (plain.returncode, failure(plain)) == (
        EXIT_FAILS,
        f"file too large: {path.stat().st_size} bytes; this stack ingests files of at most {MIB} bytes"
        " (maxUploadBytes)",
    )
    assert (gzipped.returncode, failure(gzipped)) == (EXIT_VALID, None), gzipped.stdout + gzipped.stderr
    assert json.loads(gzipped.stdout)["format"]["gzip"] is True


def test_check_with_gzip_refuses_an_object_over_max_upload_bytes_by_its_compressed_size(tmp_path: Path) -> None:
    # Random hex gzips to about half: 3 MiB of it is still over 1 MiB compressed.
    config = limits_file(tmp_path, maxUploadBytes=MIB)
    path = tmp_path / "noise.csv"
    noise = random.Random(22)
    path.write_text("name,mail\n" + "".join(f"{noise.randbytes(40).hex()},n@x.example.com\n" for _ in range(33_000)))

    result = check(path, "--gzip", "--config-file", str(config), "--json")

    assert result.returncode == EXIT_FAILS, result.stdout + result.stderr
    assert failure(result) == (
        f"file too large: {gzipped_size(path)} bytes; this stack ingests files of at most {MIB} bytes (maxUploadBytes)"
    )


def test_check_with_gzip_holds_the_files_own_size_to_max_decompressed_bytes(tmp_path: Path) -> None:
    config = limits_file(tmp_path, maxDecompressedBytes=MIB)
    path = compressible_csv(tmp_path / "people.csv", 2 * MIB)

    plain = check(path, "--config-file", str(config), "--json")
    gzipped = check(path, "--gzip", "--config-file", str(config), "--json")

    assert plain.returncode == EXIT_VALID, plain.stdout + plain.stderr  # a plain upload is not decompressed
    assert (gzipped.returncode, failure(gzipped)) == (
        EXIT_FAILS,
        f"the file decompresses to more than {MIB} bytes (csv-ingest:maxDecompressedBytes); raise it, or split"
        " the file",
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("maxUploadBytes", "file too large: {compressed} bytes; this stack ingests files of at most {limit} bytes"),
        ("maxDecompressedBytes", "the file decompresses to more than {limit} bytes (csv-ingest:maxDecompressedBytes)"),
    ],
)
def test_check_of_a_gz_file_holds_it_to_both_limits(tmp_path: Path, setting: str, expected: str) -> None:
    # Noise that gzip leaves at over half: over 1 MiB compressed, 3 MiB decompressed.
    noise = random.Random(5)
    text = "name,mail\n" + "".join(f"{noise.randbytes(40).hex()},n@x.example.com\n" for _ in range(33_000))
    path = tmp_path / "noise.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    config = limits_file(tmp_path, **{setting: MIB})

    result = check(path, "--config-file", str(config), "--json")

    assert result.returncode == EXIT_FAILS, result.stdout + result.stderr
    assert failure(result).startswith(expected.format(compressed=path.stat().st_size, limit=MIB))


# --- uploads to a local stack ------------------------------------------------------------------------


def test_a_file_gzipped_on_the_way_up_is_ingested_under_its_gz_key(stack: LocalStackProcess, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    rows = [f"Gzip Person {n};gzip{n}@gzip.example.com;+4420{n:07d}" for n in range(25)]
    path.write_bytes(("Full Name;E-mail;Phone Number\r\n" + "".join(row + "\r\n" for row in rows)).encode())

    result = local_command(stack, "upload", str(path), "--gzip", "--wait", "--json")

    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["status"], job["rowsWritten"]) == ("COMPLETE", 25)
    s3, bucket, key = stack.client("s3"), stack.outputs["bucketName"], f"{stack.outputs['uploadsPrefix']}people.csv.gz"
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert gzip.decompress(stored["Body"].read()) == path.read_bytes()
    assert job["jobId"] == job_id_for(bucket, key, stored["VersionId"])


def test_a_large_gzipped_upload_goes_up_in_parts_and_its_job_is_the_versions_it_made(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    # Random hex compresses to about half: 40 MiB of it is three parts once gzipped. Without a mail
    # column, its job fails at the header, at once: which the producer can only say having gunzipped it.
    path = tmp_path / "large.csv"
    noise = random.Random(7)
    with path.open("w", encoding="ascii") as file:
        file.write("name,phone\n")
        for _ in range(40 * 1024 // 8):
            file.write("".join(f"{noise.randbytes(30).hex()},+441234567890\n" for _ in range(8 * 1024 // 75)))

    result = local_command(stack, "upload", str(path), "--gzip", "--wait", "--json")

    assert result.returncode == 1, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "FAILED" and job["error"].startswith("incomplete header: missing mail column(s)")
    s3, bucket, key = stack.client("s3"), stack.outputs["bucketName"], f"{stack.outputs['uploadsPrefix']}large.csv.gz"
    assert s3.head_object(Bucket=bucket, Key=key, PartNumber=1)["PartsCount"] >= 2
    assert job["jobId"] == job_id_for(bucket, key, s3.head_object(Bucket=bucket, Key=key)["VersionId"])


# --- a file that changes while it goes up ------------------------------------------------------------

REGION = "eu-west-1"
BUCKET = "csv-ingest-test-uploads"
LATE_ROW = b"Late Person,late@late.example.com,+442000000000\n"
# Plain and gzipped, by one request and in parts: a noisy file of twice `MULTIPART_THRESHOLD` and
# more gzips to over it.
UPLOADS = {
    "plain": (False, 3 * MIB),
    "plain in parts": (False, MULTIPART_THRESHOLD + 2 * MIB),
    "gzip": (True, 3 * MIB),
    "gzip in parts": (True, 2 * MULTIPART_THRESHOLD + 4 * MIB),
}


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """A stack of one versioned uploads bucket, in moto."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield Target(
            "stack moto",
            {"bucketName": BUCKET, "uploadsPrefix": "uploads/"},
            REGION,
            False,
            "moto",
            boto3.Session(region_name=REGION),
        )


def noisy_csv(path: Path, size: int) -> Path:
    """A users file of `size` bytes, random enough that gzip leaves over half of it."""
    noise = random.Random(size)
    header, row = "name,mail,phone\n", 86  # a row: a name of 48 characters, a mail of 22, a phone of 13
    rows = (
        f"{base64.urlsafe_b64encode(noise.randbytes(36)).decode()},{noise.randbytes(4).hex()}@x.example.com,+44{n:010d}\n"
        for n in range(size // row)
    )
    text = (header + "".join(rows)).encode("ascii")[:size]
    path.write_bytes(text + b"\n" * (size - len(text)))
    return path


def appended_while_read(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """The file gains a row once its upload has read its first bytes (an export still being written)."""
    read_at = SteadyFile.read_at

    def reading(file: SteadyFile, size: int, offset: int) -> bytes:
        data = read_at(file, size, offset)
        if path.stat().st_size == file.size:
            with path.open("ab") as more:
                more.write(LATE_ROW)
        return data

    monkeypatch.setattr(SteadyFile, "read_at", reading)


def stored(target: Target) -> tuple[list[str], list[str]]:
    """The keys of every version in the bucket, and of every multipart upload not completed nor aborted."""
    s3 = target.client("s3")
    versions = s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return [v["Key"] for v in versions], [u["Key"] for u in uploads]


@pytest.mark.parametrize("kind", UPLOADS)
def test_a_file_appended_to_while_it_goes_up_is_not_uploaded(
    bucket: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    gz, size = UPLOADS[kind]
    path = noisy_csv(tmp_path / "people.csv", size)
    appended_while_read(monkeypatch, path)

    with pytest.raises(FileChanged) as changed:
        put(bucket, path, "uploads/people.csv" + (".gz" if gz else ""), progress=False, gzip=gz)

    assert str(changed.value) == (
        f"{path} changed while it was being uploaded (its size went from {size} to {size + len(LATE_ROW)} bytes);"
        " nothing was uploaded: upload it again once it is complete"
    )
    assert stored(bucket) == ([], [])


@pytest.mark.parametrize("kind", UPLOADS)
def test_a_file_that_stays_as_it_is_goes_up_whole(bucket: Target, tmp_path: Path, kind: str) -> None:
    gz, size = UPLOADS[kind]
    path = noisy_csv(tmp_path / "people.csv", size)
    key = "uploads/people.csv" + (".gz" if gz else "")

    uploaded = put(bucket, path, key, progress=False, gzip=gz)

    body = bucket.client("s3").get_object(Bucket=BUCKET, Key=key, VersionId=uploaded.version_id)["Body"].read()
    assert (gzip.decompress(body) if gz else body) == path.read_bytes()
    assert (uploaded.parts > 1) == kind.endswith("in parts")


def test_a_file_rewritten_in_place_at_its_size_is_refused_by_its_modification_time(tmp_path: Path) -> None:
    path = noisy_csv(tmp_path / "people.csv", 64 * 1024)
    with SteadyFile(path) as file:
        first = file.read(1024)
        path.write_bytes(path.read_bytes().upper())  # the same size, other bytes
        os.utime(path, ns=(file.mtime_ns + 1_000_000, file.mtime_ns + 1_000_000))

        with pytest.raises(FileChanged, match=r"people\.csv changed .* \(its modification time changed\)"):
            file.read()

    assert first


def test_a_file_cut_short_while_it_goes_up_is_refused_before_its_end(tmp_path: Path) -> None:
    path = noisy_csv(tmp_path / "people.csv", 64 * 1024)
    with SteadyFile(path) as file:
        file.read(1024)
        os.truncate(path, 2048)

        with pytest.raises(FileChanged, match=r"\(its size went from 65536 to 2048 bytes\)"):
            file.read()
