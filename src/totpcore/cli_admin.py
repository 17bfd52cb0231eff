"""``totpcore admin --db PATH ...``: the two-factor lifecycle on a SQLite store, by hand.

The commands use the default :class:`~totpcore.Policy` (SHA1, 6 digits, 30 s), which is what
the secrets they provision are set up with.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from totpcore.errors import MissingDependencyError, UserStateError
from totpcore.service import TwoFactor
from totpcore.stores.sqlite import SQLiteStore

__all__ = ["add_admin_parser"]


def add_admin_parser(commands: Any, output: argparse.ArgumentParser) -> None:
    """Add ``admin`` and its subcommands to the main command tree."""
    admin = commands.add_parser("admin", help="manage users' second factor in a SQLite store")
    admin.add_argument("--db", required=True, metavar="PATH", help="the SQLite database file")
    admin.add_argument("--issuer", default="totpcore", help="service name shown in apps")
    actions = admin.add_subparsers(dest="action", required=True, parser_class=type(admin))

    def action(name: str, help_text: str, *, many: bool = False) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, parents=[output], help=help_text)
        if many:
            parser.add_argument("users", nargs="+", metavar="USER")
        elif name != "list":
            parser.add_argument("user", metavar="USER")
        parser.set_defaults(handler=_run)
        return parser

    action("enable", "require setup at next login", many=True)
    action("status", "print disabled, setup_pending or active")
    action("list", "list users and their status")
    setup = action("setup", "show the QR code and secret, then confirm a code")
    setup.add_argument("--account", help="account name shown in the app (default: USER)")
    action("reset", "new secret, back to setup (active users only)")
    action("disable", "remove the user's second factor")
    action("unlock", "clear failures and the lock")
    action("recovery-codes", "print a new set of recovery codes (replaces the old)")


def _run(args: argparse.Namespace) -> int:
    """Open the store and run one admin action."""
    from totpcore.cli import UsageError

    if args.action != "enable" and not os.path.exists(args.db):
        raise UsageError(f"no database at {args.db} ('admin enable' creates one)")
    store = SQLiteStore(args.db)
    try:
        service = TwoFactor(store, issuer=args.issuer)
        handler = _ACTIONS[args.action]
        return handler(service, args)
    finally:
        store.close()


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _enable(service: TwoFactor, args: argparse.Namespace) -> int:
    statuses = service.enable_many(args.users)
    _emit(
        args,
        {user: status.value for user, status in statuses.items()},
        "\n".join(f"{user}: {status.value}" for user, status in statuses.items()),
    )
    return 0


def _status(service: TwoFactor, args: argparse.Namespace) -> int:
    status = service.status(args.user).value
    _emit(args, {"user": args.user, "status": status}, status)
    return 0


def _list(service: TwoFactor, args: argparse.Namespace) -> int:
    rows = [(user, service.status(user).value) for user in service.store.user_ids()]
    _emit(
        args,
        [{"user": user, "status": status} for user, status in rows],
        "\n".join(f"{user}\t{status}" for user, status in rows),
    )
    return 0


def _setup(service: TwoFactor, args: argparse.Namespace) -> int:
    provisioning = service.begin_setup(args.user, account_name=args.account)
    if args.json:
        data = {
            "user": provisioning.user_id,
            "account": provisioning.account,
            "issuer": provisioning.issuer,
            "secret": provisioning.secret,
            "uri": provisioning.uri,
        }
        print(json.dumps(data, indent=2))
    else:
        try:
            sys.stdout.write(provisioning.qr_terminal())
        except MissingDependencyError as error:
            print(f"(no QR code: {error})", file=sys.stderr)
        secret = provisioning.secret
        grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        print(f"secret: {grouped}")
        print(f"uri:    {provisioning.uri}")
    sys.stdout.flush()
    print("Code from the app: ", end="", file=sys.stderr, flush=True)
    code = sys.stdin.readline().strip()
    if not code:
        raise UserStateError("no confirmation code entered; setup is still pending")
    verdict = service.complete_setup(args.user, code)
    print(f"{args.user}: {'setup complete' if verdict else verdict.message}", file=sys.stderr)
    return 0 if verdict else 1


def _reset(service: TwoFactor, args: argparse.Namespace) -> int:
    service.reset(args.user)
    status = service.status(args.user).value
    _emit(args, {"user": args.user, "status": status}, f"{args.user}: reset, now {status}")
    return 0


def _disable(service: TwoFactor, args: argparse.Namespace) -> int:
    removed = service.disable(args.user)
    text = f"{args.user}: disabled" if removed else f"{args.user}: was not enabled"
    _emit(args, {"user": args.user, "status": "disabled", "changed": removed}, text)
    return 0


def _unlock(service: TwoFactor, args: argparse.Namespace) -> int:
    service.unlock(args.user)
    _emit(args, {"user": args.user, "unlocked": True}, f"{args.user}: unlocked")
    return 0


def _recovery_codes(service: TwoFactor, args: argparse.Namespace) -> int:
    codes = service.new_recovery_codes(args.user)
    _emit(args, codes, "\n".join(codes))
    return 0


_ACTIONS = {
    "enable": _enable,
    "status": _status,
    "list": _list,
    "setup": _setup,
    "reset": _reset,
    "disable": _disable,
    "unlock": _unlock,
    "recovery-codes": _recovery_codes,
}
