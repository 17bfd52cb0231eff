"""The service's key cache: sized by ``key_cache_size``, never serving a stale or foreign key.

A counting cipher makes the cache observable from outside: every miss decrypts the stored
secret once, every hit does not.
"""

from __future__ import annotations

import asyncio

import pytest

from totpcore import (
    DEFAULT_KEY_CACHE_SIZE,
    MAX_KEY_CACHE_SIZE,
    TOTP,
    AESGCMCipher,
    AsyncMemoryStore,
    AsyncTwoFactor,
    InvalidParameterError,
    MemoryStore,
    Reason,
    TwoFactor,
)

NOW = 1_700_000_000.0
USERS = ["ann", "bob", "cat"]


class CountingCipher:
    """An AES-GCM cipher that counts its decryptions (one per key-cache miss)."""

    def __init__(self) -> None:
        self._inner = AESGCMCipher(bytes(range(32)))
        self.decrypts = 0

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """Encrypt as the wrapped cipher does."""
        return self._inner.encrypt(plaintext, associated_data=associated_data)

    def decrypt(self, ciphertext: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt as the wrapped cipher does, and count it."""
        self.decrypts += 1
        return self._inner.decrypt(ciphertext, associated_data=associated_data)

    def fingerprints(self) -> tuple[str, ...]:
        """The wrapped cipher's fingerprints."""
        return self._inner.fingerprints()


class Clock:
    """A settable clock, moved one step per login so that every code is fresh."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        """The time set last."""
        return self.now


def enrolled(service: TwoFactor, clock: Clock, user_ids: list[str]) -> dict[str, TOTP]:
    """Enable and set up each user; return each one's phone."""
    phones = {}
    for user_id in user_ids:
        service.enable(user_id)
        phone = TOTP.from_secret(service.begin_setup(user_id).secret)
        clock.now += 30
        assert service.complete_setup(user_id, phone.generate(clock.now))
        phones[user_id] = phone
    return phones


def logins(
    service: TwoFactor, clock: Clock, phones: dict[str, TOTP], order: list[str]
) -> list[Reason]:
    """Log each user of ``order`` in with a fresh code, one step apart."""
    reasons = []
    for user_id in order:
        clock.now += 30
        reasons.append(service.verify(user_id, phones[user_id].generate(clock.now)).reason)
    return reasons


@pytest.mark.parametrize(("size", "expected_decrypts"), [(0, 12), (2, 12), (3, 3)])
def test_cache_size_decides_how_often_secrets_are_decrypted(
    size: int, expected_decrypts: int
) -> None:
    """Three users logging in round-robin: a cache of 3 decrypts each once, 2 or 0 every time.

    With two entries, least recently used out first, round-robin over three users always
    evicts the next one needed: the worst case, and the reason to size the cache to the
    active users.
    """
    cipher, clock = CountingCipher(), Clock()
    store = MemoryStore()
    phones = enrolled(TwoFactor(store, issuer="Cache", clock=clock, cipher=cipher), clock, USERS)
    # A second server on the same store starts with an empty cache of the size under test.
    service = TwoFactor(store, issuer="Cache", clock=clock, cipher=cipher, key_cache_size=size)
    cipher.decrypts = 0
    reasons = logins(service, clock, phones, USERS * 4)
    assert reasons == [Reason.ACCEPTED] * 12
    assert cipher.decrypts == expected_decrypts


# Known secrets: the old phone's code must not be one of the new secret's window by chance.
@pytest.mark.usefixtures("known_secrets")
def test_a_reset_never_reuses_the_cached_key() -> None:
    """After an admin reset and a new set-up, the old phone's codes fail: no stale cache entry.

    The cache is keyed by the stored ciphertext and the record's generation, so the new
    enrolment misses it even though the user id is the same.
    """
    clock = Clock()
    service = TwoFactor(MemoryStore(), issuer="Cache", clock=clock, key_cache_size=10)
    old_phone = enrolled(service, clock, ["ann"])["ann"]
    assert logins(service, clock, {"ann": old_phone}, ["ann"]) == [Reason.ACCEPTED]
    service.reset("ann")
    new_phone = enrolled(service, clock, ["ann"])["ann"]
    clock.now += 30
    assert service.verify("ann", old_phone.generate(clock.now)).reason is Reason.INVALID
    assert service.verify("ann", new_phone.generate(clock.now)).reason is Reason.ACCEPTED


@pytest.mark.parametrize("size", [-1, MAX_KEY_CACHE_SIZE + 1])
def test_out_of_range_sizes_are_refused(size: int) -> None:
    """A negative or absurd cache size is an InvalidParameterError naming the option."""
    with pytest.raises(InvalidParameterError, match="key_cache_size"):
        TwoFactor(MemoryStore(), issuer="Cache", key_cache_size=size)
    with pytest.raises(InvalidParameterError, match="key_cache_size"):
        AsyncTwoFactor(AsyncMemoryStore(), issuer="Cache", key_cache_size=size)


@pytest.mark.parametrize("size", [True, 10.0, "10", None])
def test_non_int_sizes_are_a_type_error(size: object) -> None:
    """A cache size that is not an int (a bool included) is a TypeError, in both shells."""
    with pytest.raises(TypeError, match="key_cache_size"):
        TwoFactor(MemoryStore(), issuer="Cache", key_cache_size=size)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key_cache_size"):
        AsyncTwoFactor(
            AsyncMemoryStore(),
            issuer="Cache",
            key_cache_size=size,  # type: ignore[arg-type]
        )


def test_async_shell_honours_the_size() -> None:
    """AsyncTwoFactor with key_cache_size=0 decrypts on every login, as the sync shell does."""
    cipher, clock = CountingCipher(), Clock()
    store = MemoryStore()
    sync = TwoFactor(store, issuer="Cache", clock=clock, cipher=cipher)
    phone = enrolled(sync, clock, ["ann"])["ann"]
    service = AsyncTwoFactor(
        AsyncMemoryStore(store), issuer="Cache", clock=clock, cipher=cipher, key_cache_size=0
    )

    async def three_logins() -> list[Reason]:
        reasons = []
        for _ in range(3):
            clock.now += 30
            reasons.append((await service.verify("ann", phone.generate(clock.now))).reason)
        return reasons

    cipher.decrypts = 0
    assert asyncio.run(three_logins()) == [Reason.ACCEPTED] * 3
    assert cipher.decrypts == 3


def test_default_cache_decrypts_each_user_once() -> None:
    """With the default size (4,096), repeated logins of a few users decrypt each secret once."""
    assert DEFAULT_KEY_CACHE_SIZE == 4096
    cipher, clock = CountingCipher(), Clock()
    store = MemoryStore()
    phones = enrolled(TwoFactor(store, issuer="Cache", clock=clock, cipher=cipher), clock, USERS)
    service = TwoFactor(store, issuer="Cache", clock=clock, cipher=cipher)
    cipher.decrypts = 0
    assert logins(service, clock, phones, USERS * 5) == [Reason.ACCEPTED] * 15
    assert cipher.decrypts == len(USERS)
