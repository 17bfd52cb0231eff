"""SQLite table layout: the store's rowid table against a ``WITHOUT ROWID`` one.

Run from a checkout::

    python benches/bench_sqlite_layout.py                 # 100,000 users, 5 rounds
    python benches/bench_sqlite_layout.py --users 20000 --rounds 3

A ``WITHOUT ROWID`` table keeps each row in the primary key's b-tree instead of a rowid
b-tree plus a separate index on ``user_id``: one b-tree to search instead of two, and no
second copy of the key. SQLite's documentation warns that it suits small rows only. A
totpcore row is small (about 100 bytes) until the user has recovery codes; ten hashes add
about 0.9 KB. So both layouts are measured with and without ten recovery hashes per user:

- file size per user, after a checkpoint;
- a lookup by user id (``SELECT`` of the whole row), random users, warm cache;
- a login's transaction (``BEGIN IMMEDIATE``, read, update, ``COMMIT`` with
  ``synchronous=FULL``), random users.

The two layouts take turns in each round; ratios are per round, then the median.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from _harness import markdown

# The store's columns (schema v2), with the types the store declares.
COLUMNS = """
    user_id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, secret BLOB NOT NULL,
    generation INTEGER NOT NULL, last_step INTEGER, drift INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, last_failure_at REAL, locked_at REAL,
    recovery_hashes TEXT NOT NULL DEFAULT '', algorithm TEXT NOT NULL DEFAULT 'SHA1',
    digits INTEGER NOT NULL DEFAULT 6, period INTEGER NOT NULL DEFAULT 30,
    failure_log TEXT NOT NULL DEFAULT '', last_success_at REAL
"""
LAYOUTS = {"rowid table (the store's)": "", "WITHOUT ROWID": " WITHOUT ROWID"}


def recovery_hashes(chooser: random.Random) -> str:
    """Ten stored recovery-code hashes, shaped like the store's (85 characters each)."""

    def text(size: int) -> str:
        return base64.urlsafe_b64encode(chooser.randbytes(size)).decode().rstrip("=")

    return ",".join(f"pbkdf2_sha256$4000${text(16)}${text(32)}" for _ in range(10))


def build(path: Path, layout: str, users: int, *, hashes: bool) -> int:
    """Create the table with ``users`` rows in random order; return the file's size."""
    chooser = random.Random(7)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"CREATE TABLE users ({COLUMNS}){layout}")
    rows = [
        (f"user{index:07d}", "active", chooser.randbytes(20), chooser.getrandbits(62),
         56_666_666, 0, 0, 1.7e9, None, recovery_hashes(chooser) if hashes else "",
         "SHA1", 6, 30, "", 1.7e9)
        for index in range(users)
    ]  # fmt: skip
    chooser.shuffle(rows)
    with connection:
        connection.executemany(f"INSERT INTO users VALUES ({', '.join('?' * 15)})", rows)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path.stat().st_size


def lookups(path: Path, users: int, count: int, seed: int) -> float:
    """Microseconds per lookup of a random user's whole row."""
    chooser = random.Random(seed)
    wanted = [(f"user{chooser.randrange(users):07d}",) for _ in range(count)]
    connection = sqlite3.connect(path)
    select = "SELECT * FROM users WHERE user_id = ?"
    started = time.perf_counter()
    for key in wanted:
        connection.execute(select, key).fetchone()
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed / count * 1e6


def logins(path: Path, users: int, count: int, seed: int) -> float:
    """Microseconds per login transaction (read and update one random row, durable commit)."""
    chooser = random.Random(seed)
    wanted = [f"user{chooser.randrange(users):07d}" for _ in range(count)]
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=FULL")
    started = time.perf_counter()
    for user_id in wanted:
        connection.execute("BEGIN IMMEDIATE")
        row = connection.execute("SELECT * FROM users WHERE user_id = ?", (user_id,)).fetchone()
        connection.execute(
            "UPDATE users SET last_step = ?, failure_log = '' WHERE user_id = ?",
            (row[4] + 1, user_id),
        )
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed / count * 1e6


def main(argv: list[str] | None = None) -> int:
    """Build both layouts with and without recovery hashes, time them, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=20_000, help="lookups per round")
    parser.add_argument("--logins", type=int, default=500, help="login transactions per round")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="totpcore-layout-") as directory:
        for hashes in (False, True):
            sizes, paths = {}, {}
            for number, (name, layout) in enumerate(LAYOUTS.items()):
                paths[name] = Path(directory) / f"{number}-{hashes}.sqlite3"
                sizes[name] = build(paths[name], layout, args.users, hashes=hashes)
            found: dict[str, list[float]] = {name: [] for name in LAYOUTS}
            written: dict[str, list[float]] = {name: [] for name in LAYOUTS}
            for round_number in range(args.rounds):
                for name in LAYOUTS:
                    seed = round_number * 2 + hashes
                    found[name].append(lookups(paths[name], args.users, args.lookups, seed))
                    written[name].append(logins(paths[name], args.users, args.logins, seed))
            first = next(iter(LAYOUTS))
            for name in LAYOUTS:
                lookup_ratio = statistics.median(
                    a / b for a, b in zip(found[name], found[first], strict=True)
                )
                login_ratio = statistics.median(
                    a / b for a, b in zip(written[name], written[first], strict=True)
                )
                rows.append(
                    [
                        "10 recovery hashes" if hashes else "no recovery codes",
                        name,
                        f"{sizes[name] / args.users:.0f}",
                        f"{statistics.median(found[name]):.1f} ({lookup_ratio:.2f}x)",
                        f"{statistics.median(written[name]):.0f} ({login_ratio:.2f}x)",
                    ]
                )
            for path in paths.values():
                os.remove(path)
    print(f"{args.users:,} users, {args.rounds} rounds\n")
    headings = ["rows", "layout", "bytes per user", "lookup µs (ratio)", "login txn µs (ratio)"]
    print(markdown(headings, rows, right=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
