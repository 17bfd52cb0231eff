"""totpcore.web.wsgi: the middleware through a real WSGI server on loopback.

One ``wsgiref`` server runs for the module; each test puts its own middleware (on a fresh
:class:`~test_web.World`) behind it, and talks to it over a socket with ``http.client``.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from test_web import World
from totpcore import Reason, Verdict
from totpcore.web import http_answer
from totpcore.web.wsgi import OTPMiddleware

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


class QuietHandler(WSGIRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


class Slot:
    """The server's application: whatever the current test put in it."""

    def __init__(self) -> None:
        self.app: WSGIApplication | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve the request with the current test's application."""
        assert self.app is not None, "no application installed"
        return self.app(environ, start_response)


class Backend:
    """The protected application: answers 200 and counts the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer with the protected data."""
        self.calls += 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
        return [b"secret data"]


@dataclass
class Reply:
    """What the client received."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Site:
    """A running server: its port and the slot its application goes in."""

    port: int
    slot: Slot

    def install(self, app: WSGIApplication) -> None:
        """Serve ``app`` from now on."""
        self.slot.app = app

    def get(self, path: str = "/data", **headers: str) -> Reply:
        """GET ``path`` with ``headers`` (``x_user="alice"`` sends ``x-user: alice``)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            sent = {name.replace("_", "-"): value for name, value in headers.items()}
            connection.request("GET", path, headers=sent)
            response = connection.getresponse()
            return Reply(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            connection.close()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """A wsgiref server on a free loopback port, in a thread, for the whole module."""
    slot = Slot()
    server: WSGIServer = make_server("127.0.0.1", 0, slot, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Site(server.server_port, slot)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def user_from_header(environ: WSGIEnvironment) -> str | None:
    """The test's stand-in for authentication: the ``x-user`` header names the user."""
    user: str | None = environ.get("HTTP_X_USER")
    return user


@dataclass
class Setup:
    """One test's world, its protected application and its server."""

    world: World
    backend: Backend
    site: Site

    def get(self, path: str = "/data", **headers: str) -> Reply:
        """GET through the server."""
        return self.site.get(path, **headers)


@pytest.fixture
def setup(site: Site) -> Setup:
    """A fresh world behind OTPMiddleware with the default options, served by ``site``."""
    world, backend = World(), Backend()
    site.install(OTPMiddleware(backend, world.service, user_id=user_from_header))
    return Setup(world, backend, site)


def assert_answer(reply: Reply, reason: Reason) -> None:
    """The reply is exactly http_answer's refusal for ``reason``."""
    answer = http_answer(Verdict(reason, retry_after=1.0))
    assert reply.status == answer.status
    assert reply.body == answer.body
    for name, value in answer.headers:
        if name != "Retry-After":
            assert reply.headers[name.lower()] == value
    assert reply.headers["content-length"] == str(len(answer.body))


def test_a_good_code_reaches_the_app(setup: Setup) -> None:
    """The right code passes to the application, and so does its repeat within the step."""
    code = setup.world.code("alice")
    for _ in range(3):
        reply = setup.get(x_user="alice", otp=code)
        assert (reply.status, reply.body) == (200, b"secret data")
    assert setup.backend.calls == 3


def test_a_missing_header_is_401(setup: Setup) -> None:
    """An enrolled user without the header is refused 401 with the WWW-Authenticate hint."""
    reply = setup.get(x_user="alice")
    assert_answer(reply, Reason.INVALID)
    assert reply.headers["www-authenticate"] == 'OTP header="otp"'
    assert json.loads(reply.body)["error"] == "invalid_otp"
    assert setup.backend.calls == 0


def test_a_wrong_code_is_401(setup: Setup) -> None:
    """A wrong code gets the same 401 as a missing one."""
    assert_answer(setup.get(x_user="alice", otp=setup.world.wrong("alice")), Reason.INVALID)
    assert_answer(setup.get(x_user="alice", otp="12345"), Reason.INVALID)
    assert setup.backend.calls == 0


def test_an_older_used_step_is_401(setup: Setup) -> None:
    """The last accepted step may repeat; an older one, still inside the window, may not."""
    world = setup.world
    old = world.code("alice")
    assert setup.get(x_user="alice", otp=old).status == 200
    world.clock.advance(30)
    assert setup.get(x_user="alice", otp=world.code("alice")).status == 200
    # ``old`` is one step back: in the window, but below the replay mark.
    assert old == world.code("alice", -1)
    assert_answer(setup.get(x_user="alice", otp=old), Reason.REPLAYED)
    assert setup.backend.calls == 2


def test_a_burst_of_wrong_codes_is_429(setup: Setup) -> None:
    """Past the free failures the user is throttled: 429 with Retry-After in whole seconds."""
    wrong = setup.world.wrong("bob")
    # Policy: three free failures; the attempt after them must wait.
    statuses = [setup.get(x_user="bob", otp=wrong).status for _ in range(3)]
    assert statuses == [401, 401, 401]
    reply = setup.get(x_user="bob", otp=wrong)
    assert_answer(reply, Reason.THROTTLED)
    assert int(reply.headers["retry-after"]) >= 1
    # Even the right code waits: the throttle is on the user, not on wrong codes.
    assert setup.get(x_user="bob", otp=setup.world.code("bob")).status == 429
    assert setup.backend.calls == 0


def test_login_is_exempt(setup: Setup) -> None:
    """The exempt /login passes with no header, even for an enrolled user."""
    assert setup.get("/login", x_user="alice").status == 200
    assert setup.get("/login?next=/data", x_user="alice").status == 200
    assert setup.get("/login/other", x_user="alice").status == 401
    assert setup.world.store.calls.count("get") == 1  # only the refused path asked


def test_no_user_passes(setup: Setup) -> None:
    """A request user_id does not name (anonymous) is not this middleware's business."""
    assert setup.get(otp="garbage").status == 200
    assert setup.world.store.calls == []


def test_a_broken_store_is_503_and_the_app_is_not_called(setup: Setup) -> None:
    """Store failure fails closed: 503 with Retry-After, and the application never runs."""
    setup.world.store.failing = True
    for reply in (
        setup.get(x_user="alice", otp=setup.world.code("alice")),
        setup.get(x_user="alice"),
    ):
        assert reply.status == 503
        assert reply.headers["retry-after"] == "5"
        assert json.loads(reply.body)["error"] == "otp_unavailable"
    assert setup.backend.calls == 0


def test_an_over_long_header_is_401_without_a_store_call(setup: Setup) -> None:
    """A 65-character header is refused before any work: not one store call."""
    assert_answer(setup.get(x_user="alice", otp="1" * 65), Reason.MALFORMED)
    assert setup.world.store.calls == []


def test_a_locked_user_is_403(setup: Setup) -> None:
    """A locked user is refused 403 otp_locked, even with the right code."""
    reply = setup.get(x_user="carol", otp=setup.world.code("carol"))
    assert_answer(reply, Reason.LOCKED)
    assert json.loads(reply.body)["error"] == "otp_locked"


def test_a_pending_user_is_told_to_set_up(setup: Setup) -> None:
    """A SETUP_PENDING user is refused 403 otp_setup_required, with or without a code."""
    for reply in (setup.get(x_user="dave", otp="123456"), setup.get(x_user="dave")):
        assert_answer(reply, Reason.SETUP_REQUIRED)
        assert json.loads(reply.body)["error"] == "otp_setup_required"
    assert setup.backend.calls == 0


def test_a_user_without_two_factor_passes(setup: Setup) -> None:
    """Two-factor is per user: erin has none, and passes with or without a header."""
    assert setup.get(x_user="erin").status == 200
    assert setup.get(x_user="erin", otp="123456").status == 200
    assert setup.backend.calls == 2


def test_a_custom_header_in_any_case(site: Site) -> None:
    """A custom header name is matched in any case, with '-' as WSGI files it."""
    world, backend = World(), Backend()
    site.install(
        OTPMiddleware(
            backend, world.service, user_id=user_from_header, header="X-OTP-Code", exempt=()
        )
    )
    code = world.code("alice")
    assert site.get(x_user="alice", X_Otp_CODE=code).status == 200
    reply = site.get("/login", x_user="alice", otp=code)
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == 'OTP header="x-otp-code"'


def test_a_prefix_exemption(site: Site) -> None:
    """An exempt entry ending in '/' covers the paths below it, never with dot segments."""
    world, backend = World(), Backend()
    site.install(
        OTPMiddleware(backend, world.service, user_id=user_from_header, exempt=["/public/"])
    )
    assert site.get("/public/app.css", x_user="alice").status == 200
    assert site.get("/public/../data", x_user="alice").status == 401
    assert site.get("/login", x_user="alice").status == 401


def call(app: WSGIApplication, environ: dict[str, Any]) -> tuple[list[str], bytes]:
    """Call a WSGI app directly; return the status lines it started and its body."""
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append(status)
        return lambda data: None

    return started, b"".join(app(environ, start_response))


def test_programming_errors_propagate() -> None:
    """A failing user_id or a bug in the service raises; it is never a pass or an answer."""
    world, backend = World(), Backend()

    def broken_user_id(environ: WSGIEnvironment) -> str | None:
        raise LookupError("no session backend")

    environ: dict[str, Any] = {"PATH_INFO": "/data", "HTTP_OTP": "123456"}
    with pytest.raises(LookupError):
        call(OTPMiddleware(backend, world.service, user_id=broken_user_id), environ)
    # A user id the service refuses (too long) is the application's bug, not the client's.
    with pytest.raises(ValueError, match="user_id"):
        call(OTPMiddleware(backend, world.service, user_id=lambda _: "x" * 1000), environ)
    assert backend.calls == 0


def test_a_direct_call_answers_in_wsgi_terms() -> None:
    """Called without a server, the refusal is a proper status line and the JSON body."""
    world = World()
    started, body = call(
        OTPMiddleware(Backend(), world.service, user_id=lambda _: "alice"),
        {"PATH_INFO": "/data"},
    )
    assert started == ["401 Unauthorized"]
    assert body == http_answer(Verdict(Reason.INVALID)).body


def test_bad_options_are_refused() -> None:
    """An async service, a lone exempt string and a bad header name are caught up front."""
    world = World()
    backend: Callable[..., Iterable[bytes]] = Backend()
    with pytest.raises(TypeError, match="asgi"):
        OTPMiddleware(backend, world.async_service(), user_id=user_from_header)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="collection"):
        OTPMiddleware(backend, world.service, user_id=user_from_header, exempt="/login")
    with pytest.raises(ValueError, match="header"):
        OTPMiddleware(backend, world.service, user_id=user_from_header, header="o tp")
