"""The ``totpcore`` command line (also ``python -m totpcore``).

Exit status: 0 ok, 1 rejected or mismatch, 2 usage or bad input. Errors are one line on
standard error, without a traceback, and never contain a secret. Every command that prints
data takes ``--json``.

The commands live in submodules (:mod:`~totpcore.cli.engine`, :mod:`~totpcore.cli.vectors`,
:mod:`~totpcore.cli.migration`, :mod:`~totpcore.cli.admin`, :mod:`~totpcore.cli.bench`), which
share only
:mod:`~totpcore.cli._common`; this module joins them into one parser and turns every error
into an exit status, with library messages reworded in the command line's terms.

Options that apply to a whole command tree are accepted before or after the (sub)command:
``--json`` anywhere, ``--db`` and ``--key-file`` before or after the ``admin`` action.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from totpcore.cli._common import (
    Parser,
    UsageError,
    cli_message,
    missing_subcommand,
    output_options,
)
from totpcore.errors import TotpcoreError, UserStateError

__all__ = ["COMMAND_MODULES", "build_parser", "main", "package_version", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status: 0 ok, 1 rejected or mismatch, 2 usage or bad input, 130 interrupted.
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_word(arguments))
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(arguments)
        vars(args).setdefault("json", False)  # given nowhere (see output_options)
        if args.json and args.command and not getattr(args, "takes_json", False):
            raise UsageError(f"{args.command} prints no data; --json does not apply to it")
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as error:
        return _fail(str(error), 2)
    except UserStateError as error:
        return _fail(cli_message(error, args), 1)
    except TotpcoreError as error:
        return _fail(cli_message(error, args), 2)
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # last resort: one line, no traceback, no message text
        return _fail(f"unexpected {type(error).__name__}; please report it", 2)


def run() -> None:
    """Console-script entry point: run :func:`main` on ``sys.argv`` and exit with its status."""
    sys.exit(main())


def build_parser(command: str | None = None) -> Parser:
    """Build the command tree.

    Args:
        command: The command about to be parsed, when known: only its module is imported
            and only its parser built (see :data:`COMMAND_MODULES`). ``None``, or a word that
            names no command, builds the whole tree.

    Returns:
        The ``totpcore`` parser; each command sets ``handler`` to the function that runs it.
    """
    parser = Parser(
        prog="totpcore",
        description="TOTP/HOTP codes, secrets, URIs and QR codes.",
        epilog="Run 'totpcore COMMAND --help' for a command's options. Exit status: 0 ok, "
        "1 rejected or mismatch, 2 usage or bad input.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of text (the same as --json after the command)",
    )
    parser.set_defaults(handler=missing_subcommand(parser, "command"))
    # Not required: a bare 'totpcore' gets a usage line and a hint instead of argparse's error.
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=Parser
    )
    output = output_options()
    # Building every command's parser, and importing every command's module, costs more than
    # running most commands, so a command line naming a known command gets only that
    # command's parser. The whole tree is built for the help, and for a word that names no
    # command (its error lists them all).
    module = COMMAND_MODULES.get(command or "")
    if module is None:
        for module in _ADDERS:
            _adder(module)(commands, output)
        return parser
    only = _OnlyCommand(commands, command or "")
    _adder(module)(only, output)
    return parser


#: Which submodule of :mod:`totpcore.cli` defines each command.
COMMAND_MODULES = {
    "secret": "engine",
    "code": "engine",
    "verify": "engine",
    "uri": "engine",
    "inspect": "engine",
    "qr": "engine",
    "import-migration": "migration",
    "export-migration": "migration",
    "vectors": "vectors",
    "admin": "admin",
    "bench": "bench",
}
# Each submodule's function adding its commands, in the order the help lists them.
_ADDERS = {
    "engine": "add_engine_parsers",
    "migration": "add_migration_parsers",
    "vectors": "add_vectors_parser",
    "admin": "add_admin_parser",
    "bench": "add_bench_parser",
}


def _adder(module: str) -> Callable[[Any, Parser], None]:
    """The function of ``totpcore.cli.<module>`` that adds its commands (imported now)."""
    from importlib import import_module

    adder: Callable[[Any, Parser], None] = getattr(
        import_module(f"totpcore.cli.{module}"), _ADDERS[module]
    )
    return adder


class _OnlyCommand:
    """The subparsers of one command line: adds the named command's parser, skips the others.

    A skipped command gets a :class:`_Skipped` stand-in that takes (and ignores) whatever its
    definition does with it, so the command definitions stay written once, as if for the
    whole tree.
    """

    def __init__(self, commands: Any, command: str) -> None:
        self._commands = commands
        self._command = command

    def add_parser(self, name: str, **options: Any) -> Any:
        """The real parser for the wanted command, a stand-in for any other."""
        if name != self._command:
            return _Skipped()
        return self._commands.add_parser(name, **options)


class _Skipped:
    """Stands in for a parser (or group, or action) of a command that is not being run."""

    def __getattr__(self, name: str) -> Any:
        return self._ignore

    def _ignore(self, *_: Any, **__: Any) -> _Skipped:
        return self


def _command_word(arguments: Sequence[str]) -> str | None:
    """The command a command line names: its first word that is not an option.

    The main parser's own options (``--json``, ``--version``, ``--help``) take no value, so
    the first other word is the command, or a mistyped one.
    """
    return next((word for word in arguments if not word.startswith("-")), None)


def package_version() -> str:
    """The installed distribution's version, or ``"unknown"`` when run from a bare source tree.

    Returns:
        The version string from the package metadata.
    """
    from importlib.metadata import PackageNotFoundError, version  # only for --version

    try:
        return version("totpcore")
    except PackageNotFoundError:
        return "unknown"


class _Version(argparse.Action):
    """``--version``: read the metadata only when asked (it is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        """Print ``totpcore VERSION`` and exit 0."""
        print(f"{parser.prog} {package_version()}")
        parser.exit()


def _fail(message: str, status: int) -> int:
    """Print one error line and return ``status``."""
    print(f"totpcore: error: {message}", file=sys.stderr)
    return status
