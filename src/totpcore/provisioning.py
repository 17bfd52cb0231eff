"""Provisioning: what the one-time setup screen shows, as text and as a QR code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    # Only for annotations: importing totpcore.qr at run time would load it (and look for
    # segno) with every provisioning, not just when a QR code is drawn.
    from totpcore.qr import BinaryWriter

__all__ = ["Provisioning"]


@dataclass(frozen=True, slots=True)
class Provisioning:
    """What the one-time setup screen shows: the secret as text and as an otpauth URI.

    Attributes:
        user_id: The user being set up.
        account: The account name the app will display.
        issuer: The service name the app will display.
        secret: The base32 secret, for manual entry (never shown in ``repr``).
        uri: The ``otpauth://`` URI to render as a QR code (never shown in ``repr``).
    """

    user_id: str
    account: str
    issuer: str
    secret: str = field(repr=False)
    uri: str = field(repr=False)

    def qr_svg(self, *, scale: int = 8, css_class: str = "totpcore-qr") -> str:
        """The URI as an SVG QR code to inline in the setup page (needs ``totpcore[qr]``).

        The image has a ``viewBox`` and no fixed width or height, so it takes the size the
        page's CSS gives it (say ``.totpcore-qr { width: 16rem }``), on a white background.

        Args:
            scale: The unit of the ``viewBox``; the drawing looks the same at any scale.
            css_class: The ``class`` of the ``<svg>`` element, for styling.
        """
        from totpcore.qr import qr_svg

        return qr_svg(self.uri, scale=scale, responsive=True, css_class=css_class)

    @overload
    def qr_png(self, target: None = None, *, scale: int = 8) -> bytes: ...

    @overload
    def qr_png(self, target: str | os.PathLike[str] | BinaryWriter, *, scale: int = 8) -> None: ...

    def qr_png(
        self, target: str | os.PathLike[str] | BinaryWriter | None = None, *, scale: int = 8
    ) -> bytes | None:
        """The URI as a PNG QR code (needs ``totpcore[qr]``).

        Args:
            target: ``None`` to return the PNG bytes (to serve from a view, with
                ``Cache-Control: no-store``), a path to write it to, or a binary file object.
            scale: Pixels per module, 4 to 100.

        Returns:
            The PNG bytes when ``target`` is ``None``; otherwise ``None``.
        """
        from totpcore.qr import qr_png

        return qr_png(self.uri, target, scale=scale)

    def qr_terminal(self) -> str:
        """The URI as a QR code for a terminal (needs ``totpcore[qr]``)."""
        from totpcore.qr import qr_terminal

        return qr_terminal(self.uri)
