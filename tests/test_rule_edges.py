"""Edges of the store rules and the throttle, pinned where mutation testing found them loose.

Each test calls a pure rule (:mod:`totpcore.stores._rules`, the throttle arithmetic, the
refusal verdicts) on a record built by hand, so it states one rule exactly: what the 24-hour
budget counts, which stamps the failure log keeps, and that a success completing late never
moves the latest-success stamp backwards. docs/mutation-testing.md lists the mutants each one
kills.
"""

from __future__ import annotations

from typing import Any

import pytest

from totpcore import MemoryStore, Reason
from totpcore._core import verdicts
from totpcore._throttle import delay_after
from totpcore.stores import _rules
from totpcore.stores.protocol import Limits, Status, UserRecord

DAY = 86_400.0
KEY = bytes(range(20))


def record(**changes: Any) -> UserRecord:
    """An ACTIVE record with a plain key; ``changes`` override any field."""
    base = UserRecord(user_id="alice", status=Status.ACTIVE, secret=KEY, generation=7)
    return base._replace(**changes)


def limits(lockout: int = 3, free: int = 10) -> Limits:
    """Throttle limits with no delay in the way (``free`` failures cost nothing)."""
    return Limits(free=free, base=1.0, cap=60.0, lockout=lockout)


# --- the 24-hour budget and the run of failures -------------------------------------------------


def test_budget_counts_failures_on_both_sides_of_a_success() -> None:
    """Three failures in 24 hours lock at lockout 3 even though a success split them.

    The run after the success is only one long; the budget is what stops an attacker who
    interleaves guesses with the victim's own successes.
    """
    row = record(
        failure_log=(1000.0, 2000.0, 3000.0), last_success_at=2500.0, last_failure_at=3000.0
    )
    assert row.failures == 1
    written, attempt = _rules.charge(row, status=Status.ACTIVE, now=4000.0, limits=limits())
    assert attempt.allowed is False
    assert written is not None
    assert written.locked_at == 4000.0


def test_consecutive_failures_lock_even_when_spread_over_days() -> None:
    """A run of failures with no success between them locks however old its first failure is."""
    row = record(failure_log=(0.0, 2 * DAY, 4 * DAY), last_failure_at=4 * DAY)
    written, attempt = _rules.charge(row, status=Status.ACTIVE, now=5 * DAY, limits=limits())
    assert attempt.allowed is False
    assert written is not None
    assert written.locked_at == 5 * DAY


def test_old_failures_before_a_success_leave_the_budget() -> None:
    """Failures older than 24 hours and before the latest success count nowhere any more."""
    row = record(failure_log=(10.0, 20.0, 30.0), last_success_at=40.0, last_failure_at=30.0)
    written, attempt = _rules.charge(row, status=Status.ACTIVE, now=2 * DAY, limits=limits())
    assert attempt.allowed is True
    assert written is not None
    assert written.failure_log == (2 * DAY,)


def test_the_lock_keeps_only_the_stamps_still_counted() -> None:
    """The locked record's log is pruned like any other: stale stamps are not written back."""
    stale = 5.0  # before the latest success and older than 24 hours
    row = record(
        failure_log=(stale, 2 * DAY, 2 * DAY + 1, 2 * DAY + 2),
        last_success_at=10.0,
        last_failure_at=2 * DAY + 2,
    )
    written, attempt = _rules.charge(row, status=Status.ACTIVE, now=2 * DAY + 3, limits=limits())
    assert attempt.allowed is False
    assert written is not None
    assert written.locked_at == 2 * DAY + 3
    assert written.failure_log == (2 * DAY, 2 * DAY + 1, 2 * DAY + 2)


def test_a_throttled_attempt_is_refused_with_a_plain_false() -> None:
    """A refused attempt says ``allowed=False`` exactly (stores in other languages compare it)."""
    row = record(failure_log=(100.0,), last_failure_at=100.0)
    tight = Limits(free=1, base=30.0, cap=60.0, lockout=10)
    written, attempt = _rules.charge(row, status=Status.ACTIVE, now=101.0, limits=tight)
    assert written is None
    assert attempt.allowed is False
    assert attempt.record == row


# --- a late success never moves the latest success backwards --------------------------------


def test_mark_used_completing_late_keeps_the_later_success() -> None:
    """A success charged before the latest success leaves ``last_success_at`` where it was.

    Otherwise the run of failures would start again from the older stamp and count failures
    the newer success already ended, or the other way round.
    """
    row = record(last_step=5, last_success_at=100.0, failure_log=(50.0,), last_failure_at=120.0)
    written = _rules.mark_used(
        row, generation=7, step=6, drift=0, allow_equal=False, charged_at=50.0
    )
    assert written is not None
    assert written.last_success_at == 100.0
    assert written.failure_log == ()


def test_activate_completing_late_keeps_the_later_success() -> None:
    """Activation charged before the latest success leaves ``last_success_at`` as it was."""
    row = record(status=Status.SETUP_PENDING, last_success_at=100.0, failure_log=(50.0,))
    written = _rules.activate(row, generation=7, step=6, drift=0, charged_at=50.0)
    assert written is not None
    assert written.last_success_at == 100.0


def test_resync_completing_late_keeps_the_later_success() -> None:
    """A resync charged before the latest success leaves ``last_success_at`` as it was."""
    row = record(last_step=5, last_success_at=100.0, failure_log=(50.0,))
    written = _rules.resync(row, generation=7, step=9, drift=2, charged_at=50.0)
    assert written is not None
    assert written.last_success_at == 100.0


def test_recovery_completing_late_keeps_the_later_success() -> None:
    """A recovery code charged before the latest success leaves ``last_success_at`` as it was."""
    row = record(last_success_at=100.0, failure_log=(50.0,), recovery_hashes=("a", "b"))
    written = _rules.consume_recovery_hash(row, generation=7, code_hash="a", charged_at=50.0)
    assert written is not None
    assert written.last_success_at == 100.0
    assert written.recovery_hashes == ("b",)


# --- the throttle arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(("failures", "wait"), [(0, 0.0), (1, 2.0), (2, 4.0), (3, 8.0)])
def test_with_no_free_failures_the_first_failure_already_waits(failures: int, wait: float) -> None:
    """``free=0``: the base delay follows the first failure and doubles from there."""
    assert delay_after(failures, free=0, base=2.0, cap=100.0) == wait


# --- refusals say why ---------------------------------------------------------------------------


def test_setup_on_an_active_user_is_not_enabled_and_says_its_status() -> None:
    """Setup for an ACTIVE user is NOT_ENABLED and names the status (never SETUP_REQUIRED)."""
    verdict = verdicts.refusal(record(), 0.0, Status.SETUP_PENDING, limits())
    assert verdict.reason is Reason.NOT_ENABLED
    assert verdict.detail == "the user is active"
    assert verdicts.malformed(record(), Status.SETUP_PENDING).reason is Reason.NOT_ENABLED
    pending = record(status=Status.SETUP_PENDING)
    assert verdicts.malformed(pending, Status.ACTIVE).reason is Reason.SETUP_REQUIRED


def test_locked_refusal_counts_the_failures() -> None:
    """LOCKED names the consecutive failures and the 24-hour count, for support staff."""
    row = record(locked_at=500.0, failure_log=(100.0, 200.0, 300.0), last_success_at=150.0)
    verdict = verdicts.refusal(row, 600.0, Status.ACTIVE, limits())
    assert verdict.reason is Reason.LOCKED
    assert verdict.detail.startswith("locked after 2 consecutive failures (3 in 24 h)")


def test_throttled_refusal_counts_from_the_last_failure() -> None:
    """THROTTLED waits the delay less the time since the last failure, and says so."""
    row = record(failure_log=(100.0, 101.0), last_failure_at=101.0)
    tight = Limits(free=1, base=8.0, cap=60.0, lockout=10)
    verdict = verdicts.refusal(row, 104.0, Status.ACTIVE, tight)
    assert verdict.reason is Reason.THROTTLED
    assert verdict.retry_after == pytest.approx(13.0)  # 16 s after two failures, 3 s gone
    assert verdict.detail == "2 consecutive failures; next attempt in 13.0 s"


def test_throttled_refusal_without_a_failure_stamp_waits_the_whole_delay() -> None:
    """With no ``last_failure_at`` (a third-party store's record) the whole delay remains."""
    row = record(failure_log=(100.0, 101.0), last_failure_at=None)
    tight = Limits(free=1, base=8.0, cap=60.0, lockout=10)
    verdict = verdicts.refusal(row, 104.0, Status.ACTIVE, tight)
    assert verdict.retry_after == pytest.approx(16.0)


# --- MemoryStore's listing and bulk insert ----------------------------------------------------


def test_memory_store_bulk_insert_and_empty_page() -> None:
    """insert_many stores the new records and reports each; a page of 0 ids is empty."""
    store = MemoryStore()
    first = record()
    bob = record(user_id="bob")
    assert store.insert_many([first, bob, record(generation=8)]) == [True, True, False]
    assert store.get("alice") == first
    assert store.get("bob") == bob
    assert store.user_ids(limit=0) == []
    assert store.user_ids(limit=1) == ["alice"]


def test_every_allowed_base_delay_doubles_up_to_the_cap() -> None:
    """The smallest base_delay Policy allows still doubles all the way to the largest cap.

    The stores stop doubling at 2**40 times base_delay; a base below a millisecond would have
    stopped short of max_delay there (found by mutation testing), so Policy refuses it.
    """
    import itertools

    from totpcore import InvalidParameterError, Policy
    from totpcore._throttle import delay_after

    with pytest.raises(InvalidParameterError, match="base_delay"):
        Policy(base_delay=0.0009, max_delay=86_400)
    policy = Policy(base_delay=0.001, max_delay=86_400)
    waits = [
        delay_after(n, free=policy.free_failures, base=policy.base_delay, cap=policy.max_delay)
        for n in range(policy.free_failures, policy.free_failures + 60)
    ]
    assert waits[0] == 0.001
    assert all(later in (2 * earlier, 86_400.0) for earlier, later in itertools.pairwise(waits))
    assert waits[-1] == 86_400.0
