"""The documentation: it builds without a warning, and its API pages read as documented.

The build runs once per module, as CI runs it (``python -m sphinx -W``), into a temporary
directory; the tests then read the HTML of the API reference. Without Sphinx (the ``docs``
extra) they are skipped, except under ``TOTPCORE_REQUIRE_SERVICES=1``, where CI installs it and
a missing Sphinx is a failure.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import services_required
from totpcore import Reason, Verdict

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"

#: The pages of the API reference, under docs/api/.
API_PAGES = ("index", "engine", "secrets", "service", "stores", "web", "errors")

#: The first words of the docstring of int(), which autodoc shows for an undocumented number.
INT_DOCSTRING = "Convert a number or string to an integer"

#: Constants documented in the API pages; each needs a ``#:`` comment in its source.
CONSTANTS = (
    "MIN_KEY_BYTES",
    "MAX_SECRET_LENGTH",
    "MAX_URI_LENGTH",
    "MAX_WINDOW",
    "MAX_LOOK_AHEAD",
    "MAX_USER_ID_LENGTH",
    "MAX_CODE_LENGTH",
    "MAX_LOCKOUT_FAILURES",
)

# Private names as they would appear in rendered text: a private class or type variable
# (_OTP, _Base, _P) or a private module or attribute reached through a dot (totpcore._core,
# stores._rules).
PRIVATE_NAME = re.compile(r"(?<![\w<>])_[A-Z]\w*|\._[A-Za-z]\w*")


class _Text(HTMLParser):
    """The visible text of an HTML page (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The text a reader sees, with runs of whitespace made single spaces."""
    parser = _Text()
    parser.feed(html)
    return " ".join("".join(parser.parts).split())


def signature(html: str, object_id: str) -> str:
    """The rendered signature line of the object whose anchor is ``object_id``."""
    match = re.search(rf'<dt class="[^"]*" id="{re.escape(object_id)}">(.*?)</dt>', html, re.S)
    assert match is not None, f"{object_id} is not documented on this page"
    return visible_text(match.group(1))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the documentation once, warnings as errors; return the HTML directory."""
    missing = [
        name for name in ("sphinx", "myst_parser", "furo") if importlib.util.find_spec(name) is None
    ]
    if missing:
        message = f"{', '.join(missing)} not installed (pip install -e '.[docs]')"
        if services_required():
            pytest.fail(message + "; TOTPCORE_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    out = tmp_path_factory.mktemp("html")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    result = subprocess.run(
        [*command, str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"the docs build failed:\n{result.stderr}"
    # -W already fails on a warning; this names one that slipped through another way.
    assert "WARNING" not in result.stderr, f"the docs build warned:\n{result.stderr}"
    return out


@pytest.fixture(scope="module")
def api_html(built: Path) -> dict[str, str]:
    """The HTML of each API page, by page name."""
    pages = {}
    for page in API_PAGES:
        path = built / "api" / f"{page}.html"
        assert path.is_file(), f"docs/api/{page}.md was not built"
        pages[page] = path.read_text(encoding="utf-8")
    return pages


def test_every_page_is_built(built: Path) -> None:
    """Each Markdown page of docs/ becomes an HTML page (sphinx -W refuses orphans)."""
    for source in DOCS.rglob("*.md"):
        page = source.relative_to(DOCS).with_suffix(".html")
        assert (built / page).is_file(), f"{page} is missing from the build"


def test_no_constant_shows_the_docstring_of_int(api_html: dict[str, str]) -> None:
    """Every constant is documented by its own comment, never by the docstring of int()."""
    for page, html in api_html.items():
        assert INT_DOCSTRING not in html, f"api/{page}: a constant shows int()'s docstring"
    everything = "".join(api_html.values())
    for name in CONSTANTS:
        assert f'id="totpcore.{name}"' in everything, f"{name} is not documented"


def test_no_private_names(api_html: dict[str, str]) -> None:
    """The API pages name public objects only: no _OTP, no totpcore._core, no private bases."""
    for page, html in api_html.items():
        assert "totpcore._" not in html, f"api/{page} links or names a private module"
        found = sorted(set(PRIVATE_NAME.findall(visible_text(html))))
        assert found == [], f"api/{page} shows private names: {found}"


@pytest.mark.parametrize("service", ["TwoFactor", "AsyncTwoFactor"])
def test_service_signature_is_readable(api_html: dict[str, str], service: str) -> None:
    """The constructor shows its defaults as written, not a repr of every field."""
    line = signature(api_html["service"], f"totpcore.{service}")
    assert "policy=Policy()" in line
    assert "clock=time.time" in line
    assert "built-in function" not in line
    assert "Policy(digits" not in line


def test_store_contract_is_documented(api_html: dict[str, str]) -> None:
    """The contract suites are in the reference, imported from totpcore.testing."""
    html = api_html["stores"]
    for name in ("StoreContract", "AsyncStoreContract", "FakeClock", "Blocking"):
        assert f'id="totpcore.testing.{name}"' in html, f"{name} is not documented"


def test_every_verdict_message_is_listed(api_html: dict[str, str]) -> None:
    """The service page's table shows each Reason with the message Verdict.message gives."""
    text = visible_text(api_html["service"])
    for reason in Reason:
        retry_after = 2.5 if reason is Reason.THROTTLED else None
        message = Verdict(reason, retry_after=retry_after).message
        assert f"{reason.name} {message}" in text, f"{reason.name}: {message!r} is not listed"


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [(0.2, "1 second"), (1.0, "1 second"), (1.01, "2 seconds"), (2.5, "3 seconds")],
)
def test_throttled_message_rounds_up_as_documented(retry_after: float, wait: str) -> None:
    """THROTTLED says how long to wait, in whole seconds rounded up, as the table says."""
    message = Verdict(Reason.THROTTLED, retry_after=retry_after).message
    assert message == f"Too many attempts. Try again in {wait}."
