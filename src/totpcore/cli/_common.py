"""What every command module shares: the parser class, ``--json``, output and the key source.

The command modules import from here and never from each other or from the package
``__init__``, so the import graph of :mod:`totpcore.cli` is a tree with this module at the
bottom. Only light engine modules are imported: nothing here may pull in the service, the
stores or ``sqlite3``, which ``totpcore code`` must start without.

Library messages are written for Python callers and name arguments and methods
(``enforce_key_length=False``, ``begin_setup``); :func:`cli_message` rewrites the ones a
command can meet into the flags and actions a user of the command line typed.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from totpcore.otp import HOTP, TOTP, Time
from totpcore.secret import MIN_KEY_BYTES, decode_secret, generate_secret

if TYPE_CHECKING:
    from totpcore.uri import OTPAuthURI

__all__ = [
    "Parser",
    "UsageError",
    "action_wording",
    "add_key_options",
    "at_time",
    "build_otp",
    "cli_message",
    "compatibility_warnings",
    "emit",
    "missing_subcommand",
    "output_options",
    "read_key",
    "source_count",
]


class UsageError(Exception):
    """A command line that does not make sense (exit status 2)."""


class Formatter(argparse.HelpFormatter):
    """argparse's help formatter, sized without :mod:`shutil`.

    argparse builds a formatter for every option it adds, and the stock one imports shutil
    (and with it bz2, lzma and fnmatch) for the terminal width: a tenth of a command's
    start-up. The width is found the same way: ``COLUMNS``, else the terminal, else 80.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """The terminal's width in columns, as :func:`shutil.get_terminal_size` finds it."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class Parser(argparse.ArgumentParser):
    """argparse, but errors become one-line UsageErrors instead of usage dumps.

    argparse quotes the arguments it could not place, and a stray argument may well be a
    secret (``--secret=...`` to a command without that option, or a URI): those messages
    name only the options and count the rest.
    """

    def __init__(self, *args: Any, **options: Any) -> None:
        options.setdefault("formatter_class", Formatter)
        super().__init__(*args, **options)

    def error(self, message: str) -> NoReturn:
        """Raise the parse error for :func:`totpcore.cli.main` to report in one line.

        Args:
            message: argparse's description of what is wrong.

        Raises:
            UsageError: always.
        """
        if message.startswith(_UNRECOGNIZED):
            message = _unrecognized(message.removeprefix(_UNRECOGNIZED).split())
        choice = _SUBCOMMAND_CHOICE.match(message)
        if choice is not None:
            noun = "command" if choice.group(1) == "COMMAND" else "action"
            # Only a plausible command name is repeated: a mistyped one may be a secret.
            word = f" '{choice.group(2)}'" if _WORD.fullmatch(choice.group(2)) else ""
            message = f"unknown {noun}{word}; run '{self.prog} --help' for the {noun}s"
        raise UsageError(message)


_UNRECOGNIZED = "unrecognized arguments: "
_SUBCOMMAND_CHOICE = re.compile(r"argument (COMMAND|ACTION): invalid choice: '(.*?)'")
_WORD = re.compile(r"[a-z][a-z-]{0,24}")


def _unrecognized(words: list[str]) -> str:
    """The "unrecognized arguments" error, with the options named and the rest counted."""
    options = [word.partition("=")[0] for word in words if word.startswith("-") and word != "-"]
    others = len(words) - len(options)
    parts = []
    if options:
        noun = "option" if len(options) == 1 else "options"
        parts.append(f"unrecognized {noun} {', '.join(options)}")
    if others:
        noun = "argument" if others == 1 else "arguments"
        parts.append(f"{others} unexpected {noun}, not repeated in case of a secret")
    return "; ".join([*parts, "see the command's --help"])


def output_options() -> Parser:
    """The parent parser of every command that prints data: it contributes ``--json``.

    ``--json`` is also an option of the main parser (and of ``admin``), so it may come before
    the command as well as after it. It is stored only when given (``argparse.SUPPRESS``): a
    default here would overwrite the main parser's value when the subcommand is parsed.
    :func:`totpcore.cli.main` fills in ``False``. Commands built with this parent also get
    ``takes_json=True``, by which ``main`` refuses ``totpcore --json`` before a command that
    prints no data.

    Returns:
        A parser without help, to pass in ``parents=[...]``.
    """
    options = Parser(add_help=False)
    options.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of text"
    )
    options.set_defaults(takes_json=True)
    return options


def missing_subcommand(parser: argparse.ArgumentParser, noun: str) -> Callable[..., int]:
    """A handler for a parser run without its subcommand: a usage line and a hint.

    Set it as the parser's default ``handler``; the subcommands' own handlers replace it.

    Args:
        parser: The parser whose subcommand is missing (``totpcore`` or ``totpcore admin``).
        noun: What the subcommands are called ("command", "action").

    Returns:
        A handler that prints the parser's usage line to standard error and raises.
    """

    def handler(args: argparse.Namespace) -> int:
        """Print the usage line, then fail with the hint (exit status 2)."""
        sys.stderr.write(parser.format_usage())
        raise UsageError(f"no {noun} given; run '{parser.prog} --help' for the {noun}s")

    return handler


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


def add_key_options(
    parser: argparse.ArgumentParser,
    *,
    uri: bool,
    at: bool,
    counter_help: str,
    sources: str,
) -> None:
    """Add the options naming the key and the OTP parameters a command uses.

    Only what the command uses is added, so its ``--help`` lists nothing that does not apply;
    the rest are set to ``None`` so that :func:`build_otp` reads every command alike. Commands
    that take a positional ``secret`` (``nargs="?"``) add it themselves, since its place among
    the positionals differs from command to command.

    Args:
        parser: The command's parser.
        uri: Add ``--uri`` (an otpauth URI as the key source).
        at: Add ``--at`` (the TOTP time).
        counter_help: The help of ``--counter`` (HOTP), which differs by command.
        sources: The key sources the command takes, in words, for error messages.
    """
    parser.set_defaults(secret=None, uri=None, at=None, key_sources=sources)
    group = parser.add_argument_group("secret (one of; else $TOTPCORE_SECRET)")
    group.add_argument("--secret", dest="secret_option", metavar="S", help="base32 secret")
    group.add_argument("--secret-file", metavar="F", help="file holding the base32 secret")
    group.add_argument("--hex", metavar="KEY", help="the key in hex, as oathtool takes it")
    if uri:
        group.add_argument("--uri", metavar="U", help="otpauth URI holding secret and parameters")
    params = parser.add_argument_group("parameters (not with --uri)" if uri else "parameters")
    params.add_argument("--digits", type=int, metavar="N", help="6, 7 or 8 (default 6)")
    params.add_argument("--algorithm", metavar="NAME", help="SHA1, SHA256 or SHA512 (default SHA1)")
    params.add_argument(
        "--period", type=int, metavar="SECONDS", help="TOTP step in seconds (default 30)"
    )
    params.add_argument("--hotp", action="store_true", help="HOTP instead of TOTP")
    params.add_argument("--counter", type=int, metavar="N", help=counter_help)
    if at:
        params.add_argument(
            "--at",
            metavar="TIME",
            help="TOTP time: Unix seconds (1700000000 or @1700000000) or ISO 8601 with a zone",
        )
    params.add_argument("--allow-short-key", action="store_true", help="accept keys under 128 bits")


def source_count(args: argparse.Namespace) -> int:
    """How many key sources the command line names.

    Args:
        args: A command line parsed with :func:`add_key_options`.

    Returns:
        The number of SECRET, ``--secret``, ``--secret-file``, ``--hex`` and ``--uri`` given.
    """
    given = (args.secret, args.secret_option, args.secret_file, args.hex, args.uri)
    return sum(value is not None for value in given)


def build_otp(args: argparse.Namespace, *, generate: bool = False) -> tuple[HOTP | TOTP, int]:
    """Build the HOTP or TOTP the options describe.

    Args:
        args: A command line parsed with :func:`add_key_options`.
        generate: Use a new random key instead of reading one.

    Returns:
        The generator and the HOTP counter (0 for TOTP).

    Raises:
        UsageError: the options contradict each other.
    """
    if source_count(args) > 1:
        raise UsageError(f"give the secret one way only: {args.key_sources}")
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
    from totpcore.uri import parse_uri  # loaded when used: most commands never parse a URI

    enforce = not args.allow_short_key
    fields = parse_uri(args.uri)
    if fields.kind == "hotp":
        counter = fields.counter if args.counter is None else args.counter
        return HOTP.from_uri(args.uri, enforce_key_length=enforce), counter or 0
    return TOTP.from_uri(args.uri, enforce_key_length=enforce), 0


def read_key(args: argparse.Namespace) -> bytes:
    """Read the key from whichever source was given.

    Args:
        args: A command line parsed with :func:`add_key_options`, naming at most one source.

    Returns:
        The decoded key.

    Raises:
        UsageError: no source, a secret file that is not text, or ``--hex`` that is not hex.
    """
    if args.hex is not None:
        return _hex_key(args.hex)
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
        raise UsageError(f"no secret: give {args.key_sources}, or set $TOTPCORE_SECRET")
    return decode_secret(text.strip())


def _hex_key(text: str) -> bytes:
    """The key ``--hex`` gives; the message never quotes it (it is the secret)."""
    digits = text.strip()
    try:
        key = bytes.fromhex(digits) if digits.isascii() else b""
    except ValueError:
        key = b""
    if not key or " " in digits:
        raise UsageError("--hex takes the key in hex: two digits 0-9, a-f per byte, no spaces")
    return key


def at_time(args: argparse.Namespace) -> Time:
    """The time from ``--at``, else now.

    ``--at`` takes Unix seconds, the same with oathtool's ``@`` in front (``@1700000000``),
    or ISO 8601 with a zone.

    Args:
        args: A command line parsed with :func:`add_key_options`.

    Returns:
        An ``int``, ``float`` or aware ``datetime`` the engine accepts.

    Raises:
        UsageError: ``--at`` is not a finite number nor an ISO 8601 time with a zone.
    """
    text = args.at
    if text is None:
        return time.time()
    seconds = _seconds(text.removeprefix("@"))
    if seconds is not None:
        return seconds
    if text.startswith("@"):
        raise UsageError("--at @ takes Unix seconds, e.g. @1700000000")
    try:
        from datetime import datetime

        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            "--at takes Unix seconds (1700000000 or @1700000000) or ISO 8601, "
            "e.g. 2030-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise UsageError("--at needs a time zone, e.g. 2030-01-01T00:00:00Z or +02:00")
    return moment


def _seconds(text: str) -> int | float | None:
    """``text`` as Unix seconds, or ``None`` when it is not a number."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        raise UsageError("--at must be a finite number of seconds")
    return number


# --- library messages in command-line terms ------------------------------------------------

#: ``(given, pattern, replacement)``: rewrite ``pattern`` when the command line gave the
#: option whose parsed name is ``given`` (present and not ``None``; ``""``: always). Tying a
#: rule to its option keeps a message about a URI's own field (an ``otpauth://`` label, say)
#: from being blamed on a flag the user never typed.
_REWORDINGS: tuple[tuple[str, str, str], ...] = (
    ("allow_short_key", r"\(pass enforce_key_length=False to ", "(use --allow-short-key to "),
    ("window", r"^(window sides|look_ahead) must be", "--window must be"),
    ("bits", r"^a secret needs at least (\d+) bits", r"--bits must be at least \1"),
    ("bits", r"^bits must", "--bits must"),
    ("scale", r"^scale must", "--scale must"),
    ("batch_size", r"^batch_size must", "--batch-size must"),
    ("digits", r"^digits must", "--digits must"),
    ("period", r"^period must", "--period must"),
    ("counter", r"^counter must", "--counter must"),
    ("algorithm", r"^algorithm must", "--algorithm must"),
    ("at", r"^time (must|is)", r"--at \1"),
    ("at", r"^datetime must be timezone-aware", "--at needs a time zone"),
    ("account", r"^account ", "--account "),
    ("issuer", r"^issuer ", "--issuer "),
    ("", r"; use [HT]OTP\.from_uri$", ""),
    # admin: users, the key file and the service behind the actions
    ("action", r"^user_id ", "USER "),
    ("action", r"^AESGCMCipher needs", "--key-file needs"),
    ("action", r"configure the service with that key", "give that key with --key-file"),
    ("action", r"a cipher cannot be added to it", "leave out --key-file"),
    ("action", r"which this cipher does not have", "which --key-file does not hold"),
    ("action", r"a key this cipher does not have", "a key --key-file does not hold"),
    (
        "action",
        r"^rotate_key needs a service configured with a cipher",
        "admin rotate-key needs --key-file",
    ),
    ("key_file", r"^the same key is given twice", "--key-file holds the same key twice"),
)

#: Service methods named in messages (``begin_setup needs a user whose ...``, ``the store
#: failed during new_recovery_codes``) and the ``admin`` action that runs each.
_METHOD_ACTIONS = {
    "begin_setup": "setup",
    "complete_setup": "setup",
    "new_recovery_codes": "recovery-codes",
    "import_secret": "import",
    "enable_many": "enable",
    "rotate_key": "rotate-key",
}
_METHOD_NAME = re.compile(r"^[a-z_]+(?= needs a user whose)|(?<=during )[a-z_]+")


def cli_message(error: BaseException, args: argparse.Namespace | None) -> str:
    """An exception's message in the command line's terms.

    Args:
        error: A totpcore exception the command met.
        args: The parsed command line (``None`` when parsing itself failed).

    Returns:
        The message, with Python argument and method names replaced by the options and
        ``admin`` actions that correspond to them. The rewriting adds only fixed words and
        parts of the message itself, so it never brings in a secret.
    """
    message = str(error)
    given = {} if args is None else {k: v for k, v in vars(args).items() if v is not None}
    for name, pattern, replacement in _REWORDINGS:
        if not name or name in given:
            message = re.sub(pattern, replacement, message)
    action = given.get("action")
    return message if action is None else action_wording(message, action)


def action_wording(message: str, action: str) -> str:
    """Name the ``admin`` action where a service message names a Python method.

    Args:
        message: A service message, e.g. ``begin_setup needs a user whose ...``.
        action: The ``admin`` action being run, which names a method the table lacks
            (``settings``, read while the store opens).

    Returns:
        The message naming ``admin ACTION`` instead of the method.
    """

    def replace(match: re.Match[str]) -> str:
        return f"admin {_METHOD_ACTIONS.get(match.group(), action)}"

    return _METHOD_NAME.sub(replace, message)
