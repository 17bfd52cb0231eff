"""The example web application end to end, in headless Chromium, as its users would drive it.

The app (``examples/webapp/app.py``) runs as a subprocess on a free loopback port with a
temporary database. The phone is a :class:`totpcore.TOTP` built from the QR code decoded out of
a screenshot of the setup page, so the test only knows what a user's camera would see. The one
wait (for the next 30-second step, so the login code is not the setup code's step) keeps the
app honest: it has no test-only clock.

Needs ``/usr/bin/chromium`` (or ``chromium`` on the PATH) and ``zbarimg``; without them the test
is skipped, unless ``TOTPCORE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from helpers import require_program, wrong_code, zbar_decode
from totpcore import TOTP

APP = Path(__file__).resolve().parent.parent / "examples" / "webapp" / "app.py"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PERIOD = 30


class Server:
    """The example app in a subprocess, on a free loopback port.

    Args:
        directory: Where its database goes.
    """

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "server.log"
        command = [sys.executable, str(APP), "--port", str(self.port)]
        command += ["--db", str(directory / "totp.sqlite3")]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        """Poll the login page until it answers (the process may take a second to start)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the example app exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/login", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the example app did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the process."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def api(self, user: str, password: str, code: str | None) -> tuple[int, Message]:
        """Call ``/api/whoami`` with Basic credentials and ``code`` in the otp header."""
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}
        if code is not None:
            headers["otp"] = code
        request = urllib.request.Request(self.url + "/api/whoami", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.headers


@pytest.fixture
def chromium() -> str:
    """The Chromium executable; zbarimg is checked too, before any server starts."""
    path = require_program("chromium")
    require_program("zbarimg", "zbar-tools")
    return path


@pytest.fixture
def server(chromium: str, tmp_path: Path) -> Iterator[Server]:
    """The example app, started for one test and stopped after it (once the programs exist)."""
    running = Server(tmp_path)
    yield running
    running.stop()


def sign_in(page: Page, server: Server, user: str, password: str) -> None:
    """Fill and submit the login form."""
    page.goto(server.url + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def sign_out(page: Page, server: Server) -> None:
    """Press the sign-out button of the home page."""
    page.goto(server.url + "/")
    page.click("text=Sign out")
    assert page.url.endswith("/login")


def admin_action(page: Page, server: Server, action: str, user: str) -> str:
    """As a signed-in admin, press ``action`` on ``user``'s row; return the new status."""
    page.goto(server.url + "/admin")
    page.click(f'tr[data-user="{user}"] button[value="{action}"]')
    return page.inner_text(f'tr[data-user="{user}"] .status')


def enter_code(page: Page, code: str) -> None:
    """Type a code into the page's code field and submit it."""
    page.fill("input[name=code]", code)
    page.click("form:has(input[name=code]) button[type=submit]")


def wait_for_step_after(step: int) -> None:
    """Sleep until the 30-second step after ``step`` has begun (at most one period)."""
    while int(time.time()) // PERIOD <= step:
        time.sleep(min(1.0, (step + 1) * PERIOD - time.time() + 0.05))


def test_whole_product_flow_in_a_browser(chromium: str, server: Server, tmp_path: Path) -> None:
    """Admin enables alice; she sets up from a screenshot of the QR code, logs in, uses the API.

    Then the secret is nowhere to be seen, replays and bursts are refused, and after an admin
    reset the old phone's codes no longer work.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1000, "height": 1400}).new_page()
            run_flow(page, server, tmp_path)
        finally:
            browser.close()


def run_flow(page: Page, server: Server, tmp_path: Path) -> None:
    """The steps of the end-to-end test, on one browser page."""
    # (1) The admin logs in (no second factor of their own) and enables alice.
    sign_in(page, server, "admin", "admin-password")
    assert page.inner_text("#signed-in") == "You are signed in as admin."
    assert admin_action(page, server, "enable", "alice") == "setup_pending"
    sign_out(page, server)

    # (2) Alice's password leads to the setup page.
    sign_in(page, server, "alice", "alice-password")
    assert page.url == server.url + "/2fa/setup"

    # (3) The phone reads the QR code off the screen.
    shot = tmp_path / "setup.png"
    page.screenshot(path=str(shot), full_page=True)
    uri = zbar_decode(shot)
    phone = TOTP.from_uri(uri)
    secret = re.search(r"secret=([A-Z2-7]+)", uri)
    assert secret is not None
    key = secret.group(1)
    shown = page.inner_text("#totpcore-secret")
    assert shown.replace(" ", "") == key
    assert all(len(group) == 4 for group in shown.split()[:-1])

    # (4) Alice confirms with the phone's code and is shown her recovery codes.
    setup_step = int(time.time()) // PERIOD
    enter_code(page, phone.generate(setup_step * PERIOD))
    codes = page.locator("#totpcore-codes li").all_inner_texts()
    assert len(codes) == 10

    # (5) The secret is never shown again, on any page she can reach.
    for path in ("/", "/2fa/setup", "/2fa/verify", "/2fa/recovery-codes", "/2fa/troubleshooting"):
        page.goto(server.url + path)
        content = page.content()
        assert key not in content.replace(" ", ""), path
        assert shown not in content, path
    assert "Set time automatically" in page.content()  # the troubleshooting page
    sign_out(page, server)

    # (6) A fresh login, with the next step's code (the setup step is spent). Waiting for the
    # start of a step (not merely for the setup's step to end) puts the login, the API calls
    # and the replay below in one step: the replayed code cannot meet a next step sharing it.
    wait_for_step_after(max(setup_step, int(time.time()) // PERIOD))
    sign_in(page, server, "alice", "alice-password")
    assert page.url == server.url + "/2fa/verify"
    login_code = phone.now()
    enter_code(page, login_code)
    assert page.inner_text("#signed-in") == "You are signed in as alice."
    assert key not in page.content()

    # (7) The API: the header mode accepts the step's code again; everything else is refused.
    status, _ = server.api("alice", "alice-password", phone.now())
    assert status == 200
    assert server.api("alice", "alice-password", None)[0] == 401
    # Wrong codes are wrong for every step near now (a window, a learnt drift, a step that
    # ends meanwhile): the current code plus one, or "000000", is right for one of them about
    # once in 300,000 runs, with the secret random.
    assert server.api("alice", "alice-password", wrong_code(phone, time.time()))[0] == 401
    sign_out(page, server)
    sign_in(page, server, "alice", "alice-password")
    enter_code(page, login_code)  # a replay in login mode
    assert page.url == server.url + "/2fa/verify"
    assert "That code is not valid." in page.inner_text(".totpcore-message")
    guess = wrong_code(phone, time.time())
    answers = [server.api("alice", "alice-password", guess) for _ in range(10)]
    throttled = [headers for status, headers in answers if status == 429]
    assert throttled, [status for status, _ in answers]
    assert int(throttled[0]["Retry-After"]) >= 1

    # (8) The admin resets alice's lost phone: its codes stop working everywhere.
    sign_in(page, server, "admin", "admin-password")
    assert admin_action(page, server, "reset", "alice") == "setup_pending"
    assert server.api("alice", "alice-password", phone.now())[0] == 403
    sign_out(page, server)
    sign_in(page, server, "alice", "alice-password")
    assert page.url == server.url + "/2fa/setup"
    new_key = page.inner_text("#totpcore-secret").replace(" ", "")
    assert new_key != key
    # The old phone's current code, unless the new secret happens to show it near now (then
    # it is rightly accepted): the old phone's code of a neighbouring step instead.
    now = time.time()
    new_codes = {TOTP.from_secret(new_key).generate(now + PERIOD * d) for d in range(-3, 4)}
    old_codes = (phone.generate(now + PERIOD * d) for d in (0, -1, 1))
    enter_code(page, next(code for code in old_codes if code not in new_codes))
    assert page.url == server.url + "/2fa/setup"
    assert "That code is not valid." in page.inner_text(".totpcore-message")
