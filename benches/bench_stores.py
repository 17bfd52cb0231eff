"""Store benchmark: TwoFactor.verify on Redis and PostgreSQL against raw round trips; throughput.

Run from a checkout with the test extra installed, ``redis-server`` and the PostgreSQL server
binaries on the machine (Debian: ``apt-get install redis-server postgresql``)::

    python benches/bench_stores.py                 # about 3 minutes
    python benches/bench_stores.py --users 100000 --seconds 5 --json

The script starts a throwaway Redis and a throwaway PostgreSQL on loopback (``_servers.py``;
PostgreSQL with ``fsync=off``), then measures two things.

ratio
    ``TwoFactor.verify`` on each store against the least any store must do for one login,
    timed in interleaved rounds in one process (see ``_harness.py``): on Redis, two ``EVALSHA``
    of a trivial one-key script (``HINCRBY``) on the same client library; on PostgreSQL, two
    single-row ``UPDATE ... RETURNING`` statements, each committed, on one connection (and, for
    reference, the same two statements each on a connection checked out of a pool, as the
    store does). Every request goes to a random user of ``--users`` enrolled users, the
    service's clock one step further at each request; wrong codes and correct codes each have
    their own population, so no correct code is ever a replay.

server time
    Where a login's time goes: for each store and its floor, ``--number`` more calls alone,
    with the server's own time per call read from the server (Redis ``INFO commandstats``,
    PostgreSQL ``pg_stat_statements``: the commands' or statements' execution only) and the
    client's CPU time (``time.thread_time``: the client library, the system calls and, for
    the store, the service's own Python). The rest of the wall-clock time is the network,
    the server's work around execution (parsing, replies, commits) and waiting for a core.

throughput
    Verifications per second on SQLite (a temporary file, default settings), Redis and
    PostgreSQL (the store's default pool of at most 10 connections), from 1, 4 and 16 threads
    sharing one store, and from 4 processes with a store each, for ``--seconds`` each: random
    users of the population, alternately a correct and a wrong code, on the real clock.
    Threads share one interpreter lock, so on a store this fast they mostly show the client's
    own Python cost; processes use every core.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from _harness import Timing, interleaved, markdown, table
from _servers import postgres_server, redis_server

import totpcore
from totpcore._bench import (
    START,
    derived_key,
    population_ids,
    postgres_floor,
    redis_floor,
    replay,
    requests,
)

#: A store to open in any process: ("sqlite", path), ("redis", url, prefix) or
#: ("postgres", conninfo, table).
Spec = tuple[str, ...]
THREADS = (("1 thread", 1), ("4 threads", 4), ("16 threads", 16))
PROCESSES = 4
#: Requests each ratio stream has beyond the timed ones (for the server-time calls).
EXTRA = 2000


def timed(function: Callable[[], Any], number: int) -> tuple[float, float]:
    """Wall-clock and this thread's CPU microseconds per call of ``number`` calls.

    The CPU time is the client's own work (Python, the client library, the system calls),
    which a loaded machine inflates far less than the wall clock.
    """
    started, cpu = time.perf_counter(), time.thread_time()
    for _ in range(number):
        function()
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
    return elapsed / number * 1e6, cpu / number * 1e6


def redis_server_time(
    url: str, function: Callable[[], Any], number: int
) -> tuple[float, float, float]:
    """Wall-clock, client CPU and Redis's own microseconds per call of ``function``."""
    import redis

    with redis.Redis.from_url(url) as client:
        client.config_resetstat()
        wall, cpu = timed(function, number)
        stats = client.info("commandstats")
    busy = sum(
        entry["usec"]
        for name, entry in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    )
    return wall, cpu, busy / number


def postgres_server_time(
    conninfo: str, function: Callable[[], Any], number: int, table: str
) -> tuple[float, float, float]:
    """Wall-clock, client CPU and PostgreSQL's own µs per call (statements naming ``table``)."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("SELECT pg_stat_statements_reset()")
        wall, cpu = timed(function, number)
        rows = connection.execute(
            "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements WHERE query LIKE %s",
            (f"%{table}%",),
        ).fetchall()
    return wall, cpu, float(rows[0][0]) * 1000 / number


def server_times(
    name: str, target: str, groups: dict[str, dict[str, Callable[[], Any]]], number: int
) -> dict[str, dict[str, float]]:
    """Wall-clock and server microseconds per call of each contender, timed alone."""
    results = {}
    for group, contenders in groups.items():
        for label, function in contenders.items():
            if "reference" in label:
                continue
            if name == "redis":
                wall, cpu, server = redis_server_time(target, function, number)
            else:
                # The statements of the store's correct-code population, of its wrong-code
                # one, or of the floor, told apart by the table they name.
                table = "bench_floor"
                if label.startswith("TwoFactor"):
                    table = "bench_c" if "compare-and-set" in label else "bench_w"
                wall, cpu, server = postgres_server_time(target, function, number, table)
            results[f"{group}: {label}"] = {
                "wall_us": wall,
                "client_cpu_us": cpu,
                "server_us": server,
            }
    return results


TARGETS = {"redis": 1.3, "postgres": 1.5}


def open_store(spec: Spec) -> Any:
    """Open the store a spec names (each process opens its own)."""
    if spec[0] == "sqlite":
        return totpcore.SQLiteStore(spec[1])
    if spec[0] == "redis":
        return totpcore.RedisStore.from_url(spec[1], prefix=spec[2])
    return totpcore.PostgresStore(spec[1], table=spec[2])


def enrol(spec: Spec, ids: Sequence[str], at: float, threads: int = 8) -> None:
    """Import every user with a derived key, as of ``at`` (in parallel: network stores)."""
    store = open_store(spec)
    service = totpcore.TwoFactor(store, issuer="Bench", clock=lambda: at)

    def chunk(part: Sequence[str]) -> None:
        for user_id in part:
            service.import_secret(user_id, derived_key(user_id))

    size = -(-len(ids) // threads)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(chunk, [ids[i : i + size] for i in range(0, len(ids), size)]))
    store.close()


# --- ratio --------------------------------------------------------------------------------


class Stepping:
    """A service on a store with an injected clock, and a stream of requests for it."""

    def __init__(self, spec: Spec, ids: list[str], count: int, *, correct: bool) -> None:
        enrol(spec, ids, START)
        self.store = open_store(spec)
        self.clock = [START]
        self.service = totpcore.TwoFactor(self.store, issuer="Bench", clock=lambda: self.clock[0])
        stream = requests(ids, count, correct=correct, seed=3 if correct else 4)
        self.send = replay(self.service.verify, self.clock, stream)


def redis_groups(
    url: str, users: int, rounds: int, number: int
) -> tuple[dict[str, dict[str, Callable[[], Any]]], list[Any]]:
    """The Redis groups, correct and wrong codes (each raw floor first), and what to close."""
    import redis

    client = redis.Redis.from_url(url)
    count = rounds * number + EXTRA
    right = Stepping(("redis", url, "c:"), population_ids(users), count, correct=True)
    wrong = Stepping(("redis", url, "w:"), population_ids(users), count, correct=False)
    keys = [f"floor:{index}" for index in range(users)]
    groups = {
        "redis, correct code": {
            "2 x EVALSHA of a trivial script, raw client": redis_floor(client, keys),
            "TwoFactor.verify, RedisStore (charge + compare-and-set)": right.send,
        },
        "redis, wrong code": {
            "1 x EVALSHA of a trivial script, raw client": redis_floor(client, keys, trips=1),
            "TwoFactor.verify, RedisStore (charge only)": wrong.send,
        },
    }
    return groups, [client, wrong.store, right.store]


def postgres_groups(
    conninfo: str, users: int, rounds: int, number: int
) -> tuple[dict[str, dict[str, Callable[[], Any]]], list[Any]]:
    """The PostgreSQL groups, correct and wrong codes (raw floor first), and what to close."""
    import psycopg
    import psycopg_pool

    connection = psycopg.connect(conninfo, autocommit=True)
    pool = psycopg_pool.ConnectionPool(
        conninfo, min_size=1, max_size=10, kwargs={"autocommit": True}, open=True
    )
    count = rounds * number + EXTRA
    wrong = Stepping(("postgres", conninfo, "bench_w"), population_ids(users), count, correct=False)
    right = Stepping(("postgres", conninfo, "bench_c"), population_ids(users), count, correct=True)
    statement = "UPDATE bench_floor SET n = n + 1 WHERE id = %s RETURNING n"
    chooser = random.Random(5)

    def pooled() -> Any:
        row = chooser.randrange(users)
        for _ in range(2):
            with pool.connection() as borrowed:
                result = borrowed.execute(statement, (row,)).fetchall()
        return result

    groups = {
        "postgres, correct code": {
            "2 x UPDATE ... RETURNING, raw connection": postgres_floor(
                connection, "bench_floor", users
            ),
            "2 x UPDATE ... RETURNING, a pooled connection each (reference)": pooled,
            "TwoFactor.verify, PostgresStore (charge + compare-and-set)": right.send,
        },
        "postgres, wrong code": {
            "1 x UPDATE ... RETURNING, raw connection": postgres_floor(
                connection, "bench_floor", users, trips=1
            ),
            "TwoFactor.verify, PostgresStore (charge only)": wrong.send,
        },
    }
    return groups, [connection, pool, wrong.store, right.store]


# --- throughput ---------------------------------------------------------------------------


def hammer(service: Any, ids: Sequence[str], deadline: float, seed: int) -> Counter[str]:
    """Verify random users until ``deadline``, alternately correct and wrong codes."""
    chooser = random.Random(seed)
    engines: dict[str, totpcore.TOTP] = {}
    outcomes: Counter[str] = Counter()
    correct = False
    while time.monotonic() < deadline:
        user_id = chooser.choice(ids)
        engine = engines.get(user_id)
        if engine is None:
            engine = engines[user_id] = totpcore.TOTP(derived_key(user_id))
        code = engine.now()
        if not correct:
            # Off by one: matches the window's other steps with odds of about 2 in a million.
            code = f"{(int(code) + 1) % 1_000_000:06d}"
        correct = not correct
        try:
            outcomes[service.verify(user_id, code).reason.value] += 1
        except totpcore.StoreError:
            outcomes["StoreError"] += 1
    return outcomes


#: Seeds of the throughput workers: never the same twice in a run, so no run replays the users
#: (and the codes) of an earlier one.
SEEDS = itertools.count(1000)


def threaded(spec: Spec, ids: Sequence[str], threads: int, seconds: float) -> Counter[str]:
    """``threads`` threads sharing one store, for ``seconds``."""
    store = open_store(spec)
    service = totpcore.TwoFactor(store, issuer="Bench")
    barrier = threading.Barrier(threads)

    def run(seed: int) -> Counter[str]:
        barrier.wait()
        return hammer(service, ids, time.monotonic() + seconds, seed)

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(run, [next(SEEDS) for _ in range(threads)]))
    store.close()
    return sum(results, Counter())


def _process(
    spec: Spec, ids: Sequence[str], seconds: float, seed: int, start: Any, out: Any
) -> None:
    """One process of the throughput run: its own store, one thread."""
    store = open_store(spec)
    service = totpcore.TwoFactor(store, issuer="Bench")
    start.wait()
    out.put(hammer(service, ids, time.monotonic() + seconds, seed))
    store.close()


def processes(spec: Spec, ids: Sequence[str], count: int, seconds: float) -> Counter[str]:
    """``count`` processes with a store each, for ``seconds``."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    out = context.Queue()
    workers = [
        context.Process(target=_process, args=(spec, ids, seconds, next(SEEDS), start, out))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # every process has imported and opened its store
    start.set()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    return sum(results, Counter())


def throughput(spec: Spec, ids: Sequence[str], seconds: float) -> dict[str, dict[str, Any]]:
    """Verifications per second per concurrency, with the verdicts."""
    results = {}
    for label, threads in THREADS:
        counts = threaded(spec, ids, threads, seconds)
        results[label] = {"per_second": counts.total() / seconds, "verdicts": dict(counts)}
    counts = processes(spec, ids, PROCESSES, seconds)
    label = f"{PROCESSES} processes"
    results[label] = {"per_second": counts.total() / seconds, "verdicts": dict(counts)}
    return results


@contextmanager
def sqlite_file() -> Iterator[str]:
    """A temporary SQLite database file path."""
    with tempfile.TemporaryDirectory() as directory:
        yield str(Path(directory) / "bench.sqlite3")


def main(argv: list[str] | None = None) -> int:
    """Start the servers, run both measurements, print Markdown tables (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=200, help="calls per round (ratio)")
    parser.add_argument("--users", type=int, default=20_000, help="population per store")
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ratios: dict[str, dict[str, Timing]] = {}
    servers: dict[str, dict[str, float]] = {}
    rates: dict[str, dict[str, dict[str, Any]]] = {}
    with ExitStack() as stack:
        url = stack.enter_context(redis_server())
        conninfo = stack.enter_context(postgres_server())
        path = stack.enter_context(sqlite_file())
        for name, make in (("redis", redis_groups), ("postgres", postgres_groups)):
            print(f"{name}: enrolling and timing ...", file=sys.stderr)
            groups, closing = make(
                url if name == "redis" else conninfo, args.users, args.rounds, args.number
            )
            for group, contenders in groups.items():
                ratios[group] = interleaved(contenders, rounds=args.rounds, number=args.number)
            target = url if name == "redis" else conninfo
            servers.update(server_times(name, target, groups, min(args.number * 5, EXTRA)))
            for thing in closing:
                thing.close()
        ids = population_ids(args.users, prefix="live")
        now = time.time() - 300  # imports mark their step used: start five minutes back
        specs: dict[str, Spec] = {
            "SQLite": ("sqlite", path),
            "Redis": ("redis", url, "live:"),
            "PostgreSQL": ("postgres", conninfo, "bench_live"),
        }
        for name, spec in specs.items():
            print(f"{name}: throughput ...", file=sys.stderr)
            enrol(spec, ids, now)
            rates[name] = throughput(spec, ids, args.seconds)
    if args.json:
        print(json.dumps({"ratio": ratios, "server": servers, "throughput": rates}, indent=2))
        return 0
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds, {args.users:,} users\n")
    print(table(ratios, floor_label="raw round trips"))
    print()
    rows = [
        [
            label,
            f"{row['wall_us']:.0f}",
            f"{row['server_us']:.0f}",
            f"{row['client_cpu_us']:.0f}",
            f"{row['wall_us'] - row['server_us'] - row['client_cpu_us']:.0f}",
        ]
        for label, row in servers.items()
    ]
    headings = ["timed alone", "µs per call", "server µs", "client CPU µs", "rest µs"]
    print(markdown(headings, rows))
    print()
    labels = [label for label, _ in THREADS] + [f"{PROCESSES} processes"]
    rows = [
        [name, *(f"{rates[name][label]['per_second']:,.0f}" for label in labels)] for name in rates
    ]
    print(markdown(["verifies per second", *labels], rows))
    print()
    for name, by_label in rates.items():
        for label, result in by_label.items():
            print(f"- {name}, {label}: {result['verdicts']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
