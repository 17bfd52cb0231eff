"""``totpcore admin``: the refusals and fallbacks the lifecycle tests do not reach.

Run in-process through the command line's ``main()`` (the same parser, handlers and exit
statuses as the console script): an oversized key file, import lines of every malformed kind,
an unreadable import file, setup without the QR package or without a confirmation code, and
the keyless actions on users that are not there. Each refusal must be one clean error line with
the documented exit status, and must leave the database as it was.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from totpcore import TOTP, SQLiteStore, Status, TwoFactor, encode_secret
from totpcore.cli import main

KEY = bytes(range(1, 21))
AES_KEY = bytes(range(32))


class Run:
    """One in-process run of the command line: exit status and what it printed."""

    def __init__(self, status: int, stdout: str, stderr: str) -> None:
        self.status = status
        self.stdout = stdout
        self.stderr = stderr

    def error_line(self) -> str:
        """The one ``totpcore: error:`` line of a refused run."""
        # setup's "Code from the app: " prompt has no newline of its own.
        errors = [
            line.removeprefix("Code from the app: ")
            for line in self.stderr.splitlines()
            if "totpcore: error:" in line
        ]
        assert len(errors) == 1, self.stderr
        assert errors[0].startswith("totpcore: error:"), self.stderr
        assert "Traceback" not in self.stderr
        return errors[0]


def admin(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Path,
    *args: str,
    stdin: str = "",
) -> Run:
    """Run ``totpcore admin --db DB ARGS`` with ``stdin`` as standard input."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8"))))
    capsys.readouterr()  # start from empty buffers
    status = main(["admin", "--db", str(db), *args])
    out, err = capsys.readouterr()
    return Run(status, out, err)


def rows(db: Path) -> list[tuple[Any, ...]]:
    """Every user row of the database, for "nothing changed" comparisons."""
    connection = sqlite3.connect(db)
    try:
        return sorted(connection.execute("SELECT * FROM totpcore_users").fetchall())
    finally:
        connection.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database with ann active (imported) and cat pending."""
    path = tmp_path / "users.sqlite3"
    with SQLiteStore(path) as store:
        service = TwoFactor(store, issuer="Example")
        service.import_secret("ann", KEY)
        service.enable("cat")
    return path


# --- options and the key file -------------------------------------------------------------


def test_key_file_over_the_size_limit_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A key file over 64 KiB is the wrong file: exit 2 naming the limit, no database made."""
    keys = tmp_path / "huge-keys"
    keys.write_text((AES_KEY.hex() + "\n") * 2_000, encoding="utf-8")
    target = tmp_path / "new.sqlite3"
    run = admin(capsys, monkeypatch, target, "--key-file", str(keys), "enable", "alice")
    assert run.status == 2
    assert "is over 64 KiB" in run.error_line()
    assert AES_KEY.hex() not in run.stderr
    assert not target.exists()


def test_admin_without_db_and_with_misplaced_issuer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """``--db`` is required; ``--issuer`` belongs to ``setup`` only; both are usage errors."""
    capsys.readouterr()
    assert main(["admin", "status", "ann"]) == 2
    assert "admin needs --db" in capsys.readouterr().err
    run = admin(capsys, monkeypatch, db, "--issuer", "Corp", "status", "ann")
    assert run.status == 2
    assert "--issuer is for admin setup only" in run.error_line()


def test_rotate_key_needs_a_key_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """rotate-key without --key-file is exit 2 and leaves every row as it was."""
    before = rows(db)
    run = admin(capsys, monkeypatch, db, "rotate-key")
    assert run.status == 2
    assert "rotate-key needs --key-file" in run.error_line()
    assert rows(db) == before


def test_actions_other_than_enable_and_import_need_an_existing_database(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``status`` on a missing file says how to create one, and creates nothing."""
    missing = tmp_path / "typo.sqlite3"
    run = admin(capsys, monkeypatch, missing, "status", "ann")
    assert run.status == 2
    assert "'admin enable' creates one" in run.error_line()
    assert not missing.exists()


# --- keyless actions ----------------------------------------------------------------------


def test_keyless_actions_report_users_that_are_not_there(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """status/disable of an unknown user answer plainly; unlock of one is a refusal (exit 1)."""
    run = admin(capsys, monkeypatch, db, "status", "zed", "--json")
    assert (run.status, json.loads(run.stdout)) == (0, {"user": "zed", "status": "disabled"})
    run = admin(capsys, monkeypatch, db, "disable", "zed")
    assert (run.status, run.stdout.strip()) == (0, "zed: was not enabled")
    run = admin(capsys, monkeypatch, db, "unlock", "zed")
    assert run.status == 1
    assert "not enabled" in run.error_line()
    run = admin(capsys, monkeypatch, db, "unlock", "ann", "--json")
    assert (run.status, json.loads(run.stdout)) == (0, {"user": "ann", "unlocked": True})
    run = admin(capsys, monkeypatch, db, "disable", "cat", "--json")
    assert json.loads(run.stdout) == {"user": "cat", "status": "disabled", "changed": True}
    run = admin(capsys, monkeypatch, db, "list")
    assert run.stdout.splitlines() == ["ann\tactive"]


def test_keyless_actions_refuse_bad_user_ids(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """Keyless actions refuse a USER the service would refuse, before touching the store.

    A lone surrogate is what undecodable bytes in argv arrive as.
    """
    before = rows(db)
    for action in ("status", "disable", "unlock"):
        run = admin(capsys, monkeypatch, db, action, "bad\udcffid")
        assert run.status == 2, action
        assert "USER is not encodable as UTF-8" in run.error_line(), action
    assert rows(db) == before


# --- setup --------------------------------------------------------------------------------


def test_setup_without_a_code_stays_pending_then_completes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """No code typed: exit 1 and still pending. A wrong code: exit 1. The right one: active.

    The same secret is shown on every attempt until setup completes.
    """
    first = admin(capsys, monkeypatch, db, "setup", "cat", "--json", stdin="\n")
    assert first.status == 1
    assert "setup is still pending" in first.error_line()
    secret = json.loads(first.stdout)["secret"]
    phone = TOTP.from_secret(secret)
    wrong = admin(capsys, monkeypatch, db, "setup", "cat", "--json", stdin="12345678\n")
    assert wrong.status == 1
    assert json.loads(wrong.stdout)["secret"] == secret
    assert "cat: " in wrong.stderr
    assert "setup complete" not in wrong.stderr
    right = admin(capsys, monkeypatch, db, "setup", "cat", "--json", stdin=phone.now() + "\n")
    assert right.status == 0, right.stderr
    assert "cat: setup complete" in right.stderr
    with SQLiteStore(db) as store:
        record = store.get("cat")
        assert record is not None
        assert record.status is Status.ACTIVE


def test_setup_without_the_qr_package_still_shows_the_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """Without segno, text setup notes the missing QR code on stderr and still works."""
    monkeypatch.setitem(sys.modules, "segno", None)  # import segno now raises ImportError
    run = admin(capsys, monkeypatch, db, "setup", "cat", "--issuer", "Corp", stdin="\n")
    assert run.status == 1  # no code typed
    assert "(no QR code:" in run.stderr
    assert "totpcore[qr]" in run.stderr
    lines = dict(line.split(":", 1) for line in run.stdout.splitlines() if ":" in line)
    assert lines["params"].strip() == "SHA1, 6 digits, every 30 s"
    secret = lines["secret"].replace(" ", "")
    assert "issuer=Corp" in lines["uri"]
    assert TOTP.from_secret(secret).key != KEY  # cat's own secret, not ann's
    assert "\u2588" not in run.stdout  # no QR blocks were drawn


# --- import -------------------------------------------------------------------------------


def import_lines(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Path,
    tmp_path: Path,
    lines: list[bytes],
) -> tuple[Run, list[dict[str, Any]]]:
    """Import a file of ``lines`` with --json; return the run and its per-line report."""
    source = tmp_path / "import.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    run = admin(capsys, monkeypatch, db, "import", str(source), "--json")
    return run, json.loads(run.stdout)


def test_every_kind_of_bad_import_line_is_reported_and_skipped(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Path,
    tmp_path: Path,
) -> None:
    """Each malformed line gets its own error, quoting nothing from the line; good lines pass.

    The run exits 1 because some lines failed, and only the good lines' users exist after it.
    """
    secret = encode_secret(KEY)
    uri = TOTP(KEY).uri("x@example.com", issuer="Old")
    cases: list[tuple[bytes, str]] = [
        (json.dumps({"user_id": 7, "secret": secret}).encode(), '"user_id" must be a string'),
        (b'{"user_id": "u1", "secret": "\xff\xfe"}', "not UTF-8"),
        (b'{"user_id": "u2", ', "not valid JSON ("),
        (b'{"user_id": "u3", "digits": ' + b"9" * 5_000 + b"}", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'["u4", "SECRETSENTINEL"]', "each line must be a JSON object"),
        (
            json.dumps({"user_id": "u5", "secret": secret, "SECRETSENTINEL": 1}).encode(),
            "1 unknown field;",
        ),
        (
            json.dumps({"user_id": "u6", "secret": secret, "a": 1, "b": 2}).encode(),
            "2 unknown fields;",
        ),
        (
            json.dumps({"user_id": "u7", "secret": secret, "allow_short_key": "yes"}).encode(),
            '"allow_short_key" must be true or false',
        ),
        (json.dumps({"user_id": "u8"}).encode(), 'exactly one of "uri" and "secret"'),
        (
            json.dumps({"user_id": "u9", "secret": secret, "uri": uri}).encode(),
            'exactly one of "uri" and "secret"',
        ),
        (
            json.dumps({"user_id": "u10", "uri": uri, "digits": 8}).encode(),
            "come from the URI",
        ),
        (json.dumps({"user_id": "u11", "uri": 12}).encode(), '"uri" must be a string'),
        (json.dumps({"user_id": "u12", "secret": 12}).encode(), '"secret" must be a base32'),
        (
            json.dumps({"user_id": "u13", "secret": secret, "algorithm": 256}).encode(),
            '"algorithm" must be a string',
        ),
        (
            json.dumps({"user_id": "u14", "secret": secret, "digits": True}).encode(),
            '"digits" must be an integer',
        ),
        (
            json.dumps({"user_id": "u15", "secret": secret, "period": "30"}).encode(),
            '"period" must be an integer',
        ),
        (
            json.dumps({"user_id": "ann", "secret": secret}).encode(),
            "already has two-factor; disable it before importing",
        ),
    ]
    good = json.dumps({"user_id": "ok1", "secret": secret, "digits": 8, "algorithm": "SHA256"})
    run, report = import_lines(
        capsys, monkeypatch, db, tmp_path, [line for line, _ in cases] + [good.encode()]
    )
    assert run.status == 1
    assert f"{len(cases)} of {len(cases) + 1} lines not imported" in run.stderr
    assert len(report) == len(cases) + 1
    for entry, (_, expected) in zip(report, cases, strict=False):
        assert entry["ok"] is False, entry
        assert expected in entry["error"], (entry, expected)
    assert report[-1] == {"line": len(cases) + 1, "user": "ok1", "ok": True, "error": None}
    assert report[0]["user"] is None  # a non-string user_id is not reported as a user
    output = run.stdout + run.stderr
    assert "SECRETSENTINEL" not in output
    assert secret not in output
    with SQLiteStore(db) as store:
        imported = store.get("ok1")
        assert imported is not None
        assert (imported.algorithm, imported.digits) == ("SHA256", 8)
        assert all(store.get(f"u{n}") is None for n in range(1, 16))


def test_import_text_report_and_short_keys(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Path,
    tmp_path: Path,
) -> None:
    """The text report names each line; an 80-bit key needs ``allow_short_key`` to import."""
    short = encode_secret(bytes(range(10)))
    source = tmp_path / "import.jsonl"
    source.write_text(
        "\ufeff"
        + json.dumps({"user_id": "s1", "secret": short})
        + "\n\n"
        + json.dumps({"user_id": "s2", "secret": short, "allow_short_key": True})
        + "\n",
        encoding="utf-8",
    )
    run = admin(capsys, monkeypatch, db, "import", str(source))
    assert run.status == 1
    assert run.stdout.splitlines() == [
        "line 1: error: key is 80 bits; RFC 4226 requires at least 128 "
        '(add "allow_short_key": true to import a legacy key)',
        "line 3: s2: imported",
    ]
    assert "1 of 2 lines not imported" in run.stderr


def test_unreadable_import_file_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db: Path,
    tmp_path: Path,
) -> None:
    """A missing import file (or a directory) is exit 2 naming the path; no row changes."""
    before = rows(db)
    for path in (tmp_path / "nope.jsonl", tmp_path):
        run = admin(capsys, monkeypatch, db, "import", str(path))
        assert run.status == 2
        assert f"cannot read {path}" in run.error_line()
    assert rows(db) == before


def test_import_from_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """``import -`` reads the lines from standard input."""
    line = json.dumps({"user_id": "stdin-user", "secret": encode_secret(KEY)})
    run = admin(capsys, monkeypatch, db, "import", "-", stdin=line + "\n")
    assert run.status == 0, run.stderr
    assert run.stdout.strip() == "line 1: stdin-user: imported"
    run = admin(capsys, monkeypatch, db, "status", "stdin-user")
    assert run.stdout.strip() == "active"
