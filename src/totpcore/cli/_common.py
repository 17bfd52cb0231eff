"""What every command module shares: the parser class, ``--json``, output and the key source.

The command modules import from here and never from each other or from the package
``__init__``, so the import graph of :mod:`totpcore.cli` is a tree with this module at the
bottom. Only light engine modules are imported: nothing here may pull in the service, the
stores or ``sqlite3``, which ``totpcore code`` must start without.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any, NoReturn

from totpcore.otp import HOTP, TOTP, Time
from totpcore.secret import MIN_KEY_BYTES, decode_secret, generate_secret
from totpcore.uri import OTPAuthURI, parse_uri

__all__ = [
    "Parser",
    "UsageError",
    "at_time",
    "build_otp",
    "compatibility_warnings",
    "emit",
    "key_options",
    "output_options",
    "read_key",
    "source_count",
]


class UsageError(Exception):
    """A command line that does not make sense (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse, but errors become one-line UsageErrors instead of usage dumps."""

    def error(self, message: str) -> NoReturn:
        """Raise the parse error for :func:`totpcore.cli.main` to report in one line.

        Args:
            message: argparse's description of what is wrong.

        Raises:
            UsageError: always.
        """
        raise UsageError(message)


def output_options() -> Parser:
    """The parent parser of every command that prints data: it contributes ``--json``.

    Returns:
        A parser without help, to pass in ``parents=[...]``.
    """
    options = Parser(add_help=False)
    options.add_argument("--json", action="store_true", help="print JSON instead of text")
    return options


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, else ``text``.

    Args:
        args: The parsed command line; commands without ``--json`` print text.
        data: What ``--json`` prints; anything :func:`json.dumps` accepts.
        text: What is printed otherwise.
    """
    if getattr(args, "json", False):
        import json  # loaded only for --json: start-up matters for every command

        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(text)


def compatibility_warnings(fields: OTPAuthURI, uri: str) -> list[str]:
    """Settings of a URI that popular authenticator apps ignore or reject.

    Args:
        fields: The parsed URI.
        uri: The URI text, for what parsing normalises away (``=`` padding).

    Returns:
        One sentence per problem; empty when every common app will agree.
    """
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


# --- key source ----------------------------------------------------------------------------


def key_options() -> Parser:
    """The parent parser naming where the key comes from, and the OTP parameters.

    Commands using it also take a positional ``secret`` (``nargs="?"``) of their own, since
    its place among the positionals differs from command to command.

    Returns:
        A parser without help, to pass in ``parents=[...]``.
    """
    options = Parser(add_help=False)
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


def source_count(args: argparse.Namespace) -> int:
    """How many key sources the command line names.

    Args:
        args: A command line parsed with :func:`key_options`.

    Returns:
        The number of SECRET, ``--secret``, ``--secret-file`` and ``--uri`` given.
    """
    return sum(
        value is not None for value in (args.secret, args.secret_option, args.secret_file, args.uri)
    )


def build_otp(args: argparse.Namespace, *, generate: bool = False) -> tuple[HOTP | TOTP, int]:
    """Build the HOTP or TOTP the options describe.

    Args:
        args: A command line parsed with :func:`key_options`.
        generate: Use a new random key instead of reading one.

    Returns:
        The generator and the HOTP counter (0 for TOTP).

    Raises:
        UsageError: the options contradict each other.
    """
    if source_count(args) > 1:
        raise UsageError(
            "give the secret one way only: SECRET, -, --secret, --secret-file or --uri"
        )
    if args.uri is not None:
        return _from_uri(args)
    key = decode_secret(generate_secret()) if generate else read_key(args)
    enforce = not args.allow_short_key
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


def _from_uri(args: argparse.Namespace) -> tuple[HOTP | TOTP, int]:
    """The generator ``--uri`` describes, with ``--counter`` overriding an HOTP URI's."""
    if any(value is not None for value in (args.digits, args.algorithm, args.period)):
        raise UsageError("--digits, --algorithm and --period come from the URI with --uri")
    enforce = not args.allow_short_key
    fields = parse_uri(args.uri)
    if fields.kind == "hotp":
        counter = fields.counter if args.counter is None else args.counter
        return HOTP.from_uri(args.uri, enforce_key_length=enforce), counter or 0
    return TOTP.from_uri(args.uri, enforce_key_length=enforce), 0


def read_key(args: argparse.Namespace) -> bytes:
    """Read the key from whichever source was given.

    Args:
        args: A command line parsed with :func:`key_options`, naming at most one source.

    Returns:
        The decoded key.

    Raises:
        UsageError: no source, or a secret file that is not text.
    """
    if args.secret == "-":  # noqa: S105 - "-" means standard input, not a password
        import getpass

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


def at_time(args: argparse.Namespace) -> Time:
    """The time from ``--at`` (Unix seconds or ISO 8601 with a zone), else now.

    Args:
        args: A command line parsed with :func:`key_options`.

    Returns:
        An ``int``, ``float`` or aware ``datetime`` the engine accepts.

    Raises:
        UsageError: ``--at`` is not a finite number nor an ISO 8601 time with a zone.
    """
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
        from datetime import datetime

        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError("--at takes Unix seconds or ISO 8601, e.g. 2030-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise UsageError("--at needs a time zone, e.g. 2030-01-01T00:00:00Z or +02:00")
    return moment
