"""The bad-input corpus and what each file must end as: the one place holding the expected outcomes.

Every outcome is written from the README's rules ("How a file is ingested", steps 1–2, and "Data
formats", CSV rules), not from what the code does: a file-level problem fails the job before a row is
sent, a row breaking a field rule is rejected with the rule as its reason, every other row is written
(emails trimmed and lower-cased, phones stripped of separators, later rows of an email winning).

A file is read as its key and the stack say (README "CSV rules"): a key ending `.gz` is gunzipped, one
ending `.tsv` or `.tsv.gz` is tab-delimited, any other file's delimiter is detected from its header
line, and its encoding is the stack's (`csv-ingest:schema.format.encoding`, UTF-8 by default). An
ingested file's job says so in its `format`, checked for every case.

Small files are committed under `tests/corpus/`; big ones, and gzip files, are made at test time by
the generators below. Each file's rows use an e-mail domain of their own, so the users table can be
checked per file. `CASES` are uploaded to a default stack (`tests/input/test_corpus.py`);
`CP1252_CASES` and `UTF16_CASES` to stacks declaring that encoding (`tests/input/test_format_corpus.py`).
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MIB = 1024 * 1024
# The record limit and the field rules, as the README states them (not imported from the handlers:
# the corpus checks the code against the rules).
RECORD_LIMIT = 1_048_576
NOT_READ = f"records over {RECORD_LIMIT} bytes are not read"
BAD_EMAIL = "mail is not a valid email address (local@dotted.domain)"
BAD_PHONE = "phone is not an optional '+' and 6 to 15 digits"
EMPTY_NAME = "name is empty"
# The settings a file's message must name when they are what fixes it.
ENCODING_SETTING = "csv-ingest:schema.format.encoding"
DELIMITER_SETTING = "csv-ingest:schema.format.delimiter"
MAX_DECOMPRESSED_SETTING = "csv-ingest:maxDecompressedBytes"
# The delimiters by the names a stack and a job's `format` give them.
DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}
# The corpus stack's `maxDecompressedBytes` (`test_corpus.py` sets it): above the million-row gzip
# file's text, below what the bomb inflates to, so both are decided by it.
MAX_DECOMPRESSED_BYTES = 64 * MIB
# Every gzip member starts with these two bytes (RFC 1952, section 2.3.1: ID1, ID2).
GZIP_MAGIC = b"\x1f\x8b"


def cp1252_hint(byte: int, offset: int, line: int) -> str:
    """What a UTF-8 stack says of a byte that is a character in cp1252: where it is, and the setting."""
    return (
        f"byte 0x{byte:02x} at byte offset {offset} (line {line}) is not valid UTF-8; it is a character in cp1252"
        f" (Windows-1252), the encoding of most Windows exports: if the file is one, set {ENCODING_SETTING} to cp1252"
    )


def fields_reason(got: int, width: int) -> str:
    return f"has {got} fields; the header has {width}"


User = tuple[str, str | None]
"""A stored user as (name, phone)."""


@dataclass(frozen=True)
class Case:
    """One corpus file, where it is uploaded, and the outcome the rules give it."""

    name: str
    group: str
    domain: str
    """The e-mail domain of its rows: the users table is checked for exactly `users` under it."""
    status: str | None
    """The job's final status; None when the upload must not start a job at all."""
    rows: tuple[int, int, int] = (0, 0, 0)
    """(rowsTotal, rowsValid, rowsRejected)."""
    blank_lines: int = 0
    rejects: tuple[tuple[int, int, str], ...] = ()
    """(row, line, reason) of each rejected row, from the rejects report."""
    error: str = ""
    """Text the `error` of a FAILED job must contain (the rule, never a cell)."""
    users: Mapping[str, User] = field(default_factory=dict)
    extra_columns: tuple[str, ...] = ()
    key: str = ""
    """The key under the uploads prefix (default: `corpus/<name>` + the stack's suffix); absolute
    when `outside` is set."""
    outside: bool = False
    """The key is used as is (not under the uploads prefix)."""
    report_cells: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """Rejected rows whose report cells (name, mail[, phone]) are checked exactly, by row."""
    generate: Callable[[], bytes] | None = None
    search_every: int = 1
    """For the personal-data search, one data row in this many (and the last) of a generated file
    whose rows all share one shape: searching 400,000 near-identical values adds nothing."""
    delimiter: str = "comma"
    """The file's delimiter, by name: the job's `format.delimiter`, and how its cells are searched."""
    detected: bool = True
    """Whether the delimiter is detected from the header line (the job's `format.detected`): not for a
    `.tsv` key, whose delimiter is tab."""
    encoding: str = "utf-8"
    """How the file is read: the stack's encoding for an ingested file (the job's `format.encoding`);
    for a file that fails, its own encoding, which its cells are searched in."""

    def body(self) -> bytes:
        return self.generate() if self.generate else (CORPUS / self.name).read_bytes()

    @property
    def gzip(self) -> bool:
        """A key ending `.gz` is gunzipped (README "CSV rules")."""
        return self.name.endswith(".gz")

    def job_format(self) -> dict[str, Any]:
        """The `format` the job of an ingested file must report."""
        return {"gzip": self.gzip, "encoding": self.encoding, "delimiter": self.delimiter, "detected": self.detected}


def failed(name: str, group: str, domain: str, error: str, **extra: object) -> Case:
    """A file that must fail as a whole, before any row is sent (so no user of its domain exists)."""
    return Case(name, group, domain, "FAILED", error=error, **extra)  # type: ignore[arg-type]


# -- generated files (big, or shaped by a number) -----------------------------------------------------


def _lines(*lines: str) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def wide_header() -> bytes:
    """513 columns: one more than a header may have."""
    return _lines(",".join(["name", "mail", *(f"c{i}" for i in range(3, 514))]), "Ada Wide," + "ada@wide.example.com")


HUGE_IGNORED = 900_000
OVERSIZED_CELL = 2 * MIB
HUGE_NAME = 300_000


def huge_field_ignored() -> bytes:
    """A 900,000-character cell in an ignored column: under the record limit, so the row is fine."""
    return _lines(
        "name,mail,notes",
        f"Ada Hugenote,ada@huge-ignored.example.com,{'n' * HUGE_IGNORED}",
        "Grace Hugenote,grace@huge-ignored.example.com,short",
    )


def oversized_record_line() -> str:
    return f"Ada Oversize,ada@oversized.example.com,{'o' * OVERSIZED_CELL}"


def huge_fields() -> bytes:
    """A record over 1 MiB (rejected unread), a 300,000-character name (rejected, cut in the report),
    then a valid row: neither big row stops the file."""
    return _lines(
        "name,mail,notes",
        oversized_record_line(),
        f"{'H' * HUGE_NAME},hugename@oversized.example.com,",
        "Grace Oversize,grace@oversized.example.com,fine",
    )


LONG_LINE_FIELDS = 50_000


def very_long_line() -> bytes:
    """One physical line of 50,000 fields (about 100 KB), then a valid row."""
    return _lines(
        "name,mail,phone",
        ",".join(["Ada Longline", "ada@long-line.example.com", *(["x"] * (LONG_LINE_FIELDS - 2))]),
        "Grace Longline,grace@long-line.example.com,",
    )


ONE_EMAIL_ROWS = 200_000


def one_email_many_rows() -> bytes:
    """`ONE_EMAIL_ROWS` rows of one e-mail, in changing case: one user, the last row's."""
    body = io.StringIO()
    body.write("name,mail,phone\n")
    for n in range(1, ONE_EMAIL_ROWS + 1):
        body.write(f"Person {n},{'Same' if n % 2 else 'same'}@one-email.example.com,+44 7700 {n:06d}\n")
    return body.getvalue().encode()


def small_valid(domain: str) -> Callable[[], bytes]:
    """A two-row valid file of `domain` (for the key and trigger cases, where the body is not the point)."""
    return lambda: _lines("name,mail,phone", f"Ada Keyed,ada@{domain},", f"Grace Keyed,grace@{domain},+44 20 7946 0099")


def _small_valid_users(domain: str) -> dict[str, User]:
    return {f"ada@{domain}": ("Ada Keyed", None), f"grace@{domain}": ("Grace Keyed", "+442079460099")}


# -- gzip files, made at test time (gzip's header holds a time: mtime=0 keeps them the same bytes) -----


def _gzip(text: bytes) -> bytes:
    return gzip.compress(text, mtime=0)


GZIP_ROWS = 1_000_000
GZIP_EMAILS = 5


def _million_row(n: int) -> str:
    return f"Person {n},person{n % GZIP_EMAILS}@gzip-million.example.com,+44 7700 {n:07d}"


@cache
def million_rows_text() -> bytes:
    """`GZIP_ROWS` rows cycling through `GZIP_EMAILS` e-mails (so the worker writes little): about 58 MB."""
    body = io.StringIO()
    body.write("name,mail,phone\n")
    for n in range(1, GZIP_ROWS + 1):
        body.write(_million_row(n) + "\n")
    return body.getvalue().encode()


@cache
def million_rows_gzip() -> bytes:
    """The million rows gzip-compressed: about 5 MB."""
    return _gzip(million_rows_text())


def _million_users() -> dict[str, User]:
    """Each e-mail's last row wins: rows GZIP_ROWS - 4 … GZIP_ROWS."""
    users: dict[str, User] = {}
    for n in range(GZIP_ROWS - GZIP_EMAILS + 1, GZIP_ROWS + 1):
        name, mail, phone = _million_row(n).split(",")
        users[mail] = (name, re.sub(r"\s", "", phone))
    return users


TRUNCATED_ROWS = 2_000


@cache
def truncated_gzip() -> bytes:
    """A gzip file of 2,000 rows cut at half its compressed bytes, as an interrupted download leaves it."""
    rows = [f"Person {n} Cut,person{n}@gzip-truncated.example.com,+44 20 7946 {n:04d}" for n in range(1, 2001)]
    whole = _gzip(_lines("name,mail,phone", *rows))
    return whole[: len(whole) // 2]


BOMB_BLANK_BYTES = 2 * MAX_DECOMPRESSED_BYTES


@cache
def gzip_bomb() -> bytes:
    """A header, one valid row, then `BOMB_BLANK_BYTES` of blank lines, deflated at level 9 (about
    1,000:1): a small upload that inflates past the stack's `maxDecompressedBytes`."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16 +: a gzip header and trailer
    parts = [deflate.compress(_lines("name,mail,phone", "Ada Bomb,ada@gzip-bomb.example.com,"))]
    blank = b"\n" * MIB
    parts += [deflate.compress(blank) for _ in range(BOMB_BLANK_BYTES // MIB)]
    return b"".join([*parts, deflate.flush()])


def tab_gzip_members() -> bytes:
    """A tab file in two gzip members one after the other, as `cat a.gz b.gz` or `pigz` write one."""
    first = _lines("name\tmail\tphone", "Ada Members\tada@gzip-members.example.com\t+44 20 7946 0106")
    return _gzip(first) + _gzip(_lines("Grace, Members\tgrace@gzip-members.example.com\t"))


def cp1252_gzip() -> bytes:
    """A cp1252 file (é, €) gzip-compressed: read through both layers."""
    rows = (
        "name,mail,phone",
        "Hélène Gzipée,helene@cp1252-gzip.example.com,",
        "Noé €-Gzip,noe@cp1252-gzip.example.com,",
    )
    return _gzip(_lines(*rows).decode().encode("cp1252"))


# -- the corpus -------------------------------------------------------------------------------------

EMPTY, ENCODING, DELIMITER, QUOTING, SHAPE, SPELLING, FIELDS, SIZE, COMPRESSION, NOT_CSV, KEYS = (
    "Empty files and blank lines",
    "Encodings and line endings",
    "Delimiters",
    "Quoting",
    "Header and row shape",
    "Header spellings",
    "Field rules",
    "Size",
    "Compression",
    "Files that are not CSV",
    "Keys and triggers",
)

CASES: tuple[Case, ...] = (
    # Empty files and blank lines
    failed("empty.csv", EMPTY, "empty.example.com", "empty file: no header row"),
    Case("header_only.csv", EMPTY, "header-only.example.com", "COMPLETE"),
    Case("header_only_no_newline.csv", EMPTY, "header-only.example.com", "COMPLETE"),
    failed("blank_lines_only.csv", EMPTY, "blank-only.example.com", "empty file: no header row"),
    # Blank lines before the header count too: the rule says blank lines, wherever they are.
    Case(
        "blank_lines_before_header.csv",
        EMPTY,
        "lead-blank.example.com",
        "COMPLETE",
        (1, 1, 0),
        blank_lines=2,
        users={"ada@lead-blank.example.com": ("Ada Leadblank", None)},
    ),
    Case(
        "blank_lines_between_rows.csv",
        EMPTY,
        "blank-lines.example.com",
        "COMPLETE",
        (2, 2, 0),
        blank_lines=4,
        users={
            "ada@blank-lines.example.com": ("Ada Blankline", "+442079460001"),
            "grace@blank-lines.example.com": ("Grace Blankline", None),
        },
    ),
    # Encodings and line endings
    Case(
        "bom.csv",
        ENCODING,
        "bom.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@bom.example.com": ("Ada Bomfield", "+442079460002")},
    ),
    Case(
        "crlf.csv",
        ENCODING,
        "crlf.example.com",
        "COMPLETE",
        (2, 2, 0),
        users={
            "ada@crlf.example.com": ("Ada Crlfson", "+442079460003"),
            "grace@crlf.example.com": ("Grace Crlfson", None),
        },
    ),
    Case(
        "mixed_line_endings.csv",
        ENCODING,
        "mixed-endings.example.com",
        "COMPLETE",
        (3, 3, 0),
        users={
            "ada@mixed-endings.example.com": ("Ada Mixedend", "+442079460004"),
            "grace@mixed-endings.example.com": ("Grace Mixedend", "+442079460005"),
            "alan@mixed-endings.example.com": ("Alan Mixedend", None),
        },
    ),
    # A lone CR ends a line (old Mac tools), as csv.reader reads a file opened with newline=''.
    Case(
        "bare_cr_line_endings.csv",
        ENCODING,
        "bare-cr.example.com",
        "COMPLETE",
        (2, 2, 0),
        users={
            "ada@bare-cr.example.com": ("Ada Barecr", None),
            "grace@bare-cr.example.com": ("Grace Barecr", None),
        },
    ),
    # Files of another encoding fail on a UTF-8 stack, naming the setting that reads them.
    failed("latin1.csv", ENCODING, "latin1.example.com", cp1252_hint(0xEB, 18, 2), encoding="latin-1"),
    failed("cp1252.csv", ENCODING, "cp1252.example.com", cp1252_hint(0xC9, 23, 2), encoding="cp1252"),
    failed(
        "utf16.csv",
        ENCODING,
        "utf16.example.com",
        f"it starts with a UTF-16 byte order mark; set {ENCODING_SETTING} to utf-16",
        encoding="utf-16",
    ),
    failed("nul_byte.csv", ENCODING, "nul.example.com", "NUL byte at byte offset 54 (line 3)"),
    # The bad byte comes after two good rows: the whole file fails, and neither row is written.
    failed(
        "invalid_utf8_late.csv", ENCODING, "late-utf8.example.com", "not UTF-8: byte 0xe9 at byte offset 106 (line 4)"
    ),
    # Delimiters: detected from the header line, where exactly one splits it into the schema's columns.
    # A European Excel export: BOM, CRLF, `;`, a quoted cell holding `;`, decimal commas in an ignored column.
    Case(
        "semicolon_excel.csv",
        DELIMITER,
        "semicolon.example.com",
        "COMPLETE",
        (2, 2, 0),
        extra_columns=("Balance",),
        users={
            "ada@semicolon.example.com": ("Lovelace; Ada", "+442079460101"),
            "grace@semicolon.example.com": ("Grace Semicolon", None),
        },
        delimiter="semicolon",
    ),
    # A `.tsv` key is tab-delimited, not detected; commas and semicolons in its cells are text.
    Case(
        "tab.tsv",
        DELIMITER,
        "tab-suffix.example.com",
        "COMPLETE",
        (2, 2, 0),
        extra_columns=("notes, misc",),
        users={
            "ada@tab-suffix.example.com": ("Lovelace, Ada Tab", "+442079460102"),
            "grace@tab-suffix.example.com": ("Grace Tabsuffix", None),
        },
        delimiter="tab",
        detected=False,
    ),
    Case(
        "tab_as_csv.csv",
        DELIMITER,
        "tab-detected.example.com",
        "COMPLETE",
        (2, 2, 0),
        users={
            "ada@tab-detected.example.com": ("Lovelace, Ada Tabbed", "+442079460103"),
            "grace@tab-detected.example.com": ("Grace Tabdetect", None),
        },
        delimiter="tab",
    ),
    Case(
        "pipe.csv",
        DELIMITER,
        "pipe.example.com",
        "COMPLETE",
        (2, 2, 0),
        users={
            "grace@pipe.example.com": ("Hopper, Grace; RADM|Ret.", "+15550109999"),
            "ada@pipe.example.com": ("Ada Pipeson", None),
        },
        delimiter="pipe",
    ),
    # Semicolon and pipe each split the header, neither into the schema's columns: the message gives
    # each delimiter's column count and the setting.
    failed(
        "no_delimiter_fits.csv",
        DELIMITER,
        "no-delimiter.example.com",
        "the header line splits into the schema's columns at none of the delimiters tried: semicolon gives 2"
        f" columns, pipe gives 2 columns (comma and tab: 1 column); set {DELIMITER_SETTING}",
    ),
    # Quoting
    Case(
        "quoted_commas.csv",
        QUOTING,
        "quoted-commas.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@quoted-commas.example.com": ("Lovelace, Ada Quoted", "+442079460006")},
    ),
    Case(
        "quoted_quotes.csv",
        QUOTING,
        "quoted-quotes.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@quoted-quotes.example.com": ('Ada "The Countess" Quoteson', None)},
    ),
    # Quoted newlines stay in the cell; `line` counts physical lines, so the third row starts on line 6.
    Case(
        "quoted_newlines.csv",
        QUOTING,
        "quoted-newlines.example.com",
        "COMPLETE_WITH_REJECTS",
        (3, 2, 1),
        rejects=((3, 6, EMPTY_NAME),),
        users={
            "ada@quoted-newlines.example.com": ("Ada\nNewlineson", None),
            "grace@quoted-newlines.example.com": ("Grace\r\nNewlineson", None),
        },
    ),
    failed("unbalanced_quote.csv", QUOTING, "unbalanced.example.com", "not CSV: unexpected end of data"),
    # A quote inside an unquoted field is an ordinary character (csv's excel dialect).
    Case(
        "quote_inside_unquoted.csv",
        QUOTING,
        "inner-quote.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@inner-quote.example.com": ('Ada "Ace" Innerquote', None)},
    ),
    failed("text_after_closing_quote.csv", QUOTING, "after-quote.example.com", "not CSV: ',' expected after '\"'"),
    # Header and row shape
    Case(
        "ragged_rows.csv",
        SHAPE,
        "ragged.example.com",
        "COMPLETE_WITH_REJECTS",
        (3, 1, 2),
        rejects=((1, 2, fields_reason(2, 3)), (2, 3, fields_reason(4, 3))),
        users={"alan@ragged.example.com": ("Alan Raggedy", "+442079460008")},
    ),
    failed("missing_mail_column.csv", SHAPE, "missing-mail.example.com", "incomplete header: missing mail column(s)"),
    failed("missing_name_column.csv", SHAPE, "missing-name.example.com", "incomplete header: missing name column(s)"),
    failed("no_header.csv", SHAPE, "no-header.example.com", "incomplete header: missing name and mail column(s)"),
    Case(
        "extra_columns.csv",
        SHAPE,
        "extra-columns.example.com",
        "COMPLETE",
        (2, 2, 0),
        extra_columns=("id", "notes"),
        users={
            "ada@extra-columns.example.com": ("Ada Extracol", "+442079460012"),
            "grace@extra-columns.example.com": ("Grace Extracol", None),
        },
    ),
    Case(
        "header_case_alias_spaces.csv",
        SHAPE,
        "header-alias.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@header-alias.example.com": ("Ada Aliasing", "+442079460013")},
    ),
    Case(
        "no_phone_column.csv",
        SHAPE,
        "no-phone.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@no-phone.example.com": ("Ada Phoneless", None)},
    ),
    failed("duplicate_name_header.csv", SHAPE, "dup-name.example.com", "header names the name column more than once"),
    failed("duplicate_mail_alias.csv", SHAPE, "dup-mail.example.com", "header names the mail column more than once"),
    Case(
        "duplicate_ignored_header.csv",
        SHAPE,
        "dup-notes.example.com",
        "COMPLETE",
        (1, 1, 0),
        extra_columns=("notes", "notes"),
        users={"ada@dup-notes.example.com": ("Ada Dupnotes", None)},
    ),
    failed("wide_header.csv", SHAPE, "wide.example.com", "header too wide: 513 columns", generate=wide_header),
    # Header spellings: the default schema's aliases, matched ignoring case, spaces, `-` and `_`.
    Case(
        "header_e_mail.csv",
        SPELLING,
        "e-mail.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@e-mail.example.com": ("Ada Emailhyphen", "+442079460105")},
    ),
    Case(
        "header_email_address.csv",
        SPELLING,
        "email-address.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"grace@email-address.example.com": ("Grace Emailaddress", None)},
    ),
    Case(
        "header_e_underscore_mail.csv",
        SPELLING,
        "e-underscore.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ken@e-underscore.example.com": ("Ken Underscore", "+15550102222")},
    ),
    # Field rules
    Case(
        "unicode_names.csv",
        FIELDS,
        "unicode.example.com",
        "COMPLETE",
        (5, 5, 0),
        users={
            "zoe@unicode.example.com": ("Zoë Ñúñez-Øster", None),
            "bruce@unicode.example.com": ("李小龍", None),
            "maryam@unicode.example.com": ("مريم الأحمد", None),
            "sokratis@unicode.example.com": ("Σωκράτης Παπαδόπουλος", None),
            "ada@unicode.example.com": ("Ada 🚀 Rocketeer", None),
        },
    ),
    # WHATWG's valid e-mail address is ASCII: an accented local part is rejected.
    Case(
        "unicode_email.csv",
        FIELDS,
        "unicode-mail.example.com",
        "COMPLETE_WITH_REJECTS",
        (2, 1, 1),
        rejects=((1, 2, BAD_EMAIL),),
        users={"ada@unicode-mail.example.com": ("Ada Unimail", None)},
    ),
    Case(
        "email_forms.csv",
        FIELDS,
        "email-forms.example.com",
        "COMPLETE_WITH_REJECTS",
        (8, 4, 4),
        rejects=((3, 4, BAD_EMAIL), (4, 5, BAD_EMAIL), (5, 6, BAD_EMAIL), (6, 7, BAD_EMAIL)),
        users={
            "ada+news@email-forms.example.com": ("Ada Tagged", None),
            "grace@email-forms.example.com": ("Grace Padded", None),
            "ken@email-forms.example.com": ("Ken Lower", None),
        },
    ),
    Case(
        "phones.csv",
        FIELDS,
        "phones.example.com",
        "COMPLETE_WITH_REJECTS",
        (7, 3, 4),
        rejects=((3, 4, BAD_PHONE), (4, 5, BAD_PHONE), (5, 6, BAD_PHONE), (7, 8, BAD_PHONE)),
        users={
            "ada@phones.example.com": ("Ada Phonesep", "+442079460958"),
            "grace@phones.example.com": ("Grace Phonedot", "+15550109999"),
            "donald@phones.example.com": ("Donald Phoneblank", None),
        },
    ),
    Case(
        "name_limits.csv",
        FIELDS,
        "name-limits.example.com",
        "COMPLETE_WITH_REJECTS",
        (5, 2, 3),
        rejects=(
            (2, 3, "name is 257 characters long; at most 256 allowed"),
            (3, 4, EMPTY_NAME),
            (4, 5, EMPTY_NAME),
        ),
        users={
            "max@name-limits.example.com": ("N" * 256, None),
            "padded@name-limits.example.com": ("Ada Padname", None),
        },
    ),
    Case(
        "email_limits.csv",
        FIELDS,
        "email-limits.example.com",
        "COMPLETE_WITH_REJECTS",
        (3, 1, 2),
        rejects=((2, 3, "mail is 255 characters long; at most 254 allowed"), (3, 4, "mail is empty")),
        users={f"{'a' * 229}@email-limits.example.com": ("Ada Longmail", None)},
    ),
    # A formula-looking name is a name (stored as sent); in the rejects report it is neutralised.
    Case(
        "formula_cells.csv",
        FIELDS,
        "formula.example.com",
        "COMPLETE_WITH_REJECTS",
        (4, 1, 3),
        rejects=((2, 3, BAD_EMAIL), (3, 4, BAD_EMAIL), (4, 5, BAD_EMAIL)),
        users={"formula-ok@formula.example.com": ('=HYPERLINK("http://evil.example")', None)},
        report_cells={
            2: ("'@SUM(A1:A9) Formulist", "formula-bad@formula", ""),
            3: ("'+Plus Formulist", "'-minus@@formula.example.com", ""),
            4: ("'\uff1dFullwidth Formulist", "fullwidth@formula", ""),
        },
    ),
    Case(
        "duplicate_emails_in_file.csv",
        FIELDS,
        "dup-rows.example.com",
        "COMPLETE",
        (4, 4, 0),
        users={"ada@dup-rows.example.com": ("Ada Third", None), "grace@dup-rows.example.com": ("Grace Only", None)},
    ),
    Case(
        "whitespace_and_trim.csv",
        FIELDS,
        "trim.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@trim.example.com": ("Ada Tabbed", "+442079460023")},
    ),
    # Size
    Case(
        "huge_field_ignored.csv",
        SIZE,
        "huge-ignored.example.com",
        "COMPLETE",
        (2, 2, 0),
        extra_columns=("notes",),
        users={
            "ada@huge-ignored.example.com": ("Ada Hugenote", None),
            "grace@huge-ignored.example.com": ("Grace Hugenote", None),
        },
        generate=huge_field_ignored,
    ),
    Case(
        "huge_fields.csv",
        SIZE,
        "oversized.example.com",
        "COMPLETE_WITH_REJECTS",
        (3, 1, 2),
        extra_columns=("notes",),
        rejects=(
            (1, 2, f"record is {len(oversized_record_line()) + 1} bytes long; {NOT_READ}"),
            (2, 3, f"name is {HUGE_NAME} characters long; at most 256 allowed"),
        ),
        users={"grace@oversized.example.com": ("Grace Oversize", None)},
        report_cells={
            1: ("", ""),
            2: (f"{'H' * 512}… [cut: {HUGE_NAME} characters]", "hugename@oversized.example.com"),
        },
        generate=huge_fields,
    ),
    Case(
        "very_long_line.csv",
        SIZE,
        "long-line.example.com",
        "COMPLETE_WITH_REJECTS",
        (2, 1, 1),
        rejects=((1, 2, fields_reason(LONG_LINE_FIELDS, 3)),),
        users={"grace@long-line.example.com": ("Grace Longline", None)},
        generate=very_long_line,
    ),
    Case(
        "one_email_many_rows.csv",
        SIZE,
        "one-email.example.com",
        "COMPLETE",
        (ONE_EMAIL_ROWS,) * 2 + (0,),
        users={"same@one-email.example.com": (f"Person {ONE_EMAIL_ROWS}", f"+447700{ONE_EMAIL_ROWS:06d}")},
        generate=one_email_many_rows,
        search_every=1000,
    ),
    # Compression: a `.gz` key is gunzipped as a stream; its decompressed size has a limit of its own.
    Case(
        "million_rows.csv.gz",
        COMPRESSION,
        "gzip-million.example.com",
        "COMPLETE",
        (GZIP_ROWS,) * 2 + (0,),
        users=_million_users(),
        generate=million_rows_gzip,
        search_every=100_000,
    ),
    failed(
        "truncated.csv.gz",
        COMPRESSION,
        "gzip-truncated.example.com",
        f"truncated gzip file: it ends after {len(truncated_gzip())} bytes, in the middle of its compressed data",
        generate=truncated_gzip,
        search_every=100,
    ),
    failed(
        "bomb.csv.gz",
        COMPRESSION,
        "gzip-bomb.example.com",
        f"the file decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes ({MAX_DECOMPRESSED_SETTING})",
        generate=gzip_bomb,
    ),
    # A `.csv.gz` key whose object is plain text (renamed, not compressed).
    failed(
        "not_gzip.csv.gz",
        COMPRESSION,
        "gzip-plain.example.com",
        "not gzip: the key ends in .gz but the object is not gzip-compressed data",
        generate=small_valid("gzip-plain.example.com"),
    ),
    Case(
        "members.tsv.gz",
        COMPRESSION,
        "gzip-members.example.com",
        "COMPLETE",
        (2, 2, 0),
        users={
            "ada@gzip-members.example.com": ("Ada Members", "+442079460106"),
            "grace@gzip-members.example.com": ("Grace, Members", None),
        },
        generate=tab_gzip_members,
        delimiter="tab",
        detected=False,
    ),
    # Files that are not CSV
    failed("json_as_csv.csv", NOT_CSV, "json.example.com", "incomplete header: missing name and mail column(s)"),
    failed("html_as_csv.csv", NOT_CSV, "html.example.com", "incomplete header: missing name and mail column(s)"),
    failed("zip_as_csv.csv", NOT_CSV, "zip.example.com", "NUL byte at byte offset 5 (line 1)"),
    failed("xlsx_like_zip_header.csv", NOT_CSV, "xlsx.example.com", "NUL byte at byte offset 4 (line 1)"),
    failed("png_as_csv.csv", NOT_CSV, "png.example.com", "not UTF-8: byte 0x89 at byte offset 0 (line 1)"),
    failed("pdf_as_csv.csv", NOT_CSV, "pdf.example.com", "incomplete header: missing name and mail column(s)"),
    failed("gzip_as_csv.csv", NOT_CSV, "gzip.example.com", "gzip data, not text: the file is gzip-compressed; upload"),
    # Keys and triggers: S3 events carry keys URL-encoded (`+` for a space); the job holds the real key.
    Case(
        "key with spaces",
        KEYS,
        "key-spaces.example.com",
        "COMPLETE",
        (2, 2, 0),
        key="corpus/key with spaces",
        users=_small_valid_users("key-spaces.example.com"),
        generate=small_valid("key-spaces.example.com"),
    ),
    Case(
        "key plus+sign",
        KEYS,
        "key-plus.example.com",
        "COMPLETE",
        (2, 2, 0),
        key="corpus/a+b = c&d%20e",
        users=_small_valid_users("key-plus.example.com"),
        generate=small_valid("key-plus.example.com"),
    ),
    Case(
        "key unicode",
        KEYS,
        "key-unicode.example.com",
        "COMPLETE",
        (2, 2, 0),
        key="corpus/données/ünï cødé",
        users=_small_valid_users("key-unicode.example.com"),
        generate=small_valid("key-unicode.example.com"),
    ),
    Case(
        "outside the prefix",
        KEYS,
        "outside.example.com",
        None,
        key="incoming/corpus/users",
        outside=True,
        generate=small_valid("outside.example.com"),
    ),
    Case(
        "suffix .txt",
        KEYS,
        "suffix-txt.example.com",
        None,
        key="corpus/users.txt",
        generate=small_valid("suffix-txt.example.com"),
    ),
    Case(
        # S3 matches the suffix as written: a spreadsheet's `.CSV` export must be renamed.
        "suffix .CSV",
        KEYS,
        "suffix-upper.example.com",
        None,
        key="corpus/users.CSV",
        generate=small_valid("suffix-upper.example.com"),
    ),
    Case(
        "suffix .csv.zip",
        KEYS,
        "suffix-zip.example.com",
        None,
        key="corpus/users.csv.zip",
        generate=small_valid("suffix-zip.example.com"),
    ),
    Case(
        "no suffix",
        KEYS,
        "suffix-none.example.com",
        None,
        key="corpus/users",
        generate=small_valid("suffix-none.example.com"),
    ),
)


# -- stacks declaring another encoding (`csv-ingest:schema.format.encoding`) -------------------------

CP1252_STACK, UTF16_STACK = "A cp1252 stack", "A UTF-16 stack"

CP1252_CASES: tuple[Case, ...] = (
    # What fails on a UTF-8 stack ingests here, é and € stored as Unicode.
    Case(
        "cp1252.csv",
        CP1252_STACK,
        "cp1252.example.com",
        "COMPLETE",
        (2, 2, 0),
        extra_columns=("notes",),
        users={
            "emile@cp1252.example.com": ("Émile Côté", "+33123456789"),
            "chloe@cp1252.example.com": ("Chloé €uroshop", None),
        },
        encoding="cp1252",
    ),
    # Latin-1's letters are cp1252's: a Latin-1 export reads the same.
    Case(
        "latin1.csv",
        CP1252_STACK,
        "latin1.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"zoe@latin1.example.com": ("Zoë Latinova", None)},
        encoding="cp1252",
    ),
    Case(
        "cp1252.csv.gz",
        CP1252_STACK,
        "cp1252-gzip.example.com",
        "COMPLETE",
        (2, 2, 0),
        users={
            "helene@cp1252-gzip.example.com": ("Hélène Gzipée", None),
            "noe@cp1252-gzip.example.com": ("Noé €-Gzip", None),
        },
        generate=cp1252_gzip,
        encoding="cp1252",
    ),
    # A UTF-8 file says it is one by its BOM: read as cp1252 it would be garbled, so it fails.
    failed(
        "bom.csv",
        CP1252_STACK,
        "bom.example.com",
        f"UTF-8, not cp1252: the file starts with the UTF-8 byte order mark"
        f" (EF BB BF); set {ENCODING_SETTING} to utf-8",
    ),
)

UTF16_CASES: tuple[Case, ...] = (
    Case(
        "utf16.csv",
        UTF16_STACK,
        "utf16.example.com",
        "COMPLETE",
        (1, 1, 0),
        users={"ada@utf16.example.com": ("Ada Sixteen", None)},
        encoding="utf-16",
    ),
    # Big-endian, CRLF, é and €.
    Case(
        "utf16_be.csv",
        UTF16_STACK,
        "utf16-be.example.com",
        "COMPLETE",
        (2, 2, 0),
        users={
            "emile@utf16-be.example.com": ("Émile Bigendian", "+33123456790"),
            "zoe@utf16-be.example.com": ("Zoë €uro-Sixteen", None),
        },
        encoding="utf-16",
    ),
    # UTF-16 must start with its byte order mark: a UTF-8 file does not.
    failed(
        "crlf.csv",
        UTF16_STACK,
        "crlf.example.com",
        f"not UTF-16 with a byte order mark: the stack reads files as utf-16 ({ENCODING_SETTING})",
    ),
)


def groups() -> dict[str, list[Case]]:
    found: dict[str, list[Case]] = {}
    for case in CASES:
        found.setdefault(case.group, []).append(case)
    return found


# -- personal data: the cells a log line must never hold ----------------------------------------------

READ_COLUMNS = {"name", "mail", "email", "phone", "full name", "email address", "phone number"}
_PHONE_LIKE = re.compile(r"[0-9+\s\-.()]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")
MIN_SEARCHED_LENGTH = 6  # shorter values ("Ada", "12345") occur in any text by chance


def searched_body(case: Case, body: bytes) -> bytes:
    """What the personal-data search reads of a file: its cells as UTF-8 comma-delimited CSV (gunzipped,
    decoded from its encoding, split at its delimiter), so they are searched as the stack stores
    them; of a generated file of one shape, one row in `Case.search_every`."""
    if case.gzip:
        body = _gunzipped(body)
    if case.encoding != "utf-8":
        body = body.decode(case.encoding, errors="replace").encode()
    if case.delimiter != "comma":
        body = _as_comma(body, DELIMITERS[case.delimiter])
    if case.search_every == 1:
        return body
    lines = body.splitlines(keepends=True)
    return b"".join([lines[0], *lines[1 :: case.search_every], lines[-1]])


def _gunzipped(body: bytes) -> bytes:
    """What the stack reads of a gzip file: every member, to the end of the data (a truncated file's
    first half), at most one byte past `MAX_DECOMPRESSED_BYTES`; runs of blank lines made one (a bomb
    is one cell and 128 MiB of them). An object that is not gzip is searched as it is."""
    if not body.startswith(GZIP_MAGIC):
        return body
    text, rest = b"", body
    while rest.startswith(GZIP_MAGIC) and len(text) <= MAX_DECOMPRESSED_BYTES:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        text += inflater.decompress(rest, MAX_DECOMPRESSED_BYTES + 1 - len(text))
        rest = inflater.unused_data
    return re.sub(rb"\n\n+", b"\n", text)


def _as_comma(body: bytes, delimiter: str) -> bytes:
    """The same cells, comma-delimited (a file that is not CSV with `delimiter` as it is)."""
    text = body.decode("utf-8", errors="replace")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        return body
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def personal_values(bodies: Iterable[bytes], read_columns: Collection[str] = READ_COLUMNS) -> set[str]:
    """Every distinct cell of the files' data rows — the read columns (`read_columns`: the default
    schema's name, mail, phone and their aliases) and the ignored ones alike — as sent and as stored
    (trimmed, lower-cased e-mail, phone digits), of at least `MIN_SEARCHED_LENGTH` characters.

    A file whose first row names none of the read columns (matched as the rules match a header cell)
    has no header: all its rows are data.
    Bytes that are not UTF-8 are decoded with replacement, so a failed file's rows are searched too.
    """
    values: set[str] = set()
    for body in bodies:
        rows = _rows(body)
        if not rows:
            continue
        names = {_spelling(cell.lstrip("\ufeff")) for cell in rows[0]}
        for row in rows[1:] if names & {_spelling(column) for column in read_columns} else rows:
            for cell in row:
                values.update(_forms(cell))
    return {v for v in values if len(v) >= MIN_SEARCHED_LENGTH}


def _spelling(cell: str) -> str:
    """A header cell as the rules match it: case, spaces, `-` and `_` ignored (`E-mail` is `email`)."""
    return re.sub(r"[\s\-_]", "", cell.lower())


def _rows(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8", errors="replace").replace("\x00", "")
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return [line.split(",") for line in text.splitlines()]


def _forms(cell: str) -> Iterator[str]:
    """A cell as sent, trimmed, lower-cased (e-mails are stored so) and as a phone's digits."""
    stripped = cell.strip()
    yield from (cell, stripped, stripped.lower())
    if _PHONE_LIKE.fullmatch(stripped):
        yield _PHONE_SEPARATORS.sub("", stripped)
