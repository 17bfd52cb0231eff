"""QR codes for web pages: PNG bytes and files read back by zbarimg, SVGs that scale with CSS."""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import pytest

from helpers import zbar_decode
from totpcore import InvalidParameterError, MemoryStore, Provisioning, TwoFactor
from totpcore.qr import qr_matrix, qr_png, qr_svg

URI = (
    "otpauth://totp/Example%20Co:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    "&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def setup() -> Provisioning:
    """A real provisioning, from a service with one pending user."""
    service = TwoFactor(MemoryStore(), issuer="Example Co")
    service.enable("alice")
    return service.begin_setup("alice", account_name="alice@example.com")


def _svg_root(svg: str) -> str:
    """The opening ``<svg ...>`` tag of a document."""
    match = re.match(r"\s*(<svg\b[^>]*>)", svg)
    assert match is not None, "not an SVG document"
    return match.group(1)


def test_png_bytes_decode_to_the_uri(setup: Provisioning, tmp_path: Path) -> None:
    """Without a target, qr_png returns PNG bytes that zbarimg decodes to the exact URI."""
    data = setup.qr_png()
    assert isinstance(data, bytes)
    assert data.startswith(PNG_SIGNATURE)
    path = tmp_path / "bytes.png"
    path.write_bytes(data)
    assert zbar_decode(path) == setup.uri


def test_png_into_a_file_object(setup: Provisioning, tmp_path: Path) -> None:
    """A binary file object receives the same PNG; nothing is returned."""
    buffer = io.BytesIO()
    assert setup.qr_png(buffer) is None
    assert buffer.getvalue() == setup.qr_png()
    path = tmp_path / "stream.png"
    with path.open("wb") as file:
        setup.qr_png(file, scale=5)
    assert zbar_decode(path) == setup.uri


def test_png_to_a_path_as_before(setup: Provisioning, tmp_path: Path) -> None:
    """A path (str or Path) is written as before, and the call returns None."""
    assert setup.qr_png(tmp_path / "a.png") is None
    assert setup.qr_png(str(tmp_path / "b.png")) is None
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert zbar_decode(tmp_path / "a.png") == setup.uri


def test_png_bytes_scale(setup: Provisioning) -> None:
    """The bytes carry the requested pixels per module, quiet zone included."""
    data = qr_png(URI, scale=4)
    width, height = struct.unpack(">II", data[16:24])
    assert width == height == len(qr_matrix(URI)) * 4
    with pytest.raises(InvalidParameterError):
        setup.qr_png(scale=3)


def test_png_refuses_a_target_it_cannot_write(setup: Provisioning) -> None:
    """A target that is neither a path nor a writable object is a TypeError, not a crash later."""
    with pytest.raises(TypeError, match="target"):
        setup.qr_png(42)  # type: ignore[call-overload]


def test_svg_has_a_viewbox_and_no_fixed_size(setup: Provisioning) -> None:
    """The provisioning SVG scales with CSS: a viewBox, no width or height, a class to style."""
    root = _svg_root(setup.qr_svg())
    modules = len(qr_matrix(setup.uri))
    assert f'viewBox="0 0 {modules * 8} {modules * 8}"' in root
    assert "width=" not in root
    assert "height=" not in root
    assert 'class="totpcore-qr"' in root
    assert "<?xml" not in setup.qr_svg()  # inlined in HTML, so no XML declaration
    assert 'class="mine"' in _svg_root(setup.qr_svg(css_class="mine"))


def test_svg_paints_a_light_background(setup: Provisioning) -> None:
    """The inline SVG is opaque white behind the modules, so dark pages keep dark-on-light."""
    assert re.search(r'fill="#fff(fff)?"', setup.qr_svg())


def test_responsive_svg_draws_the_same_code() -> None:
    """Rasterised from its path, the responsive SVG decodes to the URI (the drawing is intact).

    The path is in module units (a transform scales it), in segno's line form: ``M x y``
    moves and ``h n`` draws a dark run on the row ``y - 0.5``.
    """
    svg = qr_svg(URI, responsive=True)
    path = re.search(r'class="qrline"[^>]*\bd="([^"]+)"', svg)
    assert path is not None
    size = len(qr_matrix(URI))
    matrix = [[False] * size for _ in range(size)]
    x = y = 0.0
    for command, first, second in re.findall(r"([Mmh])(-?[\d.]+)(?:\s(-?[\d.]+))?", path[1]):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            run = int(float(first))
            for column in range(int(x), int(x) + run):
                matrix[int(y)][column] = True
            x += run
    assert matrix == qr_matrix(URI)


def test_svg_of_the_module_function_keeps_its_fixed_size() -> None:
    """qr_svg without ``responsive`` still gives width and height (for files, as the CLI writes)."""
    root = _svg_root(qr_svg(URI, scale=5))
    size = len(qr_matrix(URI)) * 5
    assert f'width="{size}"' in root
    assert f'height="{size}"' in root
