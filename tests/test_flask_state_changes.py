"""The Flask pages when a user's state changes under a half login, and bad blueprint options.

An admin may disable, reset or re-enable a user between the password step and the second
factor. The pages must then send the visitor where the user's current state belongs, and a
form posted without any login must go to the login page, not act.
"""

from __future__ import annotations

import pytest

from test_flask import Site
from totpcore import MemoryStore, TwoFactor
from totpcore.testing import FakeClock
from totpcore.web.flask import blueprint

pytest.importorskip("flask")


@pytest.fixture
def site() -> Site:
    """The test app on a fresh in-memory store."""
    clock = FakeClock()
    return Site(TwoFactor(MemoryStore(), issuer="Example Co", clock=clock), clock)


@pytest.mark.parametrize("seconds", [0, -5, float("nan")])
def test_pending_seconds_must_be_positive(seconds: float) -> None:
    """A half login that lasts no time at all is a configuration error."""
    with pytest.raises(ValueError, match="pending_seconds must be positive"):
        blueprint(TwoFactor(MemoryStore(), issuer="Example"), pending_seconds=seconds)


def test_verify_page_sends_a_user_reset_meanwhile_to_setup(site: Site) -> None:
    """Reset between password and code: the verify page redirects to setup, no login."""
    site.phone("alice")
    assert site.login("alice").headers["Location"].endswith("/2fa/verify")
    site.service.reset("alice")  # an admin, meanwhile
    response = site.client.get("/2fa/verify")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/2fa/setup")
    assert site.logins == []


def test_a_user_disabled_meanwhile_is_logged_in_by_the_password(site: Site) -> None:
    """Disabled between password and code: the password step suffices, on GET as on POST."""
    phone = site.phone("alice")
    site.login("alice")
    site.service.disable("alice")
    response = site.client.get("/2fa/verify")
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    assert site.logins == ["alice"]
    assert site.client.get("/").json == {"user": "alice", "pending": None}

    site.phone("bob")
    site.login("bob")
    site.service.disable("bob")
    response = site.post("/2fa/verify", code=phone.now())
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    assert site.logins == ["alice", "bob"]


def test_a_user_reset_meanwhile_posting_a_code_goes_to_setup(site: Site) -> None:
    """A code posted after an admin reset is answered by sending the user to setup."""
    phone = site.phone("alice")
    site.login("alice")
    site.service.reset("alice")
    response = site.post("/2fa/verify", code=phone.generate(site.clock.now))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/2fa/setup")
    assert site.logins == []


def test_troubleshooting_form_without_a_login_goes_to_the_login_page(site: Site) -> None:
    """Posting resync codes with no login at all changes nothing and redirects to login."""
    site.phone("alice")
    before = site.service.store.get("alice")
    response = site.post("/2fa/troubleshooting", code1="123456", code2="654321")
    assert (response.status_code, response.headers["Location"]) == (302, "/login")
    assert site.service.store.get("alice") == before
