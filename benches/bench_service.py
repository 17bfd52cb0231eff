"""Service benchmark: TwoFactor.verify against the engine and against raw SQLite statements.

Run from a checkout with the test extra installed::

    python benches/bench_service.py              # default: 21 rounds
    python benches/bench_service.py --rounds 31 --json

Two comparisons, each timed in interleaved rounds in one process (see ``_harness.py``):

memory
    ``TwoFactor`` on a ``MemoryStore`` against ``TOTP.verify`` of the engine on the same codes
    at the same times: what the service's lifecycle, replay protection, throttling and drift
    cost on top of the arithmetic. Login mode verifies a fresh step per call (the clock moves
    30 s each time); API-header mode repeats one accepted code, as an API client does.

async
    ``AsyncTwoFactor`` on an ``AsyncMemoryStore``, each verify awaited inside a running event
    loop, against the engine's verify timed in the same loop: the async shell's cost (target:
    at most 2.5x).

sqlite
    ``TwoFactor`` on a ``SQLiteStore`` against the SQL statements it issues for one login,
    executed inline on a second database file with the same settings: the charge
    (``UPDATE ... RETURNING``) and the compare-and-set (``UPDATE``), each its own durable
    transaction. What is left is the service's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import interleaved, table

import totpcore

# The statements SQLiteStore issues for one operation, written out here so that the floor does
# not depend on the store's private code: an immediate transaction that reads the row and
# writes every column back.
_COLUMNS = totpcore.UserRecord._fields
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM totpcore_users WHERE user_id = ?"
_UPDATE = (
    f"UPDATE totpcore_users SET {', '.join(f'{name} = ?' for name in _COLUMNS[1:])} "
    "WHERE user_id = ?"
)

START = 1_700_000_010.0


class SteppingService:
    """A TwoFactor whose clock moves one step per call, with the phone's codes precomputed."""

    def __init__(self, store: totpcore.Store, count: int) -> None:
        self.now = START
        self.service = totpcore.TwoFactor(
            store, issuer="Bench", clock=lambda: self.now, policy=totpcore.Policy()
        )
        self.service.enable("user")
        self.phone = totpcore.TOTP.from_secret(self.service.begin_setup("user").secret)
        assert self.service.complete_setup("user", self.phone.generate(self.now))
        self.times = [START + 30.0 * (i + 1) for i in range(count)]
        self.codes = [self.phone.generate(at) for at in self.times]
        self.index = 0

    def login(self) -> Any:
        """Verify the next step's code at the next step's time (always ACCEPTED)."""
        i = self.index
        self.index = i + 1
        self.now = self.times[i]
        return self.service.verify("user", self.codes[i])


def memory_group(rounds: int, number: int) -> dict[str, Callable[[], Any]]:
    """Engine verify (the floor) against the service on a MemoryStore."""
    stepping = SteppingService(totpcore.MemoryStore(), rounds * number + 1)
    engine = totpcore.TOTP(stepping.phone.key)
    engine_index = [0]
    times, codes = stepping.times, stepping.codes

    def engine_login() -> Any:
        i = engine_index[0] % len(times)
        engine_index[0] += 1
        return engine.verify(codes[i], at=times[i])

    api = SteppingService(totpcore.MemoryStore(), 1)
    api_code = api.codes[0]
    api.now = api.times[0]
    assert api.service.verify_request("user", api_code)
    return {
        "engine TOTP.verify (same codes and times)": engine_login,
        "TwoFactor.verify, MemoryStore (login, new step each call)": stepping.login,
        "TwoFactor.verify_request, MemoryStore (API header, repeated code)": lambda: (
            api.service.verify_request("user", api_code)
        ),
    }


def sqlite_group(directory: Path, rounds: int, number: int) -> dict[str, Callable[[], Any]]:
    """The SQL statements of one login, run inline (the floor), against the service on SQLite."""
    stepping = SteppingService(
        totpcore.SQLiteStore(directory / "service.sqlite3"), rounds * number + 1
    )

    floor_store = totpcore.SQLiteStore(directory / "floor.sqlite3")
    totpcore.TwoFactor(floor_store, issuer="Bench").enable("user")
    floor_store.close()
    connection = sqlite3.connect(directory / "floor.sqlite3", isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("UPDATE totpcore_users SET status = 'active'")
    step = [0]

    def transaction(change: Callable[[list[Any]], None]) -> list[Any]:
        """One store operation: BEGIN IMMEDIATE, read the row, write it back, commit."""
        connection.execute("BEGIN IMMEDIATE")
        row = list(connection.execute(_SELECT, ("user",)).fetchone())
        change(row)
        connection.execute(_UPDATE, (*row[1:], "user"))
        connection.execute("COMMIT")
        return row

    def charge(row: list[Any]) -> None:
        row[_COLUMNS.index("last_failure_at")] = START + step[0]
        row[_COLUMNS.index("failure_log")] = repr(START + step[0])

    def mark(row: list[Any]) -> None:
        row[_COLUMNS.index("last_step")] = step[0]
        row[_COLUMNS.index("last_success_at")] = START + step[0]
        row[_COLUMNS.index("failure_log")] = ""

    def raw_login() -> Any:
        """One login as the service issues it: one immediate transaction, one commit."""
        step[0] += 1
        connection.execute("BEGIN IMMEDIATE")
        row = list(connection.execute(_SELECT, ("user",)).fetchone())
        charge(row)
        mark(row)
        connection.execute(_UPDATE, (*row[1:], "user"))
        connection.execute("COMMIT")
        return row

    def two_transactions() -> Any:
        """One login as 0.1.0 issued it: the charge and the mark, each its own commit."""
        step[0] += 1
        transaction(charge)
        return transaction(mark)

    return {
        "raw SQL of one login, one transaction (what the service issues)": raw_login,
        "TwoFactor.verify, SQLiteStore (login, new step each call)": stepping.login,
        "raw SQL of one login, two transactions (0.1.0's sequence)": two_transactions,
    }


def async_group(rounds: int, number: int) -> dict[str, dict[str, float]]:
    """Engine verify against AsyncTwoFactor.verify on an AsyncMemoryStore, awaited in a loop.

    Timed inside one running event loop, in rounds whose order alternates, as ``interleaved``
    does for plain callables (a timeit callable cannot await).
    """

    async def run() -> dict[str, dict[str, float]]:
        now = [START]
        service = totpcore.AsyncTwoFactor(
            totpcore.AsyncMemoryStore(), issuer="Bench", clock=lambda: now[0]
        )
        await service.enable("user")
        phone = totpcore.TOTP.from_secret((await service.begin_setup("user")).secret)
        assert await service.complete_setup("user", phone.generate(now[0]))
        count = rounds * number + 1
        times = [START + 30.0 * (i + 1) for i in range(count)]
        codes = [phone.generate(at) for at in times]
        engine = totpcore.TOTP(phone.key)
        index = [0, 0]
        ratios: list[float] = []
        floor_ns: list[float] = []
        shell_ns: list[float] = []

        def engine_batch() -> float:
            start = time.perf_counter()
            for _ in range(number):
                i = index[0] % count
                index[0] += 1
                engine.verify(codes[i], at=times[i])
            return time.perf_counter() - start

        async def shell_batch() -> float:
            start = time.perf_counter()
            for _ in range(number):
                i = index[1]
                index[1] = i + 1
                now[0] = times[i]
                await service.verify("user", codes[i])
            return time.perf_counter() - start

        for round_index in range(rounds):
            if round_index % 2:
                floor = engine_batch()
                shell = await shell_batch()
            else:
                shell = await shell_batch()
                floor = engine_batch()
            ratios.append(shell / floor)
            floor_ns.append(floor / number * 1e9)
            shell_ns.append(shell / number * 1e9)
        return {
            "engine TOTP.verify (same codes and times)": {
                "ratio": 1.0,
                "ns": statistics.median(floor_ns),
            },
            "AsyncTwoFactor.verify, AsyncMemoryStore (awaited, new step each call)": {
                "ratio": statistics.median(ratios),
                "ns": statistics.median(shell_ns),
            },
        }

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    """Run both comparisons and print Markdown tables (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--number", type=int, default=3000, help="calls per round (memory)")
    parser.add_argument("--sqlite-number", type=int, default=150, help="calls per round (SQLite)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        results = {
            "memory": interleaved(
                memory_group(args.rounds, args.number), rounds=args.rounds, number=args.number
            ),
            "async": async_group(args.rounds, args.number),
            "sqlite": interleaved(
                sqlite_group(Path(directory), args.rounds, args.sqlite_number),
                rounds=args.rounds,
                number=args.sqlite_number,
            ),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds\n")
    print(table(results, floor_label="first row of its group"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
