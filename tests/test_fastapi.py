"""totpcore.web.fastapi: the require_otp dependency and the handler that answers refusals.

Driven through FastAPI's TestClient, and once through a real uvicorn server, with an
:class:`~totpcore.AsyncTwoFactor` on the shared :class:`~test_web.World`.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from test_asgi import serve
from test_web import World
from totpcore import MissingDependencyError, Reason, StoreError, Verdict
from totpcore.web import AsyncVerifier, HTTPAnswer, Verifier, http_answer
from totpcore.web.fastapi import OTPRefused, install, otp_exception_handler, require_otp

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient and warns about httpx, which is what the
    # test extra installs (and what the real-server tests use); the client works the same.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

UserOfRequest = Callable[[Request], "str | Awaitable[str | None] | None"]


def user_from_header(request: Request) -> str | None:
    """The test's stand-in for authentication: the ``x-user`` header names the user."""
    return request.headers.get("x-user")


async def user_from_header_async(request: Request) -> str | None:
    """The same, as a coroutine."""
    return request.headers.get("x-user")


def make_app(
    service: AsyncVerifier | Verifier,
    user_id: UserOfRequest = user_from_header,
    *,
    header: str = "otp",
) -> FastAPI:
    """An app whose ``/data`` requires the header and whose ``/login`` does not."""
    app = FastAPI()
    install(app)

    @app.get("/data", dependencies=[Depends(require_otp(service, user_id=user_id, header=header))])
    async def data() -> dict[str, str]:
        """The protected data."""
        return {"data": "secret"}

    @app.get("/login")
    async def login() -> dict[str, str]:
        """Open to everyone."""
        return {"login": "form"}

    return app


@pytest.fixture
def world() -> World:
    """A fresh world of users in every state."""
    return World()


@pytest.fixture(params=["sync user_id", "async user_id"])
def client(request: pytest.FixtureRequest, world: World) -> Iterator[TestClient]:
    """A TestClient on the app with the world's AsyncTwoFactor, with each kind of user_id."""
    user_id = user_from_header if request.param == "sync user_id" else user_from_header_async
    with TestClient(make_app(world.async_service(), user_id)) as test_client:
        yield test_client


def assert_rendered(reply: httpx.Response, answer: HTTPAnswer) -> None:
    """The reply carries exactly the answer's status, body and headers."""
    assert reply.status_code == answer.status
    assert reply.content == answer.body
    for name, value in answer.headers:
        assert reply.headers.get_list(name) == [value]


class Fixed:
    """A service stub that always gives one outcome (a verdict, or a store failure)."""

    def __init__(self, outcome: Verdict | StoreError) -> None:
        self.outcome = outcome

    async def verify_request(self, user_id: str, code: str) -> Verdict:
        """Give the fixed outcome."""
        if isinstance(self.outcome, StoreError):
            raise self.outcome
        return self.outcome


OUTCOMES: list[Verdict | StoreError] = [
    Verdict(Reason.INVALID),
    Verdict(Reason.REPLAYED),
    Verdict(Reason.MALFORMED),
    Verdict(Reason.THROTTLED, retry_after=1.01),
    Verdict(Reason.LOCKED),
    Verdict(Reason.SETUP_REQUIRED),
    StoreError("the store failed during verify (ConnectionError)"),
]


@pytest.mark.parametrize("outcome", OUTCOMES, ids=lambda outcome: type(outcome).__name__)
def test_refusals_render_as_http_answer_says(outcome: Verdict | StoreError) -> None:
    """Each refusal reaches the client with http_answer's status, headers and JSON body."""
    with TestClient(make_app(Fixed(outcome))) as test_client:
        reply = test_client.get("/data", headers={"x-user": "alice", "otp": "123456"})
    assert_rendered(reply, http_answer(outcome))


@pytest.mark.parametrize("reason", [Reason.ACCEPTED, Reason.NOT_ENABLED])
def test_passes_reach_the_route(reason: Reason) -> None:
    """ACCEPTED and NOT_ENABLED let the route run."""
    with TestClient(make_app(Fixed(Verdict(reason)))) as test_client:
        reply = test_client.get("/data", headers={"x-user": "alice", "otp": "123456"})
    assert reply.json() == {"data": "secret"}


def test_a_good_code_passes(client: TestClient, world: World) -> None:
    """The right code passes, and so does its repeat within the step."""
    for _ in range(2):
        reply = client.get("/data", headers={"x-user": "alice", "otp": world.code("alice")})
        assert reply.json() == {"data": "secret"}


def test_missing_wrong_and_replayed_are_one_401(client: TestClient, world: World) -> None:
    """No header, a wrong code and an older used step all get the same 401."""
    refused = http_answer(Verdict(Reason.INVALID))
    old = world.code("alice")
    assert client.get("/data", headers={"x-user": "alice", "otp": old}).status_code == 200
    world.clock.advance(30)
    assert client.get("/data", headers={"x-user": "alice", "otp": world.code("alice")}).is_success
    for headers in (
        {"x-user": "alice"},
        {"x-user": "alice", "otp": world.wrong("alice")},
        {"x-user": "alice", "otp": old},
    ):
        assert_rendered(client.get("/data", headers=headers), refused)


def test_a_burst_is_throttled(client: TestClient, world: World) -> None:
    """Past the three free failures the user gets 429 with Retry-After."""
    headers = {"x-user": "bob", "otp": world.wrong("bob")}
    assert [client.get("/data", headers=headers).status_code for _ in range(3)] == [401] * 3
    reply = client.get("/data", headers=headers)
    assert reply.status_code == 429
    assert int(reply.headers["retry-after"]) >= 1


def test_users_in_other_states(client: TestClient, world: World) -> None:
    """Locked: 403 otp_locked; pending: 403 otp_setup_required; no second factor: a pass."""
    locked = client.get("/data", headers={"x-user": "carol", "otp": world.code("carol")})
    assert_rendered(locked, http_answer(Verdict(Reason.LOCKED)))
    pending = client.get("/data", headers={"x-user": "dave"})
    assert_rendered(pending, http_answer(Verdict(Reason.SETUP_REQUIRED)))
    assert client.get("/data", headers={"x-user": "erin"}).json() == {"data": "secret"}
    assert client.get("/data").json() == {"data": "secret"}  # no user: not our business
    assert client.get("/login", headers={"x-user": "alice"}).json() == {"login": "form"}


def test_store_failure_and_over_long_header(client: TestClient, world: World) -> None:
    """An over-long header costs no store call; a broken store is 503, never a pass."""
    reply = client.get("/data", headers={"x-user": "alice", "otp": "1" * 65})
    assert_rendered(reply, http_answer(Verdict(Reason.MALFORMED)))
    assert world.store.calls == []
    world.store.failing = True
    reply = client.get("/data", headers={"x-user": "alice", "otp": world.code("alice")})
    assert_rendered(reply, http_answer(StoreError("down")))


def test_a_sync_service_runs_off_the_event_loop(world: World) -> None:
    """A TwoFactor works too (called in Starlette's thread pool)."""
    with TestClient(make_app(world.service, header="X-OTP")) as test_client:
        good = {"x-user": "alice", "x-otp": world.code("alice")}
        assert test_client.get("/data", headers=good).json() == {"data": "secret"}
        reply = test_client.get("/data", headers={"x-user": "alice"})
        assert_rendered(reply, http_answer(Verdict(Reason.INVALID), header="x-otp"))


def test_programming_errors_propagate(world: World) -> None:
    """A user id the service refuses raises out of the app: never a pass."""
    app = make_app(world.async_service(), lambda request: "")
    with TestClient(app) as test_client, pytest.raises(ValueError, match="user_id"):
        test_client.get("/data", headers={"otp": "123456"})


def test_through_uvicorn(world: World) -> None:
    """Under a real server the dependency passes good codes and refuses the rest."""
    app = make_app(world.async_service())
    with serve(app) as url, httpx.Client(base_url=url, trust_env=False) as http:
        reply = http.get("/data", headers={"x-user": "alice", "otp": world.code("alice")})
        assert reply.json() == {"data": "secret"}
        reply = http.get("/data", headers={"x-user": "alice", "otp": world.wrong("alice")})
        assert_rendered(reply, http_answer(Verdict(Reason.INVALID)))


def test_the_handler_answers_only_refusals() -> None:
    """The handler refuses to render anything but an OTPRefused carrying a refusal."""
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    response = otp_exception_handler(request, OTPRefused(http_answer(Verdict(Reason.LOCKED))))
    assert response.status_code == 403
    with pytest.raises(TypeError):
        otp_exception_handler(request, ValueError("another error"))
    with pytest.raises(TypeError):
        otp_exception_handler(request, OTPRefused(http_answer(Verdict(Reason.ACCEPTED))))


def test_a_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, world: World
) -> None:
    """Without FastAPI, each entry point raises MissingDependencyError naming the extra."""
    # None in sys.modules makes the import fail, as if the package were not installed.
    monkeypatch.setitem(sys.modules, "fastapi", None)
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    calls: list[Callable[[], object]] = [
        lambda: require_otp(world.async_service(), user_id=user_from_header),
        lambda: install(FastAPI()),
        lambda: otp_exception_handler(request, OTPRefused(http_answer(StoreError("down")))),
    ]
    for call in calls:
        with pytest.raises(MissingDependencyError, match=r"pip install 'totpcore\[fastapi\]'"):
            call()
