"""totpcore.web.asgi: the middleware through a real uvicorn server on loopback.

One uvicorn server runs for the module; each test puts its own middleware (an
:class:`~totpcore.AsyncTwoFactor` on a fresh :class:`~test_web.World`) behind it and talks to
it with ``httpx``. Lifespan and websocket scopes are checked to pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
import uvicorn

from test_web import World
from totpcore import Reason, Verdict
from totpcore.web import http_answer
from totpcore.web.asgi import (
    ASGIApp,
    Message,
    OTPMiddleware,
    Receive,
    Scope,
    Send,
    UserIdOfScope,
)


@contextlib.contextmanager
def serve(app: ASGIApp, *, lifespan: Literal["on", "off"] = "off") -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port, in a thread; yield its base URL.

    The socket is bound here (port 0) and handed to uvicorn, so no other process can take
    the port between choosing it and listening on it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan, ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class Slot:
    """The server's application: whatever the current test put in it."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request with the current test's application."""
        assert self.app is not None, "no application installed"
        await self.app(scope, receive, send)


@dataclass
class Backend:
    """The protected application: answers 200 and records every scope that reached it."""

    scopes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        """How many HTTP requests reached the application."""
        return self.scopes.count("http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer HTTP with the protected data; run the lifespan protocol; accept websockets."""
        self.scopes.append(scope["type"])
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                self.scopes.append(message["type"])
                await send({"type": "lifespan.startup.complete"})
            self.scopes.append("lifespan.shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"11")],
            }
        )
        await send({"type": "http.response.body", "body": b"secret data"})


@dataclass
class Site:
    """A running server: its client and the slot its application goes in."""

    client: httpx.Client
    slot: Slot

    def get(self, path: str = "/data", **headers: str) -> httpx.Response:
        """GET ``path`` with ``headers`` (``x_user="alice"`` sends ``x-user: alice``)."""
        sent = {name.replace("_", "-"): value for name, value in headers.items()}
        return self.client.get(path, headers=sent)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """A uvicorn server for the whole module, and an httpx client for it."""
    slot = Slot()
    # A fresh connection per request: on a reused one, Nagle's algorithm and delayed ACKs
    # add about 40 ms to every request; trust_env=False keeps any proxy settings out.
    limits = httpx.Limits(max_keepalive_connections=0)
    with (
        serve(slot) as url,
        httpx.Client(base_url=url, trust_env=False, timeout=10, limits=limits) as client,
    ):
        yield Site(client, slot)


def user_from_header(scope: Scope) -> str | None:
    """The test's stand-in for authentication: the ``x-user`` header names the user."""
    for name, value in scope["headers"]:
        if name == b"x-user":
            user: str = value.decode("latin-1")
            return user
    return None


async def user_from_header_async(scope: Scope) -> str | None:
    """The same, as a coroutine (a session looked up in a database, say)."""
    await asyncio.sleep(0)
    return user_from_header(scope)


@dataclass
class Setup:
    """One test's world, its protected application and its server."""

    world: World
    backend: Backend
    site: Site

    def get(self, path: str = "/data", **headers: str) -> httpx.Response:
        """GET through the server."""
        return self.site.get(path, **headers)


@pytest.fixture(params=["sync user_id", "async user_id"])
def setup(request: pytest.FixtureRequest, site: Site) -> Setup:
    """A fresh world behind OTPMiddleware, once with a sync and once with an async user_id."""
    world, backend = World(), Backend()
    user_id: UserIdOfScope = (
        user_from_header if request.param == "sync user_id" else user_from_header_async
    )
    site.slot.app = OTPMiddleware(backend, world.async_service(), user_id=user_id)
    return Setup(world, backend, site)


def assert_answer(reply: httpx.Response, reason: Reason) -> None:
    """The reply is exactly http_answer's refusal for ``reason``."""
    answer = http_answer(Verdict(reason, retry_after=1.0))
    assert reply.status_code == answer.status
    assert reply.content == answer.body
    for name, value in answer.headers:
        if name != "Retry-After":
            assert reply.headers[name] == value
    assert reply.headers["content-length"] == str(len(answer.body))


def test_a_good_code_reaches_the_app(setup: Setup) -> None:
    """The right code passes to the application, and so does its repeat within the step."""
    code = setup.world.code("alice")
    for _ in range(3):
        reply = setup.get(x_user="alice", otp=code)
        assert (reply.status_code, reply.content) == (200, b"secret data")
    assert setup.backend.calls == 3


def test_a_missing_header_is_401(setup: Setup) -> None:
    """An enrolled user without the header is refused 401 with the WWW-Authenticate hint."""
    reply = setup.get(x_user="alice")
    assert_answer(reply, Reason.INVALID)
    assert reply.headers["www-authenticate"] == 'OTP header="otp"'
    assert setup.backend.calls == 0


def test_a_wrong_code_is_401(setup: Setup) -> None:
    """A wrong code, or a code of the wrong shape, gets the same 401 as a missing one."""
    assert_answer(setup.get(x_user="alice", otp=setup.world.wrong("alice")), Reason.INVALID)
    assert_answer(setup.get(x_user="alice", otp="12345"), Reason.INVALID)
    assert setup.backend.calls == 0


def test_an_older_used_step_is_401(setup: Setup) -> None:
    """The last accepted step may repeat; an older one, still inside the window, may not."""
    world = setup.world
    old = world.code("alice")
    assert setup.get(x_user="alice", otp=old).status_code == 200
    world.clock.advance(30)
    assert setup.get(x_user="alice", otp=world.code("alice")).status_code == 200
    assert old == world.code("alice", -1)
    assert_answer(setup.get(x_user="alice", otp=old), Reason.REPLAYED)
    assert setup.backend.calls == 2


def test_a_burst_of_wrong_codes_is_429(setup: Setup) -> None:
    """Past the three free failures the user is throttled: 429 with Retry-After."""
    wrong = setup.world.wrong("bob")
    assert [setup.get(x_user="bob", otp=wrong).status_code for _ in range(3)] == [401] * 3
    reply = setup.get(x_user="bob", otp=wrong)
    assert_answer(reply, Reason.THROTTLED)
    assert int(reply.headers["retry-after"]) >= 1
    assert setup.backend.calls == 0


def test_login_is_exempt(setup: Setup) -> None:
    """The exempt /login passes with no header, even for an enrolled user."""
    assert setup.get("/login", x_user="alice").status_code == 200
    assert setup.get("/login/other", x_user="alice").status_code == 401
    assert setup.backend.calls == 1


def test_no_user_passes(setup: Setup) -> None:
    """A request user_id does not name (anonymous) is not this middleware's business."""
    assert setup.get(otp="garbage").status_code == 200
    assert setup.world.store.calls == []


def test_a_broken_store_is_503_and_the_app_is_not_called(setup: Setup) -> None:
    """Store failure fails closed: 503 with Retry-After, and the application never runs."""
    setup.world.store.failing = True
    for reply in (setup.get(x_user="alice", otp="123456"), setup.get(x_user="alice")):
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "5"
        assert reply.json()["error"] == "otp_unavailable"
    assert setup.backend.calls == 0


def test_an_over_long_header_is_401_without_a_store_call(setup: Setup) -> None:
    """A 65-character header is refused before any work: not one store call."""
    assert_answer(setup.get(x_user="alice", otp="1" * 65), Reason.MALFORMED)
    assert setup.world.store.calls == []


def test_a_locked_user_is_403(setup: Setup) -> None:
    """A locked user is refused 403 otp_locked, even with the right code."""
    reply = setup.get(x_user="carol", otp=setup.world.code("carol"))
    assert_answer(reply, Reason.LOCKED)
    assert reply.json()["error"] == "otp_locked"


def test_a_pending_user_is_told_to_set_up(setup: Setup) -> None:
    """A SETUP_PENDING user is refused 403 otp_setup_required, with or without a code."""
    for reply in (setup.get(x_user="dave", otp="123456"), setup.get(x_user="dave")):
        assert_answer(reply, Reason.SETUP_REQUIRED)
        assert json.loads(reply.content)["error"] == "otp_setup_required"
    assert setup.backend.calls == 0


def test_a_user_without_two_factor_passes(setup: Setup) -> None:
    """Two-factor is per user: erin has none, and passes with or without a header."""
    assert setup.get(x_user="erin").status_code == 200
    assert setup.get(x_user="erin", otp="123456").status_code == 200
    assert setup.backend.calls == 2


def test_repeated_headers_are_not_a_code(site: Site) -> None:
    """Two otp headers are joined, as WSGI servers do, and the result is no code."""
    world, backend = World(), Backend()
    site.slot.app = OTPMiddleware(backend, world.async_service(), user_id=user_from_header)
    code = world.code("alice")
    reply = site.client.get("/data", headers=[("x-user", "alice"), ("otp", code), ("OTP", code)])
    assert reply.status_code == 401
    assert site.get(x_user="alice", OTP=code).status_code == 200  # any case, once


def test_lifespan_passes_through_uvicorn() -> None:
    """Under a real server, start-up and shutdown reach the wrapped application."""
    world, backend = World(), Backend()
    app = OTPMiddleware(backend, world.async_service(), user_id=user_from_header)
    with serve(app, lifespan="on"):
        assert backend.scopes == ["lifespan", "lifespan.startup"]
    assert backend.scopes[-1] == "lifespan.shutdown"
    assert world.store.calls == []


def run_scope(app: ASGIApp, scope: Scope) -> list[Message]:
    """Run one scope through ``app`` directly; return what it sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        await app(scope, receive, send)

    asyncio.run(main())
    return sent


def test_websocket_passes_through() -> None:
    """A websocket scope is not checked: it reaches the application untouched."""
    world, backend = World(), Backend()
    app = OTPMiddleware(backend, world.async_service(), user_id=user_from_header)
    scope: Scope = {"type": "websocket", "path": "/ws", "headers": [(b"x-user", b"alice")]}
    assert run_scope(app, scope) == [{"type": "websocket.accept"}]
    assert backend.scopes == ["websocket"]
    assert world.store.calls == []


def test_programming_errors_propagate() -> None:
    """A failing user_id, or a user id the service refuses, raises: never a pass."""
    world, backend = World(), Backend()
    scope: Scope = {"type": "http", "path": "/data", "headers": [(b"otp", b"123456")]}

    async def broken(scope: Scope) -> str | None:
        raise LookupError("no session backend")

    with pytest.raises(LookupError):
        run_scope(OTPMiddleware(backend, world.async_service(), user_id=broken), scope)
    with pytest.raises(ValueError, match="user_id"):
        run_scope(OTPMiddleware(backend, world.async_service(), user_id=lambda _: ""), scope)
    assert backend.calls == 0


def test_bad_options_are_refused() -> None:
    """A sync service, a lone exempt string and a bad header name are caught up front."""
    world = World()
    service: Any = world.service
    with pytest.raises(TypeError, match="not async"):
        OTPMiddleware(Backend(), service, user_id=user_from_header)
    with pytest.raises(TypeError, match="collection"):
        OTPMiddleware(Backend(), world.async_service(), user_id=user_from_header, exempt="/login")
    with pytest.raises(ValueError, match="header"):
        OTPMiddleware(Backend(), world.async_service(), user_id=user_from_header, header="")
