"""The attacks 0.1.0 let through, replayed against today's rules.

Each test plays an attacker who has the victim's password (or API key) but not the phone, and
interleaves the attack with the real user's successes, across policies, resets, resyncs and
clock steps. Every one of them fails on 0.1.0: the numbers in the docstrings are what 0.1.0
allowed.

Every attack runs on both service shells (TwoFactor, and AsyncTwoFactor through a Blocking
view) and on every built-in store (memory, SQLite, Redis, PostgreSQL), through the
``make_service`` fixture; the multi-process attack stays on the sync shell and SQLite, each
process with its own store.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from helpers import MakeService, ServiceFactory
from totpcore import (
    TOTP,
    CipherError,
    Policy,
    Reason,
    SQLiteStore,
    Status,
    Store,
    TwoFactor,
    encode_secret,
)
from totpcore.testing import FakeClock

START = 1_700_000_010.0
DAY = 86_400.0
FAST = Policy(recovery_iterations=1_000)


def enrolled(
    make: MakeService, policy: Policy = FAST, clock: FakeClock | None = None
) -> tuple[TwoFactor, TOTP, FakeClock]:
    """An ACTIVE 'alice' on a service from ``make``; returns the service, her phone, the clock."""
    clock = clock or FakeClock(START)
    service = make(issuer="X", policy=policy, clock=clock)
    service.enable("alice")
    phone = TOTP.from_secret(service.begin_setup("alice").secret)
    assert service.complete_setup("alice", phone.generate(clock.now))
    return service, phone, clock


def guesses(phone: TOTP, clock: FakeClock, seed: int = 7) -> Any:
    """An endless stream of well-formed codes, each wrong for every step within ±3 of the clock.

    Checked against the clock's time when each code is drawn, so draw it just before use: an
    unchecked random guess is right for one of the window's three steps about once in 300,000,
    and would then be accepted instead of counted.
    """
    rng = random.Random(seed)
    while True:
        code = f"{rng.randrange(10**6):06d}"
        if is_wrong(phone, code, clock.now):
            yield code


def is_wrong(phone: TOTP, code: str, at: float) -> bool:
    """Whether ``code`` matches no step within ±3 of ``at``."""
    return all(phone.generate(at + 30 * d) != code for d in range(-3, 4))


# --- the guessing budget -------------------------------------------------------------------


def test_guesses_between_api_requests_stay_within_the_budget(make_service: MakeService) -> None:
    """4 guesses between API requests every 10 s: at most 100 evaluated in 24 h (0.1.0: 34,560).

    The victim's requests carry the current code in the otp header, so most are repeats of an
    accepted step and every third is a fresh step. Neither kind may refill the attacker's
    budget. Once the budget is spent the user is locked: the denial of service the security
    model documents.
    """
    service, phone, clock = enrolled(make_service)
    stream = guesses(phone, clock)
    evaluated = 0
    reasons: set[Reason] = set()
    end = clock.now + DAY
    while clock.now < end:
        clock.advance(10)
        victim = service.verify_request("alice", phone.generate(clock.now))
        reasons.add(victim.reason)
        for _ in range(4):
            code = next(stream)
            verdict = service.verify_request("alice", code)
            if verdict.reason is Reason.INVALID and is_wrong(phone, code, clock.now):
                evaluated += 1
        if victim.reason is Reason.LOCKED:
            break
    assert evaluated <= FAST.lockout_failures, f"{evaluated} guesses evaluated in 24 h"
    assert Reason.ACCEPTED in reasons
    assert service.verify("alice", phone.generate(clock.now + 30)).reason is Reason.LOCKED


def test_sniffed_header_cannot_reset_the_throttle(make_service: MakeService) -> None:
    """Replaying one sniffed header after every 4 guesses: no more than the free failures pass.

    0.1.0 cleared the failure count on every accepted repeat, which let about 96,000 guesses
    through in the minute the header stays valid.
    """
    service, phone, clock = enrolled(make_service)
    clock.advance(30)
    sniffed = phone.generate(clock.now)
    assert service.verify_request("alice", sniffed)  # the victim's own request
    stream = guesses(phone, clock)
    evaluated = 0
    for _ in range(600):  # one round every 0.1 s for the minute the code stays valid
        clock.advance(0.1)
        service.verify_request("alice", sniffed)
        for _ in range(4):
            if service.verify_request("alice", next(stream)).reason is Reason.INVALID:
                evaluated += 1
    # 5 free, then waits of 1, 2, 4, 8, 16 s: at most 10 in 60 s, whatever the repeats.
    assert evaluated <= 10, f"{evaluated} guesses evaluated in one minute"


def test_daily_logins_do_not_refill_the_budget(make_service: MakeService) -> None:
    """A victim logging in once a day: the attacker still gets at most 100 in any 24 h.

    0.1.0 handed the attacker a fresh 100 guesses with every login.
    """
    policy = Policy(base_delay=0.001, max_delay=0.001, recovery_iterations=1_000)
    service, phone, clock = enrolled(make_service, policy)
    stream = guesses(phone, clock)
    times: list[float] = []
    for _ in range(3):  # three days
        clock.advance(30)
        assert service.verify("alice", phone.generate(clock.now)).reason in (
            Reason.ACCEPTED,
            Reason.LOCKED,
        )
        for _ in range(60):  # 60 guesses right after each login, then a quiet day
            clock.advance(1)
            if service.verify("alice", next(stream)).reason is Reason.INVALID:
                times.append(clock.now)
        clock.advance(DAY / 3)
    worst = max(sum(1 for t in times if start <= t < start + DAY) for start in times)
    assert worst <= policy.lockout_failures, f"{worst} guesses in one rolling 24 h"


def test_budget_across_two_policies_on_one_store(make_service: MakeService) -> None:
    """An API gateway with a lax policy cannot evaluate codes for a user the app locked.

    0.1.0 never read locked_at: the second service went on guessing, and a success through it
    lifted the lock silently.
    """
    strict = Policy(lockout_failures=20, free_failures=20, recovery_iterations=1_000)
    lax = Policy(lockout_failures=100, free_failures=100, recovery_iterations=1_000)
    app, phone, clock = enrolled(make_service, strict)
    gateway = make_service(issuer="X", policy=lax, clock=clock)
    stream = guesses(phone, clock)
    for _ in range(20):
        clock.advance(1)
        assert app.verify("alice", next(stream)).reason is Reason.INVALID
    clock.advance(1)
    assert app.verify("alice", next(stream)).reason is Reason.LOCKED
    clock.advance(30)
    for service in (gateway, app):
        for code in (next(stream), phone.generate(clock.now)):
            assert service.verify_request("alice", code).reason is Reason.LOCKED
    gateway.unlock("alice")
    assert app.verify("alice", phone.generate(clock.now))


def test_lax_service_guesses_count_for_the_strict_one(make_service: MakeService) -> None:
    """Guesses made through the lax service spend the budget the strict service enforces."""
    strict = Policy(lockout_failures=20, free_failures=20, recovery_iterations=1_000)
    lax = Policy(lockout_failures=100, free_failures=100, recovery_iterations=1_000)
    app, phone, clock = enrolled(make_service, strict)
    gateway = make_service(issuer="X", policy=lax, clock=clock)
    stream = guesses(phone, clock)
    for _ in range(30):  # the victim logs in through the app between the gateway guesses
        clock.advance(30)
        app.verify("alice", phone.generate(clock.now))
        gateway.verify_request("alice", next(stream))
    assert app.verify("alice", next(stream)).reason is Reason.LOCKED


def test_reset_refills_the_budget_and_resync_does_not(make_service: MakeService) -> None:
    """Only an admin refills the budget: a resync or a recovery code does not."""
    policy = Policy(
        lockout_failures=10, free_failures=10, base_delay=0.001, recovery_iterations=1_000
    )
    service, phone, clock = enrolled(make_service, policy)
    recovery = service.new_recovery_codes("alice")
    stream = guesses(phone, clock)
    for _ in range(5):
        clock.advance(1)
        service.verify("alice", next(stream))
    clock.advance(600)
    assert service.resync("alice", phone.generate(clock.now), phone.generate(clock.now + 30))
    assert service.use_recovery_code("alice", recovery[0])
    for _ in range(5):
        clock.advance(1)
        assert service.verify("alice", next(stream)).reason is Reason.INVALID
    clock.advance(1)
    assert service.verify("alice", next(stream)).reason is Reason.LOCKED
    service.reset("alice")
    phone = TOTP.from_secret(service.begin_setup("alice").secret)
    assert service.complete_setup("alice", phone.generate(clock.now))
    stream = guesses(phone, clock)  # wrong for the new secret, not only for the old one
    for _ in range(10):
        clock.advance(1)
        assert service.verify("alice", next(stream)).reason is Reason.INVALID


def test_budget_holds_against_threads_and_the_victim(make_service: MakeService) -> None:
    """8 attacker threads and the victim's successes at once: at most 100 guesses evaluated."""
    policy = Policy(base_delay=0.001, max_delay=0.001, recovery_iterations=1_000)
    service, phone, clock = enrolled(make_service, policy)
    counts = [0] * 8
    stop = threading.Event()

    def attacker(index: int) -> None:
        stream = guesses(phone, clock, seed=index)
        for _ in range(60):
            if service.verify_request("alice", next(stream)).reason is Reason.INVALID:
                counts[index] += 1

    def victim() -> None:
        # At most 2,000 steps (under 17 hours): the bound is per rolling 24 hours, so the
        # simulated day must not end while the attackers are still guessing.
        for _ in range(2000):
            if stop.is_set():
                return
            clock.advance(30)
            service.verify_request("alice", phone.generate(clock.now))

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(8)]
    helper = threading.Thread(target=victim)
    helper.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    helper.join()
    assert sum(counts) <= policy.lockout_failures, f"{sum(counts)} evaluated"


def _attacking_process(path: str, seed: int, results: Any) -> None:
    """One app server guessing on the shared file as fast as the throttle allows."""
    store = SQLiteStore(path)
    policy = Policy(base_delay=0.001, max_delay=0.001, recovery_iterations=1_000)
    clock = FakeClock(START + 60)
    service = TwoFactor(store, issuer="X", policy=policy, clock=clock)
    rng = random.Random(seed)
    evaluated = 0
    for _ in range(80):
        clock.advance(1)
        code = f"{rng.randrange(10**6):06d}"
        if service.verify_request("alice", code).reason is Reason.INVALID:
            evaluated += 1
    store.close()
    results.put(evaluated)


def _victim_process(path: str, secret: str, results: Any) -> None:
    """The real user's app server, logging in at every step."""
    store = SQLiteStore(path)
    clock = FakeClock(START + 60)
    service = TwoFactor(store, issuer="X", policy=FAST, clock=clock)
    phone = TOTP.from_secret(secret)
    accepted = 0
    for _ in range(40):
        clock.advance(30)
        accepted += bool(service.verify("alice", phone.generate(clock.now)))
    store.close()
    results.put(-1 - accepted)  # negative: told apart from the attackers' counts


def test_budget_holds_across_processes(tmp_path: Path) -> None:
    """4 attacking processes and the victim's process on one SQLite file: at most 100 evaluated."""
    path = str(tmp_path / "shared.sqlite3")
    shared = SQLiteStore(path)
    service, phone, _ = enrolled(ServiceFactory(shared, "sync"))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_attacking_process, args=(path, seed, results)) for seed in range(4)
    ]
    workers.append(
        context.Process(target=_victim_process, args=(path, encode_secret(phone.key), results))
    )
    for worker in workers:
        worker.start()
    counts = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    evaluated = sum(count for count in counts if count >= 0)
    assert evaluated <= FAST.lockout_failures, f"{evaluated} guesses evaluated across processes"
    record = service.store.get("alice")
    assert record is not None
    assert len(record.failure_log) <= FAST.lockout_failures
    shared.close()


# --- the replay mark -----------------------------------------------------------------------


# Known secrets: old logged codes are sent again, and a random secret may give one of them the
# code of the next, unused step (about one run in 100,000).
@pytest.mark.usefixtures("known_secrets")
def test_resync_with_codes_from_the_logs_reopens_nothing(
    store: Store, make_service: MakeService
) -> None:
    """A pair accepted 3 hours earlier cannot move the mark back (0.1.0 reopened 4 codes).

    Every API request carries a code, so proxy logs hold long runs of consecutive codes.
    """
    policy = Policy(free_failures=20, recovery_iterations=1_000)
    service, phone, clock = enrolled(make_service, policy)
    logged: list[str] = []
    for _ in range(360):  # three hours of API requests, one per step
        clock.advance(30)
        code = phone.generate(clock.now)
        assert service.verify_request("alice", code)
        logged.append(code)
    before = store.get("alice")
    assert before is not None
    for start in (0, len(logged) - 6):  # 3 hours old, and only 2 minutes old
        verdict = service.resync("alice", logged[start], logged[start + 1])
        assert verdict.reason is Reason.REPLAYED
        for code in logged[start + 2 : start + 6]:
            assert not service.verify("alice", code)
    after = store.get("alice")
    assert after is not None
    assert (after.last_step, after.drift) == (before.last_step, before.drift)
    clock.advance(30)
    assert service.verify("alice", phone.generate(clock.now))  # the real phone still works


# Known secrets: the next step's code must not equal the marked one's (one in a million).
@pytest.mark.usefixtures("known_secrets")
def test_resync_pair_starting_at_the_mark_is_refused(make_service: MakeService) -> None:
    """A pair whose first step is the last accepted one is a replay (an off-by-one 0.1.0 had)."""
    service, phone, clock = enrolled(make_service)
    clock.advance(30)
    code = phone.generate(clock.now)
    assert service.verify("alice", code)
    verdict = service.resync("alice", code, phone.generate(clock.now + 30))
    assert verdict.reason is Reason.REPLAYED
    assert service.verify("alice", phone.generate(clock.now + 30))


def test_mark_survives_a_clock_step_back(make_service: MakeService) -> None:
    """A server clock that steps back an hour cannot make used codes good again."""
    service, phone, clock = enrolled(make_service)
    used = []
    for _ in range(4):
        clock.advance(30)
        used.append(phone.generate(clock.now))
        assert service.verify("alice", used[-1])
    clock.advance(-3600)
    for code in used:
        assert not service.verify("alice", code)
        assert not service.verify_request("alice", code)


def test_nearest_step_wins_in_the_service(make_service: MakeService) -> None:
    """With two steps sharing a code, the nearest is marked used, not a future one.

    With the RFC 4226 key, steps 153567 and 153569 both give 468457. 0.1.0 matched +2, learnt
    a drift of +2 and marked a future step used, so the next real code was REPLAYED.
    """
    clock = FakeClock(153500 * 30)
    service = make_service(issuer="X", policy=Policy(window=2), clock=clock)
    phone = TOTP(b"12345678901234567890")
    service.import_secret("alice", phone.key, allow_short_key=False)
    clock.set(153567 * 30 + 5)
    verdict = service.verify("alice", "468457")
    assert verdict.drift == 0
    clock.advance(30)
    assert service.verify("alice", phone.generate(clock.now))


# --- per-user parameters -------------------------------------------------------------------


# Known secrets: bob's next-step code must not equal his setup step's (one in 10**8).
@pytest.mark.usefixtures("known_secrets")
def test_policy_changes_apply_to_new_enrolments_only(make_service: MakeService) -> None:
    """Switching to 8 digits, SHA256 and 60 s keeps enrolled users working (0.1.0 broke them)."""
    old_service, phone, clock = enrolled(make_service)
    new_policy = Policy(digits=8, algorithm="SHA256", period=60, recovery_iterations=1_000)
    service = make_service(issuer="X", policy=new_policy, clock=clock)
    clock.advance(30)
    assert service.verify("alice", phone.generate(clock.now))
    service.enable("bob")
    uri = service.begin_setup("bob").uri
    assert "digits=8" in uri
    assert "algorithm=SHA256" in uri
    assert "period=60" in uri
    bob = TOTP.from_uri(uri)
    assert service.complete_setup("bob", bob.generate(clock.now))
    assert old_service.verify("bob", bob.generate(clock.now + 60))  # the old policy agrees


# --- encrypted stores ----------------------------------------------------------------------


def test_pre_reset_ciphertext_put_back_stays_dead(store: Store, make_service: MakeService) -> None:
    """Copying the old encrypted secret into the new record does not revive the lost phone."""
    from totpcore import AESGCMCipher

    cipher = AESGCMCipher(bytes(range(32)))
    clock = FakeClock(START)
    service = make_service(issuer="X", policy=FAST, clock=clock, cipher=cipher)
    service.enable("alice")
    lost = TOTP.from_secret(service.begin_setup("alice").secret)
    assert service.complete_setup("alice", lost.generate(clock.now))
    old = store.get("alice")
    assert old is not None
    service.reset("alice")
    new = store.get("alice")
    assert new is not None
    assert store.set_secret(
        "alice", generation=new.generation, expected=new.secret, secret=old.secret
    )
    with pytest.raises(CipherError):
        service.begin_setup("alice")
    assert service.status("alice") is Status.SETUP_PENDING


def rotation_while_running(make: MakeService, clock: FakeClock) -> None:
    """rotate_key re-encrypts every secret while another thread keeps logging users in.

    ``make`` builds each service (the setup one, the running one, the rotator, ...) on the
    same records.
    """
    from totpcore import AESGCMCipher

    old_key, new_key = bytes(range(32)), bytes(range(1, 33))
    service = make(issuer="X", policy=FAST, clock=clock, cipher=AESGCMCipher(old_key))
    phones = {}
    for name in ("alice", "bob", "carol"):
        service.enable(name)
        phones[name] = TOTP.from_secret(service.begin_setup(name).secret)
        assert service.complete_setup(name, phones[name].generate(clock.now))
    ring = AESGCMCipher(new_key, old_keys=[old_key])
    running = make(issuer="X", policy=FAST, clock=clock, cipher=ring)
    failures: list[str] = []
    lock = threading.Lock()

    def logins() -> None:
        for _ in range(20):
            with lock:
                clock.advance(30)
                for name, phone in phones.items():
                    if not running.verify(name, phone.generate(clock.now)):
                        failures.append(name)

    thread = threading.Thread(target=logins)
    thread.start()
    rotator = make(issuer="X", policy=FAST, clock=clock, cipher=ring)
    assert rotator.rotate_key() == 3
    thread.join()
    assert failures == []
    new_only = make(issuer="X", policy=FAST, clock=clock, cipher=AESGCMCipher(new_key))
    clock.advance(30)
    for name, phone in phones.items():
        assert new_only.verify(name, phone.generate(clock.now))
    with pytest.raises(CipherError):  # the sync shell raises here at construction
        make(issuer="X", clock=clock, cipher=AESGCMCipher(old_key)).status("alice")


def test_rotation_while_the_service_runs(make_service: MakeService) -> None:
    """rotate_key re-encrypts every secret while another thread keeps logging users in."""
    rotation_while_running(make_service, FakeClock(START))


def test_rotation_across_separate_sqlite_stores(tmp_path: Path) -> None:
    """The same with every sync service on its own SQLiteStore of one file, as separate servers.

    (On the async shell every service already has its own AsyncSQLiteStore of the file.)
    """
    path = tmp_path / "enc.sqlite3"
    opened: list[SQLiteStore] = []

    def make(**options: Any) -> TwoFactor:
        opened.append(SQLiteStore(path))
        return TwoFactor(opened[-1], **options)

    try:
        rotation_while_running(make, FakeClock(START))
    finally:
        for store in opened:
            store.close()


# --- smaller rules -------------------------------------------------------------------------


def test_over_long_code_is_malformed_before_any_work(
    store: Store, make_service: MakeService
) -> None:
    """A code string over 64 characters is MALFORMED without charging or hashing."""
    service, _, _ = enrolled(make_service)
    before = store.get("alice")
    assert service.verify("alice", "1" * 6 + " " * 59).reason is Reason.MALFORMED
    assert store.get("alice") == before
    assert service.verify("alice", "1" * 6 + " " * 58).reason is not Reason.MALFORMED


def test_drift_is_clamped_to_max_drift(store: Store, make_service: MakeService) -> None:
    """A phone that keeps losing time cannot walk the learnt drift past max_drift."""
    policy = Policy(max_drift=120, recovery_iterations=1_000)  # 4 steps
    service, phone, clock = enrolled(make_service, policy)
    lag = 0.0
    for _ in range(20):
        clock.advance(60)
        lag += 30  # the phone loses one more step each time
        service.verify("alice", phone.generate(clock.now - lag))
    record = store.get("alice")
    assert record is not None
    assert -4 <= record.drift <= 4


def test_secrets_come_from_the_system_csprng(make_service: MakeService) -> None:
    """Seeding ``random`` identically before two enrolments still gives different secrets."""
    service = make_service(issuer="X", policy=FAST, clock=FakeClock(START))
    secrets = []
    for name in ("alice", "bob"):
        random.seed(1234)
        service.enable(name)
        secrets.append(service.begin_setup(name).secret)
    assert secrets[0] != secrets[1]


def test_imported_user_is_active_and_short_keys_need_consent(make_service: MakeService) -> None:
    """import_secret makes an ACTIVE user; an 80-bit key needs allow_short_key=True."""
    from totpcore import InvalidSecretError, UserStateError

    clock = FakeClock(START)
    service = make_service(issuer="X", policy=FAST, clock=clock)
    short = bytes(range(10))
    with pytest.raises(InvalidSecretError, match="128"):
        service.import_secret("alice", short)
    assert service.status("alice") is Status.DISABLED
    assert service.import_secret("alice", short, allow_short_key=True) is Status.ACTIVE
    phone = TOTP(short, enforce_key_length=False)
    # Codes up to the import's step may have been used by the old system: they never work.
    assert service.verify("alice", phone.generate(clock.now)).reason is Reason.REPLAYED
    clock.advance(60)
    assert service.verify("alice", phone.generate(clock.now))
    with pytest.raises(UserStateError, match="already"):
        service.import_secret("alice", bytes(range(20)))
    secret = encode_secret(bytes(range(20)))
    assert service.import_secret("bob", secret, digits=8, period=60) is Status.ACTIVE
    bob = TOTP(bytes(range(20)), digits=8, period=60)
    clock.advance(60)
    assert service.verify("bob", bob.generate(clock.now))
