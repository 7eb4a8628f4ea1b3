"""Benchmark inputs: CSV files generated from a seed, so every run reads the same bytes.

    python -m bench.inputs 100000 /tmp/users-100k.csv [--seed 7] [--distinct N]

Rows look like the sample (`tests/data/users.csv`): `name,mail,phone`, every email distinct unless
`distinct` caps how many there are (then later rows repeat earlier emails: the latest wins). Nothing
large is committed: benchmarks write their inputs into their scratch folder.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from pathlib import Path

HEADER = "name,mail,phone"
SEED = 20261129
_FIRST = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia", "Tim")
_LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Dijkstra")
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")


def rows(count: int, *, seed: int = SEED, distinct: int | None = None, first: int = 0) -> Iterator[str]:
    """`count` CSV lines (no header, no line ending): row i has email number `first` + i mod `distinct`
    (files made with `first` far enough apart share no email)."""
    chooser = random.Random(seed)
    for index in range(count):
        number = first + (index if distinct is None else index % distinct)
        given, family = chooser.choice(_FIRST), chooser.choice(_LAST)
        domain = _DOMAINS[number % len(_DOMAINS)]
        phone = f"+4420{chooser.randrange(10**7, 10**8)}"
        yield f"{given} {family},{given.lower()}.{family.lower()}.{number}@{domain},{phone}"


def write_csv(path: Path, count: int, *, seed: int = SEED, distinct: int | None = None) -> Path:
    """Write a header and `count` rows to `path` (streamed: 5 million rows need no memory); returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        batch: list[str] = []
        for line in rows(count, seed=seed, distinct=distinct):
            batch.append(line)
            if len(batch) == 10_000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")
    return path


def csv_bytes(count: int, *, seed: int = SEED, distinct: int | None = None, first: int = 0) -> bytes:
    """The same file in memory (for inputs that fit)."""
    lines = rows(count, seed=seed, distinct=distinct, first=first)
    return (HEADER + "\n" + "".join(line + "\n" for line in lines)).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inputs", description="Write a seeded benchmark CSV.")
    parser.add_argument("rows", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--distinct", type=int, default=None, help="how many distinct emails (default: all)")
    options = parser.parse_args(argv)
    write_csv(options.path, options.rows, seed=options.seed, distinct=options.distinct)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
