"""Two-factor checks for web applications: one HTTP answer for every outcome.

API clients send the current code in a request header (``otp`` by default). Every adapter in
this package (WSGI, ASGI, FastAPI and Flask) reads that header, asks the service's
:meth:`~totpcore.TwoFactor.verify_request`, and turns the outcome into an HTTP answer through
the one decision function here, :func:`http_answer`, so the adapters cannot disagree on a
status code, a header or a message.

This package, :mod:`totpcore.web.wsgi` and :mod:`totpcore.web.asgi` use only the standard
library; :mod:`totpcore.web.fastapi` and :mod:`totpcore.web.flask` load their framework when
first used.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from totpcore._core import MAX_CODE_LENGTH
from totpcore._core.verdicts import MALFORMED
from totpcore.errors import StoreError
from totpcore.verdict import Reason, Verdict

__all__ = [
    "DEFAULT_HEADER",
    "MAX_CODE_LENGTH",
    "STORE_RETRY_AFTER",
    "AsyncVerifier",
    "HTTPAnswer",
    "Verifier",
    "check_exempt",
    "check_header",
    "check_header_name",
    "check_request",
    "check_request_async",
    "http_answer",
    "is_exempt",
]

#: The request header API clients send the code in.
DEFAULT_HEADER = "otp"
#: Seconds a client is asked to wait after a store failure (503).
STORE_RETRY_AFTER = 5

_log = logging.getLogger("totpcore.web")

# Characters RFC 9110 allows in a header name (a "token").
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Verifier(Protocol):
    """What the WSGI and Flask adapters need of a service: :class:`~totpcore.TwoFactor` fits."""

    def verify_request(self, user_id: str, code: str) -> Verdict:
        """Check a code sent with an API request."""
        ...


class AsyncVerifier(Protocol):
    """What the ASGI and FastAPI adapters need: :class:`~totpcore.AsyncTwoFactor` fits."""

    async def verify_request(self, user_id: str, code: str) -> Verdict:
        """Check a code sent with an API request."""
        ...


@dataclass(frozen=True, slots=True)
class HTTPAnswer:
    """What to do with a request once its two-factor header was checked.

    Attributes:
        status: The HTTP status to answer with, or ``None`` to pass the request on to the
            application.
        headers: Response headers as ``(name, value)`` pairs (no ``Content-Length``: each
            server adapter adds its own).
        body: The response body, JSON ``{"error": ..., "message": ...}``; empty on a pass.
    """

    status: int | None
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def passes(self) -> bool:
        """Whether the request goes on to the application."""
        return self.status is None


_PASS = HTTPAnswer(None, (), b"")

# The wording API clients see. Wrong, replayed, malformed and missing codes share one code and
# one message: telling a replay apart would confirm to an eavesdropper that the code was right.
_INVALID = ("invalid_otp", "A valid one-time code is required in the {header!r} header.")
_THROTTLED = ("otp_throttled", "Too many attempts. Please wait and try again.")
_LOCKED = ("otp_locked", "Too many attempts. Contact your administrator.")
_SETUP = ("otp_setup_required", "Two-factor setup must be completed before using the API.")
_UNAVAILABLE = (
    "otp_unavailable",
    "Two-factor verification is temporarily unavailable. Please try again later.",
)


def _refusal(status: int, error: tuple[str, str], *extra: tuple[str, str]) -> HTTPAnswer:
    """A JSON refusal; never cached, as it answers one request of one user."""
    code, message = error
    body = json.dumps({"error": code, "message": message}, separators=(",", ":"))
    headers = (("Content-Type", "application/json"), ("Cache-Control", "no-store"), *extra)
    return HTTPAnswer(status, headers, body.encode("ascii"))


# Built once: a refusal is on the path of every guess, and these never change.
_STORE_FAILED = _refusal(503, _UNAVAILABLE, ("Retry-After", str(STORE_RETRY_AFTER)))
_LOCKED_ANSWER = _refusal(403, _LOCKED)
_SETUP_ANSWER = _refusal(403, _SETUP)


@functools.lru_cache(maxsize=32)
def _invalid_answer(header: str) -> HTTPAnswer:
    """The 401 for codes read from ``header``; one per header name an application uses."""
    name = check_header_name(header)
    code, message = _INVALID
    return _refusal(
        401, (code, message.format(header=name)), ("WWW-Authenticate", f'OTP header="{name}"')
    )


@functools.lru_cache(maxsize=64)
def _throttled_answer(retry_after: str) -> HTTPAnswer:
    """The 429 asking to wait ``retry_after`` whole seconds."""
    return _refusal(429, _THROTTLED, ("Retry-After", retry_after))


def _retry_after(seconds: float | None) -> str:
    """Whole seconds, rounded up and at least 1: an early retry would only be refused again."""
    if seconds is None or not math.isfinite(seconds):
        return "1"
    return str(max(1, math.ceil(seconds)))


def http_answer(outcome: Verdict | StoreError, *, header: str = DEFAULT_HEADER) -> HTTPAnswer:
    """The HTTP answer to a verdict of :meth:`~totpcore.TwoFactor.verify_request`.

    ========================================  ======  ====================================
    outcome                                   status  error code, extra headers
    ========================================  ======  ====================================
    ``ACCEPTED``, ``NOT_ENABLED``             pass    (two-factor is per user)
    ``INVALID``, ``REPLAYED``, ``MALFORMED``  401     ``invalid_otp``, ``WWW-Authenticate``
    ``THROTTLED``                             429     ``otp_throttled``, ``Retry-After``
    ``LOCKED``                                403     ``otp_locked``
    ``SETUP_REQUIRED``                        403     ``otp_setup_required``
    :class:`~totpcore.StoreError`             503     ``otp_unavailable``, ``Retry-After``
    ========================================  ======  ====================================

    Every refusal carries ``Content-Type: application/json`` and ``Cache-Control: no-store``.
    ``Retry-After`` is in whole seconds, rounded up, at least 1.

    Args:
        outcome: The service's verdict, or the store failure it raised.
        header: The request header the code is read from, named in the 401 answer.

    Returns:
        The answer; its ``status`` is ``None`` when the request may go on.

    Raises:
        TypeError: ``outcome`` is neither a :class:`~totpcore.Verdict` nor a
            :class:`~totpcore.StoreError` (say, an un-awaited coroutine): never a pass.
        ValueError: ``header`` is not an HTTP header name.
    """
    if isinstance(outcome, StoreError):
        # Fail closed: without the store nothing can be checked, and nothing is let through.
        return _STORE_FAILED
    if not isinstance(outcome, Verdict):
        raise TypeError(f"outcome must be a Verdict or a StoreError, not {type(outcome).__name__}")
    reason = outcome.reason
    if reason is Reason.ACCEPTED or reason is Reason.NOT_ENABLED:
        return _PASS
    if reason is Reason.THROTTLED:
        return _throttled_answer(_retry_after(outcome.retry_after))
    if reason is Reason.LOCKED:
        return _LOCKED_ANSWER
    if reason is Reason.SETUP_REQUIRED:
        return _SETUP_ANSWER
    # INVALID, REPLAYED and MALFORMED, and any reason a later version adds: refuse.
    return _invalid_answer(header)


def check_header(value: str | None) -> str | Verdict:
    """The code to verify from a raw header value, or the verdict to answer at once.

    A missing header becomes the empty code, which the service answers ``MALFORMED`` for an
    enrolled user and ``NOT_ENABLED`` or ``SETUP_REQUIRED`` otherwise: two-factor is per user,
    so users without it need not send the header. A value longer than
    :data:`MAX_CODE_LENGTH` characters is ``MALFORMED`` before any work, without a store call,
    so oversized headers cost nothing.

    Args:
        value: The header's value, or ``None`` when the request has none.

    Returns:
        The code to pass to ``verify_request``, or a ``MALFORMED`` verdict.
    """
    if value is None:
        return ""
    if len(value) > MAX_CODE_LENGTH:
        return MALFORMED
    # Servers usually strip optional whitespace around a header value; not all do.
    return value.strip(" \t")


def check_header_name(header: str) -> str:
    """Validate a request header name; return it in lower case.

    Raises:
        TypeError: ``header`` is not a str.
        ValueError: ``header`` is empty or not an HTTP token.
    """
    if not isinstance(header, str):
        raise TypeError(f"header must be a str, not {type(header).__name__}")
    if not header or not set(header) <= _TOKEN:
        raise ValueError(f"header must be an HTTP header name, not {header!r}")
    return header.lower()


def check_exempt(exempt: Iterable[str]) -> tuple[str, ...]:
    """Validate exempt paths: each starts with ``/``; a single string is refused.

    Raises:
        TypeError: ``exempt`` is a str (a tuple of one was surely meant) or holds a non-str.
        ValueError: a path does not start with ``/``.
    """
    if isinstance(exempt, str):
        raise TypeError(f"exempt must be a collection of paths, e.g. ({exempt!r},)")
    paths = tuple(exempt)
    for path in paths:
        if not isinstance(path, str):
            raise TypeError(f"exempt paths must be str, not {type(path).__name__}")
        if not path.startswith("/"):
            raise ValueError(f"exempt paths start with '/': {path!r}")
    return paths


def is_exempt(path: str, exempt: Iterable[str]) -> bool:
    """Whether a request path skips the two-factor check.

    An exempt entry matches the same path exactly, or, when it ends with ``/``, every path
    under it. A path with ``.`` or ``..`` segments is never exempt: a router that resolves
    them could serve ``/public/../admin`` as ``/admin``, so such a path is checked (fail
    closed).

    Args:
        path: The request path, already percent-decoded (WSGI ``PATH_INFO``, ASGI ``path``).
        exempt: Paths as given to the middleware.
    """
    if "/." in path and any(part in {".", ".."} for part in path.split("/")):
        return False
    return any(
        path == entry or (entry.endswith("/") and path.startswith(entry)) for entry in exempt
    )


def check_request(
    service: Verifier, user_id: str, value: str | None, *, header: str = DEFAULT_HEADER
) -> HTTPAnswer:
    """Check one request's header with a sync service and answer it.

    Args:
        service: A :class:`~totpcore.TwoFactor`, or anything with its ``verify_request``.
        user_id: The authenticated user.
        value: The raw header value, or ``None`` when missing.
        header: The header's name, for the 401 answer.

    Returns:
        The answer (``status is None``: let the request through).

    Raises:
        Exception: anything the service raises other than :class:`~totpcore.StoreError`
            (a programming error, such as a malformed ``user_id``), never a pass.
    """
    code = check_header(value)
    if isinstance(code, Verdict):
        return http_answer(code, header=header)
    try:
        verdict = service.verify_request(user_id, code)
    except StoreError as error:
        _log.warning("two-factor check failed closed: %s", error)
        return http_answer(error, header=header)
    return http_answer(verdict, header=header)


async def check_request_async(
    service: AsyncVerifier, user_id: str, value: str | None, *, header: str = DEFAULT_HEADER
) -> HTTPAnswer:
    """Check one request's header with an async service and answer it.

    As :func:`check_request`, for :class:`~totpcore.AsyncTwoFactor`.
    """
    code = check_header(value)
    if isinstance(code, Verdict):
        return http_answer(code, header=header)
    try:
        verdict = await service.verify_request(user_id, code)
    except StoreError as error:
        _log.warning("two-factor check failed closed: %s", error)
        return http_answer(error, header=header)
    return http_answer(verdict, header=header)
