"""ASGI 3 middleware: require the two-factor header on every HTTP request of an enrolled user.

::

    from totpcore.web.asgi import OTPMiddleware

    app = OTPMiddleware(app, service, user_id=lambda scope: scope.get("user_id"))

Standard library only; works under any ASGI 3 server (uvicorn, hypercorn, daphne) and around
any ASGI application (Starlette, FastAPI, Django's ASGI handler).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from totpcore.web import (
    DEFAULT_HEADER,
    AsyncVerifier,
    check_exempt,
    check_header_name,
    check_request_async,
    is_exempt,
)

__all__ = ["ASGIApp", "Message", "OTPMiddleware", "Receive", "Scope", "Send", "UserIdOfScope"]

#: An ASGI connection scope.
Scope = MutableMapping[str, Any]
#: An ASGI event.
Message = MutableMapping[str, Any]
#: The ASGI ``receive`` callable.
Receive = Callable[[], Awaitable[Message]]
#: The ASGI ``send`` callable.
Send = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Names the authenticated user of a scope, directly or as an awaitable.
UserIdOfScope = Callable[[Scope], str | Awaitable[str | None] | None]


class OTPMiddleware:
    """Answer HTTP requests whose two-factor header is refused; pass the others to the app.

    For each ``http`` request: an exempt path, or a request whose ``user_id`` is ``None``,
    goes straight to the application. Otherwise the header is checked with
    :meth:`~totpcore.AsyncTwoFactor.verify_request`, and the request either goes on
    (accepted, or the user has no second factor) or is answered as
    :func:`totpcore.web.http_answer` says, without calling the application. A store failure
    is answered 503; any other exception propagates (never a pass).

    ``lifespan`` and ``websocket`` scopes pass through unchecked: a websocket endpoint that
    needs a second factor must check it itself (e.g. with
    :func:`totpcore.web.check_request_async` before accepting).

    Args:
        app: The ASGI 3 application to protect.
        service: An :class:`~totpcore.AsyncTwoFactor` (a sync service is refused: it would
            block the event loop).
        user_id: Names the authenticated user from the ``scope``, returning the id or an
            awaitable of it; ``None`` means the request is not this middleware's business.
            Put it after the authentication middleware that fills the scope.
        exempt: Paths (``scope["path"]``) that skip the check: an exact path, or a prefix when
            it ends with ``/``. Login must be exempt, or nobody could obtain a session.
        header: The request header carrying the code (any case).

    Raises:
        TypeError: ``service`` is not async, or ``exempt`` is a single string.
        ValueError: ``header`` is not a header name, or an exempt path lacks its ``/``.
    """

    def __init__(
        self,
        app: ASGIApp,
        service: AsyncVerifier,
        *,
        user_id: UserIdOfScope,
        exempt: Iterable[str] = ("/login",),
        header: str = DEFAULT_HEADER,
    ) -> None:
        if not inspect.iscoroutinefunction(getattr(service, "verify_request", None)):
            raise TypeError(
                "service is not async: use AsyncTwoFactor, or totpcore.web.wsgi with TwoFactor"
            )
        self.app = app
        self.service = service
        self.user_id = user_id
        self.exempt = check_exempt(exempt)
        self.header = check_header_name(header)
        self._key = self.header.encode("ascii")

    def __repr__(self) -> str:
        return f"OTPMiddleware({self.app!r}, {self.service!r}, header={self.header!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check an HTTP request, then call the application or answer it."""
        if scope["type"] != "http" or is_exempt(scope.get("path", ""), self.exempt):
            await self.app(scope, receive, send)
            return
        user = self.user_id(scope)
        if not (user is None or isinstance(user, str)):
            user = await user  # an async user_id (say, a session looked up in a database)
        if user is None:
            await self.app(scope, receive, send)
            return
        answer = await check_request_async(
            self.service, user, self._header_value(scope), header=self.header
        )
        if answer.status is None:
            await self.app(scope, receive, send)
            return
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in answer.headers
        ]
        headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _header_value(self, scope: Scope) -> str | None:
        """The header's value, or ``None``; repeated headers are joined, as WSGI servers do.

        Header names in an ASGI scope are lower case bytes; values are decoded as Latin-1,
        which maps every byte to one character (a non-ASCII code is then MALFORMED).
        """
        values = [value for name, value in scope.get("headers", ()) if name == self._key]
        if not values:
            return None
        return b",".join(values).decode("latin-1")
