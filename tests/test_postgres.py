"""PostgresStore and AsyncPostgresStore against a real PostgreSQL server.

The server is started once per session by ``tests/postgres_server.py`` (skipped, or failed
under ``TOTPCORE_REQUIRE_SERVICES=1``, when the binaries are missing). Each test gets tables
of its own (a fresh table name), so tests never see each other's rows.

Covered here: the shared contracts (sync and async), the service end to end on both shells,
races between processes, a server crash and restart in the middle of a verify loop, the
number of statements a verification sends, concurrent schema creation and newer schemas, a
deliberately racy store that the contract must catch, names, pools and error hygiene.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import services_required
from postgres_server import PostgresServer
from totpcore import (
    TOTP,
    AsyncTwoFactor,
    InvalidParameterError,
    Policy,
    Reason,
    StoreError,
    TwoFactor,
    UserStateError,
    Verdict,
    encode_secret,
)
from totpcore.stores import _rules
from totpcore.stores.protocol import (
    AsyncStore,
    AsyncUserListing,
    Attempt,
    Limits,
    Status,
    Store,
    UserListing,
    UserRecord,
)
from totpcore.testing import AsyncStoreContract, Blocking, FakeClock, StoreContract

try:
    import psycopg
    import psycopg_pool
except ImportError:  # pragma: no cover - only where the postgres extra is not installed
    if services_required():
        raise
    pytest.skip(
        "psycopg and psycopg-pool are not installed (pip install 'totpcore[postgres]')",
        allow_module_level=True,
    )

from totpcore.stores.postgres import SCHEMA_VERSION, AsyncPostgresStore, PostgresStore

T = TypeVar("T")

START = 1_700_000_010.0
DAY = 86_400.0
# Generous free failures: the losers of each race are charged, and these tests are about the
# compare-and-set, not the throttle (which has its own test).
RACE_POLICY = Policy(free_failures=100, lockout_failures=100, recovery_iterations=1_000)
FAST_POLICY = Policy(recovery_iterations=1_000)
PROCESSES = 8
THREADS = 16


def fresh_table() -> str:
    """A table name no other test uses."""
    return f"t_{uuid.uuid4().hex[:20]}"


def race(count: int, action: Callable[[], T]) -> list[T]:
    """Run ``action`` in ``count`` threads released together; return the results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action()
        except BaseException as error:  # reported in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def enrol(
    store: Store, policy: Policy = FAST_POLICY, user: str = "alice"
) -> tuple[TwoFactor, TOTP, FakeClock]:
    """An ACTIVE user on ``store``: the service, the user's phone and the service's clock."""
    clock = FakeClock(START)
    service = TwoFactor(store, issuer="X", policy=policy, clock=clock)
    service.enable(user)
    phone = TOTP.from_secret(service.begin_setup(user).secret)
    assert service.complete_setup(user, phone.generate(clock.now))
    return service, phone, clock


def wrong_code(phone: TOTP, now: float) -> str:
    """A well-formed code that matches no step near ``now``."""
    near = {phone.generate(now + 30 * offset) for offset in range(-3, 4)}
    return next(code for code in (f"{n:06d}" for n in range(10**6)) if code not in near)


@pytest.fixture(scope="module")
def shared_pool(postgres: PostgresServer) -> Iterator[psycopg_pool.ConnectionPool[Any]]:
    """One pool for the tests that do not care how their store connects.

    The restart test tests its connections after restarting the server, so that the tests
    after it do not meet the connections the restart broke.
    """
    pool = psycopg_pool.ConnectionPool(
        postgres.conninfo, min_size=2, max_size=20, kwargs={"autocommit": True}, open=True
    )
    yield pool
    pool.close()


@pytest.fixture
def pg_store(shared_pool: psycopg_pool.ConnectionPool[Any]) -> PostgresStore:
    """A PostgresStore on tables of its own."""
    return PostgresStore(shared_pool, table=fresh_table())


def admin(postgres: PostgresServer) -> psycopg.Connection[Any]:
    """A separate autocommit connection, for looking at and tampering with the tables."""
    return psycopg.connect(postgres.conninfo, autocommit=True)


# --- the contracts -------------------------------------------------------------------------


class TestPostgresStore(StoreContract):
    """Every guarantee of the Store protocol, on PostgreSQL (16 and 40 real threads)."""

    @pytest.fixture
    def store(self, pg_store: PostgresStore) -> PostgresStore:
        """A new, empty PostgresStore."""
        return pg_store


class TestAsyncPostgresStore(AsyncStoreContract):
    """Every guarantee of the AsyncStore protocol: coroutines interleaving on one loop."""

    @pytest.fixture
    def async_store(self, postgres: PostgresServer) -> AsyncPostgresStore:
        """A new AsyncPostgresStore with a pool of its own, opened on first use."""
        return AsyncPostgresStore(postgres.conninfo, table=fresh_table(), max_size=20)

    @pytest.fixture
    def store(self, async_store: AsyncPostgresStore) -> Iterator[Blocking]:
        """The async store through Blocking; its pool is closed on the loop it ran on."""
        with Blocking(async_store) as blocking:
            yield blocking
            asyncio.run_coroutine_threadsafe(async_store.close(), blocking.loop).result()


def test_stores_offer_the_listing(pg_store: PostgresStore, postgres: PostgresServer) -> None:
    """Both stores offer the optional listing, which sorts by code point, not by locale.

    The test database's default collation is linguistic (ICU English, when available), where
    ``"a" < "B"``; Python's sorted() puts ``"B"`` first, and so must the store.
    """
    assert isinstance(pg_store, UserListing)
    assert isinstance(AsyncPostgresStore(postgres.conninfo), AsyncUserListing)
    names = ["b", "B", "a", "A", "é", "z", "Z", "日本", "\U0001f600", "a b", "ab"]
    for name in names:
        assert pg_store.insert(UserRecord(name, Status.ACTIVE, b"k", 1))
    assert pg_store.user_ids() == sorted(names)
    assert pg_store.user_ids(after="Z", limit=3) == sorted(n for n in names if n > "Z")[:3]
    assert pg_store.user_ids(limit=-1) == []


# --- the SQL against the rules, differentially ----------------------------------------------

NOW = 1_700_000_000.0
# Stamps around NOW: some older than the 24-hour budget, some a clock step back or ahead, and
# some a fraction of a millisecond apart (where the nudge matters).
STAMPS = st.one_of(
    st.floats(min_value=NOW - 2 * DAY, max_value=NOW + 100, allow_nan=False),
    st.sampled_from([NOW, NOW - DAY, NOW - DAY + 0.001, NOW + 0.0005, NOW - 0.001]),
)
LOGS = st.lists(STAMPS, max_size=12, unique=True).map(lambda log: tuple(sorted(log)))
STEPS = st.one_of(st.none(), st.integers(min_value=0, max_value=60))


@st.composite
def records(draw: st.DrawFn) -> UserRecord:
    """A record with a random throttle state, replay mark and recovery hashes."""
    log = draw(LOGS)
    return UserRecord(
        user_id=f"u{uuid.uuid4().hex}",
        status=draw(st.sampled_from([Status.ACTIVE, Status.SETUP_PENDING])),
        secret=b"k",
        generation=draw(st.sampled_from([7, 8])),
        last_step=draw(STEPS),
        last_failure_at=draw(st.one_of(st.none(), STAMPS, st.just(max(log, default=NOW)))),
        last_success_at=draw(st.one_of(st.none(), STAMPS, st.sampled_from(log or (NOW,)))),
        locked_at=draw(st.one_of(st.none(), st.none(), STAMPS)),
        failure_log=log,
        recovery_hashes=tuple(draw(st.lists(st.sampled_from("abc"), max_size=3))),
    )


@pytest.fixture(scope="module")
def rule_store(shared_pool: psycopg_pool.ConnectionPool[Any]) -> PostgresStore:
    """One store for the differential tests; each example inserts a user of its own."""
    return PostgresStore(shared_pool, table=fresh_table())


@settings(max_examples=300, deadline=None)
@given(record=records(), data=st.data())
def test_begin_attempt_follows_the_rules(
    rule_store: PostgresStore, record: UserRecord, data: st.DataObject
) -> None:
    """The one-statement charge decides and writes exactly what _rules.charge does.

    Pruning, the run and the budget, the lock, the delay (free=0 included), the nudged stamp:
    the attempt and the stored record must equal the rule's, to the last bit of every float.
    The clock and the limits are drawn near the record's own boundaries (a stamp exactly 24
    hours old, a wait that has just or not quite passed, a lockout equal to the run), where
    an off-by-one in the SQL would show.
    """
    log, last = record.failure_log, record.last_failure_at
    near = [NOW] if last is None else [last + offset for offset in (-1.0, 0.0, 0.5, 1, 2, 3, 4)]
    now = data.draw(
        st.one_of(
            STAMPS,
            st.sampled_from(near),
            st.sampled_from([stamp + DAY for stamp in log] or [NOW]),
        )
    )
    limits = Limits(
        free=data.draw(st.integers(min_value=0, max_value=6)),
        base=data.draw(st.sampled_from([0.5, 1.0, 3.0])),
        cap=data.draw(st.sampled_from([1.0, 4.0, 900.0])),
        lockout=data.draw(
            st.one_of(st.integers(min_value=1, max_value=10), st.just(max(len(log), 1)))
        ),
    )
    assert rule_store.insert(record)
    written, expected = _rules.charge(record, status=Status.ACTIVE, now=now, limits=limits)
    attempt = rule_store.begin_attempt(record.user_id, status=Status.ACTIVE, now=now, limits=limits)
    assert attempt == expected
    assert rule_store.get(record.user_id) == (record if written is None else written)


@pytest.mark.parametrize(
    ("log", "since", "lockout"),
    [
        ((NOW - DAY, NOW - 10), NOW - 5, 100),  # exactly 24 hours old, not in the run: pruned
        ((NOW - DAY, NOW - 10), None, 100),  # exactly 24 hours old, in the run: kept
        ((NOW - DAY - 1, NOW - DAY, NOW - 10), NOW - 5, 2),  # the budget holds 1, not 2
        ((NOW - 2, NOW - 1), NOW - 1.5, 1),  # a run of 1 reaches a lockout of 1
    ],
)
def test_charge_boundaries_follow_the_rules(
    rule_store: PostgresStore, log: tuple[float, ...], since: float | None, lockout: int
) -> None:
    """The budget's and the lock's exact boundaries, where random stamps rarely land."""
    record = UserRecord(
        f"u{uuid.uuid4().hex}",
        Status.ACTIVE,
        b"k",
        7,
        failure_log=log,
        last_failure_at=log[-1],
        last_success_at=since,
    )
    limits = Limits(free=100, base=1.0, cap=1.0, lockout=lockout)
    assert rule_store.insert(record)
    written, expected = _rules.charge(record, status=Status.ACTIVE, now=NOW, limits=limits)
    assert rule_store.begin_attempt(
        record.user_id, status=Status.ACTIVE, now=NOW, limits=limits
    ) == (expected)
    assert rule_store.get(record.user_id) == (record if written is None else written)


@pytest.mark.parametrize("operation", ["mark_used", "activate", "resync", "consume_recovery_hash"])
@settings(max_examples=120, deadline=None)
@given(record=records(), data=st.data())
def test_conditional_writes_follow_the_rules(
    rule_store: PostgresStore, record: UserRecord, operation: str, data: st.DataObject
) -> None:
    """mark_used, activate, resync and consume_recovery_hash win and write as the rules do.

    The step is drawn around the mark (behind, equal, the next, the one after), and the
    charge is a stamp of the log or any stamp, so refunds of a stamp present and absent are
    both tried; array_remove agrees with the rules' removal of one stamp because a log never
    holds a stamp twice.
    """
    mark = 10 if record.last_step is None else record.last_step
    args: dict[str, Any] = {
        # Mostly the record's own generation: a wrong one only ever loses.
        "generation": data.draw(st.sampled_from([record.generation] * 3 + [9])),
        "charged_at": data.draw(st.one_of(STAMPS, st.sampled_from(record.failure_log or (NOW,)))),
    }
    if operation == "consume_recovery_hash":
        args["code_hash"] = data.draw(st.sampled_from("abd"))
    else:
        args["step"] = data.draw(st.sampled_from([mark - 1, mark, mark + 1, mark + 2]))
        args["drift"] = -1
        if operation == "mark_used":
            args["allow_equal"] = data.draw(st.booleans())
    assert rule_store.insert(record)
    expected = getattr(_rules, operation)(record, **args)
    won = getattr(rule_store, operation)(record.user_id, **args)
    assert won is (expected is not None)
    assert rule_store.get(record.user_id) == (record if expected is None else expected)


# --- the service end to end ----------------------------------------------------------------


def scenario(service: TwoFactor, clock: FakeClock) -> None:
    """Enable, set up, verify, replay, API repeat, throttle, recovery: one user's life."""
    assert service.enable("bob") is Status.SETUP_PENDING
    phone = TOTP.from_secret(service.begin_setup("bob").secret)
    assert service.verify("bob", phone.generate(clock.now)).reason is Reason.SETUP_REQUIRED
    assert service.complete_setup("bob", phone.generate(clock.now))
    clock.advance(30)
    code = phone.generate(clock.now)
    assert service.verify("bob", code).reason is Reason.ACCEPTED
    assert service.verify("bob", code).reason is Reason.REPLAYED
    assert service.verify_request("bob", code).reason is Reason.ACCEPTED  # API-header repeat
    wrong = wrong_code(phone, clock.now)
    # The replay above was the first of the default policy's 5 free failures (it was charged
    # and took nothing back); 4 wrong codes use up the rest.
    for _ in range(4):
        assert service.verify("bob", wrong).reason is Reason.INVALID
    throttled = service.verify("bob", phone.generate(clock.now + 30))
    assert throttled.reason is Reason.THROTTLED
    assert throttled.retry_after is not None
    assert throttled.retry_after > 0
    clock.advance(60)
    codes = service.new_recovery_codes("bob")
    assert service.use_recovery_code("bob", codes[0]).reason is Reason.ACCEPTED
    assert not service.use_recovery_code("bob", codes[0])
    assert service.verify("bob", phone.generate(clock.now)).reason is Reason.ACCEPTED
    service.unlock("bob")
    service.reset("bob")
    assert service.status("bob") is Status.SETUP_PENDING
    assert service.disable("bob")
    with pytest.raises(UserStateError):
        service.reset("bob")


def test_service_end_to_end_sync(pg_store: PostgresStore) -> None:
    """TwoFactor on a PostgresStore: a user's whole life, replay and throttle included."""
    clock = FakeClock(START)
    scenario(TwoFactor(pg_store, issuer="X", policy=FAST_POLICY, clock=clock), clock)


def test_service_end_to_end_async(postgres: PostgresServer) -> None:
    """AsyncTwoFactor on an AsyncPostgresStore: the same life, awaited."""
    clock = FakeClock(START)
    store = AsyncPostgresStore(postgres.conninfo, table=fresh_table())
    service = AsyncTwoFactor(store, issuer="X", policy=FAST_POLICY, clock=clock)
    with Blocking(service) as blocking:
        try:
            scenario(blocking, clock)  # type: ignore[arg-type]
        finally:
            asyncio.run_coroutine_threadsafe(store.close(), blocking.loop).result()


def test_async_store_as_context_manager_and_pool(postgres: PostgresServer) -> None:
    """``async with`` opens the tables up front; a given async pool stays open after close."""

    async def run() -> None:
        pool = psycopg_pool.AsyncConnectionPool(
            postgres.conninfo, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
        )
        await pool.open()
        try:
            async with AsyncPostgresStore(pool, table=fresh_table()) as store:
                assert isinstance(store, AsyncStore)
                assert store.pool is pool
                assert await store.insert(UserRecord("u", Status.ACTIVE, b"k", 1))
                assert await store.get("u") == UserRecord("u", Status.ACTIVE, b"k", 1)
            assert not pool.closed
        finally:
            await pool.close()
        closed = AsyncPostgresStore(postgres.conninfo, table=fresh_table())
        await closed.close()
        with pytest.raises(StoreError, match="closed"):
            await closed.get("u")

    asyncio.run(run())


# --- races between processes ---------------------------------------------------------------


def _verify_worker(
    conninfo: str, table: str, secret: str, rounds: int, barrier: Any, results: Any
) -> None:
    """One app server: its own store and pool, 16 threads verifying the round's code."""
    store = PostgresStore(conninfo, table=table, max_size=THREADS)
    clock = FakeClock(START)
    service = TwoFactor(store, issuer="X", policy=RACE_POLICY, clock=clock)
    phone = TOTP.from_secret(secret)
    for round_number in range(rounds):
        # A day per round, so the budget of one round is not the next one's.
        clock.now = START + (round_number + 1) * (DAY + 30)
        code = phone.generate(clock.now)
        barrier.wait()
        verdicts = race(THREADS, lambda code=code: service.verify("alice", code))  # type: ignore[misc]
        results.put((round_number, [verdict.reason.value for verdict in verdicts]))
        barrier.wait()
    store.close()


def test_one_code_eight_processes_sixteen_threads(postgres: PostgresServer) -> None:
    """8 processes x 16 threads verify one code at once: exactly one acceptance, per round.

    128 attempts exceed the largest lockout (100 a day), so the last ones of a round may
    find the user locked: every verdict is ACCEPTED once, REPLAYED or LOCKED, never a second
    acceptance. The test unlocks the user between rounds (an admin would).
    """
    table, rounds = fresh_table(), 3
    store = PostgresStore(postgres.conninfo, table=table)
    _, phone, _ = enrol(store, RACE_POLICY)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES + 1, timeout=120)
    results = context.Queue()
    args = (postgres.conninfo, table, encode_secret(phone.key), rounds, barrier, results)
    workers = [context.Process(target=_verify_worker, args=args) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(rounds):
            store.unlock("alice")
            barrier.wait()  # the round starts
            barrier.wait()  # every worker has verified
        outcomes = [results.get(timeout=60) for _ in range(PROCESSES * rounds)]
    finally:
        for worker in workers:
            worker.join(timeout=60)
        store.close()
    assert all(worker.exitcode == 0 for worker in workers)
    for round_number in range(rounds):
        reasons = Counter(
            reason for number, batch in outcomes if number == round_number for reason in batch
        )
        assert reasons["accepted"] == 1, (round_number, reasons)
        assert set(reasons) <= {"accepted", "replayed", "locked"}, reasons


def _guess_worker(conninfo: str, table: str, wrong: str, barrier: Any, results: Any) -> None:
    """One app server sending 10 wrong guesses at once, after the other servers are ready."""
    store = PostgresStore(conninfo, table=table, max_size=10)
    service = TwoFactor(store, issuer="X", policy=FAST_POLICY, clock=FakeClock(START + 30))
    barrier.wait()
    verdicts = race(10, lambda: service.verify("alice", wrong))
    results.put([verdict.reason.value for verdict in verdicts])
    store.close()


def test_forty_parallel_guesses_from_four_processes(postgres: PostgresServer) -> None:
    """40 wrong guesses from 4 processes at once: 5 evaluated (the free ones), 35 throttled."""
    table = fresh_table()
    store = PostgresStore(postgres.conninfo, table=table)
    service, phone, clock = enrol(store)
    wrong = wrong_code(phone, START + 30)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4, timeout=120)
    results = context.Queue()
    workers = [
        context.Process(
            target=_guess_worker, args=(postgres.conninfo, table, wrong, barrier, results)
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    try:
        reasons = Counter(reason for _ in workers for reason in results.get(timeout=120))
    finally:
        for worker in workers:
            worker.join(timeout=60)
    assert all(worker.exitcode == 0 for worker in workers)
    assert reasons == Counter({"invalid": 5, "throttled": 35}), reasons
    record = store.get("alice")
    assert record is not None
    assert record.failures == 5
    clock.now = START + 30
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.THROTTLED
    store.close()


# --- a crash in the middle of a verify loop ------------------------------------------------


def test_server_crash_and_restart_during_a_verify_loop(
    postgres: PostgresServer, shared_pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """The server is killed mid-loop and restarted: errors, never acceptances, then recovery.

    While the server is down every verification raises StoreError; after the restart the
    same store object (same pool) works again; no step is ever accepted twice, and every
    accepted code is refused when sent again.
    """
    store = PostgresStore(postgres.conninfo, table=fresh_table(), timeout=1.0, max_size=4)
    service, phone, clock = enrol(store)
    phase = ["up"]
    outcomes: list[tuple[str, str, int]] = []  # (phase, outcome, step)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            clock.now += 30  # a new step every time: each code can be accepted once
            code, step, seen = phone.generate(clock.now), int(clock.now) // 30, phase[0]
            try:
                reason = service.verify("alice", code).reason.value
            except StoreError:
                reason = "error"
            outcomes.append((seen, reason, step))
            if reason == "accepted":
                again = _verdict_or_error(lambda code=code: service.verify("alice", code))  # type: ignore[misc]
                assert again != "accepted", f"step {step} accepted twice"

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        _wait_for(lambda: sum(1 for o in outcomes if o[1] == "accepted") >= 5)
        postgres.kill()
        phase[0] = "down"  # set after the kill returned: the server is certainly gone
        _wait_for(lambda: sum(1 for o in outcomes if o[0] == "down") >= 3)
        phase[0] = "restarting"  # set before the start: it may be up any moment now
        postgres.start()
        phase[0] = "restarted"
        _wait_for(
            lambda: sum(1 for o in outcomes if o[:2] == ("restarted", "accepted")) >= 5,
            timeout=60,
        )
    finally:
        stop.set()
        worker.join()
        if not postgres.running:
            postgres.start()
        shared_pool.check()  # drop the connections the crash broke, for the tests after this
    down = [reason for seen, reason, _ in outcomes if seen == "down"]
    assert down, "no verification ran while the server was down"
    assert set(down) == {"error"}, Counter(down)
    accepted = [step for _, reason, step in outcomes if reason == "accepted"]
    assert len(accepted) == len(set(accepted))
    record = store.get("alice")
    assert record is not None
    assert record.last_step == max(accepted)
    # The last accepted code, sent again at the time it was accepted, is a replay.
    clock.now = max(accepted) * 30.0 + 1
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.REPLAYED
    store.close()


def _verdict_or_error(action: Callable[[], Verdict]) -> str:
    """The verdict's reason, or ``"error"`` for a StoreError."""
    try:
        return action().reason.value
    except StoreError:
        return "error"


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- statements per verification -----------------------------------------------------------


class CountingCursor(psycopg.Cursor[Any]):
    """A cursor that records every statement the client sends through it."""

    sent: ClassVar[list[str]] = []

    def execute(self, query: Any, params: Any = None, **options: Any) -> CountingCursor:
        """Record the statement, then send it."""
        CountingCursor.sent.append(str(query).split()[0])
        super().execute(query, params, **options)
        return self


def test_statements_per_verification(postgres: PostgresServer) -> None:
    """A login verify sends at most 2 statements; an API repeat no more; a wrong code 1.

    Counted twice: on the client (every ``execute``) and on the server
    (pg_stat_statements, which also sees any BEGIN or COMMIT the driver adds).
    """
    pool = psycopg_pool.ConnectionPool(
        postgres.conninfo,
        min_size=1,
        max_size=2,
        kwargs={"autocommit": True, "cursor_factory": CountingCursor},
        open=True,
    )
    store = PostgresStore(pool, table=fresh_table())
    # Two free failures: the replay and the wrong code use them up, the next is throttled.
    service, phone, clock = enrol(store, Policy(free_failures=2, recovery_iterations=1_000))
    wrong = wrong_code(phone, clock.now + 30)
    clock.advance(30)
    code = phone.generate(clock.now)
    counts: dict[str, tuple[int, int]] = {}
    checks: tuple[tuple[str, Callable[[], Verdict], Reason], ...] = (
        ("login", lambda: service.verify("alice", code), Reason.ACCEPTED),
        ("api repeat", lambda: service.verify_request("alice", code), Reason.ACCEPTED),
        ("replay", lambda: service.verify("alice", code), Reason.REPLAYED),
        ("wrong", lambda: service.verify("alice", wrong), Reason.INVALID),
        ("throttled", lambda: service.verify("alice", wrong), Reason.THROTTLED),
    )
    with admin(postgres) as observer:
        for name, action, expected in checks:
            observer.execute("SELECT pg_stat_statements_reset()")
            CountingCursor.sent.clear()
            assert action().reason is expected, name
            server = observer.execute(
                "SELECT coalesce(sum(calls), 0)::int FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND query NOT LIKE '%pg_stat_statements%'"
            ).fetchall()[0][0]
            counts[name] = (len(CountingCursor.sent), server)
    pool.close()
    assert counts["login"] == (2, 2), counts
    assert counts["api repeat"] == (2, 2), counts
    assert counts["replay"] == (2, 2), counts
    assert counts["wrong"] == (1, 1), counts
    # A refusal (here: throttled) writes nothing and reads the record that explains it.
    assert counts["throttled"] == (2, 2), counts


# --- schema creation and versions ----------------------------------------------------------


def _open_worker(conninfo: str, table: str, barrier: Any, results: Any) -> None:
    """Open a store on a new table at the same moment as the other processes."""
    barrier.wait()
    try:
        PostgresStore(conninfo, table=table).close()
    except StoreError as error:
        results.put(str(error))
    else:
        results.put("ok")


def test_concurrent_schema_creation(postgres: PostgresServer) -> None:
    """4 processes opening the same new table at once all succeed; it is created once."""
    table = fresh_table()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4, timeout=120)
    results = context.Queue()
    workers = [
        context.Process(target=_open_worker, args=(postgres.conninfo, table, barrier, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == ["ok"] * 4
    with admin(postgres) as connection:
        rows = connection.execute(
            psycopg.sql.SQL("SELECT name, value FROM {}").format(
                psycopg.sql.Identifier(table + "_meta")
            )
        ).fetchall()
    assert rows == [("schema_version", str(SCHEMA_VERSION))]


def test_newer_schema_is_refused(postgres: PostgresServer, pg_store: PostgresStore) -> None:
    """Tables marked with a newer schema version raise StoreError saying to upgrade."""
    assert pg_store.set_meta(
        "schema_version", str(SCHEMA_VERSION + 1), expected=str(SCHEMA_VERSION)
    )
    with pytest.raises(StoreError, match="upgrade totpcore"):
        PostgresStore(postgres.conninfo, table=pg_store.table)

    async def open_async() -> None:
        store = AsyncPostgresStore(postgres.conninfo, table=pg_store.table)
        try:
            with pytest.raises(StoreError, match="upgrade totpcore"):
                await store.get("alice")
        finally:
            await store.close()

    asyncio.run(open_async())


def test_foreign_tables_are_refused(postgres: PostgresServer) -> None:
    """A table of another application with the chosen name is never taken over."""
    table = fresh_table()
    with admin(postgres) as connection:
        connection.execute(
            psycopg.sql.SQL("CREATE TABLE {} (id int)").format(psycopg.sql.Identifier(table))
        )
    with pytest.raises(StoreError, match="another application"):
        PostgresStore(postgres.conninfo, table=table)
    with admin(postgres) as connection:
        connection.execute(
            psycopg.sql.SQL("CREATE TABLE {} (name text, value text)").format(
                psycopg.sql.Identifier(table + "_meta")
            )
        )
    with pytest.raises(StoreError, match="not totpcore's"):
        PostgresStore(postgres.conninfo, table=table)


# --- the contract catches a racy store -----------------------------------------------------


class RacyPostgresStore(PostgresStore):
    """A PostgresStore whose operations read, pause, then write in separate statements.

    Each applies the real rule to a record read by one ``SELECT`` and writes the result back
    with another statement after a pause: the classic race the real store's single
    statements avoid.
    """

    PAUSE = 0.005

    def _racy(self, user_id: str, rule: Callable[[UserRecord | None], UserRecord | None]) -> bool:
        """Read, decide, pause, write (broken on purpose)."""
        changed = rule(self.get(user_id))
        if changed is None:
            return False
        time.sleep(self.PAUSE)
        return self.replace(changed, generation=changed.generation)

    def mark_used(
        self,
        user_id: str,
        *,
        generation: int,
        step: int,
        drift: int,
        allow_equal: bool,
        charged_at: float,
    ) -> bool:
        """Read-then-write compare-and-set (broken on purpose)."""
        return self._racy(
            user_id,
            lambda row: _rules.mark_used(
                row,
                generation=generation,
                step=step,
                drift=drift,
                allow_equal=allow_equal,
                charged_at=charged_at,
            ),
        )

    def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """Read-then-write consumption (broken on purpose)."""
        return self._racy(
            user_id,
            lambda row: _rules.consume_recovery_hash(
                row, generation=generation, code_hash=code_hash, charged_at=charged_at
            ),
        )

    def begin_attempt(self, user_id: str, *, status: Status, now: float, limits: Limits) -> Attempt:
        """Read-then-write charging (broken on purpose)."""
        changed, attempt = _rules.charge(self.get(user_id), status=status, now=now, limits=limits)
        if changed is not None:
            time.sleep(self.PAUSE)
            self.replace(changed, generation=changed.generation)
        return attempt


@pytest.mark.parametrize(
    "test_name",
    [
        "test_parallel_mark_used_has_one_winner",
        "test_parallel_attempts_are_counted_exactly",
        "test_parallel_recovery_consumption_has_one_winner",
    ],
)
def test_contract_catches_a_racy_postgres_store(
    shared_pool: psycopg_pool.ConnectionPool[Any], test_name: str
) -> None:
    """The contract's race tests fail on a SELECT-then-UPDATE store on the same server.

    This is what makes the real store's green run mean something: the same harness, on the
    same server and pool, sees the race when the statements are split.
    """
    racy = RacyPostgresStore(shared_pool, table=fresh_table())
    with pytest.raises(AssertionError):
        getattr(StoreContract(), test_name)(racy)


# --- names, pools and errors ---------------------------------------------------------------


def test_custom_schema_and_table_names(
    postgres: PostgresServer, shared_pool: psycopg_pool.ConnectionPool[Any]
) -> None:
    """Odd names are quoted, not interpolated; each table pair keeps its own rows."""
    schema, table = 'Tenant "one"; DROP', "Users; --" + uuid.uuid4().hex[:8]
    store = PostgresStore(shared_pool, schema=schema, table=table)
    other = PostgresStore(shared_pool, schema=schema, table=fresh_table())
    public = PostgresStore(shared_pool, table=table)
    record = UserRecord("alice", Status.ACTIVE, b"k", 1)
    assert store.insert(record)
    assert store.set_meta("cipher", "x", expected=None)
    assert store.get("alice") == record
    assert other.get("alice") is None
    assert public.get("alice") is None
    assert other.get_meta("cipher") is None
    assert (store.schema, store.table) == (schema, table)
    with admin(postgres) as connection:
        found = connection.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND relkind = 'r' ORDER BY relname",
            (schema,),
        ).fetchall()
    assert (table,) in found
    assert (table + "_meta",) in found


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"table": ""}, InvalidParameterError),
        ({"table": "x" * 59}, InvalidParameterError),  # its _meta companion would be cut
        ({"table": "a\x00b"}, InvalidParameterError),
        ({"schema": "s" * 64}, InvalidParameterError),
        ({"table": 5}, TypeError),
        ({"max_size": 0}, InvalidParameterError),
        ({"min_size": 3, "max_size": 2}, InvalidParameterError),
        ({"timeout": 0}, InvalidParameterError),
        ({"timeout": "1"}, TypeError),
    ],
)
def test_options_are_checked(
    postgres: PostgresServer, options: dict[str, Any], error: type[Exception]
) -> None:
    """Bad names and pool options are refused before anything connects."""
    with pytest.raises(error):
        PostgresStore(postgres.conninfo, **options)
    with pytest.raises(error):
        AsyncPostgresStore(postgres.conninfo, **options)


def test_wrong_targets_are_refused(shared_pool: psycopg_pool.ConnectionPool[Any]) -> None:
    """Each store takes its own kind of pool, or a conninfo string."""
    with pytest.raises(TypeError):
        PostgresStore(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PostgresStore"):
        AsyncPostgresStore(shared_pool)  # type: ignore[arg-type]
    async_pool = psycopg_pool.AsyncConnectionPool("", open=False)
    with pytest.raises(TypeError, match="AsyncPostgresStore"):
        PostgresStore(async_pool)  # type: ignore[arg-type]


def test_conninfo_store_owns_its_pool(postgres: PostgresServer) -> None:
    """From a conninfo the store creates its pool and closes it; a given pool stays open."""
    with PostgresStore(postgres.conninfo, table=fresh_table()) as owned:
        assert owned.insert(UserRecord("u", Status.ACTIVE, b"k", 1))
        pool = owned.pool
    assert pool.closed
    with pytest.raises(StoreError):
        owned.get("u")
    owned.close()  # twice is fine
    given = psycopg_pool.ConnectionPool(postgres.conninfo, min_size=1, max_size=2, open=True)
    try:
        # A pool without autocommit works as well (the pool commits each statement).
        with PostgresStore(given, table=owned.table) as store:
            assert store.get("u") == UserRecord("u", Status.ACTIVE, b"k", 1)
            assert store.delete("u")
        assert not given.closed
        assert PostgresStore(given, table=owned.table).get("u") is None
    finally:
        given.close()


def test_psycopg_is_loaded_lazily_and_named_when_missing() -> None:
    """Importing the module loads no psycopg; a store without it says what to install."""
    script = """
import sys
import totpcore.stores.postgres as postgres
assert "psycopg" not in sys.modules and "asyncio" not in sys.modules
sys.modules["psycopg"] = None  # as if not installed: importing it raises ImportError
try:
    postgres.PostgresStore("host=127.0.0.1")
except ImportError as error:
    print(type(error).__name__, error)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.startswith("MissingDependencyError"), result.stdout + result.stderr
    assert "pip install 'totpcore[postgres]'" in result.stdout


def _dead_conninfo() -> str:
    """A conninfo for a port nobody listens on, with a password that must never leak."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"host=127.0.0.1 port={port} user=postgres dbname=x password=hunter2-SECRET"


def test_dead_server_is_a_store_error_without_secrets() -> None:
    """No server: StoreError naming only the exception type; no password in it or a repr."""
    conninfo = _dead_conninfo()
    with pytest.raises(StoreError) as caught:
        PostgresStore(conninfo, timeout=0.3)
    assert "hunter2" not in str(caught.value)
    assert "PoolTimeout" in str(caught.value)
    assert caught.value.__cause__ is None
    store = AsyncPostgresStore(conninfo, timeout=0.3, table="users")
    assert "hunter2" not in repr(store)
    assert repr(store) == "AsyncPostgresStore(schema='public', table='users')"

    async def use() -> None:
        try:
            with pytest.raises(StoreError) as failed:
                await store.get("u")
            assert "hunter2" not in str(failed.value)
        finally:
            await store.close()

    asyncio.run(use())


def test_errors_never_quote_a_row(pg_store: PostgresStore) -> None:
    """A failed statement's StoreError names the exception type only, never the row.

    PostgreSQL's own message for a NOT NULL violation quotes the failing row, secret
    included; neither the StoreError nor its (suppressed) cause may carry it into a log.
    """
    secret = b"TOP-SECRET-KEY-BYTES"
    fields: Any = {"algorithm": None}  # not a str: PostgreSQL refuses the row
    broken = UserRecord("alice", Status.ACTIVE, secret, 1)._replace(**fields)
    with pytest.raises(StoreError) as caught:
        pg_store.insert(broken)
    message = str(caught.value)
    assert message == "PostgreSQL failed (NotNullViolation)"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert secret.hex() not in repr(pg_store) + message
    assert "TOP-SECRET" not in repr(UserRecord("alice", Status.ACTIVE, secret, 1))
    with pytest.raises(StoreError, match=r"DataError|a value cannot be stored"):
        pg_store.get("nul\x00byte")
