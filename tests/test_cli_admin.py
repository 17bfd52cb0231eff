"""``totpcore admin`` on encrypted stores, imports, verification and key rotation.

Run as a subprocess exactly as operators run it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from postgres_server import DATABASE
from totpcore import (
    HOTP,
    TOTP,
    AESGCMCipher,
    Policy,
    SQLiteStore,
    TwoFactor,
    encode_secret,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
KEY_C = bytes(range(200, 232))

# Users' TOTP keys: one imported by URI with non-default parameters, one by secret with the
# defaults, one legacy 80-bit key.
ANN_KEY = bytes(range(1, 21))
BEN_KEY = bytes(range(21, 41))
SHORT_KEY = bytes(range(41, 51))
ANN = TOTP(ANN_KEY, algorithm="SHA256", digits=8, period=60)
BEN = TOTP(BEN_KEY)


def cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m totpcore ARGS`` with ``stdin`` as standard input."""
    environment = {k: v for k, v in os.environ.items() if k != "TOTPCORE_SECRET"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "totpcore", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def admin(
    db: Path,
    *args: str,
    keys: Path | None = None,
    stdin: str = "",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``totpcore admin --db DB [--key-file KEYS] ARGS``."""
    key_option = [] if keys is None else ["--key-file", str(keys)]
    return cli("admin", "--db", str(db), *key_option, *args, stdin=stdin, env=env)


def ok(db: Path, *args: str, keys: Path | None = None, stdin: str = "") -> str:
    """Run an admin action that must succeed; return its standard output."""
    result = admin(db, *args, keys=keys, stdin=stdin)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def refused(status: int, result: subprocess.CompletedProcess[str]) -> str:
    """Check a run failed with ``status`` and exactly one clean error line; return that line."""
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("totpcore: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def key_file(path: Path, *keys: bytes) -> Path:
    """Write a key file with the keys in hex, current first, among comments and blank lines."""
    lines = ["# totpcore keys: current first", ""]
    lines += [f"{key.hex()}  # key {index}" for index, key in enumerate(keys)]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return path


def leaked(result: subprocess.CompletedProcess[str], *texts: str) -> list[str]:
    """The texts (checked in any letter case) that appear in the run's output."""
    output = (result.stdout + result.stderr).lower()
    return [text for text in texts if text.lower() in output]


def snapshot(db: Path) -> dict[str, Any]:
    """Every table's rows, the schema and its version: what 'changes nothing' compares."""
    connection = sqlite3.connect(db)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        state: dict[str, Any] = {
            "version": connection.execute("PRAGMA user_version").fetchone(),
            "schema": connection.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall(),
        }
        for table in tables:
            state[table] = sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall())
        return state
    finally:
        connection.close()


def database_bytes(db: Path) -> bytes:
    """The database file and its WAL and shared-memory files, concatenated."""
    return b"".join(path.read_bytes() for path in db.parent.glob(db.name + "*"))


def imports_line(user: str, key: bytes, **extra: Any) -> str:
    """One JSON line of an import file, by secret."""
    return json.dumps({"user_id": user, "secret": encode_secret(key), **extra})


def encrypted_store(tmp_path: Path) -> tuple[Path, Path]:
    """A store under KEY_A with ann and ben imported (active) and cat enabled (pending)."""
    db, keys = tmp_path / "users.sqlite3", key_file(tmp_path / "keys-a", KEY_A)
    lines = [
        json.dumps({"user_id": "ann", "uri": ANN.uri("ann@example.com", issuer="Old")}),
        imports_line("ben", BEN_KEY),
    ]
    ok(db, "import", "-", keys=keys, stdin="\n".join(lines) + "\n")
    ok(db, "enable", "cat", keys=keys)
    return db, keys


def next_step_code(otp: TOTP) -> str:
    """The code of the step after the current one (by the real clock), for a used step.

    The service matches the nearest step of its window, so a next-step code that the current
    or the previous step shares (once in 500,000 for 6 digits) would be matched there and
    refused as a replay of the import's step: then this waits for the next step instead.
    """
    while True:
        now = time.time()
        code = otp.generate(now + otp.period)
        if code not in {otp.generate(now), otp.generate(now - otp.period)}:
            return code
        time.sleep(otp.period - now % otp.period + 0.05)


def wrong_code(otp: TOTP) -> str:
    """A well-formed code that no step near now produces."""
    now = time.time()
    near = {otp.generate(now + otp.period * offset) for offset in range(-3, 4)}
    return next(
        code for code in ("0" * otp.digits, "1" * otp.digits, "2" * otp.digits) if code not in near
    )


# --- encrypted store ------------------------------------------------------------------------


def test_encrypted_enable_and_setup(tmp_path: Path) -> None:
    """--key-file encrypts: setup shows a usable secret and the database holds no plaintext."""
    db, keys = tmp_path / "users.sqlite3", key_file(tmp_path / "keys", KEY_A)
    assert json.loads(ok(db, "enable", "alice", "--json", keys=keys)) == {"alice": "setup_pending"}
    first = admin(db, "setup", "alice", "--json", keys=keys)
    assert first.returncode == 1  # no confirmation code typed yet
    shown = json.loads(first.stdout)
    assert (shown["algorithm"], shown["digits"], shown["period"]) == ("SHA1", 6, 30)
    phone = TOTP.from_secret(shown["secret"])
    assert shown["uri"] == phone.uri("alice", issuer="totpcore")

    second = admin(db, "setup", "alice", "--json", keys=keys, stdin=phone.now() + "\n")
    assert second.returncode == 0, second.stderr
    assert "setup complete" in second.stderr
    assert json.loads(second.stdout)["secret"] == shown["secret"]
    assert ok(db, "status", "alice", keys=keys).strip() == "active"

    stored = database_bytes(db)
    assert phone.key not in stored
    assert shown["secret"].encode() not in stored
    assert KEY_A not in stored
    assert KEY_A.hex().encode() not in stored


@pytest.mark.parametrize("key", ["missing", "wrong"])
@pytest.mark.parametrize(
    "action",
    ["enable", "setup", "reset", "import", "rotate-key", "verify", "resync", "recovery-codes"],
)
def test_secret_actions_refuse_without_the_key(tmp_path: Path, key: str, action: str) -> None:
    """Without the store's key (or with another), secret actions exit 2 and change no row."""
    db, _ = encrypted_store(tmp_path)
    wrong = key_file(tmp_path / "keys-c", KEY_C)
    # Arguments that would succeed with the right key, so only the key check can stop them.
    now = time.time()
    arguments = {
        "enable": (["enable", "dora"], ""),
        "setup": (["setup", "cat"], "123456\n"),
        "reset": (["reset", "ben"], ""),
        "import": (["import", "-"], imports_line("dora", bytes(range(60, 80))) + "\n"),
        "rotate-key": (["rotate-key"], ""),
        "verify": (["verify", "ben", BEN.now()], ""),
        "resync": (
            ["resync", "ben", BEN.generate(now + 30 * 20), BEN.generate(now + 30 * 21)],
            "",
        ),
        "recovery-codes": (["recovery-codes", "ben"], ""),
    }
    args, stdin = arguments[action]
    before = snapshot(db)
    result = admin(db, *args, keys=None if key == "missing" else wrong, stdin=stdin)
    error = refused(2, result)
    assert snapshot(db) == before
    assert "--key-file" in error
    assert not leaked(result, KEY_A.hex(), KEY_C.hex(), encode_secret(BEN_KEY))


def test_keyless_actions_work_on_encrypted_store(tmp_path: Path) -> None:
    """Status, list, unlock and disable need no key, and do their work."""
    db, keys = encrypted_store(tmp_path)
    assert admin(db, "verify", "ben", wrong_code(BEN), keys=keys).returncode == 1
    with SQLiteStore(db) as store:
        record = store.get("ben")
        assert record is not None
        assert record.failures == 1

    assert ok(db, "status", "ben").strip() == "active"
    assert ok(db, "status", "cat").strip() == "setup_pending"
    assert ok(db, "list") == "ann\tactive\nben\tactive\ncat\tsetup_pending\n"
    assert json.loads(ok(db, "list", "--json"))[0] == {"user": "ann", "status": "active"}
    assert ok(db, "unlock", "ben").strip() == "ben: unlocked"
    with SQLiteStore(db) as store:
        record = store.get("ben")
        assert record is not None
        assert record.failures == 0
        assert record.failure_log == ()
    assert "not enabled" in refused(1, admin(db, "unlock", "nobody"))
    assert json.loads(ok(db, "disable", "cat", "--json"))["changed"] is True
    assert ok(db, "status", "cat").strip() == "disabled"
    refused(2, admin(db, "status", ""))


def test_list_pages_through_a_large_store(tmp_path: Path) -> None:
    """List reads the store a page at a time and still shows every user once, in order."""
    db = tmp_path / "users.sqlite3"
    # Over two pages of 1000, with ids whose order by code point is not their length order.
    users = sorted([f"u{number:04}" for number in range(2001)] + ["u", "u\u00e9", "\u00e9"])
    ok(db, "enable", *users)
    listed = json.loads(ok(db, "list", "--json"))
    assert [row["user"] for row in listed] == users
    assert {row["status"] for row in listed} == {"setup_pending"}


# --- import, verify, resync -----------------------------------------------------------------


def mixed_import() -> tuple[list[str], list[str]]:
    """An import file of good and bad lines, and the texts no output may contain."""
    ann_uri = ANN.uri("ann@example.com", issuer="Old")
    hotp_uri = HOTP(bytes(range(80, 100))).uri("fay", counter=5)
    lines = [
        json.dumps({"user_id": "ann", "uri": ann_uri}),
        imports_line("ben", BEN_KEY),
        "",
        json.dumps({"user_id": "cat", "secret": "QUITE*NOT*BASE32"}),
        "this is not JSON, JBSWY3DPEHPK3PXP",
        imports_line("dan", SHORT_KEY),
        imports_line("eve", SHORT_KEY, digits=7, allow_short_key=True),
        json.dumps({"user_id": "fay", "uri": hotp_uri}),
    ]
    secrets = [
        ann_uri,
        hotp_uri,
        "QUITE*NOT*BASE32",
        "JBSWY3DPEHPK3PXP",
        *(encode_secret(key) for key in (ANN_KEY, BEN_KEY, SHORT_KEY, bytes(range(80, 100)))),
        *(key.hex() for key in (ANN_KEY, BEN_KEY, SHORT_KEY)),
    ]
    return lines, secrets


def test_import_mixed_file_reports_each_line(tmp_path: Path) -> None:
    """Good lines import, bad ones are reported by number, nothing secret is printed."""
    db, keys = tmp_path / "users.sqlite3", key_file(tmp_path / "keys", KEY_A)
    lines, secrets = mixed_import()
    source = tmp_path / "users.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = admin(db, "import", str(source), keys=keys)
    refused(1, result)
    report = result.stdout.splitlines()
    assert report[:3] == ["line 1: ann: imported", "line 2: ben: imported", report[2]]
    assert report[2].startswith("line 4: error: ")
    assert "base32" in report[2]
    assert report[3].startswith("line 5: error: not valid JSON")
    assert report[4].startswith("line 6: error: key is 80 bits")
    assert "allow_short_key" in report[4]
    assert report[5] == "line 7: eve: imported"
    assert report[6].startswith("line 8: error: HOTP")
    assert len(report) == 7
    assert not leaked(result, *secrets)

    assert ok(db, "list") == "ann\tactive\nben\tactive\neve\tactive\n"
    assert SHORT_KEY not in database_bytes(db)
    assert BEN_KEY not in database_bytes(db)


def test_import_json_report_from_stdin(tmp_path: Path) -> None:
    """--json reports a list of line, user, ok and error; '-' reads standard input."""
    db, keys = tmp_path / "users.sqlite3", key_file(tmp_path / "keys", KEY_A)
    lines, secrets = mixed_import()
    result = admin(db, "import", "-", "--json", keys=keys, stdin="\n".join(lines))
    refused(1, result)
    report = json.loads(result.stdout)
    assert [(row["line"], row["user"], row["ok"]) for row in report] == [
        (1, "ann", True),
        (2, "ben", True),
        (4, "cat", False),
        (5, None, False),
        (6, "dan", False),
        (7, "eve", True),
        (8, "fay", False),
    ]
    assert all((row["error"] is None) == row["ok"] for row in report)
    assert not leaked(result, *secrets)

    # Importing the same users again fails line by line: they already have two-factor.
    again = admin(db, "import", "-", "--json", keys=keys, stdin=lines[1])
    assert again.returncode == 1
    assert "already has two-factor" in json.loads(again.stdout)[0]["error"]
    # A file of good lines only exits 0.
    fresh = imports_line("gus", bytes(range(60, 80)))
    assert json.loads(ok(db, "import", "-", "--json", keys=keys, stdin=fresh))[0]["ok"] is True


def test_imported_users_verify_and_resync(tmp_path: Path) -> None:
    """Imported users' own parameters verify; verdicts and drift are printed, exit 0 or 1."""
    db, keys = encrypted_store(tmp_path)
    # SHA256, 8 digits, 60 s: only the user's own parameters produce it. The next step's code:
    # codes up to the import's step are refused, as the old system may have used them.
    code = next_step_code(ANN)
    accepted = admin(db, "verify", "ann", code, keys=keys)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.startswith("accepted (drift ")

    replayed = admin(db, "verify", "ann", code, "--json", keys=keys)
    assert replayed.returncode == 1
    assert json.loads(replayed.stdout)["reason"] == "replayed"
    invalid = admin(db, "verify", "ben", wrong_code(BEN), keys=keys)
    assert invalid.returncode == 1
    assert invalid.stdout.startswith("invalid")

    verdict = json.loads(ok(db, "verify", "ben", next_step_code(BEN), "--json", keys=keys))
    assert verdict["accepted"] is True
    assert verdict["reason"] == "accepted"
    assert verdict["drift"] in (-1, 0, 1)

    # A phone 20 minutes fast: two consecutive codes from its clock resynchronise it.
    ahead = time.time() + 40 * 30
    pair = BEN.generate(ahead), BEN.generate(ahead + 30)
    resynced = json.loads(ok(db, "resync", "ben", *pair, "--json", keys=keys))
    assert resynced["accepted"] is True
    assert resynced["drift"] in (40, 41)  # the second code's step; 40 if a step ends meanwhile
    again = admin(db, "resync", "ben", *pair, keys=keys)
    assert again.returncode == 1
    assert again.stdout.startswith("replayed")


def test_setup_shows_the_users_own_parameters(tmp_path: Path) -> None:
    """A user enrolled under another policy is shown, and set up with, their own parameters."""
    db, keys = tmp_path / "users.sqlite3", key_file(tmp_path / "keys", KEY_A)
    policy = Policy(algorithm="SHA512", digits=8, period=60)
    with SQLiteStore(db) as store:
        TwoFactor(store, issuer="Example", policy=policy, cipher=AESGCMCipher(KEY_A)).enable("ida")

    text = admin(db, "setup", "ida", keys=keys)
    assert "params: SHA512, 8 digits, every 60 s" in text.stdout.splitlines()
    assert "SHA512" in text.stderr  # the warning that some apps ignore the algorithm
    shown = json.loads(admin(db, "setup", "ida", "--json", keys=keys).stdout)
    assert (shown["algorithm"], shown["digits"], shown["period"]) == ("SHA512", 8, 60)
    phone = TOTP.from_secret(shown["secret"], algorithm="SHA512", digits=8, period=60)
    assert shown["uri"] == phone.uri("ida", issuer="totpcore")
    done = admin(db, "setup", "ida", "--json", keys=keys, stdin=phone.now() + "\n")
    assert done.returncode == 0, done.stderr
    assert ok(db, "status", "ida").strip() == "active"


# --- key rotation and key files -------------------------------------------------------------


def test_rotate_key(tmp_path: Path) -> None:
    """rotate-key re-encrypts every secret; then the new key alone works and the old fails."""
    db, _ = encrypted_store(tmp_path)
    before = snapshot(db)
    refused(2, admin(db, "rotate-key"))
    assert snapshot(db) == before

    both = key_file(tmp_path / "keys-b-a", KEY_B, KEY_A)
    assert json.loads(ok(db, "rotate-key", "--json", keys=both)) == {"rewritten": 3}
    assert snapshot(db) != before
    assert ok(db, "rotate-key", keys=both).strip() == "re-encrypted 3 secrets under the current key"

    new_only = key_file(tmp_path / "keys-b", KEY_B)
    next_code = next_step_code(ANN)  # the import's own step is refused
    assert ok(db, "verify", "ann", next_code, keys=new_only).startswith("accepted")
    shown = json.loads(admin(db, "setup", "cat", "--json", keys=new_only).stdout)
    assert TOTP.from_secret(shown["secret"]).key not in database_bytes(db)

    old_only = key_file(tmp_path / "keys-a-again", KEY_A)
    before = snapshot(db)
    error = refused(2, admin(db, "verify", "ben", BEN.now(), keys=old_only))
    assert snapshot(db) == before
    assert AESGCMCipher(KEY_B).fingerprints()[0] in error  # names the key it wants, not the key
    assert KEY_A.hex() not in error
    assert KEY_B.hex() not in error


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not-a-hex-key-SENTINEL\n", "line 1: not a key in hex"),
        (b"# comment\n\n" + KEY_A.hex()[:-2].encode() + b"zz\n", "line 3: not a key in hex"),
        (KEY_A.hex().encode() + b"\n" + KEY_B.hex()[:30].encode() + b"\n", "line 2: a 15-byte"),
        (KEY_A.hex()[:-1].encode() + b"\n", "line 1: not a key in hex"),
        (b"# only comments\n\n", "holds no key"),
        (b"\xff\xfe" + KEY_A.hex().encode(), "not UTF-8"),
        ((KEY_A.hex() + "\n" + KEY_A.hex() + "\n").encode(), "twice"),
    ],
)
def test_bad_key_file(tmp_path: Path, content: bytes, expected: str) -> None:
    """A bad key file is exit 2, one line, its text not echoed, and no database is created."""
    db, keys = tmp_path / "users.sqlite3", tmp_path / "keys"
    keys.write_bytes(content)
    result = admin(db, "enable", "alice", keys=keys)
    error = refused(2, result)
    assert expected in error
    assert not db.exists()
    assert not leaked(result, "SENTINEL", KEY_A.hex()[:16], KEY_B.hex()[:16])


def test_unreadable_key_file(tmp_path: Path) -> None:
    """A missing key file, or a directory, is exit 2 naming the path."""
    db = tmp_path / "users.sqlite3"
    assert "cannot read key file" in refused(2, admin(db, "enable", "a", keys=tmp_path / "nope"))
    assert "cannot read key file" in refused(2, admin(db, "enable", "a", keys=tmp_path))
    assert not db.exists()


def test_key_file_without_cryptography(tmp_path: Path) -> None:
    """Without the cryptography package, --key-file says what to install and exits 2."""
    # A package that shadows cryptography and cannot be imported, as if it were missing.
    shadow = tmp_path / "shadow" / "cryptography"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('blocked by the test')\n")
    path = os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")]))
    db, keys = tmp_path / "users.sqlite3", key_file(tmp_path / "keys", KEY_A)
    result = admin(db, "enable", "alice", keys=keys, env={"PYTHONPATH": path})
    assert "pip install 'totpcore[crypto]'" in refused(2, result)
    assert not db.exists()
    assert not leaked(result, KEY_A.hex())


# --- messages in command-line terms ---------------------------------------------------------

SERVICE_METHODS = ("begin_setup", "complete_setup", "new_recovery_codes", "import_secret")


def test_state_errors_name_the_admin_action(tmp_path: Path) -> None:
    """Lifecycle refusals name the admin action, never the Python method behind it."""
    db = tmp_path / "users.sqlite3"
    ok(db, "enable", "ann")
    cases = {
        "admin recovery-codes needs": admin(db, "recovery-codes", "ann"),
        "admin reset needs": admin(db, "reset", "ann"),
    }
    ok(db, "import", "-", stdin=imports_line("ben", BEN_KEY))
    cases["admin setup needs"] = admin(db, "setup", "ben", stdin="123456\n")
    for expected, result in cases.items():
        error = refused(1, result)
        assert expected in error
        assert not any(method in result.stderr for method in SERVICE_METHODS)


def test_key_errors_name_the_key_file_option(tmp_path: Path) -> None:
    """Cipher refusals speak of --key-file, not of configuring a service with a cipher."""
    db, keys = encrypted_store(tmp_path)
    missing = refused(2, admin(db, "verify", "ben", BEN.now()))
    assert "give that key with --key-file" in missing
    assert "configure the service" not in missing
    wrong = refused(2, admin(db, "verify", "ben", BEN.now(), keys=key_file(tmp_path / "c", KEY_C)))
    assert "which --key-file does not hold" in wrong
    assert "this cipher" not in wrong
    plain = tmp_path / "plain.sqlite3"
    ok(plain, "enable", "ann")
    added = refused(2, admin(plain, "enable", "bob", keys=keys))
    assert "leave out --key-file" in added
    assert "a cipher cannot" not in added


# --- multi-server stores ---------------------------------------------------------------------


def _url_lifecycle(db: str) -> None:
    """Enable, set up, verify and list a user on the store a URL names, as a subprocess."""
    enabled = admin(db, "enable", "carol", "--json")  # type: ignore[arg-type]
    assert enabled.returncode == 0, enabled.stderr
    assert json.loads(enabled.stdout) == {"carol": "setup_pending"}
    shown = admin(db, "setup", "carol", "--json")  # type: ignore[arg-type]
    assert shown.returncode == 1  # no confirmation code typed yet
    secret = json.loads(shown.stdout)["secret"]
    phone = TOTP.from_secret(secret)
    # A code the phone shows at no step near now: a fixed one ("000000") would be right for
    # the random secret about once in 300,000 runs, and set carol up.
    wrong = wrong_code(phone) + "\n"
    setup = admin(db, "setup", "carol", "--json", stdin=wrong)  # type: ignore[arg-type]
    assert setup.returncode == 1
    assert "not valid" in setup.stderr
    assert json.loads(setup.stdout)["secret"] == secret
    listed = admin(db, "list", "--json")  # type: ignore[arg-type]
    assert json.loads(listed.stdout) == [{"user": "carol", "status": "setup_pending"}]
    assert phone.now()  # the secret shown is a usable key


def test_admin_on_a_redis_url(redis_server: Any) -> None:
    """``--db redis://...`` runs the admin actions on a RedisStore (a real server)."""
    # The URL's store has the default key prefix, which other modules' tests write under
    # (tests/test_redis.py flushes before its tests, not after): start from an empty database,
    # whatever ran before.
    client = redis_server.client()
    client.flushdb()
    client.close()
    _url_lifecycle(redis_server.url)


def test_admin_on_a_postgresql_url(postgres: Any) -> None:
    """``--db postgresql://...`` runs the admin actions on a PostgresStore (a real server)."""
    host, port = "127.0.0.1", postgres.port
    _url_lifecycle(f"postgresql://postgres@{host}:{port}/{DATABASE}")


def test_admin_refuses_other_url_schemes() -> None:
    """An unknown URL scheme is a usage error; the URL (it may hold a password) is not echoed."""
    line = refused(2, admin("mysql://root:hunter2@db/x", "list"))  # type: ignore[arg-type]
    assert "hunter2" not in line
    assert "redis://" in line
