"""Edges of the decision core, pinned where mutation testing found them loose.

Most tests talk to :class:`totpcore._core.Core` directly with a hand-made store answer, which
reaches paths the built-in stores never take (a record without a failure stamp, a store that
lost the compare-and-set). The rest go through :class:`~totpcore.TwoFactor` on a
:class:`~totpcore.MemoryStore`. docs/mutation-testing.md lists the mutants each one kills.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from totpcore import TOTP, MemoryStore, Policy, Reason, Status, TwoFactor, Verdict
from totpcore._core import Core, decide
from totpcore._core import verdicts as verdict_constants
from totpcore._engine import Keyed
from totpcore.errors import InvalidSecretError, StoreError
from totpcore.stores.protocol import Attempt, UserRecord
from totpcore.testing import FakeClock

KEY = bytes(range(20))
START = 1_700_000_010.0  # 10 s into a 30 s step
POLICY = Policy(recovery_iterations=1_000)


def make_core(clock: object = None) -> Core:
    """A Core without a cipher, on a FakeClock at START unless another clock is given."""
    return Core(
        issuer="Example",
        policy=POLICY,
        clock=FakeClock(START) if clock is None else clock,  # type: ignore[arg-type]
        cipher=None,
    )


def active(**changes: Any) -> UserRecord:
    """An ACTIVE record with a plain key and no failure stamp; ``changes`` override fields."""
    base = UserRecord(user_id="alice", status=Status.ACTIVE, secret=KEY, generation=7)
    return base._replace(**changes)


def service(clock: FakeClock) -> TwoFactor:
    """A TwoFactor on a new MemoryStore with the test clock."""
    return TwoFactor(MemoryStore(), issuer="Example", policy=POLICY, clock=clock)


# --- the charge a success takes back ---------------------------------------------------------


def test_a_record_without_a_failure_stamp_takes_back_the_checks_own_time() -> None:
    """With no ``last_failure_at`` in the answer, each plan names the check's time as its charge.

    The built-in stores always stamp the charge; a third-party store may not, and the plan must
    still carry a number, never ``None``.
    """
    core = make_core()
    phone = TOTP(KEY)
    now = START
    code = phone.generate(now)
    check = decide.Check(int(code), 6, now)
    plan = core.evaluate(check, Attempt(active(), True), False)
    assert isinstance(plan, decide.MarkUsed)
    assert plan.charged_at == now
    setup = core.evaluate_setup(check, Attempt(active(status=Status.SETUP_PENDING), True))
    assert isinstance(setup, decide.Activate)
    assert setup.charged_at == now
    pair = (
        decide.Check(int(phone.generate(now - 30)), 6, now),
        decide.Check(int(code), 6, now),
    )
    resync = core.plan_resync(pair, Attempt(active(), True))
    assert isinstance(resync, decide.Resync)
    assert resync.charged_at == now


def test_recovery_takes_back_the_stamp_charged_or_else_the_request_time() -> None:
    """A recovery plan names the store's charge stamp, or the request's time when it has none."""
    core = make_core()
    codes, hashes = core.new_recovery_set()
    record = active(recovery_hashes=hashes, last_failure_at=START - 5, failure_log=(START - 5,))
    plan = core.evaluate_recovery(codes[0], START, Attempt(record, True))
    assert isinstance(plan, decide.Consume)
    assert plan.charged_at == START - 5
    unstamped = core.evaluate_recovery(
        codes[1], START, Attempt(active(recovery_hashes=hashes), True)
    )
    assert isinstance(unstamped, decide.Consume)
    assert unstamped.charged_at == START


# --- a lost compare-and-set is never acceptance -----------------------------------------------


def test_a_lost_race_is_never_reported_as_acceptance() -> None:
    """When the store says another request won, setup and recovery answer their refusal."""
    core = make_core()
    plan = decide.Activate(7, 100, 0, START, 30)
    assert core.activated(plan, False) is verdict_constants.SETUP_LOST
    assert core.activated(plan, True).reason is Reason.ACCEPTED
    assert core.consumed(False) is verdict_constants.RECOVERY_USED
    assert core.consumed(True).reason is Reason.ACCEPTED


def test_a_store_answering_something_else_names_what_it_answered() -> None:
    """A begin_attempt answer that is not an Attempt fails closed, naming its type."""
    core = make_core()
    check = decide.Check(123456, 6, START)
    with pytest.raises(StoreError, match="answered an attempt with a dict"):
        core.evaluate(check, {}, False)  # type: ignore[arg-type]


# --- drift --------------------------------------------------------------------------------------


def test_learned_drift_is_clamped_on_both_sides() -> None:
    """A match beyond ``max_drift`` is learned as exactly ``max_drift``, on its own side."""
    core = make_core()
    reach = POLICY.max_drift // 30
    assert core.learned_drift(-reach - 5, 0, 30) == -reach
    assert core.learned_drift(reach + 5, 0, 30) == reach
    assert core.learned_drift(-reach + 1, 0, 30) == -reach + 1


# --- resync -------------------------------------------------------------------------------------


class Scripted(Keyed):
    """A Keyed whose values are given, so that a window can hold several matching pairs."""

    def __init__(self, values: list[int]) -> None:
        super().__init__(KEY, digits=6, algorithm="SHA1")
        self.script = values

    def values(self, first: int, last: int) -> list[int]:
        """The scripted values of the counters ``first..last``."""
        return self.script[first : last + 1]


def test_nearest_pair_prefers_the_nearest_then_the_earlier() -> None:
    """Of several matching pairs the one nearest to now wins; of two as near, the earlier."""
    #        step: 0  1  2  3  4  5  6  7  8  9  10
    values = [1, 2, 0, 0, 1, 2, 0, 0, 0, 1, 2]
    assert decide.nearest_pair(Scripted(values), 1, 2, 7, 4) == 5  # pairs end at 5 and 10
    assert decide.nearest_pair(Scripted(values), 1, 2, 4, 4) == 5  # ends at 1 and 5
    tie = [0, 1, 2, 0, 0, 1, 2, 0]  # pairs end at 2 and 6, both 2 steps from 4
    assert decide.nearest_pair(Scripted(tie), 1, 2, 4, 3) == 2


def test_nearest_pair_reaches_exactly_max_drift_each_way() -> None:
    """A pair whose first step lies ``reach`` steps from now is found; one step further is not."""
    phone = Keyed(KEY, digits=6, algorithm="SHA1")
    current, reach = 1000, 5

    def pair_from(first: int) -> int | None:
        return decide.nearest_pair(
            phone, phone.value(first), phone.value(first + 1), current, reach
        )

    assert pair_from(current + reach) == current + reach + 1
    assert pair_from(current + reach + 1) is None
    assert pair_from(current - reach) == current - reach + 1
    assert pair_from(current - reach - 1) is None


def test_resync_at_the_epoch_finds_the_first_pair() -> None:
    """A clock in the first steps after 1970 still resyncs with the codes of steps 0 and 1."""
    clock = FakeClock(45.0)  # step 1
    two_factor = service(clock)
    phone = TOTP(KEY)
    two_factor.import_secret("alice", KEY)
    verdict = two_factor.resync("alice", phone.generate(0), phone.generate(30))
    # The import marked step 1 used, so the pair (0, 1) lies at the mark: refused as a replay,
    # which proves it was found (a pair not found at all is INVALID).
    assert verdict.reason is Reason.REPLAYED
    core = make_core(FakeClock(45.0))
    pair = (
        decide.Check(int(phone.generate(0)), 6, 45.0),
        decide.Check(int(phone.generate(30)), 6, 45.0),
    )
    plan = core.plan_resync(pair, Attempt(active(), True))
    assert isinstance(plan, decide.Resync)
    assert plan.step == 1


def test_resync_just_above_the_mark_and_just_at_it() -> None:
    """A pair starting right after the mark resyncs; a pair starting at the mark does not."""
    core = make_core()
    phone = TOTP(KEY)
    current = int(START) // 30
    pair = (
        decide.Check(int(phone.generate(START - 30)), 6, START),
        decide.Check(int(phone.generate(START)), 6, START),
    )
    at_mark = core.plan_resync(pair, Attempt(active(last_step=current - 1), True))
    assert at_mark is verdict_constants.RESYNC_BEHIND_MARK
    above = core.plan_resync(pair, Attempt(active(last_step=current - 2), True))
    assert isinstance(above, decide.Resync)
    assert above.step == current


def test_resync_needs_both_codes_at_the_users_length() -> None:
    """A pair with one code shorter than the user's is no pair, even if its value matches."""
    core = make_core()
    phone = TOTP(KEY, digits=8)
    # Find a step whose 8-digit code starts with "00": its value fits in 6 digits.
    first = int(START) // 30
    step = next(s for s in range(first, first + 5000) if phone.generate(s * 30).startswith("00"))
    now = float(step * 30 + 10)
    short = phone.generate(step * 30)[2:]
    pair = (
        decide.Check(int(phone.generate(now - 30)), 8, now),
        decide.Check(int(short), 6, now),
    )
    answer = core.plan_resync(pair, Attempt(active(digits=8), True))
    assert answer is verdict_constants.NO_PAIR


def test_throttled_resync_and_recovery_say_how_long_to_wait() -> None:
    """Resync and recovery attempts refused by the throttle answer THROTTLED with a wait."""
    core = make_core()
    record = active(failure_log=(START - 1,), last_failure_at=START - 1)
    pair = (decide.Check(1, 6, START), decide.Check(2, 6, START))
    for verdict in (
        core.plan_resync(pair, Attempt(record, False)),
        core.evaluate_recovery("0000-0000-0000", START, Attempt(record, False)),
    ):
        assert isinstance(verdict, Verdict)
        assert verdict.reason is Reason.THROTTLED
        assert verdict.retry_after is not None
        assert verdict.retry_after > 0


# --- inputs ---------------------------------------------------------------------------------------


def test_an_int_clock_is_read_as_seconds() -> None:
    """A clock returning an int works like one returning the same float."""
    core = make_core(lambda: 1_700_000_010)
    assert core.now() == 1_700_000_010.0
    assert type(core.now()) is float


@pytest.mark.parametrize("reading", [Decimal("1700000010"), "1700000010", True])
def test_a_clock_returning_anything_but_a_number_is_refused(reading: object) -> None:
    """Decimal, str and bool readings raise TypeError instead of being converted."""
    core = make_core(lambda: reading)
    with pytest.raises(TypeError):
        core.now()


def test_a_recovery_code_padded_to_the_length_limit_is_still_read() -> None:
    """A recovery code of exactly MAX_CODE_LENGTH characters (spaces included) is checked."""
    core = make_core()
    code = "abcd-efgh-jkmn".ljust(decide.MAX_CODE_LENGTH)
    assert len(code) == decide.MAX_CODE_LENGTH
    assert core.check_recovery("alice", code) == START
    assert core.check_recovery("alice", code + " ") is None


# --- imports ---------------------------------------------------------------------------------


def test_import_keeps_the_phones_algorithm_and_marks_the_current_step() -> None:
    """An imported SHA256 secret stays SHA256, with the import's step (an int) marked used."""
    clock = FakeClock(START)
    two_factor = service(clock)
    phone = TOTP(KEY + KEY[:12], algorithm="SHA256")
    two_factor.import_secret("alice", phone.key, algorithm="SHA256")
    stored = two_factor.store.get("alice")
    assert stored is not None
    assert stored.algorithm == "SHA256"
    assert stored.last_step == int(START) // 30
    assert type(stored.last_step) is int
    clock.advance(30)
    assert two_factor.verify("alice", phone.generate(clock.now)).reason is Reason.ACCEPTED


def test_import_accepts_a_key_of_exactly_128_bits() -> None:
    """RFC 4226's minimum, 16 bytes, is enough; 15 bytes needs ``allow_short_key``."""
    two_factor = service(FakeClock(START))
    assert two_factor.import_secret("alice", bytes(range(16))) is Status.ACTIVE
    with pytest.raises(InvalidSecretError):
        two_factor.import_secret("bob", bytes(range(15)))
    assert two_factor.import_secret("bob", bytes(range(15)), allow_short_key=True) is Status.ACTIVE


# --- the first step and new secrets -------------------------------------------------------------


def test_a_code_of_step_zero_is_accepted_in_the_first_step() -> None:
    """Step 0 (the first 30 s after 1970) is a step like any other: its code matches there."""
    core = make_core(FakeClock(10.0))
    code = int(TOTP(KEY).generate(0))
    check = decide.Check(code, 6, 10.0)
    plan = core.evaluate(check, Attempt(active(last_failure_at=10.0), True), False)
    assert isinstance(plan, decide.MarkUsed)
    assert plan.step == 0
    setup = core.evaluate_setup(check, Attempt(active(status=Status.SETUP_PENDING), True))
    assert isinstance(setup, decide.Activate)
    assert setup.step == 0


@pytest.mark.parametrize("bits", [128, 160, 256])
def test_a_new_secret_has_the_policys_size(bits: int) -> None:
    """The secret made at enrolment is exactly ``policy.secret_bits`` long."""
    core = Core(
        issuer="Example", policy=Policy(secret_bits=bits), clock=FakeClock(START), cipher=None
    )
    assert len(core.new_record("alice").secret) == bits // 8


# --- the store-wide lockout ---------------------------------------------------------------------


@pytest.mark.parametrize("stored", ["1", "100"])
def test_a_stored_lockout_at_either_bound_is_honoured(stored: str) -> None:
    """A store-wide lockout of 1 (the strictest) or 100 (the largest) is a usable setting.

    1 binds every service on the store; 100 is not stricter than the policy, so no service
    proposes to replace it.
    """
    core = make_core()
    core.adopt_settings(lockout=stored, legacy=None, fresh=True)
    assert core.limits.lockout == min(int(stored), POLICY.lockout_failures)
    assert core.lockout_proposal(stored) is None


def test_settings_read_at_construction_are_read_again_at_the_first_operation() -> None:
    """A read that is not fresh leaves the settings due; no stored lockout keeps the policy's."""
    core = make_core()
    core.adopt_settings(lockout=None, legacy=None, fresh=False)
    assert core.settings_stale()
    assert core.limits.lockout == POLICY.lockout_failures
    core.adopt_settings(lockout=None, legacy=None, fresh=True)
    assert not core.settings_stale()
