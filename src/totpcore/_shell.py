"""What both service shells share: one mapping of backend failures, one test of store kind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from totpcore.errors import StoreError, TotpcoreError

__all__ = ["is_async_store", "store_errors", "store_failure"]


def store_failure(action: str, error: Exception) -> StoreError:
    """The one mapping of a backend exception to StoreError, for both shells.

    Only the exception's type is named: backend messages can quote data (a secret, a row).
    """
    return StoreError(f"the store failed during {action} ({type(error).__name__})")


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Raise any non-totpcore exception of the block as :func:`store_failure`."""
    try:
        yield
    except TotpcoreError:
        raise
    except Exception as error:
        raise store_failure(action, error) from error


def is_async_store(store: object) -> bool:
    """Whether ``store``'s operations are coroutines (an :class:`AsyncStore`).

    The two protocols have the same method names, so ``isinstance`` alone cannot tell them
    apart; the shells use this to refuse the wrong kind at construction.
    """
    import inspect

    return inspect.iscoroutinefunction(getattr(store, "begin_attempt", None))
