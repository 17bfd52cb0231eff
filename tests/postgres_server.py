"""A throwaway PostgreSQL server for the tests, and the session fixture that runs it.

The server is a real ``postgres`` from the installed binaries (``initdb``, ``pg_ctl``), in a
temporary directory, listening on a free loopback port and on a Unix socket in that directory.
It runs with ``fsync=off``: the tests kill it (``pg_ctl stop -m immediate``, which is a crash
for PostgreSQL) but never the machine, and the operating system keeps what was written, so
committed transactions still survive while the test suite runs faster.

PostgreSQL refuses to run as root. When the tests run as root the commands run as the
``postgres`` user (``runuser``) in a directory that user owns; otherwise they run as the
current user.

Missing binaries skip the tests that need the server, with the reason, unless
``TOTPCORE_REQUIRE_SERVICES=1`` (then they fail: CI must never pass by skipping).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import services_required

__all__ = ["PostgresServer", "find_binaries", "postgres_fixture"]

#: The database the tests use (created at start-up).
DATABASE = "totpcore_test"


def find_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None`` when they are missing.

    Debian keeps them off the PATH, in ``/usr/lib/postgresql/<major>/bin``; the newest
    major version found wins.
    """
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(initdb).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: (
            int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, started and stopped by the tests.

    Args:
        binaries: The directory of ``initdb`` and ``pg_ctl``.

    Attributes:
        port: The loopback TCP port it listens on (the same across restarts).
        conninfo: How to reach the test database as the superuser ``postgres``.
    """

    def __init__(self, binaries: Path) -> None:
        self._binaries = binaries
        self._as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="totpcore-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.sockets.mkdir()
        self.log = self.root / "server.log"
        if self._as_postgres:
            # The server's own user must own its directory; root's temporary directory is
            # private (0700) to everybody else.
            account = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.port = _free_port()
        self.conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname={DATABASE}"
        self.running = False

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, running={self.running})"

    def _run(self, *arguments: str, timeout: float = 120.0) -> None:
        """Run one of the server's programs (as ``postgres`` when we are root)."""
        command = [str(self._binaries / arguments[0]), *arguments[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{arguments[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )

    def initialise(self) -> None:
        """Create the cluster: trust authentication on loopback, UTF-8.

        The default collation is ICU's English when the server has ICU, so that the store's
        listing proves it sorts by code point (``COLLATE "C"``), not by the database's
        linguistic order, in which ``"a" < "B"``.
        """
        common = ["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        try:
            self._run(*common, "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US")
        except RuntimeError:
            shutil.rmtree(self.data, ignore_errors=True)
            self._run(*common, "--locale=C.UTF-8")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = " ".join(
            (
                f"-p {self.port}",
                f"-k {self.sockets}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                # 8 processes of the race tests, each with its own pool, plus the rest.
                "-c max_connections=200",
                # For counting the statements a verification sends, on the server's side.
                "-c shared_preload_libraries=pg_stat_statements",
            )
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")
        self.running = True

    def kill(self) -> None:
        """Stop the server the hard way: every backend is killed, no shutdown checkpoint.

        To PostgreSQL this is a crash; the next start replays the WAL.
        """
        self.running = False
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def create_database(self) -> None:
        """Create the test database and load pg_stat_statements into it."""
        import psycopg

        maintenance = self.conninfo.replace(f"dbname={DATABASE}", "dbname=postgres")
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def remove(self) -> None:
        """Delete the cluster's directory (the server must be stopped)."""
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session", name="postgres")
def postgres_fixture() -> Iterator[PostgresServer]:
    """A running PostgreSQL server for the whole session, with an empty test database.

    Skips (or fails, under ``TOTPCORE_REQUIRE_SERVICES=1``) when the server's binaries, the
    ``postgres`` account (when running as root) or psycopg are missing.
    """
    reason = None
    binaries = find_binaries()
    if binaries is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    elif os.geteuid() == 0 and not _has_account("postgres"):
        reason = "running as root, and there is no 'postgres' account to run the server as"
    elif not _importable("psycopg") or not _importable("psycopg_pool"):
        reason = "psycopg and psycopg-pool are not installed (pip install 'totpcore[postgres]')"
    if reason is not None or binaries is None:
        message = reason or "PostgreSQL is unavailable"
        if services_required():
            pytest.fail(message + "; TOTPCORE_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    server = PostgresServer(binaries)
    try:
        server.initialise()
        server.start()
        server.create_database()
        yield server
    finally:
        if server.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                server.kill()
        server.remove()


def _has_account(name: str) -> bool:
    """Whether the operating system has a user called ``name``."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported."""
    import importlib.util

    return importlib.util.find_spec(module) is not None
