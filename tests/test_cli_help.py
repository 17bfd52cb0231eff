"""``--help`` of every command and admin action, and the reference in ``docs/cli.md``.

Each help is run as a subprocess, exactly as users run it. The commands and actions are read
from the help itself (``totpcore --help``, ``totpcore admin --help``), so a new command, action
or option cannot be added without its entry in the documentation, and an option cannot be
documented for a command that does not take it. ``-h``/``--help``, which every command takes, is
left out of the comparison.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
PROGRAM = "totpcore"
HELP_OPTIONS = frozenset({"-h", "--help"})
# An option string inside a help line's invocation or a documentation code span.
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
SECTION = re.compile(r"^### `(totpcore(?: [a-z][a-z-]*)*)`\s*$")
CODE_SPAN = re.compile(r"`([^`\n]+)`")

#: What each command's help is: ``"totpcore code"`` -> the text of ``totpcore code --help``.
Helps = dict[str, str]


def run_help(*command: str) -> str:
    """The standard output of ``totpcore COMMAND --help``, which must exit 0 and say nothing else.

    Args:
        command: The command path after the program name (empty for the program itself).

    Returns:
        The help text.
    """
    environment = {k: v for k, v in os.environ.items() if k != "TOTPCORE_SECRET"}
    environment["COLUMNS"] = "200"  # fewer wrapped lines; the parsing copes with either
    result = subprocess.run(
        [sys.executable, "-m", "totpcore", *command, "--help"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (command, result.stderr)
    assert result.stderr == "", (command, result.stderr)
    return result.stdout


def subcommands(help_text: str, title: str) -> list[str]:
    """The subcommands a help lists in its ``title:`` section (``commands``, ``actions``).

    Args:
        help_text: A help text.
        title: The section's title.

    Returns:
        The names, in the order listed.
    """
    lines = iter(help_text.splitlines())
    for line in lines:
        if line == f"{title}:":
            break
    else:
        pytest.fail(f"no '{title}:' section in:\n{help_text}")
    names = []
    for line in lines:
        if not line.strip():
            break
        match = re.match(r"^    ([a-z][a-z-]*)(?:\s|$)", line)
        if match:
            names.append(match.group(1))
    return names


def help_options(help_text: str) -> set[str]:
    """The option strings a help lists (``-o`` and ``--output`` both), without ``--help``.

    Args:
        help_text: A help text.

    Returns:
        Every option string on the option lines (two spaces, then a dash).
    """
    found: set[str] = set()
    for line in help_text.splitlines():
        if line.startswith("  -"):
            invocation = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
            found.update(OPTION.findall(invocation))
    return found - HELP_OPTIONS


def without_fences(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def documented_options() -> dict[str, set[str]]:
    """The reference section of docs/cli.md: each command's heading and the options named in it.

    Returns:
        ``"totpcore code"`` -> the option strings written in code spans under its
        ``### `totpcore code``` heading, up to the next heading.
    """
    text = DOCS.read_text(encoding="utf-8")
    assert "\n## Reference\n" in text, "docs/cli.md has no '## Reference' section"
    reference = text.split("\n## Reference\n", 1)[1].split("\n## ", 1)[0]
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in without_fences(reference):
        heading = SECTION.match(line)
        if heading:
            assert heading.group(1) not in sections, f"{heading.group(1)} documented twice"
            current = sections[heading.group(1)] = set()
        elif line.startswith("#"):
            current = None
        elif current is not None:
            for span in CODE_SPAN.findall(line):
                current.update(OPTION.findall(span))
    return {command: options - HELP_OPTIONS for command, options in sections.items()}


@pytest.fixture(scope="module")
def helps() -> Helps:
    """The help of the program, of every command and of every admin action."""
    top = run_help()
    commands = subcommands(top, "commands")
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = dict(zip(commands, pool.map(run_help, commands), strict=True))
        assert "admin" in texts
        actions = subcommands(texts["admin"], "actions")
        action_texts = pool.map(lambda action: run_help("admin", action), actions)
        found = {PROGRAM: top}
        found.update({f"{PROGRAM} {name}": text for name, text in texts.items()})
        found.update(
            {
                f"{PROGRAM} admin {name}": text
                for name, text in zip(actions, action_texts, strict=True)
            }
        )
    return found


def test_help_runs_for_every_command_and_action(helps: Helps) -> None:
    """Every command and admin action has its own help, headed by its own usage line."""
    commands = (
        "secret code verify uri inspect qr import-migration export-migration vectors admin bench"
    )
    actions = "enable status list setup reset disable unlock recovery-codes import rotate-key"
    expected = {PROGRAM} | {f"{PROGRAM} {name}" for name in commands.split()}
    expected |= {f"{PROGRAM} admin {name}" for name in [*actions.split(), "verify", "resync"]}
    assert expected <= set(helps)
    for command, text in helps.items():
        assert text.startswith(f"usage: {command} "), (command, text[:80])


def test_every_command_has_a_reference_section(helps: Helps) -> None:
    """docs/cli.md has a section for each command and action the help lists, and no other."""
    documented = documented_options()
    assert sorted(set(helps) - set(documented)) == [], "commands missing from docs/cli.md"
    assert sorted(set(documented) - set(helps)) == [], "docs/cli.md documents unknown commands"


def test_docs_document_every_option_the_help_lists(helps: Helps) -> None:
    """Each option a command's help lists is named in that command's reference section."""
    documented = documented_options()
    missing = {
        command: sorted(help_options(text) - documented.get(command, set()))
        for command, text in helps.items()
    }
    assert {command: names for command, names in missing.items() if names} == {}


def test_docs_document_no_option_a_command_lacks(helps: Helps) -> None:
    """No reference section names an option its command's help does not list."""
    extra = {
        command: sorted(options - help_options(helps[command]))
        for command, options in documented_options().items()
        if command in helps
    }
    assert {command: names for command, names in extra.items() if names} == {}


def test_admin_verify_and_resync_are_in_help_and_docs(helps: Helps) -> None:
    """Support staff find 'admin verify' and 'admin resync' in the help and the docs."""
    actions = subcommands(helps[f"{PROGRAM} admin"], "actions")
    assert {"verify", "resync"} <= set(actions)
    assert "USER CODE" in helps[f"{PROGRAM} admin verify"].splitlines()[0]
    assert "USER CODE1 CODE2" in helps[f"{PROGRAM} admin resync"].splitlines()[0]
    documented = documented_options()
    assert f"{PROGRAM} admin verify" in documented
    assert f"{PROGRAM} admin resync" in documented
    text = DOCS.read_text(encoding="utf-8")
    assert "totpcore admin --db users.sqlite3 verify alice" in text
    assert "totpcore admin --db users.sqlite3 resync alice" in text


def test_each_command_offers_only_the_options_it_uses(helps: Helps) -> None:
    """Key options are split by use: no --at or --uri on uri and qr, no key options on inspect."""
    options = {
        command.removeprefix(f"{PROGRAM} "): help_options(text) for command, text in helps.items()
    }
    key = {"--secret", "--secret-file", "--hex", "--digits", "--algorithm", "--period", "--hotp"}
    for command in ("code", "verify", "uri", "qr"):
        assert key | {"--counter", "--allow-short-key"} <= options[command], command
    assert {"--at", "--uri"} <= options["code"] & options["verify"]
    for command in ("uri", "qr"):
        assert not {"--at", "--uri", "--window"} & options[command], command
        assert {"--account", "--issuer"} <= options[command]
    assert "--window" in options["code"]
    assert "--json" not in options["qr"]
    assert options["inspect"] == {"--json", "--show-secret"}
    assert options["secret"] == {"--json", "--bits"}
    assert options[PROGRAM] == {"--version", "--json"}
    store = {"--db", "--key-file", "--json"}
    assert options["admin"] == store | {"--issuer"}
    assert options["admin setup"] == store | {"--issuer", "--account"}
    for action in ("enable", "status", "list", "reset", "verify", "resync", "import"):
        assert options[f"admin {action}"] == store, action
