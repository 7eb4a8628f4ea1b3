"""The byte layers under the CSV reader: gunzip with a limit, transcoding to UTF-8, and skipping to an offset."""

from __future__ import annotations

import codecs
import gzip
import io
import random
import re
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.producer.csv_stream import READ_SIZE, ByteStream, FileProblem, iter_records
from handlers.producer.sources import skipped, text_stream

LIMIT = 1 << 40  # no limit, for the tests that are not about it
ROWS = "name,mail,phone\n" + "".join(f"Person {i},p{i}@example.com,+4420{i:08d}\n" for i in range(5000))
CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)


class Trickle(io.BytesIO):
    """A stream whose reads return at most the next of `sizes` bytes (cycling), as a network stream may."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        super().__init__(data)
        self._sizes = sizes
        self._next = 0

    def read(self, n: int = -1) -> bytes:
        size = self._sizes[self._next % len(self._sizes)]
        self._next += 1
        return super().read(min(n, size) if n >= 0 else size)


def read_all(stream: ByteStream, sizes: Iterator[int] | None = None) -> bytes:
    """Every byte of `stream`, read `sizes` at a time (READ_SIZE by default), no read over its size."""
    out = []
    while True:
        size = next(sizes) if sizes is not None else READ_SIZE
        piece = stream.read(size)
        assert len(piece) <= size
        if not piece:
            return b"".join(out)
        out.append(piece)


def gunzipped(data: bytes, limit: int = LIMIT) -> bytes:
    return read_all(text_stream(io.BytesIO(data), gzip=True, encoding="utf-8", max_decompressed_bytes=limit))


def decoded(data: bytes, encoding: str, *, gz: bool = False) -> bytes:
    return read_all(text_stream(io.BytesIO(data), gzip=gz, encoding=encoding, max_decompressed_bytes=LIMIT))


def incompressible(size: int, seed: int = 7) -> bytes:
    """Random printable text, which compresses poorly: its gzip is larger than a read block."""
    chooser = random.Random(seed)
    return "".join(chooser.choices("abcdefghijklmnopqrstuvwxyz0123456789,\n", k=size)).encode()


# --- gzip ---------------------------------------------------------------------------------------------


def test_a_gzip_object_reads_as_its_decompressed_bytes_from_reads_of_any_size():
    data = ROWS.encode()
    compressed = gzip.compress(data)

    assert gunzipped(compressed) == data
    for sizes in ([1], [3, 1, 7], [READ_SIZE * 2]):
        stream = text_stream(Trickle(compressed, sizes), gzip=True, encoding="utf-8", max_decompressed_bytes=LIMIT)
        assert read_all(stream, iter(lambda: 5, None)) == data


def test_a_multi_member_gzip_reads_through_every_member_as_gzip_open_does():
    members = [gzip.compress(b"name,mail\n"), gzip.compress(b""), gzip.compress(b"a,a@example.com\n")]
    # Zero padding after a member is skipped, as gzip.open skips it.
    compressed = members[0] + members[1] + members[2] + b"\x00" * 10

    assert gunzipped(compressed) == gzip.decompress(compressed) == b"name,mail\na,a@example.com\n"


class Counted(io.BytesIO):
    """A stream that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        piece = super().read(n)
        self.count += len(piece)
        return piece


EMPTY_MEMBER = gzip.compress(b"")  # 20 bytes: a header, an empty deflate block, a trailer


def test_runs_of_up_to_1000_empty_gzip_members_read_through():
    row = gzip.compress(b"a,a@example.com\n")
    compressed = gzip.compress(b"name,mail\n") + (EMPTY_MEMBER * 1000 + row) * 3

    assert gunzipped(compressed) == gzip.decompress(compressed)


def test_a_run_of_empty_gzip_members_fails_fast_where_it_passes_1000():
    # GIVEN a member with a header line, then 500,000 members that hold nothing (10 MB, no text):
    # read whole, no limit would trip and no checkpoint could be taken
    first = gzip.compress(b"name,email\n")
    raw = Counted(first + EMPTY_MEMBER * 500_000)
    started = time.perf_counter()

    # WHEN it is read
    with pytest.raises(FileProblem) as raised:
        read_all(text_stream(raw, gzip=True, encoding="utf-8", max_decompressed_bytes=LIMIT))

    # THEN it fails at the 1,001st empty member, having read at most one block past it
    offset = len(first) + 1000 * len(EMPTY_MEMBER)
    assert str(raised.value) == (
        f"not a gzip file of text: more than 1000 gzip members in a row hold nothing (compressed byte offset"
        f" {offset}); compress the file again with gzip"
    )
    assert raw.count <= offset + len(EMPTY_MEMBER) + READ_SIZE
    assert time.perf_counter() - started < 1.0  # reading all 10 MB took seconds


def test_an_empty_gzip_object_reads_as_empty_as_gzip_open_reads_it():
    assert gunzipped(b"") == gzip.decompress(b"") == b""


def test_an_object_that_is_not_gzip_says_to_drop_the_suffix_or_compress_it():
    with pytest.raises(FileProblem) as raised:
        gunzipped(ROWS.encode())

    assert str(raised.value) == (
        "not gzip: the key ends in .gz but the object is not gzip-compressed data; upload it without the .gz"
        " suffix, or compress it with gzip"
    )


def corrupted(data: bytes, at: int, byte: int) -> bytes:
    return data[:at] + bytes([byte]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("corrupt", "reason", "offset"),
    [
        # gzip.compress writes a 10-byte header; the deflate data's first byte holds its first block's
        # type in bits 1-2: 11 is no type (RFC 1951 §3.2.3).
        (lambda gz: corrupted(gz, 10, gz[10] | 0b110), "invalid block type", lambda gz: 10),
        # zlib reads the header's method byte together with the flags byte after it.
        (lambda gz: corrupted(gz, 2, 7), "unknown compression method", lambda gz: 3),
        # The trailer: CRC-32, then the length, 4 bytes each; zlib checks each once it has all 4.
        (lambda gz: corrupted(gz, len(gz) - 8, gz[-8] ^ 1), "its CRC-32 check failed", lambda gz: len(gz) - 5),
        (lambda gz: corrupted(gz, len(gz) - 4, gz[-4] ^ 1), "its length check failed", lambda gz: len(gz) - 1),
    ],
    ids=["block type", "method", "crc", "length"],
)
@pytest.mark.parametrize("size", [100, 300_000], ids=["one block", "many blocks"])
def test_corrupt_gzip_data_names_the_compressed_byte_offset_where_it_fails(corrupt, reason, offset, size):
    compressed = corrupt(gzip.compress(incompressible(size)))
    if size > 100:
        assert len(compressed) > 3 * READ_SIZE  # the failure is in a later read than the first

    with pytest.raises(FileProblem) as raised:
        gunzipped(compressed)

    assert str(raised.value) == (
        f"corrupt gzip data: {reason} (compressed byte offset {offset(compressed)}); upload the file again"
    )


def test_bytes_after_a_member_that_are_not_gzip_are_corrupt_data_at_their_offset():
    member = gzip.compress(b"name,mail\n")

    with pytest.raises(FileProblem, match=rf"^corrupt gzip data: .* \(compressed byte offset {len(member)}\)"):
        gunzipped(member + b"name,mail\n")


@pytest.mark.parametrize("keep", [1, 11, 0.5, -1, -5], ids=["magic", "header", "middle", "trailer", "crc"])
def test_a_truncated_gzip_file_says_where_it_ends_and_to_upload_it_whole(keep):
    compressed = gzip.compress(incompressible(200_000))
    cut = compressed[: int(len(compressed) * keep) if isinstance(keep, float) else keep]

    with pytest.raises(FileProblem) as raised:
        gunzipped(cut)

    assert str(raised.value) == (
        f"truncated gzip file: it ends after {len(cut)} bytes, in the middle of its compressed data; upload the"
        " whole file again"
    )


def test_the_decompressed_limit_is_exact():
    data = ROWS.encode()
    compressed = gzip.compress(data)

    assert gunzipped(compressed, limit=len(data)) == data
    with pytest.raises(FileProblem) as raised:
        gunzipped(compressed, limit=len(data) - 1)
    assert str(raised.value) == (
        f"the file decompresses to more than {len(data) - 1} bytes (csv-ingest:maxDecompressedBytes); raise it,"
        " or split the file"
    )


def test_the_limit_applies_to_every_member_together():
    compressed = gzip.compress(b"a" * 600) + gzip.compress(b"b" * 600)

    with pytest.raises(FileProblem, match="more than 1000 bytes"):
        gunzipped(compressed, limit=1000)


def test_a_gzip_bomb_stops_at_the_limit_without_inflating_past_it():
    # GIVEN 64 MiB of line ends deflated to about 64 KB (1000:1), and a limit of 1 MiB
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(deflater.compress(b"\n" * (1 << 20)) for _ in range(64)) + deflater.flush()
    limit = 1 << 20
    produced = 0
    tracemalloc.start()
    try:
        # WHEN it is read, as the reader reads
        stream = text_stream(io.BytesIO(bomb), gzip=True, encoding="utf-8", max_decompressed_bytes=limit)
        with pytest.raises(FileProblem, match=f"more than {limit} bytes"):
            while piece := stream.read(READ_SIZE):
                produced += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # THEN it stops at the limit, having held a few blocks at a time (compressed input, output, zlib's
    # window), never the 64 MiB it would inflate to
    assert len(bomb) < READ_SIZE * 2
    assert produced == limit
    assert peak < 8 * READ_SIZE


# --- transcoding --------------------------------------------------------------------------------------


def test_utf8_passes_the_object_through_untouched():
    raw = io.BytesIO(b"\xef\xbb\xbfname\n")

    assert text_stream(raw, gzip=False, encoding="utf-8", max_decompressed_bytes=LIMIT) is raw


@pytest.mark.parametrize("byte", CP1252_UNDEFINED, ids=hex)
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_byte_with_no_cp1252_character_is_named_by_its_offset_and_the_setting(byte, gz):
    data = ("name,mail\n" + "Émile €,e@example.fr\n" * 10_000).encode("cp1252")
    offset = len(data) - 5  # in the decompressed bytes, for a gzip file
    data = corrupted(data, offset, byte)

    with pytest.raises(FileProblem) as raised:
        decoded(gzip.compress(data) if gz else data, "cp1252", gz=gz)

    assert str(raised.value) == (
        f"not cp1252: byte 0x{byte:02x} at byte offset {offset} has no character in cp1252"
        " (csv-ingest:schema.format.encoding)"
    )


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16"])
def test_a_utf8_bom_under_another_encoding_says_the_file_is_utf8(encoding):
    with pytest.raises(FileProblem) as raised:
        decoded(b"\xef\xbb\xbfname,mail\n", encoding)

    assert str(raised.value) == (
        f"UTF-8, not {encoding}: the file starts with the UTF-8 byte order mark (EF BB BF); set"
        " csv-ingest:schema.format.encoding to utf-8"
    )


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16"])
def test_gzip_data_under_a_key_not_ending_gz_says_to_upload_it_as_gz(encoding):
    # Read as text: its NUL bytes, or its missing byte order mark, would say it is not text.
    with pytest.raises(FileProblem) as raised:
        decoded(gzip.compress(ROWS.encode(encoding)), encoding)

    assert str(raised.value) == (
        "gzip data, not text: the file is gzip-compressed; upload it under a key ending .gz (.csv.gz) so that it is"
        " decompressed"
    )


def test_utf16_without_a_byte_order_mark_is_refused():
    with pytest.raises(FileProblem) as raised:
        decoded("name,mail\n".encode("utf-16-le"), "utf-16")

    assert str(raised.value) == (
        "not UTF-16 with a byte order mark: the stack reads files as utf-16 (csv-ingest:schema.format.encoding),"
        " and this one does not start with FF FE or FE FF"
    )


@pytest.mark.parametrize("order", ["le", "be"])
def test_utf16_of_odd_length_says_where_it_ends(order):
    bom = codecs.BOM_UTF16_LE if order == "le" else codecs.BOM_UTF16_BE
    data = bom + ("name,mail\n" * 20_000).encode(f"utf-16-{order}") + b"x"

    with pytest.raises(FileProblem) as raised:
        decoded(data, "utf-16")

    assert str(raised.value) == (
        f"not UTF-16: the file ends after {len(data)} bytes, in the middle of a character"
        " (csv-ingest:schema.format.encoding)"
    )


@pytest.mark.parametrize("order", ["le", "be"])
@pytest.mark.parametrize("unit", [0xD800, 0xDC00], ids=["high", "low"])
def test_a_lone_utf16_surrogate_is_named_by_its_offset(order, unit):
    bom = codecs.BOM_UTF16_LE if order == "le" else codecs.BOM_UTF16_BE
    before = bom + ("name,mail\n🙂\n" * 10_000).encode(f"utf-16-{order}")
    lone = unit.to_bytes(2, "little" if order == "le" else "big")
    data = before + lone + "x\n".encode(f"utf-16-{order}")

    with pytest.raises(FileProblem) as raised:
        decoded(data, "utf-16")

    shown = " ".join(f"0x{b:02x}" for b in lone)
    assert str(raised.value) == (
        f"not UTF-16: bytes {shown} at byte offset {len(before)} are half of a surrogate pair, with no other half"
        " (csv-ingest:schema.format.encoding)"
    )


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16"])
def test_a_nul_character_is_named_by_its_offset_in_the_files_own_bytes(encoding):
    # Characters of several byte lengths before it (🙂 is four bytes in UTF-16, é two in UTF-8).
    before = "name,mail\n" + ("é,🙂\n" if encoding == "utf-16" else "é,x\n") * 30_000
    data = (before + "\x00\n").encode(encoding)  # Python's utf-16 writes its BOM first
    offset = len(before.encode(encoding))

    with pytest.raises(FileProblem) as raised:
        decoded(data, encoding)

    assert str(raised.value) == (
        f"not a text CSV file: a NUL character (U+0000) at byte offset {offset}, which no text file holds; check"
        f" that the file is a CSV in {encoding} (csv-ingest:schema.format.encoding)"
    )


def test_no_message_shows_a_character_of_the_file():
    secret = "Zoë Secret"
    files = {
        "cp1252": (secret + ",\x81").encode("latin-1"),
        "utf-16": codecs.BOM_UTF16_LE + (secret + "\n").encode("utf-16-le") + b"\x00\xd8x\x00",
    }
    for encoding, data in files.items():
        with pytest.raises(FileProblem) as raised:
            decoded(data, encoding)
        assert "Zo" not in str(raised.value) and "Secret" not in str(raised.value)


def utf8_problem(encoding: str, offset: int) -> str:
    return (
        f"UTF-8, not {encoding}: the file's first non-ASCII bytes (byte offset {offset}) are UTF-8; set"
        " csv-ingest:schema.format.encoding to utf-8"
    )


FIRST_BLOCK = "name,mail\n" + "Ann,ann@example.com\n" * 100  # ASCII
SECOND_BLOCK = "name,mail\n" + "Ann,ann@example.com\n" * 5000  # ASCII, 100 KB: past the first read
RENE = "René,rene@example.fr\nZoë,zoe@example.fr\n"


@pytest.mark.parametrize("ascii_before", [FIRST_BLOCK, SECOND_BLOCK], ids=["first block", "second block"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_utf8_file_read_as_a_single_byte_encoding_says_to_set_utf8(encoding, gz, ascii_before):
    data = (ascii_before + RENE).encode("utf-8")
    offset = len(ascii_before) + len("Ren")  # in the decompressed bytes, for a gzip file

    with pytest.raises(FileProblem) as raised:
        decoded(gzip.compress(data) if gz else data, encoding, gz=gz)

    assert str(raised.value) == utf8_problem(encoding, offset)


@pytest.mark.parametrize("ascii_before", [FIRST_BLOCK, SECOND_BLOCK], ids=["first block", "second block"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_file_in_the_single_byte_encoding_is_not_taken_for_utf8(encoding, gz, ascii_before):
    # é is 0xE9 in both, followed by ASCII: never a UTF-8 sequence; later bytes that would be one
    # (Ã© is C3 A9 in cp1252, é's UTF-8) do not change what the first ones said
    text = ascii_before + RENE + "Ã©,x@example.com\n"
    data = text.encode(encoding)

    assert decoded(gzip.compress(data) if gz else data, encoding, gz=gz) == text.encode("utf-8")


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_utf8_character_split_between_two_reads_is_still_utf8(encoding):
    data = (FIRST_BLOCK + RENE).encode("utf-8")
    split = len(FIRST_BLOCK) + len("Ren") + 1  # between é's two bytes
    stream = text_stream(Trickle(data, [split, READ_SIZE]), gzip=False, encoding=encoding, max_decompressed_bytes=LIMIT)

    with pytest.raises(FileProblem) as raised:
        read_all(stream)

    assert str(raised.value) == utf8_problem(encoding, split - 1)


@pytest.mark.parametrize(
    "text",
    ["name,mail\nRené", "name,mail\nRen\u00c3", "name,mail\nRen\u00c3\n"],
    ids=["last byte", "a UTF-8 lead byte last", "a UTF-8 lead byte before ASCII"],
)
@pytest.mark.parametrize("sizes", [[READ_SIZE], [1], [13, 1]], ids=["whole", "bytewise", "split"])
def test_a_cp1252_byte_that_starts_a_utf8_sequence_but_ends_it_is_cp1252(text, sizes):
    data = text.encode("cp1252")
    stream = text_stream(Trickle(data, sizes), gzip=False, encoding="cp1252", max_decompressed_bytes=LIMIT)

    assert read_all(stream) == text.encode("utf-8")


NON_ASCII_TEXT = st.text(st.characters(min_codepoint=1, exclude_categories=["Cs"])).filter(
    lambda text: not text.isascii()
)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["cp1252", "latin-1"]),
    st.text(st.characters(min_codepoint=1, max_codepoint=0x7F)),
    NON_ASCII_TEXT,
    st.booleans(),
    st.lists(st.integers(1, 3 * READ_SIZE), min_size=1, max_size=5),
)
def test_any_utf8_text_read_as_a_single_byte_encoding_is_named_utf8_at_its_first_non_ascii_byte(
    encoding, ascii_text, text, gz, sizes
):
    data = (ascii_text + text).encode("utf-8")
    offset = len(ascii_text) + next(i for i, byte in enumerate(text.encode("utf-8")) if byte >= 0x80)
    raw = gzip.compress(data) if gz else data
    stream = text_stream(Trickle(raw, sizes), gzip=gz, encoding=encoding, max_decompressed_bytes=LIMIT)

    with pytest.raises(FileProblem) as raised:
        read_all(stream)

    assert str(raised.value) == utf8_problem(encoding, offset)


def test_a_transcoded_file_reads_as_the_same_records_as_its_utf8():
    text = 'name,mail,phone\r\n"Doe, Zoë",zoe@example.com,+33 1 23 45 67 89\r\n€uro,e@example.com,\r\n'

    for encoding in ("cp1252", "utf-16"):
        stream = text_stream(
            io.BytesIO(gzip.compress(text.encode(encoding))),
            gzip=True,
            encoding=encoding,
            max_decompressed_bytes=LIMIT,
        )
        assert list(iter_records(stream)) == list(iter_records(io.BytesIO(text.encode())))


CP1252_TEXT = "".join(
    character for byte in range(1, 256) if byte not in CP1252_UNDEFINED for character in bytes([byte]).decode("cp1252")
)


def encodable(encoding: str) -> st.SearchStrategy[str]:
    """Text the encoding can hold, with no NUL: cp1252's characters; latin-1's; for utf-16 any
    character but a surrogate (the BMP and the astral planes)."""
    if encoding == "cp1252":
        return st.text(st.sampled_from(CP1252_TEXT))
    if encoding == "latin-1":
        return st.text(st.characters(min_codepoint=1, max_codepoint=0xFF))
    return st.text(st.characters(min_codepoint=1, exclude_categories=["Cs"]))


def starts_a_utf8_sequence(data: bytes) -> bool:
    """Whether the first non-ASCII byte of `data` starts a whole UTF-8 sequence (C3 A9 is Ã© in
    cp1252): a cp1252 or latin-1 file that does is taken for UTF-8, rightly unless it is such rare text."""
    found = re.search(rb"[\x80-\xff]", data)
    if found is None:
        return False
    try:
        data[found.start() :].decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start > 0
    return True


def encoded(text: str, encoding: str, order: str) -> bytes:
    if encoding != "utf-16":
        return text.encode(encoding)
    bom = codecs.BOM_UTF16_LE if order == "le" else codecs.BOM_UTF16_BE
    return bom + text.encode(f"utf-16-{order}")


@st.composite
def files(draw: st.DrawFn) -> tuple[str, bytes, bool, list[int], list[int]]:
    """A text, its bytes in an encoding (gzipped or not), the source's read sizes and the reader's."""
    encoding = draw(st.sampled_from(["cp1252", "latin-1", "utf-16"]))
    text = draw(
        encodable(encoding).filter(
            lambda text: encoding == "utf-16" or not starts_a_utf8_sequence(text.encode(encoding))
        )
    )
    data = encoded(text, encoding, draw(st.sampled_from(["le", "be"])))
    gz = draw(st.booleans())
    sizes = st.lists(st.integers(1, 3 * READ_SIZE), min_size=1, max_size=5)
    return encoding, gzip.compress(data) if gz else data, gz, draw(sizes), draw(sizes)


@settings(max_examples=200, deadline=None)
@given(files())
def test_any_text_in_any_encoding_reads_as_its_utf8(case):
    encoding, data, gz, source_sizes, read_sizes = case
    text = (gzip.decompress(data) if gz else data).decode(encoding)

    stream = text_stream(Trickle(data, source_sizes), gzip=gz, encoding=encoding, max_decompressed_bytes=LIMIT)

    assert read_all(stream, iter(read_sizes * 10_000)) == text.encode("utf-8")


# --- skipping --------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(files(), st.data())
def test_skipping_then_reading_reads_the_rest(case, data):
    encoding, raw, gz, source_sizes, read_sizes = case
    whole = decoded(raw, encoding, gz=gz)
    count = data.draw(st.integers(0, len(whole)))

    stream = text_stream(Trickle(raw, source_sizes), gzip=gz, encoding=encoding, max_decompressed_bytes=LIMIT)

    assert read_all(skipped(stream, count), iter(read_sizes * 10_000)) == whole[count:]


def test_skipping_past_the_end_says_the_file_changed():
    stream = text_stream(
        io.BytesIO(gzip.compress(b"name\n" * 100)), gzip=True, encoding="utf-8", max_decompressed_bytes=LIMIT
    )

    with pytest.raises(FileProblem) as raised:
        skipped(stream, 501)

    assert str(raised.value) == (
        "the file's text ends after 500 bytes, before byte offset 501 where this invocation resumes: the file or"
        " csv-ingest:schema.format.encoding changed while it was read; upload it again"
    )


def test_skipping_reads_in_bounded_blocks():
    reads: list[int] = []

    class Recorded(io.BytesIO):
        def read(self, n: int = -1) -> bytes:
            piece = super().read(n)
            reads.append(len(piece))
            return piece

    skipped(Recorded(b"x" * (5 << 20)), 5 << 20)

    assert max(reads) <= 1 << 20 and sum(reads) == 5 << 20


def test_a_gzip_file_resumes_at_a_record_boundary_as_the_first_read_saw_it():
    data = ROWS.encode()
    records = list(iter_records(io.BytesIO(data)))
    middle = records[len(records) // 2]

    def layers() -> ByteStream:
        return text_stream(io.BytesIO(gzip.compress(data)), gzip=True, encoding="utf-8", max_decompressed_bytes=LIMIT)

    resumed = iter_records(skipped(layers(), middle.end_offset), middle.end_offset, middle.end_line)

    assert list(resumed) == records[len(records) // 2 + 1 :]
