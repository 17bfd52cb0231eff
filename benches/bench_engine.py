"""Engine benchmark: totpcore against pyotp, cryptography and a bare-stdlib floor.

Run from a checkout with the test extra installed::

    python benches/bench_engine.py            # default: 31 rounds
    python benches/bench_engine.py --rounds 51 --json

Everything runs in one process. Each round times every contender once (timeit, same iteration
count), in an order that rotates from round to round so that no contender always runs first or
last; each round's times are divided by the floor's time in that same round, and the table
reports the median of those per-round ratios. Ratios are what carry over between machines;
the absolute figures are printed only for scale.

The floor is what a careful hand-written verifier costs with nothing but the standard library:
HMAC pad states precomputed once, and per candidate two hash copies, the truncation and an
integer compare. It has no input validation at all, so it is a lower bound, not a competitor
(``totpcore._bench.floor_functions``, which ``totpcore bench`` uses too).

Verify is timed with a wrong code (every contender does its full work) and with a correct one
(the current step's code, refreshed before each round): the floor computes the whole window
either way, so the correct-code ratio shows what a match costs the engine on top (building its
``Match``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from _harness import Timing, interleaved, table

import totpcore
from totpcore._bench import floor_functions, wrong_code

KEY = bytes(range(20))
SECRET = totpcore.encode_secret(KEY)
PERIOD = 30
#: The current step's code, shared by the correct-code contenders and refreshed every round.
CORRECT = [""]


def contenders() -> dict[str, dict[str, Callable[[], Any]]]:
    """Return the timed callables, grouped by operation; each group's first entry is its floor."""
    import pyotp
    from cryptography.hazmat.primitives.hashes import SHA1
    from cryptography.hazmat.primitives.twofactor import InvalidToken
    from cryptography.hazmat.primitives.twofactor import totp as crypto_totp

    engine = totpcore.TOTP(KEY)
    reference = pyotp.TOTP(SECRET)
    crypto = crypto_totp.TOTP(KEY, 6, SHA1(), PERIOD, enforce_key_length=False)
    floor_verify, floor_generate = floor_functions(KEY, PERIOD)
    now = int(time.time())
    # A code that matches no step in the window, so every contender does its full work.
    wrong = wrong_code(engine, now)
    wrong_bytes = wrong.encode()
    # The current step's code, refreshed before each round (see main).
    correct = CORRECT
    correct[0] = engine.now()

    def crypto_window_verify(code: bytes) -> bool:
        # cryptography checks one step; a ±1 window is three calls.
        at = int(time.time())
        for delta in (-PERIOD, 0, PERIOD):
            try:
                crypto.verify(code, at + delta)
            except InvalidToken:
                continue
            return True
        return False

    return {
        "verify (wrong code, window ±1)": {
            "stdlib floor": lambda: floor_verify(wrong),
            "totpcore TOTP.verify": lambda: engine.verify(wrong),
            "pyotp TOTP.verify(valid_window=1)": lambda: reference.verify(wrong, valid_window=1),
            "cryptography TOTP.verify x3": lambda: crypto_window_verify(wrong_bytes),
        },
        "verify (correct code, window ±1)": {
            "stdlib floor": lambda: floor_verify(correct[0]),
            "totpcore TOTP.verify": lambda: engine.verify(correct[0]),
            "pyotp TOTP.verify(valid_window=1)": lambda: reference.verify(
                correct[0], valid_window=1
            ),
            "cryptography TOTP.verify x3": lambda: crypto_window_verify(correct[0].encode()),
        },
        "generate": {
            "stdlib floor": lambda: floor_generate(now),
            "totpcore TOTP.generate": lambda: engine.generate(now),
            "pyotp TOTP.at": lambda: reference.at(now),
            "cryptography TOTP.generate": lambda: crypto.generate(now),
        },
    }


def measure(rounds: int, number: int) -> dict[str, dict[str, Timing]]:
    """Time every group; per contender, the median ratio to the floor and the ns per call."""
    groups = contenders()
    engine = totpcore.TOTP(KEY)

    def refresh() -> None:
        # A code stays correct for at least 30 s after its step began (window ±1); a round
        # takes well under that.
        CORRECT[0] = engine.now()

    return {
        group: interleaved(functions, rounds=rounds, number=number, before_round=refresh)
        for group, functions in groups.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--number", type=int, default=5000, help="calls per contender per round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = measure(args.rounds, args.number)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds x {args.number} calls\n")
    print(table(results, floor_label="floor"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
