"""Google Authenticator exports with fields of the wrong wire type, and wrong argument types.

A field's wire type says how its value is encoded; an export that sends, say, the secret as a
number or the algorithm as bytes is malformed, and must be refused as InvalidURIError (never
read as something else, never another exception).
"""

from __future__ import annotations

from typing import Any

import pytest

from test_migration import KEY, account, export, int_field, length_field
from totpcore import InvalidURIError, OTPAuthURI, build_migration_uris, parse_migration_uri


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (int_field(1, 5) + length_field(2, b"alice"), "secret, name or issuer has the wrong"),
        (length_field(1, KEY) + int_field(2, 9), "secret, name or issuer has the wrong"),
        (length_field(1, KEY) + length_field(2, b"a") + int_field(3, 1), "wrong wire type"),
        (length_field(1, KEY) + length_field(2, b"a") + length_field(4, b"\x01"), "field 4"),
        (length_field(1, KEY) + length_field(2, b"a") + length_field(5, b"\x01"), "field 5"),
        (length_field(1, KEY) + length_field(2, b"a") + length_field(6, b"\x02"), "field 6"),
    ],
)
def test_fields_of_the_wrong_wire_type_are_refused(message: bytes, expected: str) -> None:
    """Each account field sent with the other wire type is InvalidURIError naming the problem."""
    with pytest.raises(InvalidURIError, match=expected):
        parse_migration_uri(export(message))


def test_hotp_counter_of_the_wrong_wire_type_is_refused() -> None:
    """An HOTP account whose counter is bytes instead of a number is refused."""
    message = account(KEY, "alice", kind=1) + length_field(7, b"\x05")
    with pytest.raises(InvalidURIError, match="field 7"):
        parse_migration_uri(export(message))
    valid = parse_migration_uri(export(account(KEY, "alice", kind=1, counter=5)))
    assert valid.accounts[0].counter == 5


def test_data_that_is_not_base64_is_refused() -> None:
    """Characters outside the base64 alphabet in ``data`` are refused, not skipped."""
    with pytest.raises(InvalidURIError, match="not valid base64"):
        parse_migration_uri("otpauth-migration://offline?data=AB$C")


@pytest.mark.parametrize("uri", [b"otpauth-migration://offline?data=AA", None, 12])
def test_a_uri_that_is_not_a_str_is_a_type_error(uri: Any) -> None:
    """parse_migration_uri takes text only."""
    with pytest.raises(TypeError, match="URI must be a str"):
        parse_migration_uri(uri)


def test_build_refuses_accounts_that_are_not_parsed_uris() -> None:
    """build_migration_uris takes OTPAuthURI objects, not URI strings."""
    good = OTPAuthURI(kind="totp", account="a", key=KEY)
    with pytest.raises(TypeError, match="OTPAuthURI"):
        build_migration_uris([good, "otpauth://totp/a?secret=JBSWY3DP"])  # type: ignore[list-item]
