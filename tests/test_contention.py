"""SQLite under contention: many writers on one file wait for the lock, never fail, never double.

``SQLiteStore`` waits for the write lock with its own retry loop (see its module notes) instead
of SQLite's busy handler. These tests saturate one file with 8 processes (and with 16 threads)
and check what must hold whatever the timing: no StoreError with the default settings, and
every operation applied exactly once (one acceptance per code, every wrong code charged once).
They never assert on time; ``benches/bench_contention.py`` measures the latencies.
"""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from totpcore import Policy, SQLiteStore, StoreError, TwoFactor
from totpcore._bench import derived_key, population_ids, wrong_code
from totpcore.otp import TOTP
from totpcore.testing import FakeClock

PROCESSES = 8
THREADS = 16
#: Users each worker goes through; 8 processes x 200 users x 2 codes is about 3 s of
#: saturated verification on the reference machine.
USERS = 200
ENROLLED_AT = 1_700_000_010.0
#: Every worker verifies at this one instant, two steps after the enrolment: each user's
#: correct code can be accepted once, and only once, whoever sends it first.
VERIFY_AT = ENROLLED_AT + 60
#: Enough free failures that no user is throttled by the wrong codes of all the workers (the
#: frozen clock would never let a delay expire).
POLICY = Policy(free_failures=40)


def enrol(path: Path, users: int) -> list[str]:
    """A database of ``users`` ACTIVE users with derived keys, enrolled at ENROLLED_AT."""
    ids = population_ids(users)
    with SQLiteStore(path, synchronous="NORMAL") as store:
        service = TwoFactor(store, issuer="X", policy=POLICY, clock=FakeClock(ENROLLED_AT))
        for user_id in ids:
            service.import_secret(user_id, derived_key(user_id))
    return ids


def calls(ids: list[str], seed: int) -> list[tuple[str, str, bool]]:
    """One worker's requests: every user's correct and a wrong code, in a random order."""
    requests = []
    for user_id in ids:
        phone = TOTP(derived_key(user_id))
        requests.append((user_id, phone.generate(VERIFY_AT), True))
        requests.append((user_id, wrong_code(phone, VERIFY_AT), False))
    random.Random(seed).shuffle(requests)
    return requests


def verify_all(service: TwoFactor, requests: list[tuple[str, str, bool]]) -> list[Any]:
    """Send every request; (user, correct?, reason) per request, or the StoreError's text."""
    outcomes: list[Any] = []
    for user_id, code, correct in requests:
        try:
            outcomes.append((user_id, correct, service.verify(user_id, code).reason.value))
        except StoreError as error:
            outcomes.append(("StoreError", str(error), ""))
    return outcomes


def _worker(path: str, ids: list[str], seed: int, start: Any, results: Any) -> None:
    """One app server process: its own store (default settings) on the shared file."""
    with SQLiteStore(path) as store:
        service = TwoFactor(store, issuer="X", policy=POLICY, clock=FakeClock(VERIFY_AT))
        requests = calls(ids, seed)
        start.wait()
        results.put(verify_all(service, requests))


def check_exactly_once(path: Path, ids: list[str], outcomes: list[Any], workers: int) -> None:
    """No StoreError; per user one acceptance, the rest replays; every charge recorded once."""
    errors = [outcome for outcome in outcomes if outcome[0] == "StoreError"]
    assert not errors, errors[:3]
    per_user: dict[str, Counter[str]] = {user_id: Counter() for user_id in ids}
    for user_id, correct, reason in outcomes:
        per_user[user_id][f"{'correct' if correct else 'wrong'} {reason}"] += 1
    expected = Counter(
        {"correct accepted": 1, "correct replayed": workers - 1, "wrong invalid": workers}
    )
    assert all(counts == expected for counts in per_user.values()), next(
        (user_id, counts) for user_id, counts in per_user.items() if counts != expected
    )
    with SQLiteStore(path) as store:
        for user_id in ids:
            record = store.get(user_id)
            assert record is not None
            assert record.last_step == int(VERIFY_AT) // 30
            # Every refused attempt (wrong code or replay) left its one stamp; the acceptance
            # took back exactly its own. A lost update would lose a stamp.
            assert len(record.failure_log) == 2 * workers - 1


def test_eight_processes_saturating_one_file(tmp_path: Path) -> None:
    """8 processes verify flat out on one file: no StoreError, every operation exactly once.

    Each process has its own store with the default settings (10 s timeout) and sends, in its
    own random order, every user's correct code and a wrong one, all at one instant.
    """
    path = tmp_path / "shared.sqlite3"
    ids = enrol(path, USERS)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(str(path), ids, seed, start, results))
        for seed in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [outcome for _ in workers for outcome in results.get(timeout=300)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert len(outcomes) == PROCESSES * USERS * 2
    check_exactly_once(path, ids, outcomes, PROCESSES)


def test_sixteen_threads_sharing_one_store(tmp_path: Path) -> None:
    """16 threads on one store (its connection pool) and one file: the same guarantees."""
    path = tmp_path / "threads.sqlite3"
    ids = enrol(path, USERS // 4)
    outcomes: list[Any] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)
    with SQLiteStore(path) as store:
        service = TwoFactor(store, issuer="X", policy=POLICY, clock=FakeClock(VERIFY_AT))

        def run(seed: int) -> None:
            requests = calls(ids, seed)
            barrier.wait()
            done = verify_all(service, requests)
            with lock:
                outcomes.extend(done)

        threads = [threading.Thread(target=run, args=(seed,)) for seed in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(outcomes) == THREADS * len(ids) * 2
    check_exactly_once(path, ids, outcomes, THREADS)


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the database's write lock (an open immediate transaction)."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    return connection


def test_waits_for_a_lock_released_within_the_timeout(tmp_path: Path) -> None:
    """A verification behind a held write lock waits and succeeds once the lock goes."""
    path = tmp_path / "held.sqlite3"
    ids = enrol(path, 1)
    phone = TOTP(derived_key(ids[0]))
    with SQLiteStore(path) as store:
        service = TwoFactor(store, issuer="X", policy=POLICY, clock=FakeClock(VERIFY_AT))
        holder = hold_write_lock(path)
        release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
        release.start()
        try:
            assert service.verify(ids[0], phone.generate(VERIFY_AT))
        finally:
            release.join()
            holder.close()


@pytest.mark.parametrize("operation", ["verify", "enable", "disable"])
def test_a_lock_held_past_the_timeout_is_a_store_error(tmp_path: Path, operation: str) -> None:
    """Past the store's timeout the wait ends in StoreError, and nothing was written.

    Covers the immediate transactions (verify) and the single-statement writes (insert,
    delete), which wait the same way.
    """
    path = tmp_path / "stuck.sqlite3"
    ids = enrol(path, 1)
    phone = TOTP(derived_key(ids[0]))
    with SQLiteStore(path, timeout=0.2) as store:
        service = TwoFactor(store, issuer="X", policy=POLICY, clock=FakeClock(VERIFY_AT))
        actions: dict[str, Callable[[], object]] = {
            "verify": lambda: service.verify(ids[0], phone.generate(VERIFY_AT)),
            "enable": lambda: service.enable("newcomer"),
            "disable": lambda: service.disable(ids[0]),
        }
        holder = hold_write_lock(path)
        try:
            with pytest.raises(StoreError, match="locked"):
                actions[operation]()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        record = store.get(ids[0])
        assert record is not None
        assert record.last_step == int(ENROLLED_AT) // 30
        assert not record.failure_log
        assert store.get("newcomer") is None
