"""FastAPI: a dependency that requires the two-factor header, and the handler that answers.

::

    from fastapi import Depends, FastAPI
    from totpcore.web.fastapi import install, require_otp

    app = FastAPI()
    install(app)
    otp = require_otp(service, user_id=lambda request: request.session.get("user_id"))

    @app.get("/orders", dependencies=[Depends(otp)])
    async def orders() -> list[str]: ...

Needs the ``fastapi`` extra (``pip install 'totpcore[fastapi]'``), loaded when first used:
importing this module alone loads neither FastAPI nor Starlette.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from totpcore.errors import MissingDependencyError
from totpcore.web import (
    DEFAULT_HEADER,
    AsyncVerifier,
    HTTPAnswer,
    Verifier,
    check_header_name,
    check_request,
    check_request_async,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["OTPRefused", "install", "otp_exception_handler", "require_otp"]

_INSTALL = "the FastAPI integration needs FastAPI: pip install 'totpcore[fastapi]'"


class OTPRefused(Exception):  # noqa: N818 - a refusal, not an error of the program
    """Raised by the :func:`require_otp` dependency when a request is refused.

    :func:`install` registers :func:`otp_exception_handler`, which answers it.

    Attributes:
        answer: The :class:`~totpcore.web.HTTPAnswer` to send (its ``status`` is set).
    """

    def __init__(self, answer: HTTPAnswer) -> None:
        super().__init__(f"two-factor check refused the request ({answer.status})")
        self.answer = answer


def _starlette() -> tuple[type[Request], type[Response]]:
    """Import Starlette's request and response classes, or explain how to install them."""
    try:
        import fastapi  # noqa: F401 - the extra is fastapi; starlette comes with it
        from starlette.requests import Request
        from starlette.responses import Response
    except ImportError as error:
        raise MissingDependencyError(_INSTALL) from error
    return Request, Response


def require_otp(
    service: AsyncVerifier | Verifier,
    *,
    user_id: Callable[[Request], str | Awaitable[str | None] | None],
    header: str = DEFAULT_HEADER,
) -> Callable[[Request], Awaitable[None]]:
    """Build a FastAPI dependency that requires the two-factor header.

    The dependency names the user with ``user_id``; ``None`` lets the request through (not
    this dependency's business). Otherwise it checks the header with ``verify_request`` and
    returns when the request may go on (accepted, or the user has no second factor), or
    raises :class:`OTPRefused` with the :func:`~totpcore.web.http_answer` for it. A store
    failure is refused 503; any other exception propagates.

    Args:
        service: An :class:`~totpcore.AsyncTwoFactor`; a :class:`~totpcore.TwoFactor` also
            works and is called in Starlette's thread pool, off the event loop.
        user_id: Names the authenticated user from the :class:`~starlette.requests.Request`,
            returning the id or an awaitable of it.
        header: The request header carrying the code (any case).

    Returns:
        The dependency, for ``Depends(...)``.

    Raises:
        MissingDependencyError: FastAPI is not installed.
        ValueError: ``header`` is not a header name.
    """
    request_class, _ = _starlette()
    from starlette.concurrency import run_in_threadpool

    name = check_header_name(header)
    is_async = inspect.iscoroutinefunction(getattr(service, "verify_request", None))

    async def dependency(request: Request) -> None:
        user = user_id(request)
        if not (user is None or isinstance(user, str)):
            user = await user
        if user is None:
            return
        values = request.headers.getlist(name)
        # Repeated headers are joined, as WSGI servers do: the result is no code at all.
        value = ",".join(values) if values else None
        if is_async:
            answer = await check_request_async(
                cast("AsyncVerifier", service), user, value, header=name
            )
        else:
            answer = await run_in_threadpool(
                check_request, cast("Verifier", service), user, value, header=name
            )
        if answer.status is not None:
            raise OTPRefused(answer)

    # FastAPI reads the parameter's type to inject the request; with postponed annotations it
    # would look "Request" up in this module, where Starlette is deliberately not imported.
    dependency.__annotations__ = {"request": request_class, "return": None}
    return dependency


def otp_exception_handler(request: Request, exc: Exception) -> Response:
    """Render an :class:`OTPRefused` as its answer: the same status, headers and JSON body.

    Args:
        request: The refused request (unused: the answer is already decided).
        exc: The :class:`OTPRefused` raised by the dependency.

    Returns:
        The response.

    Raises:
        MissingDependencyError: FastAPI is not installed.
        TypeError: ``exc`` is not an :class:`OTPRefused`.
    """
    _, response_class = _starlette()
    if not isinstance(exc, OTPRefused):
        raise TypeError("otp_exception_handler answers OTPRefused only")
    answer = exc.answer
    if answer.status is None:
        raise TypeError("an OTPRefused must carry a refusal, not a pass")
    return response_class(answer.body, status_code=answer.status, headers=dict(answer.headers))


def install(app: Starlette) -> None:
    """Register :func:`otp_exception_handler` for :class:`OTPRefused` on a FastAPI app.

    Args:
        app: The ``FastAPI`` (or Starlette) application.

    Raises:
        MissingDependencyError: FastAPI is not installed.
    """
    _starlette()
    app.add_exception_handler(OTPRefused, otp_exception_handler)
