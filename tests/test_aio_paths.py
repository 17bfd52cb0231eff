"""AsyncTwoFactor's less travelled paths: failing stores, minimal stores and start-up races.

The service suite runs the async shell on the built-in stores, which all work and all offer
every optional capability. These tests give it what an application might instead: a store
whose backend fails in the middle of an operation (every failure must surface as StoreError,
never as an acceptance or a raw backend exception), a store written against the bare
:class:`~totpcore.AsyncStore` protocol (no bulk insert, no listing, no one-commit check), and
several servers starting against one store at the same moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest

from helpers import wrong_code
from totpcore import (
    TOTP,
    AESGCMCipher,
    AsyncMemoryStore,
    AsyncTwoFactor,
    CipherError,
    InvalidParameterError,
    MemoryStore,
    OneCommitCheck,
    Policy,
    Reason,
    Status,
    StoreError,
    TwoFactor,
    UserRecord,
    UserStateError,
)
from totpcore.stores import Attempt, Limits
from totpcore.testing import FakeClock

pytest.importorskip("cryptography")

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
#: Cheap recovery-code hashing: these tests are about the shell, not the hash.
FAST = Policy(recovery_iterations=1_000)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run one coroutine in a fresh event loop and return its result."""
    return asyncio.run(coroutine)


class BackendDownError(ConnectionError):
    """What a network store's client raises when its server goes away."""


class BareStore:
    """An :class:`~totpcore.AsyncStore` with only the required operations, over a MemoryStore.

    Written the way an application would write its own store: no ``insert_many``, no
    ``user_ids``, no ``charge_and_mark``. ``fail`` names operations that raise
    :class:`BackendDownError` (``"*"``: every one); ``raises`` replaces that exception.
    """

    def __init__(self, memory: MemoryStore | None = None) -> None:
        self.memory = MemoryStore() if memory is None else memory
        self.fail: set[str] = set()
        self.raises: Callable[[], Exception] = lambda: BackendDownError("connection reset")
        self.calls: list[str] = []

    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name)
        if name in self.fail or "*" in self.fail:
            raise self.raises()
        return getattr(self.memory, name)(*args, **kwargs)

    async def get(self, user_id: str) -> UserRecord | None:
        """As Store.get."""
        result: UserRecord | None = self._run("get", user_id)
        return result

    async def insert(self, record: UserRecord) -> bool:
        """As Store.insert."""
        return bool(self._run("insert", record))

    async def replace(self, record: UserRecord, *, generation: int) -> bool:
        """As Store.replace."""
        return bool(self._run("replace", record, generation=generation))

    async def delete(self, user_id: str) -> bool:
        """As Store.delete."""
        return bool(self._run("delete", user_id))

    async def begin_attempt(
        self, user_id: str, *, status: Status, now: float, limits: Limits
    ) -> Attempt:
        """As Store.begin_attempt."""
        attempt: Attempt = self._run(
            "begin_attempt", user_id, status=status, now=now, limits=limits
        )
        return attempt

    async def mark_used(
        self,
        user_id: str,
        *,
        generation: int,
        step: int,
        drift: int,
        allow_equal: bool,
        charged_at: float,
    ) -> bool:
        """As Store.mark_used."""
        return bool(
            self._run(
                "mark_used",
                user_id,
                generation=generation,
                step=step,
                drift=drift,
                allow_equal=allow_equal,
                charged_at=charged_at,
            )
        )

    async def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As Store.activate."""
        return bool(
            self._run(
                "activate",
                user_id,
                generation=generation,
                step=step,
                drift=drift,
                charged_at=charged_at,
            )
        )

    async def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As Store.resync."""
        return bool(
            self._run(
                "resync",
                user_id,
                generation=generation,
                step=step,
                drift=drift,
                charged_at=charged_at,
            )
        )

    async def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """As Store.set_recovery_hashes."""
        return bool(self._run("set_recovery_hashes", user_id, generation=generation, hashes=hashes))

    async def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """As Store.consume_recovery_hash."""
        return bool(
            self._run(
                "consume_recovery_hash",
                user_id,
                generation=generation,
                code_hash=code_hash,
                charged_at=charged_at,
            )
        )

    async def set_secret(
        self, user_id: str, *, generation: int, expected: bytes, secret: bytes
    ) -> bool:
        """As Store.set_secret."""
        return bool(
            self._run(
                "set_secret", user_id, generation=generation, expected=expected, secret=secret
            )
        )

    async def unlock(self, user_id: str) -> bool:
        """As Store.unlock."""
        return bool(self._run("unlock", user_id))

    async def get_meta(self, name: str) -> str | None:
        """As Store.get_meta."""
        value: str | None = self._run("get_meta", name)
        return value

    async def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """As Store.set_meta."""
        return bool(self._run("set_meta", name, value, expected=expected))


class ListingBareStore(BareStore):
    """A :class:`BareStore` that can also list its users (what ``rotate_key`` needs)."""

    async def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """As UserListing.user_ids."""
        ids: list[str] = self._run("user_ids", after=after, limit=limit)
        return ids


class YieldingStore(AsyncMemoryStore):
    """An AsyncMemoryStore whose settings reads suspend, as a network round trip would.

    Every ``get_meta`` yields to the event loop after reading, so services starting at the
    same moment interleave between a read and the write that depends on it.
    """

    async def get_meta(self, name: str) -> str | None:
        """Read, then let the other tasks run before answering."""
        value = await super().get_meta(name)
        await asyncio.sleep(0)
        return value


async def enrol(service: AsyncTwoFactor, clock: FakeClock, user: str = "alice") -> TOTP:
    """Enable and confirm ``user``; return their phone's TOTP."""
    await service.enable(user)
    phone = TOTP.from_uri((await service.begin_setup(user)).uri)
    assert await service.complete_setup(user, phone.generate(clock()))
    clock.advance(30)
    return phone


# --- a minimal store ----------------------------------------------------------------------


def test_bare_store_is_not_a_one_commit_store() -> None:
    """The bare store really lacks the optional capabilities the tests below rely on."""
    store = BareStore()
    assert not isinstance(store, OneCommitCheck)
    assert not hasattr(store, "insert_many")
    assert not hasattr(store, "user_ids")


def test_lifecycle_on_a_store_with_only_the_required_operations() -> None:
    """Enable (one insert per user), setup, verify (charge then mark) and replay on a bare store.

    Without ``charge_and_mark`` the login is two store calls: ``begin_attempt`` then
    ``mark_used``; the verdicts are the same as on the built-in stores.
    """

    async def scenario() -> None:
        clock = FakeClock()
        store = BareStore()
        service = AsyncTwoFactor(store, issuer="Example", clock=clock, policy=FAST)
        statuses = await service.enable_many(["alice", "bob", "alice"])
        assert statuses == {"alice": Status.SETUP_PENDING, "bob": Status.SETUP_PENDING}
        assert "insert_many" not in store.calls
        assert store.calls.count("insert") == 2
        phone = await enrol(service, clock)
        # Enabling again reports the state the store holds, without a new secret.
        assert await service.enable_many(["alice", "carol"]) == {
            "alice": Status.ACTIVE,
            "carol": Status.SETUP_PENDING,
        }
        store.calls.clear()
        code = phone.generate(clock())
        verdict = await service.verify("alice", code)
        assert verdict.reason is Reason.ACCEPTED
        assert store.calls[-2:] == ["begin_attempt", "mark_used"]
        assert (await service.verify("alice", code)).reason is Reason.REPLAYED
        clock.advance(30)
        wrong = wrong_code(phone, clock())
        assert (await service.verify("alice", wrong)).reason is Reason.INVALID

    run(scenario())


def test_verify_request_repeats_on_a_bare_store() -> None:
    """verify_request accepts a repeat of the last step on the two-call path; verify does not."""

    async def scenario() -> None:
        clock = FakeClock()
        service = AsyncTwoFactor(BareStore(), issuer="Example", clock=clock, policy=FAST)
        phone = await enrol(service, clock)
        code = phone.generate(clock())
        assert await service.verify_request("alice", code)
        assert await service.verify_request("alice", code)
        assert (await service.verify("alice", code)).reason is Reason.REPLAYED

    run(scenario())


def test_rotate_key_needs_a_listing_store() -> None:
    """rotate_key on a store that cannot list its users is a TypeError, and changes nothing."""

    async def scenario() -> None:
        clock = FakeClock()
        store = BareStore()
        service = AsyncTwoFactor(
            store, issuer="Example", clock=clock, cipher=AESGCMCipher(KEY_A), policy=FAST
        )
        await service.enable("alice")
        before = store.memory.get("alice")
        with pytest.raises(TypeError, match="list its users"):
            await service.rotate_key()
        assert store.memory.get("alice") == before

    run(scenario())


def test_rotate_key_without_a_cipher_is_refused() -> None:
    """rotate_key on a service without a cipher raises CipherError before touching the store."""

    async def scenario() -> None:
        store = ListingBareStore()
        service = AsyncTwoFactor(store, issuer="Example", policy=FAST)
        await service.enable("alice")
        store.calls.clear()
        with pytest.raises(CipherError):
            await service.rotate_key()
        assert "user_ids" not in store.calls
        assert "set_secret" not in store.calls

    run(scenario())


def test_rotate_key_re_encrypts_every_page_and_old_ciphertexts_stop_working() -> None:
    """Rotation on a listing store rewrites every user's secret under the new key.

    Afterwards a service holding only the old key is refused at start-up (the store remembers
    the new key), while a service with only the new key still accepts the users' codes.
    """

    async def scenario() -> None:
        clock = FakeClock()
        memory = MemoryStore()
        old = AsyncTwoFactor(
            ListingBareStore(memory),
            issuer="Example",
            clock=clock,
            cipher=AESGCMCipher(KEY_A),
            policy=FAST,
        )
        phone = await enrol(old, clock)
        await old.enable_many([f"user{i:02d}" for i in range(5)])
        rotating = AsyncTwoFactor(
            ListingBareStore(memory),
            issuer="Example",
            clock=clock,
            cipher=AESGCMCipher(KEY_B, old_keys=[KEY_A]),
            policy=FAST,
        )
        assert await rotating.rotate_key() == 6
        # Rotating is repeatable: a second run rewrites every secret again, under the same key.
        assert await rotating.rotate_key() == 6
        stale = AsyncTwoFactor(
            ListingBareStore(memory), issuer="Example", clock=clock, cipher=AESGCMCipher(KEY_A)
        )
        with pytest.raises(CipherError):
            await stale.status("alice")
        fresh = AsyncTwoFactor(
            ListingBareStore(memory),
            issuer="Example",
            clock=clock,
            cipher=AESGCMCipher(KEY_B),
            policy=FAST,
        )
        assert await fresh.verify("alice", phone.generate(clock()))

    run(scenario())


# --- store failures -----------------------------------------------------------------------


def test_start_up_failure_is_a_store_error_and_is_retried() -> None:
    """A store that fails while the service reads its settings gives StoreError("start-up").

    The service is not marked ready, so the next call tries again and succeeds once the
    backend is back.
    """

    async def scenario() -> None:
        store = BareStore()
        store.fail = {"get_meta"}
        service = AsyncTwoFactor(store, issuer="Example", policy=FAST)
        with pytest.raises(StoreError, match="start-up") as caught:
            await service.status("alice")
        assert isinstance(caught.value.__cause__, BackendDownError)
        assert "connection reset" not in str(caught.value)  # backend text is never repeated
        store.fail = set()
        assert await service.status("alice") is Status.DISABLED

    run(scenario())


def test_each_admin_operation_turns_a_backend_failure_into_store_error() -> None:
    """Every operation names itself in the StoreError when the backend fails under it."""

    async def scenario() -> None:
        clock = FakeClock()
        store = ListingBareStore()
        service = AsyncTwoFactor(
            store, issuer="Example", clock=clock, cipher=AESGCMCipher(KEY_A), policy=FAST
        )
        await enrol(service, clock)
        await service.enable("bob")
        store.fail = {"*"}
        operations: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "enable": lambda: service.enable("carol"),
            "enable_many": lambda: service.enable_many(["carol", "dave"]),
            "import_secret": lambda: service.import_secret("erin", bytes(20)),
            "status": lambda: service.status("alice"),
            "reset": lambda: service.reset("alice"),
            "disable": lambda: service.disable("alice"),
            "unlock": lambda: service.unlock("alice"),
            "rotate_key": service.rotate_key,
            "begin_setup": lambda: service.begin_setup("bob"),
            "complete_setup": lambda: service.complete_setup("bob", "123456"),
            "verify": lambda: service.verify("alice", "123456"),
            "resync": lambda: service.resync("alice", "123456", "654321"),
            "new_recovery_codes": lambda: service.new_recovery_codes("alice"),
            "use_recovery_code": lambda: service.use_recovery_code("alice", "abcd-efgh-jkmn"),
        }
        for action, operation in operations.items():
            with pytest.raises(StoreError) as caught:
                await operation()
            assert isinstance(caught.value.__cause__, BackendDownError), action
            assert "connection reset" not in str(caught.value), action
        store.fail = set()
        # Nothing above changed anything: alice is still active, bob still pending.
        assert await service.status("alice") is Status.ACTIVE
        assert await service.status("bob") is Status.SETUP_PENDING
        assert await service.status("carol") is Status.DISABLED

    run(scenario())


@pytest.mark.parametrize("failing", ["begin_attempt", "mark_used"])
def test_login_failure_on_the_two_call_path_is_never_an_acceptance(failing: str) -> None:
    """A backend failure during the charge or the mark of a login raises StoreError("verify").

    A correct code whose mark could not be written is not accepted; once the backend is back
    the same code still works (it was never marked used).
    """

    async def scenario() -> None:
        clock = FakeClock()
        store = BareStore()
        service = AsyncTwoFactor(store, issuer="Example", clock=clock, policy=FAST)
        phone = await enrol(service, clock)
        code = phone.generate(clock())
        store.fail = {failing}
        for check in (service.verify, service.verify_request):
            with pytest.raises(StoreError, match="verify"):
                await check("alice", code)
        store.fail = set()
        assert await service.verify("alice", code)

    run(scenario())


def test_store_raising_a_totpcore_error_is_passed_through_unchanged() -> None:
    """A store that itself raises StoreError (say, its own timeout) is not wrapped again."""

    async def scenario() -> None:
        clock = FakeClock()
        store = BareStore()
        service = AsyncTwoFactor(store, issuer="Example", clock=clock, policy=FAST)
        phone = await enrol(service, clock)
        own = StoreError("the store's own words")
        store.raises = lambda: own
        for failing in ("begin_attempt", "mark_used"):
            store.fail = {failing}
            with pytest.raises(StoreError) as caught:
                await service.verify("alice", phone.generate(clock()))
            assert caught.value is own

    run(scenario())


def test_one_commit_login_failure_is_a_store_error() -> None:
    """On a one-commit store, a failure of the whole-check transaction raises StoreError.

    A store's own TotpcoreError goes through as it is; any other exception is wrapped and
    names the action, and the code is still unused afterwards.
    """

    class FailingOneCommit(AsyncMemoryStore):
        """An AsyncMemoryStore whose one-commit login check fails on demand."""

        error: Exception | None = None
        checks = 0

        async def charge_and_mark(
            self,
            user_id: str,
            *,
            status: Status,
            now: float,
            limits: Limits,
            evaluate: Callable[[Attempt], object],
        ) -> tuple[object, bool]:
            self.checks += 1
            if self.error is not None:
                raise self.error
            return await super().charge_and_mark(
                user_id, status=status, now=now, limits=limits, evaluate=evaluate
            )

    async def scenario() -> None:
        clock = FakeClock()
        store = FailingOneCommit()
        service = AsyncTwoFactor(store, issuer="Example", clock=clock, policy=FAST)
        phone = await enrol(service, clock)
        code = phone.generate(clock())
        store.error = BackendDownError("gone")
        with pytest.raises(StoreError, match="verify") as caught:
            await service.verify("alice", code)
        assert isinstance(caught.value.__cause__, BackendDownError)
        own = StoreError("own")
        store.error = own
        with pytest.raises(StoreError) as passed:
            await service.verify_request("alice", code)
        assert passed.value is own
        store.error = None
        assert await service.verify("alice", code)
        assert store.checks == 3  # every login went through the one-commit check

    run(scenario())


def test_malformed_code_still_reads_the_users_state() -> None:
    """A malformed code is answered from the user's state, and a store failure there is raised.

    Malformed input is not charged, but the answer (MALFORMED, SETUP_REQUIRED, NOT_ENABLED)
    depends on the record, so the read happens and its failure is a StoreError.
    """

    async def scenario() -> None:
        clock = FakeClock()
        store = BareStore()
        service = AsyncTwoFactor(store, issuer="Example", clock=clock, policy=FAST)
        await enrol(service, clock)
        await service.enable("bob")
        store.calls.clear()
        assert (await service.verify("alice", "12")).reason is Reason.MALFORMED
        assert (await service.verify("bob", "12")).reason is Reason.SETUP_REQUIRED
        assert (await service.verify("nobody", "12")).reason is Reason.NOT_ENABLED
        assert (await service.resync("alice", "12", "x")).reason is Reason.MALFORMED
        assert (await service.use_recovery_code("alice", "!")).reason is Reason.MALFORMED
        store.fail = {"get"}
        calls: list[Callable[[], Coroutine[Any, Any, Any]]] = [
            lambda: service.verify("alice", "12"),
            lambda: service.resync("alice", "12", "x"),
            lambda: service.use_recovery_code("alice", "!"),
        ]
        for call in calls:
            with pytest.raises(StoreError):
                await call()
        assert "begin_attempt" not in store.calls

    run(scenario())


# --- bad arguments ------------------------------------------------------------------------


def test_async_shell_checks_its_arguments() -> None:
    """Wrong kinds of store, policy, clock or cipher are refused at construction."""
    with pytest.raises(TypeError, match="AsyncStore"):
        AsyncTwoFactor(MemoryStore(), issuer="Example")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AsyncTwoFactor(AsyncMemoryStore(), issuer="Example", policy="strict")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AsyncTwoFactor(AsyncMemoryStore(), issuer="Example", clock=12.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AsyncTwoFactor(AsyncMemoryStore(), issuer="Example", cipher=b"key")  # type: ignore[arg-type]
    service = AsyncTwoFactor(AsyncMemoryStore(), issuer="Example")
    assert "AsyncTwoFactor(" in repr(service)
    assert "'Example'" in repr(service)


def test_bad_user_ids_are_refused_before_the_store_is_read() -> None:
    """Invalid user ids raise InvalidParameterError (TypeError if not str) before any read."""

    async def scenario() -> None:
        store = BareStore()
        service = AsyncTwoFactor(store, issuer="Example", policy=FAST)
        await service.status("warm-up")
        store.calls.clear()
        calls: list[Callable[[], Coroutine[Any, Any, Any]]] = [
            lambda: service.enable(""),
            lambda: service.status("a\x00b"),
            lambda: service.disable(""),
            lambda: service.unlock(""),
            lambda: service.enable_many(["ok", ""]),
            lambda: service.reset(""),
            lambda: service.begin_setup(""),
            lambda: service.verify("", "123456"),
        ]
        for call in calls:
            with pytest.raises(InvalidParameterError, match="user_id"):
                await call()
        with pytest.raises(TypeError, match="user_id must be a str"):
            await service.status(42)  # type: ignore[arg-type]
        # Only store-wide settings may have been read; no user's record was touched.
        assert set(store.calls) <= {"get_meta", "set_meta"}

    run(scenario())


def test_state_errors_from_the_async_shell() -> None:
    """Lifecycle actions on users in the wrong state raise UserStateError and change nothing."""

    async def scenario() -> None:
        clock = FakeClock()
        service = AsyncTwoFactor(AsyncMemoryStore(), issuer="Example", clock=clock, policy=FAST)
        await service.enable("bob")
        with pytest.raises(UserStateError):
            await service.reset("bob")  # pending, not active
        with pytest.raises(UserStateError):
            await service.new_recovery_codes("bob")
        with pytest.raises(UserStateError):
            await service.unlock("nobody")
        with pytest.raises(UserStateError):
            await service.begin_setup("nobody")
        await enrol(service, clock, "alice")
        with pytest.raises(UserStateError):
            await service.import_secret("alice", bytes(20))
        assert await service.status("bob") is Status.SETUP_PENDING
        assert await service.status("alice") is Status.ACTIVE

    run(scenario())


# --- servers starting together -------------------------------------------------------------


def test_concurrent_first_calls_agree_on_the_cipher_setting() -> None:
    """Two servers that start at once against a new store: the first to record its setting wins.

    One server has a cipher, the other none. Both read "no setting yet"; only one write
    succeeds, and the loser adopts what the winner recorded: if the store is now encrypted,
    the server without a key is refused (CipherError) instead of writing plaintext secrets
    next to encrypted ones.
    """

    async def scenario() -> tuple[Any, Any]:
        store = YieldingStore()
        encrypted = AsyncTwoFactor(store, issuer="Example", cipher=AESGCMCipher(KEY_A), policy=FAST)
        plain = AsyncTwoFactor(store, issuer="Example", policy=FAST)
        results = await asyncio.gather(
            encrypted.enable("alice"), plain.enable("bob"), return_exceptions=True
        )
        return results[0], results[1]

    first, second = run(scenario())
    outcomes = {type(first), type(second)}
    # Exactly one of the two is refused, whichever lost the race.
    assert outcomes == {Status, CipherError}


def test_concurrent_servers_record_the_strictest_lockout() -> None:
    """Servers with different lockouts starting at once leave the strictest one in the store.

    A server whose proposal loses the compare-and-set re-reads the setting and proposes again
    only if its own is still stricter, so the store ends with the minimum.
    """

    async def scenario() -> str | None:
        store = YieldingStore()
        services = [
            AsyncTwoFactor(store, issuer="Example", policy=Policy(lockout_failures=n))
            for n in (40, 20, 30, 25)
        ]
        await asyncio.gather(*(service.status("x") for service in services))
        return await store.get_meta("lockout_failures")

    assert run(scenario()) == "20"


def test_enable_many_on_a_large_batch_across_pages() -> None:
    """More than one batch of users: every one is enabled, with insert_many used per batch."""

    class CountingStore(AsyncMemoryStore):
        batches: list[int]

        async def insert_many(self, records: Sequence[UserRecord]) -> list[bool]:
            self.batches.append(len(records))
            return await super().insert_many(records)

    async def scenario() -> None:
        store = CountingStore()
        store.batches = []
        service = AsyncTwoFactor(store, issuer="Example", policy=FAST)
        ids = [f"u{i:05d}" for i in range(2_001)]
        statuses = await service.enable_many(ids)
        assert len(statuses) == 2_001
        assert set(statuses.values()) == {Status.SETUP_PENDING}
        assert store.batches == [1000, 1000, 1]

    run(scenario())


# --- start-up on any first call -----------------------------------------------------------


@pytest.mark.parametrize("first_call", ["disable", "unlock", "resync", "use_recovery_code"])
def test_any_first_call_checks_the_key_before_acting(first_call: str) -> None:
    """Whatever a fresh service's first call is, a missing key is refused before it acts.

    A constructor cannot await, so the async shell checks its cipher against the store on the
    first call: ``disable`` must not delete, nor ``unlock`` unlock, without the key.
    """

    async def scenario() -> None:
        clock = FakeClock()
        memory = MemoryStore()
        keyed = AsyncTwoFactor(
            AsyncMemoryStore(memory),
            issuer="Example",
            clock=clock,
            cipher=AESGCMCipher(KEY_A),
            policy=FAST,
        )
        await enrol(keyed, clock)
        before = memory.get("alice")
        keyless = AsyncTwoFactor(AsyncMemoryStore(memory), issuer="Example", clock=clock)
        calls: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "disable": lambda: keyless.disable("alice"),
            "unlock": lambda: keyless.unlock("alice"),
            "resync": lambda: keyless.resync("alice", "123456", "654321"),
            "use_recovery_code": lambda: keyless.use_recovery_code("alice", "abcd-efgh-jkmn"),
        }
        with pytest.raises(CipherError, match="encrypted"):
            await calls[first_call]()
        assert memory.get("alice") == before

    run(scenario())


# --- key rotation against concurrent changes ----------------------------------------------


def test_rotation_rewrites_legacy_stores_and_clears_their_flag() -> None:
    """On a store that may hold 0.1.0 ciphertexts, rotation records that all were rewritten."""

    async def scenario() -> None:
        clock = FakeClock()
        memory = MemoryStore()
        # What the SQLite migration records for a file 0.1.0 had written users to.
        assert memory.set_meta("legacy_ciphertexts", "possible", expected=None)
        service = AsyncTwoFactor(
            ListingBareStore(memory),
            issuer="Example",
            clock=clock,
            cipher=AESGCMCipher(KEY_A),
            policy=FAST,
        )
        phone = await enrol(service, clock)
        assert await service.rotate_key() == 1
        assert memory.get_meta("legacy_ciphertexts") == "rewritten"
        assert await service.verify("alice", phone.generate(clock()))

    run(scenario())


def test_rotation_rereads_a_record_changed_under_it_and_skips_deleted_users() -> None:
    """A reset between rotation's read and write makes it re-read; a deleted user is skipped.

    The concurrent reset (by a server still on the old key) wins: the user keeps the new,
    pending secret, re-encrypted under the new key, and nobody's secret is lost or left
    under the old key.
    """

    class Racing(ListingBareStore):
        """Another server resets alice just before her first rewrite; bob goes away."""

        def __init__(self, memory: MemoryStore, other: TwoFactor) -> None:
            super().__init__(memory)
            self.other = other
            self.raced = False

        async def user_ids(
            self, *, after: str | None = None, limit: int | None = None
        ) -> list[str]:
            page = await super().user_ids(after=after, limit=limit)
            if "bob" in page:
                self.memory.delete("bob")  # disabled after the listing was read
            return page

        async def set_secret(
            self, user_id: str, *, generation: int, expected: bytes, secret: bytes
        ) -> bool:
            if user_id == "alice" and not self.raced:
                self.raced = True
                self.other.reset("alice")
            return await super().set_secret(
                user_id, generation=generation, expected=expected, secret=secret
            )

    async def scenario() -> None:
        clock = FakeClock()
        memory = MemoryStore()
        first = AsyncTwoFactor(
            AsyncMemoryStore(memory),
            issuer="Example",
            clock=clock,
            cipher=AESGCMCipher(KEY_A),
            policy=FAST,
        )
        await enrol(first, clock)
        await first.enable_many(["bob", "carol"])
        old_server = TwoFactor(memory, issuer="Example", clock=clock, cipher=AESGCMCipher(KEY_A))
        store = Racing(memory, old_server)
        rotating = AsyncTwoFactor(
            store,
            issuer="Example",
            clock=clock,
            cipher=AESGCMCipher(KEY_B, old_keys=[KEY_A]),
            policy=FAST,
        )
        assert await rotating.rotate_key() == 2  # alice (after one retry) and carol
        assert store.raced
        assert store.calls.count("set_secret") == 3
        assert memory.get("bob") is None
        new_only = AsyncTwoFactor(
            AsyncMemoryStore(memory),
            issuer="Example",
            clock=clock,
            cipher=AESGCMCipher(KEY_B),
            policy=FAST,
        )
        # alice is pending again with the reset's secret, readable under the new key alone.
        assert await new_only.status("alice") is Status.SETUP_PENDING
        phone = TOTP.from_uri((await new_only.begin_setup("alice")).uri)
        assert await new_only.complete_setup("alice", phone.generate(clock()))
        assert (await new_only.begin_setup("carol")).secret

    run(scenario())
