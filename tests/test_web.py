"""totpcore.web: the one HTTP answer table, the header checks, and the shared test world.

The adapter suites (test_wsgi, test_asgi, test_fastapi) import :class:`World` and
:class:`SpyStore` from here, so every adapter is tested against the same users.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from helpers import known_secrets
from totpcore import (
    TOTP,
    AsyncMemoryStore,
    AsyncTwoFactor,
    MemoryStore,
    Policy,
    Reason,
    StoreError,
    TwoFactor,
    Verdict,
)
from totpcore.testing import FakeClock
from totpcore.web import (
    MAX_CODE_LENGTH,
    STORE_RETRY_AFTER,
    HTTPAnswer,
    check_exempt,
    check_header,
    check_request,
    check_request_async,
    http_answer,
    is_exempt,
)

# --- the shared world -----------------------------------------------------------------------

#: Three free failures, then delays; a lock after six in a row, so a test can reach it quickly.
POLICY = Policy(free_failures=3, lockout_failures=6, recovery_iterations=1)


class SpyStore(MemoryStore):
    """A MemoryStore that records each call a verification makes, and can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.failing = False

    def _enter(self, name: str) -> None:
        """Record one call; raise as a broken backend would when ``failing``."""
        self.calls.append(name)
        if self.failing:
            raise ConnectionError("the database is down")

    def get(self, *args: Any, **kwargs: Any) -> Any:
        """Record, then read as MemoryStore does."""
        self._enter("get")
        return super().get(*args, **kwargs)

    def begin_attempt(self, *args: Any, **kwargs: Any) -> Any:
        """Record, then charge as MemoryStore does."""
        self._enter("begin_attempt")
        return super().begin_attempt(*args, **kwargs)

    def mark_used(self, *args: Any, **kwargs: Any) -> Any:
        """Record, then move the replay mark as MemoryStore does."""
        self._enter("mark_used")
        return super().mark_used(*args, **kwargs)

    def charge_and_mark(self, *args: Any, **kwargs: Any) -> Any:
        """Record, then run a whole login check as MemoryStore does (under one lock)."""
        self._enter("charge_and_mark")
        return super().charge_and_mark(*args, **kwargs)


@dataclass
class World:
    """Users in every state, on one spied store and one fake clock.

    ``alice`` and ``bob`` are ACTIVE (setup confirmed at the current step), ``carol`` is
    LOCKED, ``dave`` is SETUP_PENDING, and ``erin`` has no second factor.
    """

    clock: FakeClock = field(default_factory=FakeClock)
    store: SpyStore = field(default_factory=SpyStore)
    phones: dict[str, TOTP] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.service = TwoFactor(self.store, issuer="Example", policy=POLICY, clock=self.clock)
        # Known secrets: the adapters' tests send a phone's code of one step where another
        # step of the window must not share it (a random secret does, once in a million).
        with known_secrets():
            for user in ("alice", "bob", "carol"):
                self._activate(user)
            self._lock("carol")
            self.service.enable("dave")
        # Only what the tests do is of interest.
        self.store.calls.clear()

    def _activate(self, user: str) -> None:
        """Enrol ``user`` and confirm setup with the current code."""
        self.service.enable(user)
        setup = self.service.begin_setup(user)
        self.phones[user] = TOTP.from_secret(setup.secret)
        assert self.service.complete_setup(user, self.code(user))

    def _lock(self, user: str) -> None:
        """Fail until the user is LOCKED, waiting out each delay (the clock moves 1000 s)."""
        for _ in range(POLICY.lockout_failures + 2):
            self.clock.advance(1000)
            if self.service.verify(user, self.wrong(user)).reason is Reason.LOCKED:
                return
        raise AssertionError(f"{user} did not lock")

    def code(self, user: str, steps: int = 0) -> str:
        """The code ``user``'s phone shows ``steps`` time steps from now."""
        return self.phones[user].generate(self.clock() + 30 * steps)

    def wrong(self, user: str) -> str:
        """A well-formed code that no step in the window produces for ``user``."""
        near = {self.code(user, steps) for steps in (-1, 0, 1)}
        return next(code for code in ("000000", "111111", "222222") if code not in near)

    def async_service(self) -> AsyncTwoFactor:
        """An AsyncTwoFactor over the same records, clock and policy."""
        return AsyncTwoFactor(
            AsyncMemoryStore(self.store), issuer="Example", policy=POLICY, clock=self.clock
        )


@pytest.fixture
def world() -> World:
    """A fresh world of users in every state."""
    return World()


def body_of(answer: HTTPAnswer) -> dict[str, str]:
    """The refusal's JSON body, checked to hold exactly an error code and a message."""
    data = json.loads(answer.body)
    assert isinstance(data, dict)
    assert set(data) == {"error", "message"}
    assert all(isinstance(value, str) and value for value in data.values())
    return data


# --- the table, row by row ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "status", "error"),
    [
        (Reason.ACCEPTED, None, None),
        (Reason.NOT_ENABLED, None, None),
        (Reason.INVALID, 401, "invalid_otp"),
        (Reason.REPLAYED, 401, "invalid_otp"),
        (Reason.MALFORMED, 401, "invalid_otp"),
        (Reason.THROTTLED, 429, "otp_throttled"),
        (Reason.LOCKED, 403, "otp_locked"),
        (Reason.SETUP_REQUIRED, 403, "otp_setup_required"),
    ],
)
def test_each_reason_has_its_row(reason: Reason, status: int | None, error: str | None) -> None:
    """Every Reason maps to the status and error code of the documented table."""
    answer = http_answer(Verdict(reason, retry_after=3.0 if reason is Reason.THROTTLED else None))
    assert answer.status == status
    if status is None:
        assert answer.passes
        assert answer == HTTPAnswer(None, (), b"")
    else:
        assert not answer.passes
        assert body_of(answer)["error"] == error


def test_every_reason_is_in_the_table() -> None:
    """No Reason is left out of the table above (a new member must be given a row)."""
    covered = {"ACCEPTED", "NOT_ENABLED", "INVALID", "REPLAYED", "MALFORMED", "THROTTLED"}
    covered |= {"LOCKED", "SETUP_REQUIRED"}
    assert {reason.name for reason in Reason} == covered


def test_store_failure_is_503_and_fails_closed() -> None:
    """A StoreError is answered 503 with a Retry-After, never a pass."""
    answer = http_answer(StoreError("the store failed during verify (ConnectionError)"))
    assert answer.status == 503
    assert dict(answer.headers)["Retry-After"] == str(STORE_RETRY_AFTER)
    assert body_of(answer)["error"] == "otp_unavailable"
    # The store's own words (which may name a backend) stay out of the body.
    assert b"ConnectionError" not in answer.body


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [(0.2, "1"), (1.0, "1"), (1.01, "2"), (900.0, "900"), (0.001, "1"), (None, "1")],
)
def test_retry_after_is_whole_seconds_rounded_up(retry_after: float | None, header: str) -> None:
    """Retry-After rounds up to whole seconds and is at least 1: an early retry is refused."""
    answer = http_answer(Verdict(Reason.THROTTLED, retry_after=retry_after))
    assert answer.status == 429
    assert dict(answer.headers)["Retry-After"] == header


def test_wrong_replayed_and_malformed_answer_alike() -> None:
    """INVALID, REPLAYED and MALFORMED give byte-identical answers: nothing tells them apart."""
    answers = {http_answer(Verdict(reason)) for reason in (Reason.INVALID, Reason.REPLAYED)}
    answers.add(http_answer(Verdict(Reason.MALFORMED)))
    assert len(answers) == 1
    message = body_of(answers.pop())["message"].lower()
    for telltale in ("replay", "used", "malformed", "wrong", "incorrect", "format"):
        assert telltale not in message


#: The reasons that refuse the request.
REFUSALS = [reason for reason in Reason if reason not in {Reason.ACCEPTED, Reason.NOT_ENABLED}]


@pytest.mark.parametrize("reason", REFUSALS)
def test_refusals_are_uncached_json(reason: Reason) -> None:
    """Every refusal is JSON, marked not to be stored by any cache."""
    answer = http_answer(Verdict(reason, retry_after=1.0))
    headers = dict(answer.headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert len(headers) == len(answer.headers)  # no header twice
    body_of(answer)


def test_401_tells_the_client_which_header() -> None:
    """The 401 carries a WWW-Authenticate hint naming the header, and only the 401 does."""
    answer = http_answer(Verdict(Reason.INVALID), header="X-OTP")
    assert dict(answer.headers)["WWW-Authenticate"] == 'OTP header="x-otp"'
    assert "x-otp" in body_of(answer)["message"]
    for reason in (Reason.THROTTLED, Reason.LOCKED, Reason.SETUP_REQUIRED):
        assert "WWW-Authenticate" not in dict(http_answer(Verdict(reason)).headers)


@pytest.mark.parametrize("header", ["", 'o"tp', "otp\r\nSet-Cookie: a=b", "o tp", "ötp"])
def test_a_bad_header_name_is_refused(header: str) -> None:
    """A header name that is not an HTTP token cannot be echoed into WWW-Authenticate."""
    with pytest.raises(ValueError, match="header name"):
        http_answer(Verdict(Reason.INVALID), header=header)


def test_anything_else_is_a_type_error_not_a_pass() -> None:
    """An outcome that is not a Verdict or StoreError (a forgotten await, say) raises."""

    async def verify() -> Verdict:
        return Verdict(Reason.ACCEPTED)

    coroutine = verify()
    with pytest.raises(TypeError, match="Verdict or a StoreError"):
        http_answer(coroutine)  # type: ignore[arg-type]
    coroutine.close()
    with pytest.raises(TypeError):
        http_answer(RuntimeError("not a store failure"))  # type: ignore[arg-type]


def test_answers_are_frozen() -> None:
    """An HTTPAnswer cannot be altered after the fact (answers are shared between requests)."""
    answer = http_answer(Verdict(Reason.LOCKED))
    with pytest.raises(AttributeError):
        answer.status = 200  # type: ignore[misc]


# --- the header ------------------------------------------------------------------------------


def test_check_header() -> None:
    """Missing becomes the empty code; over the cap is MALFORMED; surrounding blanks go."""
    assert check_header(None) == ""
    assert check_header(" 123456\t") == "123456"
    at_cap = "1" * MAX_CODE_LENGTH
    assert check_header(at_cap) == at_cap
    refused = check_header("1" * (MAX_CODE_LENGTH + 1))
    assert isinstance(refused, Verdict)
    assert refused.reason is Reason.MALFORMED
    assert MAX_CODE_LENGTH == 64


def test_an_over_long_header_costs_no_store_call(world: World) -> None:
    """A header over 64 characters is refused 401 before the service or the store is asked."""
    answer = check_request(world.service, "alice", "1" * 65)
    assert answer.status == 401
    assert world.store.calls == []
    # Even for a user without a second factor: the request carried garbage, not a code.
    assert check_request(world.service, "erin", "1" * 10_000).status == 401
    assert world.store.calls == []


def test_a_missing_header_is_refused_only_for_enrolled_users(world: World) -> None:
    """No header: 401 for an active user, 403 for a pending one, a pass for the others."""
    assert check_request(world.service, "alice", None).status == 401
    assert check_request(world.service, "dave", None).status == 403
    assert check_request(world.service, "erin", None).passes
    # A missing header is never charged: it is not a guess.
    assert "begin_attempt" not in world.store.calls
    assert "charge_and_mark" not in world.store.calls


def test_check_request_runs_the_service(world: World) -> None:
    """A good code passes, its repeat passes (API-header mode), a wrong one is 401."""
    assert check_request(world.service, "alice", world.code("alice")).passes
    assert check_request(world.service, "alice", world.code("alice")).passes
    assert check_request(world.service, "alice", world.wrong("alice")).status == 401


def test_check_request_fails_closed_on_store_failure(world: World) -> None:
    """A broken store is a 503, not a pass and not an exception."""
    world.store.failing = True
    assert check_request(world.service, "alice", world.code("alice")).status == 503
    assert check_request(world.service, "alice", None).status == 503


def test_check_request_lets_programming_errors_through(world: World) -> None:
    """Errors other than store failures propagate: a bug must not turn into an answer."""
    with pytest.raises(TypeError):
        check_request(world.service, 42, "123456")  # type: ignore[arg-type]

    class Broken:
        """A service with a bug."""

        def verify_request(self, user_id: str, code: str) -> Verdict:
            """Fail as a bug would."""
            raise KeyError(user_id)

    with pytest.raises(KeyError):
        check_request(Broken(), "alice", "123456")


def test_check_request_async(world: World) -> None:
    """The async twin gives the same answers with an AsyncTwoFactor."""
    service = world.async_service()

    async def run() -> list[int | None]:
        return [
            (await check_request_async(service, "alice", world.code("alice"))).status,
            (await check_request_async(service, "alice", world.wrong("alice"))).status,
            (await check_request_async(service, "alice", "9" * 65)).status,
            (await check_request_async(service, "erin", None)).status,
        ]

    assert asyncio.run(run()) == [None, 401, 401, None]
    world.store.failing = True
    assert asyncio.run(check_request_async(service, "alice", "123456")).status == 503


# --- exempt paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "exempt"),
    [
        ("/login", True),
        ("/login/", False),  # an exact entry is exact
        ("/loginx", False),
        ("/public/", True),
        ("/public/a/b.css", True),
        ("/public", False),
        ("/public/../admin", False),  # dot segments are never exempt
        ("/public/./x", False),
        ("/public/.well-known", True),  # a dot inside a name is just a name
        ("/admin", False),
        ("", False),
    ],
)
def test_is_exempt(path: str, exempt: bool) -> None:
    """Exact entries match exactly, entries ending in '/' match below them, dots never."""
    assert is_exempt(path, ("/login", "/public/")) is exempt


def test_check_exempt() -> None:
    """A single string (a forgotten comma) and paths without '/' are refused."""
    assert check_exempt(["/login", "/public/"]) == ("/login", "/public/")
    with pytest.raises(TypeError, match="collection"):
        check_exempt("/login")
    with pytest.raises(ValueError, match="start with"):
        check_exempt(("login",))
    with pytest.raises(TypeError):
        check_exempt((b"/login",))  # type: ignore[arg-type]


# --- dependencies ---------------------------------------------------------------------------


def test_the_web_package_loads_no_framework() -> None:
    """Importing every adapter module loads neither FastAPI, Starlette nor asyncio's servers."""
    program = (
        "import sys, totpcore.web, totpcore.web.wsgi, totpcore.web.asgi, totpcore.web.fastapi\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fastapi', 'starlette', 'flask', 'werkzeug', 'uvicorn'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
