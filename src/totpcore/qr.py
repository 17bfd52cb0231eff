"""QR codes for setup screens, through the optional ``segno`` package (``totpcore[qr]``).

Images keep a quiet zone of 4 modules (what the QR standard asks for) and PNGs use at least 4
pixels per module, so a phone camera reads them from a screen or paper. Web pages get a
responsive SVG (a ``viewBox`` and no fixed size, so CSS decides how large it is) or the PNG as
bytes, to serve from a view without a temporary file.
"""

from __future__ import annotations

import io
import os
from typing import Any, Protocol, overload

from totpcore.errors import InvalidParameterError, MissingDependencyError

__all__ = ["QUIET_ZONE", "BinaryWriter", "qr_matrix", "qr_png", "qr_svg", "qr_terminal"]

#: Modules of light border around the code.
QUIET_ZONE = 4
_MIN_SCALE = 4
# Black on white whatever the terminal's colours: readers need dark modules on a light ground.
_INK, _RESET = "\x1b[30;47m", "\x1b[0m"
# A responsive SVG's light modules are painted white: an inline image is otherwise transparent,
# and a dark page behind it would turn the code light-on-dark, which many readers reject.
_LIGHT = "#fff"


class BinaryWriter(Protocol):
    """A binary file object :func:`qr_png` can write to (an open file, ``io.BytesIO``, ...)."""

    def write(self, data: bytes, /) -> object:
        """Write ``data``; the return value is ignored."""
        ...


def _make(data: str) -> Any:
    """Build the QR code with segno, or explain how to install it."""
    if not isinstance(data, str):
        raise TypeError(f"QR data must be a str, not {type(data).__name__}")
    try:
        import segno
    except ImportError as error:
        raise MissingDependencyError(
            "QR codes need the segno package: pip install 'totpcore[qr]'"
        ) from error
    # Error correction M survives smudges; micro codes are refused, as authenticator apps
    # cannot read them.
    try:
        return segno.make(data, error="m", micro=False, boost_error=False)
    except ValueError as error:  # segno's DataOverflowError and its other refusals
        raise InvalidParameterError(
            f"cannot draw {len(data)} characters as a QR code: too long"
        ) from error


def qr_matrix(data: str) -> list[list[bool]]:
    """Return the modules of the QR code for ``data`` (True is dark), quiet zone included."""
    code = _make(data)
    return [[bool(module) for module in row] for row in code.matrix_iter(border=QUIET_ZONE)]


def qr_svg(
    data: str, *, scale: int = 8, responsive: bool = False, css_class: str | None = None
) -> str:
    """Return the QR code for ``data`` as an SVG document.

    Args:
        data: The text to encode, usually an ``otpauth://`` URI.
        scale: Pixels per module of the fixed-size image; with ``responsive``, only the unit
            of the ``viewBox`` (the drawing is the same at any scale).
        responsive: Leave out ``width`` and ``height`` and keep a ``viewBox``, so the image
            scales with the CSS of the page it is inlined in; its background is painted white.
        css_class: The ``class`` of the ``<svg>`` element (default: ``segno``).

    Raises:
        InvalidParameterError: ``data`` is too long for a QR code, or ``scale`` is out of range.
    """
    _check_scale(scale)
    options: dict[str, Any] = {"scale": scale, "border": QUIET_ZONE, "xmldecl": False}
    if responsive:
        options.update(omitsize=True, light=_LIGHT)
    if css_class is not None:
        options["svgclass"] = css_class
    out = io.BytesIO()
    _make(data).save(out, kind="svg", **options)
    return out.getvalue().decode("utf-8")


@overload
def qr_png(data: str, target: None = None, *, scale: int = 8) -> bytes: ...


@overload
def qr_png(data: str, target: str | os.PathLike[str] | BinaryWriter, *, scale: int = 8) -> None: ...


def qr_png(
    data: str, target: str | os.PathLike[str] | BinaryWriter | None = None, *, scale: int = 8
) -> bytes | None:
    """Draw the QR code for ``data`` as a PNG, ``scale`` pixels per module.

    Args:
        data: The text to encode, usually an ``otpauth://`` URI.
        target: ``None`` to get the PNG as bytes (to serve from a web view), a path to write
            it to, or a binary file object to write it into.
        scale: Pixels per module, 4 to 100.

    Returns:
        The PNG bytes when ``target`` is ``None``; otherwise ``None``.

    Raises:
        InvalidParameterError: ``data`` is too long for a QR code, or ``scale`` is below 4.
        TypeError: ``target`` is neither a path nor a writable binary file object.
        OSError: ``target`` cannot be written (as with :func:`open`).
    """
    _check_scale(scale)
    code = _make(data)
    if target is None:
        out = io.BytesIO()
        code.save(out, kind="png", scale=scale, border=QUIET_ZONE)
        return out.getvalue()
    if isinstance(target, (str, os.PathLike)):
        code.save(os.fspath(target), kind="png", scale=scale, border=QUIET_ZONE)
    elif callable(getattr(target, "write", None)):
        code.save(target, kind="png", scale=scale, border=QUIET_ZONE)
    else:
        raise TypeError("target must be None, a path or a binary file object")
    return None


def qr_terminal(data: str) -> str:
    """Return the QR code as text for a terminal: two modules per character cell.

    Each cell is a half block (upper, lower, full or blank) in black on a white background set
    by ANSI escapes, so the code is dark-on-light, as readers need, in any colour scheme.
    """
    matrix = qr_matrix(data)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    lines = []
    for top, bottom in zip(matrix[::2], matrix[1::2], strict=True):
        cells = "".join(_cell(upper, lower) for upper, lower in zip(top, bottom, strict=True))
        lines.append(f"{_INK}{cells}{_RESET}")
    return "\n".join(lines) + "\n"


def _cell(upper: bool, lower: bool) -> str:
    """The half-block character showing two vertically stacked modules."""
    if upper and lower:
        return "\u2588"
    if upper:
        return "\u2580"
    return "\u2584" if lower else " "


def _check_scale(scale: object) -> None:
    """Refuse scales a camera may not resolve."""
    if not isinstance(scale, int) or isinstance(scale, bool):
        raise TypeError("scale must be an int")
    if not _MIN_SCALE <= scale <= 100:
        raise InvalidParameterError(f"scale must be between {_MIN_SCALE} and 100 pixels per module")
