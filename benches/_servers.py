"""Throwaway Redis and PostgreSQL servers on loopback, for the store benchmarks.

The same arrangement as the test suite's helpers (``tests/redis_server.py`` and
``tests/postgres_server.py``), without pytest: a real server from the installed binaries, in
a temporary directory, on a free loopback port, removed afterwards. Redis keeps nothing on
disk; PostgreSQL runs with ``fsync=off`` (what it would wait for is the disk, not the store).
PostgreSQL refuses to run as root, so as root its programs run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["free_port", "postgres_server", "redis_server"]

DATABASE = "totpcore_bench"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _pings(port: int) -> bool:
    """Whether a Redis server on ``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A memory-only ``redis-server`` on loopback; yields its ``redis://`` URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    directory = Path(tempfile.mkdtemp(prefix="totpcore-bench-redis-"))
    port = free_port()
    arguments = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--save", "", "--appendonly", "no", "--daemonize", "no",
        "--logfile", str(directory / "server.log"),
    ]  # fmt: skip
    process = subprocess.Popen(
        arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while not _pings(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _binaries() -> Path:
    """The directory of ``initdb`` and ``pg_ctl`` (Debian keeps them off the PATH)."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if not found:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return Path(found[-1]).parent


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on loopback with an empty database; yields its conninfo."""
    binaries = _binaries()
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="totpcore-bench-pg-"))
    sockets = root / "sockets"
    sockets.mkdir()
    if as_postgres:
        account = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    data = root / "data"
    port = free_port()

    def run(*arguments: str) -> None:
        command = [str(binaries / arguments[0]), *arguments[1:]]
        if as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{arguments[0]} failed: {result.stderr.strip()[-2000:]}")

    started = False
    try:
        run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8")  # fmt: skip
        # pg_stat_statements: the server's own time per statement (see bench_stores.py).
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200 -c shared_preload_libraries=pg_stat_statements"
        )
        run("pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-w", "-o", options,
            "start")  # fmt: skip
        started = True
        import psycopg

        maintenance = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        conninfo = f"host=127.0.0.1 port={port} user=postgres dbname={DATABASE}"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield conninfo
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
