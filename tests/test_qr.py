"""QR codes: every rendering is read back by a real decoder (zbarimg) to the exact URI."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from conftest import png_from_matrix, zbar_decode
from totpcore import InvalidParameterError, MemoryStore, TwoFactor
from totpcore.qr import QUIET_ZONE, qr_matrix, qr_png, qr_svg, qr_terminal

URI = (
    "otpauth://totp/Example%20Co:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    "&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
)
HALF_BLOCKS = {
    "\u2588": (True, True),
    "\u2580": (True, False),
    "\u2584": (False, True),
    " ": (False, False),
}


def test_png_decodes_to_the_exact_uri(tmp_path: Path) -> None:
    """A PNG written by qr_png decodes back to the URI, byte for byte."""
    path = tmp_path / "setup.png"
    qr_png(URI, path)
    assert zbar_decode(path) == URI


def test_png_has_quiet_zone_and_scale(tmp_path: Path) -> None:
    """At scale 4 the image is (modules + 2 * 4) * 4 pixels wide: a 4-module quiet zone."""
    path = tmp_path / "small.png"
    qr_png(URI, path, scale=4)
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    modules = len(qr_matrix(URI))  # includes the quiet zone
    assert width == height == modules * 4
    matrix = qr_matrix(URI)
    for row in matrix[:QUIET_ZONE] + matrix[-QUIET_ZONE:]:
        assert not any(row)
    for row in matrix:
        assert not any(row[:QUIET_ZONE])
        assert not any(row[-QUIET_ZONE:])
    with pytest.raises(InvalidParameterError):
        qr_png(URI, path, scale=3)


def test_terminal_rendering_decodes(tmp_path: Path) -> None:
    """The terminal text, turned back into modules and an image, decodes to the URI.

    It also forces black on white with ANSI colours, so it works on dark terminals.
    """
    text = qr_terminal(URI)
    lines = text.splitlines()
    assert all(line.startswith("\x1b[30;47m") and line.endswith("\x1b[0m") for line in lines)
    matrix: list[list[bool]] = []
    for line in lines:
        cells = re.sub(r"\x1b\[[0-9;]*m", "", line)
        matrix.append([HALF_BLOCKS[cell][0] for cell in cells])
        matrix.append([HALF_BLOCKS[cell][1] for cell in cells])
    path = tmp_path / "terminal.png"
    png_from_matrix(matrix, path)
    assert zbar_decode(path) == URI


def test_svg_is_an_svg_of_the_code(tmp_path: Path) -> None:
    """qr_svg returns an SVG document sized for the module count at the given scale."""
    svg = qr_svg(URI, scale=5)
    assert svg.lstrip().startswith("<svg")
    size = len(qr_matrix(URI)) * 5
    assert f'width="{size}"' in svg
    assert f'height="{size}"' in svg


def test_provisioning_helpers(tmp_path: Path) -> None:
    """The setup screen's QR helpers encode the provisioning URI."""
    service = TwoFactor(MemoryStore(), issuer="Example Co")
    service.enable("alice")
    setup = service.begin_setup("alice")
    setup.qr_png(tmp_path / "p.png")
    assert zbar_decode(tmp_path / "p.png") == setup.uri
    assert setup.qr_svg().lstrip().startswith("<svg")
    assert "\u2588" in setup.qr_terminal()


def test_missing_segno_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without segno, the error says what to install (and is a TotpcoreError, an ImportError)."""
    import sys

    from totpcore import MissingDependencyError

    monkeypatch.setitem(sys.modules, "segno", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'totpcore\[qr\]'") as caught:
        qr_terminal(URI)
    assert isinstance(caught.value, ImportError)


def test_non_string_data() -> None:
    """QR data must be text."""
    with pytest.raises(TypeError):
        qr_terminal(b"otpauth://")  # type: ignore[arg-type]


def test_data_too_long_for_any_qr_code() -> None:
    """More than a QR code can hold is an InvalidParameterError, not the QR library's error."""
    with pytest.raises(InvalidParameterError, match="too long"):
        qr_terminal("otpauth://totp/a?secret=" + "A" * 8000)
