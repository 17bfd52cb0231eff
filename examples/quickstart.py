"""The product flow end to end on a SQLite store, with a simulated phone.

Run it with ``python examples/quickstart.py``; it uses a temporary database.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import totpcore

with tempfile.TemporaryDirectory() as directory:
    store = totpcore.SQLiteStore(Path(directory) / "totp.sqlite3")
    service = totpcore.TwoFactor(store, issuer="Example Co")

    print("admin enables alice:", service.enable("alice").value)
    setup = service.begin_setup("alice", account_name="alice@example.com")
    print("setup screen shows:", setup.uri)

    phone = totpcore.TOTP.from_secret(setup.secret)  # what the authenticator app computes
    print("confirm setup:", service.complete_setup("alice", phone.now()).detail)
    print("status:", service.status("alice").value)

    # The setup code's step is used up, so log in with the next step's code (as if the phone
    # ran 30 s ahead; the window of ±1 step accepts it). Each step logs in once.
    code = phone.generate(time.time() + 30)
    print("login with the next code:", service.verify("alice", code).reason.value)
    print("same code again:", service.verify("alice", code).reason.value)
    print("API header, same code:", service.verify_request("alice", code).reason.value)

    codes = service.new_recovery_codes("alice")
    print(
        "recovery code", codes[0], "->", service.use_recovery_code("alice", codes[0]).reason.value
    )
    print("used twice ->", service.use_recovery_code("alice", codes[0]).reason.value)

    # A phone two hours fast: two consecutive codes resynchronise it. (A slow phone's codes
    # lie behind steps already used, and a used step never works again: fix its clock.)
    fast = time.time() + 2 * 3600
    verdict = service.resync("alice", phone.generate(fast), phone.generate(fast + 30))
    print("resync a phone 2 h fast:", verdict.detail)
    slow = time.time() - 2 * 3600
    verdict = service.resync("alice", phone.generate(slow - 30), phone.generate(slow))
    print("resync a phone 2 h slow:", verdict.reason.value, "-", verdict.detail)
    store.close()

print("RFC 6238 check:", totpcore.TOTP(b"12345678901234567890", digits=8).generate(59))
