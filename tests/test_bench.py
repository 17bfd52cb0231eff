"""``totpcore bench``: runs briefly, reports the documented fields, leaves nothing behind.

The command is run through its handler on a parser of its own (the main command tree adds it
like any other command). Nothing here looks at how fast anything is: only that every figure
is a sane positive number and that the report has the fields its help documents.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from postgres_server import DATABASE, PostgresServer
from redis_server import RedisServer
from totpcore.cli._common import Parser, UsageError, output_options
from totpcore.cli.bench import add_bench_parser

#: The fields ``totpcore bench --json`` documents, at the top level and per result.
REPORT_FIELDS = {
    "totpcore",
    "python",
    "implementation",
    "platform",
    "cpus",
    "rounds",
    "number",
    "store_number",
    "users",
    "results",
}
RESULT_FIELDS = {"group", "name", "label", "floor", "ns_per_call", "per_second", "ratio"}
#: The rows every run has (pyotp is a test dependency, so its rows are there too).
ALWAYS = {
    "engine.floor_verify",
    "engine.verify",
    "engine.pyotp_verify",
    "generate.floor_generate",
    "generate.generate",
    "generate.pyotp_generate",
    "memory.engine_verify",
    "memory.service_verify",
    "sqlite.raw_login",
    "sqlite.service_verify",
}
#: As short as the command allows: one round, a few calls, a small population.
BRIEF = ("--rounds", "1", "--number", "20", "--users", "30")


def bench(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[str, str]:
    """Run ``totpcore bench ARGUMENTS`` through its handler; return (stdout, stderr)."""
    parser = Parser(prog="totpcore")
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    add_bench_parser(commands, output_options())
    args = parser.parse_args(["bench", *arguments])
    args.json = getattr(args, "json", False)  # as totpcore.cli.main fills it in
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def report_of(capsys: pytest.CaptureFixture[str], *arguments: str) -> dict[str, Any]:
    """The JSON report of a brief run, checked against the documented fields."""
    out, err = bench(capsys, *BRIEF, "--json", *arguments)
    report: dict[str, Any] = json.loads(out)
    assert set(report) == REPORT_FIELDS
    assert report["rounds"] == 1
    assert report["number"] == 20
    assert report["users"] == 30
    assert report["store_number"] >= 1
    assert isinstance(report["cpus"], int)
    assert report["cpus"] >= 1
    assert all(isinstance(report[name], str) and report[name] for name in ("python", "platform"))
    names = [row["name"] for row in report["results"]]
    assert len(names) == len(set(names))
    floors = {row["floor"] for row in report["results"]}
    for row in report["results"]:
        assert set(row) == RESULT_FIELDS
        assert row["name"].startswith(row["group"] + ".")
        assert row["floor"] in names
        for field in ("ns_per_call", "per_second", "ratio"):
            assert isinstance(row[field], float)
            assert math.isfinite(row[field])
            assert row[field] > 0
        assert row["per_second"] == pytest.approx(1e9 / row["ns_per_call"])
        if row["name"] in floors:
            assert row["ratio"] == 1.0
    # Progress goes to standard error (not a terminal here: one line per group).
    assert err.startswith("totpcore bench: enrolling")
    assert err.count("totpcore bench: [") == len({row["group"] for row in report["results"]})
    return report


def test_json_report_has_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """A brief run reports every documented field, with sane positive numbers."""
    report = report_of(capsys)
    assert {row["name"] for row in report["results"]} == ALWAYS


def test_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json: a heading, then one line per operation with its ratio."""
    out, _ = bench(capsys, *BRIEF)
    lines = out.splitlines()
    assert lines[0].startswith("totpcore ")
    assert "rounds" in lines[0]
    rows = [line for line in lines[2:] if line.strip()]
    assert len(rows) == 1 + len(ALWAYS)  # the column headings, then the operations
    assert all(line.rstrip().endswith("x") for line in rows[1:])


def test_db_sqlite_new_file_is_removed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--db`` with a new SQLite path measures there and leaves nothing behind."""
    report = report_of(capsys, "--db", str(tmp_path / "bench.sqlite3"))
    assert {"db.raw_login", "db.service_verify"} <= {row["name"] for row in report["results"]}
    assert list(tmp_path.iterdir()) == []


def test_db_sqlite_directory_is_left_as_found(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``--db`` with a directory creates its files in a subdirectory, removed afterwards."""
    (tmp_path / "mine.txt").write_text("untouched")
    report_of(capsys, "--db", str(tmp_path))
    assert [path.name for path in tmp_path.iterdir()] == ["mine.txt"]


def test_db_refuses_an_existing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing file is never written to: the command refuses it."""
    existing = tmp_path / "users.sqlite3"
    existing.write_bytes(b"")
    with pytest.raises(UsageError, match="exists"):
        bench(capsys, *BRIEF, "--db", str(existing))
    assert existing.read_bytes() == b""


def test_db_refuses_an_unknown_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    """A URL of a store the command does not know is a usage error."""
    with pytest.raises(UsageError, match="scheme"):
        bench(capsys, *BRIEF, "--db", "mysql://localhost/x")


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_counts_must_be_positive(capsys: pytest.CaptureFixture[str], value: str) -> None:
    """--rounds, --number and --users take whole numbers of at least 1."""
    for option in ("--rounds", "--number", "--users"):
        with pytest.raises(UsageError, match=option):
            bench(capsys, option, value)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's Redis server, flushed, as a URL."""
    client = redis_server.client()
    client.flushdb()
    yield redis_server.url
    client.close()


def test_db_redis(
    capsys: pytest.CaptureFixture[str], redis_server: RedisServer, redis_url: str
) -> None:
    """``--db redis://...`` measures RedisStore and deletes every key it made."""
    client = redis_server.client()
    client.set("someone-elses-key", b"kept")
    report = report_of(capsys, "--db", redis_url)
    assert {"db.raw_login", "db.service_verify"} <= {row["name"] for row in report["results"]}
    assert client.keys("*") == [b"someone-elses-key"]
    client.close()


def test_db_postgres(capsys: pytest.CaptureFixture[str], postgres: PostgresServer) -> None:
    """``--db postgresql://...`` measures PostgresStore and drops every table it made."""
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:{postgres.port}/{DATABASE}"
    report = report_of(capsys, "--db", url)
    assert {"db.raw_login", "db.service_verify"} <= {row["name"] for row in report["results"]}
    with psycopg.connect(postgres.conninfo) as connection:
        left = connection.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'totpcore_bench_%'"
        ).fetchall()
    assert left == []
