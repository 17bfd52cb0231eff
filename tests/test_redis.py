"""RedisStore and AsyncRedisStore against a real redis-server.

The generic guarantees come from StoreContract and AsyncStoreContract; the Lua scripts are
also run side by side with the reference rules (MemoryStore) on random operations. Then what
only a shared network store can get wrong: processes racing on one code, a server killed and
restarted mid-loop, round trips per login, a racy store the contract must catch, keys,
prefixes, the listing index, replicas (WAIT), and errors that never quote a secret.

The servers come from tests/redis_server.py (skipped, or failed under
``TOTPCORE_REQUIRE_SERVICES=1``, when redis-server or the redis package is missing).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import re
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from helpers import wrong_code
from redis_server import (  # noqa: F401 - the fixture is used by name
    RedisServer,
    free_port,
    redis_cluster_fixture,
    require_redis,
    running_server,
)
from totpcore import (
    TOTP,
    AsyncTwoFactor,
    InvalidParameterError,
    MemoryStore,
    MissingDependencyError,
    Policy,
    Reason,
    Store,
    StoreError,
    TwoFactor,
    encode_secret,
)
from totpcore.stores import _rules
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord
from totpcore.stores.redis import AsyncRedisStore, RedisStore, _record_fields
from totpcore.testing import AsyncStoreContract, Blocking, FakeClock, StoreContract

START = 1_700_000_010.0
SECRET = b"\x00\x9c\xffsecret-bytes\x00\x01"
# Lax throttling for the tests about compare-and-set, not about the throttle: free failures
# up to the lockout (the policy's maximum, 100), and cheap recovery hashing.
LAX = Policy(free_failures=100, lockout_failures=100, recovery_iterations=1_000)
FAST = Policy(recovery_iterations=1_000)
PROCESSES = 8
THREADS = 16


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[Any]:
    """A sync client of the session's server, whose database is flushed first."""
    client = redis_server.client()
    client.flushdb()
    yield client
    client.close()


def _close_on_loop(blocking: Blocking, client: Any) -> None:
    """Close an asyncio client on the loop its connections belong to."""
    asyncio.run_coroutine_threadsafe(client.aclose(), blocking.loop).result()


class TestRedisStore(StoreContract):
    """The store contract, on RedisStore."""

    @pytest.fixture
    def store(self, redis_client: Any) -> RedisStore:
        """A RedisStore on the flushed database."""
        return RedisStore(redis_client)


class TestRedisStoreOddPrefix(StoreContract):
    """The store contract again, under a prefix full of glob and hash-tag characters."""

    @pytest.fixture
    def store(self, redis_client: Any) -> RedisStore:
        """A RedisStore whose prefix has braces (one slot for all) and glob characters."""
        return RedisStore(redis_client, prefix="app{*}[x]?\\:")


class TestRedisClusterStore(StoreContract):
    """The store contract through a RedisCluster client, on a one-node cluster.

    A cluster node refuses any command or script whose keys lie in two slots, so this proves
    each operation keeps to one slot (the index and metadata by separate commands).
    """

    @pytest.fixture
    def store(self, redis_cluster: RedisServer) -> Iterator[RedisStore]:
        """A RedisStore on the flushed cluster."""
        client = redis_cluster.cluster_client()
        client.flushdb()
        yield RedisStore(client)
        client.close()


def test_cluster_node_refuses_two_slots(redis_cluster: RedisServer) -> None:
    """The test cluster would catch a two-slot script: the server itself refuses one."""
    import redis

    client = redis_cluster.client()
    try:
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            client.eval("return redis.call('GET', KEYS[2])", 2, "{a}x", "{b}y")
    finally:
        client.close()


class TestAsyncRedisStore(AsyncStoreContract):
    """The async store contract, on AsyncRedisStore (coroutines racing on one loop)."""

    @pytest.fixture
    def async_store(self, redis_server: RedisServer, redis_client: Any) -> AsyncRedisStore:
        """An AsyncRedisStore on the flushed database (redis_client flushed it)."""
        return AsyncRedisStore(redis_server.async_client())

    @pytest.fixture
    def store(self, async_store: AsyncRedisStore) -> Iterator[Any]:
        """The async store through Blocking; its client is closed on its own loop."""
        with Blocking(async_store) as blocking:
            yield blocking
            _close_on_loop(blocking, async_store.client)


# --- the Lua rules against the reference rules ---------------------------------------------


def _random_record(rng: random.Random, user_id: str) -> UserRecord:
    """A record in a random but plausible state (stamps around START, some old)."""
    count = rng.randrange(0, 12)
    log = tuple(
        sorted(START + rng.choice((-90_000.0, -50.0, 0.0)) + i * 0.25 for i in range(count))
    )
    return UserRecord(
        user_id=user_id,
        status=rng.choice((Status.ACTIVE, Status.ACTIVE, Status.SETUP_PENDING)),
        secret=SECRET,
        generation=rng.choice((7, 2**61 + 1)),
        last_step=rng.choice((None, 100, 2**53 + 1)),
        drift=rng.randrange(-3, 4),
        last_failure_at=log[-1] if log else rng.choice((None, START)),
        last_success_at=rng.choice((None, START - 60.0, START + 0.5)),
        locked_at=rng.choice((None, None, None, START)),
        failure_log=log,
        recovery_hashes=rng.choice(((), ("a$1", "b$2"))),
    )


def _random_operation(rng: random.Random, user_id: str, now: float) -> tuple[str, dict[str, Any]]:
    """One store operation with random arguments drawn near the records' values."""
    step = rng.choice((99, 100, 101, 102, 2**53 + 1, 2**53 + 2))
    generation = rng.choice((7, 7, 2**61 + 1, 8))
    charged = rng.choice((now, START, START + 0.25, START - 50.0))
    name = rng.choice(
        ("begin_attempt",) * 6 + ("mark_used",) * 3 + ("activate", "resync", "unlock")
        + ("consume_recovery_hash", "set_recovery_hashes", "set_secret")
    )  # fmt: skip
    arguments: dict[str, Any] = {"user_id": user_id}
    if name == "begin_attempt":
        limits = Limits(
            free=rng.choice((0, 2, 5)), base=rng.choice((0.5, 1.0)), cap=60.0, lockout=12
        )
        arguments.update(status=rng.choice((Status.ACTIVE, Status.SETUP_PENDING)), now=now)
        arguments["limits"] = limits
    elif name == "mark_used":
        arguments.update(generation=generation, step=step, drift=1, charged_at=charged)
        arguments["allow_equal"] = rng.random() < 0.5
    elif name in ("activate", "resync"):
        arguments.update(generation=generation, step=step, drift=-1, charged_at=charged)
    elif name == "consume_recovery_hash":
        arguments.update(generation=generation, code_hash=rng.choice(("a$1", "b$2", "c$3")))
        arguments["charged_at"] = charged
    elif name == "set_recovery_hashes":
        arguments.update(generation=generation, hashes=rng.choice(((), ("c$3",), ("a$1",))))
    elif name == "set_secret":
        arguments.update(generation=generation, expected=SECRET, secret=SECRET[::-1])
    return name, arguments


def test_scripts_match_the_reference_rules(redis_client: Any) -> None:
    """Random operations give the same answers and records on Redis as on MemoryStore.

    MemoryStore applies totpcore.stores._rules directly; every script must agree with it to
    the last bit of every float, including stamps nudged by the script itself.
    """
    rng = random.Random(20240607)
    redis_store, reference = RedisStore(redis_client), MemoryStore()
    for round_number in range(40):
        user_id = f"user-{round_number % 4}"
        record = _random_record(rng, user_id)
        for store in (redis_store, reference):
            store.delete(user_id)
            assert store.insert(record)
        now = START
        for _ in range(15):
            # Clocks that stand still, step back, crawl or jump.
            now += rng.choice((0.0, -2.0, 0.0004, 0.5, 1.0, 40.0, 90_000.0))
            name, arguments = _random_operation(rng, user_id, now)
            user = arguments.pop("user_id")
            expected = getattr(reference, name)(user, **arguments)
            actual = getattr(redis_store, name)(user, **arguments)
            assert actual == expected, (name, arguments)
            assert redis_store.get(user) == reference.get(user), (name, arguments)


def test_stamp_round_trips_exactly(redis_client: Any) -> None:
    """A stamp the script computes (last + 0.001) reads back as exactly Python's float."""
    store = RedisStore(redis_client)
    last = 1_700_000_000.1 + 1e-7
    store.insert(UserRecord("alice", Status.ACTIVE, SECRET, 7, last_failure_at=last))
    limits = Limits(free=5, base=1.0, cap=900.0, lockout=100)
    attempt = store.begin_attempt("alice", status=Status.ACTIVE, now=last - 5, limits=limits)
    assert attempt.record is not None
    assert attempt.record.last_failure_at == last + _rules.STAMP_NUDGE
    assert attempt.record.failure_log == (last + _rules.STAMP_NUDGE,)


# --- the service on the store --------------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def make_redis_service(
    request: pytest.FixtureRequest, redis_server: RedisServer, redis_client: Any
) -> Iterator[Callable[..., TwoFactor]]:
    """``make(**options)``: a TwoFactor on RedisStore, or an AsyncTwoFactor (via Blocking)."""
    closers: list[Callable[[], None]] = []

    def make(**options: Any) -> TwoFactor:
        options.setdefault("issuer", "Example")
        if request.param == "sync":
            return TwoFactor(RedisStore(redis_client), **options)
        client = redis_server.async_client()
        blocking = Blocking(AsyncTwoFactor(AsyncRedisStore(client), **options))
        closers.append(blocking.close)
        closers.append(lambda: _close_on_loop(blocking, client))
        return cast(TwoFactor, blocking)

    yield make
    while closers:
        closers.pop()()


def _enrol(service: TwoFactor, clock: FakeClock, user_id: str = "alice") -> TOTP:
    """Enable and set up ``user_id``; return their phone."""
    assert service.enable(user_id) is Status.SETUP_PENDING
    phone = TOTP.from_secret(service.begin_setup(user_id).secret)
    assert service.complete_setup(user_id, phone.generate(clock.now))
    return phone


def test_service_enrol_verify_and_replay(make_redis_service: Callable[..., TwoFactor]) -> None:
    """Enable, set up, log in; a used code is refused; an API repeat is allowed."""
    clock = FakeClock(START)
    service = make_redis_service(policy=FAST, clock=clock)
    phone = _enrol(service, clock)
    assert service.status("alice") is Status.ACTIVE
    # The setup code's step counts as used.
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.REPLAYED
    clock.advance(30)
    code = phone.generate(clock.now)
    assert service.verify("alice", code)
    assert service.verify("alice", code).reason is Reason.REPLAYED
    assert service.verify_request("alice", code)  # the same header on the next request
    assert service.verify("nobody", code).reason is Reason.NOT_ENABLED


def test_service_throttle_and_lock(make_redis_service: Callable[..., TwoFactor]) -> None:
    """Wrong codes: free ones, then a wait with retry_after, then a lock only unlock lifts."""
    clock = FakeClock(START)
    policy = Policy(free_failures=2, lockout_failures=4, recovery_iterations=1_000)
    service = make_redis_service(policy=policy, clock=clock)
    phone = _enrol(service, clock)
    clock.advance(30)
    # Wrong at each of the three readings it is sent at, an hour apart.
    wrong = wrong_code(phone, clock.now, clock.now + 3600, clock.now + 7200)
    reasons = [service.verify("alice", wrong).reason for _ in range(2)]
    assert reasons == [Reason.INVALID, Reason.INVALID]
    throttled = service.verify("alice", phone.generate(clock.now))
    assert throttled.reason is Reason.THROTTLED
    assert throttled.retry_after is not None
    for _ in range(2):
        clock.advance(3600)
        assert service.verify("alice", wrong).reason is Reason.INVALID
    clock.advance(3600)
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.LOCKED
    service.unlock("alice")
    assert service.verify("alice", phone.generate(clock.now))


def test_service_recovery_codes_reset_and_disable(
    make_redis_service: Callable[..., TwoFactor],
) -> None:
    """A recovery code works once; reset asks for setup again; disable removes the user."""
    clock = FakeClock(START)
    service = make_redis_service(policy=FAST, clock=clock)
    _enrol(service, clock)
    codes = service.new_recovery_codes("alice")
    assert service.use_recovery_code("alice", codes[0])
    assert not service.use_recovery_code("alice", codes[0])
    assert service.use_recovery_code("alice", codes[1])
    service.reset("alice")
    assert service.status("alice") is Status.SETUP_PENDING
    assert service.disable("alice") is True
    assert service.status("alice") is Status.DISABLED


def _wrong_code(phone: TOTP, now: float) -> str:
    """A well-formed code no step near ``now`` produces."""
    near = {phone.generate(now + 30 * offset) for offset in range(-2, 3)}
    return next(code for code in (f"{n:06d}" for n in range(10**6)) if code not in near)


# --- processes -----------------------------------------------------------------------------


def _race(count: int, action: Callable[[], Reason]) -> list[Reason]:
    """Run ``action`` in ``count`` threads released together; return their results."""
    barrier = threading.Barrier(count)
    results: list[Reason] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait(timeout=60)
        outcome = action()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _verify_worker(
    url: str,
    secret: str,
    times: list[float],
    code: str | None,
    policy: Policy,
    threads: int,
    barrier: Any,
    results: Any,
) -> None:
    """One app server: its own RedisStore; per round, ``threads`` threads verify one code.

    ``code`` None: the phone's code of the round's time (right); otherwise that code.
    """
    store = RedisStore.from_url(url)
    clock = FakeClock(times[0])
    service = TwoFactor(store, issuer="X", policy=policy, clock=clock)
    phone = TOTP.from_secret(secret)
    for round_number, now in enumerate(times):
        clock.set(now)
        guess = code or phone.generate(now)
        barrier.wait(timeout=60)  # every process starts the round together
        reasons = _race(threads, lambda guess=guess: service.verify("alice", guess).reason)  # type: ignore[misc]
        results.put((round_number, [reason.value for reason in reasons]))
        barrier.wait(timeout=60)  # the parent unlocks between rounds
    store.close()


def _run_processes(
    server: RedisServer,
    processes: int,
    threads: int,
    times: list[float],
    *,
    code: str | None,
    policy: Policy,
    between: Callable[[], None],
) -> list[Counter[str]]:
    """Start the workers (spawned), run the rounds in lock-step; reasons counted per round."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    results = context.Queue()
    phone_secret = _SHARED["secret"]
    workers = [
        context.Process(
            target=_verify_worker,
            args=(server.url, phone_secret, times, code, policy, threads, barrier, results),
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in times:
            barrier.wait(timeout=120)
            barrier.wait(timeout=120)
            between()
        outcomes = [results.get(timeout=60) for _ in range(processes * len(times))]
    finally:
        for worker in workers:
            worker.join(timeout=60)
    assert all(worker.exitcode == 0 for worker in workers)
    counts: list[Counter[str]] = [Counter() for _ in times]
    for round_number, reasons in outcomes:
        counts[round_number].update(reasons)
    return counts


# The enrolled user's secret, handed to the spawned workers.
_SHARED: dict[str, str] = {}


def _enrolled_on(client: Any, policy: Policy) -> tuple[TwoFactor, TOTP, FakeClock]:
    """Alice enrolled on a RedisStore of ``client``; her secret noted for the workers."""
    clock = FakeClock(START)
    service = TwoFactor(RedisStore(client), issuer="X", policy=policy, clock=clock)
    phone = _enrol(service, clock)
    _SHARED["secret"] = encode_secret(phone.key)
    return service, phone, clock


def test_one_code_eight_processes_sixteen_threads(
    redis_server: RedisServer, redis_client: Any
) -> None:
    """8 processes x 16 threads verify one fresh code: exactly one acceptance, 3 rounds.

    128 attempts per round exceed the largest lockout a policy allows (100), so each round
    also runs into the lock: the attempts charged after it are LOCKED, the others REPLAYED
    but one. The parent unlocks between rounds, a day apart so the budget starts afresh.
    """
    service, _, _ = _enrolled_on(redis_client, LAX)
    times = [START + (round_number + 1) * (86_400 + 30) for round_number in range(3)]
    counts = _run_processes(
        redis_server,
        PROCESSES,
        THREADS,
        times,
        code=None,
        policy=LAX,
        between=lambda: service.unlock("alice"),
    )
    for count in counts:
        assert count["accepted"] == 1, counts
        assert set(count) <= {"accepted", "replayed", "locked"}, counts
        assert sum(count.values()) == PROCESSES * THREADS


def test_forty_parallel_guesses_four_processes(
    redis_server: RedisServer, redis_client: Any
) -> None:
    """40 simultaneous wrong guesses from 4 processes: only the 5 free ones are evaluated."""
    _, phone, clock = _enrolled_on(redis_client, FAST)
    now = clock.now + 30
    counts = _run_processes(
        redis_server,
        4,
        10,
        [now],
        code=_wrong_code(phone, now),
        policy=FAST,
        between=lambda: None,
    )
    assert counts[0]["invalid"] == FAST.free_failures, counts
    assert counts[0]["throttled"] == 40 - FAST.free_failures, counts
    record = RedisStore(redis_client).get("alice")
    assert record is not None
    assert record.failures == FAST.free_failures


# --- a crash of the server -----------------------------------------------------------------


def test_server_killed_mid_loop_and_restarted() -> None:
    """SIGKILL mid-loop: errors, never acceptances, then service again with the same client.

    The server runs with appendonly yes and appendfsync always, so every acknowledged
    mark_used survives: no step is accepted twice across the restart.
    """
    with running_server(durable=True) as server:
        client = server.client(socket_timeout=2.0)
        store = RedisStore(client)
        clock = FakeClock(START)
        service = TwoFactor(store, issuer="X", policy=LAX, clock=clock)
        phone = _enrol(service, clock)
        accepted: Counter[float] = Counter()
        failed_at: list[float] = []
        killer = threading.Timer(0.15, server.kill)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            clock.advance(30)
            try:
                verdict = service.verify("alice", phone.generate(clock.now))
            except StoreError:
                failed_at.append(clock.now)
                break
            assert verdict, verdict
            accepted[clock.now] += 1
            if len(accepted) == 6:
                # Armed once the loop has run, not when it starts: on a slow machine (an fsync
                # per write) 0.15 s might not see six verifications. The kill still lands at an
                # arbitrary point of the loop, 0.15 s later.
                killer.start()
        assert len(accepted) > 5, "the loop did not run before the kill"
        killer.join()
        assert failed_at, "the server was never seen down"
        for _ in range(5):  # the outage: errors, never an acceptance
            clock.advance(30)
            with pytest.raises(StoreError):
                service.verify("alice", phone.generate(clock.now))
        server.start()
        # The same client reconnects; every step accepted before the kill stays used.
        record = store.get("alice")
        assert record is not None
        assert record.last_step is not None
        assert record.last_step >= int(max(accepted)) // 30
        # The latest steps (each refusal is a charged failure: not all of them, or the
        # user locks) and the one that failed: none is accepted again.
        for at in [*sorted(accepted)[-20:], *failed_at]:
            clock.set(at)
            verdict = service.verify("alice", phone.generate(at))
            if verdict:
                accepted[at] += 1
            else:
                assert verdict.reason is Reason.REPLAYED, verdict
        assert max(accepted.values()) == 1, "a step was accepted twice"
        clock.set(max(accepted) + 3000)
        assert service.verify("alice", phone.generate(clock.now))
        client.close()


# --- round trips ---------------------------------------------------------------------------


def _counting_client(server: RedisServer, sent: list[bytes]) -> Any:
    """A client whose connections record every packet they send (one per round trip)."""
    import redis

    class CountingConnection(redis.connection.Connection):
        """A connection that notes each packet it sends."""

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            """Note the packet, then send it."""
            sent.append(b"".join(command) if isinstance(command, list) else bytes(command))
            super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

    pool = redis.ConnectionPool(
        host="127.0.0.1", port=server.port, connection_class=CountingConnection
    )
    return redis.Redis(connection_pool=pool)


def _names(packets: list[bytes]) -> list[str]:
    """The first command's name in each packet."""
    return [
        match.group(1).decode().upper()
        for packet in packets
        if (match := re.match(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)", packet))
    ]


def test_round_trips_per_login(redis_server: RedisServer, redis_client: Any) -> None:
    """A login costs 2 round trips (EVALSHA, EVALSHA); an API repeat too; a wrong code 1.

    Measured once the server has the scripts: the first use of a script on a server (or
    after a restart) adds one EVAL, as test_scripts_reload_after_script_flush shows.
    """
    sent: list[bytes] = []
    client = _counting_client(redis_server, sent)
    clock = FakeClock(START)
    service = TwoFactor(RedisStore(client), issuer="X", policy=FAST, clock=clock)
    phone = _enrol(service, clock)
    clock.advance(30)
    assert service.verify("alice", phone.generate(clock.now))  # loads the scripts: see below
    clock.advance(30)
    code = phone.generate(clock.now)
    wrong = _wrong_code(phone, clock.now)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("login", lambda: service.verify("alice", code)),
        ("api repeat", lambda: service.verify_request("alice", code)),
        ("replay", lambda: service.verify("alice", code)),
        ("wrong code", lambda: service.verify("alice", wrong)),
    ]
    measured = {}
    for label, call in cases:
        sent.clear()
        call()
        measured[label] = _names(sent)
    assert measured == {
        "login": ["EVALSHA", "EVALSHA"],
        "api repeat": ["EVALSHA", "EVALSHA"],
        "replay": ["EVALSHA", "EVALSHA"],  # the compare-and-set is what refuses it
        "wrong code": ["EVALSHA"],
    }
    client.close()


def test_round_trips_seen_by_the_server(redis_server: RedisServer, redis_client: Any) -> None:
    """MONITOR, on the server: an async login sends two EVALSHA and nothing else."""
    clock = FakeClock(START)
    client = redis_server.async_client()
    blocking = Blocking(AsyncTwoFactor(AsyncRedisStore(client), issuer="X", clock=clock))
    try:
        service = cast(TwoFactor, blocking)
        phone = _enrol(service, clock)
        clock.advance(30)
        assert service.verify("alice", phone.generate(clock.now))  # loads the scripts
        clock.advance(30)
        marker = "totpcore-end-of-login"
        # Connected before MONITOR starts, so its handshake is not seen among the commands.
        marker_client = redis_server.client()
        marker_client.ping()
        with redis_client.monitor() as monitor:
            assert service.verify("alice", phone.generate(clock.now))
            marker_client.echo(marker)
            commands = []
            while marker not in (entry := monitor.next_command())["command"]:
                if entry["client_type"] != "lua":  # commands a script ran are not round trips
                    commands.append(entry["command"].split()[0].strip('"').upper())
        assert commands == ["EVALSHA", "EVALSHA"]
        marker_client.close()
    finally:
        _close_on_loop(blocking, client)
        blocking.close()


def test_scripts_reload_after_script_flush(redis_server: RedisServer, redis_client: Any) -> None:
    """After SCRIPT FLUSH (as after a restart) NOSCRIPT costs one EVAL each, then EVALSHA."""
    sent: list[bytes] = []
    client = _counting_client(redis_server, sent)
    clock = FakeClock(START)
    service = TwoFactor(RedisStore(client), issuer="X", policy=FAST, clock=clock)
    phone = _enrol(service, clock)
    redis_client.script_flush()
    for expected in (["EVALSHA", "EVAL", "EVALSHA", "EVAL"], ["EVALSHA", "EVALSHA"]):
        clock.advance(30)
        sent.clear()
        assert service.verify("alice", phone.generate(clock.now))
        assert _names(sent) == expected
    client.close()


# --- a racy store the contract must catch --------------------------------------------------


def _mapping(record: UserRecord) -> dict[str, Any]:
    """The hash fields of a record, in the store's own encoding (so it reads back)."""
    fields = _record_fields(record)
    return dict(zip(fields[::2], fields[1::2], strict=True))


class RacyRedisStore(RedisStore):
    """A RedisStore whose conditional operations read, pause, then write: the classic race.

    Each applies the real rule to the record read by HMGET and writes the result back with
    a plain HSET after a pause, outside any script.
    """

    PAUSE = 0.002

    def _racy(self, user_id: str, rule: Callable[[UserRecord | None], UserRecord | None]) -> bool:
        """Read, decide, pause, write (broken on purpose)."""
        changed = rule(self.get(user_id))
        if changed is None:
            return False
        time.sleep(self.PAUSE)
        self.client.hset(self.user_key(user_id), mapping=_mapping(changed))
        return True

    def mark_used(self, user_id: str, **arguments: Any) -> bool:
        """Read-then-write compare-and-set (broken on purpose)."""
        return self._racy(user_id, lambda row: _rules.mark_used(row, **arguments))

    def consume_recovery_hash(self, user_id: str, **arguments: Any) -> bool:
        """Read-then-write consumption (broken on purpose)."""
        return self._racy(user_id, lambda row: _rules.consume_recovery_hash(row, **arguments))

    def begin_attempt(self, user_id: str, **arguments: Any) -> Attempt:
        """Read-then-write charging (broken on purpose)."""
        outcome: list[Attempt] = []

        def rule(row: UserRecord | None) -> UserRecord | None:
            changed, attempt = _rules.charge(row, **arguments)
            outcome.append(attempt)
            return changed

        self._racy(user_id, rule)
        return outcome[0]


class RacyAsyncRedisStore(AsyncRedisStore):
    """An AsyncRedisStore that awaits between its read and its write (the asyncio race)."""

    async def _racy(self, user_id: str, rule: Callable[[Any], Any]) -> bool:
        """Read, decide, await, write (broken on purpose)."""
        changed = rule(await self.get(user_id))
        if changed is None:
            return False
        await asyncio.sleep(0.002)
        await self.client.hset(self.user_key(user_id), mapping=_mapping(changed))
        return True

    async def mark_used(self, user_id: str, **arguments: Any) -> bool:
        """Read-then-write compare-and-set (broken on purpose)."""
        return await self._racy(user_id, lambda row: _rules.mark_used(row, **arguments))

    async def consume_recovery_hash(self, user_id: str, **arguments: Any) -> bool:
        """Read-then-write consumption (broken on purpose)."""
        return await self._racy(user_id, lambda row: _rules.consume_recovery_hash(row, **arguments))

    async def begin_attempt(self, user_id: str, **arguments: Any) -> Attempt:
        """Read-then-write charging (broken on purpose)."""
        outcome: list[Attempt] = []

        def rule(row: Any) -> Any:
            changed, attempt = _rules.charge(row, **arguments)
            outcome.append(attempt)
            return changed

        await self._racy(user_id, rule)
        return outcome[0]


RACE_TESTS = [
    "test_parallel_mark_used_has_one_winner",
    "test_parallel_attempts_are_counted_exactly",
    "test_parallel_recovery_consumption_has_one_winner",
]


@pytest.mark.parametrize("test_name", RACE_TESTS)
def test_contract_catches_racy_redis_store(test_name: str, redis_client: Any) -> None:
    """The contract's race tests fail on a Redis store that reads, pauses and writes.

    The same tests pass on RedisStore (TestRedisStore), so they do tell the two apart.
    """
    with pytest.raises(AssertionError):
        getattr(StoreContract(), test_name)(RacyRedisStore(redis_client))


@pytest.mark.parametrize("test_name", RACE_TESTS)
def test_async_contract_catches_racy_redis_store(
    test_name: str, redis_server: RedisServer, redis_client: Any
) -> None:
    """The async contract's race tests fail on an async Redis store awaiting mid-operation."""
    client = redis_server.async_client()
    with Blocking(RacyAsyncRedisStore(client)) as blocking:
        try:
            with pytest.raises(AssertionError):
                getattr(AsyncStoreContract(), test_name)(blocking)
        finally:
            _close_on_loop(blocking, client)


# --- keys, prefixes and the listing index --------------------------------------------------


def test_keys_have_one_hash_tag_whatever_the_user_id(redis_client: Any) -> None:
    """Ids with braces and any Unicode map to one hash tag of hex: one cluster slot each."""
    store = RedisStore(redis_client)
    for user_id in ("alice", "}{", "a{b}c", "Zoë 日本 😀", "{user:61}"):
        key = store.user_key(user_id)
        assert key == "totpcore:{user:" + user_id.encode().hex() + "}"
        assert key.count("{") == key.count("}") == 1
        assert store.insert(UserRecord(user_id, Status.ACTIVE, SECRET, 7))
        assert store.get(user_id) == UserRecord(user_id, Status.ACTIVE, SECRET, 7)
    assert sorted(redis_client.keys("*")) == sorted(
        [b"totpcore:users", *(store.user_key(u).encode() for u in store.user_ids())]
    )


def test_listing_sorts_by_code_point_and_pages(redis_client: Any) -> None:
    """The index pages in Python's sorted() order, UTF-8 bytes being code point order."""
    store = RedisStore(redis_client)
    ids = ["b", "a", "B", "é", "ÿ", "Ā", "日本", "😀", "\uffff", "a b", "a{", "a}"]
    for user_id in ids:
        store.insert(UserRecord(user_id, Status.ACTIVE, SECRET, 7))
    assert store.user_ids() == sorted(ids)
    pages, after = [], None
    while page := store.user_ids(after=after, limit=5):
        pages.append(page)
        after = page[-1]
    assert [user for page in pages for user in page] == sorted(ids)
    assert store.user_ids(after="é", limit=2) == sorted(ids)[sorted(ids).index("é") + 1 :][:2]
    assert store.user_ids(limit=0) == []
    store.delete("é")
    assert "é" not in store.user_ids()


def test_rebuild_index_repairs_the_listing(redis_client: Any) -> None:
    """rebuild_index adds stored users missing from the index and drops ids without records."""
    store = RedisStore(redis_client)
    for user_id in ("alice", "bob", "carol"):
        store.insert(UserRecord(user_id, Status.ACTIVE, SECRET, 7))
    redis_client.zrem("totpcore:users", b"bob")
    redis_client.zadd("totpcore:users", {b"ghost": 0})
    assert store.rebuild_index() == 3
    assert store.user_ids() == ["alice", "bob", "carol"]


def test_prefixes_are_separate_stores(redis_client: Any) -> None:
    """Two prefixes on one server share nothing: records, listing, settings."""
    first, second = RedisStore(redis_client, prefix="one:"), RedisStore(redis_client, prefix="two:")
    assert first.insert(UserRecord("alice", Status.ACTIVE, SECRET, 7))
    assert first.set_meta("cipher", "abc", expected=None)
    assert second.get("alice") is None
    assert second.user_ids() == []
    assert second.get_meta("cipher") is None
    assert second.delete("alice") is False
    assert second.insert(UserRecord("alice", Status.SETUP_PENDING, b"other", 8))
    assert first.get("alice") == UserRecord("alice", Status.ACTIVE, SECRET, 7)
    assert all(key.startswith((b"one:", b"two:")) for key in redis_client.keys("*"))


def test_meta_reserves_the_schema_version(redis_client: Any) -> None:
    """Settings share a hash with schema_version "2", which is not a setting one may set."""
    store = RedisStore(redis_client)
    assert store.set_meta("cipher", "abc", expected=None)
    assert redis_client.hget("totpcore:meta", "schema_version") == b"2"
    with pytest.raises(InvalidParameterError):
        store.set_meta("schema_version", "3", expected="2")


def test_newer_schema_is_refused(redis_client: Any) -> None:
    """A record or store written by a newer layout is refused, never misread or overwritten."""
    store = RedisStore(redis_client)
    store.insert(UserRecord("alice", Status.ACTIVE, SECRET, 7))
    redis_client.hset(store.user_key("alice"), "v", "3")
    with pytest.raises(StoreError, match="schema version"):
        store.get("alice")
    with pytest.raises(StoreError):
        store.unlock("alice")
    assert redis_client.hget(store.user_key("alice"), "failure_log") == b""
    redis_client.hset("totpcore:meta", "schema_version", "3")
    with pytest.raises(StoreError, match="schema version"):
        store.get_meta("cipher")
    with pytest.raises(StoreError):
        store.set_meta("cipher", "x", expected=None)


# --- clients, URLs and errors --------------------------------------------------------------


def test_from_url_and_close(redis_server: RedisServer, redis_client: Any) -> None:
    """from_url makes and owns a client (closed with the store), sync and async."""
    with RedisStore.from_url(redis_server.url, prefix="url:") as store:
        assert store.insert(UserRecord("alice", Status.ACTIVE, SECRET, 7))
        assert store.prefix == "url:"

    async def use() -> UserRecord | None:
        async with AsyncRedisStore.from_url(redis_server.url, prefix="url:") as store:
            return await store.get("alice")

    assert asyncio.run(use()) == UserRecord("alice", Status.ACTIVE, SECRET, 7)


def test_decoding_clients_are_refused(redis_server: RedisServer) -> None:
    """decode_responses=True would turn the secret bytes into text: refused up front."""
    with pytest.raises(InvalidParameterError, match="decode_responses"):
        RedisStore(redis_server.client(decode_responses=True))
    with pytest.raises(InvalidParameterError, match="decode_responses"):
        AsyncRedisStore(redis_server.async_client(decode_responses=True))
    with pytest.raises(InvalidParameterError, match="decode_responses"):
        RedisStore.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(TypeError):
        RedisStore(object())
    with pytest.raises(InvalidParameterError):
        RedisStore(redis_server.client(), prefix="")


def test_dead_server_raises_store_error() -> None:
    """A closed port: every operation raises StoreError naming only the exception type."""
    require_redis()
    url = f"redis://user:pa55word@127.0.0.1:{free_port()}/0"  # nobody listens there
    with RedisStore.from_url(url, retry=None, socket_connect_timeout=1) as store:
        for call in (
            lambda: store.get("alice"),
            lambda: store.begin_attempt(
                "alice", status=Status.ACTIVE, now=START, limits=Limits(5, 1.0, 900.0, 100)
            ),
            lambda: store.insert(UserRecord("alice", Status.ACTIVE, SECRET, 7)),
            lambda: store.user_ids(),
            lambda: store.get_meta("cipher"),
        ):
            with pytest.raises(StoreError, match=r"\(ConnectionError\)") as caught:
                call()
            printed = "".join(traceback.format_exception(caught.value))
            assert "pa55word" not in printed
            assert "127.0.0.1" not in str(caught.value)

    async def attempt() -> None:
        async with AsyncRedisStore.from_url(url, retry=None, socket_connect_timeout=1) as store:
            await store.get("alice")

    with pytest.raises(StoreError, match=r"\(ConnectionError\)"):
        asyncio.run(attempt())


def test_missing_redis_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the redis package, from_url says what to install; importing the module is fine."""
    for name in ("redis", "redis.asyncio"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: ImportError
    with pytest.raises(MissingDependencyError, match=re.escape("pip install 'totpcore[redis]'")):
        RedisStore.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(MissingDependencyError, match=re.escape("pip install 'totpcore[redis]'")):
        AsyncRedisStore.from_url("redis://127.0.0.1:1/0")


def test_importing_the_module_does_not_load_redis() -> None:
    """The library core stays standard-library only: redis loads when a client is made."""
    program = (
        "import sys, totpcore.stores.redis; "
        "assert not any(m == 'redis' or m.startswith('redis.') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", program], check=True)


def test_no_secret_in_reprs_or_errors(redis_client: Any) -> None:
    """Reprs and errors, even about a malformed record holding the secret, never show it."""
    store = RedisStore(redis_client)
    record = UserRecord("alice", Status.ACTIVE, SECRET, 7, recovery_hashes=("h$1",))
    store.insert(record)
    shown = [repr(store), repr(store.get("alice")), repr(AsyncRedisStore(redis_client))]
    # Corrupt the record with the secret's bytes where a number belongs.
    redis_client.hset(store.user_key("alice"), "failure_log", SECRET)
    for call in (
        lambda: store.get("alice"),
        lambda: store.begin_attempt(
            "alice", status=Status.ACTIVE, now=START, limits=Limits(5, 1.0, 900.0, 100)
        ),
        lambda: store.mark_used(
            "alice", generation=7, step=1, drift=0, allow_equal=False, charged_at=START
        ),
    ):
        with pytest.raises(StoreError) as caught:
            call()
        shown.append("".join(traceback.format_exception(caught.value)))
    for text in shown:
        for form in (SECRET.hex(), repr(SECRET), "secret-bytes", encode_secret(SECRET)):
            assert form not in text, text


def test_invalid_arguments_are_refused_before_any_write(redis_client: Any) -> None:
    """Bad arguments raise before Redis is asked: nothing is written."""
    store = RedisStore(redis_client)
    with pytest.raises(InvalidParameterError):
        store.insert(UserRecord("alice", Status.ACTIVE, SECRET, 7, recovery_hashes=("a,b",)))
    with pytest.raises(InvalidParameterError):
        store.begin_attempt(
            "alice", status=Status.ACTIVE, now=float("nan"), limits=Limits(5, 1.0, 900.0, 100)
        )
    with pytest.raises(StoreError):
        store.get("\ud800")  # a lone surrogate has no UTF-8 form
    assert redis_client.keys("*") == []


# --- replicas ------------------------------------------------------------------------------


def test_wait_replicas(redis_server: RedisServer, redis_client: Any) -> None:
    """wait_replicas=1: writes return once a replica has them; without one, StoreError.

    WAIT is pipelined with the script on the same connection: still one round trip.
    """
    with running_server(replica_of=redis_server.port) as replica:
        replica_client = replica.client()
        deadline = time.monotonic() + 10
        while replica_client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not connect"
            time.sleep(0.02)
        store = RedisStore(redis_client, wait_replicas=1, wait_timeout=2.0)
        assert store.insert(UserRecord("alice", Status.ACTIVE, SECRET, 7))
        assert store.begin_attempt(
            "alice", status=Status.ACTIVE, now=START, limits=Limits(5, 1.0, 900.0, 100)
        ).allowed
        assert (
            replica_client.hget(store.user_key("alice"), "last_failure_at") == repr(START).encode()
        )
        replica_client.close()
        replica.kill()
        hasty = RedisStore(redis_client, wait_replicas=1, wait_timeout=0.1)
        with pytest.raises(StoreError, match="replicas"):
            hasty.mark_used(
                "alice", generation=7, step=5, drift=0, allow_equal=False, charged_at=START
            )
        # A refused operation wrote nothing, so it needs no replica.
        assert not hasty.mark_used(
            "alice", generation=8, step=6, drift=0, allow_equal=False, charged_at=START
        )
    with pytest.raises(InvalidParameterError):
        RedisStore(redis_client, wait_replicas=-1)


def test_store_protocols(redis_client: Any, redis_server: RedisServer) -> None:
    """RedisStore is a Store and UserListing; AsyncRedisStore an AsyncStore and listing."""
    from totpcore import AsyncStore, AsyncUserListing, UserListing

    assert isinstance(RedisStore(redis_client), Store)
    assert isinstance(RedisStore(redis_client), UserListing)
    async_store = AsyncRedisStore(redis_server.async_client())
    assert isinstance(async_store, AsyncStore)
    assert isinstance(async_store, AsyncUserListing)
