"""Crash safety: a worker verifying on SQLite is killed with SIGKILL, again and again."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from totpcore import TOTP, Policy, Reason, SQLiteStore, TwoFactor, encode_secret

START_STEP = 56_666_667  # a step in 2023
KILLS = 60
POLICY = Policy(recovery_iterations=1_000)


def fixed(at: float) -> Callable[[], float]:
    """A clock that always says ``at``."""
    return lambda: at


def _worker(path: str, secret: str, log_path: str) -> None:
    """Verify the next step's code forever, logging each step after it was accepted."""
    store = SQLiteStore(path)
    step = [0]
    service = TwoFactor(store, issuer="X", policy=POLICY, clock=lambda: step[0] * 30.0 + 1)
    service.unlock("alice")  # kills between charge and success leave failures behind
    record = store.get("alice")
    assert record is not None
    assert record.last_step is not None
    phone = TOTP.from_secret(secret)
    step[0] = record.last_step + 1
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    while True:
        verdict = service.verify("alice", phone.generate(step[0] * 30.0 + 1))
        if verdict:
            # Only after verify returned, i.e. after the commit: the log may miss the last
            # accepted step, but never holds one that was not committed.
            os.write(log, f"{step[0]}\n".encode())
        elif verdict.reason is not Reason.REPLAYED:
            service.unlock("alice")
        step[0] += 1


def test_sigkill_never_corrupts_or_reopens_a_step(tmp_path: Path) -> None:
    """60 SIGKILLs at random moments: the file stays intact and no accepted step works again.

    After the kills, PRAGMA integrity_check must say ok, and every step the workers logged as
    accepted must now be refused (REPLAYED) when verified again.
    """
    path = str(tmp_path / "crash.sqlite3")
    log_path = str(tmp_path / "accepted.log")
    store = SQLiteStore(path)
    service = TwoFactor(store, issuer="X", policy=POLICY, clock=lambda: START_STEP * 30.0 + 1)
    service.enable("alice")
    phone = TOTP.from_secret(service.begin_setup("alice").secret)
    assert service.complete_setup("alice", phone.generate(START_STEP * 30.0 + 1))
    store.close()

    context = multiprocessing.get_context("fork")
    chance = random.Random(20261127)
    for _ in range(KILLS):
        worker = context.Process(target=_worker, args=(path, encode_secret(phone.key), log_path))
        worker.start()
        time.sleep(0.02 + chance.random() * 0.08)
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join()
        assert worker.exitcode == -signal.SIGKILL

    accepted = [int(line) for line in Path(log_path).read_text().split()]
    assert len(accepted) > KILLS, "the workers must have made progress between kills"
    assert len(accepted) == len(set(accepted)), "a step was accepted twice"

    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()

    store = SQLiteStore(path)
    checks = chance.sample(accepted, min(len(accepted), 200))
    for step in checks:
        auditor = TwoFactor(store, issuer="X", policy=POLICY, clock=fixed(step * 30.0 + 1))
        auditor.unlock("alice")
        verdict = auditor.verify("alice", phone.generate(step * 30.0 + 1))
        assert verdict.reason is Reason.REPLAYED, (step, verdict)
    store.close()
