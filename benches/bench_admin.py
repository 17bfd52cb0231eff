"""Admin-path benchmark: recovery codes (PBKDF2) and enabling many users at once.

Run from a checkout::

    python benches/bench_admin.py
    python benches/bench_admin.py --users 100000 --repeat 3 --json

recovery codes
    ``TwoFactor.new_recovery_codes`` (10 codes, each hashed with PBKDF2-HMAC-SHA256, 4,000
    iterations by default) and ``TwoFactor.use_recovery_code`` with a wrong and with a correct
    code, on a ``MemoryStore``; each against one ``hashlib.pbkdf2_hmac`` call of the same
    iteration count, timed in the same rounds (the floor: a set shares one salt, so an attempt
    costs one derivation). Every attempt goes to another user, the clock an hour further each
    time, so no attempt is throttled.

enable_many
    ``TwoFactor.enable_many`` of ``--users`` new users (100,000 by default) on a new SQLite
    file with the default settings (batches of 1,000 in one transaction each), and on a
    ``MemoryStore`` for reference; the best and the median of ``--repeat`` runs, each on a
    fresh store. Target: under 5 s on SQLite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import markdown

import totpcore
from totpcore._bench import START, derived_key, population_ids


def recovery(rounds: int, number: int) -> dict[str, dict[str, float]]:
    """Median milliseconds per call of the recovery-code operations and of the floor."""
    policy = totpcore.Policy()
    now = [START]
    service = totpcore.TwoFactor(
        totpcore.MemoryStore(), issuer="Bench", policy=policy, clock=lambda: now[0]
    )
    users = population_ids(rounds * number * 2 + number, prefix="recovery")
    for user_id in users:
        service.import_secret(user_id, derived_key(user_id))
    codes: dict[str, str] = {}
    issued = iter(users[: rounds * number * 2])
    spare = users[rounds * number * 2 :]
    position = [0]

    def issue() -> Any:
        user_id = spare[position[0] % len(spare)]
        position[0] += 1
        return service.new_recovery_codes(user_id)

    # The users that attempts go to, each with a set issued beforehand (untimed).
    targets = [next(issued) for _ in range(rounds * number * 2)]
    for user_id in targets:
        codes[user_id] = service.new_recovery_codes(user_id)[0]
    wrong_targets = iter(targets[: rounds * number])
    right_targets = iter(targets[rounds * number :])

    verdicts: Counter[str] = Counter()

    def attempt(targets: Any, correct: bool) -> Callable[[], Any]:
        kind = "correct" if correct else "wrong"

        def call() -> Any:
            user_id = next(targets)
            now[0] += 3600.0
            # A well-formed code (Crockford base32) that is none of the user's.
            code = codes[user_id] if correct else "AAAA-BBBB-CCCC"
            verdict = service.use_recovery_code(user_id, code)
            verdicts[f"{kind}: {verdict.reason.value}"] += 1
            return verdict

        return call

    salt = bytes(16)

    def floor() -> bytes:
        return hashlib.pbkdf2_hmac("sha256", b"ABCD-EFGH-JKLM", salt, policy.recovery_iterations)

    functions = {
        f"hashlib.pbkdf2_hmac, {policy.recovery_iterations:,} iterations (floor)": floor,
        "use_recovery_code, wrong code": attempt(wrong_targets, correct=False),
        "use_recovery_code, correct code": attempt(right_targets, correct=True),
        f"new_recovery_codes ({policy.recovery_codes} codes)": issue,
    }
    times: dict[str, list[float]] = {name: [] for name in functions}
    for round_index in range(rounds):
        names = list(functions)
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            for _ in range(number):
                functions[name]()
            times[name].append((time.perf_counter() - started) / number * 1000)
    floor_name = next(iter(functions))
    print(f"recovery verdicts: {dict(verdicts)}", file=sys.stderr)
    return {
        name: {
            "ms": statistics.median(values),
            "ratio": statistics.median(
                value / base for value, base in zip(values, times[floor_name], strict=True)
            ),
        }
        for name, values in times.items()
    }


def enable_many(users: int, repeat: int) -> dict[str, dict[str, float]]:
    """Seconds to enable ``users`` new users on SQLite and in memory: best and median."""
    ids = population_ids(users, prefix="enabled")
    results: dict[str, list[float]] = {"SQLiteStore": [], "MemoryStore": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as directory:
            store = totpcore.SQLiteStore(Path(directory) / "enable.sqlite3")
            service = totpcore.TwoFactor(store, issuer="Bench")
            started = time.perf_counter()
            statuses = service.enable_many(ids)
            results["SQLiteStore"].append(time.perf_counter() - started)
            assert len(statuses) == users
            store.close()
        service = totpcore.TwoFactor(totpcore.MemoryStore(), issuer="Bench")
        started = time.perf_counter()
        service.enable_many(ids)
        results["MemoryStore"].append(time.perf_counter() - started)
    return {
        name: {"best": min(values), "median": statistics.median(values)}
        for name, values in results.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print Markdown tables (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20, help="calls per round (recovery)")
    parser.add_argument("--users", type=int, default=100_000, help="users for enable_many")
    parser.add_argument("--repeat", type=int, default=3, help="enable_many runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    codes = recovery(args.rounds, args.number)
    enabled = enable_many(args.users, args.repeat)
    if args.json:
        print(json.dumps({"recovery": codes, "enable_many": enabled}, indent=2))
        return 0
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds x {args.number} calls\n")
    rows = [[name, f"{row['ms']:.2f}", f"{row['ratio']:.2f}x"] for name, row in codes.items()]
    print(markdown(["recovery codes", "ms per call (median)", "ratio to the floor"], rows))
    print()
    rows = [
        [f"enable_many({args.users:,}), {name}", f"{row['best']:.2f}", f"{row['median']:.2f}"]
        for name, row in enabled.items()
    ]
    print(markdown(["operation", f"best of {args.repeat}, s", "median, s"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
