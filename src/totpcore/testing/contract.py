"""StoreContract and AsyncStoreContract: the suite every store must pass, written once.

Host applications that write their own store run it by inheritance, with pytest::

    import pytest
    from totpcore.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            store = MyStore(...)
            yield store
            store.drop_everything()

An async store runs the same tests through :class:`AsyncStoreContract`, which calls it through
:class:`~totpcore.testing.Blocking`; provide an ``async_store`` fixture instead::

    class TestMyAsyncStore(AsyncStoreContract):
        @pytest.fixture
        def async_store(self):
            return MyAsyncStore(...)

Each test proves one guarantee of the protocol, including the atomic ones under 16 real
threads (for an async store, 16 threads whose coroutines interleave on one event loop). The
race tests are known to fail on a store that reads, pauses and then writes: the project's own
tests run them against such stores, sync and async.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar, cast

import pytest

from totpcore.errors import StoreError
from totpcore.stores.protocol import (
    AsyncStore,
    AsyncUserListing,
    Limits,
    Status,
    Store,
    UserListing,
    UserRecord,
)
from totpcore.testing.blocking import Blocking

__all__ = ["AsyncStoreContract", "StoreContract"]

T = TypeVar("T")

#: The default policy's throttle: 5 free failures, 1 s doubling to 15 min, lock at 100.
LIMITS = Limits(free=5, base=1.0, cap=900.0, lockout=100)
NOW = 1_700_000_000.0
THREADS = 16


class _Mark(NamedTuple):
    """A decision asking for a mark, as the service's plans do (see MarkRequest)."""

    generation: int
    step: int
    drift: int
    allow_equal: bool
    charged_at: float


class _EvaluationError(Exception):
    """What a failing decision raises in the one-commit contract tests."""


def _record(user_id: str = "alice", *, status: Status = Status.ACTIVE, **fields: Any) -> UserRecord:
    """A record with plausible values; ``fields`` override them."""
    values: dict[str, Any] = {
        "user_id": user_id,
        "status": status,
        "secret": b"\x00secret\xffbytes\x00" + user_id.encode(),
        "generation": 7,
    }
    values.update(fields)
    return UserRecord(**values)


def _run(count: int, last: float) -> dict[str, Any]:
    """Record fields for ``count`` consecutive failures, one second apart, the last at ``last``."""
    return {
        "failure_log": tuple(last - count + 1 + index for index in range(count)),
        "last_failure_at": last if count else None,
    }


def _race(count: int, action: Callable[[int], T]) -> list[T]:
    """Run ``action(i)`` in ``count`` threads released together; return the results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action(index)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class StoreContract:
    """Subclass this and provide a ``store`` fixture yielding an empty store."""

    @pytest.fixture
    def store(self) -> Store:
        """Override: return (or yield) a new, empty store."""
        raise NotImplementedError("subclasses of StoreContract provide a 'store' fixture")

    # --- records -------------------------------------------------------------------------

    def test_is_a_store(self, store: Store) -> None:
        """The store satisfies the runtime-checkable Store protocol."""
        assert isinstance(store, Store)

    def test_insert_then_get_round_trips_every_field(self, store: Store) -> None:
        """A record comes back exactly as inserted: bytes, big steps, floats, hashes, unicode."""
        record = _record(
            "Zoë 日本 <x@y>",
            algorithm="SHA512",
            digits=8,
            period=60,
            failure_log=(NOW - 0.125, NOW + 0.25),
            last_step=2**40 + 3,
            drift=-1440,
            last_failure_at=NOW + 0.25,
            last_success_at=NOW - 1.0,
            locked_at=None,
            recovery_hashes=("h1$a", "h2$b"),
        )
        assert store.insert(record) is True
        assert store.get(record.user_id) == record

    def test_get_missing_is_none(self, store: Store) -> None:
        """An unknown user has no record."""
        assert store.get("nobody") is None

    def test_insert_never_overwrites(self, store: Store) -> None:
        """A second insert for the same user fails and leaves the first record."""
        first = _record()
        assert store.insert(first)
        assert store.insert(_record(generation=8, status=Status.SETUP_PENDING)) is False
        assert store.get("alice") == first

    def test_user_ids_sorted_and_paged(self, store: Store) -> None:
        """A store that lists its users lists them sorted, a page at a time."""
        # An async store is seen through Blocking, whose methods isinstance() cannot see on
        # Python 3.12+ (protocol checks read attributes statically): ask the store itself.
        subject = store.target if isinstance(store, Blocking) else store
        if not isinstance(subject, UserListing | AsyncUserListing):
            pytest.skip("this store does not offer the optional UserListing capability")
        listing = cast(UserListing, store)
        for name in ("carol", "alice", "bob", "dave"):
            store.insert(_record(name))
        assert listing.user_ids() == ["alice", "bob", "carol", "dave"]
        assert listing.user_ids(limit=2) == ["alice", "bob"]
        assert listing.user_ids(after="bob", limit=10) == ["carol", "dave"]
        assert listing.user_ids(after="bz") == ["carol", "dave"]
        assert listing.user_ids(after="dave") == []

    def test_replace_checks_generation(self, store: Store) -> None:
        """Replace works only against the generation read, so a concurrent reset is not lost."""
        store.insert(_record(last_step=5))
        fresh = _record(generation=9, status=Status.SETUP_PENDING)
        assert store.replace(fresh, generation=6) is False
        assert store.get("alice") == _record(last_step=5)
        assert store.replace(fresh, generation=7) is True
        assert store.get("alice") == fresh

    def test_delete(self, store: Store) -> None:
        """Delete removes the record and reports whether there was one."""
        store.insert(_record())
        assert store.delete("alice") is True
        assert store.get("alice") is None
        assert store.delete("alice") is False

    # --- throttling ----------------------------------------------------------------------

    def _attempt(self, store: Store, now: float, limits: Limits = LIMITS) -> bool:
        return store.begin_attempt("alice", status=Status.ACTIVE, now=now, limits=limits).allowed

    def test_attempt_on_missing_user(self, store: Store) -> None:
        """No record: nothing charged, nothing allowed."""
        attempt = store.begin_attempt("nobody", status=Status.ACTIVE, now=NOW, limits=LIMITS)
        assert attempt.record is None
        assert attempt.allowed is False

    def test_attempt_with_wrong_status_is_not_charged(self, store: Store) -> None:
        """A pending user's login attempt is refused without being counted."""
        store.insert(_record(status=Status.SETUP_PENDING))
        attempt = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=LIMITS)
        assert attempt.allowed is False
        assert attempt.record is not None
        assert attempt.record.status is Status.SETUP_PENDING
        assert store.get("alice") == _record(status=Status.SETUP_PENDING)

    def test_attempts_are_charged_before_evaluation(self, store: Store) -> None:
        """Each allowed attempt raises failures by one, stamps the time and joins the log."""
        store.insert(_record())
        attempt = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=LIMITS)
        assert attempt.allowed is True
        assert attempt.record is not None
        assert (attempt.record.failures, attempt.record.last_failure_at) == (1, NOW)
        assert attempt.record.failure_log == (NOW,)
        assert store.get("alice") == attempt.record

    def test_free_failures_then_doubling_delay(self, store: Store) -> None:
        """Five attempts pass at once; then 1 s, 2 s, 4 s ... must pass between attempts.

        Attempts at one clock reading get stamps a millisecond apart, so each wait counts from
        the last stamp.
        """
        store.insert(_record())
        for _ in range(LIMITS.free):
            assert self._attempt(store, NOW)
        for delay in (1.0, 2.0, 4.0, 8.0):
            record = store.get("alice")
            assert record is not None
            assert record.last_failure_at is not None
            last = record.last_failure_at
            assert not self._attempt(store, last + delay - 0.01)
            assert self._attempt(store, last + delay)

    def test_no_free_failures_first_wait_is_base_delay(self, store: Store) -> None:
        """With free=0 the first wait is base (not twice base), then it doubles."""
        store.insert(_record())
        limits = Limits(free=0, base=1.0, cap=900.0, lockout=100)
        assert self._attempt(store, NOW, limits)
        assert not self._attempt(store, NOW + 0.99, limits)
        assert self._attempt(store, NOW + 1.0, limits)
        assert not self._attempt(store, NOW + 2.99, limits)
        assert self._attempt(store, NOW + 3.0, limits)

    def test_delay_is_capped(self, store: Store) -> None:
        """With many failures the delay stops growing at the cap."""
        store.insert(_record(**_run(60, NOW)))
        assert not self._attempt(store, NOW + LIMITS.cap - 1)
        assert self._attempt(store, NOW + LIMITS.cap)

    def test_clock_step_back_within_free_failures(self, store: Store) -> None:
        """Within the free failures a clock that stepped back is no reason to refuse."""
        store.insert(_record(**_run(2, NOW)))
        assert self._attempt(store, NOW - 3600)

    def test_clock_step_back_never_shortens_a_wait(self, store: Store) -> None:
        """Past the free failures a clock behind the last failure waits until it passes it."""
        store.insert(_record(**_run(LIMITS.free, NOW)))
        assert not self._attempt(store, NOW - 3600)
        assert not self._attempt(store, NOW + 0.5)
        assert self._attempt(store, NOW + 1.0)

    def test_lockout(self, store: Store) -> None:
        """After the limit the next attempt is refused and locks; none is allowed after, ever."""
        store.insert(_record(**_run(LIMITS.lockout - 1, NOW - 10_000)))
        assert self._attempt(store, NOW)  # the 100th consecutive attempt is still evaluated
        attempt = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW + 1e4, limits=LIMITS)
        assert attempt.allowed is False
        assert attempt.record is not None
        assert attempt.record.locked_at == NOW + 1e4
        assert not self._attempt(store, NOW + 1e7)
        assert store.unlock("alice") is True
        unlocked = store.get("alice")
        assert unlocked is not None
        assert (unlocked.failures, unlocked.locked_at, unlocked.failure_log) == (0, None, ())
        assert unlocked.last_failure_at == NOW  # stamps keep rising across an unlock
        assert self._attempt(store, NOW + 1e7)

    def test_lock_is_sticky_whatever_the_limits(self, store: Store) -> None:
        """A lock written under strict limits holds against a caller with lax ones."""
        store.insert(_record(**_run(3, NOW - 1e4)))
        strict = Limits(free=3, base=1.0, cap=1.0, lockout=3)
        lax = Limits(free=100, base=1.0, cap=1.0, lockout=100)
        assert not self._attempt(store, NOW, strict)
        for offset in (1.0, 1e5, 1e7):
            assert not self._attempt(store, NOW + offset, lax)
        record = store.get("alice")
        assert record is not None
        assert record.locked_at == NOW

    def test_budget_is_not_refilled_by_successes(self, store: Store) -> None:
        """Wrong codes between fresh successes still use up the 24-hour budget, then lock."""
        store.insert(_record())
        now, step, evaluated = NOW, 1, 0
        while self._attempt(store, now):
            evaluated += 1
            if evaluated % 4 == 0:  # every fourth attempt, the victim's fresh login
                step += 1
                assert store.mark_used(
                    "alice", generation=7, step=step, drift=0, allow_equal=False, charged_at=now
                )
            now += 10.0
        record = store.get("alice")
        assert record is not None
        assert record.locked_at is not None
        wrong = evaluated - evaluated // 4
        assert wrong == LIMITS.lockout, f"{wrong} wrong codes were evaluated in a day"

    def test_budget_rolls_after_24_hours(self, store: Store) -> None:
        """Charges older than 24 hours leave the budget."""
        old = tuple(NOW - 86_400 - i for i in range(LIMITS.lockout))
        store.insert(_record(failure_log=old, last_success_at=NOW - 10))
        assert self._attempt(store, NOW)
        record = store.get("alice")
        assert record is not None
        assert record.failure_log == (NOW,)

    def test_full_budget_locks(self, store: Store) -> None:
        """A budget used up inside 24 hours locks even without consecutive failures."""
        log = tuple(NOW - 1000 + i for i in range(LIMITS.lockout))
        store.insert(_record(failure_log=log))
        attempt = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=LIMITS)
        assert attempt.allowed is False
        assert attempt.record is not None
        assert attempt.record.locked_at == NOW

    def test_unlock_missing_user(self, store: Store) -> None:
        """Unlock reports a missing user."""
        assert store.unlock("nobody") is False

    # --- steps ---------------------------------------------------------------------------

    def test_mark_used_is_compare_and_set(self, store: Store) -> None:
        """Only a step above the mark wins; the equal step wins only in API mode."""
        store.insert(_record(**_run(3, NOW)))
        assert store.mark_used(
            "alice", generation=7, step=100, drift=-2, allow_equal=False, charged_at=NOW
        )
        stored = store.get("alice")
        assert stored is not None
        assert (stored.last_step, stored.drift, stored.failures) == (100, -2, 0)
        assert stored.failure_log == (NOW - 2, NOW - 1)  # only its own charge is taken back
        assert not store.mark_used(
            "alice", generation=7, step=100, drift=0, allow_equal=False, charged_at=NOW
        )
        assert not store.mark_used(
            "alice", generation=7, step=99, drift=0, allow_equal=True, charged_at=NOW
        )
        assert store.mark_used(
            "alice", generation=7, step=100, drift=0, allow_equal=True, charged_at=NOW
        )
        assert store.mark_used(
            "alice", generation=7, step=101, drift=0, allow_equal=False, charged_at=NOW
        )

    def test_repeat_takes_back_only_its_own_charge(self, store: Store) -> None:
        """An API-header repeat never clears earlier failures: failures - 1, one log entry."""
        store.insert(_record(last_step=50, last_success_at=NOW - 10, **_run(4, NOW)))
        assert store.mark_used(
            "alice", generation=7, step=50, drift=0, allow_equal=True, charged_at=NOW
        )
        stored = store.get("alice")
        assert stored is not None
        assert (stored.failures, stored.failure_log, stored.last_step) == (
            3,
            _run(3, NOW - 1)["failure_log"],
            50,
        )
        assert stored.last_success_at == NOW - 10

    def test_repeat_charged_before_a_fresh_success_refunds_only_itself(self, store: Store) -> None:
        """A repeat that was charged before a fresh success cannot undo a later failure.

        The victim sends two requests with a new step's code: R is charged, then F, which
        succeeds first. Five wrong guesses follow. R, now a repeat, must take back only its
        own charge: the five guesses stay counted and the sixth waits.
        """
        store.insert(_record(last_step=10))
        r = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=LIMITS).record
        f = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=LIMITS).record
        assert r is not None
        assert f is not None
        assert r.last_failure_at is not None
        assert f.last_failure_at is not None
        assert r.last_failure_at < f.last_failure_at  # the same clock, still distinct stamps
        assert store.mark_used(
            "alice", generation=7, step=11, drift=0, allow_equal=True, charged_at=f.last_failure_at
        )
        for _ in range(LIMITS.free):
            assert self._attempt(store, NOW)
        assert store.mark_used(
            "alice", generation=7, step=11, drift=0, allow_equal=True, charged_at=r.last_failure_at
        )
        stored = store.get("alice")
        assert stored is not None
        assert stored.failures == LIMITS.free
        assert not self._attempt(store, NOW)

    def test_refund_after_an_unlock_takes_back_nothing_else(self, store: Store) -> None:
        """A success charged before an unlock cannot erase a guess charged after it."""
        store.insert(_record(last_step=10))
        pending = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=LIMITS)
        assert pending.record is not None
        stamp = pending.record.last_failure_at
        assert stamp is not None
        assert store.unlock("alice")
        assert self._attempt(store, NOW)  # the attacker's guess, at the same clock reading
        assert store.mark_used(
            "alice", generation=7, step=11, drift=0, allow_equal=False, charged_at=stamp
        )
        stored = store.get("alice")
        assert stored is not None
        assert len(stored.failure_log) == 1
        assert stored.failure_log[0] > stamp

    def test_no_repeat_of_a_mark_never_accepted_here(self, store: Store) -> None:
        """An imported record's mark allows no API-header repeat until a fresh success."""
        store.insert(_record(last_step=50))
        assert not store.mark_used(
            "alice", generation=7, step=50, drift=0, allow_equal=True, charged_at=NOW
        )
        assert store.mark_used(
            "alice", generation=7, step=51, drift=0, allow_equal=True, charged_at=NOW
        )
        assert store.mark_used(
            "alice", generation=7, step=51, drift=0, allow_equal=True, charged_at=NOW + 1
        )

    def test_failed_mark_used_changes_nothing(self, store: Store) -> None:
        """A lost compare-and-set leaves the record exactly as it was (failures included)."""
        before = _record(last_step=50, drift=3, **_run(2, NOW))
        store.insert(before)
        assert not store.mark_used(
            "alice", generation=7, step=50, drift=9, allow_equal=False, charged_at=NOW
        )
        assert not store.mark_used(
            "alice", generation=8, step=51, drift=9, allow_equal=False, charged_at=NOW
        )
        assert store.get("alice") == before

    def test_mark_used_needs_active(self, store: Store) -> None:
        """A pending record cannot have steps marked used (setup goes through activate)."""
        store.insert(_record(status=Status.SETUP_PENDING))
        for user in ("alice", "nobody"):
            assert not store.mark_used(
                user, generation=7, step=1, drift=0, allow_equal=True, charged_at=NOW
            )

    def test_activate(self, store: Store) -> None:
        """Activate moves pending to active with the confirming step used, once."""
        store.insert(_record(status=Status.SETUP_PENDING, **_run(1, NOW)))
        assert not store.activate("alice", generation=1, step=10, drift=0, charged_at=NOW)
        assert store.activate("alice", generation=7, step=10, drift=1, charged_at=NOW)
        stored = store.get("alice")
        assert stored is not None
        assert (stored.status, stored.last_step, stored.drift, stored.failures) == (
            Status.ACTIVE,
            10,
            1,
            0,
        )
        assert stored.failure_log == ()
        assert not store.activate("alice", generation=7, step=11, drift=0, charged_at=NOW)

    def test_resync_only_above_the_mark(self, store: Store) -> None:
        """Resync moves the mark only when both steps of the pair lie above it; never back."""
        store.insert(_record(last_step=500))
        for step in (10, 500, 501):  # behind, at, and a pair starting at the mark
            assert not store.resync("alice", generation=7, step=step, drift=-5, charged_at=NOW)
        assert not store.resync("alice", generation=6, step=900, drift=5, charged_at=NOW)
        assert store.get("alice") == _record(last_step=500)
        assert store.resync("alice", generation=7, step=502, drift=-5, charged_at=NOW)
        stored = store.get("alice")
        assert stored is not None
        assert (stored.last_step, stored.drift) == (502, -5)
        store.insert(_record("bob"))
        assert store.resync("bob", generation=7, step=3, drift=1, charged_at=NOW)

    # --- secrets and settings ------------------------------------------------------------

    def test_set_secret_is_compare_and_set(self, store: Store) -> None:
        """A secret is replaced only if generation and bytes are as read; nothing else moves."""
        before = _record(last_step=9, **_run(1, NOW))
        store.insert(before)
        assert not store.set_secret("alice", generation=7, expected=b"other", secret=b"new")
        assert not store.set_secret("alice", generation=8, expected=before.secret, secret=b"new")
        assert store.set_secret("alice", generation=7, expected=before.secret, secret=b"new")
        assert store.get("alice") == before._replace(secret=b"new")
        assert not store.set_secret("nobody", generation=7, expected=b"", secret=b"new")

    def test_meta_is_compare_and_set(self, store: Store) -> None:
        """Store-wide settings are set only from the value the caller read."""
        assert store.get_meta("cipher") is None
        assert store.set_meta("cipher", "abc", expected=None)
        assert not store.set_meta("cipher", "def", expected=None)
        assert not store.set_meta("cipher", "def", expected="zzz")
        assert store.set_meta("cipher", "def", expected="abc")
        assert store.get_meta("cipher") == "def"

    # --- recovery codes ------------------------------------------------------------------

    def test_recovery_hashes_are_consumed_once(self, store: Store) -> None:
        """A hash can be consumed once; consuming clears failures; others remain."""
        store.insert(_record(failure_log=(NOW - 5, NOW), last_failure_at=NOW))
        assert store.set_recovery_hashes("alice", generation=7, hashes=("a$1", "b$2", "c$3"))
        assert store.consume_recovery_hash("alice", generation=7, code_hash="b$2", charged_at=NOW)
        for generation, code_hash in ((7, "b$2"), (7, "zzz"), (6, "a$1")):
            assert not store.consume_recovery_hash(
                "alice", generation=generation, code_hash=code_hash, charged_at=NOW
            )
        stored = store.get("alice")
        assert stored is not None
        assert (stored.recovery_hashes, stored.failures) == (("a$1", "c$3"), 0)
        assert stored.failure_log == (NOW - 5,)

    def test_recovery_hashes_replace_and_need_active(self, store: Store) -> None:
        """A new set replaces the old; a pending user cannot get one."""
        store.insert(_record(recovery_hashes=("old$1",)))
        assert store.set_recovery_hashes("alice", generation=7, hashes=("new$1",))
        assert not store.consume_recovery_hash(
            "alice", generation=7, code_hash="old$1", charged_at=NOW
        )
        store.insert(_record("bob", status=Status.SETUP_PENDING))
        assert not store.set_recovery_hashes("bob", generation=7, hashes=("x$1",))

    # --- one-commit login (optional) -----------------------------------------------------

    def _one_commit(self, store: Any) -> Any:
        """The store's ``charge_and_mark``, or a skip when it does not offer the capability."""
        charge_and_mark = getattr(store, "charge_and_mark", None)
        if not callable(charge_and_mark):
            pytest.skip("this store does not offer the optional OneCommitCheck capability")
        return charge_and_mark

    def test_one_commit_login_charges_marks_and_refunds(self, store: Store) -> None:
        """charge_and_mark: a mark above the last step wins and takes back its own charge.

        ``evaluate`` sees the charged attempt, as begin_attempt returns it; the same step
        again loses, and that attempt stays charged.
        """
        charge_and_mark = self._one_commit(store)
        store.insert(_record(**_run(2, NOW - 10)))
        seen: list[Any] = []

        def evaluate(attempt: Any) -> _Mark:
            seen.append(attempt)
            return _Mark(7, 100, -1, False, attempt.record.last_failure_at)

        decision, won = charge_and_mark(
            "alice", status=Status.ACTIVE, now=NOW, limits=LIMITS, evaluate=evaluate
        )
        assert won is True
        assert decision == _Mark(7, 100, -1, False, NOW)
        assert seen[0].allowed is True
        assert seen[0].record.failure_log == (NOW - 11, NOW - 10, NOW)
        stored = store.get("alice")
        assert stored is not None
        assert (stored.last_step, stored.drift, stored.last_success_at) == (100, -1, NOW)
        assert stored.failure_log == (NOW - 11, NOW - 10)  # only its own charge went back
        decision, won = charge_and_mark(
            "alice", status=Status.ACTIVE, now=NOW + 1, limits=LIMITS, evaluate=evaluate
        )
        assert won is False
        stored = store.get("alice")
        assert stored is not None
        assert stored.last_step == 100
        assert stored.failure_log == (NOW - 11, NOW - 10, NOW + 1)

    def test_one_commit_refusal_stays_charged(self, store: Store) -> None:
        """A decision that asks for no mark (a wrong code) is returned, and the charge kept."""
        charge_and_mark = self._one_commit(store)
        store.insert(_record())
        decision, won = charge_and_mark(
            "alice", status=Status.ACTIVE, now=NOW, limits=LIMITS, evaluate=lambda _: "invalid"
        )
        assert (decision, won) == ("invalid", False)
        stored = store.get("alice")
        assert stored is not None
        assert (stored.failures, stored.last_step) == (1, None)

    def test_one_commit_throttled_attempt_is_refused_uncharged(self, store: Store) -> None:
        """Past the free failures and inside the wait, evaluate sees a refused attempt.

        Even a decision asking for a mark is then not applied, and nothing is written.
        """
        charge_and_mark = self._one_commit(store)
        before = _record(**_run(LIMITS.free, NOW))
        store.insert(before)
        allowed: list[bool] = []

        def evaluate(attempt: Any) -> _Mark:
            allowed.append(attempt.allowed)
            return _Mark(7, 100, 0, False, NOW)

        _, won = charge_and_mark(
            "alice", status=Status.ACTIVE, now=NOW, limits=LIMITS, evaluate=evaluate
        )
        assert (allowed, won) == ([False], False)
        assert store.get("alice") == before

    def test_one_commit_failed_evaluation_writes_nothing(self, store: Store) -> None:
        """An exception from evaluate propagates (perhaps as StoreError); nothing is charged."""
        charge_and_mark = self._one_commit(store)
        before = _record()
        store.insert(before)

        def evaluate(_: Any) -> object:
            raise _EvaluationError("the cipher is broken")

        with pytest.raises((_EvaluationError, StoreError)):
            charge_and_mark(
                "alice", status=Status.ACTIVE, now=NOW, limits=LIMITS, evaluate=evaluate
            )
        assert store.get("alice") == before

    def test_parallel_one_commit_logins_have_one_winner(self, store: Store) -> None:
        """16 threads logging in with one step: exactly one wins, in each of 10 rounds.

        Also exactly the free attempts are evaluated per round, as with begin_attempt.
        """
        charge_and_mark = self._one_commit(store)
        store.insert(_record())
        limits = Limits(free=THREADS, base=1.0, cap=1.0, lockout=LIMITS.lockout)
        for step in range(1, 11):
            store.unlock("alice")
            results = _race(
                THREADS,
                lambda _, step=step: charge_and_mark(  # type: ignore[misc]
                    "alice",
                    status=Status.ACTIVE,
                    now=NOW + step,
                    limits=limits,
                    evaluate=lambda attempt, step=step: _Mark(
                        7, step, 0, False, attempt.record.last_failure_at
                    ),
                )[1],
            )
            assert results.count(True) == 1, f"step {step}: {results.count(True)} winners"

    # --- concurrency ---------------------------------------------------------------------

    def test_parallel_mark_used_has_one_winner(self, store: Store) -> None:
        """16 threads marking the same step: exactly one wins, in each of 20 rounds.

        Seen failing against a read-then-write mark_used (tests/test_concurrency.py keeps such
        a store and checks that this kind of race is caught).
        """
        store.insert(_record())
        for step in range(1, 21):
            results = _race(
                THREADS,
                lambda _, step=step: store.mark_used(  # type: ignore[misc]
                    "alice", generation=7, step=step, drift=0, allow_equal=False, charged_at=NOW
                ),
            )
            assert results.count(True) == 1, f"step {step}: {results.count(True)} winners"

    def test_parallel_attempts_are_counted_exactly(self, store: Store) -> None:
        """40 simultaneous attempts: exactly the 5 free ones are allowed, and counted.

        Seen failing against a read-then-write begin_attempt, which lets many more through.
        """
        store.insert(_record())
        results = _race(
            40,
            lambda _: (
                store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=LIMITS).allowed
            ),
        )
        allowed = results.count(True)
        assert allowed == LIMITS.free, f"{allowed} of 40 simultaneous attempts were allowed"
        stored = store.get("alice")
        assert stored is not None
        assert stored.failures == LIMITS.free, f"failures counted as {stored.failures}"

    def test_parallel_attempts_never_pass_the_lock(self, store: Store) -> None:
        """Near the lockout, parallel attempts are allowed only up to the limit, never past."""
        store.insert(_record(**_run(LIMITS.lockout - 3, NOW - 1e6)))
        limits = Limits(free=LIMITS.lockout, base=1.0, cap=1.0, lockout=LIMITS.lockout)
        results = _race(
            THREADS,
            lambda _: (
                store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=limits).allowed
            ),
        )
        assert results.count(True) == 3
        stored = store.get("alice")
        assert stored is not None
        assert stored.failures == LIMITS.lockout
        assert stored.locked_at is not None  # the first attempt past the limit locked

    def test_parallel_recovery_consumption_has_one_winner(self, store: Store) -> None:
        """16 threads consuming the same recovery hash: exactly one wins, each round."""
        store.insert(_record())
        for round_number in range(10):
            code_hash = f"hash${round_number}"
            store.set_recovery_hashes("alice", generation=7, hashes=(code_hash, "other$x"))
            results = _race(
                THREADS,
                lambda _, code_hash=code_hash: store.consume_recovery_hash(  # type: ignore[misc]
                    "alice", generation=7, code_hash=code_hash, charged_at=NOW
                ),
            )
            winners = results.count(True)
            assert winners == 1, f"one recovery code was consumed {winners} times"
            stored = store.get("alice")
            assert stored is not None
            assert stored.recovery_hashes == ("other$x",)


class AsyncStoreContract(StoreContract):
    """Subclass this and provide an ``async_store`` fixture yielding an empty AsyncStore.

    Every test of :class:`StoreContract` runs against it, through a blocking view whose
    calls from several threads become concurrent coroutines on one event loop.
    """

    @pytest.fixture
    def async_store(self) -> Any:
        """Override: return (or yield) a new, empty async store."""
        raise NotImplementedError(
            "subclasses of AsyncStoreContract provide an 'async_store' fixture"
        )

    @pytest.fixture
    def store(self, async_store: Any) -> Iterator[Any]:
        """The async store, seen through :class:`~totpcore.testing.Blocking`."""
        with Blocking(async_store) as blocking:
            yield blocking

    def test_is_a_store(self, store: Any) -> None:
        """The store satisfies the runtime-checkable AsyncStore protocol, with coroutines."""
        import inspect

        assert isinstance(store.target, AsyncStore)
        assert inspect.iscoroutinefunction(store.target.begin_attempt)
