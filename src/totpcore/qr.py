"""QR codes for setup screens, through the optional ``segno`` package (``totpcore[qr]``).

Images keep a quiet zone of 4 modules (what the QR standard asks for) and PNGs use at least 4
pixels per module, so a phone camera reads them from a screen or paper.
"""

from __future__ import annotations

import os
from typing import Any

from totpcore.errors import InvalidParameterError, MissingDependencyError

__all__ = ["QUIET_ZONE", "qr_matrix", "qr_png", "qr_svg", "qr_terminal"]

#: Modules of light border around the code.
QUIET_ZONE = 4
_MIN_SCALE = 4
# Black on white whatever the terminal's colours: readers need dark modules on a light ground.
_INK, _RESET = "\x1b[30;47m", "\x1b[0m"


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


def qr_svg(data: str, *, scale: int = 8) -> str:
    """Return the QR code for ``data`` as an SVG document."""
    import io

    _check_scale(scale)
    out = io.BytesIO()
    _make(data).save(out, kind="svg", scale=scale, border=QUIET_ZONE, xmldecl=False)
    return out.getvalue().decode("utf-8")


def qr_png(data: str, path: str | os.PathLike[str], *, scale: int = 8) -> None:
    """Write the QR code for ``data`` to ``path`` as a PNG, ``scale`` pixels per module.

    Raises:
        InvalidParameterError: ``data`` is too long for a QR code, or ``scale`` is below 4.
        OSError: ``path`` cannot be written (as with :func:`open`).
    """
    _check_scale(scale)
    _make(data).save(os.fspath(path), kind="png", scale=scale, border=QUIET_ZONE)


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
