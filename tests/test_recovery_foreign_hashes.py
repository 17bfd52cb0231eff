"""Recovery code hashes a store holds that totpcore did not write: ignored, never matched.

A store migrated from another system, or edited by hand, may hold entries of another scheme
or broken ones. They must never match a code (nor raise): only the user's real codes work.
"""

from __future__ import annotations

import pytest

from totpcore import TOTP, MemoryStore, Policy, Reason, TwoFactor
from totpcore.testing import FakeClock

FOREIGN = (
    "bcrypt$2b$12$abcdefghijklmnopqrstuv",  # another scheme
    "pbkdf2_sha256$many$c2FsdA$ZGlnZXN0",  # iterations not a number
    "pbkdf2_sha256$1000$c2FsdA",  # a part missing
    "pbkdf2_sha256$1000$A$ZGlnZXN0",  # salt is not base64 (one character)
    "pbkdf2_sha256$1000$c2FsdA$A",  # digest is not base64
    "plain-text-code",
)


@pytest.fixture
def service() -> TwoFactor:
    """A service on a memory store, with alice active."""
    clock = FakeClock()
    service = TwoFactor(
        MemoryStore(), issuer="Example", clock=clock, policy=Policy(recovery_iterations=1_000)
    )
    service.enable("alice")
    phone = TOTP.from_uri(service.begin_setup("alice").uri)
    assert service.complete_setup("alice", phone.generate(clock()))
    return service


def test_foreign_entries_never_match_and_real_codes_still_work(service: TwoFactor) -> None:
    """Among foreign entries, a wrong code is INVALID and each real code works once."""
    codes = service.new_recovery_codes("alice")
    store = service.store
    record = store.get("alice")
    assert record is not None
    mixed = FOREIGN + record.recovery_hashes
    assert store.set_recovery_hashes("alice", generation=record.generation, hashes=mixed)
    assert service.use_recovery_code("alice", "0000-0000-0000").reason is Reason.INVALID
    assert service.use_recovery_code("alice", "plain-text-code").reason is Reason.MALFORMED
    assert service.use_recovery_code("alice", codes[0]).reason is Reason.ACCEPTED
    # Used up: its hash is gone, so it is now one of no unused codes.
    assert service.use_recovery_code("alice", codes[0]).reason is Reason.INVALID
    assert service.use_recovery_code("alice", codes[1]).reason is Reason.ACCEPTED
    after = store.get("alice")
    assert after is not None
    assert set(FOREIGN) <= set(after.recovery_hashes)  # left alone, not "used"


def test_a_store_of_only_foreign_entries_accepts_no_code(service: TwoFactor) -> None:
    """With nothing but foreign entries stored, every well-formed code is INVALID."""
    store = service.store
    record = store.get("alice")
    assert record is not None
    assert store.set_recovery_hashes("alice", generation=record.generation, hashes=FOREIGN)
    for code in ("0000-0000-0000", "abcd-efgh-jkmn", "zzzz-zzzz-zzzz"):
        assert service.use_recovery_code("alice", code).reason is Reason.INVALID
