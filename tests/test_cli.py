"""The command line, run as a subprocess exactly as users run it."""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import totpcore.cli
from conftest import require_program, zbar_decode
from totpcore import HOTP, TOTP, encode_secret, parse_uri

KEY = bytes(range(40, 60))
SECRET = encode_secret(KEY)
AT = 1_700_000_000


def cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m totpcore ARGS``; the environment has no TOTPCORE_SECRET unless given."""
    environment = {k: v for k, v in os.environ.items() if k != "TOTPCORE_SECRET"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "totpcore", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def ok(*args: str, **kwargs: Any) -> str:
    """Run a command that must succeed; return its standard output."""
    result = cli(*args, **kwargs)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(status: int, *args: str, **kwargs: Any) -> str:
    """Run a command that must fail with ``status`` and one clean error line; return it."""
    result = cli(*args, **kwargs)
    assert result.returncode == status, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines, "an error must say what went wrong"
    assert lines[-1].startswith("totpcore: error: ")
    assert len([line for line in lines if line.startswith("totpcore: error:")]) == 1
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr
    return lines[-1]


def oathtool(*args: str) -> str:
    """A code from the oathtool program."""
    program = require_program("oathtool")
    return subprocess.run(
        [program, *args], capture_output=True, text=True, check=True
    ).stdout.strip()


# --- secret, code, verify ------------------------------------------------------------------


def test_secret() -> None:
    """Secret prints a new canonical 160-bit base32 secret; --bits and --json work."""
    first, second = ok("secret").strip(), ok("secret").strip()
    assert first != second
    assert len(first) == 32
    data = json.loads(ok("secret", "--bits", "256", "--json"))
    assert data["bits"] == 256
    assert len(data["secret"]) == 52
    assert "128" in refused(2, "secret", "--bits", "64")


def test_code_matches_oathtool_from_every_source(tmp_path: Path) -> None:
    """SECRET, --secret, --secret-file, stdin, $TOTPCORE_SECRET, --uri: one code, oathtool's."""
    expected = oathtool("--totp", f"--now=@{AT}", KEY.hex())
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n")
    uri = TOTP(KEY).uri("alice")
    outputs = [
        ok("code", SECRET, "--at", str(AT)),
        ok("code", "--secret", SECRET.lower(), "--at", str(AT)),
        ok("code", "--secret-file", str(secret_file), "--at", str(AT)),
        ok("code", "-", "--at", str(AT), stdin=SECRET + "\n"),
        ok("code", "--at", str(AT), env={"TOTPCORE_SECRET": SECRET}),
        ok("code", "--uri", uri, "--at", str(AT)),
    ]
    assert {output.strip() for output in outputs} == {expected}


def test_code_options_match_oathtool() -> None:
    """--digits, --algorithm, --period and ISO 8601 --at agree with oathtool."""
    expected = oathtool(
        "--totp=SHA512", "--digits=8", "--time-step-size=60s", "--now=@1893456000", KEY.hex()
    )
    ours = ok(
        "code",
        SECRET,
        "--digits",
        "8",
        "--algorithm",
        "sha512",
        "--period",
        "60",
        "--at",
        "2030-01-01T00:00:00Z",
    )
    assert ours.strip() == expected
    hotp = ok("code", SECRET, "--hotp", "--counter", "12345", "--json")
    assert json.loads(hotp) == {
        "code": oathtool("--counter=12345", KEY.hex()),
        "type": "hotp",
        "counter": 12345,
    }


def test_code_refusals() -> None:
    """Bad input is exit 2 with one line, never a traceback, never the secret."""
    refused(2, "code", "--at", str(AT))  # no secret at all
    refused(2, "code", SECRET, "--secret", SECRET)  # two sources
    refused(2, "code", SECRET[:-1] + "1")
    refused(2, "code", SECRET, "--at", "2030-01-01T00:00:00")  # naive time
    refused(2, "code", SECRET, "--at", "nan")
    refused(2, "code", SECRET, "--at", "-5")
    refused(2, "code", SECRET, "--digits", "9")
    refused(2, "code", SECRET, "--algorithm", "md5")
    refused(2, "code", SECRET, "--hotp")  # no counter
    refused(2, "code", SECRET, "--counter", "3")  # counter without --hotp
    refused(2, "code", "--uri", TOTP(KEY).uri("a"), "--digits", "8")
    refused(2, "code", "--uri", "otpauth://totp/a?secret=" + SECRET + "&digits=5")
    refused(2, "code", "--secret-file", "/nonexistent/secret")
    refused(2, "code", "--secret-file", sys.executable)  # binary, not text
    refused(2, "code", "--secret-file", "/")  # a directory
    refused(2, "code", "JBSWY3DPEHPK3PXP")  # 80 bits
    assert ok("code", "JBSWY3DPEHPK3PXP", "--allow-short-key", "--at", "0").strip().isdigit()
    refused(2, "no-such-command")


def test_verify_exit_status() -> None:
    """Verify exits 0 when the code is accepted (with its offset) and 1 when it is not."""
    previous = TOTP(KEY).generate(AT - 30)
    data = json.loads(ok("verify", previous, SECRET, "--at", str(AT), "--json"))
    assert data == {"accepted": True, "counter": AT // 30 - 1, "offset": -1}
    result = cli("verify", previous, SECRET, "--at", str(AT), "--window", "0")
    assert result.returncode == 1
    assert result.stdout.strip() == "rejected"
    assert cli("verify", "12x456", SECRET, "--at", str(AT)).returncode == 1
    ahead = HOTP(KEY).generate(7)
    assert "offset +2" in ok("verify", ahead, SECRET, "--hotp", "--counter", "5", "--window", "2")
    refused(2, "verify", ahead, SECRET, "--window", "11")


# --- uri, inspect --------------------------------------------------------------------------


def test_uri() -> None:
    """Uri makes a new secret unless given one, and its output parses back."""
    fresh = json.loads(ok("uri", "--account", "alice@example.com", "--issuer", "Big Co", "--json"))
    parsed = parse_uri(fresh["uri"])
    assert (parsed.account, parsed.issuer) == ("alice@example.com", "Big Co")
    assert encode_secret(parsed.key) == fresh["secret"]
    assert "%20" in fresh["uri"]
    given = ok("uri", "--account", "bob", "--secret", SECRET, "--hotp", "--counter", "4").strip()
    assert parse_uri(given) == parse_uri(HOTP(KEY).uri("bob", counter=4))
    assert "':'" in refused(2, "uri", "--account", "a:b")


def test_inspect_warnings() -> None:
    """Inspect lists the fields and warns about settings apps ignore; the secret stays hidden."""
    short_secret = encode_secret(KEY[:10])
    uri = f"otpauth://totp/Co:a?secret={encode_secret(bytes(16))}======&algorithm=SHA256&digits=8&period=60&issuer=Co"
    data = json.loads(ok("inspect", uri, "--json"))
    assert (data["type"], data["algorithm"], data["digits"], data["period"], data["key_bits"]) == (
        "totp",
        "SHA256",
        8,
        60,
        128,
    )
    text = " ".join(data["warnings"])
    for needle in ("SHA256", "8 digits", "period 60", "padding"):
        assert needle in text
    assert "secret" not in data
    short = json.loads(ok("inspect", f"otpauth://totp/a?secret={short_secret}", "--json"))
    assert any("80 bits" in warning for warning in short["warnings"])
    assert (
        json.loads(ok("inspect", TOTP(KEY).uri("a"), "--json", "--show-secret"))["secret"] == SECRET
    )
    assert "no compatibility warnings" in ok("inspect", TOTP(KEY).uri("a"))
    refused(2, "inspect", "otpauth://totp/a?digits=6")


# --- qr ------------------------------------------------------------------------------------


def test_qr_files_decode(tmp_path: Path) -> None:
    """Qr -o FILE.png decodes to the exact URI; -o FILE.svg writes an SVG."""
    uri = TOTP(KEY).uri("alice@example.com", issuer="Example Co")
    ok("qr", uri, "-o", str(tmp_path / "code.png"))
    assert zbar_decode(tmp_path / "code.png") == uri
    ok("qr", uri, "-o", str(tmp_path / "code.svg"))
    assert (tmp_path / "code.svg").read_text().lstrip().startswith("<svg")
    assert "█" in ok("qr", uri) or "\u2580" in ok("qr", uri)
    refused(2, "qr", uri, "-o", str(tmp_path / "code.gif"))
    refused(2, "qr", "otpauth://totp/a?secret=" + SECRET + "&counter=x&digits=x")
    refused(2, "qr", uri, "-o", str(tmp_path / "x.png"), "--scale", "2")


# --- migration -----------------------------------------------------------------------------


def test_export_then_import(tmp_path: Path) -> None:
    """export-migration then import-migration gives back the accounts, with the JSON keys."""
    uris = [
        TOTP(KEY).uri("alice", issuer="Co"),
        HOTP(KEY, digits=8, algorithm="SHA256").uri("bob", counter=9),
    ]
    exported = ok("export-migration", *uris).split()
    assert len(exported) == 1
    assert exported[0].startswith("otpauth-migration://offline?data=")
    imported = json.loads(ok("import-migration", *exported, "--json"))
    assert [entry["uri"] for entry in imported] == uris
    assert set(imported[1]) == {
        "account",
        "issuer",
        "secret",
        "type",
        "algorithm",
        "digits",
        "counter",
        "uri",
    }
    assert (imported[1]["type"], imported[1]["counter"], imported[1]["digits"]) == ("hotp", 9, 8)
    assert imported[0]["secret"] == SECRET
    assert "alice" in ok("import-migration", *exported)
    ok("qr", exported[0], "-o", str(tmp_path / "export.png"))
    assert zbar_decode(tmp_path / "export.png") == exported[0]


def test_migration_refusals() -> None:
    """Malformed exports and unexportable accounts are exit 2."""
    refused(2, "import-migration", "otpauth-migration://offline?data=%%%")
    refused(2, "import-migration", "otpauth://totp/a?secret=" + SECRET)
    refused(2, "export-migration", TOTP(KEY, period=60).uri("a"))
    refused(2, "export-migration", "nonsense")


# --- vectors -------------------------------------------------------------------------------


def test_vectors_on_totpcore() -> None:
    """All 28 embedded RFC vectors pass on totpcore."""
    output = ok("vectors")
    assert output.strip().endswith("28 passed, 0 failed")
    data = json.loads(ok("vectors", "--json", "--only", "hotp"))
    assert len(data) == 10
    assert all(row["ok"] for row in data)


def test_vectors_against_oathtool() -> None:
    """Oathtool passes the TOTP and the HOTP vectors through --against templates."""
    program = require_program("oathtool")
    totp = ok(
        "vectors",
        "--against",
        f"{program} --totp={{algorithm}} --digits={{digits}} --time-step-size={{period}}s "
        "--now=@{time} {key_hex}",
    )
    assert totp.strip().endswith("18 passed, 0 failed")
    hotp = ok("vectors", "--only", "hotp", "--against", f"{program} -c {{counter}} {{key_hex}}")
    assert hotp.strip().endswith("10 passed, 0 failed")


def test_vectors_against_a_wrong_implementation(tmp_path: Path) -> None:
    """An implementation that gets the truncation wrong fails with exit status 1."""
    script = tmp_path / "wrong.py"
    script.write_text(
        "import hashlib, hmac, struct, sys\n"
        "key, counter, digits = bytes.fromhex(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])\n"
        "mac = hmac.new(key, struct.pack('>Q', counter), hashlib.sha1).digest()\n"
        "value = int.from_bytes(mac[:4], 'big') & 0x7FFFFFFF  # no dynamic offset: wrong\n"
        "print(str(value % 10**digits).zfill(digits))\n"
    )
    result = cli(
        "vectors",
        "--only",
        "hotp",
        "--against",
        f"{sys.executable} {script} {{key_hex}} {{counter}} {{digits}}",
    )
    assert result.returncode == 1
    assert "MISMATCH" in result.stdout
    # RFC 4226 counter 8 happens to have dynamic offset 0, so the wrong one gets that right.
    assert "1 passed, 9 failed" in result.stdout


def test_vectors_template_errors() -> None:
    """Unknown placeholders and missing programs are usage errors."""
    assert "{nope}" in refused(2, "vectors", "--against", "echo {nope}")
    refused(2, "vectors", "--against", "/no/such/program {key_hex}")
    refused(2, "vectors", "--against", "")


# --- messages, version, bare command, option placement ------------------------------------


@pytest.mark.parametrize(
    ("args", "expected", "python_name"),
    [
        (("code", "JBSWY3DPEHPK3PXP"), "use --allow-short-key to", "enforce_key_length"),
        (("verify", "123456", SECRET, "--window", "11"), "--window must be", "window sides"),
        (
            ("verify", "123456", SECRET, "--hotp", "--counter", "0", "--window", "101"),
            "--window must be",
            "look_ahead",
        ),
        (("secret", "--bits", "64"), "--bits must be at least 128", "a secret needs"),
        (("secret", "--bits", "130"), "--bits must be", "bits must"),
        (("code", SECRET, "--digits", "9"), "--digits must be", "digits must"),
        (("code", SECRET, "--period", "0"), "--period must be", "period must"),
        (("code", SECRET, "--algorithm", "md5"), "--algorithm must be", "algorithm must"),
        (("code", SECRET, "--at", "-5"), "--at must not be before", "time must"),
        (("code", SECRET, "--hotp", "--counter", "-1"), "--counter must be", "counter must"),
        (("uri", "--account", "a:b"), "--account must not contain", "account must"),
        (("uri", "--account", "a", "--issuer", " Co"), "--issuer must not", "issuer must"),
        (("export-migration", TOTP(KEY).uri("a"), "--batch-size", "0"), "--batch-size", "batch_"),
    ],
)
def test_errors_name_the_flags(args: tuple[str, ...], expected: str, python_name: str) -> None:
    """Library messages that name Python arguments are reworded with the CLI's flag names."""
    error = refused(2, *args)
    assert expected in error
    assert not re.search(rf"(?<!--){re.escape(python_name)}", error), error


def test_qr_scale_error_names_the_flag(tmp_path: Path) -> None:
    """The QR renderer's 'scale' is reported as --scale."""
    error = refused(2, "qr", TOTP(KEY).uri("a"), "-o", str(tmp_path / "a.png"), "--scale", "2")
    assert "--scale must be between 4 and 100" in error


def test_uri_fields_are_not_blamed_on_flags() -> None:
    """A bad field inside a URI the user gave is not reworded as a flag they never typed."""
    error = refused(2, "code", "--uri", f"otpauth://totp/a?secret={SECRET}&digits=9")
    assert "--digits" not in error
    assert "digits parameter" in error


def test_stray_arguments_are_not_echoed() -> None:
    """Arguments argparse cannot place are counted, not quoted: they may be secrets."""
    uri = TOTP(KEY).uri("alice")
    error = refused(2, "uri", "--account", "a", "--uri", uri)  # uri takes no --uri
    assert "--uri" in error
    error = refused(2, "code", SECRET, SECRET + "X", f"--secretfile={SECRET}")
    assert "--secretfile" in error
    assert "1 unexpected argument" in error
    assert "unknown command;" in refused(2, SECRET)
    assert "unknown command 'verfy'" in refused(2, "verfy")


def test_version() -> None:
    """--version prints 'totpcore VERSION' from the package metadata and exits 0."""
    from importlib.metadata import version

    assert ok("--version").strip() == f"totpcore {version('totpcore')}"


def test_version_without_distribution_metadata(tmp_path: Path) -> None:
    """From a bare source tree (no installed distribution) --version says 'unknown'.

    The package is copied alone into a temporary directory, so this holds whether the tests
    run against a checkout or an installed wheel (whose metadata sits beside the package).
    """
    import shutil

    package = Path(totpcore.cli.__file__).parents[1]
    shutil.copytree(package, tmp_path / "totpcore", ignore=shutil.ignore_patterns("__pycache__"))
    environment = {k: v for k, v in os.environ.items() if k != "TOTPCORE_SECRET"}
    environment["PYTHONPATH"] = str(tmp_path)
    # -S: no site-packages, so no metadata; the package itself comes from PYTHONPATH.
    result = subprocess.run(
        [sys.executable, "-S", "-m", "totpcore", "--version"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "totpcore unknown"


def test_bare_command_prints_usage_and_a_hint() -> None:
    """A bare 'totpcore' (or 'admin') prints one usage line and a hint, and exits 2."""
    result = cli()
    assert result.returncode == 2
    assert result.stdout == ""
    usage, hint = result.stderr.splitlines()
    assert usage.startswith("usage: totpcore ")
    assert hint.startswith("totpcore: error: ")
    assert "run 'totpcore --help' for the commands" in hint
    assert cli("--json").stderr == result.stderr
    admin = cli("admin", "--db", "x.sqlite3", env={"COLUMNS": "200"})
    assert admin.returncode == 2
    usage, hint = admin.stderr.splitlines()
    assert usage.startswith("usage: totpcore admin ")
    assert "run 'totpcore admin --help' for the actions" in hint


def test_json_before_the_command() -> None:
    """--json may come before the command too; a command that prints no data refuses it."""
    before = json.loads(ok("--json", "code", SECRET, "--at", str(AT)))
    after = json.loads(ok("code", SECRET, "--at", str(AT), "--json"))
    assert before == after == {"code": TOTP(KEY).generate(AT), "type": "totp", "counter": AT // 30}
    assert json.loads(ok("--json", "vectors", "--only", "hotp"))[0]["ok"] is True
    assert "--json" in refused(2, "--json", "qr", TOTP(KEY).uri("a"))


def test_admin_global_options_before_or_after_the_action(tmp_path: Path) -> None:
    """--db, --key-file and --json are accepted before or after the admin action."""
    db = str(tmp_path / "users.sqlite3")
    ok("admin", "enable", "carol", "--db", db)
    ok("admin", "--db", db, "enable", "dave")
    listed = [
        json.loads(ok(*args))
        for args in (
            ("--json", "admin", "--db", db, "list"),
            ("admin", "--json", "list", "--db", db),
            ("admin", "list", "--db", db, "--json"),
        )
    ]
    assert listed[0] == listed[1] == listed[2]
    assert [row["user"] for row in listed[0]] == ["carol", "dave"]
    assert "--db" in refused(2, "admin", "status", "carol")
    assert "--issuer" in refused(2, "admin", "--db", db, "--issuer", "Co", "status", "carol")
    # The key file is read wherever it is given: a missing one is refused either way.
    missing = str(tmp_path / "no-keys")
    assert "key file" in refused(2, "admin", "--key-file", missing, "--db", db, "list")
    assert "key file" in refused(2, "admin", "list", "--db", db, "--key-file", missing)


# --- --hex, --window, --at @, qr from options ------------------------------------------------


def test_hex_key_on_code_verify_uri_and_qr(tmp_path: Path) -> None:
    """--hex takes the key in hex as oathtool does, on code, verify, uri and qr."""
    expected = oathtool("--totp", f"--now=@{AT}", KEY.hex())
    assert ok("code", "--hex", KEY.hex(), "--at", str(AT)).strip() == expected
    assert ok("code", "--hex", KEY.hex().upper(), "--at", str(AT)).strip() == expected
    assert ok("verify", expected, "--hex", KEY.hex(), "--at", str(AT)).startswith("accepted")
    uri = ok("uri", "--hex", KEY.hex(), "--account", "alice").strip()
    assert parse_uri(uri).key == KEY
    ok("qr", "--hex", KEY.hex(), "--account", "alice", "-o", str(tmp_path / "hex.png"))
    assert zbar_decode(tmp_path / "hex.png") == uri
    short = refused(2, "code", "--hex", KEY[:10].hex())
    assert "--allow-short-key" in short
    assert ok("code", "--hex", KEY[:10].hex(), "--allow-short-key", "--at", "0").strip().isdigit()
    for bad in (KEY.hex()[:-1], KEY.hex()[:-2] + "zz", ""):
        error = refused(2, "code", "--hex", bad)
        assert "--hex" in error
        if bad:
            assert bad not in error
    assert "one way only" in refused(2, "code", SECRET, "--hex", KEY.hex())


def test_code_window_lists_codes_by_offset() -> None:
    """Command code --window N lists the codes around now by offset; oathtool -w agrees."""
    text = ok("code", SECRET, "--at", f"@{AT}", "--window", "2").splitlines()
    assert [line.split()[0] for line in text] == ["-2", "-1", "+0", "+1", "+2"]
    later = oathtool("--totp", "-w", "2", f"--now=@{AT}", KEY.hex()).split()
    assert [line.split()[1] for line in text[2:]] == later
    assert text[0].split()[1] == TOTP(KEY).generate(AT - 60)
    data = json.loads(ok("code", SECRET, "--at", str(AT), "--window", "1", "--json"))
    step = AT // 30
    assert (data["code"], data["counter"]) == (TOTP(KEY).generate(AT), step)
    assert data["window"] == [
        {"offset": offset, "counter": step + offset, "code": TOTP(KEY).generate(AT + 30 * offset)}
        for offset in (-1, 0, 1)
    ]
    # HOTP: counters ahead, like verify's window and oathtool -c C -w N.
    hotp = ok("code", SECRET, "--hotp", "--counter", "5", "--window", "2").splitlines()
    assert hotp == [
        f"+{i} {code}" for i, code in enumerate(oathtool("-c", "5", "-w", "2", KEY.hex()).split())
    ]
    # At the epoch there is no step before 0.
    assert [
        line.split()[0] for line in ok("code", SECRET, "--at", "0", "--window", "1").splitlines()
    ] == ["+0", "+1"]
    assert "--window must be between 0 and 10" in refused(2, "code", SECRET, "--window", "11")
    assert "--window" in refused(2, "code", SECRET, "--window", "-1")


def test_at_takes_oathtool_at_seconds() -> None:
    """--at @SECONDS (oathtool's spelling) equals --at SECONDS and ISO 8601."""
    plain = ok("code", SECRET, "--at", str(AT))
    assert ok("code", SECRET, "--at", f"@{AT}") == plain
    assert ok("code", SECRET, "--at", "2023-11-14T22:13:20Z") == plain
    assert ok("verify", plain.strip(), SECRET, "--at", f"@{AT}", "--window", "0")
    assert "@1700000000" in refused(2, "code", SECRET, "--at", "@soon")
    assert "--at must" in refused(2, "code", SECRET, "--at", "@-5")
    assert "--at must" in refused(2, "code", SECRET, "--at", "@inf")


def test_qr_builds_the_uri_from_options(tmp_path: Path) -> None:
    """Command qr --secret S --account A --issuer I draws the URI that uri prints for them."""
    expected = TOTP(KEY).uri("alice@example.com", issuer="Example Co")
    ok(
        "qr",
        "--secret",
        SECRET,
        "--account",
        "alice@example.com",
        "--issuer",
        "Example Co",
        "-o",
        str(tmp_path / "built.png"),
    )
    assert zbar_decode(tmp_path / "built.png") == expected
    env = {"TOTPCORE_SECRET": SECRET}
    ok("qr", "--account", "bob", "--hotp", "--counter", "3", "-o", str(tmp_path / "h.png"), env=env)
    assert parse_uri(zbar_decode(tmp_path / "h.png")) == parse_uri(HOTP(KEY).uri("bob", counter=3))
    assert "--account" in refused(2, "qr")
    assert "--account" in refused(2, "qr", "--secret", SECRET)
    assert "no secret" in refused(2, "qr", "--account", "alice")
    assert "not both" in refused(2, "qr", expected, "--account", "alice")
    assert "not both" in refused(2, "qr", expected, "--secret", SECRET)


# --- admin ---------------------------------------------------------------------------------


def test_admin_lifecycle(tmp_path: Path) -> None:
    """enable, status, list, interactive setup, recovery codes, reset, unlock, disable."""
    db = str(tmp_path / "users.sqlite3")
    refused(2, "admin", "--db", db, "status", "alice")  # no database yet
    assert json.loads(ok("admin", "--db", db, "enable", "alice", "bob", "--json")) == {
        "alice": "setup_pending",
        "bob": "setup_pending",
    }
    assert ok("admin", "--db", db, "status", "alice").strip() == "setup_pending"
    assert ok("admin", "--db", db, "list") == "alice\tsetup_pending\nbob\tsetup_pending\n"

    # Interactive setup: read the secret from the screen, answer with the phone's code.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "totpcore",
            "admin",
            "--db",
            db,
            "--issuer",
            "Example",
            "setup",
            "alice",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    screen = []
    for line in process.stdout:
        screen.append(line)
        if line.startswith("uri:"):
            break
    assert any("\u2588" in line for line in screen), "the QR code is shown"
    secret = next(line for line in screen if line.startswith("secret:")).split(":", 1)[1].strip()
    phone = TOTP.from_secret(secret)
    _, errors = process.communicate(phone.now() + "\n", timeout=60)
    assert process.returncode == 0, errors
    assert "setup complete" in errors
    assert ok("admin", "--db", db, "status", "alice").strip() == "active"
    # The secret is never shown again.
    refused(1, "admin", "--db", db, "setup", "alice", stdin="123456\n")

    codes = json.loads(ok("admin", "--db", db, "recovery-codes", "alice", "--json"))
    assert len(codes) == 10
    assert ok("admin", "--db", db, "unlock", "alice").strip() == "alice: unlocked"
    refused(1, "admin", "--db", db, "unlock", "nobody")
    refused(1, "admin", "--db", db, "reset", "bob")  # bob never finished setup
    assert "setup_pending" in ok("admin", "--db", db, "reset", "alice")
    setup = json.loads(cli("admin", "--db", db, "setup", "alice", "--json", stdin="").stdout)
    assert setup["secret"] != secret.strip().replace(" ", "")
    assert json.loads(ok("admin", "--db", db, "disable", "bob", "--json"))["changed"] is True
    assert ok("admin", "--db", db, "status", "bob").strip() == "disabled"


def test_admin_setup_with_wrong_code(tmp_path: Path) -> None:
    """A wrong confirmation code exits 1 and leaves the user pending, secret unchanged."""
    db = str(tmp_path / "users.sqlite3")
    ok("admin", "--db", db, "enable", "carol")
    first = cli("admin", "--db", db, "setup", "carol", "--json", stdin="")
    assert first.returncode == 1  # no code typed
    secret = json.loads(first.stdout)["secret"]
    phone = TOTP.from_secret(secret)
    now = time.time()
    near = {phone.generate(now + 30 * offset) for offset in (-2, -1, 0, 1, 2)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in near)
    second = cli("admin", "--db", db, "setup", "carol", "--json", stdin=wrong + "\n")
    assert second.returncode == 1
    assert "not valid" in second.stderr
    assert json.loads(second.stdout)["secret"] == secret
    assert ok("admin", "--db", db, "status", "carol").strip() == "setup_pending"


def test_admin_bad_input(tmp_path: Path) -> None:
    """A bad user id or a file that is not a database is exit 2, in one line."""
    db = str(tmp_path / "users.sqlite3")
    ok("admin", "--db", db, "enable", "dave")
    refused(2, "admin", "--db", db, "status", "")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 100)
    refused(2, "admin", "--db", str(junk), "list")
    refused(2, "admin", "--db", db, "frobnicate", "dave")


def test_console_script_is_installed() -> None:
    """The 'totpcore' console script runs the same command line."""
    script = Path(sys.executable).with_name("totpcore")
    if not script.exists():
        pytest.fail("the totpcore console script is not installed next to the interpreter")
    result = subprocess.run(
        [str(script), "vectors", "--only", "totp"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "18 passed" in result.stdout


# --- module structure ----------------------------------------------------------------------

CLI_PACKAGE = Path(totpcore.cli.__file__).parent
# What only the admin command may load: `totpcore code` must start without them.
HEAVY_MODULES = ("sqlite3", "totpcore.service", "totpcore.stores")


@pytest.mark.parametrize(
    "module", ["totpcore.cli", *(f"totpcore.cli.{p.stem}" for p in CLI_PACKAGE.glob("[!_]*.py"))]
)
def test_cli_module_imports_alone_without_the_service(module: str) -> None:
    """Each CLI module imports first in a fresh interpreter, and the stores stay unloaded.

    A module in an import cycle fails when it is the first one imported (it meets a
    half-initialised partner); ``code`` run through the whole parser tree must not load the
    service, the stores or sqlite3.
    """
    program = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "from totpcore.cli import main\n"
        f"assert main(['code', '--secret', {SECRET!r}, '--at', '0']) == 0\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY_MODULES!r})))\n"
    )
    assert last_line_of(program) == "[]"


def last_line_of(program: str) -> str:
    """Run ``program`` in a fresh interpreter; it must succeed; return its last line of output.

    Without coverage's hand-off to child processes: coverage itself loads sqlite3, and what
    the callers check is the command's own start-up.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")}
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


# What `totpcore code` must start without: each is only needed by other commands or paths,
# and each costs start-up (dataclasses loads inspect; the stock help formatter loads shutil).
LAZY_FOR_CODE = (
    "base64", "dataclasses", "datetime", "hashlib", "inspect", "random", "secrets", "shutil",
    "sqlite3", "totpcore.cli.bench", "totpcore.service", "totpcore.stores", "totpcore.uri",
    "urllib",
)  # fmt: skip


def test_code_loads_only_what_it_uses() -> None:
    """``totpcore code`` loads none of the modules only other commands need.

    Measured as the modules the command adds after ``import totpcore``, in a fresh
    interpreter, so that whatever the environment's start-up loads does not count.
    """
    program = (
        "import sys\n"
        "import totpcore\n"
        "before = set(sys.modules)\n"
        "from totpcore.cli import main\n"
        f"assert main(['code', '--secret', {SECRET!r}]) == 0\n"
        "added = set(sys.modules) - before\n"
        f"print(sorted(m for m in added if m.startswith({LAZY_FOR_CODE!r})))\n"
    )
    assert last_line_of(program) == "[]"


def test_command_table_matches_the_commands_defined() -> None:
    """COMMAND_MODULES names every command the full tree defines, each in its own module.

    A command missing from the table would still work (a word naming no command builds the
    whole tree) but lose the fast start; one listed under the wrong module would not parse.
    """
    from totpcore.cli import COMMAND_MODULES, build_parser

    assert set(subcommands(build_parser(None))) == set(COMMAND_MODULES)
    for command in COMMAND_MODULES:
        assert subcommands(build_parser(command)) == [command]


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    """The command names a parser accepts (argparse has no public way to list them)."""
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return list(action.choices)
    return []


def test_a_mistyped_command_still_lists_every_command() -> None:
    """Only the named command's parser is built, but a word naming none gets the full tree."""
    result = subprocess.run(
        [sys.executable, "-m", "totpcore", "cod", "--secret", SECRET],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown command 'cod'" in result.stderr
    assert SECRET not in result.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "totpcore", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("code", "verify", "admin", "vectors", "import-migration", "bench"):
        assert command in listing


def cli_imports(path: Path) -> tuple[set[str], list[str]]:
    """The totpcore.cli modules a file imports anywhere (functions too), and private names."""
    modules: set[str] = set()
    private: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            if node.module.startswith("totpcore."):
                private += [f"{node.module}.{a.name}" for a in node.names if a.name[0] == "_"]
    return {module for module in modules if module.startswith("totpcore.cli")}, private


def test_cli_modules_form_a_tree() -> None:
    """The package loads the command modules, they import only ``_common``, and it none.

    So there is no import cycle, and no module reaches into another's underscore names. The
    package imports the command modules by name, when a command needs one (see
    COMMAND_MODULES), so its table must name exactly the command modules there are.
    """
    from totpcore.cli import COMMAND_MODULES

    common = "totpcore.cli._common"
    commands = {f"totpcore.cli.{p.stem}" for p in CLI_PACKAGE.glob("[!_]*.py")}
    assert commands >= {f"totpcore.cli.{n}" for n in ("admin", "engine", "migration", "vectors")}
    assert {f"totpcore.cli.{module}" for module in COMMAND_MODULES.values()} == commands
    for path in CLI_PACKAGE.glob("*.py"):
        imported, private = cli_imports(path)
        assert not private, f"{path.name} imports private names {private}"
        if path.stem == "__init__":
            assert imported == {common}
        elif path.stem == "_common":
            assert not imported
        else:
            assert imported == {common}, f"{path.name} imports {imported}"


def test_bench_is_listed_but_loaded_only_for_itself() -> None:
    """The help lists bench and 'bench --help' works, but other commands never load its module.

    The bench module brings the measuring harness (statistics, timeit, tempfile): importing it
    for every command would cost each a third more start-up.
    """
    program = (
        "import sys\n"
        "from totpcore.cli import main\n"
        f"assert main(['code', '--secret', {SECRET!r}, '--at', '0']) == 0\n"
        "print(sorted(m for m in sys.modules if m.endswith('bench')))\n"
    )
    assert last_line_of(program) == "[]"
    assert re.search(r"^    bench\s", ok("--help"), re.MULTILINE)
    assert ok("bench", "--help").startswith("usage: totpcore bench")
    assert "--rounds" in refused(2, "--json", "bench", "--rounds", "0")
