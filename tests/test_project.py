"""The project's own promises: README commands, CI wiring and packaging."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs exactly the test command the README gives new users."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r'^TEST_COMMAND="(.+)"$', ci, re.MULTILINE)
    assert match is not None, ".ci/run must define TEST_COMMAND"
    section = readme.split("## Test it", 1)[1]
    assert f"\n{match.group(1)}\n" in section


def test_ci_requires_services_and_handles_no_tests() -> None:
    """CI forbids skipping for missing programs and refuses a run that collected no tests."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "TOTPCORE_REQUIRE_SERVICES=1" in ci
    assert "-eq 5 ]" in ci
    assert "exit 1" in ci.split("-eq 5 ]", 1)[1].split("fi", 1)[0]


def test_vectors_are_kept_in_the_tests() -> None:
    """The RFC vectors are data inside tests/, so the suite depends on nothing outside it."""
    assert (ROOT / "tests" / "vectors" / "rfc4226.json").is_file()
    assert (ROOT / "tests" / "vectors" / "rfc6238.json").is_file()


def test_package_is_typed() -> None:
    """py.typed ships, so type checkers use the package's annotations."""
    assert (ROOT / "src" / "totpcore" / "py.typed").is_file()
