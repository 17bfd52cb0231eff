"""Flask integration: the otp-header API decorator, the half-login session and the 2FA pages.

::

    from totpcore.web.flask import begin_second_factor, blueprint, otp_required

    app.register_blueprint(blueprint(service))  # /2fa/setup, /2fa/verify, ...

    @app.post("/login")
    def login():
        if password_ok(form["user"], form["password"]):
            return begin_second_factor(form["user"])  # to setup, to verify, or logged in

    @app.get("/api/data")
    @otp_required(service, user_id=basic_auth_user)
    def data(): ...

**Half login.** After the password check, :func:`begin_second_factor` marks the user as
*pending* in :data:`flask.session` and redirects to the setup page (two-factor enabled but not
set up) or the verify page (set up); a user without two-factor is logged in at once. The pages
call :func:`second_factor_done` once a code is accepted: the user is then *logged in*
(:func:`current_user_id`), and the blueprint's ``on_login`` callback runs (say, Flask-Login's
``login_user``). A pending marker expires after ``pending_seconds``.

**Pages.** :func:`blueprint` serves ``setup`` (QR code inline as SVG, the key grouped in fours,
``Cache-Control: no-store``; only while the user is SETUP_PENDING, so the secret is never shown
again once set up; a confirmed code shows the recovery codes once), ``verify`` (an OTP or a
recovery code), ``recovery_codes`` (a new set, after a fresh code) and ``troubleshooting``
(phone time, server time, resync from two consecutive codes). Their Jinja templates live in
``totpcore/`` of this package's ``templates`` folder; an application overrides any of them,
``totpcore/base.html`` included, by putting a file of the same name in its own ``templates``
folder, which Flask searches first.

**CSRF.** Flask has no CSRF protection of its own. Every form of the pages carries a
per-session token (:func:`csrf_token`, ``totpcore_csrf_token()`` in any template) that
:func:`check_csrf` compares in constant time; the blueprint checks it before each of its POST
views, and an application can run it before its own (``app.before_request(check_csrf)``).

**Admin actions** are the service's own methods, already one call each:
:meth:`~totpcore.TwoFactor.enable`, :meth:`~totpcore.TwoFactor.enable_many` (enable all),
:meth:`~totpcore.TwoFactor.reset`, :meth:`~totpcore.TwoFactor.unlock` and
:meth:`~totpcore.TwoFactor.disable`; :func:`status_list` lists the statuses of many users.

The session is Flask's: signed (not encrypted) cookies by default. It only ever holds user ids,
a time and the CSRF token, never a secret or a recovery code.
"""

from __future__ import annotations

import functools
import hmac
import importlib.util
import secrets
import textwrap
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec

from totpcore.errors import MissingDependencyError, StoreError, UserStateError
from totpcore.service import TwoFactor
from totpcore.stores.protocol import Status
from totpcore.verdict import Reason, Verdict
from totpcore.web import DEFAULT_HEADER, Verifier, check_header_name, check_request, http_answer

try:
    import flask
    from flask.blueprints import BlueprintSetupState
    from flask.typing import ResponseReturnValue
    from markupsafe import Markup
    from werkzeug.wrappers import Response
except ImportError as error:
    raise MissingDependencyError(
        "totpcore.web.flask needs Flask: pip install 'totpcore[flask]'"
    ) from error

__all__ = [
    "CSRF_FIELD",
    "PENDING_SECONDS",
    "begin_second_factor",
    "blueprint",
    "check_csrf",
    "csrf_token",
    "current_user_id",
    "logout",
    "otp_required",
    "otp_user_id",
    "pending_user_id",
    "second_factor_done",
    "status_list",
]

_P = ParamSpec("_P")

#: The form field the CSRF token travels in.
CSRF_FIELD = "csrf_token"
#: Default lifetime of a half login, in seconds: long enough to install an authenticator app.
PENDING_SECONDS = 15 * 60.0

# Session keys, prefixed so they cannot collide with the application's own.
_PENDING = "totpcore.pending"
_USER = "totpcore.user"
_CSRF = "totpcore.csrf"
_EXTENSION = "totpcore"
# g attribute holding the user otp_required verified during this request.
_VERIFIED = "totpcore_otp_user"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True, slots=True)
class _Config:
    """What the session helpers need from the registered blueprint."""

    service: TwoFactor
    name: str
    on_login: Callable[[str], Any] | None
    home: str
    login_url: str
    pending_seconds: float


def _config() -> _Config:
    """The registered blueprint's settings, or a clear error when none is registered."""
    config = flask.current_app.extensions.get(_EXTENSION)
    if not isinstance(config, _Config):
        raise RuntimeError(
            "register totpcore.web.flask.blueprint(service) on the app before using the "
            "two-factor session helpers"
        )
    return config


# --- the API decorator ----------------------------------------------------------------------


def otp_required(
    service: Verifier,
    *,
    user_id: Callable[[], str | None],
    header: str = DEFAULT_HEADER,
) -> Callable[[Callable[_P, ResponseReturnValue]], Callable[_P, ResponseReturnValue]]:
    """Require a valid code in a request header for an API view.

    The view runs when :meth:`~totpcore.TwoFactor.verify_request` accepts the header's code,
    or when the user has no second factor (two-factor is per user). Otherwise the request is
    answered as :func:`totpcore.web.http_answer` says: 401 for a missing, wrong, replayed or
    malformed code, 429 with ``Retry-After`` when throttled, 403 when locked or when setup is
    not finished, 503 when the store fails (never a pass). Inside the view,
    :func:`otp_user_id` names the user that was checked.

    Args:
        service: A :class:`~totpcore.TwoFactor` (anything with its ``verify_request``).
        user_id: Returns the user the request authenticated as by its primary credentials
            (a session, HTTP Basic, a token). ``None`` lets the request through unchecked, as
            every adapter of :mod:`totpcore.web` does: the two-factor check is for
            authenticated users, and refusing anonymous ones is the application's
            authentication's job. The simplest way to do both is to refuse inside ``user_id``:
            :func:`flask.abort` with a 401 and your challenge (``WWW-Authenticate: Basic``).
        header: The request header that carries the code.

    Returns:
        A decorator for Flask view functions.

    Raises:
        ValueError: ``header`` is not an HTTP header name.
    """
    name = check_header_name(header)

    def decorate(view: Callable[_P, ResponseReturnValue]) -> Callable[_P, ResponseReturnValue]:
        @functools.wraps(view)
        def checked(*args: _P.args, **kwargs: _P.kwargs) -> ResponseReturnValue:
            user = user_id()
            if user is None:
                return view(*args, **kwargs)
            answer = check_request(service, user, flask.request.headers.get(name), header=name)
            if answer.status is not None:
                return Response(answer.body, answer.status, list(answer.headers))
            setattr(flask.g, _VERIFIED, user)
            return view(*args, **kwargs)

        return checked

    return decorate


def otp_user_id() -> str | None:
    """The user whose header :func:`otp_required` accepted in this request, if any."""
    user = getattr(flask.g, _VERIFIED, None)
    return user if isinstance(user, str) else None


# --- the half-login session -----------------------------------------------------------------


def begin_second_factor(user_id: str) -> Response:
    """Start the second factor for a user whose password was just checked.

    Any earlier login of this session ends. The user is stored as pending and sent to the
    setup page (SETUP_PENDING) or the verify page (ACTIVE); a user without two-factor is
    logged in at once (as :func:`second_factor_done`) and sent to the blueprint's ``home``.

    Args:
        user_id: The user, as the service knows them.

    Returns:
        The redirect to answer the login form with.

    Raises:
        StoreError: the store failed; nobody is logged in.
        RuntimeError: no :func:`blueprint` is registered on the application.
    """
    config = _config()
    status = config.service.status(user_id)
    flask.session.pop(_USER, None)
    flask.session.pop(_PENDING, None)
    if status is Status.DISABLED:
        _log_in(config, user_id)
        return flask.redirect(config.home)
    flask.session[_PENDING] = {"user": user_id, "since": time.time()}
    page = "setup" if status is Status.SETUP_PENDING else "verify"
    return flask.redirect(flask.url_for(f"{config.name}.{page}"))


def second_factor_done() -> str:
    """Complete the login of the pending user; returns their id.

    The user becomes :func:`current_user_id`, the pending marker is cleared, and the
    blueprint's ``on_login`` runs. Nothing else in the session changes.

    Raises:
        RuntimeError: no second factor is pending in this session (or it expired).
    """
    config = _config()
    user = pending_user_id()
    if user is None:
        raise RuntimeError("no second factor is pending in this session")
    _log_in(config, user)
    return user


def _log_in(config: _Config, user_id: str) -> None:
    """Mark the user logged in, forget the half login, and tell the application."""
    flask.session.pop(_PENDING, None)
    flask.session[_USER] = user_id
    if config.on_login is not None:
        config.on_login(user_id)


def pending_user_id() -> str | None:
    """The user between password and second factor in this session, unless expired."""
    pending = flask.session.get(_PENDING)
    if not isinstance(pending, dict):
        return None
    user, since = pending.get("user"), pending.get("since")
    if not isinstance(user, str) or not isinstance(since, int | float):
        return None
    age = time.time() - since
    # A half login is not kept for ever: a forgotten session must not skip the password later.
    if not 0 <= age <= _config().pending_seconds:
        flask.session.pop(_PENDING, None)
        return None
    return user


def current_user_id() -> str | None:
    """The user logged in by this session (password and, if enabled, second factor)."""
    user = flask.session.get(_USER)
    return user if isinstance(user, str) else None


def logout() -> None:
    """End this session's login and any half login (the CSRF token stays)."""
    flask.session.pop(_USER, None)
    flask.session.pop(_PENDING, None)


# --- CSRF -----------------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token, created on first use; put it in every form's ``csrf_token``."""
    token = flask.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        flask.session[_CSRF] = token
    return token


def check_csrf() -> None:
    """Refuse (400) a state-changing request whose form lacks this session's CSRF token.

    GET, HEAD, OPTIONS and TRACE pass. Usable as ``app.before_request(check_csrf)``; but then
    exempt API views that authenticate each request themselves, as they send no form.
    """
    if flask.request.method in _SAFE_METHODS:
        return
    expected = flask.session.get(_CSRF)
    sent = flask.request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(
        sent.encode("utf-8"), expected.encode("utf-8")
    ):
        flask.abort(400, description="The form has expired. Reload the page and try again.")


# --- admin ----------------------------------------------------------------------------------


def status_list(service: TwoFactor, user_ids: Iterable[str]) -> list[tuple[str, Status]]:
    """Each user's two-factor status, in the order given (for an admin page).

    Raises:
        StoreError: the store failed.
    """
    return [(user_id, service.status(user_id)) for user_id in user_ids]


# --- the pages ------------------------------------------------------------------------------


def blueprint(
    service: TwoFactor,
    *,
    on_login: Callable[[str], Any] | None = None,
    name: str = "totpcore",
    url_prefix: str = "/2fa",
    home: str = "/",
    login_url: str = "/login",
    account_name: Callable[[str], str] | None = None,
    pending_seconds: float = PENDING_SECONDS,
) -> flask.Blueprint:
    """The two-factor pages as a blueprint; register it once on the application.

    Args:
        service: The application's two-factor service.
        on_login: Called with the user id when a login completes (after the second factor,
            or at once for a user without one); its return value is ignored.
        name: The blueprint's name (endpoints are ``name.setup``, ``name.verify``, ...).
        url_prefix: Where the pages live.
        home: Where a completed login goes.
        login_url: Where a visitor without a pending login is sent.
        account_name: Maps a user id to the account name authenticator apps display
            (default: the user id).
        pending_seconds: How long a half login lasts.

    Returns:
        The blueprint, with the views ``setup``, ``verify``, ``recovery_codes`` and
        ``troubleshooting``.

    Raises:
        MissingDependencyError: segno, which draws the setup QR code, is not installed.
        ValueError: ``pending_seconds`` is not positive.
    """
    if not pending_seconds > 0:
        raise ValueError("pending_seconds must be positive")
    if importlib.util.find_spec("segno") is None:
        raise MissingDependencyError(
            "the setup page draws QR codes with segno: pip install 'totpcore[flask,qr]'"
        )
    bp = flask.Blueprint(name, __name__, url_prefix=url_prefix, template_folder="templates")

    def register(state: BlueprintSetupState) -> None:
        # state.name: the app may register the blueprint under another name than ``name``.
        state.app.extensions[_EXTENSION] = _Config(
            service, state.name, on_login, home, login_url, pending_seconds
        )

    bp.record_once(register)
    bp.before_request(check_csrf)
    bp.app_context_processor(lambda: {"totpcore_csrf_token": csrf_token})
    bp.register_error_handler(StoreError, _unavailable)
    _Pages(service, account_name or str, home, login_url).add_to(bp)
    return bp


class _Pages:
    """The views of :func:`blueprint`, sharing its service and settings."""

    def __init__(
        self, service: TwoFactor, account_name: Callable[[str], str], home: str, login_url: str
    ) -> None:
        self.service = service
        self.account_name = account_name
        self.home = home
        self.login_url = login_url

    def add_to(self, bp: flask.Blueprint) -> None:
        """Route the views on the blueprint."""
        for rule, view in (
            ("/setup", self.setup),
            ("/verify", self.verify),
            ("/recovery-codes", self.recovery_codes),
            ("/troubleshooting", self.troubleshooting),
        ):
            bp.add_url_rule(rule, view.__name__, view, methods=["GET", "POST"])

    def elsewhere(self) -> Response:
        """Where a visitor with no second factor pending goes: home if logged in, else login."""
        return flask.redirect(self.home if current_user_id() is not None else self.login_url)

    def route(self, user_id: str) -> Response:
        """Send a pending user where their current status belongs."""
        status = self.service.status(user_id)
        if status is Status.SETUP_PENDING:
            return flask.redirect(flask.url_for(".setup"))
        if status is Status.ACTIVE:
            return flask.redirect(flask.url_for(".verify"))
        _log_in(_config(), user_id)  # two-factor was disabled meanwhile: the password suffices
        return flask.redirect(self.home)

    def setup(self) -> ResponseReturnValue:
        """Show the secret and QR code while SETUP_PENDING; confirm with a code."""
        user = pending_user_id()
        if user is None:
            return self.elsewhere()
        message, status, headers = None, 200, dict[str, str]()
        if flask.request.method == "POST":
            verdict = self.service.complete_setup(user, _field("code"))
            if verdict:
                codes = self.service.new_recovery_codes(user)
                _log_in(_config(), user)
                return _page("recovery_codes.html", codes=codes, home=self.home, after_setup=True)
            message = verdict.message
            status, headers = _refused(verdict)
        try:
            # Only a SETUP_PENDING user gets the secret: once set up, it is never shown again.
            provisioning = self.service.begin_setup(user, account_name=self.account_name(user))
        except UserStateError:
            return self.route(user)
        return _page(
            "setup.html",
            status=status,
            headers=headers,
            message=message,
            qr_svg=Markup(provisioning.qr_svg()),  # noqa: S704 - drawn by segno, no user text
            secret=" ".join(textwrap.wrap(provisioning.secret, 4)),
            uri=provisioning.uri,
            issuer=provisioning.issuer,
            account=provisioning.account,
        )

    def verify(self) -> ResponseReturnValue:
        """Ask a set-up user for a code from their app, or a recovery code."""
        user = pending_user_id()
        if user is None:
            return self.elsewhere()
        if flask.request.method == "GET":
            if self.service.status(user) is not Status.ACTIVE:
                return self.route(user)
            return _page("verify.html")
        code = _field("code")
        if _looks_like_otp(code):
            verdict = self.service.verify(user, code)
        else:
            verdict = self.service.use_recovery_code(user, code)
        if verdict:
            _log_in(_config(), user)
            return flask.redirect(self.home)
        if verdict.reason in (Reason.SETUP_REQUIRED, Reason.NOT_ENABLED):
            return self.route(user)
        status, headers = _refused(verdict)
        return _page("verify.html", status=status, headers=headers, message=verdict.message)

    def recovery_codes(self) -> ResponseReturnValue:
        """Replace a logged-in user's recovery codes, after a fresh code from their app."""
        user = current_user_id()
        if user is None:
            return flask.redirect(self.login_url)
        active = self.service.status(user) is Status.ACTIVE
        if flask.request.method == "GET" or not active:
            return _page("recovery_codes.html", codes=None, active=active, home=self.home)
        # A stolen session alone must not mint codes that outlive it: ask the phone first.
        verdict = self.service.verify(user, _field("code"))
        if not verdict:
            status, headers = _refused(verdict)
            return _page(
                "recovery_codes.html",
                status=status,
                headers=headers,
                codes=None,
                active=True,
                home=self.home,
                message=verdict.message,
            )
        codes = self.service.new_recovery_codes(user)
        return _page("recovery_codes.html", codes=codes, active=True, home=self.home)

    def troubleshooting(self) -> ResponseReturnValue:
        """Explain phone time, show the server's, and resync from two consecutive codes."""
        user = pending_user_id() or current_user_id()
        message, status, headers, synced = None, 200, dict[str, str](), False
        if flask.request.method == "POST":
            if user is None:
                return flask.redirect(self.login_url)
            verdict = self.service.resync(user, _field("code1"), _field("code2"))
            synced = bool(verdict)
            if not verdict:
                message = verdict.message
                status, headers = _refused(verdict)
        can_resync = user is not None and self.service.status(user) is Status.ACTIVE
        return _page(
            "troubleshooting.html",
            status=status,
            headers=headers,
            message=message,
            synced=synced,
            can_resync=can_resync,
            pending=pending_user_id() is not None,
            home=self.home,
            server_time=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        )


def _page(
    template: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    """Render one of the package's pages; never cached, as each shows one user's secrets."""
    response = flask.make_response(flask.render_template(f"totpcore/{template}", **context))
    response.status_code = status
    response.headers.update(_NO_STORE)
    response.headers.update(headers or {})
    return response


def _field(name: str) -> str:
    """A form field, empty when missing (the service answers an empty code MALFORMED)."""
    return flask.request.form.get(name, "")


def _looks_like_otp(code: str) -> bool:
    """Whether a typed code is an authenticator code (6 to 8 digits) or a recovery code.

    Recovery codes are 12 characters, so the two never overlap.
    """
    compact = code.replace(" ", "")
    return compact.isascii() and compact.isdigit() and 6 <= len(compact) <= 8


def _refused(verdict: Verdict) -> tuple[int, dict[str, str]]:
    """The status and headers of a page answering a refused code.

    The API's answer decides (one mapping for every adapter), except that a wrong code on a
    form is a 400: its 401 asks for a header, which a browser cannot send.
    """
    answer = http_answer(verdict)
    if answer.status is None or answer.status == 401:
        return 400, {}
    return answer.status, {key: value for key, value in answer.headers if key == "Retry-After"}


def _unavailable(error: StoreError) -> Response:
    """A store failure on a page: 503, and nobody is let in (fail closed)."""
    answer = http_answer(error)
    retry = {key: value for key, value in answer.headers if key == "Retry-After"}
    return _page("unavailable.html", status=answer.status or 503, headers=retry)
