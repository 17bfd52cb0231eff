"""otpauth:// URIs: exact output, lenient-where-safe parsing, strict refusals, round trips."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from totpcore import (
    HOTP,
    MAX_URI_LENGTH,
    TOTP,
    InvalidSecretError,
    InvalidURIError,
    OTPAuthURI,
    build_uri,
    encode_secret,
    parse_uri,
)

KEY = bytes(range(100, 120))
SECRET = encode_secret(KEY)  # appears in every URI below; no error message may contain it


def totp_uri(label: str = "Example:alice", query: str = "") -> str:
    """A TOTP URI with the test secret and extra query text."""
    return f"otpauth://totp/{label}?secret={SECRET}{query}"


def test_build_exact_form() -> None:
    """Spaces become %20, '@' is escaped, every option is written, issuer is repeated."""
    uri = build_uri(
        OTPAuthURI(kind="totp", account="alice smith@example.com", issuer="Big Co", key=KEY)
    )
    assert uri == (
        "otpauth://totp/Big%20Co:alice%20smith%40example.com"
        f"?secret={SECRET}&issuer=Big%20Co&algorithm=SHA1&digits=6&period=30"
    )
    assert "+" not in uri


def test_build_escapes_reserved_and_unicode() -> None:
    """Reserved characters and non-ASCII text are percent-encoded as UTF-8."""
    uri = build_uri(OTPAuthURI(kind="totp", account="a/b?c&d=e#f%g+h", issuer="Zürich", key=KEY))
    assert uri.startswith("otpauth://totp/Z%C3%BCrich:a%2Fb%3Fc%26d%3De%23f%25g%2Bh?")
    assert parse_uri(uri).account == "a/b?c&d=e#f%g+h"


def test_build_hotp() -> None:
    """HOTP URIs carry counter instead of period."""
    uri = HOTP(KEY).uri("bob", issuer="Acme", counter=42)
    assert uri.endswith("&counter=42")
    assert "period" not in uri
    parsed = parse_uri(uri)
    assert (parsed.kind, parsed.counter, parsed.period) == ("hotp", 42, None)


def test_totp_uri_and_from_uri_round_trip() -> None:
    """TOTP.uri() and TOTP.from_uri() give back an equal object."""
    otp = TOTP(KEY, digits=8, algorithm="sha512", period=60)
    assert TOTP.from_uri(otp.uri("alice", issuer="Example")) == otp
    assert HOTP.from_uri(HOTP(KEY, digits=7).uri("bob")) == HOTP(KEY, digits=7)


def test_from_uri_checks_kind_and_key_length() -> None:
    """TOTP.from_uri refuses HOTP URIs and vice versa; short keys need the opt-out."""
    with pytest.raises(InvalidURIError, match="HOTP"):
        TOTP.from_uri(HOTP(KEY).uri("bob"))
    with pytest.raises(InvalidURIError, match="TOTP"):
        HOTP.from_uri(TOTP(KEY).uri("bob"))
    short = "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP"
    with pytest.raises(InvalidSecretError):
        TOTP.from_uri(short)
    assert TOTP.from_uri(short, enforce_key_length=False).key == b"Hello!\xde\xad\xbe\xef"


def test_t0_cannot_be_shared() -> None:
    """Otpauth URIs have no t0 field, so a TOTP with t0 != 0 refuses to make one."""
    with pytest.raises(InvalidURIError, match="t0"):
        TOTP(KEY, t0=10).uri("alice")


def test_parse_defaults() -> None:
    """Missing options take the defaults every app assumes: SHA1, 6 digits, 30 s."""
    parsed = parse_uri(f"otpauth://totp/alice?secret={SECRET}")
    assert parsed == OTPAuthURI(kind="totp", account="alice", key=KEY)
    assert (parsed.issuer, parsed.algorithm, parsed.digits, parsed.period) == (None, "SHA1", 6, 30)


@pytest.mark.parametrize(
    ("uri", "issuer", "account"),
    [
        (totp_uri("Example:alice"), "Example", "alice"),
        (totp_uri("Example%3Aalice"), "Example", "alice"),
        (totp_uri("Example%3aalice"), "Example", "alice"),
        (totp_uri("Example:%20%20alice"), "Example", "alice"),
        (totp_uri("alice", "&issuer=Example"), "Example", "alice"),
        (totp_uri("Label%20Co:alice", "&issuer=Param%20Co"), "Param Co", "alice"),
        (totp_uri("Example:alice", "&issuer="), "Example", "alice"),
        (totp_uri("a+b"), None, "a+b"),
        (totp_uri("%E6%97%A5%E6%9C%AC:%F0%9F%94%91"), "日本", "\U0001f511"),
    ],
)
def test_parse_label_forms(uri: str, issuer: str | None, account: str) -> None:
    """':' or '%3A' separate issuer and account; the issuer parameter wins; '+' is literal."""
    parsed = parse_uri(uri)
    assert (parsed.issuer, parsed.account) == (issuer, account)


def test_parse_is_lenient_where_safe() -> None:
    """Scheme, kind and algorithm in any case, lower-case or padded secrets, unknown params."""
    uri = f"OTPAUTH://TOTP/alice?image=x&algorithm=sha256&secret={SECRET.lower()}&digits=8"
    parsed = parse_uri(uri)
    assert (parsed.algorithm, parsed.digits, parsed.key) == ("SHA256", 8, KEY)
    padded = encode_secret(bytes(16)) + "======"
    assert parse_uri(f"otpauth://totp/a?secret={padded}").key == bytes(16)
    assert parse_uri(f"otpauth://totp/a?secret={padded.replace('=', '%3D')}").key == bytes(16)


BAD_URIS = {
    "too long": totp_uri("alice", "&x=" + "a" * MAX_URI_LENGTH),
    "not otpauth": f"https://totp/alice?secret={SECRET}",
    "no scheme separator": f"otpauth:totp/alice?secret={SECRET}",
    "unknown kind": f"otpauth://motp/alice?secret={SECRET}",
    "no label": f"otpauth://totp/?secret={SECRET}",
    "no path": f"otpauth://totp?secret={SECRET}",
    "no secret": "otpauth://totp/alice?issuer=Example",
    "no query": "otpauth://totp/alice",
    "empty secret": "otpauth://totp/alice?secret=",
    "invalid secret": f"otpauth://totp/alice?secret={SECRET[:-1]}1",
    "non-canonical secret": f"otpauth://totp/alice?secret={SECRET}AB",
    "duplicate secret": totp_uri("alice", f"&secret={SECRET}"),
    "duplicate issuer": totp_uri("alice", "&issuer=A&issuer=B"),
    "duplicate unknown": totp_uri("alice", "&image=a&image=b"),
    "hotp without counter": f"otpauth://hotp/alice?secret={SECRET}",
    "digits 5": totp_uri("alice", "&digits=5"),
    "digits 9": totp_uri("alice", "&digits=9"),
    "digits word": totp_uri("alice", "&digits=six"),
    "digits signed": totp_uri("alice", "&digits=%2B6"),
    "digits full-width": totp_uri("alice", "&digits=%EF%BC%96"),
    "digits empty": totp_uri("alice", "&digits="),
    "period 0": totp_uri("alice", "&period=0"),
    "period negative": totp_uri("alice", "&period=-30"),
    "period huge": totp_uri("alice", "&period=99999999999999999999"),
    "period underscore": totp_uri("alice", "&period=3_0"),
    "counter negative": f"otpauth://hotp/alice?secret={SECRET}&counter=-1",
    "counter 2**64": f"otpauth://hotp/alice?secret={SECRET}&counter=18446744073709551616",
    "algorithm md5": totp_uri("alice", "&algorithm=MD5"),
    "bad escape letters": totp_uri("ali%GGce"),
    "bad escape short": totp_uri("alice%4"),
    "bad escape in value": totp_uri("alice", "&issuer=A%2"),
    "label not UTF-8": totp_uri("%FF%FEalice"),
    "issuer not UTF-8": totp_uri("alice", "&issuer=%C3"),
    "raw non-ASCII": totp_uri("Zürich:alice"),
    "raw space": totp_uri("Big Co:alice"),
    "raw control": totp_uri("alice\x07"),
    "fragment": totp_uri("alice", "#frag"),
    "parameter without =": totp_uri("alice", "&digits"),
    "empty parameter": totp_uri("alice", "&&digits=6"),
    "empty account": totp_uri("Example:"),
    "second colon": totp_uri("Example:alice:bob"),
    "encoded newline in account": totp_uri("Example:alice%0A"),
    "encoded control in issuer": totp_uri("alice", "&issuer=A%00B"),
    "account of spaces": totp_uri("%20%20"),
}


@pytest.mark.parametrize("uri", BAD_URIS.values(), ids=BAD_URIS.keys())
def test_parse_refuses_without_leaking(uri: str) -> None:
    """Each malformed URI is an InvalidURIError (a ValueError) whose message hides the secret."""
    with pytest.raises(InvalidURIError) as caught:
        parse_uri(uri)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message
    assert SECRET[:10] not in message
    assert SECRET[-10:] not in message


@pytest.mark.parametrize("uri", [b"otpauth://totp/a?secret=AAAA", None, 1])
def test_parse_needs_a_str(uri: object) -> None:
    """Anything but a str is a TypeError."""
    with pytest.raises(TypeError):
        parse_uri(uri)  # type: ignore[arg-type]


BAD_FIELDS: dict[str, tuple[dict[str, Any], type[Exception]]] = {
    "colon in account": ({"account": "a:b"}, InvalidURIError),
    "colon in issuer": ({"issuer": "Big:Co"}, InvalidURIError),
    "empty account": ({"account": ""}, InvalidURIError),
    "empty issuer": ({"issuer": ""}, InvalidURIError),
    "leading space": ({"account": " alice"}, InvalidURIError),
    "control character": ({"account": "ali\nce"}, InvalidURIError),
    "lone surrogate": ({"account": "\ud800"}, InvalidURIError),
    "bad kind": ({"kind": "motp"}, InvalidURIError),
    "counter on totp": ({"counter": 1}, InvalidURIError),
    "empty key": ({"key": b""}, InvalidSecretError),
    "key as str": ({"key": SECRET}, TypeError),
    "account as bytes": ({"account": b"alice"}, TypeError),
}


@pytest.mark.parametrize(("change", "error"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_fields_that_cannot_be_built(change: dict[str, Any], error: type[Exception]) -> None:
    """Names with ':' or control characters, wrong kinds and bad keys are refused up front."""
    fields: dict[str, Any] = {"kind": "totp", "account": "alice", "issuer": "Co", "key": KEY}
    with pytest.raises(error):
        OTPAuthURI(**(fields | change))


def test_hotp_fields_need_counter_and_no_period() -> None:
    """An HOTP OTPAuthURI needs a counter and refuses a period."""
    with pytest.raises(InvalidURIError, match="counter"):
        OTPAuthURI(kind="hotp", account="a", key=KEY)
    with pytest.raises(InvalidURIError, match="period"):
        OTPAuthURI(kind="hotp", account="a", key=KEY, counter=0, period=30)


def test_build_refuses_overlong_uri() -> None:
    """A URI that would pass the documented length cap is refused when building."""
    with pytest.raises(InvalidURIError, match=str(MAX_URI_LENGTH)):
        build_uri(OTPAuthURI(kind="totp", account="a" * MAX_URI_LENGTH, key=KEY))
    with pytest.raises(TypeError):
        build_uri("otpauth://totp/a?secret=AAAA")  # type: ignore[arg-type]


def test_key_not_in_repr() -> None:
    """OTPAuthURI's repr leaves the key out."""
    text = repr(parse_uri(totp_uri()))
    assert SECRET not in text
    assert KEY.hex() not in text
    assert repr(KEY) not in text


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=":"),
    min_size=1,
    max_size=30,
).filter(lambda s: s == s.strip())


@st.composite
def uri_fields(draw: st.DrawFn) -> OTPAuthURI:
    """Any valid OTPAuthURI."""
    kind: Literal["totp", "hotp"] = draw(st.sampled_from(["totp", "hotp"]))
    return OTPAuthURI(
        kind=kind,
        account=draw(names),
        issuer=draw(st.none() | names),
        key=draw(st.binary(min_size=1, max_size=64)),
        algorithm=draw(st.sampled_from(["SHA1", "SHA256", "SHA512"])),
        digits=draw(st.integers(6, 8)),
        period=draw(st.integers(1, 2**32 - 1)) if kind == "totp" else None,
        counter=draw(st.integers(0, 2**64 - 1)) if kind == "hotp" else None,
    )


@given(uri_fields())
def test_parse_build_round_trip(fields: OTPAuthURI) -> None:
    """parse_uri(build_uri(x)) == x for every valid x, and the URI is ASCII with no '+'."""
    uri = build_uri(fields)
    assert uri.isascii()
    assert " " not in uri
    assert "+" not in uri  # spaces are %20 and a literal plus is %2B, never a bare '+'
    parsed = parse_uri(uri)
    assert parsed == fields
    assert hash(parsed) == hash(fields)  # frozen values: usable as the same dict key


@given(st.text(max_size=300))
def test_parse_arbitrary_text_only_raises_invalid_uri(text: str) -> None:
    """Whatever the text, parse_uri returns or raises InvalidURIError: nothing else escapes."""
    for candidate in (text, "otpauth://totp/" + text, totp_uri("a", text)):
        try:
            parsed = parse_uri(candidate)
        except InvalidURIError as error:
            # Hypothesis drives the loop, so pytest.raises (which demands an error) cannot.
            assert SECRET not in str(error)  # noqa: PT017
        else:
            assert isinstance(parsed, OTPAuthURI)
