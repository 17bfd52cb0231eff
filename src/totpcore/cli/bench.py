"""The ``bench`` command: how fast totpcore verifies on this machine, and against what.

Everything is measured with :mod:`totpcore._bench` (as the scripts in ``benches/`` are): each
group's contenders are timed once per round, in an order that rotates from round to round,
and each contender's time is divided by its group's floor measured in the same round; the
report gives the medians. The service, the stores and their clients are imported only when
the command runs.

Groups (each row of the report names its group, and the first row of a group is its floor):

``engine``
    The stdlib floor of a verifier (precomputed HMAC pads, the whole ±1 window, no input
    checks), :meth:`totpcore.TOTP.verify`, and pyotp's ``verify(valid_window=1)`` when pyotp
    is installed, all on a wrong code (every contender does its full work).
``generate``
    The floor's generate, :meth:`totpcore.TOTP.generate`, and pyotp's ``at``.
``memory``
    :meth:`totpcore.TOTP.verify` of one prebuilt key (the floor) against
    :meth:`totpcore.TwoFactor.verify` on a :class:`~totpcore.MemoryStore` of ``--users`` users,
    a random user per request with the current step's correct code, the service's clock one
    step further at each request.
``sqlite``
    The SQL of one login issued directly on a temporary SQLite file (``BEGIN IMMEDIATE``, read
    the row, write it back, ``COMMIT``: one durable commit) against ``TwoFactor.verify`` on a
    :class:`~totpcore.SQLiteStore` on another temporary file in the same directory.
``db`` (with ``--db``)
    The same on the store named by ``--db``, against its raw round trips: two ``EVALSHA`` of
    a trivial script on Redis, two single-row ``UPDATE ... RETURNING`` on PostgreSQL, the SQL
    of one login on SQLite. Nothing of yours is touched: on Redis every key has a prefix of
    its own, on PostgreSQL the users live in a table of their own (and the floor in a
    temporary table), and a SQLite ``--db`` names a new file or a directory to create one in;
    all of it is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from totpcore._bench import (
    START,
    Timing,
    derived_key,
    enrol,
    floor_functions,
    interleaved,
    population_ids,
    postgres_floor,
    redis_floor,
    replay,
    requests,
    sqlite_login_floor,
    wrong_code,
)
from totpcore.cli._common import Parser, UsageError, emit
from totpcore.otp import TOTP
from totpcore.secret import encode_secret

__all__ = ["add_bench_parser"]

_EPILOG = """\
The report gives, per operation, calls per second on one core, microseconds per call and the
ratio to the first row of its group (the floor), each the median over the rounds. Ratios carry
over between machines; absolute figures depend on the machine and its load.

--json prints one object: "totpcore" (version), "python", "implementation", "platform",
"cpus", "rounds", "number" (calls per contender per round in memory), "store_number" (calls
per round on stores), "users", and "results": a list of objects with "group", "name" (a
stable identifier such as "engine.verify"), "label", "floor" (the name of the group's
floor), "ns_per_call", "per_second" (calls per second on one core) and "ratio" (to the floor;
1.0 for the floor itself).
"""
#: Users of the population on a network store or a --db (enrolling costs round trips).
_STORE_USERS = 2000
#: Calls per round on stores, as a fraction of --number (a store call costs ~100x more).
_STORE_SHARE = 60


@dataclass(frozen=True, slots=True)
class _Group:
    """One group of contenders: (name, label, callable), the floor first; calls per round."""

    name: str
    contenders: list[tuple[str, str, Callable[[], Any]]]
    number: int


def add_bench_parser(commands: Any, output: Parser) -> None:
    """Add ``bench`` to the main command tree.

    Args:
        commands: The main parser's subparsers object.
        output: The parent parser that contributes ``--json``.
    """
    bench = commands.add_parser(
        "bench",
        parents=[output],
        help="measure verification speed on this machine",
        description="Measure how fast totpcore verifies and generates codes on this machine, "
        "against a bare-standard-library floor, pyotp when installed, and the service on an "
        "in-memory store, on a temporary SQLite file and optionally on --db. About 10 "
        "seconds with the defaults; progress goes to standard error.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--rounds", type=_positive, default=15, help="timing rounds (default 15)")
    bench.add_argument(
        "--number",
        type=_positive,
        default=3000,
        help="calls per contender per round in memory (default 3000; on stores a 60th, at least 2)",
    )
    bench.add_argument(
        "--users",
        type=_positive,
        default=10_000,
        help="users of the in-memory and SQLite populations (default 10000; at most 2000 on --db)",
    )
    bench.add_argument(
        "--db",
        metavar="PATH|URL",
        help="also measure this store: a new SQLite file (or a directory to create one in), "
        "redis://... or postgresql://...",
    )
    bench.set_defaults(handler=_cmd_bench)


def _positive(text: str) -> int:
    """An integer of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class _Progress:
    """One line on standard error: rewritten in place on a terminal, else a line per group."""

    def __init__(self, groups: int) -> None:
        self._groups = groups
        self._done = 0
        self._live = sys.stderr.isatty()

    def group(self, name: str) -> Callable[[int], None]:
        """Announce the next group; return the per-round callback for ``interleaved``."""
        self._done += 1
        prefix = f"totpcore bench: [{self._done}/{self._groups}] {name}"
        if not self._live:
            print(f"{prefix} ...", file=sys.stderr, flush=True)

        def rounds_done(done: int) -> None:
            if self._live:
                print(f"\r{prefix}: round {done}\033[K", end="", file=sys.stderr, flush=True)

        return rounds_done

    def finish(self) -> None:
        """Clear the progress line."""
        if self._live:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _cmd_bench(args: argparse.Namespace) -> int:
    store_number = max(2, args.number // _STORE_SHARE)
    print("totpcore bench: enrolling the test users ...", file=sys.stderr, flush=True)
    with ExitStack() as cleanup:
        groups = [*_engine_groups(args.number), _memory_group(args.number, args.rounds, args.users)]
        directory = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="totpcore-")))
        groups.append(
            _sqlite_group(cleanup, directory, "sqlite", args.users, args.rounds, store_number)
        )
        if args.db:
            users = min(args.users, _STORE_USERS)
            groups.append(_db_group(cleanup, args.db, users, args.rounds, store_number))
        progress = _Progress(len(groups))
        results = []
        for group in groups:
            callback = progress.group(group.name)
            functions = {name: function for name, _, function in group.contenders}
            timings = interleaved(
                functions, rounds=args.rounds, number=group.number, progress=callback
            )
            results += _rows(group, timings)
        progress.finish()
    report = {
        "totpcore": _version(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "number": args.number,
        "store_number": store_number,
        "users": args.users,
        "results": results,
    }
    emit(args, report, _text(report))
    return 0


def _rows(group: _Group, timings: dict[str, Timing]) -> list[dict[str, Any]]:
    """The report's rows of one group."""
    floor = group.contenders[0][0]
    return [
        {
            "group": group.name,
            "name": name,
            "label": label,
            "floor": floor,
            "ns_per_call": timings[name]["ns"],
            "per_second": 1e9 / timings[name]["ns"],
            "ratio": 1.0 if name == floor else timings[name]["ratio"],
        }
        for name, label, _ in group.contenders
    ]


def _text(report: dict[str, Any]) -> str:
    """The report as an aligned table."""
    heading = (
        f"totpcore {report['totpcore']} on {report['implementation']} {report['python']}, "
        f"{report['platform']}, {report['cpus']} CPUs; median of {report['rounds']} rounds"
    )
    width = max(len(row["label"]) for row in report["results"])
    lines = [heading, "", f"{'':9}{'operation':{width}}  {'per s, 1 core':>13}  {'µs':>8}  ratio"]
    for row in report["results"]:
        lines.append(
            f"{row['group']:9}{row['label']:{width}}  {row['per_second']:13,.0f}  "
            f"{row['ns_per_call'] / 1000:8.2f}  {row['ratio']:.2f}x"
        )
    return "\n".join(lines)


def _version() -> str:
    """The installed distribution's version, or ``"unknown"`` in a bare source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("totpcore")
    except PackageNotFoundError:
        return "unknown"


# --- groups --------------------------------------------------------------------------------


def _engine_groups(number: int) -> list[_Group]:
    """The engine's verify and generate against the stdlib floor (and pyotp if installed)."""
    key = derived_key("engine")
    engine = TOTP(key)
    floor_verify, floor_generate = floor_functions(key)
    now = int(time.time())
    wrong = wrong_code(engine, now)
    verify = [
        ("engine.floor_verify", "stdlib floor, verify (wrong code)", lambda: floor_verify(wrong)),
        ("engine.verify", "TOTP.verify (wrong code)", lambda: engine.verify(wrong)),
    ]
    generate = [
        ("generate.floor_generate", "stdlib floor, generate", lambda: floor_generate(now)),
        ("generate.generate", "TOTP.generate", lambda: engine.generate(now)),
    ]
    try:
        import pyotp
    except ImportError:
        pass
    else:
        reference = pyotp.TOTP(encode_secret(key))
        verify.append(
            (
                "engine.pyotp_verify",
                "pyotp verify(valid_window=1) (wrong code)",
                lambda: reference.verify(wrong, valid_window=1),
            )
        )
        generate.append(("generate.pyotp_generate", "pyotp at", lambda: reference.at(now)))
    return [_Group("engine", verify, number), _Group("generate", generate, number)]


def _memory_group(number: int, rounds: int, users: int) -> _Group:
    """TwoFactor.verify on a MemoryStore population against the engine's verify."""
    from totpcore.service import TwoFactor
    from totpcore.stores.memory import MemoryStore

    count = rounds * number
    single = requests(["floor"], count, correct=True)
    engine = TOTP(derived_key("floor"))
    position = [0]

    def engine_verify() -> Any:
        index = position[0]
        position[0] = index + 1
        return engine.verify(single.codes[index], at=single.times[index])

    ids = population_ids(users)
    clock = [START]
    service = TwoFactor(MemoryStore(), issuer="Bench", clock=lambda: clock[0])
    enrol(service, ids)
    send = replay(service.verify, clock, requests(ids, count, correct=True))
    return _Group(
        "memory",
        [
            ("memory.engine_verify", "TOTP.verify, one key (correct code)", engine_verify),
            (
                "memory.service_verify",
                f"TwoFactor.verify, MemoryStore, {users:,} users",
                send,
            ),
        ],
        number,
    )


def _stepping(
    store: Any, ids: list[str], count: int, *, enrolled: bool = False
) -> Callable[[], Any]:
    """A service on ``store`` sending ``count`` correct-code logins of random users of ``ids``.

    The users are enrolled first unless ``enrolled``.
    """
    from totpcore.service import TwoFactor

    clock = [START]
    service = TwoFactor(store, issuer="Bench", clock=lambda: clock[0])
    if not enrolled:
        enrol(service, ids)
    return replay(service.verify, clock, requests(ids, count, correct=True))


def _sqlite_group(
    cleanup: ExitStack, directory: Path, name: str, users: int, rounds: int, number: int
) -> _Group:
    """TwoFactor.verify on SQLite files in ``directory`` against the SQL of one login."""
    from totpcore.stores.sqlite import SQLiteStore

    ids = population_ids(users)
    login, close = sqlite_login_floor(str(directory / "floor.sqlite3"), ids)
    cleanup.callback(close)
    path = directory / "service.sqlite3"
    # Enrolled without waiting for the disk; the measured store has the default settings.
    with SQLiteStore(path, synchronous="NORMAL") as loading:
        _stepping(loading, ids, 0)
    store = cleanup.enter_context(SQLiteStore(path))
    send = _stepping(store, ids, rounds * number, enrolled=True)
    return _Group(
        name,
        [
            (f"{name}.raw_login", "SQL of one login, one transaction", login),
            (f"{name}.service_verify", f"TwoFactor.verify, SQLiteStore, {users:,} users", send),
        ],
        number,
    )


def _db_group(cleanup: ExitStack, target: str, users: int, rounds: int, number: int) -> _Group:
    """The group of the store named by ``--db``, with ``users`` users."""
    scheme = target.partition("://")[0].lower() if "://" in target else ""
    if scheme in ("redis", "rediss", "unix"):
        return _redis_group(cleanup, target, users, rounds, number)
    if scheme in ("postgresql", "postgres"):
        return _postgres_group(cleanup, target, users, rounds, number)
    if scheme:
        raise UsageError(f"--db: unknown scheme {scheme!r}; use redis:// or postgresql://")
    return _sqlite_group(cleanup, _bench_directory(cleanup, target), "db", users, rounds, number)


def _bench_directory(cleanup: ExitStack, target: str) -> Path:
    """A new directory for the SQLite files of ``--db``, removed afterwards."""
    path = Path(target)
    if path.is_dir():
        return Path(
            cleanup.enter_context(tempfile.TemporaryDirectory(dir=path, prefix="totpcore-"))
        )
    if path.exists():
        raise UsageError(
            "--db: the file exists; give a new file name or a directory (the benchmark never "
            "writes into an existing database)"
        )
    if not path.parent.is_dir():
        raise UsageError(f"--db: no such directory: {path.parent}")
    return Path(
        cleanup.enter_context(tempfile.TemporaryDirectory(dir=path.parent, prefix=path.name))
    )


def _redis_group(cleanup: ExitStack, url: str, users: int, rounds: int, number: int) -> _Group:
    """RedisStore under a prefix of its own against two raw EVALSHA; keys removed after."""
    from totpcore.stores.redis import RedisStore

    prefix = f"totpcore-bench-{secrets.token_hex(6)}:"
    store = RedisStore.from_url(url, prefix=prefix)
    cleanup.callback(store.close)
    client = store.client
    cleanup.enter_context(_removing_prefix(client, prefix))
    ids = population_ids(users)
    send = _stepping(store, ids, rounds * number)
    floor = redis_floor(client, [f"{prefix}floor:{index}" for index in range(users)])
    return _Group(
        "db",
        [
            ("db.raw_login", "2 x EVALSHA of a trivial script (Redis)", floor),
            ("db.service_verify", f"TwoFactor.verify, RedisStore, {users:,} users", send),
        ],
        number,
    )


@contextmanager
def _removing_prefix(client: Any, prefix: str) -> Iterator[None]:
    """Delete every key under ``prefix`` on the way out (the prefix is hex: no glob escapes)."""
    try:
        yield
    finally:
        batch = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)


def _postgres_group(
    cleanup: ExitStack, conninfo: str, users: int, rounds: int, number: int
) -> _Group:
    """PostgresStore on a table of its own against two raw UPDATEs; the tables dropped after."""
    from totpcore.stores.postgres import PostgresStore

    table = f"totpcore_bench_{secrets.token_hex(6)}"
    store = PostgresStore(conninfo, table=table)
    cleanup.callback(store.close)
    cleanup.enter_context(_dropping(store, table))
    ids = population_ids(users)
    send = _stepping(store, ids, rounds * number)
    connection = cleanup.enter_context(store.pool.connection())
    # A temporary table: it lives on this one connection and vanishes with it.
    floor = postgres_floor(connection, f"{table}_floor", users, temporary=True)
    return _Group(
        "db",
        [
            ("db.raw_login", "2 x UPDATE ... RETURNING (PostgreSQL)", floor),
            (
                "db.service_verify",
                f"TwoFactor.verify, PostgresStore, {users:,} users",
                send,
            ),
        ],
        number,
    )


@contextmanager
def _dropping(store: Any, table: str) -> Iterator[None]:
    """Drop the store's two tables on the way out."""
    try:
        yield
    finally:
        with store.pool.connection() as connection:
            connection.execute(f"DROP TABLE IF EXISTS {table}, {table}_meta")
