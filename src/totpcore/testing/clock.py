"""FakeClock: an injectable clock that tests move by hand."""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A clock for ``TwoFactor(..., clock=FakeClock())``: Unix seconds that move only when told.

    Thread-safe: several threads of one test may read and move it.

    Args:
        now: The starting time, in Unix seconds (default: 10 s into a 30-second step of
            November 2023, so small moves stay inside one step).
    """

    def __init__(self, now: float = 1_700_000_010.0) -> None:
        self._lock = threading.Lock()
        self.now = float(now)

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now

    def __repr__(self) -> str:
        return f"FakeClock({self.now!r})"

    def advance(self, seconds: float) -> float:
        """Move the clock by ``seconds`` (negative: a step back, as NTP may do); return it."""
        with self._lock:
            self.now += seconds
            return self.now

    def set(self, now: float) -> None:
        """Jump to ``now``."""
        with self._lock:
            self.now = float(now)
