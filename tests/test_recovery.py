"""Recovery code hashing: the properties a stolen database and a timing attacker rely on."""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from totpcore import recovery


def test_each_set_gets_its_own_salt() -> None:
    """Hashing the same code twice gives different hashes: the salt is fresh per set.

    A fixed salt would let one precomputed table serve every stolen database.
    """
    code = recovery.generate_recovery_codes(1)
    first = recovery.hash_recovery_codes(code, iterations=10)
    second = recovery.hash_recovery_codes(code, iterations=10)
    assert first != second
    assert recovery.find_recovery_hash(code[0], first) == first[0]
    assert recovery.find_recovery_hash(code[0], second) == second[0]


def test_every_stored_hash_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """One constant-time comparison per stored hash, with no early exit on the match.

    Comparing with ``==`` (or stopping at the first match) would tell a timing attacker
    which of the stored codes an attempt matched.
    """
    codes = recovery.generate_recovery_codes(10)
    stored = recovery.hash_recovery_codes(codes, iterations=10)
    calls: list[Any] = []
    original = hmac.compare_digest

    def counting(left: Any, right: Any) -> bool:
        calls.append((left, right))
        return original(left, right)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert recovery.find_recovery_hash(codes[0], stored) == stored[0]
    assert len(calls) == len(stored)
    calls.clear()
    assert recovery.find_recovery_hash("0000-0000-0000", stored) is None
    assert len(calls) == len(stored)
