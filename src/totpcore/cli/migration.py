"""``import-migration`` and ``export-migration``: Google Authenticator's export format.

``import-migration`` decodes ``otpauth-migration://`` URIs into accounts (with their secrets:
that is what it is for); ``export-migration`` packs ``otpauth://`` URIs into them.
"""

from __future__ import annotations

import argparse
from typing import Any

from totpcore.cli._common import Parser, emit
from totpcore.secret import encode_secret

__all__ = ["add_migration_parsers"]


def add_migration_parsers(commands: Any, output: Parser) -> None:
    """Add ``import-migration`` and ``export-migration`` to the main command tree.

    Args:
        commands: The main parser's subparsers object.
        output: The parent parser that contributes ``--json``.
    """
    imports = commands.add_parser(
        "import-migration", parents=[output], help="decode Google Authenticator exports"
    )
    imports.add_argument(
        "uris", nargs="+", metavar="URI", help="otpauth-migration:// URIs (one per QR code)"
    )
    imports.set_defaults(handler=_cmd_import_migration)

    exports = commands.add_parser(
        "export-migration", parents=[output], help="encode otpauth URIs as an export"
    )
    exports.add_argument("uris", nargs="+", metavar="URI", help="otpauth:// URIs")
    exports.add_argument(
        "--batch-size",
        type=int,
        default=10,
        metavar="N",
        help="accounts per QR code (1-100, default 10)",
    )
    exports.set_defaults(handler=_cmd_export_migration)


def _cmd_import_migration(args: argparse.Namespace) -> int:
    # Loaded when used, like every module only some commands need: start-up is paid by all.
    from totpcore.migration import parse_migration_uri
    from totpcore.uri import build_uri

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
    emit(args, data, "\n".join(lines))
    return 0


def _cmd_export_migration(args: argparse.Namespace) -> int:
    from totpcore.migration import build_migration_uris
    from totpcore.uri import parse_uri

    uris = build_migration_uris([parse_uri(uri) for uri in args.uris], batch_size=args.batch_size)
    emit(args, uris, "\n".join(uris))
    return 0
