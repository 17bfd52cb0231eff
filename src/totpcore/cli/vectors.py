"""``vectors [--only KIND] [--against TEMPLATE]``: the RFC test vectors, ours or another's.

With ``--against`` each vector is run through another implementation's command line, so the
same table checks any OTP tool against RFC 4226 and RFC 6238.
"""

from __future__ import annotations

import argparse
import string
from typing import TYPE_CHECKING, Any

from totpcore.cli._common import Parser, UsageError, emit
from totpcore.otp import HOTP, TOTP
from totpcore.secret import encode_secret

if TYPE_CHECKING:
    from totpcore.vectors import Vector

__all__ = ["add_vectors_parser"]

_PLACEHOLDERS = frozenset({"key_hex", "secret", "time", "counter", "digits", "algorithm", "period"})
_VECTOR_TIMEOUT = 30

#: One vector and the code the implementation under test gave for it.
_Row = tuple["Vector", str]


def add_vectors_parser(commands: Any, output: Parser) -> None:
    """Add ``vectors`` to the main command tree.

    Args:
        commands: The main parser's subparsers object.
        output: The parent parser that contributes ``--json``.
    """
    vectors = commands.add_parser("vectors", parents=[output], help="run the RFC test vectors")
    vectors.add_argument(
        "--against",
        metavar="TEMPLATE",
        help="command template of another implementation, with {key_hex} {secret} {time} "
        "{counter} {digits} {algorithm} {period}",
    )
    vectors.add_argument("--only", choices=("hotp", "totp"), help="run one RFC's vectors")
    vectors.set_defaults(handler=_cmd_vectors)


def _cmd_vectors(args: argparse.Namespace) -> int:
    template = None if args.against is None else _template(args.against)
    rows = [
        (vector, _ours(vector) if template is None else _theirs(template, vector))
        for vector in _selected(args.only, template)
    ]
    failures = sum(1 for vector, got in rows if got != vector.code)
    emit(args, _as_json(rows), _as_table(rows, failures))
    return 1 if failures else 0


def _vectors() -> tuple[Vector, ...]:
    """The RFC vectors, loaded when the command runs (not when the parser is built)."""
    from totpcore.vectors import VECTORS

    return VECTORS


def _selected(only: str | None, template: list[str] | None) -> list[Vector]:
    """The vectors ``--only`` asks for that the template can be filled in for."""
    # RFC 4226 vectors have no time: a template that needs one cannot run them.
    needs_time = template is not None and bool({"time", "period"} & _fields_of(template))
    selected = [
        vector
        for vector in _vectors()
        if (only is None or vector.kind == only) and not (needs_time and vector.kind == "hotp")
    ]
    if not selected:
        raise UsageError("no vector fits this template and --only")
    return selected


def _as_json(rows: list[_Row]) -> list[dict[str, Any]]:
    """The ``--json`` report: one object per vector."""
    return [
        {
            "kind": vector.kind,
            "algorithm": vector.algorithm,
            "counter": vector.counter,
            "time": vector.time,
            "expected": vector.code,
            "got": got,
            "ok": got == vector.code,
        }
        for vector, got in rows
    ]


def _as_table(rows: list[_Row], failures: int) -> str:
    """The text report: a table with a line per vector, then the totals."""
    lines = [
        f"{'kind':5} {'algorithm':9} {'time':>12} {'counter':>10} {'expected':9} {'got':9} result"
    ]
    for vector, got in rows:
        time_text = "-" if vector.time is None else str(vector.time)
        result = "ok" if got == vector.code else "MISMATCH"
        # got[:9]: another program's output can be any length; the table keeps its columns.
        lines.append(
            f"{vector.kind:5} {vector.algorithm:9} {time_text:>12} {vector.counter:>10} "
            f"{vector.code:9} {got[:9]:9} {result}"
        )
    lines.append(f"{len(rows) - failures} passed, {failures} failed")
    return "\n".join(lines)


def _ours(vector: Vector) -> str:
    """Totpcore's answer for a vector."""
    key = bytes.fromhex(vector.key_hex)
    if vector.kind == "totp" and vector.time is not None and vector.period is not None:
        otp = TOTP(key, digits=vector.digits, algorithm=vector.algorithm, period=vector.period)
        return otp.generate(vector.time)
    return HOTP(key, digits=vector.digits, algorithm=vector.algorithm).generate(vector.counter)


def _template(text: str) -> list[str]:
    """Split a command template into arguments and check its placeholders."""
    try:
        import shlex  # loaded only for --against: start-up matters for every other command

        words = shlex.split(text)
    except ValueError as error:
        raise UsageError(f"--against: {error}") from None
    if not words:
        raise UsageError("--against needs a command")
    unknown = _fields_of(words) - _PLACEHOLDERS
    if unknown:
        raise UsageError(f"--against: unknown placeholder {{{sorted(unknown)[0]}}}")
    return words


def _fields_of(words: list[str]) -> set[str]:
    """The placeholder names used in a template."""
    names: set[str] = set()
    for word in words:
        try:
            parsed = list(string.Formatter().parse(word))
        except ValueError as error:
            raise UsageError(f"--against: {error}") from None
        names.update(name for _, name, _, _ in parsed if name is not None)
    return names


def _theirs(template: list[str], vector: Vector) -> str:
    """Run another implementation on a vector (no shell: each word is formatted alone)."""
    import subprocess

    values = {
        "key_hex": vector.key_hex,
        "secret": encode_secret(bytes.fromhex(vector.key_hex)),
        "time": "" if vector.time is None else str(vector.time),
        "counter": str(vector.counter),
        "digits": str(vector.digits),
        "algorithm": vector.algorithm,
        "period": "" if vector.period is None else str(vector.period),
    }
    command = [word.format(**values) for word in template]
    try:
        result = subprocess.run(  # noqa: S603 - the user's own command, run without a shell
            command, capture_output=True, text=True, timeout=_VECTOR_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise UsageError(f"--against: cannot run {command[0]!r}: not found") from None
    except subprocess.TimeoutExpired:
        return "timeout"
    if result.returncode != 0:
        return f"exit {result.returncode}"
    output = result.stdout.strip()
    return output.splitlines()[-1].strip() if output else ""
