"""WSGI middleware: require the two-factor header on every request of an enrolled user.

::

    from totpcore.web.wsgi import OTPMiddleware

    app = OTPMiddleware(app, service, user_id=lambda environ: environ.get("REMOTE_USER"))

Standard library only. For asyncio applications use :mod:`totpcore.web.asgi`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING

from totpcore.web import (
    DEFAULT_HEADER,
    Verifier,
    check_exempt,
    check_header_name,
    check_request,
    is_exempt,
)

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["OTPMiddleware"]


class OTPMiddleware:
    """Answer requests whose two-factor header is refused; pass the others to the app.

    For each request: an exempt path, or a request whose ``user_id`` is ``None``, goes
    straight to the application. Otherwise the header is checked with
    :meth:`~totpcore.TwoFactor.verify_request`, and the request either goes on (accepted, or
    the user has no second factor) or is answered as :func:`totpcore.web.http_answer` says,
    without calling the application. A store failure is answered 503; any other exception of
    the service or of ``user_id`` propagates (a programming error is never a pass).

    Args:
        app: The WSGI application to protect.
        service: A :class:`~totpcore.TwoFactor` (an async service is refused: use
            :class:`totpcore.web.asgi.OTPMiddleware`).
        user_id: Names the authenticated user of a request from its ``environ``; ``None``
            means the request is not this middleware's business (say, anonymous: the app's
            own authentication refuses it).
        exempt: Paths (``PATH_INFO``) that skip the check: an exact path, or a prefix when it
            ends with ``/``. Login must be exempt, or nobody could obtain a session.
        header: The request header carrying the code (any case; ``-`` and ``_`` alike, as
            WSGI servers merge them).

    Raises:
        TypeError: ``service`` is async, or ``exempt`` is a single string.
        ValueError: ``header`` is not a header name, or an exempt path lacks its ``/``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        service: Verifier,
        *,
        user_id: Callable[[WSGIEnvironment], str | None],
        exempt: Iterable[str] = ("/login",),
        header: str = DEFAULT_HEADER,
    ) -> None:
        if inspect.iscoroutinefunction(getattr(service, "verify_request", None)):
            raise TypeError("service is async: use totpcore.web.asgi.OTPMiddleware with it")
        self.app = app
        self.service = service
        self.user_id = user_id
        self.exempt = check_exempt(exempt)
        self.header = check_header_name(header)
        # The CGI name a WSGI server files the header under: HTTP_ + upper case, "-" -> "_".
        self._key = "HTTP_" + self.header.upper().replace("-", "_")

    def __repr__(self) -> str:
        return f"OTPMiddleware({self.app!r}, {self.service!r}, header={self.header!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Check the request, then call the application or answer it."""
        if is_exempt(environ.get("PATH_INFO", ""), self.exempt):
            return self.app(environ, start_response)
        user = self.user_id(environ)
        if user is None:
            return self.app(environ, start_response)
        answer = check_request(self.service, user, environ.get(self._key), header=self.header)
        if answer.status is None:
            return self.app(environ, start_response)
        status = HTTPStatus(answer.status)
        start_response(
            f"{status.value} {status.phrase}",
            [*answer.headers, ("Content-Length", str(len(answer.body)))],
        )
        return [answer.body]
