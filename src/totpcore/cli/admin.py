"""``totpcore admin --db PATH [--key-file PATH] ACTION``: the two-factor lifecycle, by hand.

``--db``, ``--key-file`` and ``--json`` go before or after the action; ``--issuer`` is for
``setup`` only, the one action that shows it (it is not stored).

Parameters:
    Every user keeps the algorithm, digits and period they enrolled with, or that ``import``
    brought in from their phone; ``setup``, ``verify`` and ``resync`` always use the user's
    own. The default :class:`~totpcore.Policy` (SHA1, 6 digits, 30 s) only shapes new
    enrolments (``enable``, ``reset``); its window, throttling and drift limits apply to
    ``verify`` and ``resync``.

Encrypted stores:
    ``--key-file`` names a file of AES keys in hex, one per line (blank lines and ``#``
    comments ignored): the first is the current key, the others old keys still accepted for
    decryption (see :mod:`totpcore.cipher` on rotation). The ``enable`` or ``import`` that
    creates a database records whether its secrets are encrypted, and under which key.

    The actions that read or write a secret (``enable``, ``setup``, ``reset``, ``import``,
    ``rotate-key``, ``verify``, ``resync``, ``recovery-codes``) run through
    :class:`~totpcore.TwoFactor`, which refuses an encrypted store whose key is missing or
    wrong before it changes anything (exit 2). ``status``, ``list``, ``disable`` and ``unlock``
    need no secret and work on the store directly, with or without the key. A ``--key-file``
    is still read and checked on every action, so a broken file is reported at once.

Start-up:
    The service, the stores (and with them ``sqlite3``) and the cipher are imported when an
    admin action runs, not when this module is imported: the parser tree holds this module,
    and every other command must start without them.

Exit status follows :mod:`totpcore.cli`: 0 ok, 1 rejected (a code, a lifecycle state, an
import line), 2 usage or bad input. No output or error contains an AES key, and no secret is
printed except the two meant to be shown: the TOTP secret ``setup`` displays for scanning and
the codes ``recovery-codes`` hands out.
"""

from __future__ import annotations

import argparse
import os
import string
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from totpcore._checks import check_user_id
from totpcore.cli._common import (
    Parser,
    UsageError,
    action_wording,
    cli_message,
    compatibility_warnings,
    emit,
    missing_subcommand,
)
from totpcore.errors import CipherError, MissingDependencyError, TotpcoreError, UserStateError
from totpcore.secret import MIN_KEY_BYTES, decode_secret

if TYPE_CHECKING:
    from totpcore.cipher import AESGCMCipher
    from totpcore.service import TwoFactor
    from totpcore.stores.protocol import Status, UserListing
    from totpcore.stores.sqlite import SQLiteStore
    from totpcore.verdict import Verdict

__all__ = ["add_admin_parser"]

# A key file holds a handful of 64-character lines; anything this large is the wrong file,
# and reading it whole (or a device such as /dev/zero) must not hang the command.
_MAX_KEY_FILE_BYTES = 64 * 1024
_AES_KEY_BYTES = (16, 24, 32)
_HEX_DIGITS = frozenset(string.hexdigits)
# Actions that may create the database file; the others refuse a path with no database.
_CREATES_DATABASE = frozenset({"enable", "import"})
_IMPORT_FIELDS = ("user_id", "uri", "secret", "algorithm", "digits", "period", "allow_short_key")
_URI_PARAMETERS = ("algorithm", "digits", "period")
# Users per page of ``admin list``: the store is read in pages so a large one is never
# fetched in one query.
_LIST_PAGE = 1000
_DEFAULT_ISSUER = "totpcore"


class _LineError(Exception):
    """One import line cannot be imported; the message never quotes the line."""


def add_admin_parser(commands: Any, output: Parser) -> None:
    """Add ``admin`` and its subcommands to the main command tree.

    Args:
        commands: The main parser's subparsers object.
        output: The parent parser that contributes ``--json``.
    """
    store = _store_options()
    admin = commands.add_parser(
        "admin",
        parents=[store, output],
        help="manage users' second factor in a SQLite store",
        epilog="--db, --key-file and --json may also follow the action.",
    )
    _add_issuer(admin)
    admin.set_defaults(handler=missing_subcommand(admin, "action"))
    actions = admin.add_subparsers(
        title="actions", dest="action", metavar="ACTION", parser_class=Parser
    )

    def action(name: str, help_text: str, *, users: str = "one") -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name,
            parents=[store, output],
            help=help_text,
            description=help_text[:1].upper() + help_text[1:] + ".",
        )
        if users == "many":
            parser.add_argument("users", nargs="+", metavar="USER", help="user ids")
        elif users == "one":
            parser.add_argument("user", metavar="USER", help="the user id")
        parser.set_defaults(handler=_run)
        return parser

    action("enable", "require setup at next login", users="many")
    action("status", "print disabled, setup_pending or active")
    action("list", "list users and their status", users="none")
    setup = action("setup", "show the QR code, secret and parameters, then confirm a code")
    setup.add_argument(
        "--account", metavar="NAME", help="account name shown in the app (default: USER)"
    )
    _add_issuer(setup)
    action("reset", "new secret, back to setup (active users only)")
    action("disable", "remove the user's second factor")
    action("unlock", "clear failures and the lock")
    action("recovery-codes", "print a new set of recovery codes (replaces the old)")
    imports = action(
        "import", "make active users from secrets their phones already have", users="none"
    )
    imports.add_argument(
        "file",
        metavar="FILE",
        help='JSON lines: {"user_id": ..., "uri": "otpauth://totp/..."} or {"user_id": ..., '
        '"secret": BASE32, "algorithm", "digits", "period"}, optional "allow_short_key": true; '
        "- reads standard input",
    )
    action(
        "rotate-key",
        "re-encrypt every secret under the key file's first key (keep old keys listed after it)",
        users="none",
    )
    verify = action("verify", "check a login code (counts as an attempt and uses the code up)")
    verify.add_argument("code", metavar="CODE", help="the code to check")
    resync = action("resync", "resynchronise a device from two consecutive codes")
    resync.add_argument("code1", metavar="CODE1", help="a code from the device")
    resync.add_argument("code2", metavar="CODE2", help="the code that follows it")


def _store_options() -> Parser:
    """``--db`` and ``--key-file``, for ``admin`` and again for each action.

    Both levels store them only when given (``argparse.SUPPRESS``): a default on the action
    would overwrite a value given before it. :func:`_run` checks ``--db`` is there.
    """
    options = Parser(add_help=False)
    group = options.add_argument_group("store")
    group.add_argument(
        "--db",
        metavar="PATH|URL",
        default=argparse.SUPPRESS,
        help="the store: a SQLite database file, or a redis:// or postgresql:// URL (required)",
    )
    group.add_argument(
        "--key-file",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="AES keys in hex, one per line: the current key first, then old keys "
        "(needed on an encrypted store by actions that read or write a secret)",
    )
    return options


def _add_issuer(parser: argparse.ArgumentParser) -> None:
    """``--issuer``: the service name ``setup`` puts in the URI (``admin`` takes it too)."""
    parser.add_argument(
        "--issuer",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help=f"setup: service name shown in apps (default {_DEFAULT_ISSUER})",
    )


# --- dispatch ------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    """Load the key file, open the store and run one admin action.

    Everything that can be refused without the database (the key file, the import file) is
    read first, so a mistake there never creates or touches a database.
    """
    _check_options(args)
    cipher = None if args.key_file is None else _load_cipher(args.key_file)
    if args.action == "rotate-key" and cipher is None:
        raise UsageError("rotate-key needs --key-file: the new key first, then the old keys")
    data = _read_input(args.file) if args.action == "import" else b""
    store = _open_store(args.db, creates=args.action in _CREATES_DATABASE)
    try:
        keyless = _KEYLESS_ACTIONS.get(args.action)
        if keyless is not None:
            return keyless(store, args)
        service = _service(store, args, cipher)
        if args.action == "import":
            return _import(service, args, data)
        return _SECRET_ACTIONS[args.action](service, args)
    finally:
        store.close()


def _open_store(db: str, *, creates: bool) -> Any:
    """The store ``--db`` names: a SQLite file, or a ``redis://`` / ``postgresql://`` URL.

    Redis and PostgreSQL need their extras (``totpcore[redis]``, ``totpcore[postgres]``); the
    URL's password is never echoed in an error.
    """
    scheme = db.partition("://")[0].lower() if "://" in db else ""
    if scheme in ("redis", "rediss", "unix"):
        from totpcore.stores.redis import RedisStore  # see "Start-up" above

        return RedisStore.from_url(db)
    if scheme in ("postgres", "postgresql"):
        from totpcore.stores.postgres import PostgresStore  # see "Start-up" above

        return PostgresStore(db)
    if scheme:
        raise UsageError("--db takes a SQLite file path, or a redis:// or postgresql:// URL")
    if not creates and not os.path.exists(db):
        raise UsageError(f"no database at {db} ('admin enable' creates one)")
    from totpcore.stores.sqlite import SQLiteStore  # see "Start-up" above

    return SQLiteStore(db)


def _check_options(args: argparse.Namespace) -> None:
    """Fill in the options given at neither level, and refuse what does not apply."""
    if "db" not in args:
        raise UsageError("admin needs --db PATH|URL: a SQLite file, or a Redis or PostgreSQL URL")
    if "issuer" in args and args.action != "setup":
        raise UsageError("--issuer is for admin setup only: it is not stored")
    args.key_file = getattr(args, "key_file", None)
    args.issuer = getattr(args, "issuer", _DEFAULT_ISSUER)


def _service(
    store: SQLiteStore, args: argparse.Namespace, cipher: AESGCMCipher | None
) -> TwoFactor:
    """The service for an action that touches a secret; refuses a missing or wrong key.

    TwoFactor checks the key against the fingerprint the store remembers before any write,
    so a refusal here leaves the database exactly as it was.
    """
    from totpcore.service import TwoFactor  # see "Start-up" above

    try:
        return TwoFactor(store, issuer=args.issuer, cipher=cipher)
    except CipherError as error:
        message = cli_message(error, args)
        if cipher is None:
            raise UsageError(message) from None
        # Fingerprints identify keys without revealing them: naming the file's lets an
        # operator see at once which key file they picked up.
        held = ", ".join(cipher.fingerprints())
        raise UsageError(f"{message} (--key-file holds {held})") from None


# --- key file ------------------------------------------------------------------------------


def _load_cipher(path: str) -> AESGCMCipher:
    """Build the keyring a key file describes: its first key current, the rest old.

    Raises:
        UsageError: the file cannot be read or a line is not an AES key in hex. The messages
            name the file and the line, never its content.
        MissingDependencyError: the ``cryptography`` package is not installed.
    """
    from totpcore.cipher import AESGCMCipher  # see "Start-up" above

    keys = _read_keys(path)
    return AESGCMCipher(keys[0], old_keys=keys[1:])


def _read_keys(path: str) -> list[bytes]:
    """Read the keys of a key file, in order."""
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as error:
        raise UsageError(f"cannot read key file {path}: {error.strerror or error}") from None
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise UsageError(f"key file {path} is over {_MAX_KEY_FILE_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"key file {path} is not UTF-8 text") from None
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        # Hex has no '#', so everything after one is a comment, on its own line or trailing.
        body = line.partition("#")[0].strip()
        if not body:
            continue
        where = f"key file {path}, line {number}"
        if len(body) % 2 or not _HEX_DIGITS.issuperset(body):
            raise UsageError(f"{where}: not a key in hex (two digits 0-9, a-f per byte)")
        key = bytes.fromhex(body)
        if len(key) not in _AES_KEY_BYTES:
            raise UsageError(
                f"{where}: a {len(key)}-byte key; AES keys are 16, 24 or 32 bytes "
                "(64 hex digits recommended)"
            )
        keys.append(key)
    if not keys:
        raise UsageError(f"key file {path} holds no key")
    return keys


# --- actions without a secret --------------------------------------------------------------


def _user(user_id: str) -> str:
    """Return a USER argument that passes the service's own user-id rules.

    The keyless actions reach the store without the service, so they apply its check here;
    it also refuses the lone surrogates that undecodable bytes in argv arrive as.
    """
    check_user_id(user_id)
    return user_id


def _status_of(store: SQLiteStore, user_id: str) -> Status:
    """The user's status as the store has it."""
    from totpcore.stores.protocol import Status  # see "Start-up" above

    record = store.get(user_id)
    return Status.DISABLED if record is None else record.status


def _status(store: SQLiteStore, args: argparse.Namespace) -> int:
    status = _status_of(store, _user(args.user)).value
    emit(args, {"user": args.user, "status": status}, status)
    return 0


def _list(store: SQLiteStore, args: argparse.Namespace) -> int:
    from totpcore.stores.protocol import Status  # see "Start-up" above

    rows = []
    for user_id in _all_user_ids(store):
        status = _status_of(store, user_id)
        if status is not Status.DISABLED:  # disabled between the two reads: no longer listed
            rows.append((user_id, status.value))
    emit(
        args,
        [{"user": user, "status": status} for user, status in rows],
        "\n".join(f"{user}\t{status}" for user, status in rows),
    )
    return 0


def _all_user_ids(store: UserListing) -> Iterator[str]:
    """Every user id in the store, in order, read a page at a time."""
    after: str | None = None
    while True:
        page = store.user_ids(after=after, limit=_LIST_PAGE)
        yield from page
        # A short page is the last. Paging on from the last id seen never repeats an id, even
        # when users are added or removed between pages.
        if len(page) < _LIST_PAGE:
            return
        after = page[-1]


def _disable(store: SQLiteStore, args: argparse.Namespace) -> int:
    removed = store.delete(_user(args.user))
    text = f"{args.user}: disabled" if removed else f"{args.user}: was not enabled"
    emit(args, {"user": args.user, "status": "disabled", "changed": removed}, text)
    return 0


def _unlock(store: SQLiteStore, args: argparse.Namespace) -> int:
    if not store.unlock(_user(args.user)):
        raise UserStateError("two-factor is not enabled for this user")
    emit(args, {"user": args.user, "unlocked": True}, f"{args.user}: unlocked")
    return 0


# --- actions on secrets --------------------------------------------------------------------


def _enable(service: TwoFactor, args: argparse.Namespace) -> int:
    statuses = service.enable_many(args.users)
    emit(
        args,
        {user: status.value for user, status in statuses.items()},
        "\n".join(f"{user}: {status.value}" for user, status in statuses.items()),
    )
    return 0


def _setup(service: TwoFactor, args: argparse.Namespace) -> int:
    import json  # loaded when used: start-up matters for every command

    provisioning = service.begin_setup(args.user, account_name=args.account)
    # The URI carries the user's own parameters; reading them back from it shows exactly what
    # the app will be told, whatever the policy of the service that enrolled the user.
    from totpcore.uri import parse_uri  # see "Start-up" above

    fields = parse_uri(provisioning.uri)
    if args.json:
        data = {
            "user": provisioning.user_id,
            "account": provisioning.account,
            "issuer": provisioning.issuer,
            "secret": provisioning.secret,
            "uri": provisioning.uri,
            "algorithm": fields.algorithm,
            "digits": fields.digits,
            "period": fields.period,
        }
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        try:
            sys.stdout.write(provisioning.qr_terminal())
        except MissingDependencyError as error:
            print(f"(no QR code: {error})", file=sys.stderr)
        secret = provisioning.secret
        grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        print(f"secret: {grouped}")
        print(f"params: {fields.algorithm}, {fields.digits} digits, every {fields.period} s")
        print(f"uri:    {provisioning.uri}")
    sys.stdout.flush()
    for warning in compatibility_warnings(fields, provisioning.uri):
        print(f"warning: {warning}", file=sys.stderr)
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
    emit(args, {"user": args.user, "status": status}, f"{args.user}: reset, now {status}")
    return 0


def _recovery_codes(service: TwoFactor, args: argparse.Namespace) -> int:
    codes = service.new_recovery_codes(args.user)
    emit(args, codes, "\n".join(codes))
    return 0


def _rotate_key(service: TwoFactor, args: argparse.Namespace) -> int:
    rewritten = service.rotate_key()
    noun = "secret" if rewritten == 1 else "secrets"
    emit(args, {"rewritten": rewritten}, f"re-encrypted {rewritten} {noun} under the current key")
    return 0


def _verify(service: TwoFactor, args: argparse.Namespace) -> int:
    return _report(args, service.verify(args.user, args.code))


def _resync(service: TwoFactor, args: argparse.Namespace) -> int:
    return _report(args, service.resync(args.user, args.code1, args.code2))


def _report(args: argparse.Namespace, verdict: Verdict) -> int:
    """Print a verdict for support staff; exit 0 when accepted, 1 otherwise.

    A refusal is an answer, not an error, so it goes to standard output like an acceptance.
    """
    reason = verdict.reason.value
    data = {
        "user": args.user,
        "accepted": bool(verdict),
        "reason": reason,
        "drift": verdict.drift,
        "retry_after": verdict.retry_after,
        "detail": verdict.detail,
    }
    text = reason
    if verdict and verdict.drift is not None:
        text += f" (drift {verdict.drift:+d})"
    if verdict.detail:
        text += f": {verdict.detail}"
    emit(args, data, text)
    return 0 if verdict else 1


# --- import --------------------------------------------------------------------------------


def _read_input(path: str) -> bytes:
    """The import file's bytes (``-``: standard input); decoded line by line later."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None


def _import(service: TwoFactor, args: argparse.Namespace, data: bytes) -> int:
    """Import every line; report each, and exit 1 if any failed.

    Lines are independent: one that fails changes nothing and the next is still tried, so a
    corrected file of only the failed lines can be run afterwards.
    """
    import json  # loaded when used: start-up matters for every command

    results: list[dict[str, Any]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        user, error = _import_line(service, raw, first=number == 1)
        results.append({"line": number, "user": user, "ok": error is None, "error": error})
        if not args.json:
            if error is None:
                print(f"line {number}: {user}: imported", flush=True)
            else:
                print(f"line {number}: error: {error}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    failed = sum(1 for result in results if not result["ok"])
    if failed:
        print(f"totpcore: error: {failed} of {len(results)} lines not imported", file=sys.stderr)
    return 1 if failed else 0


def _import_line(service: TwoFactor, raw: bytes, *, first: bool) -> tuple[str | None, str | None]:
    """Import one line; return its user (when readable) and the error, if any.

    Messages come from this module or from totpcore's own errors, none of which quotes a
    secret, a URI or the line.
    """
    user: str | None = None
    try:
        entry = _json_object(raw, first=first)
        user_id = entry.get("user_id")
        if not isinstance(user_id, str):
            raise _LineError('"user_id" must be a string')
        user = user_id
        key, options = _import_fields(entry)
        if len(key) < MIN_KEY_BYTES and not options["allow_short_key"]:
            # The engine's own message names its Python argument; name the file's field.
            raise _LineError(
                f"key is {len(key) * 8} bits; RFC 4226 requires at least {MIN_KEY_BYTES * 8} "
                '(add "allow_short_key": true to import a legacy key)'
            )
        service.import_secret(user_id, key, **options)
    except (_LineError, TotpcoreError) as error:
        return user, action_wording(str(error), "import")
    return user, None


def _json_object(raw: bytes, *, first: bool) -> dict[str, Any]:
    """Decode one line as a JSON object."""
    import json  # loaded when used: start-up matters for every command

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _LineError("the line is not UTF-8 text") from None
    if first:
        text = text.removeprefix("\ufeff")  # editors on Windows start files with a BOM
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as error:
        # msg and colno describe the syntax only; the document itself is not repeated.
        raise _LineError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except (ValueError, RecursionError):  # huge integers, absurd nesting
        raise _LineError("not valid JSON") from None
    if not isinstance(entry, dict):
        raise _LineError("each line must be a JSON object")
    return entry


def _import_fields(entry: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The key and the ``import_secret`` options one entry describes."""
    unknown = set(entry) - set(_IMPORT_FIELDS)
    if unknown:
        # Unknown names are arbitrary text (a secret pasted as a key, say): count, never quote.
        raise _LineError(
            f"{len(unknown)} unknown field{'s' if len(unknown) > 1 else ''}; "
            f"known: {', '.join(_IMPORT_FIELDS)}"
        )
    allow_short_key = entry.get("allow_short_key", False)
    if not isinstance(allow_short_key, bool):
        raise _LineError('"allow_short_key" must be true or false')
    if ("uri" in entry) == ("secret" in entry):
        raise _LineError('give exactly one of "uri" and "secret"')
    key, options = _uri_entry(entry) if "uri" in entry else _secret_entry(entry)
    options["allow_short_key"] = allow_short_key
    return key, options


def _uri_entry(entry: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The key and parameters of an entry that gives a ``uri``."""
    if any(name in entry for name in _URI_PARAMETERS):
        raise _LineError('"algorithm", "digits" and "period" come from the URI')
    uri = entry["uri"]
    if not isinstance(uri, str):
        raise _LineError('"uri" must be a string')
    from totpcore.uri import parse_uri  # see "Start-up" above

    fields = parse_uri(uri)
    if fields.kind != "totp" or fields.period is None:
        raise _LineError("HOTP URIs cannot be imported: only TOTP is supported")
    options: dict[str, Any] = {
        "algorithm": fields.algorithm,
        "digits": fields.digits,
        "period": fields.period,
    }
    return fields.key, options


def _secret_entry(entry: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The key and parameters of an entry that gives a base32 ``secret``."""
    secret = entry["secret"]
    if not isinstance(secret, str):
        raise _LineError('"secret" must be a base32 string')
    options: dict[str, Any] = {}
    if "algorithm" in entry:
        if not isinstance(entry["algorithm"], str):
            raise _LineError('"algorithm" must be a string')
        options["algorithm"] = entry["algorithm"]
    for name in ("digits", "period"):
        if name in entry:
            value = entry[name]
            if not isinstance(value, int) or isinstance(value, bool):
                raise _LineError(f'"{name}" must be an integer')
            options[name] = value
    return decode_secret(secret), options


_KEYLESS_ACTIONS: dict[str, Callable[[SQLiteStore, argparse.Namespace], int]] = {
    "status": _status,
    "list": _list,
    "disable": _disable,
    "unlock": _unlock,
}
_SECRET_ACTIONS: dict[str, Callable[[TwoFactor, argparse.Namespace], int]] = {
    "enable": _enable,
    "setup": _setup,
    "reset": _reset,
    "recovery-codes": _recovery_codes,
    "rotate-key": _rotate_key,
    "verify": _verify,
    "resync": _resync,
}
