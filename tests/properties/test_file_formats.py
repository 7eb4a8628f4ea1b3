"""The same rows, whatever file they come in: written with each delimiter (comma, semicolon, tab,
pipe), in each encoding a stack may declare (UTF-8 with or without its BOM, cp1252, latin-1, UTF-16
with its BOM in either byte order), gzipped or not, a file must give what the plain UTF-8 comma
file of those rows gives: the same rows in the same chunks, the same counts, the same rejected rows
with their lines, reasons and cells.

Each file goes through the whole producer (`ingest_in_segments`: both passes, invocation after
invocation from each checkpoint, so that a gzip or transcoded file is also resumed by reading it
again from its first byte), with the stack's encoding set to the file's and its delimiter detected
from the header line or fixed by the stack. The reference is the plain file, not the code under
test; and the rows it holds are checked against how they were drawn, so that "the same" is not
"equally wrong".

A character an encoding cannot hold (€ in latin-1, 😀 in either Windows encoding) is written there
as `?`, and that encoding's files are compared with the plain file of the rows so written.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from handlers.common.chunks import Row, decode
from handlers.common.schema import DEFAULT_SCHEMA, DELIMITERS, Format
from tests.evidence import Proof
from tests.handlers.test_producer_blocks import ingest_in_segments
from tests.handlers.test_producer_formats import bound_segments


@dataclass(frozen=True)
class Encoding:
    """How a file's text becomes its bytes, and what the stack declares to read it."""

    declared: str
    """The stack's `csv-ingest:schema.format.encoding`."""
    codec: str
    bom: bytes = b""

    def holds(self, text: str) -> str:
        """`text` with each character this encoding has no bytes for written as `?`."""
        return "".join(c if _encodable(c, self.codec) else "?" for c in text)

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.codec)


def _encodable(character: str, codec: str) -> bool:
    try:
        character.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


ENCODINGS = {
    "UTF-8": Encoding("utf-8", "utf-8"),
    "UTF-8 with BOM": Encoding("utf-8", "utf-8", codecs.BOM_UTF8),
    "cp1252": Encoding("cp1252", "cp1252"),
    "latin-1": Encoding("latin-1", "latin-1"),
    "UTF-16 LE with BOM": Encoding("utf-16", "utf-16-le", codecs.BOM_UTF16_LE),
    "UTF-16 BE with BOM": Encoding("utf-16", "utf-16-be", codecs.BOM_UTF16_BE),
}
FILES_PER_EXAMPLE = len(ENCODINGS) * len(DELIMITERS) * 2  # gzipped or not

PROOFS = [
    SAME_ROWS := Proof(
        "RELIABILITY",
        "Properties",
        "Producer: the same rows from every delimiter, encoding and compression",
        injected="files of 0–30 rows (valid under any of the default schema's header spellings; blank; rejected for"
        " width, name, mail or phone) whose cells hold é, ß, €, 😀, U+0080, U+0085, quotes, the four delimiters"
        " and line ends, each written by csv.writer with comma, semicolon, tab and pipe, encoded in UTF-8 with and"
        " without BOM, cp1252, latin-1 and UTF-16 (LE and BE, with BOM), gzipped or not: 48 files per example, the"
        " delimiter detected or fixed by the stack, in one invocation or a chain of short ones",
        held="every file gives the plain UTF-8 comma file's chunks (the same rows, numbered alike), counts, checkpoint"
        " rows and rejects report (row, line, reason, cells), those rows being the ones drawn; the job's format names"
        " the file's delimiter, encoding, compression and whether the delimiter was detected",
        figures={"examples": 30, "files": 30 * FILES_PER_EXAMPLE},
        test="test_the_same_rows_give_the_same_chunks_from_every_delimiter_and_encoding",
    ),
]

HEADER_SPELLINGS = {
    "name": ["name", "Name", "Full Name"],
    "mail": ["mail", "email", "E-mail", "e_mail", "Email Address"],
    "phone": ["phone", "Phone Number"],
}
# Cell text: what Windows exports hold (é, ß, €), what only UTF-8 and UTF-16 hold (😀, a surrogate
# pair in UTF-16), what latin-1 reads where cp1252 reads € and … (the C1 controls U+0080 and U+0085,
# the latter a line break to `str.splitlines`, never to CSV), and what CSV must quote: quotes, every
# delimiter, line ends.
_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        " ",
        "é",
        "ü",
        "ß",
        "Å",
        "©",
        "½",
        "€",
        "😀",
        "\x80",
        "\x85",
        '"',
        "\r\n",
        "\n",
        *DELIMITERS.values(),
    ]
)
text = st.lists(_PIECES, max_size=10).map("".join)
names = st.builds(lambda first, rest: first + rest, st.sampled_from(["Zoë", "José", "Ann", "Jürgen", "€va"]), text)
KINDS = ["valid", "valid", "valid", "blank", "width", "empty name", "bad mail", "bad phone"]


@dataclass
class Drawn:
    """The records of a file (header first), and what the producer must make of them."""

    records: list[list[str]]
    mails: list[str]
    """The valid rows' mails, normalised, in file order."""
    rejected: list[int]
    """The rejected rows' numbers."""
    blank: int
    line_end: str
    quoting: int


@st.composite
def drawn_files(draw: st.DrawFn) -> Drawn:
    columns = ["name", "mail"] + (["phone"] if draw(st.booleans()) else []) + (["notes"] if draw(st.booleans()) else [])
    columns = draw(st.permutations(columns))
    header = [draw(st.sampled_from(HEADER_SPELLINGS.get(c, [c]))) for c in columns]
    records, mails, rejected, blank = [header], [], [], 0
    count = draw(st.integers(0, 30))
    for kind in draw(st.lists(st.sampled_from(KINDS), min_size=count, max_size=count)):
        if kind == "bad phone" and "phone" not in columns:
            kind = "bad mail"
        local = draw(st.sampled_from(["ann", "j.doe", "x+tag"]))
        cells = {
            "name": draw(names),
            "mail": draw(st.sampled_from([f"{local}{len(records)}@example.com", f" {local.upper()}@B.io "])),
            "phone": draw(st.sampled_from(["", "+44 7700 900123", "0201-234-567"])),
            "notes": draw(text),
        }
        if kind == "empty name":
            cells["name"] = draw(st.sampled_from(["", " ", "\t"]))
        elif kind == "bad mail":
            cells["mail"] = draw(st.sampled_from(["not-an-email", "ann at example.com", "é@"]))
        elif kind == "bad phone":
            cells["phone"] = draw(st.sampled_from(["12345", "1-800-FLOWERS"]))
        record = [cells[c] for c in columns]
        if kind == "width":
            record.append(draw(text))
        elif kind == "blank":
            record = draw(st.sampled_from([[], [""] * len(columns)]))
        records.append(record)
        rows = len(records) - 1 - blank
        if kind == "blank":
            blank += 1
        elif kind == "valid":
            mails.append(cells["mail"].strip().lower())
        else:
            rejected.append(rows)
    line_end = draw(st.sampled_from(["\r\n", "\n"]))
    # csv.writer leaves a CR unquoted when the line end has none: quote every cell then.
    needs_all = line_end == "\n" and any("\r" in cell for record in records for cell in record)
    quoting = csv.QUOTE_ALL if needs_all else draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    return Drawn(records, mails, rejected, blank, line_end, quoting)


def written(drawn: Drawn, encoding: Encoding, delimiter: str) -> str:
    """The file's text as `csv.writer` writes it with `delimiter`, in what `encoding` holds."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=drawn.line_end, quoting=drawn.quoting)
    writer.writerows([[encoding.holds(cell) for cell in record] for record in drawn.records])
    return out.getvalue()


def outcome(run: dict[str, Any]) -> dict[str, Any]:
    """What a run made of a file, whatever its format: the rows of each chunk by number, the
    counts, the checkpoints without their byte offsets (a quoted cell is longer with one delimiter
    than with another; a BOM is three bytes), and every rejects report row (row, line, reason, cells)."""
    chunks = {chunk.chunk: chunk.rows for chunk in map(decode, run["chunks"].values())}
    summary = {k: v for k, v in run["summary"].items() if k not in ("format", "checkpoint")}
    offsets = ("offset", "data_offset", "format")
    checkpoints = [{k: v for k, v in cp.items() if k not in offsets} for cp in run["checkpoints"]]
    reported = [row for part in run["reports"] for row in list(csv.reader(io.StringIO(part.decode())))[1:]]
    return {"chunks": chunks, "summary": summary, "checkpoints": checkpoints, "reported": reported}


def sent_rows(chunks: dict[int, tuple[Row, ...]]) -> list[Row]:
    return [row for number in sorted(chunks) for row in chunks[number]]


def test_the_same_rows_give_the_same_chunks_from_every_delimiter_and_encoding(examples, monkeypatch):
    bound_segments(monkeypatch, 100)  # a file of 30 rows takes at most about 20
    files = chained = 0

    @given(
        drawn=drawn_files(),
        fixed=st.lists(st.booleans(), min_size=FILES_PER_EXAMPLE, max_size=FILES_PER_EXAMPLE),
        rows_per_message=st.integers(1, 8),
        # 0: one invocation; otherwise each look at the clock costs this much of a 100 s invocation,
        # whose time runs low after four (20 s) or thirteen (6 s) looks: a chain of segments.
        clock_step_ms=st.sampled_from([0, 6_000, 20_000]),
    )
    def same_rows(drawn: Drawn, fixed: list[bool], rows_per_message: int, clock_step_ms: int) -> None:
        nonlocal files, chained
        references: dict[bytes, dict[str, Any]] = {}
        choices = iter(fixed)
        for name, encoding in ENCODINGS.items():
            plain = written(drawn, encoding, DELIMITERS["comma"]).encode()
            if plain not in references:
                reference = outcome(ingest_in_segments(plain, rows_per_message, clock_step_ms))
                # The plain file's outcome is the drawn rows': it is the reference, not the code's word.
                assert [row.values[1] for row in sent_rows(reference["chunks"])] == drawn.mails, name
                assert [int(reported[0]) for reported in reference["reported"]] == drawn.rejected, name
                assert reference["summary"]["blankLines"] == drawn.blank, name
                references[plain] = reference
            expected = references[plain]
            for delimiter_name, delimiter in DELIMITERS.items():
                data = encoding.encode(written(drawn, encoding, delimiter))
                for gzipped in (False, True):
                    stack_fixes = next(choices)
                    fmt = Format(delimiter=delimiter if stack_fixes else None, encoding=encoding.declared)
                    run = ingest_in_segments(
                        gzip.compress(data, mtime=0) if gzipped else data,
                        rows_per_message,
                        clock_step_ms,
                        dataclasses.replace(DEFAULT_SCHEMA, format=fmt),
                        key="uploads/users.csv.gz" if gzipped else "uploads/users.csv",
                    )
                    variant = f"{delimiter_name}, {name}, {'gzip' if gzipped else 'plain'}"
                    assert outcome(run) == expected, variant
                    assert run["summary"]["format"] == {
                        "gzip": gzipped,
                        "encoding": encoding.declared,
                        "delimiter": delimiter_name,
                        "detected": not stack_fixes,
                    }, variant
                    files += 1
                    chained += len(run["checkpoints"]) > 2  # more than one invocation in a pass

    assert examples(same_rows, SAME_ROWS) == SAME_ROWS.figures["examples"]
    assert files == SAME_ROWS.figures["files"]
    assert chained > files / 4, "a quarter of the files at least were resumed from checkpoints"
