"""Races: one code, one recovery code and a burst of guesses, from threads and processes.

Each harness returns what it observed, so it runs twice: against the real stores, where the
guarantee must hold, and against deliberately racy stores (read, pause, then write), where it
must be seen breaking. The second half is the proof that these tests can fail.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Clock
from totpcore import (
    TOTP,
    AsyncMemoryStore,
    MemoryStore,
    Policy,
    Reason,
    SQLiteStore,
    Store,
    TwoFactor,
    Verdict,
    encode_secret,
)
from totpcore.stores import _rules
from totpcore.stores.protocol import Attempt, Limits, MarkRequest, Status, UserRecord

START = 1_700_000_010.0
# Generous free failures: the losers of each race are charged, and these tests are about the
# compare-and-set, not the throttle (which has its own test below).
RACE_POLICY = Policy(free_failures=100, lockout_failures=100, recovery_iterations=1_000)
THREADS = 16
PROCESSES = 8


def race(count: int, action: Callable[[], Verdict]) -> list[Verdict]:
    """Run ``action`` in ``count`` threads released at once; return their verdicts."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = action()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def enrolled(store: Store, policy: Policy = RACE_POLICY) -> tuple[TwoFactor, TOTP, Clock]:
    """An ACTIVE user 'alice' on ``store``; returns the service, her phone and the clock."""
    clock = Clock(START)
    service = TwoFactor(store, issuer="X", policy=policy, clock=clock)
    service.enable("alice")
    phone = TOTP.from_secret(service.begin_setup("alice").secret)
    assert service.complete_setup("alice", phone.generate(clock.now))
    return service, phone, clock


def accepted_per_round(store: Store, rounds: int) -> list[int]:
    """16 threads verify the same fresh code each round; return the acceptances per round."""
    service, phone, clock = enrolled(store)
    counts = []
    for _ in range(rounds):
        # A day per round: the 15 losers of each race are charged, and the budget (100 per
        # 24 h) is not what these rounds are about.
        clock.now += 86_400 + 30
        code = phone.generate(clock.now)
        verdicts = race(THREADS, lambda code=code: service.verify("alice", code))  # type: ignore[misc]
        counts.append(sum(1 for verdict in verdicts if verdict))
    return counts


def recovery_accepted_per_round(store: Store, rounds: int) -> list[int]:
    """16 threads use the same recovery code each round; return the acceptances per round."""
    service, _, clock = enrolled(store)
    counts = []
    for _ in range(rounds):
        clock.now += 86_400  # a day per round: see accepted_per_round
        code = service.new_recovery_codes("alice")[0]
        verdicts = race(THREADS, lambda code=code: service.use_recovery_code("alice", code))  # type: ignore[misc]
        counts.append(sum(1 for verdict in verdicts if verdict))
    return counts


def guess_burst(store: Store) -> tuple[Counter[Reason], int, Verdict]:
    """40 parallel wrong guesses under the default policy, then the right code.

    Returns the verdict reasons, the stored failure count and the right code's verdict.
    """
    service, phone, clock = enrolled(store, Policy(recovery_iterations=1_000))
    clock.now += 30
    near = {phone.generate(clock.now + 30 * d) for d in (-1, 0, 1)}
    wrong = next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in near)
    verdicts = race(40, lambda: service.verify("alice", wrong))
    record = store.get("alice")
    assert record is not None
    return (
        Counter(v.reason for v in verdicts),
        record.failures,
        service.verify("alice", phone.generate(clock.now)),
    )


def test_one_code_sixteen_threads(store: Store) -> None:
    """One valid code verified by 16 threads at once is accepted exactly once, in 25 rounds.

    Seen failing against a read-then-write store: see test_harness_catches_racy_mark_used,
    which runs this harness on one and asserts the double acceptance it produces.
    """
    assert accepted_per_round(store, 25) == [1] * 25


def test_one_recovery_code_sixteen_threads(store: Store) -> None:
    """One recovery code used by 16 threads at once works exactly once, in 10 rounds.

    Seen failing against a read-then-write store: see test_harness_catches_racy_consume.
    """
    assert recovery_accepted_per_round(store, 10) == [1] * 10


def test_forty_parallel_guesses(store: Store) -> None:
    """40 parallel wrong guesses: 5 evaluated, counted exactly, then the right code throttled.

    Only the policy's 5 free attempts are evaluated, the stored failure count is exactly 5,
    and the right code afterwards is THROTTLED with a retry_after.

    Seen failing against a read-then-write store: see test_harness_catches_racy_attempts.
    """
    reasons, failures, after = guess_burst(store)
    assert reasons[Reason.INVALID] == 5
    assert reasons[Reason.THROTTLED] == 35
    assert failures == 5
    assert after.reason is Reason.THROTTLED
    assert after.retry_after is not None
    assert after.retry_after > 0


# --- the racy stores that prove the harnesses can fail -------------------------------------


class RacyMemoryStore(MemoryStore):
    """A MemoryStore whose operations read, pause, then write: the classic race.

    Each applies the same rule as the real store, but to a record read before the pause and
    written back after it, unconditionally.
    """

    PAUSE = 0.002

    def _racy(self, user_id: str, rule: Callable[[UserRecord | None], UserRecord | None]) -> bool:
        """Read, decide, pause, write (broken on purpose)."""
        changed = rule(self.get(user_id))
        if changed is None:
            return False
        time.sleep(self.PAUSE)
        self._rows[user_id] = changed
        return True

    def charge_and_mark(
        self,
        user_id: str,
        *,
        status: Status,
        now: float,
        limits: Limits,
        evaluate: Callable[[Attempt], object],
    ) -> tuple[object, bool]:
        """The one-lock login check, read-then-write (broken on purpose)."""
        changed, outcome = _rules.charge_and_mark(
            self.get(user_id), status=status, now=now, limits=limits, evaluate=evaluate
        )
        if changed is not None:
            time.sleep(self.PAUSE)
            self._rows[user_id] = changed
        return outcome

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
            self._rows[user_id] = changed
        return attempt


def test_harness_catches_racy_mark_used() -> None:
    """Against read-then-write mark_used, the 16-thread harness sees a code accepted twice."""
    counts = accepted_per_round(RacyMemoryStore(), 5)
    assert max(counts) > 1, counts


def test_harness_catches_racy_consume() -> None:
    """Against read-then-write consumption, one recovery code works more than once."""
    counts = recovery_accepted_per_round(RacyMemoryStore(), 3)
    assert max(counts) > 1, counts


def test_harness_catches_racy_attempts() -> None:
    """Against read-then-write charging, more than 5 guesses get evaluated."""
    reasons, _, _ = guess_burst(RacyMemoryStore())
    assert reasons[Reason.INVALID] > 5, reasons


# --- processes -----------------------------------------------------------------------------


class RacySQLiteStore(SQLiteStore):
    """A SQLiteStore whose login check reads, pauses, then writes outside any transaction."""

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
        record = self.get(user_id)
        if record is None or not (record.last_step is None or record.last_step < step):
            return False
        time.sleep(0.005)
        with sqlite3.connect(self.path, timeout=30) as connection:
            connection.execute(
                "UPDATE totpcore_users SET last_step = ? WHERE user_id = ?",
                (step, user_id),
            )
        connection.close()
        return True

    def charge_and_mark(
        self,
        user_id: str,
        *,
        status: Status,
        now: float,
        limits: Limits,
        evaluate: Callable[[Attempt], object],
    ) -> tuple[object, bool]:
        """Read, decide, pause, then write outside any transaction (broken on purpose)."""
        charged, attempt = _rules.charge(self.get(user_id), status=status, now=now, limits=limits)
        decision = evaluate(attempt)
        if not attempt.allowed or not isinstance(decision, MarkRequest):
            return decision, False
        if charged is None or not (charged.last_step is None or charged.last_step < decision.step):
            return decision, False
        time.sleep(0.005)
        with sqlite3.connect(self.path, timeout=30) as connection:
            connection.execute(
                "UPDATE totpcore_users SET last_step = ? WHERE user_id = ?",
                (decision.step, user_id),
            )
        connection.close()
        return decision, True


def _process_worker(
    path: str, racy: bool, secret: str, rounds: int, use: str, barrier: Any, results: Any
) -> None:
    """One app server: its own SQLiteStore on the shared file, verifying in lock-step rounds."""
    store = (RacySQLiteStore if racy else SQLiteStore)(path)
    clock = Clock(START)
    service = TwoFactor(store, issuer="X", policy=RACE_POLICY, clock=clock)
    phone = TOTP.from_secret(secret)
    for round_number in range(rounds):
        clock.now = START + 30 * (round_number + 1)
        barrier.wait()
        if use == "otp":
            verdict = service.verify("alice", phone.generate(clock.now))
        else:
            verdict = service.use_recovery_code("alice", use)
        results.put((round_number, bool(verdict)))
    store.close()


def processes_accepting(tmp_path: Path, *, racy: bool, rounds: int, use: str = "otp") -> list[int]:
    """8 processes, each with its own SQLiteStore on one file; acceptances per round."""
    path = str(tmp_path / "shared.sqlite3")
    service, phone, _ = enrolled(SQLiteStore(path))
    if use == "recovery":
        use = service.new_recovery_codes("alice")[0]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(
            target=_process_worker,
            args=(path, racy, encode_secret(phone.key), rounds, use, barrier, results),
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * rounds)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    counts = [0] * rounds
    for round_number, accepted in outcomes:
        counts[round_number] += accepted
    return counts


def test_one_code_eight_processes(tmp_path: Path) -> None:
    """8 processes with their own SQLiteStore on one file accept one code once, in 10 rounds.

    Seen failing against a read-then-write store: test_process_harness_catches_racy_store runs
    this harness on RacySQLiteStore and asserts the double acceptance.
    """
    assert processes_accepting(tmp_path, racy=False, rounds=10) == [1] * 10


def test_one_recovery_code_eight_processes(tmp_path: Path) -> None:
    """8 processes using the same recovery code: exactly one succeeds."""
    assert processes_accepting(tmp_path, racy=False, rounds=1, use="recovery") == [1]


def test_process_harness_catches_racy_store(tmp_path: Path) -> None:
    """Against a read-then-write SQLite store, 8 processes accept one code more than once."""
    counts = processes_accepting(tmp_path, racy=True, rounds=4)
    assert max(counts) > 1, counts


@pytest.mark.parametrize(
    "test_name",
    [
        "test_parallel_mark_used_has_one_winner",
        "test_parallel_attempts_are_counted_exactly",
        "test_parallel_recovery_consumption_has_one_winner",
    ],
)
def test_store_contract_catches_racy_store(test_name: str) -> None:
    """The public StoreContract's concurrency tests fail on a read-then-write store.

    This is what lets a host application trust a green StoreContract run for its own store.
    """
    from totpcore.testing import StoreContract

    with pytest.raises(AssertionError):
        getattr(StoreContract(), test_name)(RacyMemoryStore())


class RacyAsyncMemoryStore(AsyncMemoryStore):
    """An async store that awaits between its read and its write: the asyncio race.

    Each operation applies the real rule to the record it read, yields to the event loop,
    then writes the result back unconditionally (``replace`` with the unchanged generation).
    """

    async def _racy(self, user_id: str, rule: Callable[[Any], Any]) -> Any:
        """Read, decide, await, write (broken on purpose)."""
        changed = rule(self.sync.get(user_id))
        if changed is not None:
            await asyncio.sleep(0.002)
            self.sync.replace(changed, generation=changed.generation)
        return changed

    async def mark_used(self, user_id: str, **arguments: Any) -> bool:
        """Read-then-write compare-and-set (broken on purpose)."""
        changed = await self._racy(user_id, lambda row: _rules.mark_used(row, **arguments))
        return changed is not None

    async def consume_recovery_hash(self, user_id: str, **arguments: Any) -> bool:
        """Read-then-write consumption (broken on purpose)."""
        rule = _rules.consume_recovery_hash
        changed = await self._racy(user_id, lambda row: rule(row, **arguments))
        return changed is not None

    async def begin_attempt(self, user_id: str, **arguments: Any) -> Attempt:
        """Read-then-write charging (broken on purpose)."""
        outcome: list[Attempt] = []

        def rule(row: Any) -> Any:
            changed, attempt = _rules.charge(row, **arguments)
            outcome.append(attempt)
            return changed

        await self._racy(user_id, rule)
        return outcome[0]


@pytest.mark.parametrize(
    "test_name",
    [
        "test_parallel_mark_used_has_one_winner",
        "test_parallel_attempts_are_counted_exactly",
        "test_parallel_recovery_consumption_has_one_winner",
    ],
)
def test_async_store_contract_catches_racy_store(test_name: str) -> None:
    """AsyncStoreContract's concurrency tests fail on a store that awaits between read and write.

    The 16 threads' coroutines interleave on one event loop, as under asyncio.gather.
    """
    from totpcore.testing import AsyncStoreContract, Blocking

    with Blocking(RacyAsyncMemoryStore()) as store, pytest.raises(AssertionError):
        getattr(AsyncStoreContract(), test_name)(store)
