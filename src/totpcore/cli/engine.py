"""The engine commands: ``secret``, ``code``, ``verify``, ``uri``, ``inspect`` and ``qr``.

They work on one key given on the command line and touch no store, so this module imports
only the engine; ``qr`` imports its renderers when it runs. Each command is given only the
key options it uses (see :func:`~totpcore.cli._common.add_key_options`): ``uri`` and ``qr``
build a URI, so they take no ``--uri`` and no ``--at``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from totpcore._checks import MAX_COUNTER
from totpcore.cli._common import (
    Parser,
    UsageError,
    add_key_options,
    at_time,
    build_otp,
    compatibility_warnings,
    emit,
    source_count,
)
from totpcore.otp import HOTP, MAX_LOOK_AHEAD, MAX_WINDOW, TOTP
from totpcore.secret import encode_secret, generate_secret

__all__ = ["add_engine_parsers"]

_POSITIONAL_KEY_HELP = "base32 secret, or - to read it from stdin"
_COUNTER_HELP = "HOTP counter (with --hotp)"
_URI_COUNTER_HELP = "HOTP: the counter the URI carries (with --hotp)"
# The options that build a URI in qr; a URI given as the argument excludes every one of them.
_BUILD_OPTIONS = (
    "account",
    "issuer",
    "secret_option",
    "secret_file",
    "hex",
    "digits",
    "algorithm",
    "period",
    "counter",
)


def add_engine_parsers(commands: Any, output: Parser) -> None:
    """Add the engine commands to the main command tree.

    Args:
        commands: The main parser's subparsers object.
        output: The parent parser that contributes ``--json``.
    """
    secret = commands.add_parser("secret", parents=[output], help="print a new random secret")
    secret.add_argument("--bits", type=int, default=160, metavar="N", help="key size (default 160)")
    secret.set_defaults(handler=_cmd_secret)

    code = commands.add_parser("code", parents=[output], help="print the current code")
    code.add_argument("secret", nargs="?", metavar="SECRET", help=_POSITIONAL_KEY_HELP)
    code.add_argument(
        "--window",
        type=int,
        metavar="N",
        help=f"list the codes N steps either side of now (0-{MAX_WINDOW}), labelled by offset; "
        f"HOTP: N counters ahead (0-{MAX_LOOK_AHEAD})",
    )
    add_key_options(
        code,
        uri=True,
        at=True,
        counter_help=_COUNTER_HELP,
        sources="SECRET, -, --secret, --secret-file, --hex or --uri",
    )
    code.set_defaults(handler=_cmd_code)

    verify = commands.add_parser("verify", parents=[output], help="check a code")
    verify.add_argument("code", metavar="CODE", help="the code to check")
    verify.add_argument("secret", nargs="?", metavar="SECRET", help=_POSITIONAL_KEY_HELP)
    verify.add_argument(
        "--window",
        type=int,
        default=1,
        metavar="N",
        help=f"TOTP: steps accepted either side (0-{MAX_WINDOW}, default 1); "
        f"HOTP: counters ahead (0-{MAX_LOOK_AHEAD})",
    )
    add_key_options(
        verify,
        uri=True,
        at=True,
        counter_help=_COUNTER_HELP,
        sources="SECRET, -, --secret, --secret-file, --hex or --uri",
    )
    verify.set_defaults(handler=_cmd_verify)

    uri = commands.add_parser("uri", parents=[output], help="print an otpauth URI")
    uri.add_argument(
        "secret", nargs="?", metavar="SECRET", help="base32 secret or - (default: a new one)"
    )
    _add_label_options(uri, required=True)
    add_key_options(
        uri,
        uri=False,
        at=False,
        counter_help=_URI_COUNTER_HELP,
        sources="SECRET, -, --secret, --secret-file or --hex",
    )
    uri.set_defaults(handler=_cmd_uri)

    inspect = commands.add_parser("inspect", parents=[output], help="show a URI's fields")
    inspect.add_argument("uri", metavar="URI", help="an otpauth:// URI")
    inspect.add_argument("--show-secret", action="store_true", help="also print the secret")
    inspect.set_defaults(handler=_cmd_inspect)

    qr = commands.add_parser(
        "qr",
        help="show a URI as a QR code",
        description="Show a URI as a QR code: the URI given, or one built from --account, "
        "--issuer and the secret.",
    )
    qr.add_argument(
        "text",
        nargs="?",
        metavar="URI",
        help="an otpauth:// or otpauth-migration:// URI (else build one with --account)",
    )
    qr.add_argument(
        "-o", "--output", metavar="FILE", help="write FILE.png or FILE.svg instead of the terminal"
    )
    qr.add_argument(
        "--scale",
        type=int,
        default=8,
        metavar="N",
        help="pixels per module in files (4-100, default 8)",
    )
    _add_label_options(qr, required=False)
    add_key_options(
        qr,
        uri=False,
        at=False,
        counter_help=_URI_COUNTER_HELP,
        sources="--secret, --secret-file or --hex",
    )
    qr.set_defaults(handler=_cmd_qr)


def _add_label_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--account`` and ``--issuer``: the label of a URI being built."""
    parser.add_argument(
        "--account", required=required, metavar="NAME", help="account name shown in the app"
    )
    parser.add_argument("--issuer", metavar="NAME", help="service name shown in the app")


def _cmd_secret(args: argparse.Namespace) -> int:
    secret = generate_secret(args.bits)
    emit(args, {"secret": secret, "bits": args.bits}, secret)
    return 0


def _cmd_code(args: argparse.Namespace) -> int:
    otp, counter = build_otp(args)
    if isinstance(otp, HOTP):
        kind, limit, offsets = "hotp", MAX_LOOK_AHEAD, range((args.window or 0) + 1)
        data: dict[str, Any] = {"code": otp.generate(counter), "type": kind, "counter": counter}
    else:
        counter = otp.counter_at(at_time(args))
        side = args.window or 0
        kind, limit, offsets = "totp", MAX_WINDOW, range(-side, side + 1)
        data = {"code": _totp_code(otp, counter), "type": kind, "counter": counter}
    if args.window is None:
        emit(args, data, data["code"])
        return 0
    if not 0 <= args.window <= limit:
        raise UsageError(f"--window must be between 0 and {limit} for {kind.upper()}")
    rows = [
        {"offset": offset, "counter": counter + offset, "code": _code_at(otp, counter + offset)}
        for offset in offsets
        if 0 <= counter + offset <= MAX_COUNTER
    ]
    data["window"] = rows
    emit(args, data, "\n".join(f"{row['offset']:+d} {row['code']}" for row in rows))
    return 0


def _code_at(otp: HOTP | TOTP, counter: int) -> str:
    """The code for one HOTP counter or TOTP step."""
    return otp.generate(counter) if isinstance(otp, HOTP) else _totp_code(otp, counter)


def _totp_code(otp: TOTP, step: int) -> str:
    """The TOTP code of a step, by the time the step starts at."""
    return otp.generate(otp.t0 + step * otp.period)


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
    generated = source_count(args) == 0 and not os.environ.get("TOTPCORE_SECRET")
    uri, secret = _built_uri(args, generate=generated)
    emit(args, {"uri": uri, "secret": secret}, uri)
    return 0


def _built_uri(args: argparse.Namespace, *, generate: bool) -> tuple[str, str]:
    """The URI ``--account``, ``--issuer`` and the key options describe, and its secret."""
    otp, counter = build_otp(args, generate=generate)
    if isinstance(otp, HOTP):
        uri = otp.uri(args.account, issuer=args.issuer, counter=counter)
    else:
        uri = otp.uri(args.account, issuer=args.issuer)
    return uri, encode_secret(otp.key)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from totpcore.uri import parse_uri  # loaded when used (start-up of the other commands)

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

    uri = _qr_text(args)
    if args.output is None:
        sys.stdout.write(qr_terminal(uri))
        return 0
    extension = os.path.splitext(args.output)[1].lower()
    if extension == ".png":
        qr_png(uri, args.output, scale=args.scale)
    elif extension == ".svg":
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(qr_svg(uri, scale=args.scale))
    else:
        raise UsageError("-o takes a file ending in .png or .svg")
    return 0


def _qr_text(args: argparse.Namespace) -> str:
    """The URI to draw: the argument, checked, or one built from the options."""
    building = (
        args.hotp
        or args.allow_short_key
        or any(getattr(args, name) is not None for name in _BUILD_OPTIONS)
    )
    if args.text is None:
        if args.account is None:
            raise UsageError("qr needs a URI, or --account and the secret to build one")
        return _built_uri(args, generate=False)[0]
    if building:
        raise UsageError("give qr a URI or the options to build one, not both")
    if args.text.lower().startswith("otpauth-migration:"):
        from totpcore.migration import parse_migration_uri

        parse_migration_uri(args.text)
    else:
        from totpcore.uri import parse_uri

        parse_uri(args.text)
    return str(args.text)
