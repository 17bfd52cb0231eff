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
integer compare. It has no input validation at all, so it is a lower bound, not a competitor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from _harness import interleaved, table

import totpcore

KEY = bytes(range(20))
SECRET = totpcore.encode_secret(KEY)
PERIOD = 30


def floor_functions() -> tuple[Callable[[str], bool], Callable[[int], str]]:
    """Return (verify, generate) written directly on hashlib, with nothing but the arithmetic."""
    block = KEY.ljust(64, b"\0")
    inner = hashlib.sha1(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha1(bytes(b ^ 0x5C for b in block))
    pack: Callable[[int], bytes] = struct.Struct(">Q").pack
    unpack: Callable[[bytes, int], tuple[int]] = struct.Struct(">I").unpack_from

    def truncated(counter: int) -> int:
        mac = inner.copy()
        mac.update(pack(counter))
        outer_mac = outer.copy()
        outer_mac.update(mac.digest())
        digest = outer_mac.digest()
        return (unpack(digest, digest[-1] & 15)[0] & 0x7FFFFFFF) % 1_000_000

    def verify(code: str) -> bool:
        wanted = int(code)
        counter = int(time.time()) // PERIOD
        found = False
        for candidate in (counter - 1, counter, counter + 1):
            if truncated(candidate) == wanted:
                found = True
        return found

    def generate(at: int) -> str:
        # %-formatting, as the engine uses: the fastest zero-padding in CPython.
        return "%06d" % truncated(at // PERIOD)  # noqa: UP031

    return verify, generate


def contenders() -> dict[str, dict[str, Callable[[], Any]]]:
    """Return the timed callables, grouped by operation; each group's first entry is its floor."""
    import pyotp
    from cryptography.hazmat.primitives.hashes import SHA1
    from cryptography.hazmat.primitives.twofactor import InvalidToken
    from cryptography.hazmat.primitives.twofactor import totp as crypto_totp

    engine = totpcore.TOTP(KEY)
    reference = pyotp.TOTP(SECRET)
    crypto = crypto_totp.TOTP(KEY, 6, SHA1(), PERIOD, enforce_key_length=False)
    floor_verify, floor_generate = floor_functions()
    now = int(time.time())
    # A code that matches no step in the window, so every contender does its full work.
    wrong = next(
        code
        for code in (f"{n:06d}" for n in range(1_000_000))
        if code not in {engine.generate(now + d * PERIOD) for d in (-2, -1, 0, 1, 2)}
    )
    wrong_bytes = wrong.encode()

    def crypto_window_verify() -> bool:
        # cryptography checks one step; a ±1 window is three calls.
        at = int(time.time())
        for delta in (-PERIOD, 0, PERIOD):
            try:
                crypto.verify(wrong_bytes, at + delta)
            except InvalidToken:
                continue
            return True
        return False

    return {
        "verify (wrong code, window ±1)": {
            "stdlib floor": lambda: floor_verify(wrong),
            "totpcore TOTP.verify": lambda: engine.verify(wrong),
            "pyotp TOTP.verify(valid_window=1)": lambda: reference.verify(wrong, valid_window=1),
            "cryptography TOTP.verify x3": crypto_window_verify,
        },
        "generate": {
            "stdlib floor": lambda: floor_generate(now),
            "totpcore TOTP.generate": lambda: engine.generate(now),
            "pyotp TOTP.at": lambda: reference.at(now),
            "cryptography TOTP.generate": lambda: crypto.generate(now),
        },
    }


def measure(rounds: int, number: int) -> dict[str, dict[str, dict[str, float]]]:
    """Time every group; per contender, the median ratio to the floor and the ns per call."""
    groups = contenders()
    return {
        group: interleaved(functions, rounds=rounds, number=number)
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
