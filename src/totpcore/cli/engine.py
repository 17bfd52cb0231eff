"""The engine commands: ``secret``, ``code``, ``verify``, ``uri``, ``inspect`` and ``qr``.

They work on one key given on the command line and touch no store, so this module imports
only the engine; ``qr`` imports its renderers when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from totpcore.cli._common import (
    Parser,
    UsageError,
    at_time,
    build_otp,
    compatibility_warnings,
    emit,
    key_options,
    source_count,
)
from totpcore.otp import HOTP, MAX_WINDOW
from totpcore.secret import encode_secret, generate_secret
from totpcore.uri import parse_uri

__all__ = ["add_engine_parsers"]


def add_engine_parsers(commands: Any, output: Parser) -> None:
    """Add the engine commands to the main command tree.

    Args:
        commands: The main parser's subparsers object.
        output: The parent parser that contributes ``--json``.
    """
    secret = commands.add_parser("secret", parents=[output], help="print a new random secret")
    secret.add_argument("--bits", type=int, default=160, help="key size (default 160)")
    secret.set_defaults(handler=_cmd_secret)

    key_source = key_options()
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


def _cmd_secret(args: argparse.Namespace) -> int:
    secret = generate_secret(args.bits)
    emit(args, {"secret": secret, "bits": args.bits}, secret)
    return 0


def _cmd_code(args: argparse.Namespace) -> int:
    otp, counter = build_otp(args)
    if isinstance(otp, HOTP):
        code = otp.generate(counter)
        emit(args, {"code": code, "type": "hotp", "counter": counter}, code)
    else:
        at = at_time(args)
        code = otp.generate(at)
        emit(args, {"code": code, "type": "totp", "counter": otp.counter_at(at)}, code)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    otp, counter = build_otp(args)
    if isinstance(otp, HOTP):
        match = otp.verify(args.code, counter, look_ahead=args.window)
    else:
        match = otp.verify(args.code, at=at_time(args), window=args.window)
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
    emit(args, data, text)
    return 0 if match is not None else 1


def _cmd_uri(args: argparse.Namespace) -> int:
    if args.uri:
        raise UsageError("uri builds a URI; give the secret with --secret, not --uri")
    generated = source_count(args) == 0 and not os.environ.get("TOTPCORE_SECRET")
    otp, counter = build_otp(args, generate=generated)
    if isinstance(otp, HOTP):
        uri = otp.uri(args.account, issuer=args.issuer, counter=counter)
    else:
        uri = otp.uri(args.account, issuer=args.issuer)
    emit(args, {"uri": uri, "secret": encode_secret(otp.key)}, uri)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    fields = parse_uri(args.uri)
    warnings = compatibility_warnings(fields, args.uri)
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
    emit(args, data, "\n".join(lines))
    return 0


def _cmd_qr(args: argparse.Namespace) -> int:
    # Imported when run: only this command draws QR codes, so no other pays for the module.
    from totpcore.qr import qr_png, qr_svg, qr_terminal

    if args.uri.lower().startswith("otpauth-migration:"):
        from totpcore.migration import parse_migration_uri

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
