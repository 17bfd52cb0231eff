"""Just enough Protocol Buffers wire format for Google Authenticator migration payloads.

Decoding is strict: truncated input, over-long varints, unknown wire types and lengths past the
end raise ValueError (the caller turns it into InvalidURIError). Unknown fields are skipped, as
the format requires.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_MAX_VARINT_BYTES = 10


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer below 2**64 as a base-128 varint."""
    if not 0 <= value < 2**64:
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    """Encode one field: a varint for ``int``, length-delimited for ``bytes``."""
    if isinstance(value, int):
        return encode_varint(number << 3 | VARINT) + encode_varint(value)
    return encode_varint(number << 3 | LENGTH) + encode_varint(len(value)) + value


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """Decode a varint at ``position``; return it and the position after it."""
    value = shift = 0
    for index in range(position, min(position + _MAX_VARINT_BYTES, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value >= 2**64:
                raise ValueError("varint out of range")
            return value, index + 1
        shift += 7
    raise ValueError("truncated or over-long varint")


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field number, wire type, value)`` for each field of a message."""
    position = 0
    while position < len(data):
        key, position = read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire_type == VARINT:
            value, position = read_varint(data, position)
            yield number, wire_type, value
        elif wire_type == LENGTH:
            length, position = read_varint(data, position)
            end = position + length
            if end > len(data):
                raise ValueError("length-delimited field runs past the end")
            yield number, wire_type, data[position:end]
            position = end
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if position + size > len(data):
                raise ValueError("fixed-size field runs past the end")
            yield number, wire_type, data[position : position + size]
            position += size
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
