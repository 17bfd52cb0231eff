"""Service benchmark: TwoFactor.verify against the engine and against raw SQLite statements.

Run from a checkout with the test extra installed::

    python benches/bench_service.py              # default: 21 rounds
    python benches/bench_service.py --rounds 31 --json
    python benches/bench_service.py --only population --users 100000

Each comparison is timed in interleaved rounds in one process (see ``_harness.py``):

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

population (wrong codes; correct codes)
    The case users have: a ``MemoryStore`` holding ``--users`` enrolled users (100,000 by
    default; each imported with a key derived from the user id, then logged in once so that
    the key cache is in its steady state), a random user per request, the clock one step
    further at each request (so no correct code is a replay), with and without
    ``AESGCMCipher``, with the key cache sized to the population (``key_cache_size``) and at
    its default size (4,096 entries, so most requests miss it). The floor is the engine's
    ``TOTP.verify`` of one prebuilt key on the same kind of code. Two reference rows: the
    engine verifying with the random user's prebuilt ``TOTP`` (the memory cost of random
    access alone), and the engine building ``TOTP(key)`` for every request (what a verifier
    without any per-user cache pays).

others
    The targets measured by the other scripts, each run briefly here so that one command
    prints every target next to its figure: the engine's correct- and wrong-code verify
    (``bench_engine.py``), recovery codes and ``enable_many`` (``bench_admin.py``), 8
    processes on one SQLite file for 10 s (``bench_contention.py``) and start-up
    (``bench_startup.py``, in a fresh virtual environment). Run those scripts for the full
    measurements.

key cache memory
    What one entry of the service's cache of per-user HMAC states costs: a ``Keyed`` (two
    hash objects holding the pad states) in an ``lru_cache`` keyed as the service keys it.
    Python's allocations are counted with tracemalloc; the hash objects' OpenSSL contexts are
    allocated outside Python's allocator, so the growth of the resident set is measured too.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Timing, interleaved, markdown, table

import totpcore
from totpcore._bench import (
    derived_key,
    enrol,
    population_ids,
    replay,
    requests,
)
from totpcore._engine import Keyed

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
GROUPS = ("memory", "async", "sqlite", "population", "memory-per-entry", "others")


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


#: Requests each population contender gets beyond the timed ones, to tally its verdicts.
CHECKED = 300


def code_at_start(user_id: str) -> str:
    """The code of ``user_id``'s derived key at START."""
    return totpcore.TOTP(derived_key(user_id)).generate(START)


class Population:
    """A TwoFactor on a MemoryStore holding ``count`` users enrolled with derived keys."""

    def __init__(
        self,
        count: int,
        *,
        cipher: totpcore.SecretCipher | None = None,
        key_cache_size: int = totpcore.DEFAULT_KEY_CACHE_SIZE,
    ) -> None:
        self.clock = [START]
        self.ids = population_ids(count)
        self.service = totpcore.TwoFactor(
            totpcore.MemoryStore(),
            issuer="Bench",
            clock=lambda: self.clock[0],
            cipher=cipher,
            key_cache_size=key_cache_size,
        )
        # Imported two steps before START (an import marks its step used), so that the
        # warm-up login at START is fresh.
        self.clock[0] = START - 60
        started = time.perf_counter()
        enrol(self.service, self.ids)
        self.enrol_seconds = time.perf_counter() - started
        self.clock[0] = START
        # Steady state: a server that has been up a while has seen its users. Each logs in
        # once, at the step before the timed traffic, so the key cache holds what its size
        # allows (the most recent users) and no failure is left on any record.
        verify = self.service.verify
        for user_id in self.ids:
            assert verify(user_id, code_at_start(user_id)), "warm-up login refused"

    def traffic(self, count: int, *, correct: bool, seed: int) -> Callable[[], Any]:
        """A callable sending the next of ``count`` requests of random users."""
        stream = requests(self.ids, count, correct=correct, start=self.clock[0], seed=seed)
        return replay(self.service.verify, self.clock, stream)


def population_group(
    correct: bool, users: int, rounds: int, number: int
) -> tuple[dict[str, Callable[[], Any]], dict[str, str]]:
    """The population contenders for one kind of code, and a note of each one's enrolment."""
    count = rounds * number + CHECKED
    seed = 1 if correct else 2
    # The floor: the engine on one prebuilt key, the same kind of code, one step per call.
    single = population_ids(1, prefix="floor")
    floor_stream = requests(single, count, correct=correct, seed=seed)
    engine = totpcore.TOTP(derived_key(single[0]))
    cold_stream = requests(population_ids(users), count, correct=correct, seed=seed)
    keys = [derived_key(user_id) for user_id in cold_stream.users]
    position = [0, 0, 0]

    def engine_verify() -> Any:
        index = position[0]
        position[0] = index + 1
        return engine.verify(floor_stream.codes[index], at=floor_stream.times[index])

    def engine_cold() -> Any:
        index = position[1]
        position[1] = index + 1
        otp = totpcore.TOTP(keys[index])
        return otp.verify(cold_stream.codes[index], at=cold_stream.times[index])

    prebuilt = {user_id: totpcore.TOTP(derived_key(user_id)) for user_id in set(cold_stream.users)}

    def engine_prebuilt() -> Any:
        index = position[2]
        position[2] = index + 1
        otp = prebuilt[cold_stream.users[index]]
        return otp.verify(cold_stream.codes[index], at=cold_stream.times[index])

    key = totpcore.AESGCMCipher(os.urandom(32))
    plain = Population(users)
    sealed = Population(users, cipher=key)
    sized = Population(users, key_cache_size=users)
    sized_sealed = Population(users, cipher=key, key_cache_size=users)
    kind = "correct" if correct else "wrong"
    default = totpcore.DEFAULT_KEY_CACHE_SIZE
    contenders = {
        f"engine TOTP.verify, one prebuilt key, {kind} code (floor)": engine_verify,
        f"engine TOTP.verify, {users:,} prebuilt keys, random user": engine_prebuilt,
        "engine TOTP(key) built per request + verify (no key cache)": engine_cold,
        f"TwoFactor.verify, {users:,} users, key_cache_size={users:,}": sized.traffic(
            count, correct=correct, seed=seed
        ),
        f"TwoFactor.verify, {users:,} users, key_cache_size={users:,}, AESGCMCipher": (
            sized_sealed.traffic(count, correct=correct, seed=seed)
        ),
        f"TwoFactor.verify, {users:,} users, default key cache ({default:,})": plain.traffic(
            count, correct=correct, seed=seed
        ),
        f"TwoFactor.verify, {users:,} users, default key cache, AESGCMCipher": sealed.traffic(
            count, correct=correct, seed=seed
        ),
    }
    notes = {
        f"{users:,} users": f"enrolled in {plain.enrol_seconds:.1f} s",
        f"{users:,} users, AESGCMCipher": f"enrolled in {sealed.enrol_seconds:.1f} s",
    }
    return contenders, notes


def tally(contenders: dict[str, Callable[[], Any]]) -> dict[str, str]:
    """Send each contender's remaining requests and count the verdicts (a sanity check)."""
    counts = {}
    for name, send in contenders.items():
        if not name.startswith("TwoFactor"):
            continue
        reasons = collections.Counter(send().reason.value for _ in range(CHECKED))
        counts[name] = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    return counts


def resident_bytes() -> int:
    """The process's resident set size, in bytes (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def key_cache_memory(entries: int, *, cipher: bool, probe: bool = False) -> dict[str, float]:
    """Bytes per entry of a key cache like the service's, filled with ``entries`` users.

    The arguments (ids and stored secrets) already exist in the store, so only the entry
    itself, its ``Keyed`` and (with a cipher) the decrypted key are counted.
    """
    ids = population_ids(entries)
    secrets = [os.urandom(59 if cipher else 20) for _ in ids]
    plain_keys = [derived_key(user_id) for user_id in ids] if cipher else secrets

    def build(user_id: str, secret: bytes, generation: int, algorithm: str, digits: int) -> Keyed:
        index = int(user_id[4:])
        # With a cipher, decrypting yields a fresh bytes object per entry.
        key = bytes(memoryview(plain_keys[index])) if cipher else plain_keys[index]
        return Keyed(key, digits=digits, algorithm=algorithm)

    def fill() -> Any:
        cache = functools.lru_cache(maxsize=entries)(build)
        generation = 2**61 + 12345
        for user_id, secret in zip(ids, secrets, strict=True):
            cache(user_id, secret, generation, "SHA1", 6)
        return cache

    if probe:
        # In a fresh process (see main): memory freed earlier would be reused and hide the
        # growth of the resident set.
        gc.collect()
        rss_before = resident_bytes()
        cache = fill()
        return {"rss": (resident_bytes() - rss_before) / entries}
    command = [sys.executable, __file__, "--rss-probe", "cipher" if cipher else "plain"]
    command += ["--users", str(entries)]
    probed = subprocess.run(command, capture_output=True, text=True, check=True)
    rss = float(probed.stdout)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache = fill()
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del cache
    return {"tracemalloc": traced / entries, "rss": rss}


def population_results(
    users: int, rounds: int, number: int
) -> tuple[dict[str, dict[str, Timing]], dict[str, str]]:
    """Time both population groups; also return the enrolment and verdict notes."""
    results: dict[str, dict[str, Timing]] = {}
    notes: dict[str, str] = {}
    for correct in (False, True):
        contenders, enrolled = population_group(correct, users, rounds, number)
        group = f"population, {'correct' if correct else 'wrong'} codes"
        results[group] = interleaved(contenders, rounds=rounds, number=number)
        notes.update(enrolled)
        notes.update({f"{group}: {name}": counts for name, counts in tally(contenders).items()})
        del contenders
        gc.collect()
    return results, notes


def main(argv: list[str] | None = None) -> int:
    """Run the comparisons and print Markdown tables (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--number", type=int, default=3000, help="calls per round (memory)")
    parser.add_argument("--sqlite-number", type=int, default=150, help="calls per round (SQLite)")
    parser.add_argument("--users", type=int, default=100_000, help="population size")
    parser.add_argument(
        "--only", choices=GROUPS, action="append", help="run only these groups (repeatable)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rss-probe", choices=("plain", "cipher"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_probe:
        cipher = args.rss_probe == "cipher"
        print(key_cache_memory(args.users, cipher=cipher, probe=True)["rss"])
        return 0
    only = set(args.only or GROUPS)
    results: dict[str, dict[str, Timing]] = {}
    notes: dict[str, str] = {}
    memory = {}
    if "memory-per-entry" in only:
        memory = {
            "without cipher": key_cache_memory(args.users, cipher=False),
            "with AESGCMCipher": key_cache_memory(args.users, cipher=True),
        }
    with tempfile.TemporaryDirectory() as directory:
        if "memory" in only:
            results["memory"] = interleaved(
                memory_group(args.rounds, args.number), rounds=args.rounds, number=args.number
            )
        if "async" in only:
            results["async"] = async_group(args.rounds, args.number)
        if "sqlite" in only:
            results["sqlite"] = interleaved(
                sqlite_group(Path(directory), args.rounds, args.sqlite_number),
                rounds=args.rounds,
                number=args.sqlite_number,
            )
    if "population" in only:
        population, notes = population_results(args.users, args.rounds, args.number)
        results.update(population)
    measured = own_targets(results, args.users)
    if "others" in only:
        measured += other_targets()
    if args.json:
        report = {"results": results, "notes": notes, "key_cache": memory, "targets": measured}
        print(json.dumps(report, indent=2))
        return 0
    print_report(args.rounds, results, notes, memory, measured)
    return 0


def print_report(
    rounds: int,
    results: dict[str, dict[str, Timing]],
    notes: dict[str, str],
    memory: dict[str, dict[str, float]],
    measured: list[dict[str, str]],
) -> None:
    """Print the tables as Markdown."""
    print(f"Python {sys.version.split()[0]}, {rounds} rounds\n")
    if results:
        print(table(results, floor_label="first row of its group"))
    for name, note in notes.items():
        print(f"- {name}: {note}")
    if memory:
        print()
        rows = [
            [name, f"{row['tracemalloc']:.0f}", f"{row['rss']:.0f}"] for name, row in memory.items()
        ]
        headings = ["key cache entry", "bytes (tracemalloc)", "bytes (resident set)"]
        print(markdown(headings, rows))
    if measured:
        print("\nTargets\n")
        rows = [[row["what"], row["target"], row["measured"], row["verdict"]] for row in measured]
        print(markdown(["what", "target", "measured", ""], rows, right=2))


def target_row(what: str, target: str, measured: str, met: bool) -> dict[str, str]:
    """One line of the targets table."""
    return {
        "what": what,
        "target": target,
        "measured": measured,
        "verdict": "met" if met else "over",
    }


def ratio_row(
    what: str, group: dict[str, Timing] | None, label: str, limit: float
) -> list[dict[str, str]]:
    """A target on a ratio to the group's floor: the contender whose label starts with ``label``."""
    if group is None:
        return []
    ratio = next(row["ratio"] for name, row in group.items() if name.startswith(label))
    return [target_row(what, f"<= {limit:g}x", f"{ratio:.2f}x", ratio <= limit)]


def own_targets(results: dict[str, dict[str, Timing]], users: int) -> list[dict[str, str]]:
    """The targets this script's own groups measure."""
    rows = ratio_row(
        "TwoFactor.verify, MemoryStore, one user, vs TOTP.verify",
        results.get("memory"),
        "TwoFactor.verify, MemoryStore",
        2.0,
    )
    for kind in ("wrong", "correct"):
        rows += population_targets(results.get(f"population, {kind} codes"), users, kind)
    rows += ratio_row(
        "AsyncTwoFactor.verify vs TOTP.verify", results.get("async"), "AsyncTwoFactor", 2.5
    )
    sqlite = results.get("sqlite")
    if sqlite is not None:
        service = next(r for n, r in sqlite.items() if n.startswith("TwoFactor.verify"))
        two = next(r for n, r in sqlite.items() if "two transactions" in n)
        speedup = two["ratio"] / service["ratio"]
        rows.append(
            target_row(
                "SQLite login throughput vs 0.1.0's two-commit sequence, one thread",
                ">= 1.3x",
                f"{speedup:.2f}x",
                speedup >= 1.3,
            )
        )
    return rows


def population_targets(
    group: dict[str, Timing] | None, users: int, kind: str
) -> list[dict[str, str]]:
    """The population targets: the service with its key cache sized to the users.

    The target (2x the engine) is judged against the engine verifying the same random users
    with their keys prebuilt, which pays the same memory traffic for a user's key state; the
    ratio to one hot key is shown beside it, for reference.
    """
    if group is None:
        return []
    rows = []
    prebuilt = next(row["ratio"] for name, row in group.items() if "prebuilt keys" in name)
    for cipher in ("", ", AESGCMCipher"):
        label = f"TwoFactor.verify, {users:,} users, key_cache_size={users:,}{cipher}"
        hot = next(row["ratio"] for name, row in group.items() if name == label)
        what = f"{users:,} users, random user, {kind} code{cipher or ', no cipher'}"
        ratio = hot / prebuilt
        rows.append(
            target_row(
                f"{what}, vs the engine on the same users",
                "<= 2x",
                f"{ratio:.2f}x (vs one hot key: {hot:.2f}x)",
                ratio <= 2.0,
            )
        )
    default = next(row["ratio"] for name, row in group.items() if "default key cache (" in name)
    rows.append(
        {
            "what": f"{users:,} users, {kind} code, default key cache (4,096): reference",
            "target": "-",
            "measured": f"{default / prebuilt:.2f}x (vs one hot key: {default:.2f}x)",
            "verdict": "",
        }
    )
    return rows


def other_targets() -> list[dict[str, str]]:
    """The targets the other benchmark scripts measure, each run briefly."""
    import bench_admin
    import bench_contention
    import bench_engine
    import bench_startup

    print("measuring the other scripts' targets (about a minute) ...", file=sys.stderr)
    engine = bench_engine.measure(rounds=9, number=2000)
    rows = []
    for kind, limit in (("correct", 1.15), ("wrong", 1.25)):
        rows += ratio_row(
            f"TOTP.verify, {kind} code, vs the stdlib floor",
            engine[f"verify ({kind} code, window \u00b11)"],
            "totpcore TOTP.verify",
            limit,
        )
    recovery = bench_admin.recovery(rounds=5, number=10)
    for name, row in recovery.items():
        if name.startswith("use_recovery_code"):
            rows.append(target_row(name, "<= 2 ms", f"{row['ms']:.2f} ms", row["ms"] <= 2.0))
        elif name.startswith("new_recovery_codes"):
            rows.append(target_row(name, "<= 20 ms", f"{row['ms']:.2f} ms", row["ms"] <= 20.0))
    enabled = bench_admin.enable_many(100_000, 1)["SQLiteStore"]["best"]
    rows.append(
        target_row("enable_many, 100,000 users, SQLite", "< 5 s", f"{enabled:.2f} s", enabled < 5)
    )
    contention = bench_contention.run("store", 8, 10.0, 20_000)
    p999 = contention["ms"]["p99.9"]
    errors = contention["store_errors"]
    rows.append(
        target_row("8 processes, one SQLite file, 10 s: StoreErrors", "0", str(errors), errors == 0)
    )
    rows.append(
        target_row(
            "8 processes, one SQLite file, 10 s: p99.9", "<= 250 ms", f"{p999:.0f} ms", p999 <= 250
        )
    )
    for start_up in bench_startup.measure_targets(runs=20):
        ratio, limit = start_up["ratio"], start_up["target"]
        what = start_up["what"]
        rows.append(target_row(what, f"<= {limit:g}x", f"{ratio:.2f}x", ratio <= limit))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
