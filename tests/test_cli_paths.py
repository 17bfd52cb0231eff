"""The command line's remaining paths, run in-process through ``totpcore.cli.main``.

HOTP URIs and their counters, ``--at`` in every accepted and refused form, contradictory
options, and the last-resort handlers: Ctrl-C at a prompt (exit 130) and an unexpected
exception (one line, exit 2, no traceback, no message text that could hold input).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from totpcore import HOTP, TOTP, SQLiteStore, Status, TwoFactor, encode_secret
from totpcore.cli import main

KEY = bytes(range(40, 60))
SECRET = encode_secret(KEY)
AT = 1_700_000_000


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``totpcore ARGS`` in-process; return the exit status, stdout and stderr."""
    capsys.readouterr()
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(autouse=True)
def _no_secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret comes from the options only."""
    monkeypatch.delenv("TOTPCORE_SECRET", raising=False)


# --- HOTP and the counter -----------------------------------------------------------------


def test_code_from_an_hotp_uri_uses_its_counter_unless_overridden(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``code --uri`` of an HOTP URI prints the code at the URI's counter, or at --counter."""
    hotp = HOTP(KEY)
    uri = hotp.uri("ann@example.com", issuer="Example", counter=5)
    status, out, _ = run(capsys, "code", "--uri", uri)
    assert (status, out.strip()) == (0, hotp.generate(5))
    status, out, _ = run(capsys, "code", "--uri", uri, "--counter", "7")
    assert (status, out.strip()) == (0, hotp.generate(7))


def test_hotp_refuses_a_period(capsys: pytest.CaptureFixture[str]) -> None:
    """``--period`` with ``--hotp`` contradicts itself: exit 2 with one clear line."""
    status, out, err = run(
        capsys, "code", "--hotp", "--counter", "1", "--period", "60", "--secret", SECRET
    )
    assert (status, out) == (2, "")
    assert "--period is for TOTP, not --hotp" in err
    assert SECRET not in err


def test_inspect_warns_that_hotp_is_not_supported_everywhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``inspect`` of an HOTP URI lists the warning that many apps are TOTP-only."""
    uri = HOTP(KEY).uri("ann@example.com", issuer="Example", counter=3)
    status, out, _ = run(capsys, "inspect", uri, "--json")
    assert status == 0
    fields = json.loads(out)
    assert fields["type"] == "hotp"
    assert fields["counter"] == 3
    assert any("TOTP only" in warning for warning in fields["warnings"])


# --- --at ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "moment"),
    [
        (f"{AT}.5", AT + 0.5),
        (f"@{AT}", AT),
        ("2023-11-14T22:13:20+00:00", AT),
        ("2023-11-14T23:13:20+01:00", AT),
    ],
)
def test_at_accepts_seconds_and_zoned_iso_times(
    capsys: pytest.CaptureFixture[str], at: str, moment: float
) -> None:
    """``--at`` takes fractional Unix seconds, ``@seconds`` and ISO 8601 with a zone."""
    status, out, err = run(capsys, "code", "--secret", SECRET, "--at", at)
    assert status == 0, err
    assert out.strip() == TOTP(KEY).generate(moment)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("yesterday", "--at takes Unix seconds"),
        ("@soon", "--at @ takes Unix seconds"),
        ("2030-01-01T00:00:00", "--at needs a time zone"),
        ("inf", "--at must be a finite number"),
        ("nan", "--at must be a finite number"),
    ],
)
def test_at_refuses_what_is_not_a_time(
    capsys: pytest.CaptureFixture[str], at: str, expected: str
) -> None:
    """Anything else given to ``--at`` is exit 2 with a line saying what it takes."""
    status, out, err = run(capsys, "code", "--secret", SECRET, "--at", at)
    assert (status, out) == (2, "")
    assert expected in err


# --- last-resort handlers -----------------------------------------------------------------


class _Interrupting:
    """Standard input where the operator presses Ctrl-C at the prompt."""

    def readline(self, size: int = -1) -> str:
        """Raise as a terminal does when Ctrl-C is pressed while reading."""
        raise KeyboardInterrupt


def _pending_user(tmp_path: Path) -> Path:
    """A database holding one pending user, cat."""
    db = tmp_path / "users.sqlite3"
    with SQLiteStore(db) as store:
        TwoFactor(store, issuer="Example").enable("cat")
    return db


def test_ctrl_c_at_the_setup_prompt_exits_130_and_leaves_setup_pending(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Interrupting ``admin setup`` at its prompt: "interrupted", exit 130, user still pending."""
    db = _pending_user(tmp_path)
    monkeypatch.setattr(sys, "stdin", _Interrupting())
    status, _, err = run(capsys, "admin", "--db", str(db), "setup", "cat", "--json")
    assert status == 130
    assert err.rstrip().endswith("totpcore: error: interrupted")
    assert "Traceback" not in err
    with SQLiteStore(db) as store:
        record = store.get("cat")
        assert record is not None
        assert record.status is Status.SETUP_PENDING


def test_an_unexpected_exception_is_one_line_without_its_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An exception nothing else handles: exit 2, its type named, its text never shown.

    Here the operator types bytes that are not UTF-8 at the setup prompt; the decoder's
    message would quote them, so only the exception's type is printed.
    """
    db = _pending_user(tmp_path)
    typed = io.TextIOWrapper(io.BytesIO(b"\xff\xfeSENTINEL\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", typed)
    status, _, err = run(capsys, "admin", "--db", str(db), "setup", "cat", "--json")
    assert status == 2
    assert "unexpected UnicodeDecodeError; please report it" in err
    assert "SENTINEL" not in err
    assert "0xff" not in err
    assert "Traceback" not in err
