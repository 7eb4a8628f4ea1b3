"""`ingest upload`: put a CSV file under the stack's uploads prefix, and optionally follow its job.

    python -m ingest upload FILE [--gzip] [--key NAME] [--wait] [--timeout S] [--json] [--local | --stack NAME]
    python -m ingest upload --check FILE [--json] [--stack NAME | --config-file PATH]

The upload is what starts a job: S3 announces the new object version to the producer. Its job id
is known the moment the upload returns, because it is a hash of bucket, key and version id
(`handlers.common.jobs.job_id_for`, README "How a file is ingested"), so the command needs the
version id S3 gave this upload, never "the latest version of the key" (another upload may follow).
Files of `MULTIPART_THRESHOLD` bytes and more go up in parts, in parallel, and the version id comes
from completing the multipart upload.

`--gzip` compresses the file on the way up, as it is read (`ingest.gzip_stream.GzipReader`): neither
the file nor its compressed form is ever held whole, in memory or on disk. The key gains `.gz`, one
of the stack's `uploadsSuffixes`, which the producer reads through gzip.

A file that changes while it goes up (still being written) is not uploaded: the read of its last
bytes fails before the request that would make the object ends (`SteadyFile`).

`--wait` polls `GET /jobs/{jobId}` until the job ends. Until the producer has created the job the
API answers 404: that is the job not having started yet, not an error.

`--check` uploads nothing: the file is read here by the producer's own code against the stack's
settings (`ingest.file_check`), to say what a job would write and reject, and why; with `--gzip`,
the file compressed, as it would go up.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import posixpath
import shlex
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from boto3.s3.transfer import TransferConfig
from rich.progress import (
    BarColumn,
    DownloadColumn,
    ProgressColumn,
    Task,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from handlers.common.jobs import COMPLETE, COMPLETE_WITH_REJECTS, FAILED, PARSING, job_id_for
from handlers.producer.dialect import GZIP_SUFFIX
from handlers.producer.sources import GZIP_MAGIC
from infra.config import DEFAULT_UPLOADS_SUFFIXES, ConfigError
from ingest.api import segment, unexpected
from ingest.file_check import EXIT_FAILS, EXIT_REJECTS, check_file, print_check
from ingest.gzip_stream import GzipReader
from ingest.interrupts import EXIT_INTERRUPTED, interruptible, raise_if_interrupted
from ingest.output import command, fail, guarded, print_json, progress, shown
from ingest.targets import Target, TargetError, add_target_options, resolve_target, stack_of
from local.project import stack_config

EXIT_FAILED = 1
EXIT_TIMEOUT = 3
DEFAULT_TIMEOUT_SECONDS = 900
# Polls start quick (a small file is done in well under a second) and slow down to one a second:
# on AWS each poll is a request to the API and an invocation of the query function.
FIRST_POLL_SECONDS, POLL_GROWTH, MAX_POLL_SECONDS = 0.1, 1.5, 1.0
ENDED = frozenset({COMPLETE, COMPLETE_WITH_REJECTS, FAILED})
# S3 takes a single PUT up to 5 GiB, but a large file goes faster, and survives a dropped connection
# better, in parts sent in parallel. Parts are at least this large and at most 10,000 (S3's limit).
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MIN_PART_BYTES = 16 * 1024 * 1024
MAX_PARTS = 10_000
PARALLEL_PARTS = 4
# The counts the human summary shows, when the job has them.
SUMMARY_COUNTS = (
    ("rows total", "rowsTotal"),
    ("valid", "rowsValid"),
    ("rejected", "rowsRejected"),
    ("written", "rowsWritten"),
    ("superseded", "rowsSuperseded"),
    ("blank lines", "blankLines"),
)
# The summary's keys that `--json` always carries (null when the job has not set them).
SUMMARY_KEYS = (
    "jobId",
    "status",
    "rowsTotal",
    "rowsValid",
    "rowsRejected",
    "rowsWritten",
    "rowsSuperseded",
    "blankLines",
    "rejectsReport",
    "durationSeconds",
)


class JobTimeout(Exception):
    """The job did not end within the timeout; `job` is how it stood last (None: never seen)."""

    def __init__(self, target: Target, job_id: str, timeout: float, job: dict[str, Any] | None) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.job = job
        status = shown(job.get("status")) if job else "not created yet"
        hint = follow(target, job_id)
        super().__init__(f"job {job_id} did not end within {timeout:g} s (status: {status}); follow it with `{hint}`")


def follow(target: Target, job_id: str) -> str:
    """The command that shows the job, as a line to paste: the stack the user chose included."""
    return f"{command('job', job_id)} {target.flags}"


@dataclass(frozen=True)
class Uploaded:
    bucket: str
    key: str
    version_id: str
    job_id: str
    parts: int
    """1 for a single PutObject."""


# --- the command line ------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction) -> None:
    """`ingest upload`."""
    upload = commands.add_parser(
        "upload",
        help="upload a CSV file and (with --wait) follow its job to the end",
        description=(
            "Upload FILE under the stack's uploads prefix, which starts a job, and print the job id. With --wait,"
            " follow the job until it ends and print a summary. Exit 0 when the job completed (with or without"
            " rejected rows), 1 when it FAILED, 3 when it did not end within --timeout. With --check, upload"
            " nothing: read FILE as the producer would, against the schema of the stack's settings"
            " (Pulumi.<stack>.yaml, or --config-file; no stack need run), and print the header's mapping, the"
            " counts, the reasons and the rejected rows by number and line, never a cell; exit 0 when every row"
            f" is valid, {EXIT_FAILS} when the producer would fail the file, {EXIT_REJECTS} when it would reject"
            " rows. --check also says how the file would be read: its delimiter (and whether it was detected),"
            " its encoding and whether it is gzip."
        ),
        epilog="example: python -m ingest upload tests/data/users.csv --local --wait",
    )
    upload.add_argument("file", type=Path, metavar="FILE", help="the CSV file")
    upload.add_argument(
        "--check",
        action="store_true",
        help="upload nothing: say what a job would write and reject, and why (e.g. upload --check products.csv"
        " --config-file examples/products/Pulumi.products.yaml)",
    )
    upload.add_argument(
        "--key",
        metavar="NAME",
        help="its name under the uploads prefix (default: the file's name, with .gz after it for --gzip), e.g."
        " 2024/users.csv; it must end in one of the stack's uploadsSuffixes",
    )
    upload.add_argument(
        "--gzip",
        action="store_true",
        help="compress FILE on the way up, as it is read (users.csv goes up as users.csv.gz); not for a file that"
        " is gzip already. With --check, what is checked is what would go up: FILE compressed, its compressed"
        " size against the stack's maxUploadBytes and its own against maxDecompressedBytes",
    )
    upload.add_argument("--wait", action="store_true", help="follow the job until it ends, then summarise it")
    upload.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="S",
        help=f"with --wait: give up after S seconds, exit 3 (default {DEFAULT_TIMEOUT_SECONDS})",
    )
    upload.add_argument("--json", action="store_true", help="print one JSON object (the summary with --wait)")
    add_target_options(upload)
    upload.set_defaults(run=_run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds > 0")
    return value


def _run(options: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    if options.check:
        if options.wait:
            parser.error("--check uploads nothing: it takes no --wait")
        return _check(options, out)
    return guarded(lambda: _upload(options, out), f"upload of {options.file}")


def _check(options: argparse.Namespace, out: TextIO) -> int:
    """`--check`: the file read as the producer would read it for the stack, nothing uploaded."""
    path: Path = options.file
    problem = unreadable(path) or (gzipped_already(path) if options.gzip else None)  # as the upload refuses it
    if problem:
        return fail(f"{path}: {problem}")
    try:
        stack = stack_of(options)
        config = stack_config(stack, options.config_file)
    except ConfigError as error:
        return fail(str(error))
    except FileNotFoundError as error:  # its stack file may be beyond the root: say how to name it
        where = "" if options.config_file else "; --check reads the stack's settings: name its file with --config-file"
        return fail(f"{error}{where}")
    # The producer reads an upload by its key's suffix (`.gz`, `.tsv`): the key it would go up as.
    name = options.key or path.name + (GZIP_SUFFIX if options.gzip else "")
    checked = check_file(
        path, config.schema, config.max_upload_bytes, config.max_decompressed_bytes, name=name, gzip=options.gzip
    )
    return print_check(str(path), stack, config.schema, checked, options.json, out)


def _upload(options: argparse.Namespace, out: TextIO) -> int:
    path: Path = options.file
    problem = unreadable(path) or (gzipped_already(path) if options.gzip else None)
    if problem:
        return fail(f"{path}: {problem}")
    target = resolve_target(options)
    key = _key(target, upload_name(target, path, options.key, gzip=options.gzip))
    uploaded = put(target, path, key, progress=not options.json and sys.stderr.isatty(), gzip=options.gzip)
    if not options.wait:
        return _report_upload(target, uploaded, options.json, out)
    try:  # from here the job exists: an interrupt at any point says how to find it again
        if not options.json:
            where = f"s3://{shown(uploaded.bucket)}/{shown(uploaded.key)}"
            out.write(f"Uploaded {shown(path)} as {where}: job {uploaded.job_id}\n")
            out.flush()
        job = wait_for_job(
            target, uploaded.job_id, timeout=options.timeout, progress=not options.json and out.isatty(), out=out
        )
    except JobTimeout as timeout:
        if options.json:
            print_json(summary(timeout.job or {"jobId": timeout.job_id}), out)
        return fail(str(timeout), EXIT_TIMEOUT)
    except KeyboardInterrupt:  # the job goes on without us: say how to find it again
        return fail(
            f"stopped waiting; job {uploaded.job_id} goes on: `{follow(target, uploaded.job_id)}`", EXIT_INTERRUPTED
        )
    return _report_job(target, job, options.json, out)


def unreadable(path: Path) -> str | None:
    """Why `path` is not a file to upload (missing, a directory, a pipe, not readable); None when it is."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "no such file"
    except OSError as error:
        return f"cannot be read: {error.strerror}"
    if stat.S_ISDIR(mode):
        return "is a directory: upload takes one CSV file (give each file of it in turn)"
    if not stat.S_ISREG(mode):
        # Its size must be known before the upload (one PUT, or parts), and a pipe's is not.
        return "is not a regular file (a pipe or a device): save it to a file first"
    if not os.access(path, os.R_OK):
        return "cannot be read: permission denied"
    return None


def gzipped_already(path: Path) -> str | None:
    """Why `--gzip` would not compress the file at `path`: it is gzip already (None when it is not)."""
    with path.open("rb") as file:
        if file.read(len(GZIP_MAGIC)) != GZIP_MAGIC:
            return None
    return (
        f"is gzip already (it starts with gzip's bytes {GZIP_MAGIC.hex(' ')}): upload it without --gzip, under a"
        " name ending in .gz"
    )


def _report_upload(target: Target, uploaded: Uploaded, as_json: bool, out: TextIO) -> int:
    if as_json:
        print_json(
            {
                "jobId": uploaded.job_id,
                "bucket": uploaded.bucket,
                "key": uploaded.key,
                "versionId": uploaded.version_id,
            },
            out,
        )
    else:
        out.write(f"Uploaded s3://{shown(uploaded.bucket)}/{shown(uploaded.key)}\njob {uploaded.job_id}\n")
        out.write(f"Follow it: {follow(target, uploaded.job_id)}\n")
    return 0


def _report_job(target: Target, job: dict[str, Any], as_json: bool, out: TextIO) -> int:
    if as_json:
        print_json(summary(job), out)
    else:  # a FAILED job's reason is the error line's below: said once
        out.write(render_summary(job, target.flags, reason=False))
    if job["status"] == FAILED:
        why = shown(job.get("error")) or "no reason recorded"
        return fail(f"job {shown(job['jobId'])} FAILED: {why}", EXIT_FAILED)
    return 0


# --- uploading -------------------------------------------------------------------------------------


def upload_name(target: Target, path: Path, key: str | None, *, gzip: bool = False) -> str:
    """The object's name under the uploads prefix (the file's name, `.gz` after it for `gzip`, or
    `key`); `TargetError` when the stack would not ingest it: a name ending in none of the stack's
    suffixes (a gzip one for `gzip`), said with a `--key` to copy."""
    name = key if key is not None else path.name + (GZIP_SUFFIX if gzip else "")
    if not name or name.startswith("/"):
        raise TargetError(f"--key {name!r}: expected a name under the uploads prefix, such as users.csv")
    suffixes = uploads_suffixes(target.outputs)
    wanted = tuple(suffix for suffix in suffixes if suffix.endswith(GZIP_SUFFIX)) if gzip else suffixes
    if not wanted:
        raise TargetError(
            f"--gzip: {target.label} ingests no gzip files (none of its uploadsSuffixes, {_listed(suffixes)}, ends"
            " in .gz): add .csv.gz to csv-ingest:uploadsSuffixes, or upload the file without --gzip"
        )
    if name.endswith(wanted):
        return name
    kind = "gzip files only under keys ending" if gzip else "only keys ending"
    instead = shlex.quote(_renamed(name, wanted[0]))
    raise TargetError(
        f"{name} does not end in {_listed(wanted)}: {target.label} ingests {kind} in {_listed(wanted)}"
        f" (rename the file, or upload it as --key {instead})"
    )


def uploads_suffixes(outputs: Mapping[str, Any]) -> tuple[str, ...]:
    """The key suffixes whose uploads start a job: the stack's `uploadsSuffixes` output. A stack
    deployed before there was a list has its one `uploadsSuffix` instead (that is its S3 filter), and
    one older still has neither: the program's default list."""
    if outputs.get("uploadsSuffixes"):
        return tuple(str(suffix) for suffix in outputs["uploadsSuffixes"])
    if outputs.get("uploadsSuffix"):
        return (str(outputs["uploadsSuffix"]),)
    return DEFAULT_UPLOADS_SUFFIXES


def _listed(suffixes: tuple[str, ...]) -> str:
    """`.csv`, `.csv or .tsv`, `.csv, .csv.gz, .tsv or .tsv.gz`."""
    return suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"


def _renamed(name: str, suffix: str) -> str:
    """`name` ending in `suffix` instead of its own (`people.txt` → `people.csv`, `2024/a.txt.gz` →
    `2024/a.csv.gz`), so that the `--key` a message suggests works when copied."""
    stem = name.removesuffix(GZIP_SUFFIX)
    stem = posixpath.splitext(stem)[0] or stem
    return stem + suffix


def _key(target: Target, name: str) -> str:
    return f"{target.outputs['uploadsPrefix']}{name}"


def upload_file(target: Target, path: Path, key: str, *, progress: bool) -> str:
    """Upload `path` as `key` (a name under the uploads prefix, e.g. "users.csv"); returns the job id.

    `progress` shows a transfer bar on stderr while the parts of a large file go up.
    """
    return put(target, path, _key(target, key), progress=progress).job_id


def put(target: Target, path: Path, key: str, *, progress: bool, gzip: bool = False) -> Uploaded:
    """PutObject, or a multipart upload from `MULTIPART_THRESHOLD` bytes on; the version S3 gave it.
    With `gzip`, the file's bytes compressed as they are read (`_put_compressed`). `FileChanged`, and
    no object made, if the file changes while it is read (`SteadyFile`)."""
    s3, bucket = target.client("s3"), target.outputs["bucketName"]
    with SteadyFile(path) as file:
        if gzip:
            version, parts = _put_compressed(s3, bucket, key, file, progress)
        elif file.size < MULTIPART_THRESHOLD:
            # Its length, for Content-Length, is the file's when opened: botocore seeks to its end.
            version = s3.put_object(Bucket=bucket, Key=key, Body=file, ContentType="text/csv")["VersionId"]
            parts = 1
        else:
            version, parts = _put_in_parts(s3, bucket, key, file, progress)
    return Uploaded(bucket=bucket, key=key, version_id=version, job_id=job_id_for(bucket, key, version), parts=parts)


def part_size(size: int) -> int:
    """Bytes per part: `MIN_PART_BYTES`, or more (whole MiB) when the file would need over `MAX_PARTS`."""
    mib = 1024 * 1024
    return max(MIN_PART_BYTES, math.ceil(size / MAX_PARTS / mib) * mib)


def _put_in_parts(s3: Any, bucket: str, key: str, file: SteadyFile, progress: bool) -> tuple[str, int]:
    """A multipart upload, `PARALLEL_PARTS` parts at a time; aborted if any part fails (nothing is left behind).

    Each part carries its CRC32, and the completion lists them: S3 checks every part and the whole.
    S3 makes the object only when the upload is completed
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/abort-mpu.html): a file that changed while
    its parts were read is found out before that, and the upload aborted.
    """
    step = part_size(file.size)
    offsets = range(0, file.size, step)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="text/csv", ChecksumAlgorithm="CRC32")[
        "UploadId"
    ]
    try:
        with _TransferBar(file.path.name, file.size, progress) as advance:

            def send(number: int, offset: int) -> dict[str, Any]:
                body = file.read_at(step, offset)
                sent = s3.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumAlgorithm="CRC32",
                )
                advance(len(body))
                return {"PartNumber": number, "ETag": sent["ETag"], "ChecksumCRC32": sent["ChecksumCRC32"]}

            with ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="upload-part") as pool:
                futures = [pool.submit(send, n, offset) for n, offset in enumerate(offsets, start=1)]
                try:
                    parts = [future.result() for future in futures]
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        file.ensure_unchanged()
        done = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:  # Ctrl-C included: an unfinished upload's parts are billed until aborted
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return done["VersionId"], len(parts)


def _put_compressed(s3: Any, bucket: str, key: str, file: SteadyFile, progress: bool) -> tuple[str, int]:
    """Upload the file at `path` gzipped as it is read: boto3's managed transfer (`upload_fileobj`)
    reads the compressed stream a part at a time, a PutObject when it is under `MULTIPART_THRESHOLD`,
    else a multipart upload of `PARALLEL_PARTS` parts at a time, which it aborts if one fails.

    Its size is unknown until the end, so parts are sized for the largest it can be: deflate adds at
    most 5 bytes a 16 KiB block to incompressible data, plus 6 once
    (https://www.zlib.net/zlib_tech.html), and gzip 18 bytes of header and trailer (RFC 1952). `upload_fileobj` returns
    nothing: the version id is read from S3's answer to the request that made the object (PutObject,
    or CompleteMultipartUpload) through botocore's `after-call` event
    (https://docs.aws.amazon.com/botocore/latest/topics/events.html).

    A file that changed while it was read fails the read of its last bytes (`SteadyFile`), before the
    transfer has them all: its one request never ends, or its multipart upload is aborted uncompleted."""
    config = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=part_size(file.size + file.size // 1024 + 1024),
        max_concurrency=PARALLEL_PARTS,
        preferred_transfer_client="classic",  # the CRT client sends no botocore events
    )
    # Parts read ahead of their upload are held in memory: no more than go up at once.
    config.max_in_memory_upload_chunks = PARALLEL_PARTS
    answers = _Answers()
    hooks = {
        "after-call.s3.PutObject": answers.made,
        "after-call.s3.CompleteMultipartUpload": answers.made,
        "after-call.s3.UploadPart": answers.sent,
    }
    for event, hook in hooks.items():
        s3.meta.events.register(event, hook, unique_id=f"{event}-{id(answers)}")
    try:
        with _TransferBar(f"{file.path.name} (gzip)", None, progress) as advance:
            s3.upload_fileobj(
                GzipReader(file),
                bucket,
                key,
                ExtraArgs={"ContentType": "application/gzip", "ChecksumAlgorithm": "CRC32"},
                Callback=advance,  # compressed bytes sent
                Config=config,
            )
    finally:
        for event in hooks:
            s3.meta.events.unregister(event, unique_id=f"{event}-{id(answers)}")
    if answers.version is None:
        raise TargetError(f"s3://{bucket}/{key}: S3 gave the upload no version id (is the bucket versioned?)")
    return answers.version, max(answers.parts, 1)


class FileChanged(TargetError):
    """The file changed while it was read to go up; its upload was stopped before S3 made an object."""


class SteadyFile(io.RawIOBase):
    """The file at `path`, opened to go up, read as it was then: `size` bytes and no more, and
    `FileChanged` instead of the last of them if its size or modification time is not what it was
    (a file still being written: an export, a copy). Otherwise S3 would hold, and a job ingest, a
    file that never was: its start from one moment, its end from another, or a row cut in two.

    The check comes before the last bytes are handed out, so the request carrying them never ends:
    "Amazon S3 never adds partial objects" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html).
    It reads by offset (`read_at`, `os.pread`: no shared file position between the threads that
    read parts) and, for one request's body, from a position of its own that botocore may seek
    (to its end for the length, back to the start to send it again). A file rewritten in place, at
    its size, within the file system's timestamp granularity goes unnoticed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("rb", buffering=0)
        opened = os.fstat(self._file.fileno())
        self.size: int = opened.st_size
        self.mtime_ns: int = opened.st_mtime_ns
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        data = self.read_at(len(buffer), self._position)
        if self._position + len(data) >= self.size:
            self.ensure_unchanged()
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read_at(self, size: int, offset: int) -> bytes:
        """Up to `size` bytes from `offset`, none past `size`; `FileChanged` if the file ends before."""
        wanted = max(0, min(size, self.size - offset))
        data = b""
        while len(data) < wanted:
            more = os.pread(self._file.fileno(), wanted - len(data), offset + len(data))
            if not more:
                self.ensure_unchanged()
                raise self._changed(f"it ended after {offset + len(data)} of its {self.size} bytes")
            data += more
        return data

    def ensure_unchanged(self) -> None:
        """`FileChanged` unless the file has the size and modification time it had when opened."""
        now = os.fstat(self._file.fileno())
        if now.st_size != self.size:
            raise self._changed(f"its size went from {self.size} to {now.st_size} bytes")
        if now.st_mtime_ns != self.mtime_ns:
            raise self._changed("its modification time changed")

    def _changed(self, how: str) -> FileChanged:
        return FileChanged(
            f"{self.path} changed while it was being uploaded ({how}); nothing was uploaded: upload it again once"
            " it is complete"
        )

    def close(self) -> None:
        self._file.close()
        super().close()


class _Answers:
    """What S3 answered the requests of one managed transfer: the object's version, how many parts."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.parts = 0
        self._lock = threading.Lock()  # parts go up on the transfer's threads

    def made(self, parsed: Mapping[str, Any], **_: Any) -> None:
        if parsed.get("VersionId"):
            self.version = parsed["VersionId"]

    def sent(self, parsed: Mapping[str, Any], **_: Any) -> None:
        if parsed.get("ETag"):
            with self._lock:
                self.parts += 1


class _TransferBar:
    """A bytes-sent bar on stderr when `shown` (of `size` bytes; None: unknown until the end, as a
    file compressed on the way up); its `advance(n)` is safe to call from any thread."""

    def __init__(self, name: str, size: int | None, shown: bool) -> None:
        self._progress = (
            progress(
                "uploading {task.description}",  # the file's name, as written
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                stream=sys.stderr,
            )
            if shown
            else None
        )
        self._name, self._size = name, size

    def __enter__(self) -> Callable[[int], None]:
        if self._progress is None:
            return lambda sent: None
        self._progress.start()
        task = self._progress.add_task(self._name, total=self._size)
        progress = self._progress
        return lambda sent: progress.advance(task, sent)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


# --- following the job -----------------------------------------------------------------------------


def wait_for_job(target: Target, job_id: str, *, timeout: float, progress: bool, out: TextIO) -> dict[str, Any]:
    """Poll the job until it ends and return it as the API shows it; `JobTimeout` after `timeout` seconds.

    `progress` shows a live bar on `out` (on a terminal): rows written (or superseded) of the valid
    rows, rows per second, time left and rows rejected so far.
    """
    api = target.api()
    deadline = time.monotonic() + timeout
    job: dict[str, Any] | None = None
    pause = FIRST_POLL_SECONDS
    with interruptible() as interrupted, _JobBar(job_id, progress, out) as show:
        while True:
            raise_if_interrupted(interrupted)  # an interrupt Python dropped mid-poll ends the wait here
            response = api.get(f"/jobs/{segment(job_id)}")
            if response.status == 200:
                job = response.body
                show(job)
                if job["status"] in ENDED:
                    return job
            elif response.status != 404:  # 404: the producer has not created the job yet
                raise unexpected(response, "GET /jobs/{jobId}")
            if time.monotonic() >= deadline:
                raise JobTimeout(target, job_id, timeout, job)
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            pause = min(pause * POLL_GROWTH, MAX_POLL_SECONDS)


def rows_done(job: Mapping[str, Any]) -> int:
    """Valid rows the worker has dealt with: written, or superseded by a newer version of the same key."""
    return int(job.get("rowsWritten") or 0) + int(job.get("rowsSuperseded") or 0)


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s")


class _JobBar:
    """The live bar of a job; its total is the valid rows once the producer has counted them all."""

    def __init__(self, job_id: str, shown: bool, out: TextIO) -> None:
        # From the most needed to the least: on a narrow terminal, the last columns are left out.
        self._progress = (
            progress(
                "{task.description}",  # the job's status, as the stack holds it
                BarColumn(),
                "{task.completed:,.0f}/{task.fields[of]} rows",
                "{task.fields[rejected]:,} rejected",
                TimeRemainingColumn(),
                _RowsPerSecond(),
                stream=out,
            )
            if shown
            else None
        )
        self._job_id = job_id
        self._task: Any = None

    def __enter__(self) -> Callable[[dict[str, Any]], None]:
        if self._progress is None:
            return lambda job: None
        self._progress.start()
        self._task = self._progress.add_task(f"job {self._job_id[:8]} waiting", total=None, of="?", rejected=0)
        return self._show

    def _show(self, job: dict[str, Any]) -> None:
        assert self._progress is not None
        counted = job["status"] != PARSING  # while parsing, the valid rows are still being counted
        total = int(job.get("rowsValid") or 0) if counted else None
        self._progress.update(
            self._task,
            description=f"job {self._job_id[:8]} {job['status']}",  # the column shows it as written
            total=total,
            completed=rows_done(job),
            of="?" if total is None else f"{total:,}",
            rejected=int(job.get("rowsRejected") or 0),
        )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


# --- the summary -----------------------------------------------------------------------------------


def duration_seconds(job: Mapping[str, Any]) -> float | None:
    """From the upload (S3's event time) to the job's end; None while it has not ended."""
    began, ended = job.get("uploadedAt") or job.get("startedAt"), job.get("finishedAt")
    if not began or not ended:
        return None
    return round((_instant(ended) - _instant(began)).total_seconds(), 3)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def summary(job: Mapping[str, Any]) -> dict[str, Any]:
    """The job as `--json` prints it: the API's fields, `SUMMARY_KEYS` always present, and `durationSeconds`."""
    return {**dict.fromkeys(SUMMARY_KEYS), **job, "durationSeconds": duration_seconds(job)}


def render_summary(job: Mapping[str, Any], target_flags: str, *, reason: bool = True) -> str:
    """The human summary: status, the counts the job has, how long it took, a FAILED job's reason
    (unless `reason` is False: the caller says it), where the rejects are and the `rejects` command
    that lists them (`target_flags` naming the stack)."""
    summarised = summary(job)
    duration = summarised["durationSeconds"]
    text = {key: shown(value) for key, value in summarised.items()}  # the API's values, escaped for a terminal
    lines = [
        f"Job {text['jobId']}: {text['status']}" + ("" if duration is None else f" in {duration:.1f} s"),
        *(
            f"  {label:<16}{text[key]:>10}"
            for label, key in SUMMARY_COUNTS
            if summarised.get(key) is not None  # a count the job never set (it failed first) is left out
        ),
    ]
    if reason and summarised["status"] == FAILED:
        lines.append(f"  reason: {text.get('error') or 'no reason recorded'}")
    if summarised.get("rowsRejected") and summarised.get("rejectsReport"):
        listing = f"{command('rejects', str(summarised['jobId']))} {target_flags}"
        lines.append(f"  rejects report: {text['rejectsReport']} ({shown(listing)})")
    return "\n".join(lines) + "\n"
