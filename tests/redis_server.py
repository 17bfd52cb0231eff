"""Throwaway Redis servers for the tests, and the fixtures that run them.

Each server is a real ``redis-server`` in a temporary directory, listening on a free loopback
port, started in its own process group so that a test can SIGKILL it (a crash, as far as Redis
is concerned) and start it again on the same port and directory. By default it keeps nothing
on disk (``--save '' --appendonly no``): the tests flush it between uses. ``durable=True``
turns on ``appendonly yes`` with ``appendfsync always``, for the tests that kill it and count
on every acknowledged write surviving.

A missing ``redis-server`` binary or ``redis`` package skips the tests that need them, with
the reason, unless ``TOTPCORE_REQUIRE_SERVICES=1`` (then they fail: CI must never pass by
skipping).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import services_required

__all__ = [
    "RedisServer",
    "find_redis_server",
    "free_port",
    "redis_cluster_fixture",
    "redis_server_fixture",
    "require_redis",
    "running_server",
]

#: How long a server may take to answer PING after it is started.
START_TIMEOUT = 10.0


def find_redis_server() -> str | None:
    """The path of ``redis-server``, or ``None`` when it is not installed."""
    return shutil.which("redis-server")


def free_port(*, bus: bool = False) -> int:
    """A loopback TCP port nobody listens on right now.

    With ``bus``, also ``port + 10000`` must be a free, valid port: a cluster node listens
    there for its bus, and refuses to start when that passes 65535.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if not bus:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _pings(port: int) -> bool:
    """Whether a server on ``port`` answers PING (a raw RESP exchange: no client needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process in a temporary directory, started and killed by the tests.

    Args:
        binary: The ``redis-server`` program.
        durable: ``appendonly yes`` and ``appendfsync always``: every acknowledged write is
            on disk, so it survives a SIGKILL.
        replica_of: Port of a server on loopback to replicate.
        cluster: Run in cluster mode, as a one-node cluster owning every slot: Redis then
            refuses, as any cluster would, a command or script touching keys of two slots.

    Attributes:
        port: The loopback TCP port it listens on (the same across restarts).
        directory: Its working directory (append-only files, log).
    """

    def __init__(
        self,
        binary: str,
        *,
        durable: bool = False,
        replica_of: int | None = None,
        cluster: bool = False,
    ) -> None:
        self._binary = binary
        self._durable = durable
        self._replica_of = replica_of
        self._cluster = cluster
        self.directory = Path(tempfile.mkdtemp(prefix="totpcore-redis-"))
        self.port = free_port(bus=cluster)
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.running})"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def url(self) -> str:
        """A ``redis://`` URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        arguments = [
            self._binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self._durable else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            # A replica is served at once, not after the default 5 s wait for more replicas.
            "--repl-diskless-sync-delay", "0",
            "--logfile", str(self.directory / "server.log"),
        ]  # fmt: skip
        if self._replica_of is not None:
            arguments += ["--replicaof", "127.0.0.1", str(self._replica_of)]
        if self._cluster:
            arguments += ["--cluster-enabled", "yes"]
        # A session of its own, so that kill() reaches every process the server may fork
        # (an append-only rewrite) with one signal to the group.
        self._process = subprocess.Popen(
            arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _pings(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self.directory / "server.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}: {tail}")
            time.sleep(0.01)
        if self._cluster:
            self._own_every_slot(deadline)

    def _own_every_slot(self, deadline: float) -> None:
        """Make the one node own all 16384 slots and wait until the cluster is ok."""
        client = self.client()
        try:
            if client.execute_command("CLUSTER", "INFO").find(b"cluster_slots_assigned:0") >= 0:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the one-node cluster did not become ready")
                time.sleep(0.01)
        finally:
            client.close()

    def cluster_client(self, **options: Any) -> Any:
        """A ``redis.cluster.RedisCluster`` client of a ``cluster=True`` server."""
        from redis.backoff import NoBackoff
        from redis.cluster import RedisCluster
        from redis.retry import Retry

        settings: dict[str, Any] = {"socket_timeout": 5.0, "retry": Retry(NoBackoff(), 0)}
        settings.update(options)
        return RedisCluster(host="127.0.0.1", port=self.port, **settings)

    def kill(self) -> None:
        """SIGKILL the server's process group (a crash: nothing is flushed) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def client(self, **options: Any) -> Any:
        """A new ``redis.Redis`` client of the server: no retries, short timeouts.

        Without retries a dead server fails a call at once, instead of after redis-py's
        default back-off; the timeouts keep a hung call from stalling the suite.
        """
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        settings: dict[str, Any] = {
            "socket_timeout": 5.0,
            "socket_connect_timeout": 2.0,
            "retry": Retry(NoBackoff(), 0),
        }
        settings.update(options)
        return redis.Redis(host="127.0.0.1", port=self.port, **settings)

    def async_client(self, **options: Any) -> Any:
        """A new ``redis.asyncio.Redis`` client of the server, set up as :meth:`client`."""
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        settings: dict[str, Any] = {
            "socket_timeout": 5.0,
            "socket_connect_timeout": 2.0,
            "retry": Retry(NoBackoff(), 0),
        }
        settings.update(options)
        return redis.asyncio.Redis(host="127.0.0.1", port=self.port, **settings)

    def remove(self) -> None:
        """Kill the server if it runs and delete its directory."""
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def require_redis() -> str:
    """The ``redis-server`` binary; skip (or fail under TOTPCORE_REQUIRE_SERVICES=1) without it.

    The ``redis`` client package is required as well.
    """
    import importlib.util

    binary = find_redis_server()
    reason = None
    if binary is None:
        reason = "redis-server is not installed (Debian: apt-get install redis-server)"
    elif importlib.util.find_spec("redis") is None:
        reason = "the redis package is not installed (pip install 'totpcore[redis]')"
    if reason is not None or binary is None:
        message = reason or "Redis is unavailable"
        if services_required():
            pytest.fail(message + "; TOTPCORE_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    return binary


@contextlib.contextmanager
def running_server(**options: Any) -> Iterator[RedisServer]:
    """A started :class:`RedisServer` (``options`` as its constructor's), removed afterwards."""
    server = RedisServer(require_redis(), **options)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session", name="redis_server")
def redis_server_fixture() -> Iterator[RedisServer]:
    """A running, memory-only Redis server for the whole session.

    Tests flush it before use; it is killed (its process group) and its directory removed at
    the end of the session.
    """
    with running_server() as server:
        yield server


@pytest.fixture(scope="session", name="redis_cluster")
def redis_cluster_fixture() -> Iterator[RedisServer]:
    """A running one-node Redis Cluster (every slot on one node) for the whole session."""
    with running_server(cluster=True) as server:
        yield server
