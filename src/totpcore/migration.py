"""Google Authenticator transfer exports: ``otpauth-migration://offline?data=...``.

The app's "Transfer accounts" screen shows one or more QR codes (a *batch* each), whose text is
such a URI: the ``data`` parameter is base64 of a Protocol Buffers ``MigrationPayload`` holding
one ``OtpParameters`` message per account (secret, name, issuer, algorithm, digit count, type,
HOTP counter). The format has no period: every TOTP account in it uses 30 seconds.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from totpcore import _protobuf
from totpcore._checks import check_range
from totpcore.errors import InvalidParameterError, InvalidURIError
from totpcore.uri import OTPAuthURI, fields_from_input, parse_query

__all__ = [
    "MAX_MIGRATION_URI_LENGTH",
    "MigrationBatch",
    "build_migration_uris",
    "parse_migration_uri",
]

#: Longest export URI accepted; a QR code holds under 3 KiB, so a real batch is far smaller.
MAX_MIGRATION_URI_LENGTH = 16_384
_ALGORITHMS = {0: "SHA1", 1: "SHA1", 2: "SHA256", 3: "SHA512"}
_ALGORITHM_NUMBERS = {"SHA1": 1, "SHA256": 2, "SHA512": 3}
_DIGITS = {0: 6, 1: 6, 2: 8, 3: 7}
_DIGIT_NUMBERS = {6: 1, 8: 2}
_HOTP, _TOTP = 1, 2


@dataclass(frozen=True, slots=True)
class MigrationBatch:
    """The accounts of one export QR code.

    Attributes:
        accounts: One :class:`~totpcore.OTPAuthURI` per account, in export order.
        version: The payload format version.
        batch_size: How many QR codes the whole export has.
        batch_index: This one's position among them, from 0.
        batch_id: A number shared by the QR codes of one export.
    """

    accounts: tuple[OTPAuthURI, ...]
    version: int
    batch_size: int
    batch_index: int
    batch_id: int


def parse_migration_uri(uri: str) -> MigrationBatch:
    """Decode an ``otpauth-migration://offline?data=...`` URI.

    Raises:
        InvalidURIError: not such a URI, or its payload is malformed, or an account uses
            something an otpauth URI cannot carry (MD5, an empty secret, a ':' in a name).
        TypeError: ``uri`` is not a ``str``.
    """
    if not isinstance(uri, str):
        raise TypeError(f"URI must be a str, not {type(uri).__name__}")
    if len(uri) > MAX_MIGRATION_URI_LENGTH:
        raise InvalidURIError(f"migration URI is longer than {MAX_MIGRATION_URI_LENGTH} characters")
    if not uri.isascii() or any(char <= " " for char in uri):
        raise InvalidURIError("migration URI contains spaces, control or non-ASCII characters")
    head, _, query = uri.partition("?")
    if head.lower() != "otpauth-migration://offline":
        raise InvalidURIError("a migration URI starts with otpauth-migration://offline?")
    params = parse_query(query)
    if "data" not in params:
        raise InvalidURIError("migration URI has no data parameter")
    text = params["data"]
    try:
        payload = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidURIError("migration data is not valid base64") from None
    try:
        return _payload(payload)
    except ValueError as error:  # malformed protobuf from _protobuf, or a bad field here
        if isinstance(error, InvalidURIError):
            raise
        raise InvalidURIError(f"migration data is malformed: {error}") from None


def build_migration_uris(accounts: Sequence[OTPAuthURI], *, batch_size: int = 10) -> list[str]:
    """Encode accounts as export URIs, ``batch_size`` accounts to each (one per QR code).

    Raises:
        InvalidURIError: an account has a period other than 30 s or 7 digits, which the
            format cannot carry.
        InvalidParameterError: ``batch_size`` is not 1 to 100, or ``accounts`` is empty.
        TypeError: ``batch_size`` is not an ``int``, or an account is not an ``OTPAuthURI``.
    """
    check_range(batch_size, "batch_size", 1, 100)
    if not accounts:
        raise InvalidParameterError("there are no accounts to export")
    encoded = [_account(account) for account in accounts]
    batches = [encoded[i : i + batch_size] for i in range(0, len(encoded), batch_size)]
    batch_id = secrets.randbits(31)
    uris = []
    for index, batch in enumerate(batches):
        payload = b"".join(_protobuf.field(1, message) for message in batch)
        payload += _protobuf.field(2, 1) + _protobuf.field(3, len(batches))
        payload += _protobuf.field(4, index) + _protobuf.field(5, batch_id)
        data = quote(base64.b64encode(payload).decode("ascii"), safe="")
        uris.append(f"otpauth-migration://offline?data={data}")
    return uris


def _account(account: OTPAuthURI) -> bytes:
    """Encode one account as an OtpParameters message."""
    if not isinstance(account, OTPAuthURI):
        raise TypeError("accounts must be OTPAuthURI objects")
    if account.kind == "totp" and account.period != 30:
        raise InvalidURIError("the export format has no period; only 30-second accounts fit")
    if account.digits not in _DIGIT_NUMBERS:
        raise InvalidURIError("the export format carries 6 or 8 digits only")
    message = _protobuf.field(1, account.key) + _protobuf.field(2, account.account.encode())
    if account.issuer is not None:
        message += _protobuf.field(3, account.issuer.encode())
    message += _protobuf.field(4, _ALGORITHM_NUMBERS[account.algorithm])
    message += _protobuf.field(5, _DIGIT_NUMBERS[account.digits])
    if account.kind == "hotp":
        message += _protobuf.field(6, _HOTP) + _protobuf.field(7, account.counter or 0)
    else:
        message += _protobuf.field(6, _TOTP)
    return message


def _payload(data: bytes) -> MigrationBatch:
    """Decode a MigrationPayload message."""
    accounts = []
    numbers = {2: 0, 3: 1, 4: 0, 5: 0}
    for number, wire_type, value in _protobuf.fields(data):
        if number == 1 and isinstance(value, bytes):
            accounts.append(_parameters_message(value))
        elif number in numbers and wire_type == _protobuf.VARINT and isinstance(value, int):
            numbers[number] = value
    if not accounts:
        raise InvalidURIError("the migration data holds no accounts")
    return MigrationBatch(
        accounts=tuple(accounts),
        version=numbers[2],
        batch_size=numbers[3],
        batch_index=numbers[4],
        batch_id=numbers[5],
    )


def _parameters_message(data: bytes) -> OTPAuthURI:
    """Decode one OtpParameters message into the URI fields it stands for."""
    values: dict[int, int | bytes] = {}
    for number, _, value in _protobuf.fields(data):
        values[number] = value
    secret, name, issuer = values.get(1, b""), values.get(2, b""), values.get(3, b"")
    if not (isinstance(secret, bytes) and isinstance(name, bytes) and isinstance(issuer, bytes)):
        raise InvalidURIError("an account's secret, name or issuer has the wrong wire type")
    algorithm = _ALGORITHMS.get(_int(values, 4))
    if algorithm is None:
        raise InvalidURIError("an account uses an algorithm otpauth URIs cannot carry (MD5?)")
    digits = _DIGITS.get(_int(values, 5))
    if digits is None:
        raise InvalidURIError("an account has an unknown digit count")
    kind: Literal["totp", "hotp"] = "hotp" if _int(values, 6) == _HOTP else "totp"
    try:
        account_name = name.decode("utf-8").strip()
        issuer_name = issuer.decode("utf-8").strip() or None
    except UnicodeDecodeError:
        raise InvalidURIError("an account name is not valid UTF-8") from None
    # Exports often repeat the issuer in the name, as "Issuer:account".
    label_issuer, colon, rest = account_name.partition(":")
    if colon and (issuer_name is None or label_issuer.strip() == issuer_name):
        issuer_name = issuer_name or label_issuer.strip() or None
        account_name = rest.strip()
    return fields_from_input(
        kind=kind,
        account=account_name,
        issuer=issuer_name,
        key=secret,
        algorithm=algorithm,
        digits=digits,
        period=30 if kind == "totp" else None,
        counter=_int(values, 7) if kind == "hotp" else None,
    )


def _int(values: dict[int, int | bytes], number: int) -> int:
    """A varint field's value (0 when absent, as protobuf defines)."""
    value = values.get(number, 0)
    if not isinstance(value, int):
        raise InvalidURIError(f"field {number} has the wrong wire type")
    return value
