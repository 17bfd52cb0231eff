"""Google Authenticator exports: hand-built payloads, round trips, malformed data."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from totpcore import InvalidParameterError, InvalidURIError, OTPAuthURI
from totpcore.migration import MAX_MIGRATION_URI_LENGTH, build_migration_uris, parse_migration_uri


def varint(value: int) -> bytes:
    """Protocol Buffers varint, written out here independently of the library's encoder."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_field(number: int, data: bytes) -> bytes:
    """Field ``number`` with wire type 2 (length-delimited)."""
    return bytes([number << 3 | 2]) + varint(len(data)) + data


def int_field(number: int, value: int) -> bytes:
    """Field ``number`` with wire type 0 (varint)."""
    return bytes([number << 3]) + varint(value)


def account(
    secret: bytes,
    name: str,
    issuer: str = "",
    algorithm: int = 1,
    digits: int = 1,
    kind: int = 2,
    counter: int | None = None,
) -> bytes:
    """One OtpParameters message."""
    message = length_field(1, secret) + length_field(2, name.encode())
    if issuer:
        message += length_field(3, issuer.encode())
    message += int_field(4, algorithm) + int_field(5, digits) + int_field(6, kind)
    if counter is not None:
        message += int_field(7, counter)
    return message


def export(*accounts: bytes, size: int = 1, index: int = 0, batch_id: int = 1234) -> str:
    """A whole export URI around the given OtpParameters messages."""
    payload = b"".join(length_field(1, message) for message in accounts)
    payload += int_field(2, 1) + int_field(3, size) + int_field(4, index) + int_field(5, batch_id)
    return "otpauth-migration://offline?data=" + quote(base64.b64encode(payload).decode(), safe="")


KEY = b"Hello!\xde\xad\xbe\xef" * 2


def test_a_hand_built_export() -> None:
    """Every field of a hand-built payload lands where it belongs."""
    uri = export(
        account(KEY, "alice@example.com", "Example"),
        account(KEY[:16], "Example2:bob", "", algorithm=2, digits=2),
        account(KEY, "carol", "Bank", algorithm=3, kind=1, counter=300),
        size=3,
        index=1,
        batch_id=99,
    )
    batch = parse_migration_uri(uri)
    assert (batch.version, batch.batch_size, batch.batch_index, batch.batch_id) == (1, 3, 1, 99)
    first, second, third = batch.accounts
    assert first == OTPAuthURI(kind="totp", account="alice@example.com", issuer="Example", key=KEY)
    assert (second.issuer, second.account, second.algorithm, second.digits) == (
        "Example2",
        "bob",
        "SHA256",
        8,
    )
    assert (third.kind, third.counter, third.algorithm, third.period) == (
        "hotp",
        300,
        "SHA512",
        None,
    )


def test_issuer_repeated_in_the_name_is_removed() -> None:
    """Exports often name accounts "Issuer:account"; the issuer is not kept twice."""
    batch = parse_migration_uri(export(account(KEY, "Example: alice", "Example")))
    assert (batch.accounts[0].issuer, batch.accounts[0].account) == ("Example", "alice")


def test_unknown_fields_are_skipped() -> None:
    """Fields this version does not know (like a unique id, field 8) are ignored."""
    extra = account(KEY, "alice") + length_field(8, b"some-id") + int_field(9, 5)
    assert parse_migration_uri(export(extra)).accounts[0].account == "alice"


@given(
    st.lists(
        st.builds(
            lambda kind, key, digits, algorithm, counter: OTPAuthURI(
                kind=kind,
                account="user",
                issuer="Co",
                key=key,
                digits=digits,
                algorithm=algorithm,
                counter=counter if kind == "hotp" else None,
            ),
            st.sampled_from(["totp", "hotp"]),
            st.binary(min_size=1, max_size=64),
            st.sampled_from([6, 8]),
            st.sampled_from(["SHA1", "SHA256", "SHA512"]),
            st.integers(0, 2**63 - 1),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_export_import_round_trip(accounts: list[OTPAuthURI]) -> None:
    """Build then parse gives the same accounts back, in batches of 10 sharing one id."""
    uris = build_migration_uris(accounts)
    batches = [parse_migration_uri(uri) for uri in uris]
    assert len(uris) == (len(accounts) + 9) // 10
    assert [a for batch in batches for a in batch.accounts] == accounts
    assert len({batch.batch_id for batch in batches}) == 1
    assert [batch.batch_index for batch in batches] == list(range(len(uris)))
    assert all(batch.batch_size == len(uris) for batch in batches)


def test_export_refuses_what_the_format_cannot_hold() -> None:
    """No period field and no 7-digit count: such accounts are refused, not altered."""
    with pytest.raises(InvalidURIError, match="period"):
        build_migration_uris([OTPAuthURI(kind="totp", account="a", key=KEY, period=60)])
    with pytest.raises(InvalidURIError, match="digits"):
        build_migration_uris([OTPAuthURI(kind="totp", account="a", key=KEY, digits=7)])
    with pytest.raises(InvalidParameterError):
        build_migration_uris([])
    one = [OTPAuthURI(kind="totp", account="a", key=KEY)]
    with pytest.raises(InvalidParameterError):
        build_migration_uris(one, batch_size=0)
    with pytest.raises(TypeError):
        build_migration_uris(one, batch_size=True)


BAD_EXPORTS = {
    "other scheme": "otpauth://offline?data=AAAA",
    "other host": "otpauth-migration://online?data=CgA%3D",
    "no data": "otpauth-migration://offline?foo=bar",
    "not base64": "otpauth-migration://offline?data=%%%%",
    "base64 junk": "otpauth-migration://offline?data="
    + quote(base64.b64encode(b"\xff\xff\xff").decode()),
    "no accounts": "otpauth-migration://offline?data=EAE%3D",  # only version = 1
    "truncated": export(account(KEY, "alice"))[:-12],
    "MD5": export(account(KEY, "alice", algorithm=4)),
    "unknown digits": export(account(KEY, "alice", digits=9)),
    "empty secret": export(account(b"", "alice")),
    "empty name": export(account(KEY, "")),
    "name not UTF-8": export(length_field(1, KEY) + length_field(2, b"\xff\xfe")),
    "colon left in name": export(account(KEY, "a:b:c", "Other")),
    "too long": "otpauth-migration://offline?data=" + "A" * MAX_MIGRATION_URI_LENGTH,
    "space": "otpauth-migration://offline?data=AA AA",
}


@pytest.mark.parametrize("uri", BAD_EXPORTS.values(), ids=BAD_EXPORTS.keys())
def test_bad_exports(uri: str) -> None:
    """Malformed exports raise InvalidURIError (a ValueError) without echoing the data."""
    with pytest.raises(InvalidURIError) as caught:
        parse_migration_uri(uri)
    assert "JBSWY3DP" not in str(caught.value)
    assert KEY.hex() not in str(caught.value)


@given(st.binary(max_size=200))
def test_arbitrary_payloads_only_raise_invalid_uri(payload: bytes) -> None:
    """Random bytes as payload: a batch or InvalidURIError, never another exception."""
    uri = "otpauth-migration://offline?data=" + quote(base64.b64encode(payload).decode(), safe="")
    try:
        batch = parse_migration_uri(uri)
    except InvalidURIError as error:
        assert str(error)  # noqa: PT017 - hypothesis drives the loop
    else:
        assert batch.accounts
