"""The ``totpcore`` command line (also ``python -m totpcore``).

Exit status: 0 ok, 1 rejected or mismatch, 2 usage or bad input. Errors are one line on
standard error, without a traceback, and never contain a secret. Every command that prints
data takes ``--json``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import shlex
import string
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from totpcore.errors import TotpcoreError, UserStateError
from totpcore.migration import build_migration_uris, parse_migration_uri
from totpcore.otp import HOTP, MAX_WINDOW, TOTP, Time
from totpcore.secret import MIN_KEY_BYTES, decode_secret, encode_secret, generate_secret
from totpcore.uri import OTPAuthURI, build_uri, parse_uri
from totpcore.vectors import VECTORS, Vector

__all__ = ["main", "run"]

_PLACEHOLDERS = frozenset({"key_hex", "secret", "time", "counter", "digits", "algorithm", "period"})
_VECTOR_TIMEOUT = 30


class UsageError(Exception):
    """A command line that does not make sense (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors become one-line UsageErrors instead of usage dumps."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as error:
        return _fail(str(error), 2)
    except UserStateError as error:
        return _fail(str(error), 1)
    except TotpcoreError as error:
        return _fail(str(error), 2)
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # last resort: one line, no traceback, no message text
        return _fail(f"unexpected {type(error).__name__}; please report it", 2)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _fail(message: str, status: int) -> int:
    """Print one error line and return ``status``."""
    print(f"totpcore: error: {message}", file=sys.stderr)
    return status


# --- parser --------------------------------------------------------------------------------


def _build_parser() -> _Parser:
    """The whole command tree."""
    parser = _Parser(prog="totpcore", description="TOTP/HOTP codes, secrets, URIs and QR codes.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    output = _Parser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON instead of text")

    secret = commands.add_parser("secret", parents=[output], help="print a new random secret")
    secret.add_argument("--bits", type=int, default=160, help="key size (default 160)")
    secret.set_defaults(handler=_cmd_secret)

    key_source = _key_options()
    code = commands.add_parser("code", parents=[output, key_source], help="print the current code")
    code.add_argument("secret", nargs="?", help="base32 secret, or - to read it from stdin")
    code.set_defaults(handler=_cmd_code)

    verify = commands.add_parser("verify", parents=[output, key_source], help="check a code")
    verify.add_argument("code", help="the code to check")
    verify.add_argument("secret", nargs="?", help="base32 secret, or - to read it from stdin")
    verify.add_argument(
        "--window",
        type=int,
        default=1,
        help=f"TOTP: steps accepted either side (0-{MAX_WINDOW}); HOTP: counters ahead",
    )
    verify.set_defaults(handler=_cmd_verify)

    uri = commands.add_parser("uri", parents=[output, key_source], help="print an otpauth URI")
    uri.add_argument("secret", nargs="?", help="base32 secret (default: a new one)")
    uri.add_argument("--account", required=True, help="account name shown in the app")
    uri.add_argument("--issuer", help="service name shown in the app")
    uri.set_defaults(handler=_cmd_uri)

    inspect = commands.add_parser("inspect", parents=[output], help="show a URI's fields")
    inspect.add_argument("uri")
    inspect.add_argument("--show-secret", action="store_true", help="also print the secret")
    inspect.set_defaults(handler=_cmd_inspect)

    qr = commands.add_parser("qr", help="show a URI as a QR code")
    qr.add_argument("uri", help="an otpauth:// or otpauth-migration:// URI")
    qr.add_argument("-o", "--output", help="write FILE.png or FILE.svg instead of the terminal")
    qr.add_argument("--scale", type=int, default=8, help="pixels per module in files (min 4)")
    qr.set_defaults(handler=_cmd_qr)

    imports = commands.add_parser(
        "import-migration", parents=[output], help="decode Google Authenticator exports"
    )
    imports.add_argument("uris", nargs="+", metavar="URI")
    imports.set_defaults(handler=_cmd_import_migration)

    exports = commands.add_parser(
        "export-migration", parents=[output], help="encode otpauth URIs as an export"
    )
    exports.add_argument("uris", nargs="+", metavar="URI")
    exports.add_argument("--batch-size", type=int, default=10, help="accounts per QR code")
    exports.set_defaults(handler=_cmd_export_migration)

    vectors = commands.add_parser("vectors", parents=[output], help="run the RFC test vectors")
    vectors.add_argument(
        "--against",
        metavar="TEMPLATE",
        help="command template of another implementation, with {key_hex} {secret} {time} "
        "{counter} {digits} {algorithm} {period}",
    )
    vectors.add_argument("--only", choices=("hotp", "totp"), help="run one RFC's vectors")
    vectors.set_defaults(handler=_cmd_vectors)

    from totpcore.cli_admin import add_admin_parser

    add_admin_parser(commands, output)
    return parser


def _key_options() -> _Parser:
    """Where the key comes from, and the OTP parameters."""
    options = _Parser(add_help=False)
    group = options.add_argument_group("secret (one of; else $TOTPCORE_SECRET)")
    group.add_argument("--secret", dest="secret_option", metavar="S", help="base32 secret")
    group.add_argument("--secret-file", metavar="F", help="file holding the base32 secret")
    group.add_argument("--uri", metavar="U", help="otpauth URI holding secret and parameters")
    params = options.add_argument_group("parameters (not with --uri)")
    params.add_argument("--digits", type=int, help="6, 7 or 8 (default 6)")
    params.add_argument("--algorithm", help="SHA1, SHA256 or SHA512 (default SHA1)")
    params.add_argument("--period", type=int, help="TOTP step in seconds (default 30)")
    params.add_argument("--hotp", action="store_true", help="HOTP instead of TOTP")
    params.add_argument("--counter", type=int, help="HOTP counter")
    params.add_argument("--at", help="TOTP time: Unix seconds or ISO 8601 with a zone")
    params.add_argument("--allow-short-key", action="store_true", help="accept keys under 128 bits")
    return options


# --- commands ------------------------------------------------------------------------------


def _cmd_secret(args: argparse.Namespace) -> int:
    secret = generate_secret(args.bits)
    _emit(args, {"secret": secret, "bits": args.bits}, secret)
    return 0


def _cmd_code(args: argparse.Namespace) -> int:
    otp, counter = _otp(args)
    if isinstance(otp, HOTP):
        code = otp.generate(counter)
        _emit(args, {"code": code, "type": "hotp", "counter": counter}, code)
    else:
        at = _at(args)
        code = otp.generate(at)
        _emit(args, {"code": code, "type": "totp", "counter": otp.counter_at(at)}, code)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    otp, counter = _otp(args)
    if isinstance(otp, HOTP):
        match = otp.verify(args.code, counter, look_ahead=args.window)
    else:
        match = otp.verify(args.code, at=_at(args), window=args.window)
    data = {
        "accepted": match is not None,
        "counter": None if match is None else match.counter,
        "offset": None if match is None else match.offset,
    }
    text = (
        "rejected"
        if match is None
        else f"accepted (counter {match.counter}, offset {match.offset:+d})"
    )
    _emit(args, data, text)
    return 0 if match is not None else 1


def _cmd_uri(args: argparse.Namespace) -> int:
    if args.uri:
        raise UsageError("uri builds a URI; give the secret with --secret, not --uri")
    generated = _source_count(args) == 0 and not os.environ.get("TOTPCORE_SECRET")
    otp, counter = _otp(args, generate=generated)
    if isinstance(otp, HOTP):
        uri = otp.uri(args.account, issuer=args.issuer, counter=counter)
    else:
        uri = otp.uri(args.account, issuer=args.issuer)
    _emit(args, {"uri": uri, "secret": encode_secret(otp.key)}, uri)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    fields = parse_uri(args.uri)
    warnings = _compatibility_warnings(fields, args.uri)
    data: dict[str, Any] = {
        "type": fields.kind,
        "account": fields.account,
        "issuer": fields.issuer,
        "algorithm": fields.algorithm,
        "digits": fields.digits,
        "period": fields.period,
        "counter": fields.counter,
        "key_bits": len(fields.key) * 8,
        "warnings": warnings,
    }
    if args.show_secret:
        data["secret"] = encode_secret(fields.key)
    lines = [f"{name:10} {value}" for name, value in data.items() if name != "warnings"]
    lines += [f"warning: {warning}" for warning in warnings] or ["no compatibility warnings"]
    _emit(args, data, "\n".join(lines))
    return 0


def _compatibility_warnings(fields: OTPAuthURI, uri: str) -> list[str]:
    """Settings that popular authenticator apps ignore or reject."""
    warnings = []
    if fields.algorithm != "SHA1":
        warnings.append(
            f"algorithm {fields.algorithm}: Google Authenticator and several other apps "
            "ignore it and compute SHA1 codes, which will not match"
        )
    if fields.digits != 6:
        warnings.append(f"{fields.digits} digits: some apps only show 6-digit codes")
    if fields.kind == "totp" and fields.period != 30:
        warnings.append(f"period {fields.period} s: some apps ignore it and use 30 s")
    if len(fields.key) < MIN_KEY_BYTES:
        warnings.append(
            f"key is {len(fields.key) * 8} bits: RFC 4226 requires at least 128 (160 recommended)"
        )
    query = uri.partition("?")[2]
    secret_values = [part[7:] for part in query.split("&") if part.startswith("secret=")]
    if any("=" in value or "%3D" in value.upper() for value in secret_values):
        warnings.append("the secret has '=' padding: some apps reject it")
    if fields.kind == "hotp":
        warnings.append("HOTP: several apps (and Microsoft Authenticator) support TOTP only")
    return warnings


def _cmd_qr(args: argparse.Namespace) -> int:
    from totpcore.qr import qr_png, qr_svg, qr_terminal

    if args.uri.lower().startswith("otpauth-migration:"):
        parse_migration_uri(args.uri)
    else:
        parse_uri(args.uri)
    if args.output is None:
        sys.stdout.write(qr_terminal(args.uri))
        return 0
    extension = os.path.splitext(args.output)[1].lower()
    if extension == ".png":
        qr_png(args.uri, args.output, scale=args.scale)
    elif extension == ".svg":
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(qr_svg(args.uri, scale=args.scale))
    else:
        raise UsageError("-o takes a file ending in .png or .svg")
    return 0


def _cmd_import_migration(args: argparse.Namespace) -> int:
    accounts = [account for uri in args.uris for account in parse_migration_uri(uri).accounts]
    data: list[dict[str, Any]] = [
        {
            "account": account.account,
            "issuer": account.issuer,
            "secret": encode_secret(account.key),
            "type": account.kind,
            "algorithm": account.algorithm,
            "digits": account.digits,
            "counter": account.counter,
            "uri": build_uri(account),
        }
        for account in accounts
    ]
    lines = []
    for account in accounts:
        label = f"{account.issuer}: {account.account}" if account.issuer else account.account
        lines.append(f"{label}\n  {build_uri(account)}")
    _emit(args, data, "\n".join(lines))
    return 0


def _cmd_export_migration(args: argparse.Namespace) -> int:
    uris = build_migration_uris([parse_uri(uri) for uri in args.uris], batch_size=args.batch_size)
    _emit(args, uris, "\n".join(uris))
    return 0


def _cmd_vectors(args: argparse.Namespace) -> int:
    template = None if args.against is None else _template(args.against)
    needs_time = template is not None and bool({"time", "period"} & _fields_of(template))
    rows = []
    for vector in VECTORS:
        if args.only and vector.kind != args.only:
            continue
        if needs_time and vector.kind == "hotp":
            continue  # RFC 4226 vectors have no time to fill in
        got = _ours(vector) if template is None else _theirs(template, vector)
        rows.append((vector, got))
    if not rows:
        raise UsageError("no vector fits this template and --only")
    failures = sum(1 for vector, got in rows if got != vector.code)
    data = [
        {
            "kind": vector.kind,
            "algorithm": vector.algorithm,
            "counter": vector.counter,
            "time": vector.time,
            "expected": vector.code,
            "got": got,
            "ok": got == vector.code,
        }
        for vector, got in rows
    ]
    lines = [
        f"{'kind':5} {'algorithm':9} {'time':>12} {'counter':>10} {'expected':9} {'got':9} result"
    ]
    for vector, got in rows:
        time_text = "-" if vector.time is None else str(vector.time)
        result = "ok" if got == vector.code else "MISMATCH"
        lines.append(
            f"{vector.kind:5} {vector.algorithm:9} {time_text:>12} {vector.counter:>10} "
            f"{vector.code:9} {got[:9]:9} {result}"
        )
    lines.append(f"{len(rows) - failures} passed, {failures} failed")
    _emit(args, data, "\n".join(lines))
    return 1 if failures else 0


def _ours(vector: Vector) -> str:
    """Totpcore's answer for a vector."""
    key = bytes.fromhex(vector.key_hex)
    if vector.kind == "totp" and vector.time is not None and vector.period is not None:
        otp = TOTP(key, digits=vector.digits, algorithm=vector.algorithm, period=vector.period)
        return otp.generate(vector.time)
    return HOTP(key, digits=vector.digits, algorithm=vector.algorithm).generate(vector.counter)


def _template(text: str) -> list[str]:
    """Split a command template into arguments and check its placeholders."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise UsageError(f"--against: {error}") from None
    if not words:
        raise UsageError("--against needs a command")
    unknown = _fields_of(words) - _PLACEHOLDERS
    if unknown:
        raise UsageError(f"--against: unknown placeholder {{{sorted(unknown)[0]}}}")
    return words


def _fields_of(words: list[str]) -> set[str]:
    """The placeholder names used in a template."""
    names: set[str] = set()
    for word in words:
        try:
            parsed = list(string.Formatter().parse(word))
        except ValueError as error:
            raise UsageError(f"--against: {error}") from None
        names.update(name for _, name, _, _ in parsed if name is not None)
    return names


def _theirs(template: list[str], vector: Vector) -> str:
    """Run another implementation on a vector (no shell: each word is formatted alone)."""
    values = {
        "key_hex": vector.key_hex,
        "secret": encode_secret(bytes.fromhex(vector.key_hex)),
        "time": "" if vector.time is None else str(vector.time),
        "counter": str(vector.counter),
        "digits": str(vector.digits),
        "algorithm": vector.algorithm,
        "period": "" if vector.period is None else str(vector.period),
    }
    command = [word.format(**values) for word in template]
    try:
        result = subprocess.run(  # noqa: S603 - the user's own command, run without a shell
            command, capture_output=True, text=True, timeout=_VECTOR_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise UsageError(f"--against: cannot run {command[0]!r}: not found") from None
    except subprocess.TimeoutExpired:
        return "timeout"
    if result.returncode != 0:
        return f"exit {result.returncode}"
    output = result.stdout.strip()
    return output.splitlines()[-1].strip() if output else ""


# --- helpers -------------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with --json, else ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(text)


def _source_count(args: argparse.Namespace) -> int:
    """How many key sources the command line names."""
    return sum(
        value is not None for value in (args.secret, args.secret_option, args.secret_file, args.uri)
    )


def _otp(args: argparse.Namespace, *, generate: bool = False) -> tuple[HOTP | TOTP, int]:
    """Build the HOTP or TOTP the options describe; return it with the HOTP counter."""
    if _source_count(args) > 1:
        raise UsageError(
            "give the secret one way only: SECRET, -, --secret, --secret-file or --uri"
        )
    enforce = not args.allow_short_key
    if args.uri is not None:
        if any(value is not None for value in (args.digits, args.algorithm, args.period)):
            raise UsageError("--digits, --algorithm and --period come from the URI with --uri")
        fields = parse_uri(args.uri)
        if fields.kind == "hotp":
            counter = fields.counter if args.counter is None else args.counter
            return HOTP.from_uri(args.uri, enforce_key_length=enforce), counter or 0
        return TOTP.from_uri(args.uri, enforce_key_length=enforce), 0
    key = decode_secret(generate_secret()) if generate else _key(args)
    digits = 6 if args.digits is None else args.digits
    algorithm = "SHA1" if args.algorithm is None else args.algorithm
    if args.hotp:
        if args.period is not None:
            raise UsageError("--period is for TOTP, not --hotp")
        if args.counter is None:
            raise UsageError("--hotp needs --counter N")
        otp: HOTP | TOTP = HOTP(key, digits=digits, algorithm=algorithm, enforce_key_length=enforce)
        return otp, args.counter
    if args.counter is not None:
        raise UsageError("--counter is for --hotp")
    period = 30 if args.period is None else args.period
    return TOTP(
        key, digits=digits, algorithm=algorithm, period=period, enforce_key_length=enforce
    ), 0


def _key(args: argparse.Namespace) -> bytes:
    """Read the key from whichever source was given."""
    if args.secret == "-":  # noqa: S105 - "-" means standard input, not a password
        text = getpass.getpass("Secret: ") if sys.stdin.isatty() else sys.stdin.readline()
    elif args.secret is not None:
        text = args.secret
    elif args.secret_option is not None:
        text = args.secret_option
    elif args.secret_file is not None:
        try:
            with open(args.secret_file, encoding="utf-8") as file:
                text = file.read(4096)
        except UnicodeDecodeError:
            raise UsageError(f"{args.secret_file} is not a text file holding a secret") from None
    elif os.environ.get("TOTPCORE_SECRET"):
        text = os.environ["TOTPCORE_SECRET"]
    else:
        raise UsageError(
            "no secret: give SECRET, -, --secret, --secret-file, --uri or $TOTPCORE_SECRET"
        )
    return decode_secret(text.strip())


def _at(args: argparse.Namespace) -> Time:
    """The time from --at (Unix seconds or ISO 8601 with a zone), else now."""
    import time

    text = args.at
    if text is None:
        return time.time()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise UsageError("--at must be a finite number of seconds")
        return number
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError("--at takes Unix seconds or ISO 8601, e.g. 2030-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise UsageError("--at needs a time zone, e.g. 2030-01-01T00:00:00Z or +02:00")
    return moment
