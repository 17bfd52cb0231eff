"""A new secret, its setup URI, and a code checked the way a login form would check it.

Run it with ``python examples/quickstart.py``.
"""

from __future__ import annotations

import time

import totpcore

secret = totpcore.generate_secret()
otp = totpcore.TOTP.from_secret(secret)
print("secret:", secret)
print("setup URI (show as a QR code):", otp.uri("alice@example.com", issuer="Example Co"))

code = otp.now()  # what the user's phone would show right now
print("current code:", code)
match = otp.verify(code)
print("accepted:", match is not None, "| offset in steps:", match.offset if match else None)
print("a code from 5 minutes ago is accepted:", otp.verify(otp.generate(time.time() - 300)))
print("RFC 6238 check:", totpcore.TOTP(b"12345678901234567890", digits=8).generate(59))
