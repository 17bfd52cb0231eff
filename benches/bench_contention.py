"""Contention benchmark: many processes verifying on one SQLite file, latency percentiles.

Run from a checkout::

    python benches/bench_contention.py                  # 8 processes, 10 s per variant
    python benches/bench_contention.py --processes 8 --seconds 10 --variant store --json

Every process opens its own store (default settings: ``timeout=10``, ``synchronous=FULL``)
and, from a common start, verifies as fast as it can for ``--seconds``: a random user of the
population (20,000 by default, so that wrong codes stay within the free failures instead of
being throttled, which writes nothing) each time, alternately the current code of the user's
phone and a wrong code, each call timed. The report gives the throughput, the StoreErrors (the
target is none) and the latency percentiles over every call of every process (target: p99.9
at most 250 ms).

Variants:

store
    ``TwoFactor.verify`` on ``SQLiteStore``: what ships.
raw, SQLite busy handler
    The statements of one login (``BEGIN IMMEDIATE``, read the row, write it back,
    ``COMMIT``) on connections with a 10 s busy timeout: SQLite's own busy handler, which
    sleeps in growing steps (1, 2, 5, 10, ... up to 100 ms) while it waits for the write lock.
raw, jittered retry
    The same statements on connections with no busy timeout, ``BEGIN IMMEDIATE`` retried
    after a random 0.2 to 2 ms sleep until the lock is taken (or 10 s pass).
raw, the store's retry
    What ``SQLiteStore`` does (see its module notes): ``BEGIN IMMEDIATE`` retried after a
    random 1 to 10 ms sleep, and after 0.2 to 1 ms once the writer has waited 100 ms.

The raw variants isolate the waiting strategy from the store. To measure the store of an
earlier release the same way, put its source first on the path, e.g. for 0.1.x's busy
handler::

    mkdir /tmp/before && git archive f68abed src | tar -x -C /tmp/before
    cp src/totpcore/_bench.py /tmp/before/src/totpcore/   # the harness is newer
    PYTHONPATH=/tmp/before/src python benches/bench_contention.py --variant store
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import markdown, percentiles

import totpcore
from totpcore._bench import derived_key, population_ids, wrong_code

VARIANTS = {
    "store": "TwoFactor.verify, SQLiteStore (defaults)",
    "busy-handler": "raw login SQL, SQLite busy handler (timeout 10 s)",
    "retry": "raw login SQL, BEGIN IMMEDIATE retried after 0.2-2 ms sleeps",
    "store-retry": "raw login SQL, 1-10 ms sleeps, 0.2-1 ms after 100 ms (the store's)",
}
POINTS = (50.0, 99.0, 99.9, 100.0)
_COLUMNS = totpcore.UserRecord._fields
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM totpcore_users WHERE user_id = ?"
_UPDATE = (
    f"UPDATE totpcore_users SET {', '.join(f'{name} = ?' for name in _COLUMNS[1:])} "
    "WHERE user_id = ?"
)


def prepare(path: Path, users: int) -> list[str]:
    """Create the database with ``users`` ACTIVE users (derived keys); return their ids.

    The users are imported as of five minutes ago: an import marks the step of its time as
    used, and the benchmark's correct codes must be accepted, not replays.
    """
    ids = population_ids(users)
    # synchronous=NORMAL only to enrol quickly; the workers open the file with the defaults.
    with totpcore.SQLiteStore(path, synchronous="NORMAL") as store:
        earlier = time.time() - 300
        service = totpcore.TwoFactor(store, issuer="Bench", clock=lambda: earlier)
        for user_id in ids:
            service.import_secret(user_id, derived_key(user_id))
    return ids


def store_worker(path: str, ids: list[str], seconds: float, seed: int) -> Any:
    """One process of the store variant: verify until the deadline, timing each call."""
    chooser = random.Random(seed)
    engines: dict[str, totpcore.TOTP] = {}
    latencies: list[float] = []
    errors = 0
    verdicts: dict[str, int] = {}
    with totpcore.SQLiteStore(path) as store:
        service = totpcore.TwoFactor(store, issuer="Bench")
        deadline = time.monotonic() + seconds
        calls = 0
        while time.monotonic() < deadline:
            user_id = chooser.choice(ids)
            engine = engines.get(user_id)
            if engine is None:
                engine = engines[user_id] = totpcore.TOTP(derived_key(user_id))
            now = time.time()
            code = engine.generate(now) if calls % 2 else wrong_code(engine, now)
            calls += 1
            started = time.perf_counter()
            try:
                verdict = service.verify(user_id, code)
            except totpcore.StoreError:
                errors += 1
                latencies.append(time.perf_counter() - started)
                continue
            latencies.append(time.perf_counter() - started)
            verdicts[verdict.reason.value] = verdicts.get(verdict.reason.value, 0) + 1
    return latencies, errors, verdicts


def begin_retrying(connection: sqlite3.Connection, chooser: random.Random, store: bool) -> None:
    """BEGIN IMMEDIATE, retried after random sleeps while the database is busy (10 s at most).

    Sleeps of 0.2 to 2 ms; or, as the store does, 1 to 10 ms, then 0.2 to 1 ms after 100 ms.
    """
    started = time.monotonic()
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            elapsed = time.monotonic() - started
            if elapsed >= 10.0:
                raise
            if not store:
                time.sleep(chooser.uniform(0.0002, 0.002))
            elif elapsed < 0.1:
                time.sleep(chooser.uniform(0.001, 0.01))
            else:
                time.sleep(chooser.uniform(0.0002, 0.001))


def raw_worker(path: str, ids: list[str], seconds: float, seed: int, variant: str) -> Any:
    """One process of a raw variant: the login statements until the deadline, timed."""
    chooser = random.Random(seed)
    retry = variant != "busy-handler"
    connection = sqlite3.connect(
        path, timeout=0.0 if retry else 10.0, isolation_level=None, check_same_thread=False
    )
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    failure_at = _COLUMNS.index("last_failure_at")
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        user_id = chooser.choice(ids)
        started = time.perf_counter()
        try:
            if retry:
                begin_retrying(connection, chooser, variant == "store-retry")
            else:
                connection.execute("BEGIN IMMEDIATE")
            row = list(connection.execute(_SELECT, (user_id,)).fetchall()[0])
            row[failure_at] = time.time()
            connection.execute(_UPDATE, (*row[1:], user_id))
            connection.execute("COMMIT")
        except sqlite3.Error:
            errors += 1
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        latencies.append(time.perf_counter() - started)
    connection.close()
    return latencies, errors, {}


def child(
    variant: str,
    path: str,
    ids: list[str],
    seconds: float,
    seed: int,
    start: Any,
    results: Any,
) -> None:
    """A worker process: wait for the common start, run, send the results back."""
    start.wait()
    if variant == "store":
        result = store_worker(path, ids, seconds, seed)
    else:
        result = raw_worker(path, ids, seconds, seed, variant)
    results.put(result)


def run(variant: str, processes: int, seconds: float, users: int) -> dict[str, Any]:
    """Run one variant on a fresh database; return its summary."""
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "contention.sqlite3"
        ids = prepare(path, users)
        start = context.Event()
        results = context.Queue()
        workers = [
            context.Process(
                target=child, args=(variant, str(path), ids, seconds, seed, start, results)
            )
            for seed in range(processes)
        ]
        for worker in workers:
            worker.start()
        time.sleep(1.0)  # every process imported and waiting
        start.set()
        collected = [results.get(timeout=seconds + 120) for _ in workers]
        for worker in workers:
            worker.join()
    latencies = [sample for result in collected for sample in result[0]]
    verdicts: dict[str, int] = {}
    for result in collected:
        for reason, count in result[2].items():
            verdicts[reason] = verdicts.get(reason, 0) + count
    marks = percentiles(latencies, POINTS)
    return {
        "variant": VARIANTS[variant],
        "processes": processes,
        "seconds": seconds,
        "calls": len(latencies),
        "per_second": len(latencies) / seconds,
        "store_errors": sum(result[1] for result in collected),
        "ms": {f"p{point:g}": marks[point] * 1000 for point in POINTS},
        "verdicts": verdicts,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the variants and print a Markdown table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=20_000, help="population in the file")
    parser.add_argument("--variant", choices=VARIANTS, action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    summaries = [
        run(variant, args.processes, args.seconds, args.users)
        for variant in (args.variant or list(VARIANTS))
    ]
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    print(
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"{args.processes} processes x {args.seconds:g} s, {args.users} users\n"
    )
    headings = ["variant", "calls/s", "StoreErrors", "p50 ms", "p99 ms", "p99.9 ms", "max ms"]
    rows = [
        [
            summary["variant"],
            f"{summary['per_second']:.0f}",
            str(summary["store_errors"]),
            *(f"{summary['ms'][key]:.1f}" for key in ("p50", "p99", "p99.9", "p100")),
        ]
        for summary in summaries
    ]
    print(markdown(headings, rows))
    for summary in summaries:
        if summary["verdicts"]:
            print(f"- {summary['variant']}: verdicts {summary['verdicts']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
