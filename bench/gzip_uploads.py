"""gzip uploads: what a `.csv.gz` file costs the producer to read, and a continuation to resume.

A deflate stream can only be read from its first byte, so a continuation of a gzip upload cannot
range-read to its checkpoint, as it does a plain file: it inflates the object again from the start
and drops the text before the checkpoint (`handlers.producer.sources.skipped`). The most that costs
an invocation is the whole file: the first figure, for a 1 GiB (decompressed) users CSV. The second
is the producer's read rate of the same rows through `csv_stream.blocks`, from the gzip object
(through `sources.text_stream`) and from the plain file, per CPU second, so that what gunzip adds
to each pass is its own figure.

The file is a header and the users rows of `bench.inputs`, a 64 MiB piece of them repeated to the
size, in memory. Deflate looks back 32 KiB at most (RFC 1951 §2), so repeating rows does not
make them compress better; it lets the run compress the piece once, at level 6 (gzip's default,
what `ingest upload --gzip` writes), instead of the whole gigabyte (`gzipped`): the file is one gzip
member all the same, its checks those of the whole text, and it inflates as any gzip of those rows.
The files are read from memory: the figures are the producer's CPU, not S3's network.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

from bench.core import Benchmark, Context, Result, cpu_timed, median_of, number, table, timed
from bench.inputs import USERS
from bench.producer_cpu import stack_config
from bench.projection import LAMBDA_MB_PER_VCPU, LAMBDA_MEMORY_URL, cpu_share
from handlers.producer.csv_stream import ByteStream, LineRecords, blocks
from handlers.producer.sources import skipped, text_stream

T = TypeVar("T")

GZIP_LEVEL = 6
PIECE_BYTES = 64 * 2**20
"""The distinct rows of the file, repeated to its size."""
GIB = 2**30
# A gzip member's header with no name, time or extra fields, written on Unix (RFC 1952 §2.3).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"


@dataclass(frozen=True)
class Users:
    """A users CSV of a header and `copies` times the same rows."""

    header: bytes
    rows: bytes
    copies: int

    @classmethod
    def of_size(cls, size: int) -> Users:
        """About `size` bytes: whole copies of at most `PIECE_BYTES` of rows, each cut at a line end."""
        piece = min(size, PIECE_BYTES)
        text = USERS.csv_bytes(piece // 50)  # a row is over 50 bytes: more than enough of them
        header_end = text.index(b"\n") + 1
        rows = text[header_end : text.rindex(b"\n", 0, piece) + 1]
        return cls(text[:header_end], rows, size // piece)

    @property
    def size(self) -> int:
        return len(self.header) + self.copies * len(self.rows)

    def text(self) -> bytes:
        return b"".join([self.header, *[self.rows] * self.copies])

    def gzipped(self) -> bytes:
        """The file as one gzip member, each distinct part deflated once: deflated with a full flush,
        which ends its blocks on a byte and empties the compressor's history (so the next part's blocks
        refer to nothing before them: https://www.zlib.net/manual.html, Z_FULL_FLUSH), the parts are
        valid deflate blocks in any order and number; an empty last block closes them, and the trailer
        holds the CRC-32 and size of the whole text (RFC 1952 §2.3.1)."""
        header, rows = _deflated(self.header), _deflated(self.rows)
        last = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
        crc = zlib.crc32(self.header)
        for _ in range(self.copies):
            crc = zlib.crc32(self.rows, crc)
        trailer = struct.pack("<II", crc, self.size % 2**32)
        return b"".join([GZIP_HEADER, header, *[rows] * self.copies, last, trailer])


def _deflated(data: bytes) -> bytes:
    """`data` as raw deflate blocks at `GZIP_LEVEL`, not the last, independent of what comes before."""
    deflater = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush(zlib.Z_FULL_FLUSH)


def gunzip_and_skip(gz: bytes, size: int) -> None:
    """What a continuation at the file's end pays: every byte inflated and dropped."""
    skipped(text_stream(io.BytesIO(gz), gzip=True, encoding="utf-8", max_decompressed_bytes=size), size)


def records_read(stream: ByteStream) -> int:
    """Every record the producer's reader reads from `stream`, as its validation pass reads them."""
    count = 0
    for block in blocks(stream):
        count += len(block.contents) if isinstance(block, LineRecords) else 1
    return count


def read_gzip(gz: bytes, size: int) -> int:
    return records_read(text_stream(io.BytesIO(gz), gzip=True, encoding="utf-8", max_decompressed_bytes=size))


@dataclass(frozen=True)
class _Timing:
    wall_seconds: float
    cpu_seconds: float


def _measured(work: Callable[[], T], repeats: int) -> tuple[_Timing, T]:
    """Median wall and CPU seconds of `repeats` runs of `work`, and what its last run returned."""
    walls, cpus, values = [], [], []
    for _ in range(repeats):
        cpu, (wall, value) = cpu_timed(lambda: timed(work))
        walls.append(wall)
        cpus.append(cpu)
        values.append(value)
    return _Timing(round(median_of(walls), 3), round(median_of(cpus), 3)), values[-1]


def run(ctx: Context) -> Result:
    users = Users.of_size(ctx.pick(tiny=2**20, quick=64 * 2**20, full=GIB))
    ctx.progress(f"gzip_uploads: a {users.size / 2**20:,.0f} MiB file, gzipped at level {GZIP_LEVEL}")
    # What compressing costs per byte (`ingest upload --gzip`), from the distinct rows: the file's
    # other copies of them are not compressed again.
    compress_cpu, _ = cpu_timed(lambda: _deflated(users.rows))
    text, gz = users.text(), users.gzipped()
    ctx.progress("gzip_uploads: inflating and skipping the file, then reading it gzipped and plain")
    skip, _ = _measured(lambda: gunzip_and_skip(gz, users.size), ctx.repeats)
    gzip_read, gzip_records = _measured(lambda: read_gzip(gz, users.size), ctx.repeats)
    plain_read, plain_records = _measured(lambda: records_read(io.BytesIO(text)), ctx.repeats)
    if gzip_records != plain_records:
        raise RuntimeError(f"gzip_uploads: {gzip_records} records from the gzip file, {plain_records} from the plain")
    producer = stack_config().producer
    return {
        "bytes": users.size,
        "compressed_bytes": len(gz),
        "level": GZIP_LEVEL,
        "records": plain_records,
        "runs": ctx.repeats,
        "compress_mb_per_cpu_second": round(len(users.rows) / 1e6 / compress_cpu, 1),
        "skip": asdict(skip),
        "read_gzip": asdict(gzip_read),
        "read_plain": asdict(plain_read),
        "producer_memory_mb": producer.memory_mb,
        "producer_timeout_seconds": producer.timeout_seconds,
    }


def render(result: Result) -> str:
    size, gib = result["bytes"], result["bytes"] / GIB
    skip, gzip_read, plain_read = result["skip"], result["read_gzip"], result["read_plain"]
    memory_mb = result["producer_memory_mb"]
    on_lambda = skip["cpu_seconds"] / cpu_share(memory_mb)

    def rate(timing: dict[str, float]) -> str:
        return number(size / 1e6 / timing["cpu_seconds"])

    return "\n".join(
        [
            f"A users CSV of {size / 2**20:,.0f} MiB ({result['records']:,} records), gzipped at level"
            f" {result['level']} in the run to {result['compressed_bytes'] / 2**20:,.1f} MiB: a compression ratio"
            f" of {size / result['compressed_bytes']:.1f}:1. Compressing runs at"
            f" {number(result['compress_mb_per_cpu_second'])} MB per CPU second (what `ingest upload --gzip` adds on"
            " the uploading machine). The files are read from memory, so the figures are the producer's CPU, not"
            f" S3's network. Medians of {result['runs']} runs; rates are per CPU second (`time.process_time`), so"
            " other load on the machine does not move them.",
            "",
            "A continuation of a gzip upload cannot range-read to its checkpoint: it inflates the file again from"
            " its first byte and drops the text before the checkpoint (`handlers/producer/sources.py`). The most"
            " that costs an invocation is the whole file:",
            "",
            table(
                ["measure", "CPU seconds", "wall seconds", "decompressed MB per CPU second", "CPU s per GiB"],
                [
                    [
                        "inflate and skip the whole file",
                        skip["cpu_seconds"],
                        skip["wall_seconds"],
                        rate(skip),
                        number(skip["cpu_seconds"] / gib),
                    ]
                ],
            ),
            "",
            f"On the dev stack's producer ({memory_mb:,} MB, {cpu_share(memory_mb):.2f} of a vCPU: \"at"
            f' {LAMBDA_MB_PER_VCPU:,} MB, a function has the equivalent of one vCPU", {LAMBDA_MEMORY_URL}), that is'
            f" about {on_lambda:.0f} s of an invocation's {result['producer_timeout_seconds']:,} s: what a continuation"
            " resuming near the file's end pays before it reads on, once per invocation; less the nearer the start.",
            "",
            "The producer's reader (`csv_stream.blocks`, what each pass over the file runs) over the same rows, from"
            " the gzip file through `sources.text_stream` and from the plain file:",
            "",
            table(
                ["file", "records per CPU second", "CPU s per GiB", "MB per CPU second", "÷ plain's rate"],
                [
                    [
                        name,
                        number(result["records"] / timing["cpu_seconds"]),
                        number(timing["cpu_seconds"] / gib),
                        rate(timing),
                        f"{plain_read['cpu_seconds'] / timing['cpu_seconds']:.2f}×",
                    ]
                    for name, timing in (("gzip", gzip_read), ("plain", plain_read))
                ],
            ),
        ]
    )


BENCHMARK = Benchmark(name="gzip_uploads", title="gzip uploads: reading and resuming a .csv.gz", run=run, render=render)
