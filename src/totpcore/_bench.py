"""A small measuring harness, shared by ``totpcore bench`` and the scripts in ``benches/``.

Everything here measures *ratios*: each contender is timed against a floor measured in the
same process, in interleaved rounds whose order rotates, so that a slow moment of the machine
slows numerator and denominator alike. Absolute times are reported for scale only.

Also here: the bare-standard-library floor of a TOTP verifier, keys derived from user ids (so
a benchmark can enrol a population without keeping a table of secrets), request streams for a
population (a random user per request, correct or wrong codes, a clock that moves one step per
request), the raw statements a store's login costs at least (SQLite, Redis, PostgreSQL) and
percentiles.

Only the standard library and the engine are imported here; the service, the stores and their
clients are imported by the functions that need them, so the command line starts without them.
"""

from __future__ import annotations

import hashlib
import math
import random
import statistics
import struct
import time
import timeit
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from totpcore.otp import TOTP

__all__ = [
    "START",
    "Requests",
    "Timing",
    "derived_key",
    "enrol",
    "floor_functions",
    "interleaved",
    "percentiles",
    "population_ids",
    "postgres_floor",
    "redis_floor",
    "replay",
    "requests",
    "sqlite_login_floor",
    "wrong_code",
]

#: Per contender: ``"ratio"`` (median of the per-round ratios to the floor) and ``"ns"``
#: (median nanoseconds per call).
Timing = dict[str, float]

#: A fixed Unix time the benchmarks' injected clocks start from (2023-11-14).
START = 1_700_000_010.0

_pack_counter: Callable[[int], bytes] = struct.Struct(">Q").pack
_unpack_word: Callable[[bytes, int], tuple[int]] = struct.Struct(">I").unpack_from


def interleaved(
    functions: dict[str, Callable[[], Any]],
    *,
    rounds: int,
    number: int,
    before_round: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Timing]:
    """Time every function once per round, in an order that rotates from round to round.

    Each round's times are divided by the first function's time in that same round (the
    floor), so a slow moment of the machine affects numerator and denominator alike.

    Args:
        functions: The contenders by name; the first one is the floor.
        rounds: How many rounds (each times every contender once).
        number: Calls per contender per round.
        before_round: Called before each round, untimed (e.g. to refresh a code).
        progress: Called after each round with the number of rounds done.

    Returns:
        Per contender, the median ratio to the floor and the median nanoseconds per call.
    """
    names = list(functions)
    ratios: dict[str, list[float]] = {name: [] for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        if before_round is not None:
            before_round()
        shift = round_index % len(names)
        order = names[shift:] + names[:shift]
        elapsed = {name: timeit.timeit(functions[name], number=number) for name in order}
        for name in names:
            ratios[name].append(elapsed[name] / elapsed[names[0]])
            times[name].append(elapsed[name] / number * 1e9)
        if progress is not None:
            progress(round_index + 1)
    return {
        name: {"ratio": statistics.median(ratios[name]), "ns": statistics.median(times[name])}
        for name in names
    }


def percentiles(samples: Sequence[float], points: Iterable[float]) -> dict[float, float]:
    """The nearest-rank percentiles of ``samples`` (``points`` in percent, 0 to 100).

    Nearest rank never interpolates, so every reported value is one that was observed (the
    100th percentile is the maximum).
    """
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    result = {}
    for point in points:
        rank = max(1, math.ceil(point / 100 * len(ordered)))
        result[point] = ordered[min(rank, len(ordered)) - 1]
    return result


# --- the floor of a verifier ------------------------------------------------------------------


def floor_functions(
    key: bytes, period: int = 30
) -> tuple[Callable[[str], bool], Callable[[int], str]]:
    """Return (verify, generate) written directly on hashlib, with nothing but the arithmetic.

    The floor is what a careful hand-written SHA1 verifier costs with the standard library
    alone: HMAC pad states precomputed once, and per candidate step two hash copies, the
    truncation and an integer compare. It has no input validation at all, so it is a lower
    bound, not a competitor. ``verify(code)`` checks the steps around the system clock
    (window ±1, the whole window always); ``generate(at)`` gives the code of a Unix time.
    """
    # SHA1: RFC 6238's default, what every authenticator app computes.
    sha1 = hashlib.sha1
    block = (key if len(key) <= 64 else sha1(key).digest()).ljust(64, b"\0")
    inner = sha1(bytes(b ^ 0x36 for b in block))
    outer = sha1(bytes(b ^ 0x5C for b in block))
    pack, unpack = _pack_counter, _unpack_word

    def truncated(counter: int) -> int:
        mac = inner.copy()
        mac.update(pack(counter))
        outer_mac = outer.copy()
        outer_mac.update(mac.digest())
        digest = outer_mac.digest()
        return (unpack(digest, digest[-1] & 15)[0] & 0x7FFFFFFF) % 1_000_000

    def verify(code: str) -> bool:
        wanted = int(code)
        counter = int(time.time()) // period
        found = False
        for candidate in (counter - 1, counter, counter + 1):
            if truncated(candidate) == wanted:
                found = True
        return found

    def generate(at: int) -> str:
        # %-formatting, as the engine uses: the fastest zero-padding in CPython.
        return "%06d" % truncated(at // period)  # noqa: UP031

    return verify, generate


def wrong_code(totp: TOTP, at: float, *, spread: int = 2) -> str:
    """A well-formed code that matches no step within ``spread`` steps of ``at``.

    So a verifier given it does its full work and refuses it.
    """
    taken = {totp.generate(at + delta * totp.period) for delta in range(-spread, spread + 1)}
    correct = int(totp.generate(at))
    modulus = 10**totp.digits
    candidate = (correct + modulus // 2) % modulus
    while f"{candidate:0{totp.digits}d}" in taken:
        candidate = (candidate + 1) % modulus
    return f"{candidate:0{totp.digits}d}"


# --- populations ------------------------------------------------------------------------------


def derived_key(user_id: str) -> bytes:
    """The 160-bit key a benchmark gives ``user_id``, derived from the id.

    Anyone can compute it, which is the point: the benchmark's "phone" needs no table of
    secrets. Never use this outside benchmarks.
    """
    return hashlib.blake2b(user_id.encode(), digest_size=20, person=b"totpcore-bench").digest()


def population_ids(count: int, prefix: str = "user") -> list[str]:
    """``count`` user ids: ``prefix`` followed by a number."""
    return [f"{prefix}{index:07d}" for index in range(count)]


def enrol(service: Any, user_ids: Iterable[str]) -> None:
    """Make each user ACTIVE with their derived key (``TwoFactor.import_secret``)."""
    import_secret = service.import_secret
    for user_id in user_ids:
        import_secret(user_id, derived_key(user_id))


@dataclass(frozen=True, slots=True)
class Requests:
    """A stream of login requests: who, with which code, at what time.

    Attributes:
        users: The user of each request.
        codes: The code each request submits.
        times: The Unix time of each request; strictly increasing, one step apart, so that
            no correct code is ever a replay.
        correct: Whether the codes are the right ones (else none matches the window).
    """

    users: list[str]
    codes: list[str]
    times: list[float]
    correct: bool


def requests(
    user_ids: Sequence[str],
    count: int,
    *,
    correct: bool,
    start: float = START,
    period: int = 30,
    seed: int = 0,
) -> Requests:
    """``count`` requests of random users of ``user_ids``, one step apart from ``start``.

    Correct codes are the current step's code of the user's derived key; wrong ones match no
    step in the window (see :func:`wrong_code`).
    """
    chooser = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
    users = [chooser.choice(user_ids) for _ in range(count)]
    times = [start + period * (index + 1) for index in range(count)]
    engines: dict[str, TOTP] = {}
    codes = []
    for user_id, at in zip(users, times, strict=True):
        engine = engines.get(user_id)
        if engine is None:
            engine = engines[user_id] = TOTP(derived_key(user_id), period=period)
        codes.append(engine.generate(at) if correct else wrong_code(engine, at))
    return Requests(users, codes, times, correct)


def replay(
    verify: Callable[[str, str], Any], clock: list[float], stream: Requests
) -> Callable[[], Any]:
    """A callable that sends the next request of ``stream`` to ``verify`` at its time.

    ``clock[0]`` is set to the request's time first (the service's injected clock reads it).
    The stream must be long enough for every call made.
    """
    users, codes, times = stream.users, stream.codes, stream.times
    position = [0]

    def send() -> Any:
        index = position[0]
        position[0] = index + 1
        clock[0] = times[index]
        return verify(users[index], codes[index])

    return send


# --- what a store's login costs at least ------------------------------------------------------


def sqlite_login_floor(
    path: str, user_ids: Sequence[str], *, seed: int = 0
) -> tuple[Callable[[], Any], Callable[[], None]]:
    """The statements of one login on a SQLite file, issued directly; returns (login, close).

    The file gets the store's schema (through :class:`~totpcore.SQLiteStore`) and the given
    users; each login then does what ``SQLiteStore`` does for one login, with the store's
    settings (WAL, ``synchronous=FULL``): ``BEGIN IMMEDIATE``, read a random user's row, write
    every column back, ``COMMIT``. One durable commit.
    """
    import sqlite3

    from totpcore.stores.protocol import UserRecord
    from totpcore.stores.sqlite import SQLiteStore

    columns = UserRecord._fields
    select = f"SELECT {', '.join(columns)} FROM totpcore_users WHERE user_id = ?"  # noqa: S608
    update = (
        f"UPDATE totpcore_users SET {', '.join(f'{name} = ?' for name in columns[1:])} "  # noqa: S608
        "WHERE user_id = ?"
    )
    SQLiteStore(path).close()  # the schema
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.executemany(
        "INSERT OR IGNORE INTO totpcore_users (user_id, status, secret, generation) "
        "VALUES (?, 'active', ?, 1)",
        ((user_id, derived_key(user_id)) for user_id in user_ids),
    )
    chooser = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
    failure_at = columns.index("last_failure_at")
    stamp = [START]

    def login() -> Any:
        user_id = chooser.choice(user_ids)
        stamp[0] += 30.0
        connection.execute("BEGIN IMMEDIATE")
        row = list(connection.execute(select, (user_id,)).fetchall()[0])
        row[failure_at] = stamp[0]
        connection.execute(update, (*row[1:], user_id))
        connection.execute("COMMIT")
        return row

    return login, connection.close


def redis_floor(
    client: Any, keys: Sequence[str], *, trips: int = 2, seed: int = 0
) -> Callable[[], Any]:
    """``trips`` ``EVALSHA`` of a trivial one-key script (``HINCRBY``) on a random key.

    The least a Redis store can do for one login: a scripted round trip per store operation
    on one hash (a login with a correct code makes two, the charge and the compare-and-set; a
    wrong code stops after the charge).
    """
    script = client.register_script("return redis.call('HINCRBY', KEYS[1], 'n', 1)")
    script(keys=[keys[0]])  # loaded once, so the timed calls are EVALSHA
    chooser = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
    rounds = range(trips)

    def login() -> Any:
        key = chooser.choice(keys)
        result = None
        for _ in rounds:
            result = script(keys=[key])
        return result

    return login


def postgres_floor(
    connection: Any,
    table: str,
    count: int,
    *,
    trips: int = 2,
    temporary: bool = False,
    seed: int = 0,
) -> Callable[[], Any]:
    """``trips`` single-row ``UPDATE ... RETURNING`` statements, each committed, one connection.

    The least a PostgreSQL store can do for one login: a conditional write of one row per
    store operation (two for a correct code, one for a wrong one). ``connection`` is an
    autocommit psycopg connection; ``table`` (a plain identifier made by the caller) is
    created with ``count`` rows, as a temporary table (dropped with the connection) when
    ``temporary``.
    """
    kind = "TEMPORARY TABLE" if temporary else "TABLE"
    connection.execute(
        f"CREATE {kind} IF NOT EXISTS {table} (id integer PRIMARY KEY, n bigint NOT NULL)"
    )
    connection.execute(
        f"INSERT INTO {table} SELECT g, 0 FROM generate_series(0, %s) AS g "  # noqa: S608
        "ON CONFLICT DO NOTHING",
        (count - 1,),
    )
    statement = f"UPDATE {table} SET n = n + 1 WHERE id = %s RETURNING n"  # noqa: S608
    chooser = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
    execute = connection.execute
    rounds = range(trips)

    def login() -> Any:
        row = chooser.randrange(count)
        result = None
        for _ in rounds:
            result = execute(statement, (row,)).fetchall()
        return result

    return login
