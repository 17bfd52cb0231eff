"""totpcore.web.flask through Flask's test client: the API decorator, the half login, the pages.

Every service here runs on a FakeClock, so codes are computed for a known time step and the
tests move time instead of sleeping.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from helpers import wrong_code
from totpcore import TOTP, MemoryStore, MissingDependencyError, Policy, Status, TwoFactor
from totpcore.testing import FakeClock
from totpcore.web.flask import (
    begin_second_factor,
    blueprint,
    check_csrf,
    csrf_token,
    current_user_id,
    logout,
    otp_required,
    otp_user_id,
    pending_user_id,
    second_factor_done,
    status_list,
)

PERIOD = 30


class Site:
    """A small Flask app around the blueprint, with the phones of its users.

    Args:
        service: The two-factor service.
        clock: The service's clock.
        **options: Passed to :func:`blueprint`.
    """

    def __init__(self, service: TwoFactor, clock: FakeClock, **options: Any) -> None:
        self.service = service
        self.clock = clock
        self.logins: list[str] = []
        app = flask.Flask(__name__)
        app.secret_key = "test-secret-key"
        app.config["TESTING"] = True
        app.register_blueprint(blueprint(service, on_login=self.logins.append, **options))
        self.app = app

        @app.post("/login")
        def login() -> Any:
            # The password check is the application's; these tests trust the form.
            return begin_second_factor(flask.request.form["user"])

        @app.get("/")
        def home() -> Any:
            return {"user": current_user_id(), "pending": pending_user_id()}

        @app.post("/logout")
        def log_out() -> Any:
            check_csrf()
            logout()
            return flask.redirect("/")

        @app.get("/token")
        def form_token() -> Any:
            # What an application's own form template renders into its hidden field.
            return flask.render_template_string("{{ totpcore_csrf_token() }}")

        @app.get("/api/whoami")
        @otp_required(service, user_id=lambda: flask.request.headers.get("X-User"))
        def whoami() -> Any:
            return {"user": otp_user_id()}

        self.client = app.test_client()

    def phone(self, user: str) -> TOTP:
        """Set up ``user`` directly through the service; return their phone."""
        self.service.enable(user)
        secret = self.service.begin_setup(user).secret
        phone = TOTP.from_secret(secret)
        assert self.service.complete_setup(user, phone.generate(self.clock.now))
        self.next_step()
        return phone

    def next_step(self) -> None:
        """Move the clock to 10 s into the next time step (each step logs in once)."""
        self.clock.set((int(self.clock.now) // PERIOD + 1) * PERIOD + 10)

    def api(self, user: str | None, code: str | None) -> TestResponse:
        """Call the otp-protected API as ``user`` with ``code`` in the header (None: absent)."""
        headers = {} if user is None else {"X-User": user}
        if code is not None:
            headers["otp"] = code
        return self.client.get("/api/whoami", headers=headers)

    def login(self, user: str) -> TestResponse:
        """Pass the password step as ``user``."""
        return self.client.post("/login", data={"user": user})

    def post(self, path: str, **form: str) -> TestResponse:
        """Submit a form of the pages with this session's CSRF token."""
        return self.client.post(path, data={"csrf_token": token(self.client), **form})


def token(client: FlaskClient) -> str:
    """The session's CSRF token, read from a page of the application as a browser would."""
    return client.get("/token").get_data(as_text=True)


def text(response: TestResponse) -> str:
    """A response's body as text."""
    return response.get_data(as_text=True)


@pytest.fixture
def clock() -> FakeClock:
    """A clock 10 s into a time step."""
    return FakeClock()


@pytest.fixture
def site(clock: FakeClock) -> Site:
    """The app on a fresh in-memory store."""
    return Site(TwoFactor(MemoryStore(), issuer="Example Co", clock=clock), clock)


# --- the API decorator ----------------------------------------------------------------------


def test_api_good_header(site: Site) -> None:
    """A current code in the otp header lets the view run, which learns the checked user."""
    phone = site.phone("alice")
    response = site.api("alice", phone.generate(site.clock.now))
    assert response.status_code == 200
    assert response.json == {"user": "alice"}


def test_api_same_code_for_every_request_of_a_step(site: Site) -> None:
    """A client repeats the step's code on each request: header mode accepts the repeats."""
    phone = site.phone("alice")
    code = phone.generate(site.clock.now)
    assert [site.api("alice", code).status_code for _ in range(3)] == [200, 200, 200]


def test_api_missing_header(site: Site) -> None:
    """No header from an enrolled user is a 401 naming the header, not charged as a guess."""
    site.phone("alice")
    response = site.api("alice", None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'OTP header="otp"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json is not None
    assert response.json["error"] == "invalid_otp"


def test_api_wrong_header(site: Site) -> None:
    """A wrong code is a 401 with the same answer as a missing one."""
    phone = site.phone("alice")
    wrong = wrong_code(phone, site.clock.now)
    response = site.api("alice", wrong)
    assert response.status_code == 401
    assert response.json == site.api("alice", None).json


# Known secrets: the earlier step's code must not also be the accepted one's (one in a million).
@pytest.mark.usefixtures("known_secrets")
def test_api_replayed_header(site: Site) -> None:
    """Once a later step was accepted, an earlier step's code is refused like a wrong one."""
    phone = site.phone("alice")
    now = site.clock.now
    assert site.api("alice", phone.generate(now + PERIOD)).status_code == 200  # phone fast
    replayed = site.api("alice", phone.generate(now))
    assert replayed.status_code == 401
    assert replayed.json is not None
    assert replayed.json["error"] == "invalid_otp"


def test_api_throttled_burst(site: Site) -> None:
    """A burst of wrong codes is answered 429 with Retry-After in whole seconds."""
    phone = site.phone("alice")
    wrong = wrong_code(phone, site.clock.now)
    statuses = [site.api("alice", wrong).status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5  # the free failures
    assert 429 in statuses
    throttled = site.api("alice", phone.generate(site.clock.now))  # even the right code waits
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json is not None
    assert throttled.json["error"] == "otp_throttled"


def test_api_locked(clock: FakeClock) -> None:
    """After the lockout budget of failures, the user is locked (403) until an admin unlocks."""
    service = TwoFactor(
        MemoryStore(),
        issuer="Example Co",
        clock=clock,
        policy=Policy(lockout_failures=3, free_failures=3),
    )
    site = Site(service, clock)
    phone = site.phone("alice")
    wrong = wrong_code(phone, clock.now)
    for _ in range(3):
        assert site.api("alice", wrong).status_code == 401
    locked = site.api("alice", phone.generate(clock.now))
    assert locked.status_code == 403
    assert locked.json is not None
    assert locked.json["error"] == "otp_locked"
    service.unlock("alice")
    assert site.api("alice", phone.generate(clock.now)).status_code == 200


def test_api_setup_required(site: Site) -> None:
    """An enabled user who has not set up yet gets 403 setup required, whatever they send."""
    site.service.enable("bob")
    for code in (None, "123456"):
        response = site.api("bob", code)
        assert response.status_code == 403
        assert response.json is not None
        assert response.json["error"] == "otp_setup_required"


def test_api_user_without_two_factor_passes(site: Site) -> None:
    """Two-factor is per user: one who has none needs no header."""
    assert site.api("carol", None).status_code == 200


def test_api_unnamed_user_is_the_applications_business(site: Site) -> None:
    """As with every adapter, a request user_id does not name goes on unchecked.

    Refusing it is the application's authentication's job (here, the view would); the view
    learns that no user's code was checked.
    """
    site.phone("alice")
    response = site.api(None, "123456")
    assert response.status_code == 200
    assert response.json == {"user": None}


def test_api_user_id_may_refuse_itself(clock: FakeClock) -> None:
    """A user_id that aborts with its own challenge answers the request before any check."""
    service = TwoFactor(MemoryStore(), issuer="Example Co", clock=clock)
    site = Site(service, clock)

    def basic_user() -> str:
        auth = flask.request.authorization
        if auth is None:
            challenge = {"WWW-Authenticate": 'Basic realm="api"'}
            flask.abort(flask.Response("who are you?", 401, challenge))
        return auth.username or ""

    @site.app.get("/api/basic")
    @otp_required(service, user_id=basic_user)
    def basic() -> Any:
        return {"user": otp_user_id()}

    refused = site.client.get("/api/basic")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="api"'
    assert site.client.get("/api/basic", auth=("carol", "pw")).json == {"user": "carol"}


def test_api_store_failure_is_503(clock: FakeClock) -> None:
    """A failing store answers 503 with Retry-After: never a pass."""

    class BrokenStore(MemoryStore):
        """Fails every attempt, as a database that went away."""

        def begin_attempt(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("database unreachable")

        def charge_and_mark(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("database unreachable")

    service = TwoFactor(BrokenStore(), issuer="Example Co", clock=clock)
    site = Site(service, clock)
    service.enable("alice")
    response = site.api("alice", "123456")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.json is not None
    assert response.json["error"] == "otp_unavailable"


def test_api_header_name_is_checked() -> None:
    """A header name that is not an HTTP token is refused when the view is decorated."""
    service = TwoFactor(MemoryStore(), issuer="Example Co")
    with pytest.raises(ValueError, match="header"):
        otp_required(service, user_id=lambda: "alice", header="bad header")


def test_api_custom_header(clock: FakeClock) -> None:
    """The header name is configurable and named in the 401."""
    service = TwoFactor(MemoryStore(), issuer="Example Co", clock=clock)
    site = Site(service, clock)
    phone = site.phone("alice")

    @site.app.get("/api/custom")
    @otp_required(service, user_id=lambda: "alice", header="X-OTP")
    def custom() -> Any:
        return "ok"

    assert site.client.get("/api/custom").headers["WWW-Authenticate"] == 'OTP header="x-otp"'
    good = site.client.get("/api/custom", headers={"X-OTP": phone.generate(clock.now)})
    assert good.status_code == 200


# --- the half login and the pages -----------------------------------------------------------


def test_login_without_two_factor_completes_at_once(site: Site) -> None:
    """A user with no second factor is logged in by the password step alone."""
    response = site.login("carol")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert site.client.get("/").json == {"user": "carol", "pending": None}
    assert site.logins == ["carol"]


def test_pending_user_goes_to_setup(site: Site) -> None:
    """An enabled user is pending after the password and sent to the setup page."""
    site.service.enable("bob")
    response = site.login("bob")
    assert response.headers["Location"] == "/2fa/setup"
    assert site.client.get("/").json == {"user": None, "pending": "bob"}
    assert site.logins == []


def test_active_user_goes_to_verify(site: Site) -> None:
    """A set-up user is sent to the verify page; setup would redirect there too."""
    site.phone("alice")
    assert site.login("alice").headers["Location"] == "/2fa/verify"
    assert site.client.get("/2fa/setup").headers["Location"] == "/2fa/verify"


def test_pages_need_a_pending_login(site: Site) -> None:
    """Without a half login the setup and verify pages send the visitor to log in."""
    for page in ("/2fa/setup", "/2fa/verify", "/2fa/recovery-codes"):
        response = site.client.get(page)
        assert response.status_code == 302
        assert response.headers["Location"] == "/login"


def test_logged_in_user_is_sent_home_from_the_login_pages(site: Site) -> None:
    """Once logged in, setup and verify have nothing to do: they send the user home."""
    site.login("carol")
    for page in ("/2fa/setup", "/2fa/verify"):
        assert site.client.get(page).headers["Location"] == "/"


def test_setup_page_shows_svg_secret_and_no_store(site: Site) -> None:
    """The setup page inlines a scalable SVG and the key in fours, and is never cached."""
    site.service.enable("bob")
    site.login("bob")
    response = site.client.get("/2fa/setup")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = text(response)
    svg = re.search(r"<svg\b[^>]*>", page)
    assert svg is not None
    assert "viewBox=" in svg.group(0)
    assert "width=" not in svg.group(0)
    secret = site.service.begin_setup("bob").secret
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    assert grouped in page
    assert "otpauth://totp/" in page


def test_setup_confirm_shows_recovery_codes_once(site: Site) -> None:
    """A confirmed code logs in and shows the recovery codes; the secret never shows again."""
    site.service.enable("bob")
    site.login("bob")
    site.client.get("/2fa/setup")
    secret = site.service.begin_setup("bob").secret
    phone = TOTP.from_secret(secret)
    response = site.post("/2fa/setup", code=phone.generate(site.clock.now))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<li>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</li>", text(response))
    assert len(codes) == 10
    assert site.service.status("bob") is Status.ACTIVE
    assert site.client.get("/").json == {"user": "bob", "pending": None}
    assert site.logins == ["bob"]
    # The key never appears again: not on any page, not after a new password login either.
    site.login("bob")
    pages = ["/2fa/setup", "/2fa/verify", "/2fa/troubleshooting", "/2fa/recovery-codes", "/"]
    for path in pages:
        body = site.client.get(path, follow_redirects=True).get_data(as_text=True)
        assert secret not in body.replace(" ", "")
        assert codes[0] not in body


def test_setup_wrong_code_stays_pending(site: Site) -> None:
    """A wrong setup code re-shows the page with the message (400) and logs nobody in."""
    site.service.enable("bob")
    site.login("bob")
    phone = TOTP.from_secret(site.service.begin_setup("bob").secret)
    response = site.post("/2fa/setup", code=wrong_code(phone, site.clock.now))
    assert response.status_code == 400
    assert "That code is not valid." in text(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert site.client.get("/").json == {"user": None, "pending": "bob"}


def test_verify_with_an_otp(site: Site) -> None:
    """A current code completes the login; the same code cannot log in twice."""
    phone = site.phone("alice")
    site.login("alice")
    code = phone.generate(site.clock.now)
    response = site.post("/2fa/verify", code=code)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert site.client.get("/").json == {"user": "alice", "pending": None}
    assert site.logins == ["alice"]
    site.post("/logout")
    site.login("alice")
    replayed = site.post("/2fa/verify", code=code)
    assert replayed.status_code == 400
    assert "That code is not valid." in text(replayed)
    assert site.client.get("/").json == {"user": None, "pending": "alice"}


def test_verify_with_a_recovery_code(site: Site) -> None:
    """A recovery code logs in once, typed in any case; a second use is refused."""
    site.phone("alice")
    codes = site.service.new_recovery_codes("alice")
    site.login("alice")
    assert site.post("/2fa/verify", code=codes[0].upper()).status_code == 302
    assert site.client.get("/").json == {"user": "alice", "pending": None}
    site.login("alice")
    again = site.post("/2fa/verify", code=codes[0])
    assert again.status_code == 400
    assert site.client.get("/").json == {"user": None, "pending": "alice"}


def test_verify_throttled_page(site: Site) -> None:
    """Form guesses are throttled like API ones: 429 with Retry-After and the message."""
    phone = site.phone("alice")
    site.login("alice")
    wrong = wrong_code(phone, site.clock.now)
    statuses = [site.post("/2fa/verify", code=wrong).status_code for _ in range(7)]
    assert statuses[:5] == [400] * 5
    assert statuses[-1] == 429
    response = site.post("/2fa/verify", code=phone.generate(site.clock.now))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "Too many attempts" in text(response)


# Known secrets: the fast phone's code must not be one of the window's by chance.
@pytest.mark.usefixtures("known_secrets")
def test_troubleshooting_shows_time_and_resyncs(site: Site) -> None:
    """The page explains automatic time and shows the server time; two codes resync a phone."""
    phone = site.phone("alice")
    site.login("alice")
    page = text(site.client.get("/2fa/troubleshooting"))
    assert "Set time automatically" in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    fast = 2 * 3600  # the phone runs two hours fast
    assert site.post("/2fa/verify", code=phone.generate(site.clock.now + fast)).status_code == 400
    response = site.post(
        "/2fa/troubleshooting",
        code1=phone.generate(site.clock.now + fast),
        code2=phone.generate(site.clock.now + fast + PERIOD),
    )
    assert response.status_code == 200
    assert "agree again" in text(response)
    # The pair's second step is now used up: the phone's code two steps on logs in.
    site.next_step()
    site.next_step()
    response = site.post("/2fa/verify", code=phone.generate(site.clock.now + fast))
    assert response.status_code == 302


def test_troubleshooting_refuses_a_wrong_pair(site: Site) -> None:
    """Two codes that are not consecutive codes of the phone change nothing."""
    site.phone("alice")
    site.login("alice")
    response = site.post("/2fa/troubleshooting", code1="111111", code2="222222")
    assert response.status_code == 400
    assert "That code is not valid." in text(response)


def test_csrf_token_is_enforced(site: Site) -> None:
    """A form without this session's token is refused (400) before any code is checked."""
    phone = site.phone("alice")
    site.login("alice")
    code = phone.generate(site.clock.now)
    for data in ({"code": code}, {"code": code, "csrf_token": "forged"}):
        response = site.client.post("/2fa/verify", data=data)
        assert response.status_code == 400
        assert "The form has expired" in text(response)
    assert site.client.get("/").json == {"user": None, "pending": "alice"}
    assert site.post("/2fa/verify", code=code).status_code == 302  # the code was not spent


def test_csrf_token_is_per_session(site: Site) -> None:
    """Another session's token does not work in this one."""
    site.phone("alice")
    other = site.app.test_client()
    stolen = token(other)
    site.login("alice")
    assert stolen != token(site.client)
    response = site.client.post("/2fa/verify", data={"code": "x", "csrf_token": stolen})
    assert response.status_code == 400


def test_pending_login_expires(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A half login older than pending_seconds is forgotten: the password is asked again."""
    service = TwoFactor(MemoryStore(), issuer="Example Co", clock=clock)
    site = Site(service, clock, pending_seconds=60)
    site.phone("alice")
    site.login("alice")
    import time as real_time

    start = real_time.time()
    monkeypatch.setattr("totpcore.web.flask.time.time", lambda: start + 61)
    assert site.client.get("/2fa/verify").headers["Location"] == "/login"
    assert site.client.get("/").json == {"user": None, "pending": None}


def test_recovery_codes_page_needs_a_fresh_code(site: Site) -> None:
    """A logged-in user replaces their codes only with a code from the phone."""
    phone = site.phone("alice")
    site.login("alice")
    site.post("/2fa/verify", code=phone.generate(site.clock.now))
    page = site.client.get("/2fa/recovery-codes")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    wrong = wrong_code(phone, site.clock.now)
    assert site.post("/2fa/recovery-codes", code=wrong).status_code == 400
    site.next_step()
    response = site.post("/2fa/recovery-codes", code=phone.generate(site.clock.now))
    codes = re.findall(r"<li>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</li>", text(response))
    assert len(codes) == 10
    assert site.service.use_recovery_code("alice", codes[0])


def test_second_factor_done_for_custom_views(site: Site) -> None:
    """An application's own view can complete the login with second_factor_done."""

    @site.app.post("/custom-verify")
    def custom_verify() -> Any:
        user = pending_user_id()
        assert user is not None
        if site.service.verify(user, flask.request.form["code"]):
            return {"done": second_factor_done()}
        return {"done": None}

    phone = site.phone("alice")
    site.login("alice")
    response = site.client.post("/custom-verify", data={"code": phone.generate(site.clock.now)})
    assert response.json == {"done": "alice"}
    assert site.client.get("/").json == {"user": "alice", "pending": None}
    assert site.logins == ["alice"]
    with site.app.test_request_context("/"), pytest.raises(RuntimeError, match="pending"):
        second_factor_done()


def test_store_failure_on_a_page_is_503(clock: FakeClock) -> None:
    """A store that fails during a page answers 503 and logs nobody in."""

    class FlakyStore(MemoryStore):
        """Works until told to fail."""

        broken = False

        def begin_attempt(self, *args: Any, **kwargs: Any) -> Any:
            if self.broken:
                raise ConnectionError("database unreachable")
            return super().begin_attempt(*args, **kwargs)

        def charge_and_mark(self, *args: Any, **kwargs: Any) -> Any:
            if self.broken:
                raise ConnectionError("database unreachable")
            return super().charge_and_mark(*args, **kwargs)

    store = FlakyStore()
    site = Site(TwoFactor(store, issuer="Example Co", clock=clock), clock)
    phone = site.phone("alice")
    site.login("alice")
    store.broken = True
    response = site.post("/2fa/verify", code=phone.generate(clock.now))
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert site.client.get("/").json == {"user": None, "pending": "alice"}


def test_templates_can_be_overridden(clock: FakeClock, tmp_path: Path) -> None:
    """An application's templates/totpcore/verify.html replaces the package's."""
    (tmp_path / "totpcore").mkdir()
    (tmp_path / "totpcore" / "verify.html").write_text("custom verify page", encoding="utf-8")
    site = Site(TwoFactor(MemoryStore(), issuer="Example Co", clock=clock), clock)
    site.app.template_folder = str(tmp_path)
    site.phone("alice")
    site.login("alice")
    assert text(site.client.get("/2fa/verify")) == "custom verify page"


def test_csrf_token_is_the_same_in_every_form(site: Site) -> None:
    """The pages' forms carry the token applications' templates get from totpcore_csrf_token()."""
    site.phone("alice")
    site.login("alice")
    page = text(site.client.get("/2fa/verify"))
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    assert match.group(1) == token(site.client)
    with site.app.test_request_context("/"):
        assert csrf_token() == csrf_token()


def test_helpers_need_the_blueprint() -> None:
    """Without a registered blueprint the session helpers say what is missing."""
    app = flask.Flask(__name__)
    app.secret_key = "x"
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="blueprint"):
        begin_second_factor("alice")


def test_status_list(site: Site) -> None:
    """The admin status list keeps the order it was given."""
    site.service.enable_many(["b", "a"])
    site.phone("c")
    assert status_list(site.service, ["c", "b", "x"]) == [
        ("c", Status.ACTIVE),
        ("b", Status.SETUP_PENDING),
        ("x", Status.DISABLED),
    ]


# --- dependencies ---------------------------------------------------------------------------


def test_missing_flask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the adapter without Flask raises MissingDependencyError naming the extra."""
    monkeypatch.setitem(sys.modules, "flask", None)
    monkeypatch.delitem(sys.modules, "totpcore.web.flask")
    with pytest.raises(MissingDependencyError, match=r"pip install 'totpcore\[flask\]'"):
        importlib.import_module("totpcore.web.flask")


def test_blueprint_without_segno_names_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages draw QR codes, so the blueprint asks for segno up front, not on first setup."""
    monkeypatch.setitem(sys.modules, "segno", None)
    with pytest.raises(MissingDependencyError, match=r"totpcore\[flask,qr\]"):
        blueprint(TwoFactor(MemoryStore(), issuer="Example Co"))


def test_core_never_imports_flask() -> None:
    """The package, its service and the framework-free web modules load without Flask."""
    script = (
        "import sys, totpcore, totpcore.web, totpcore.web.wsgi; totpcore.TwoFactor; "
        "sys.exit('flask' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 0
