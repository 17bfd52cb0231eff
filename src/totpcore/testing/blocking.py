"""Blocking: call an async service or store from synchronous test code.

One event loop runs in a background thread; each coroutine method of the wrapped object is
submitted to it and waited for. Calls from several threads therefore run as concurrent
coroutines on one loop, which is how a race between coroutines is provoked from a threaded
test harness.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Blocking"]


class Blocking:
    """A synchronous view of an object whose methods are coroutines.

    Coroutine methods become blocking calls; other attributes pass through, except ``store``
    (an :class:`~totpcore.AsyncTwoFactor`'s store), which is wrapped as well. Close it when
    done (it is also a context manager).

    Args:
        target: An :class:`~totpcore.AsyncTwoFactor`, an :class:`~totpcore.AsyncStore` or any
            object with coroutine methods.
        loop_owner: Another :class:`Blocking` whose event loop to share.
    """

    def __init__(self, target: Any, *, loop_owner: Blocking | None = None) -> None:
        self.target = target
        if loop_owner is None:
            self._loop = asyncio.new_event_loop()
            self._thread: threading.Thread | None = threading.Thread(
                target=self._loop.run_forever, name="totpcore-blocking", daemon=True
            )
            self._thread.start()
        else:
            self._loop, self._thread = loop_owner.loop, None

    def __repr__(self) -> str:
        return f"Blocking({self.target!r})"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the coroutines run on."""
        return self._loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.target, name)
        if name == "store":
            return Blocking(value, loop_owner=self)
        if inspect.iscoroutinefunction(value):
            return self._blocking(value)
        return value

    def _blocking(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(function(*args, **kwargs), self._loop).result()

        call.__name__ = getattr(function, "__name__", "call")
        call.__doc__ = function.__doc__
        return call

    def close(self) -> None:
        """Stop the event loop (when this object owns it)."""
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            self._thread = None

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
