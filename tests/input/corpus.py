"""The bad-input corpus and what each file must end as: the one place holding the expected outcomes.

Every outcome is written from the README's rules ("How a file is ingested", steps 1–2, and "Data
formats", CSV rules), not from what the code does: a file-level problem fails the job before a row is
sent, a row breaking a field rule is rejected with the rule as its reason, every other row is written
(emails trimmed and lower-cased, phones stripped of separators, later rows of an email winning).

Small files are committed under `tests/corpus/`; big ones are made at test time by the generators
below. Each file's rows use an e-mail domain of their own, so the users table can be checked per file.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MIB = 1024 * 1024
# The record limit and the field rules, as the README states them (not imported from the handlers:
# the corpus checks the code against the rules).
RECORD_LIMIT = 1_048_576
NOT_READ = f"records over {RECORD_LIMIT} bytes are not read"
BAD_EMAIL = "mail is not a valid email address (local@dotted.domain)"
BAD_PHONE = "phone is not an optional '+' and 6 to 15 digits"
EMPTY_NAME = "name is empty"


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

    def body(self) -> bytes:
        return self.generate() if self.generate else (CORPUS / self.name).read_bytes()


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


# -- the corpus -------------------------------------------------------------------------------------

EMPTY, ENCODING, QUOTING, SHAPE, FIELDS, SIZE, NOT_CSV, KEYS = (
    "Empty files and blank lines",
    "Encodings and line endings",
    "Quoting",
    "Header and row shape",
    "Field rules",
    "Size",
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
    failed("latin1.csv", ENCODING, "latin1.example.com", "not UTF-8: byte 0xeb at byte offset 18 (line 2)"),
    failed("utf16.csv", ENCODING, "utf16.example.com", "NUL byte at byte offset 3 (line 1)"),
    failed("nul_byte.csv", ENCODING, "nul.example.com", "NUL byte at byte offset 54 (line 3)"),
    # The bad byte comes after two good rows: the whole file fails, and neither row is written.
    failed(
        "invalid_utf8_late.csv", ENCODING, "late-utf8.example.com", "not UTF-8: byte 0xe9 at byte offset 106 (line 4)"
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
    # Files that are not CSV
    failed("json_as_csv.csv", NOT_CSV, "json.example.com", "incomplete header: missing name and mail column(s)"),
    failed("html_as_csv.csv", NOT_CSV, "html.example.com", "incomplete header: missing name and mail column(s)"),
    failed("zip_as_csv.csv", NOT_CSV, "zip.example.com", "NUL byte at byte offset 5 (line 1)"),
    failed("xlsx_like_zip_header.csv", NOT_CSV, "xlsx.example.com", "NUL byte at byte offset 4 (line 1)"),
    failed("png_as_csv.csv", NOT_CSV, "png.example.com", "not UTF-8: byte 0x89 at byte offset 0 (line 1)"),
    failed("pdf_as_csv.csv", NOT_CSV, "pdf.example.com", "incomplete header: missing name and mail column(s)"),
    failed("gzip_as_csv.csv", NOT_CSV, "gzip.example.com", "NUL byte at byte offset 3 (line 1)"),
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
        "suffix .csv.gz",
        KEYS,
        "suffix-gz.example.com",
        None,
        key="corpus/users.csv.gz",
        generate=small_valid("suffix-gz.example.com"),
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


def groups() -> dict[str, list[Case]]:
    found: dict[str, list[Case]] = {}
    for case in CASES:
        found.setdefault(case.group, []).append(case)
    return found


# -- personal data: the cells a log line must never hold ----------------------------------------------

READ_COLUMNS = {"name", "mail", "email", "phone"}
_PHONE_LIKE = re.compile(r"[0-9+\s\-.()]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")
MIN_SEARCHED_LENGTH = 6  # shorter values ("Ada", "12345") occur in any text by chance


def searched_body(case: Case, body: bytes) -> bytes:
    """The part of a file whose cells the personal-data search looks for (see `Case.search_every`)."""
    if case.search_every == 1:
        return body
    lines = body.splitlines(keepends=True)
    return b"".join([lines[0], *lines[1 :: case.search_every], lines[-1]])


def personal_values(bodies: Iterable[bytes], read_columns: Collection[str] = READ_COLUMNS) -> set[str]:
    """Every distinct cell of the files' data rows — the read columns (`read_columns`, lower-cased: the
    default schema's name, mail, phone) and the ignored ones alike — as sent and as stored (trimmed,
    lower-cased e-mail, phone digits), of at least `MIN_SEARCHED_LENGTH` characters.

    A file whose first row names none of the read columns has no header: all its rows are data.
    Bytes that are not UTF-8 are decoded with replacement, so a failed file's rows are searched too.
    """
    values: set[str] = set()
    for body in bodies:
        rows = _rows(body)
        if not rows:
            continue
        names = {cell.strip().lower().lstrip("\ufeff") for cell in rows[0]}
        for row in rows[1:] if names & set(read_columns) else rows:
            for cell in row:
                values.update(_forms(cell))
    return {v for v in values if len(v) >= MIN_SEARCHED_LENGTH}


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
