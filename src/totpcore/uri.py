"""``otpauth://`` key URIs: the text inside the QR code an authenticator app scans.

The format is the de facto Key URI Format authenticator apps share::

    otpauth://totp/Example%20Co:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Co
              ^^^^ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
              kind label: issuer ":" account         parameters

Building always escapes every character of the label and of parameter values outside the
RFC 3986 unreserved set, and writes a space as ``%20`` (never ``+``, which apps show literally).
Parsing is strict, because a URI usually arrives from somewhere else: see :func:`parse_uri`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from totpcore._checks import (
    MAX_COUNTER,
    MAX_DIGITS,
    MAX_PERIOD,
    MIN_DIGITS,
    check_algorithm,
    check_counter,
    check_digits,
    check_period,
)
from totpcore.errors import InvalidParameterError, InvalidSecretError, InvalidURIError
from totpcore.secret import decode_secret, encode_secret

__all__ = ["MAX_URI_LENGTH", "OTPAuthURI", "build_uri", "parse_uri"]

#: Longest URI :func:`parse_uri` reads and :func:`build_uri` writes, in characters. Real ones
#: are under 300; the cap bounds the work a hostile QR code or paste can cause, and stays well
#: inside what a QR code can hold (about 4 KiB at the lowest error correction).
MAX_URI_LENGTH = 4096

_HEX = frozenset(string.hexdigits)
_KINDS = ("totp", "hotp")
_KNOWN_PARAMETERS = frozenset({"secret", "issuer", "algorithm", "digits", "period", "counter"})


@dataclass(frozen=True, slots=True, kw_only=True)
class OTPAuthURI:
    """The fields of an ``otpauth://`` URI, validated at construction.

    Attributes:
        kind: ``"totp"`` or ``"hotp"``.
        account: The account name shown in the app (e.g. an e-mail address); not empty.
        key: The shared secret as bytes (never shown in ``repr``).
        issuer: The service name, or ``None``. Neither it nor ``account`` may contain ``:``
            (the label separator), control characters, or leading or trailing spaces.
        algorithm: ``"SHA1"``, ``"SHA256"`` or ``"SHA512"``.
        digits: 6 to 8.
        period: TOTP step in seconds (defaults to 30); ``None`` for HOTP.
        counter: HOTP initial counter (required for HOTP); ``None`` for TOTP.

    Raises:
        InvalidURIError: the kind, a name, ``period`` or ``counter`` does not fit the format.
        InvalidSecretError: ``key`` is empty.
        InvalidParameterError: ``algorithm``, ``digits``, ``period`` or ``counter`` is out of
            range.
        TypeError: a field has the wrong type.
    """

    kind: Literal["totp", "hotp"]
    account: str
    key: bytes = field(repr=False)
    issuer: str | None = None
    algorithm: str = "SHA1"
    digits: int = 6
    period: int | None = None
    counter: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidURIError("kind must be 'totp' or 'hotp'")
        _check_name(self.account, "account")
        if self.issuer is not None:
            _check_name(self.issuer, "issuer")
        if not isinstance(self.key, bytes | bytearray):
            raise TypeError(f"key must be bytes, not {type(self.key).__name__}")
        if not self.key:
            raise InvalidSecretError("key is empty")
        object.__setattr__(self, "key", bytes(self.key))
        object.__setattr__(self, "algorithm", check_algorithm(self.algorithm))
        check_digits(self.digits)
        if self.kind == "totp":
            if self.counter is not None:
                raise InvalidURIError("counter belongs to HOTP URIs only")
            object.__setattr__(
                self, "period", check_period(30 if self.period is None else self.period)
            )
        else:
            if self.period is not None:
                raise InvalidURIError("period belongs to TOTP URIs only")
            if self.counter is None:
                raise InvalidURIError("an HOTP URI needs a counter")
            check_counter(self.counter)


def build_uri(fields: OTPAuthURI) -> str:
    """Return the ``otpauth://`` URI for ``fields``.

    The label is ``issuer:account`` (or ``account`` alone), and the issuer is repeated as the
    ``issuer=`` parameter, which apps prefer. Every option is written out explicitly.

    Raises:
        InvalidURIError: the result would be longer than :data:`MAX_URI_LENGTH`.
        TypeError: ``fields`` is not an :class:`OTPAuthURI`.
    """
    if not isinstance(fields, OTPAuthURI):
        raise TypeError(f"build_uri takes an OTPAuthURI, not {type(fields).__name__}")
    label = _escape(fields.account)
    if fields.issuer is not None:
        label = f"{_escape(fields.issuer)}:{label}"
    params = [f"secret={encode_secret(fields.key)}"]
    if fields.issuer is not None:
        params.append(f"issuer={_escape(fields.issuer)}")
    params.append(f"algorithm={fields.algorithm}")
    params.append(f"digits={fields.digits}")
    if fields.kind == "totp":
        params.append(f"period={fields.period}")
    else:
        params.append(f"counter={fields.counter}")
    uri = f"otpauth://{fields.kind}/{label}?{'&'.join(params)}"
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidURIError(f"URI would be longer than {MAX_URI_LENGTH} characters")
    return uri


def parse_uri(uri: str) -> OTPAuthURI:
    """Parse an ``otpauth://totp/...`` or ``otpauth://hotp/...`` URI.

    Accepted: ``:`` or ``%3A`` between issuer and account in the label (spaces after it are
    dropped), any case in the scheme, kind and algorithm, parameters in any order, and unknown
    parameters (ignored). When the label's issuer and the ``issuer=`` parameter disagree, the
    parameter wins, as in the apps. A ``+`` is a literal plus sign, not a space.

    Refused: anything longer than :data:`MAX_URI_LENGTH`; raw non-ASCII, spaces or control
    characters; another scheme or kind; a missing or invalid secret; an HOTP URI without
    ``counter``; a repeated parameter; a parameter without ``=``; numbers that are not plain
    ASCII digits or are out of range; malformed percent-escapes; names that are not UTF-8 or
    that break the :class:`OTPAuthURI` rules.

    Raises:
        InvalidURIError: the URI is not acceptable; the message says why and never repeats the
            URI, which carries the secret.
        TypeError: ``uri`` is not a ``str``.
    """
    _check_characters(uri)
    kind, raw_label, query = _split(uri)
    label_issuer, account = _label(raw_label)
    params = parse_query(query)
    if "secret" not in params:
        raise InvalidURIError("URI has no secret parameter")
    try:
        key = decode_secret(params["secret"])
    except InvalidSecretError as error:
        raise InvalidURIError(f"secret parameter: {error}") from None
    # digits is checked before period and counter, as the fields are listed, so that a URI
    # with several bad numbers always names the same one.
    digits = _number(params.get("digits", "6"), "digits", MIN_DIGITS, MAX_DIGITS)
    period, counter = _kind_parameters(kind, params)
    return fields_from_input(
        kind=kind,
        account=account,
        key=key,
        issuer=params.get("issuer") or label_issuer or None,
        algorithm=params.get("algorithm", "SHA1"),
        digits=digits,
        period=period,
        counter=counter,
    )


def parse_query(query: str) -> dict[str, str]:
    """Split a URI query into decoded values, refusing repeats and parameters without ``=``.

    Shared with :mod:`totpcore.migration`, whose export URIs follow the same rules; not part
    of the package API.

    Raises:
        InvalidURIError: a parameter is malformed or repeated, or an escape is malformed.
    """
    params: dict[str, str] = {}
    if not query:
        return params
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if not equals or not name:
            raise InvalidURIError("URI has a malformed parameter (expected name=value)")
        name = _unescape(name, "parameter name")
        if name in params:
            # Name only the parameters we know: an unknown name is arbitrary text.
            shown = repr(name) if name in _KNOWN_PARAMETERS else "a"
            raise InvalidURIError(f"URI repeats {shown} parameter")
        params[name] = _unescape(value, f"{name} parameter")
    return params


def fields_from_input(**fields: Any) -> OTPAuthURI:
    """Build :class:`OTPAuthURI` from fields read from outside.

    Any refusal is then the input's fault, so it becomes :class:`InvalidURIError`. Shared with
    :mod:`totpcore.migration`; not part of the package API.

    Raises:
        InvalidURIError: the fields break a rule of :class:`OTPAuthURI`.
    """
    try:
        return OTPAuthURI(**fields)
    except (InvalidParameterError, InvalidSecretError) as error:
        raise InvalidURIError(str(error)) from None


def _check_characters(uri: object) -> None:
    """Refuse a URI that is not a str, is too long, or has raw characters it must escape."""
    if not isinstance(uri, str):
        raise TypeError(f"URI must be a str, not {type(uri).__name__}")
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidURIError(f"URI is longer than {MAX_URI_LENGTH} characters")
    if not uri.isascii():
        raise InvalidURIError("URI contains non-ASCII characters; they must be percent-encoded")
    if any(char <= " " or char == "\x7f" for char in uri):
        raise InvalidURIError("URI contains spaces or control characters")


def _split(uri: str) -> tuple[str, str, str]:
    """Split a URI into its kind (lower case), its still escaped label, and its query."""
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme.lower() != "otpauth":
        raise InvalidURIError("URI must start with otpauth://")
    if "#" in rest:
        raise InvalidURIError("URI must not have a fragment ('#')")
    path, _, query = rest.partition("?")
    kind, separator, raw_label = path.partition("/")
    kind = kind.lower()
    if kind not in _KINDS:
        raise InvalidURIError("URI kind must be totp or hotp")
    if not separator or not raw_label:
        raise InvalidURIError("URI has no label (account name)")
    return kind, raw_label, query


def _label(raw_label: str) -> tuple[str, str]:
    """Return the label's issuer ("" when there is none) and account."""
    label = _unescape(raw_label, "label")
    label_issuer, colon, account = label.partition(":")
    if not colon:
        return "", label
    return label_issuer, account.lstrip(" ")


def _kind_parameters(kind: str, params: dict[str, str]) -> tuple[int | None, int | None]:
    """Return ``(period, counter)``: the period for TOTP (default 30), the counter for HOTP."""
    if kind == "totp":
        return _number(params.get("period", "30"), "period", 1, MAX_PERIOD), None
    if "counter" not in params:
        raise InvalidURIError("an HOTP URI needs a counter parameter")
    return None, _number(params["counter"], "counter", 0, MAX_COUNTER)


def _check_name(name: object, what: str) -> None:
    """Refuse an account or issuer that cannot travel in a label and come back unchanged."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidURIError(f"{what} is empty")
    if ":" in name:
        raise InvalidURIError(f"{what} must not contain ':' (it separates issuer and account)")
    if name != name.strip():
        raise InvalidURIError(f"{what} must not start or end with white space")
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in name):
        raise InvalidURIError(f"{what} contains a control character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidURIError(f"{what} is not encodable as UTF-8") from None


def _escape(text: str) -> str:
    """Percent-encode everything outside the RFC 3986 unreserved set, as UTF-8."""
    return quote(text, safe="")


def _unescape(text: str, what: str) -> str:
    """Strictly decode percent-escapes: two hex digits each, and UTF-8 overall."""
    if "%" not in text:
        return text
    pieces = text.split("%")
    raw = bytearray(pieces[0].encode("ascii"))
    for piece in pieces[1:]:
        if len(piece) < 2 or not _HEX.issuperset(piece[:2]):
            raise InvalidURIError(f"{what} has a malformed percent-escape")
        raw.append(int(piece[:2], 16))
        raw += piece[2:].encode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidURIError(f"{what} is not valid UTF-8") from None


def _number(text: str, name: str, low: int, high: int) -> int:
    """Parse a plain decimal parameter within ``low..high``."""
    # isdigit() after isascii(): refuses signs, spaces, underscores and non-ASCII digits
    # that int() would accept; the length cap keeps int() cheap.
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise InvalidURIError(f"{name} parameter must be a plain decimal number")
    number = int(text)
    if not low <= number <= high:
        raise InvalidURIError(f"{name} parameter must be between {low} and {high}, got {number}")
    return number
