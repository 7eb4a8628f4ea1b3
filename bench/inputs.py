"""Benchmark inputs: CSV files generated from a seed, so every run reads the same bytes.

    python -m bench.inputs 100000 /tmp/users-100k.csv [--seed 7] [--distinct N] [--wide]

Two datasets, each a schema and the rows of its files:
- `USERS`, the default schema's: rows look like the sample (`tests/data/users.csv`), `name,mail,phone`.
- `WIDE`, a schema of 20 columns (`WIDE_SCHEMA_DECLARATION`: customer accounts as a CRM exports them),
  every type among them, a text key, optional columns left empty in some rows, a header that spells
  some columns by their aliases, and cells as people type them (mixed case, spaces in phone numbers,
  `yes`/`N`/`1` for booleans, times with offsets, quoted cells holding commas), so the producer
  normalises most of them as it would a real file's.

Every row is valid, in both (the benchmarks stop on a rejected one: their figures are for rows
written), and every key is distinct unless `distinct` caps how many there are (then later rows repeat
earlier keys: the latest wins). Nothing large is committed: benchmarks write their inputs into their
scratch folder.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from handlers.common.schema import DEFAULT_SCHEMA, Schema, parse_schema

SEED = 20261129
_FIRST = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia", "Tim")
_LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Dijkstra")
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")

Line = Callable[[random.Random, int], str]
"""One CSV line (no line ending) from the run's chooser and the number of its row's key."""


@dataclass(frozen=True)
class Dataset:
    """A schema and the seeded files of its benchmark cases."""

    schema: Schema
    header: str
    line: Line

    def rows(self, count: int, *, seed: int = SEED, distinct: int | None = None, first: int = 0) -> Iterator[str]:
        """`count` CSV lines (no header, no line ending): row i has key number `first` + i mod `distinct`
        (files made with `first` far enough apart share no key; their other cells are the same)."""
        chooser = random.Random(seed)
        for index in range(count):
            yield self.line(chooser, first + (index if distinct is None else index % distinct))

    def write_csv(self, path: Path, count: int, *, seed: int = SEED, distinct: int | None = None) -> Path:
        """Write a header and `count` rows to `path` (streamed: 5 million rows need no memory); returns it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write(self.header + "\n")
            batch: list[str] = []
            for line in self.rows(count, seed=seed, distinct=distinct):
                batch.append(line)
                if len(batch) == 10_000:
                    out.write("\n".join(batch) + "\n")
                    batch.clear()
            if batch:
                out.write("\n".join(batch) + "\n")
        return path

    def csv_bytes(self, count: int, *, seed: int = SEED, distinct: int | None = None, first: int = 0) -> bytes:
        """The same file in memory (for inputs that fit)."""
        lines = self.rows(count, seed=seed, distinct=distinct, first=first)
        return (self.header + "\n" + "".join(line + "\n" for line in lines)).encode()


# --- the default schema's: users -------------------------------------------------------------------

HEADER = "name,mail,phone"


def _user(chooser: random.Random, number: int) -> str:
    given, family = chooser.choice(_FIRST), chooser.choice(_LAST)
    domain = _DOMAINS[number % len(_DOMAINS)]
    phone = f"+4420{chooser.randrange(10**7, 10**8)}"
    return f"{given} {family},{given.lower()}.{family.lower()}.{number}@{domain},{phone}"


USERS = Dataset(DEFAULT_SCHEMA, HEADER, _user)

# What the benchmarks that predate the wide schema call: the users files.
rows = USERS.rows
write_csv = USERS.write_csv
csv_bytes = USERS.csv_bytes


# --- a wide schema: customer accounts, 20 columns ---------------------------------------------------

_COUNTRIES = ("GB", "IE", "DE", "FR", "NL", "ES", "US", "CA")
_PLANS = ("free", "starter", "team", "business", "enterprise")

WIDE_SCHEMA_DECLARATION: Mapping[str, Any] = {
    "name": "customers",
    "key": "customer_id",
    "columns": [
        {"name": "customer_id", "type": "text", "maxLength": 24, "aliases": ["customer id"]},
        {"name": "full_name", "type": "text", "required": True, "maxLength": 120, "aliases": ["name"]},
        {"name": "email", "type": "email", "aliases": ["e-mail"]},
        {"name": "phone", "type": "phone", "aliases": ["telephone"]},
        {"name": "company", "type": "text", "maxLength": 120},
        {"name": "job_title", "type": "text", "maxLength": 80},
        {"name": "country", "type": "enum", "required": True, "values": list(_COUNTRIES)},
        {"name": "city", "type": "text", "maxLength": 80},
        {"name": "postcode", "type": "text", "maxLength": 16},
        {"name": "plan", "type": "enum", "required": True, "values": list(_PLANS)},
        {"name": "seats", "type": "integer", "required": True, "min": 1, "max": 100000},
        {"name": "monthly_spend", "type": "decimal", "min": 0, "aliases": ["mrr"]},
        {"name": "discount_pct", "type": "decimal", "min": 0, "max": 100},
        {"name": "active", "type": "boolean", "required": True},
        {"name": "marketing_opt_in", "type": "boolean", "aliases": ["opt in"]},
        {"name": "signup_date", "type": "date", "required": True},
        {"name": "renewal_date", "type": "date"},
        {"name": "last_login", "type": "datetime"},
        {"name": "modified_at", "type": "datetime", "required": True},
        {"name": "satisfaction", "type": "integer", "min": 0, "max": 10},
    ],
}
WIDE_SCHEMA = parse_schema(WIDE_SCHEMA_DECLARATION)
# As a CRM's export spells them: some columns by an alias, in the schema's order.
WIDE_HEADER = (
    "Customer ID,Name,E-mail,Telephone,company,job_title,country,city,postcode,plan,seats,MRR,discount_pct,"
    "active,Opt In,signup_date,renewal_date,last_login,modified_at,satisfaction"
)

# A company name with a comma is quoted, as a spreadsheet writes it.
_COMPANIES = ("Acme Ltd", "Globex", "Initech", '"Hooli, Inc."', "Umbrella plc", "Stark Industries", "Wayne & Co")
_TITLES = ("CTO", "Head of Data", "Engineer", "Analyst", "Operations Manager")
_CITIES = ("London", "Dublin", "Berlin", "Paris", "Amsterdam", "Madrid", "New York", "Toronto")
_TRUE = ("true", "yes", "Y", "1", "TRUE")
_FALSE = ("false", "no", "N", "0", "FALSE")
_OFFSETS = ("Z", "+01:00", "-05:00", "+0530")
_EPOCH = date(2018, 1, 1)


def _customer(chooser: random.Random, number: int) -> str:
    """A row in which the optional cells are empty now and then and most cells are not yet in their
    normal form (the producer trims, lower-cases, matches and converts them)."""
    pick, draw = chooser.choice, chooser.random
    given, family = pick(_FIRST), pick(_LAST)
    signup = _EPOCH + timedelta(days=chooser.randrange(3000))
    cells = (
        f"CUS-{number:08d}",
        f"{given} {family}",
        "" if draw() < 0.05 else f"{given}.{family}.{number}@{_DOMAINS[number % len(_DOMAINS)]}",
        "" if draw() < 0.1 else f"+44 20 {chooser.randrange(1000, 10000)} {chooser.randrange(1000, 10000)}",
        "" if draw() < 0.15 else pick(_COMPANIES),
        "" if draw() < 0.3 else pick(_TITLES),
        pick(_COUNTRIES).lower() if draw() < 0.5 else pick(_COUNTRIES),
        "" if draw() < 0.1 else pick(_CITIES),
        "" if draw() < 0.2 else f"{pick('ABCDEFGHKLMNPRSTW')}{chooser.randrange(1, 30)} {chooser.randrange(1, 10)}XY",
        pick(_PLANS).capitalize() if draw() < 0.3 else pick(_PLANS),
        str(chooser.randrange(1, 500)),
        "" if draw() < 0.1 else f"{chooser.randrange(0, 500000) / 100:.2f}",
        "" if draw() < 0.6 else pick(("5", "10", "12.5", "20.00")),
        pick(_TRUE) if draw() < 0.8 else pick(_FALSE),
        "" if draw() < 0.25 else pick(_TRUE + _FALSE),
        signup.isoformat(),
        "" if draw() < 0.4 else (signup + timedelta(days=365 * chooser.randrange(1, 4))).isoformat(),
        "" if draw() < 0.2 else _moment(chooser),
        _moment(chooser),
        "" if draw() < 0.5 else str(chooser.randrange(0, 11)),
    )
    return ",".join(cells)


def _moment(chooser: random.Random) -> str:
    """A time in 2026 with a UTC offset, to the second or the millisecond."""
    day = date(2026, 1, 1) + timedelta(days=chooser.randrange(330))
    clock = f"{chooser.randrange(24):02d}:{chooser.randrange(60):02d}:{chooser.randrange(60):02d}"
    fraction = f".{chooser.randrange(1000):03d}" if chooser.random() < 0.3 else ""
    return f"{day.isoformat()}T{clock}{fraction}{chooser.choice(_OFFSETS)}"


WIDE = Dataset(WIDE_SCHEMA, WIDE_HEADER, _customer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inputs", description="Write a seeded benchmark CSV.")
    parser.add_argument("rows", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--distinct", type=int, default=None, help="how many distinct keys (default: all)")
    parser.add_argument("--wide", action="store_true", help="the wide schema's rows (20 columns), not users'")
    options = parser.parse_args(argv)
    dataset = WIDE if options.wide else USERS
    dataset.write_csv(options.path, options.rows, seed=options.seed, distinct=options.distinct)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
