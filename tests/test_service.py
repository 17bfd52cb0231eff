"""The service: the product flow end to end, on both shells and every built-in store.

Every test that uses a service gets it from the ``make_service`` fixture (or ``service``,
built from it), so it runs on TwoFactor and on AsyncTwoFactor (through a Blocking view), each
on MemoryStore, SQLiteStore, RedisStore and PostgresStore (the last two against the session's
real servers, through AsyncRedisStore and AsyncPostgresStore on the async shell; see
``tests/conftest.py``). The failing-store tests wrap a MemoryStore on purpose.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import SHELLS, MakeService, ServiceFactory, StoreMaker, wrong_code
from totpcore import (
    TOTP,
    AESGCMCipher,
    AsyncTwoFactor,
    CipherError,
    InvalidParameterError,
    InvalidTimeError,
    InvalidURIError,
    MemoryStore,
    Policy,
    Reason,
    Status,
    Store,
    StoreError,
    TotpcoreError,
    TwoFactor,
    UserStateError,
)
from totpcore.testing import FakeClock

START = 1_700_000_010.0  # 10 s into a step, so small clock moves stay in the same step
FAST = Policy(recovery_iterations=1_000)  # recovery hashing cheap enough for many tests


@pytest.fixture
def clock() -> FakeClock:
    """A clock standing at START."""
    return FakeClock(START)


@pytest.fixture
def service(make_service: MakeService, clock: FakeClock) -> TwoFactor:
    """A service on the store, through the shell, with the test clock."""
    return make_service(issuer="Example Co", policy=FAST, clock=clock)


def enrol(service: TwoFactor, clock: FakeClock, user_id: str = "alice") -> TOTP:
    """Enable and set up a user; return the phone's TOTP. The setup step counts as used."""
    service.enable(user_id)
    phone = TOTP.from_secret(service.begin_setup(user_id).secret)
    assert service.complete_setup(user_id, phone.generate(clock.now))
    clock.advance(30)
    return phone


# --- lifecycle -----------------------------------------------------------------------------


def test_enable_and_status(service: TwoFactor) -> None:
    """Enable makes a user SETUP_PENDING; unknown users are DISABLED; enable is idempotent."""
    assert service.status("alice") is Status.DISABLED
    assert service.enable("alice") is Status.SETUP_PENDING
    assert service.status("alice") is Status.SETUP_PENDING
    secret = service.begin_setup("alice").secret
    assert service.enable("alice") is Status.SETUP_PENDING
    assert service.begin_setup("alice").secret == secret


def test_enable_many_checks_every_id_first(service: TwoFactor) -> None:
    """A bad id anywhere in the batch enables nobody."""
    with pytest.raises(InvalidParameterError):
        service.enable_many(["alice", "", "bob"])
    assert service.status("alice") is Status.DISABLED
    assert service.enable_many(["alice", "bob"]) == {
        "alice": Status.SETUP_PENDING,
        "bob": Status.SETUP_PENDING,
    }


def test_setup_shows_the_same_secret_until_confirmed(service: TwoFactor, clock: FakeClock) -> None:
    """Several phones can scan: begin_setup repeats the secret; after setup it is never shown."""
    service.enable("alice")
    first = service.begin_setup("alice", account_name="alice@example.com")
    second = service.begin_setup("alice", account_name="alice@example.com")
    assert first.secret == second.secret
    assert first.uri == second.uri
    assert first.uri.startswith("otpauth://totp/Example%20Co:alice%40example.com?secret=")
    assert TOTP.from_uri(first.uri) == TOTP.from_secret(first.secret)
    phone = TOTP.from_secret(first.secret)
    verdict = service.complete_setup("alice", phone.generate(clock.now))
    assert verdict
    assert service.status("alice") is Status.ACTIVE
    with pytest.raises(UserStateError, match="setup_pending"):
        service.begin_setup("alice")


def test_provisioning_repr_hides_secret(service: TwoFactor) -> None:
    """The setup secret and URI stay out of repr."""
    service.enable("alice")
    provisioning = service.begin_setup("alice")
    assert provisioning.secret not in repr(provisioning)
    assert "otpauth" not in repr(provisioning)


def test_complete_setup_rules(service: TwoFactor, clock: FakeClock) -> None:
    """Wrong and malformed codes keep the user pending; the confirming step counts as used."""
    service.enable("alice")
    phone = TOTP.from_secret(service.begin_setup("alice").secret)
    assert service.complete_setup("alice", "abc").reason is Reason.MALFORMED
    wrong = wrong_code(phone, clock.now)
    assert service.complete_setup("alice", wrong).reason is Reason.INVALID
    assert service.status("alice") is Status.SETUP_PENDING
    code = phone.generate(clock.now)
    assert service.complete_setup("alice", code).reason is Reason.ACCEPTED
    assert service.verify("alice", code).reason is Reason.REPLAYED
    with pytest.raises(UserStateError):
        service.complete_setup("alice", code)


def test_wrong_state_admin_calls_raise(service: TwoFactor, clock: FakeClock) -> None:
    """Admin and setup calls in the wrong state raise UserStateError saying why."""
    with pytest.raises(UserStateError, match="disabled"):
        service.begin_setup("alice")
    with pytest.raises(UserStateError, match="disabled"):
        service.complete_setup("alice", "123456")
    service.enable("alice")
    with pytest.raises(UserStateError, match="setup_pending"):
        service.reset("alice")
    with pytest.raises(UserStateError, match="setup_pending"):
        service.new_recovery_codes("alice")
    with pytest.raises(UserStateError):
        service.unlock("nobody")


def test_verify_before_setup_and_when_disabled(service: TwoFactor, clock: FakeClock) -> None:
    """Login checks report NOT_ENABLED and SETUP_REQUIRED instead of raising."""
    assert service.verify("alice", "123456").reason is Reason.NOT_ENABLED
    assert service.verify("alice", "x").reason is Reason.NOT_ENABLED
    service.enable("alice")
    assert service.verify("alice", "123456").reason is Reason.SETUP_REQUIRED
    assert service.verify_request("alice", "nope").reason is Reason.SETUP_REQUIRED
    stored = service.store.get("alice")
    assert stored is not None
    assert stored.failures == 0  # a pending user's login is not charged


@pytest.mark.usefixtures("known_secrets")  # the old phone's codes, checked under the new secret
def test_reset_kills_the_old_secret(service: TwoFactor, clock: FakeClock) -> None:
    """After reset the old phone's codes fail, setup is required, recovery codes are gone."""
    phone = enrol(service, clock)
    codes = service.new_recovery_codes("alice")
    old_secret = phone.key
    service.reset("alice")
    assert service.status("alice") is Status.SETUP_PENDING
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.SETUP_REQUIRED
    new = service.begin_setup("alice")
    assert TOTP.from_secret(new.secret).key != old_secret
    new_phone = TOTP.from_secret(new.secret)
    assert not service.complete_setup("alice", phone.generate(clock.now))
    assert service.complete_setup("alice", new_phone.generate(clock.now))
    clock.advance(30)
    assert not service.verify("alice", phone.generate(clock.now))
    assert not service.use_recovery_code("alice", codes[0])


def test_disable(service: TwoFactor, clock: FakeClock) -> None:
    """Disable removes the factor; a second disable is a no-op."""
    enrol(service, clock)
    assert service.disable("alice") is True
    assert service.status("alice") is Status.DISABLED
    assert service.disable("alice") is False


# --- login ---------------------------------------------------------------------------------


def test_login_accepts_each_step_once(service: TwoFactor, clock: FakeClock) -> None:
    """A code is accepted once; the same code again is REPLAYED (RFC 6238 §5.2)."""
    phone = enrol(service, clock)
    code = phone.generate(clock.now)
    verdict = service.verify("alice", code)
    assert verdict
    assert verdict.reason is Reason.ACCEPTED
    replay = service.verify("alice", code)
    assert not replay
    assert replay.reason is Reason.REPLAYED
    assert (
        replay.message == service.verify("alice", wrong_code(phone, clock.now)).message
    )  # attacker sees no difference


def test_login_refuses_an_older_step_after_a_newer_one(
    service: TwoFactor, clock: FakeClock
) -> None:
    """After step n is used, step n-1 (still inside the window) is REPLAYED."""
    phone = enrol(service, clock)
    assert service.verify("alice", phone.generate(clock.now))
    assert service.verify("alice", phone.generate(clock.now - 30)).reason is Reason.REPLAYED


@pytest.mark.usefixtures("known_secrets")  # a code must not be another window step's by chance
def test_api_header_mode_repeats_the_last_step_only(service: TwoFactor, clock: FakeClock) -> None:
    """verify_request accepts the last accepted step again while in the window, never older."""
    phone = enrol(service, clock)
    code = phone.generate(clock.now)
    for _ in range(5):
        assert service.verify_request("alice", code)
    assert service.verify_request("alice", phone.generate(clock.now - 30)).reason is Reason.REPLAYED
    clock.advance(30)
    assert service.verify_request("alice", code)  # one step old: still inside window 1
    clock.advance(30)
    assert service.verify_request("alice", code).reason is Reason.INVALID  # outside the window
    assert not service.verify("alice", phone.generate(clock.now - 60))


def test_login_never_repeats_even_after_api_use(service: TwoFactor, clock: FakeClock) -> None:
    """Login mode refuses a step that API mode already accepted."""
    phone = enrol(service, clock)
    code = phone.generate(clock.now)
    assert service.verify_request("alice", code)
    assert service.verify("alice", code).reason is Reason.REPLAYED


@pytest.mark.usefixtures("known_secrets")  # the code two steps on must not be a window step's
def test_window_and_malformed_codes(service: TwoFactor, clock: FakeClock) -> None:
    """Codes two steps away fail; grouped codes pass; malformed codes are not charged."""
    phone = enrol(service, clock)
    assert service.verify("alice", phone.generate(clock.now + 60)).reason is Reason.INVALID
    code = phone.generate(clock.now)
    assert service.verify("alice", f"{code[:3]} {code[3:]}")
    for bad in ("12345", "\uff11\uff12\uff13\uff14\uff15\uff16", "12345a", "", "123_456"):
        assert service.verify("alice", bad).reason is Reason.MALFORMED
    stored = service.store.get("alice")
    assert stored is not None
    assert stored.failures == 0


@pytest.mark.usefixtures("known_secrets")  # a nearer step sharing the code would change the drift
def test_drift_is_learned_and_centres_the_window(service: TwoFactor, clock: FakeClock) -> None:
    """A phone losing 30 s per minute is followed step by step, then accepted 4 steps behind."""
    phone = enrol(service, clock)
    slow = 0
    for expected_drift in (-1, -2, -3):
        clock.advance(60)
        slow -= 30
        verdict = service.verify("alice", phone.generate(clock.now + slow))
        assert verdict, verdict
        assert verdict.drift == expected_drift
    assert "slow" in verdict.detail
    clock.advance(60)
    assert service.verify("alice", phone.generate(clock.now - 120))  # -4: inside -3 ± 1
    assert not service.verify("alice", phone.generate(clock.now))  # +0 is now outside


def test_drift_learning_can_be_turned_off(make_service: MakeService, clock: FakeClock) -> None:
    """With learn_drift=False the window stays on the server's clock."""
    service = make_service(
        issuer="X", clock=clock, policy=dataclasses.replace(FAST, learn_drift=False)
    )
    phone = enrol(service, clock)
    clock.advance(30)
    verdict = service.verify("alice", phone.generate(clock.now - 30))
    assert verdict
    assert verdict.drift == 0


@pytest.mark.usefixtures("known_secrets")  # the fast code must not be a window step's by chance
def test_resync_a_phone_two_hours_fast(service: TwoFactor, clock: FakeClock) -> None:
    """Two consecutive codes from a phone 2 h fast resynchronise it; the pair is then used."""
    phone = enrol(service, clock)
    assert service.verify("alice", phone.generate(clock.now))
    clock.advance(30)
    fast = clock.now + 7200
    assert not service.verify("alice", phone.generate(fast))
    verdict = service.resync("alice", phone.generate(fast - 30), phone.generate(fast))
    assert verdict
    assert verdict.drift == 240
    assert verdict.detail == "code accepted; the device clock is about 2 hours fast"
    stored = service.store.get("alice")
    assert stored is not None
    assert stored.last_step == phone.counter_at(fast)
    assert service.verify("alice", phone.generate(fast)).reason is Reason.REPLAYED
    clock.advance(30)
    assert service.verify("alice", phone.generate(clock.now + 7200))
    # The same pair again is a replay, not a second resync.
    again = service.resync("alice", phone.generate(fast - 30), phone.generate(fast))
    assert again.reason is Reason.REPLAYED


def test_resync_a_slow_phone_unused_since_import(service: TwoFactor, clock: FakeClock) -> None:
    """An imported user whose phone fell 2 h slow resyncs, as long as its codes are new.

    The replay mark sits at the import's step; a day later the slow phone's pair lies above it.
    """
    phone = TOTP(bytes(range(20)))
    service.import_secret("alice", phone.key)
    clock.advance(86_400)
    slow = clock.now - 7200
    assert not service.verify("alice", phone.generate(slow))
    verdict = service.resync("alice", phone.generate(slow - 30), phone.generate(slow))
    assert verdict
    assert verdict.drift == -240
    clock.advance(30)
    assert service.verify("alice", phone.generate(clock.now - 7200))


def test_resync_cannot_go_behind_the_mark(service: TwoFactor, clock: FakeClock) -> None:
    """A phone that fell 2 h slow after use is refused: fix its time, or an admin resets."""
    phone = enrol(service, clock)
    slow = clock.now - 7200
    verdict = service.resync("alice", phone.generate(slow - 30), phone.generate(slow))
    assert verdict.reason is Reason.REPLAYED
    assert "not above the last accepted step" in verdict.detail


def test_resync_refuses_codes_that_are_not_consecutive(
    service: TwoFactor, clock: FakeClock
) -> None:
    """Codes from steps two apart, or beyond 12 hours, do not resynchronise."""
    phone = enrol(service, clock)
    assert (
        service.resync(
            "alice", phone.generate(clock.now - 600), phone.generate(clock.now - 540)
        ).reason
        is Reason.INVALID
    )
    far = clock.now - 13 * 3600
    assert service.resync("alice", phone.generate(far), phone.generate(far + 30)).reason is (
        Reason.INVALID
    )
    assert service.resync("alice", "abc", "123456").reason is Reason.MALFORMED


# --- throttling ----------------------------------------------------------------------------


def test_throttle_after_five_free_failures(service: TwoFactor, clock: FakeClock) -> None:
    """Five wrong codes are free; then the right code is THROTTLED for 1 s, 2 s, 4 s ..."""
    phone = enrol(service, clock)
    bad = wrong_code(phone, clock.now)
    for _ in range(5):
        assert service.verify("alice", bad).reason is Reason.INVALID
    throttled = service.verify("alice", phone.generate(clock.now))
    assert throttled.reason is Reason.THROTTLED
    # Attempts at one clock reading are stamped 1 ms apart, so the wait ends 4 ms later.
    assert throttled.retry_after == pytest.approx(1.004)
    assert throttled.retry_after is not None
    clock.advance(throttled.retry_after)
    assert service.verify("alice", bad).reason is Reason.INVALID
    throttled = service.verify("alice", phone.generate(clock.now))
    assert throttled.retry_after == pytest.approx(2.0)
    assert throttled.retry_after is not None
    clock.advance(throttled.retry_after)
    assert service.verify("alice", phone.generate(clock.now))  # success clears the count
    stored = service.store.get("alice")
    assert stored is not None
    assert stored.failures == 0


def test_throttled_codes_are_not_evaluated(
    service: TwoFactor, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While throttled, even the right code is refused without computing any HMAC."""
    from totpcore._engine import Keyed

    phone = enrol(service, clock)
    bad = wrong_code(phone, clock.now)
    for _ in range(5):
        service.verify("alice", bad)
    calls: list[Any] = []
    original = Keyed.around

    def spy(self: Keyed, *args: Any) -> Any:
        calls.append(args)
        return original(self, *args)

    # Every evaluation scans the window through Keyed.around; count the scans.
    monkeypatch.setattr(Keyed, "around", spy)
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.THROTTLED
    assert calls == []
    clock.advance(1.01)  # the delay is over: now the code is evaluated, through the spy
    assert service.verify("alice", phone.generate(clock.now))
    assert len(calls) == 1


def test_lock_after_100_failures_needs_an_admin(service: TwoFactor, clock: FakeClock) -> None:
    """The 100th consecutive failure locks the user until an admin unlocks them."""
    phone = enrol(service, clock)
    # Wrong at every one of the 100 readings, not only the first: each reading's window has
    # three codes of its own.
    bad = wrong_code(phone, *(clock.now + FAST.max_delay * n for n in range(100)))
    for _ in range(100):
        verdict = service.verify("alice", bad)
        assert verdict.reason is Reason.INVALID
        clock.advance(FAST.max_delay)
    locked = service.verify("alice", phone.generate(clock.now))
    assert locked.reason is Reason.LOCKED
    assert locked.message.startswith("Too many attempts")
    clock.advance(86400 * 30)
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.LOCKED
    service.unlock("alice")
    assert service.verify("alice", phone.generate(clock.now))


def test_recovery_and_resync_attempts_count(service: TwoFactor, clock: FakeClock) -> None:
    """Wrong recovery codes and failed resyncs are charged like wrong OTPs."""
    phone = enrol(service, clock)
    service.new_recovery_codes("alice")
    bad = wrong_code(phone, clock.now)
    for _ in range(3):
        assert service.use_recovery_code("alice", "0000-0000-0000").reason is Reason.INVALID
    for _ in range(2):
        assert service.resync("alice", bad, bad).reason is Reason.INVALID
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.THROTTLED


# --- recovery codes ------------------------------------------------------------------------


def test_recovery_codes(service: TwoFactor, clock: FakeClock) -> None:
    """Ten typable codes of 60 bits, stored only hashed, each usable once, forgiving input."""
    enrol(service, clock)
    codes = service.new_recovery_codes("alice")
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        assert len(code) == 14
        assert code[4] == code[9] == "-"
    stored = service.store.get("alice")
    assert stored is not None
    assert len(stored.recovery_hashes) == 10
    for code in codes:
        assert all(code.replace("-", "") not in entry for entry in stored.recovery_hashes)
    # Typed in upper case, with spaces instead of hyphens: still accepted.
    assert service.use_recovery_code("alice", codes[0].upper().replace("-", " "))
    assert not service.use_recovery_code("alice", codes[0])
    assert service.use_recovery_code("alice", codes[1])
    assert service.use_recovery_code("alice", "not a code").reason is Reason.MALFORMED
    new_codes = service.new_recovery_codes("alice")
    assert not service.use_recovery_code("alice", codes[2])  # replaced by the new set
    assert service.use_recovery_code("alice", new_codes[2])


def test_recovery_code_alphabet_has_60_bits() -> None:
    """12 characters from a 32-symbol alphabet: 60 bits, drawn uniformly."""
    from totpcore.recovery import _ALPHABET, CODE_LENGTH, generate_recovery_codes

    assert len(set(_ALPHABET)) == 32
    assert CODE_LENGTH * math.log2(len(_ALPHABET)) >= 60
    seen = set("".join(generate_recovery_codes(200)).replace("-", ""))
    assert seen == set(_ALPHABET)


# --- secrets at rest -----------------------------------------------------------------------


def test_cipher_keeps_only_ciphertext_in_the_store(
    store: Store, make_service: MakeService, clock: FakeClock
) -> None:
    """With a cipher the store never holds the key; a ciphertext moved to another user fails."""
    cipher = AESGCMCipher(AESGCM.generate_key(bit_length=256))
    service = make_service(issuer="X", policy=FAST, clock=clock, cipher=cipher)
    phone = enrol(service, clock)
    stored = store.get("alice")
    assert stored is not None
    assert phone.key not in stored.secret
    assert service.verify("alice", phone.generate(clock.now))
    service.enable("mallory")
    mallory = store.get("mallory")
    assert mallory is not None
    store.replace(mallory._replace(secret=stored.secret), generation=mallory.generation)
    with pytest.raises(CipherError):
        service.begin_setup("mallory")


def test_wrong_cipher_key_fails_closed(
    store: Store, make_service: MakeService, clock: FakeClock
) -> None:
    """A service with the wrong key, or none, fails before its first operation does anything.

    The sync shell fails at construction, the async one at its first call (a constructor
    cannot await): the first call is therefore made inside the ``raises`` block.
    """
    service = make_service(
        issuer="X", policy=FAST, clock=clock, cipher=AESGCMCipher(os.urandom(32))
    )
    enrol(service, clock)
    before = store.get("alice")
    with pytest.raises(CipherError, match="does not have"):
        make_service(
            issuer="X", policy=FAST, clock=clock, cipher=AESGCMCipher(os.urandom(32))
        ).status("alice")
    with pytest.raises(CipherError, match="encrypted"):
        make_service(issuer="X", policy=FAST, clock=clock).status("alice")
    assert store.get("alice") == before


def test_sync_constructor_checks_the_cipher(store: Store, clock: FakeClock) -> None:
    """TwoFactor itself raises CipherError at construction for a wrong or missing key."""
    service = TwoFactor(
        store, issuer="X", policy=FAST, clock=clock, cipher=AESGCMCipher(os.urandom(32))
    )
    enrol(service, clock)
    before = store.get("alice")
    with pytest.raises(CipherError, match="does not have"):
        TwoFactor(store, issuer="X", policy=FAST, clock=clock, cipher=AESGCMCipher(os.urandom(32)))
    with pytest.raises(CipherError, match="encrypted"):
        TwoFactor(store, issuer="X", policy=FAST, clock=clock)
    assert store.get("alice") == before


def test_async_cipher_check_waits_for_the_first_call(store: Store, clock: FakeClock) -> None:
    """AsyncTwoFactor cannot await at construction: a wrong key raises on the first call.

    Every kind of first call raises it, before anything is read or written for the user.
    """
    with ServiceFactory(store, "async") as make:
        enrol(
            make(issuer="X", policy=FAST, clock=clock, cipher=AESGCMCipher(os.urandom(32))), clock
        )
        before = store.get("alice")
        first_calls: list[tuple[str, tuple[Any, ...]]] = [
            ("status", ("alice",)),
            ("verify", ("alice", "123456")),
            ("verify", ("alice", "x")),
            ("enable", ("bob",)),
            ("begin_setup", ("alice",)),
            ("use_recovery_code", ("alice", "0000-0000-0000")),
            ("rotate_key", ()),
        ]
        for name, args in first_calls:
            wrong = make(issuer="X", policy=FAST, clock=clock, cipher=AESGCMCipher(os.urandom(32)))
            with pytest.raises(CipherError, match="does not have"):
                getattr(wrong, name)(*args)
        with pytest.raises(CipherError, match="encrypted"):
            make(issuer="X", policy=FAST, clock=clock).verify("alice", "123456")
        assert store.get("alice") == before
        assert store.get("bob") is None


# --- failing stores ------------------------------------------------------------------------


class FailingStore(MemoryStore):
    """A MemoryStore whose chosen operation raises, as a broken database would.

    A failing ``begin_attempt`` or ``mark_used`` also breaks ``charge_and_mark``, the one-lock
    login both shells use on this store, which does the work of both.
    """

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing

    def __getattribute__(self, name: str) -> Any:
        failing = object.__getattribute__(self, "failing")
        if name == failing or (
            name == "charge_and_mark" and failing in ("begin_attempt", "mark_used")
        ):

            def broken(*args: Any, **kwargs: Any) -> Any:
                raise OSError("disk on fire; secret=JBSWY3DPEHPK3PXP")

            return broken
        return object.__getattribute__(self, name)


@pytest.mark.parametrize(
    ("operation", "code"),
    [("begin_attempt", "valid"), ("mark_used", "valid"), ("get", "malformed")],
)
def test_store_failure_is_never_acceptance(
    clock: FakeClock, shell: str, operation: str, code: str
) -> None:
    """A store that fails mid-verify raises StoreError (a TotpcoreError), never ACCEPTED.

    The async shell runs on an AsyncMemoryStore around the same failing store.
    """
    store = FailingStore("none")
    with ServiceFactory(store, shell) as make:
        service = make(issuer="X", policy=FAST, clock=clock)
        phone = enrol(service, clock)
        store.failing = operation
        with pytest.raises(StoreError) as caught:
            service.verify("alice", phone.generate(clock.now) if code == "valid" else "x")
        assert "JBSWY3DP" not in str(caught.value)
        store.failing = "none"
        stored = store.get("alice")
        assert stored is not None
        assert stored.last_step == phone.counter_at(clock.now - 30)  # nothing was marked used


@pytest.mark.parametrize("operation", ["get_meta", "set_meta"])
def test_store_failure_at_start_up(clock: FakeClock, shell: str, operation: str) -> None:
    """A store failing while the settings are read gives StoreError, at start-up or first call."""
    store = FailingStore(operation)
    with ServiceFactory(store, shell) as make, pytest.raises(StoreError, match="start-up"):
        make(issuer="X", policy=FAST, clock=clock).enable("alice")
    store.failing = "none"
    assert store.get("alice") is None


def test_store_failure_on_admin_calls(clock: FakeClock, shell: str) -> None:
    """Admin calls wrap backend errors too."""
    with ServiceFactory(FailingStore("insert"), shell) as make:
        service = make(issuer="X", policy=FAST, clock=clock)
        with pytest.raises(StoreError):
            service.enable("alice")


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "error"),
    [
        ("", InvalidParameterError),
        ("a" * 257, InvalidParameterError),
        ("a\0b", InvalidParameterError),
        (42, TypeError),
        (None, TypeError),
    ],
)
def test_bad_user_ids(service: TwoFactor, user_id: Any, error: type[Exception]) -> None:
    """User ids are non-empty strings of at most 256 characters without NUL."""
    for call in (service.enable, service.status, service.disable):
        with pytest.raises(error):
            call(user_id)
    with pytest.raises(error):
        service.verify(user_id, "123456")


@pytest.mark.parametrize("code", [123456, None, b"123456"])
def test_non_string_codes(service: TwoFactor, clock: FakeClock, code: Any) -> None:
    """Codes must be strings: anything else is a TypeError before the store is touched."""
    enrol(service, clock)
    for call in (service.verify, service.verify_request, service.use_recovery_code):
        with pytest.raises(TypeError):
            call("alice", code)


@pytest.mark.parametrize("now", [math.nan, math.inf, -1.0, 1e300])
def test_bad_clock(make_service: MakeService, now: float) -> None:
    """A clock returning NaN, infinity or a negative time is refused, not used."""
    service = make_service(issuer="X", policy=FAST, clock=lambda: now)
    service.enable("alice")
    with pytest.raises(InvalidTimeError):
        service.verify("alice", "123456")


def test_constructor_checks(store: Store) -> None:
    """Wrong kinds of store, policy, clock or cipher, and a bad issuer, are refused."""
    with pytest.raises(TypeError):
        TwoFactor(object(), issuer="X")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TwoFactor(store, issuer="X", policy={"window": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TwoFactor(store, issuer="X", clock=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TwoFactor(store, issuer="X", cipher=object())  # type: ignore[arg-type]
    with pytest.raises(InvalidURIError):
        TwoFactor(store, issuer="Bad:Issuer")


def test_async_constructor_checks(store: Store) -> None:
    """AsyncTwoFactor refuses the same wrong arguments, at construction (nothing is awaited)."""
    with ServiceFactory(store, "async") as factory:
        twin = factory.twin()
        with pytest.raises(TypeError):
            AsyncTwoFactor(object(), issuer="X")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            AsyncTwoFactor(twin, issuer="X", policy={"window": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            AsyncTwoFactor(twin, issuer="X", clock=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            AsyncTwoFactor(twin, issuer="X", cipher=object())  # type: ignore[arg-type]
        with pytest.raises(InvalidURIError):
            AsyncTwoFactor(twin, issuer="Bad:Issuer")


BAD_POLICIES: dict[str, tuple[dict[str, Any], type[Exception]]] = {
    "window too wide": ({"window": 11}, InvalidParameterError),
    "lockout above NIST 100": ({"lockout_failures": 101}, InvalidParameterError),
    "free above lockout": ({"free_failures": 20, "lockout_failures": 10}, InvalidParameterError),
    "negative delay": ({"base_delay": -1.0}, InvalidParameterError),
    "cap below base": ({"base_delay": 10.0, "max_delay": 5.0}, InvalidParameterError),
    "short secrets": ({"secret_bits": 80}, InvalidParameterError),
    "digits": ({"digits": 9}, InvalidParameterError),
    "algorithm": ({"algorithm": "MD5"}, InvalidParameterError),
    "no recovery codes": ({"recovery_codes": 0}, InvalidParameterError),
    "learn_drift not bool": ({"learn_drift": 1}, TypeError),
    "delay as str": ({"base_delay": "1"}, TypeError),
}


@pytest.mark.parametrize(("options", "error"), BAD_POLICIES.values(), ids=BAD_POLICIES.keys())
def test_bad_policies(options: dict[str, Any], error: type[Exception]) -> None:
    """Policy validates every option at construction."""
    with pytest.raises(error):
        Policy(**options)


def test_recovery_check_costs_one_hash(
    service: TwoFactor, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ten codes stored, checking one (right or wrong) derives exactly one hash."""
    import hashlib

    enrol(service, clock)
    codes = service.new_recovery_codes("alice")
    calls: list[bytes] = []
    original = hashlib.pbkdf2_hmac

    def counting(name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        calls.append(password)
        return original(name, password, salt, iterations)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counting)
    assert service.use_recovery_code("alice", codes[9])
    assert len(calls) == 1
    assert not service.use_recovery_code("alice", "zzzz-zzzz-zzzz")
    assert len(calls) == 2


#: Examples of arbitrary text per store. Fewer on the servers, where each example costs two
#: new stores and their round trips (150 there would add about 10 s to the suite); what they
#: add over the local stores is how their encodings take the odd text.
TEXT_EXAMPLES = {"memory": 150, "sqlite": 150, "redis": 50, "postgres": 50}


def test_arbitrary_text_only_yields_verdicts_or_totpcore_errors(
    new_store: StoreMaker, request: pytest.FixtureRequest
) -> None:
    """Any text as user id or code gives a Verdict or a TotpcoreError, on every store and shell.

    Each shell gets a new store, so both see the same sequence of calls from an empty store;
    each store must take any such text, or refuse it with a TotpcoreError. (Hypothesis runs
    inside the test, as it forbids function-scoped fixtures on a test it drives itself.)
    """
    kind = request.node.callspec.params["new_store"]

    @settings(max_examples=TEXT_EXAMPLES[kind])
    @given(user_id=st.text(max_size=40), code=st.text(max_size=16), other=st.text(max_size=16))
    def check(user_id: str, code: str, other: str) -> None:
        clock = FakeClock()
        for shell in SHELLS:
            with new_store() as store, ServiceFactory(store, shell) as make:
                service = make(issuer="X", policy=FAST, clock=clock)
                calls: list[tuple[str, tuple[str, ...]]] = [
                    ("verify", (user_id, code)),
                    ("verify_request", (user_id, code)),
                    ("resync", (user_id, code, other)),
                    ("use_recovery_code", (user_id, code)),
                    ("enable", (user_id,)),
                    ("verify", (user_id, code)),
                    ("complete_setup", (user_id, code)),
                ]
                for name, args in calls:
                    try:
                        result = getattr(service, name)(*args)
                    except TotpcoreError as error:
                        assert str(error)  # noqa: PT017 - several calls per example
                    else:
                        assert result is not None

    check()


def test_throttle_at_the_epoch(make_service: MakeService) -> None:
    """A failure at Unix time 0.0 still starts the delay (0.0 is a time, not 'never')."""
    clock = FakeClock(0.0)
    service = make_service(issuer="X", policy=FAST, clock=clock)
    service.enable("alice")
    phone = TOTP.from_secret(service.begin_setup("alice").secret)
    near = {phone.generate(at) for at in (0, 30, 60)}
    wrong = next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in near)
    for _ in range(5):
        assert service.complete_setup("alice", wrong).reason is Reason.INVALID
    # Half of the 1 s delay has passed since the failures at 0.0 (stamped 1 ms apart, as
    # attempts at one clock reading are).
    clock.set(0.504)
    throttled = service.complete_setup("alice", phone.generate(0))
    assert throttled.reason is Reason.THROTTLED
    assert throttled.retry_after == pytest.approx(0.5)
