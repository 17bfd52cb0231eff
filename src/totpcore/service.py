"""TwoFactor: the two-factor service for threaded (sync) applications.

The flow it serves: an admin enables a user (SETUP_PENDING); at next login the user scans the
secret and confirms a code (ACTIVE); every later login checks a code with replay protection,
throttling and drift; an admin can reset a lost phone or disable the factor; recovery codes let
a user in without the phone.

This class is a shell: every decision is made by the sans-IO core (:mod:`totpcore._core`),
and each method here only carries the core's plans to the store and back, turning backend
failures into :class:`~totpcore.StoreError` through one mapping (:mod:`totpcore._shell`).
:class:`~totpcore.AsyncTwoFactor` is the same shell with ``await``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from totpcore._checks import MAX_USER_ID_LENGTH
from totpcore._core import (
    CIPHER_SETTING,
    DEFAULT_KEY_CACHE_SIZE,
    LEGACY_SETTING,
    LOCKOUT_SETTING,
    MAX_CODE_LENGTH,
    Core,
)
from totpcore._shell import is_async_store, store_errors, store_failure
from totpcore.cipher import SecretCipher
from totpcore.errors import TotpcoreError
from totpcore.policy import MAX_LOCKOUT_FAILURES, Policy
from totpcore.provisioning import Provisioning
from totpcore.stores.protocol import (
    BulkInsert,
    OneCommitCheck,
    Status,
    Store,
    UserListing,
    UserRecord,
)
from totpcore.verdict import Verdict

__all__ = [
    "MAX_CODE_LENGTH",
    "MAX_USER_ID_LENGTH",
    "Provisioning",
    "TwoFactor",
]

_ACTIVE = Status.ACTIVE
# Users enabled per transaction by enable_many.
_BATCH = 1000
_monotonic = time.monotonic
_LIST_PAGE = 1000


class TwoFactor:
    """The two-factor service for one application.

    Args:
        store: Where records live; any :class:`~totpcore.Store` (not an async one: use
            :class:`~totpcore.AsyncTwoFactor` for those).
        issuer: The service name authenticator apps display (no ``:``).
        policy: Windows, throttling, drift and the parameters of new enrolments.
        clock: Returns the current Unix time in seconds; inject one in tests.
        cipher: Encrypts secrets before they reach the store; ``None`` stores them as is.
        key_cache_size: How many users' keys to keep decrypted, with their HMAC state
            precomputed (least recently used out first); 0 keeps none. Each entry takes about
            0.8 KB. A miss costs about half a verify (more with a cipher), so size it to the
            users active at once: see the performance guide.

    Raises:
        TypeError: ``store``, ``policy``, ``clock``, ``cipher`` or ``key_cache_size`` is of
            the wrong kind.
        InvalidParameterError: ``key_cache_size`` is negative or over
            :data:`~totpcore.MAX_KEY_CACHE_SIZE`.
        InvalidURIError: ``issuer`` cannot appear in an otpauth URI.
        CipherError: the store's secrets are encrypted and ``cipher`` is missing or has none of
            the store's keys, or ``cipher`` is given for a store of unencrypted secrets.
        StoreError: the store failed while its settings were read.

    Only :class:`~totpcore.TotpcoreError` subclasses escape its methods (and ``TypeError`` for
    arguments of the wrong type); store failures become :class:`~totpcore.StoreError` and are
    never an acceptance.
    """

    def __init__(
        self,
        store: Store,
        *,
        issuer: str,
        policy: Policy = Policy(),  # noqa: B008 - Policy is frozen, sharing it is safe
        clock: Callable[[], float] = time.time,
        cipher: SecretCipher | None = None,
        key_cache_size: int = DEFAULT_KEY_CACHE_SIZE,
    ) -> None:
        if is_async_store(store):
            raise TypeError("store is an AsyncStore: use AsyncTwoFactor with it")
        if not isinstance(store, Store):
            raise TypeError("store must implement the totpcore Store protocol")
        self._core = core = Core(
            issuer=issuer,
            policy=policy,
            clock=clock,
            cipher=cipher,
            key_cache_size=key_cache_size,
        )
        self.store = store
        # A store that can run the whole check in one transaction (one durable commit).
        self._one_commit = isinstance(store, OneCommitCheck)
        self.issuer = issuer
        self.policy = policy
        with store_errors("start-up"):
            wanted = core.keys.setting()
            known = store.get_meta(CIPHER_SETTING)
            if known is None and not store.set_meta(CIPHER_SETTING, wanted, expected=None):
                known = store.get_meta(CIPHER_SETTING)  # another server recorded it first
            legacy = store.get_meta(LEGACY_SETTING)
        core.keys.accept_setting(wanted if known is None else known, legacy)
        self._refresh(fresh=False)

    def __repr__(self) -> str:
        return f"TwoFactor(store={self.store!r}, issuer={self.issuer!r}, policy={self.policy!r})"

    # --- admin ---------------------------------------------------------------------------

    def enable(self, user_id: str) -> Status:
        """Turn two-factor on: the user must set up at next login.

        A user who is already pending or active is left as is. Returns the resulting status.
        """
        core = self._core
        core.check_user_id(user_id)
        with store_errors("enable"):
            record = self.store.get(user_id)
            if record is None:
                self.store.insert(core.new_record(user_id))
                record = self.store.get(user_id)
        return core.status_of(record)

    def enable_many(self, user_ids: Iterable[str]) -> dict[str, Status]:
        """Enable several users; returns each one's resulting status.

        Every id is checked before any user is enabled, so a bad id changes nothing. Users are
        then enabled in batches of 1,000: on a store that offers bulk inserts
        (:class:`~totpcore.BulkInsert`) each batch is one transaction. If the store fails
        midway, the batches before the failure stay enabled and the failing one is not;
        enabling again is harmless (users already enabled are left as they are).
        """
        core = self._core
        ids = list(dict.fromkeys(user_ids))  # each user once, in the order given
        for user_id in ids:
            core.check_user_id(user_id)
        statuses: dict[str, Status] = {}
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            records = [core.new_record(user_id) for user_id in batch]
            with store_errors("enable_many"):
                if isinstance(self.store, BulkInsert):
                    inserted = self.store.insert_many(records)
                else:
                    inserted = [self.store.insert(record) for record in records]
                for user_id, fresh in zip(batch, inserted, strict=True):
                    if fresh:
                        statuses[user_id] = Status.SETUP_PENDING
                    else:
                        statuses[user_id] = core.status_of(self.store.get(user_id))
        return statuses

    def import_secret(
        self,
        user_id: str,
        key: bytes | str,
        *,
        algorithm: str = "SHA1",
        digits: int = 6,
        period: int = 30,
        allow_short_key: bool = False,
    ) -> Status:
        """Make an ACTIVE user from a secret their phone already has (migrations).

        Args:
            user_id: A user with no second factor yet.
            key: The key as bytes, or as base32 text (as in otpauth URIs).
            algorithm: The phone's hash algorithm.
            digits: The phone's code length.
            period: The phone's time step in seconds.
            allow_short_key: Accept keys under 128 bits. Legacy 80-bit secrets are in
                circulation, but each bit less halves the work of an offline search for the key
                from observed codes: prefer re-enrolment.

        Returns:
            ``Status.ACTIVE``.

        Raises:
            UserStateError: the user already has a second factor (disable it first).
            InvalidSecretError: the key is unusable, or short without ``allow_short_key``.
            InvalidParameterError: ``algorithm``, ``digits`` or ``period`` is out of range.
        """
        record = self._core.imported_record(
            user_id,
            key,
            algorithm=algorithm,
            digits=digits,
            period=period,
            allow_short_key=allow_short_key,
        )
        with store_errors("import_secret"):
            inserted = self.store.insert(record)
        self._core.inserted(inserted)
        return record.status

    def status(self, user_id: str) -> Status:
        """Return DISABLED, SETUP_PENDING or ACTIVE."""
        self._core.check_user_id(user_id)
        with store_errors("status"):
            record = self.store.get(user_id)
        return self._core.status_of(record)

    def reset(self, user_id: str) -> None:
        """Replace an ACTIVE user's secret and send them back to setup.

        The old secret stops working at once, recovery codes are discarded, any lock is lifted
        and the guessing budget refilled. Raises :class:`~totpcore.UserStateError` for a user
        who is not ACTIVE: a pending user's secret (say, one that leaked from the setup screen)
        is replaced with :meth:`disable` then :meth:`enable`.
        """
        core = self._core
        record = core.require(self._get(user_id, "reset"), _ACTIVE, "reset")
        with store_errors("reset"):
            replaced = self.store.replace(core.new_record(user_id), generation=record.generation)
        core.written(replaced, "reset")

    def disable(self, user_id: str) -> bool:
        """Remove the user's second factor; returns whether there was one."""
        self._core.check_user_id(user_id)
        with store_errors("disable"):
            return self.store.delete(user_id)

    def unlock(self, user_id: str) -> None:
        """Clear the user's failures and lock, and refill the guessing budget (admin action)."""
        self._core.check_user_id(user_id)
        with store_errors("unlock"):
            found = self.store.unlock(user_id)
        self._core.found(found)

    def rotate_key(self) -> int:
        """Re-encrypt every stored secret under the cipher's current key; return how many.

        Safe while the service runs: each secret is replaced by a compare-and-set on the bytes
        read, so a concurrent reset wins and is not overwritten. Afterwards the store remembers
        the current key's fingerprint, and 0.1.0 ciphertexts are no longer accepted. Needs a
        store that can list its users (:class:`~totpcore.UserListing`).
        """
        keys = self._core.keys
        keys.require_cipher()
        store = self.store
        if not isinstance(store, UserListing):
            raise TypeError("rotate_key needs a store that can list its users (UserListing)")
        rewritten = 0
        with store_errors("rotate_key"):
            after = None
            while page := store.user_ids(after=after, limit=_LIST_PAGE):
                for user_id in page:
                    while (record := store.get(user_id)) is not None:
                        sealed = keys.reseal(record)
                        if store.set_secret(
                            user_id,
                            generation=record.generation,
                            expected=record.secret,
                            secret=sealed,
                        ):
                            rewritten += 1
                            break
                after = page[-1]
            fingerprint, legacy = keys.rotated_settings()
            store.set_meta(CIPHER_SETTING, fingerprint, expected=store.get_meta(CIPHER_SETTING))
            if legacy is not None:
                store.set_meta(LEGACY_SETTING, legacy, expected=store.get_meta(LEGACY_SETTING))
        keys.rotated()
        return rewritten

    # --- setup ---------------------------------------------------------------------------

    def begin_setup(self, user_id: str, *, account_name: str | None = None) -> Provisioning:
        """Return the secret and URI for the setup screen (only while SETUP_PENDING).

        The same secret is returned every time until setup completes, so a user can scan it
        on several phones. ``account_name`` (default: the user id) is what the app displays.
        """
        core = self._core
        if _monotonic() >= core.settings_due:  # e.g. a key rotation by another process
            self._refresh()
        record = core.require(
            self._get(user_id, "begin_setup"), Status.SETUP_PENDING, "begin_setup"
        )
        account, secret, uri = core.provisioning(record, account_name)
        return Provisioning(user_id, account, self.issuer, secret, uri)

    def complete_setup(self, user_id: str, code: str) -> Verdict:
        """Confirm setup with a code from the app: SETUP_PENDING -> ACTIVE when accepted."""
        core = self._core
        action = "complete_setup"
        record = core.require(self._get(user_id, action), Status.SETUP_PENDING, action)
        check = core.check(user_id, code)
        if check is None:
            return core.malformed(record, Status.SETUP_PENDING)
        with store_errors("complete_setup"):
            if core.settings_stale():
                self._refresh()
            attempt = self.store.begin_attempt(
                user_id, status=Status.SETUP_PENDING, now=check.now, limits=core.limits
            )
            plan = core.evaluate_setup(check, attempt)
            if isinstance(plan, Verdict):
                return plan
            won = self.store.activate(
                user_id,
                generation=plan.generation,
                step=plan.step,
                drift=plan.drift,
                charged_at=plan.charged_at,
            )
        return core.activated(plan, won)

    # --- login ---------------------------------------------------------------------------

    def verify(self, user_id: str, code: str) -> Verdict:
        """Check a login code: replay-protected, throttled and drift-aware.

        A step is accepted at most once (RFC 6238 §5.2): a code whose step is at or below the
        replay mark (the highest step ever accepted) is REPLAYED.
        """
        return self._check(user_id, code, False)

    def verify_request(self, user_id: str, code: str) -> Verdict:
        """Check a code sent with an API request (the ``otp`` header).

        As :meth:`verify`, except that a repeat of the last accepted step is allowed while it
        is still inside the window, because a client sends the same code with every request
        of a 30-second step. An older step is never accepted. A repeat only takes back its own
        charge: it never clears earlier failures, so it cannot reset the throttle.

        ``code`` must be a ``str``: a missing header is the empty string (answered MALFORMED,
        or SETUP_REQUIRED / NOT_ENABLED by the user's state), as the adapters in
        :mod:`totpcore.web` pass it. ``None`` is a programming error and raises ``TypeError``,
        like any other non-string.
        """
        return self._check(user_id, code, True)

    def _check(self, user_id: str, code: str, allow_equal: bool) -> Verdict:
        """The login check behind :meth:`verify` and :meth:`verify_request` (the hot path).

        Store calls get plain try/except (free when nothing is raised) rather than the context
        manager the admin calls use.
        """
        core = self._core
        check = core.check(user_id, code)
        if check is None:
            return core.malformed(self._get(user_id, "verify"))
        store = self.store
        if _monotonic() >= core.settings_due:  # the store's settings, re-read every minute
            self._refresh()
        if self._one_commit:
            # The whole check in the store's one transaction (one durable commit); written
            # out here rather than in a helper: this is the hot path of the built-in stores.
            try:
                decision, won = store.charge_and_mark(  # type: ignore[attr-defined]
                    user_id,
                    status=_ACTIVE,
                    now=check[2],
                    limits=core.limits,
                    evaluate=lambda attempt: core.evaluate(check, attempt, allow_equal),
                )
            except TotpcoreError:
                raise
            except Exception as error:
                raise store_failure("verify", error) from error
            if isinstance(decision, Verdict):
                return decision
            return core.marked(decision, won)
        try:
            attempt = store.begin_attempt(user_id, status=_ACTIVE, now=check[2], limits=core.limits)
        except TotpcoreError:
            raise
        except Exception as error:
            raise store_failure("verify", error) from error
        plan = core.evaluate(check, attempt, allow_equal)
        if isinstance(plan, Verdict):
            return plan
        try:
            won = store.mark_used(
                user_id,
                generation=plan.generation,
                step=plan.step,
                drift=plan.drift,
                allow_equal=plan.allow_equal,
                charged_at=plan.charged_at,
            )
        except TotpcoreError:
            raise
        except Exception as error:
            raise store_failure("verify", error) from error
        return core.marked(plan, won)

    def resync(self, user_id: str, code1: str, code2: str) -> Verdict:
        """Resynchronise a device whose clock is far off, from two consecutive fresh codes.

        Searches ``policy.max_drift`` either side of now for two consecutive steps producing
        ``code1`` then ``code2``; the pair nearest to now wins. Both steps must lie strictly
        above the replay mark: a step once accepted is never accepted again by any path, so
        codes from logs or an earlier session cannot reopen anything. On success the drift is
        set to the pair's offset and the replay mark moves to the second step. A phone whose
        clock runs slow and that has already been used behind the mark cannot be brought back
        this way: fix its time, or have an admin reset it. Counts as an attempt for throttling.
        """
        core = self._core
        pair = core.check_pair(user_id, code1, code2)
        if pair is None:
            return core.malformed(self._get(user_id, "resync"))
        with store_errors("resync"):
            if core.settings_stale():
                self._refresh()
            attempt = self.store.begin_attempt(
                user_id, status=_ACTIVE, now=pair[0].now, limits=core.limits
            )
            plan = core.plan_resync(pair, attempt)
            if isinstance(plan, Verdict):
                return plan
            won = self.store.resync(
                user_id,
                generation=plan.generation,
                step=plan.step,
                drift=plan.drift,
                charged_at=plan.charged_at,
            )
        return core.resynced(plan, won)

    # --- recovery codes ------------------------------------------------------------------

    def new_recovery_codes(self, user_id: str) -> list[str]:
        """Return a new set of single-use recovery codes, replacing any earlier set.

        Show them to the user once; only their hashes are stored.
        """
        core = self._core
        action = "new_recovery_codes"
        record = core.require(self._get(user_id, action), _ACTIVE, action)
        codes, hashes = core.new_recovery_set()
        with store_errors(action):
            stored = self.store.set_recovery_hashes(
                user_id, generation=record.generation, hashes=hashes
            )
        core.written(stored, action)
        return codes

    def use_recovery_code(self, user_id: str, code: str) -> Verdict:
        """Log in with a recovery code instead of an OTP; each code works once."""
        core = self._core
        now = core.check_recovery(user_id, code)
        if now is None:
            return core.malformed(self._get(user_id, "use_recovery_code"))
        with store_errors("use_recovery_code"):
            if core.settings_stale():
                self._refresh()
            attempt = self.store.begin_attempt(user_id, status=_ACTIVE, now=now, limits=core.limits)
            plan = core.evaluate_recovery(code, now, attempt)
            if isinstance(plan, Verdict):
                return plan
            won = self.store.consume_recovery_hash(
                user_id,
                generation=plan.generation,
                code_hash=plan.code_hash,
                charged_at=plan.charged_at,
            )
        return core.consumed(won)

    # --- helpers -------------------------------------------------------------------------

    def _refresh(self, *, fresh: bool = True) -> None:
        """Read the store-wide settings (strictest lockout, legacy flag); every minute or so.

        This policy's lockout is recorded when it is stricter than the store's, retried until
        the store holds one at least as strict: each lost write means another server recorded
        a stricter one, so the loop ends.
        """
        core, store = self._core, self.store
        with store_errors("settings"):
            lockout = store.get_meta(LOCKOUT_SETTING)
            for _ in range(MAX_LOCKOUT_FAILURES):
                proposal = core.lockout_proposal(lockout)
                if proposal is None:
                    break
                if store.set_meta(LOCKOUT_SETTING, proposal, expected=lockout):
                    lockout = proposal
                    break
                lockout = store.get_meta(LOCKOUT_SETTING)
            legacy = store.get_meta(LEGACY_SETTING)
        core.adopt_settings(lockout=lockout, legacy=legacy, fresh=fresh)

    def _get(self, user_id: str, action: str) -> UserRecord | None:
        """The user's record (any kind of store failure becomes StoreError)."""
        self._core.check_user_id(user_id)
        with store_errors(action):
            return self.store.get(user_id)
