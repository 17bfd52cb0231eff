"""Provisioning: what the one-time setup screen shows, as text and as a QR code."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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

    def qr_svg(self, *, scale: int = 8) -> str:
        """The URI as an SVG QR code, to inline in the setup page (needs ``totpcore[qr]``)."""
        from totpcore.qr import qr_svg

        return qr_svg(self.uri, scale=scale)

    def qr_png(self, path: str | os.PathLike[str], *, scale: int = 8) -> None:
        """Write the URI as a PNG QR code to ``path`` (needs ``totpcore[qr]``)."""
        from totpcore.qr import qr_png

        qr_png(self.uri, path, scale=scale)

    def qr_terminal(self) -> str:
        """The URI as a QR code for a terminal (needs ``totpcore[qr]``)."""
        from totpcore.qr import qr_terminal

        return qr_terminal(self.uri)
