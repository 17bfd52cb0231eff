"""The ``totpcore`` command line (also ``python -m totpcore``).

Exit status: 0 ok, 1 rejected or mismatch, 2 usage or bad input. Errors are one line on
standard error, without a traceback, and never contain a secret. Every command that prints
data takes ``--json``.

The commands live in submodules (:mod:`~totpcore.cli.engine`, :mod:`~totpcore.cli.vectors`,
:mod:`~totpcore.cli.migration`, :mod:`~totpcore.cli.admin`), which share only
:mod:`~totpcore.cli._common`; this module joins them into one parser and turns every error
into an exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from totpcore.cli._common import Parser, UsageError, output_options
from totpcore.cli.admin import add_admin_parser
from totpcore.cli.engine import add_engine_parsers
from totpcore.cli.migration import add_migration_parsers
from totpcore.cli.vectors import add_vectors_parser
from totpcore.errors import TotpcoreError, UserStateError

__all__ = ["build_parser", "main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status: 0 ok, 1 rejected or mismatch, 2 usage or bad input, 130 interrupted.
    """
    parser = build_parser()
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
    """Console-script entry point: run :func:`main` on ``sys.argv`` and exit with its status."""
    sys.exit(main())


def build_parser() -> Parser:
    """Build the whole command tree.

    Returns:
        The ``totpcore`` parser; each command sets ``handler`` to the function that runs it.
    """
    parser = Parser(prog="totpcore", description="TOTP/HOTP codes, secrets, URIs and QR codes.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    output = output_options()
    add_engine_parsers(commands, output)
    add_migration_parsers(commands, output)
    add_vectors_parser(commands, output)
    add_admin_parser(commands, output)
    return parser


def _fail(message: str, status: int) -> int:
    """Print one error line and return ``status``."""
    print(f"totpcore: error: {message}", file=sys.stderr)
    return status
