"""SQLiteStore's own guarantees: connection pool, file modes, closing, schema v2, fork, meta.

The generic Store behaviour is proven by StoreContract (tests/test_stores.py); these tests cover
what only a database file shared by threads and processes can get wrong.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import totpcore
from totpcore import InvalidParameterError, SQLiteStore, Status, StoreError, UserRecord
from totpcore.stores import Limits
from totpcore.stores.sqlite import SCHEMA_VERSION

POOL_SIZE = 4
NOW = 1_700_000_000.0
#: Never delays and never locks, so every attempt in these tests is charged.
OPEN = Limits(free=1_000_000, base=1.0, cap=1.0, lockout=1_000_000)

# The schema 0.1.0 wrote (schema version 1), as it created the table.
V1_SCHEMA = """CREATE TABLE totpcore_users (
    user_id TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('setup_pending', 'active')),
    secret BLOB NOT NULL,
    generation INTEGER NOT NULL,
    last_step INTEGER,
    drift INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    last_failure_at REAL,
    locked_at REAL,
    recovery_hashes TEXT NOT NULL DEFAULT ''
)"""

needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc/self/fd"
)


def open_fds() -> int:
    """Return how many file descriptors this process has open, after a garbage collection.

    Collecting first makes the count stable: objects other tests dropped (an unclosed store,
    say) would otherwise release their descriptors in the middle of a measurement.
    """
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def _record(user_id: str = "alice", **fields: Any) -> UserRecord:
    """Return an ACTIVE record with generation 7; ``fields`` override the rest."""
    values: dict[str, Any] = {
        "user_id": user_id,
        "status": Status.ACTIVE,
        "secret": b"\x00key\xff" + user_id.encode(),
        "generation": 7,
    }
    values.update(fields)
    return UserRecord(**values)


def _run_threads(count: int, wave: int, work: Callable[[], object]) -> None:
    """Run ``work`` in ``count`` new threads, ``wave`` at a time; re-raise the first failure."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # re-raised below, in the test's thread
            errors.append(error)

    for start in range(0, count, wave):
        threads = [threading.Thread(target=run) for _ in range(min(wave, count - start))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def _get_and_attempt(store: SQLiteStore) -> Callable[[], object]:
    """Return what each short-lived thread does: one ``get`` and one ``begin_attempt``."""

    def work() -> object:
        store.get("alice")
        return store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN)

    return work


@pytest.fixture
def private_umask() -> Iterator[None]:
    """Run the test under the common umask 0o022 (files world-readable by default)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


# --- connections -----------------------------------------------------------------------------


@needs_proc
@pytest.mark.parametrize("wave", [1, 2 * POOL_SIZE], ids=["one-at-a-time", "concurrent"])
def test_short_lived_threads_do_not_leak_descriptors(tmp_path: Path, wave: int) -> None:
    """300 short-lived threads, each doing get and begin_attempt, leave few descriptors open.

    0.1.0 kept a connection per thread and never closed it: 600 descriptors after 300 threads.
    One thread at a time, the count may grow by at most pool_size + 4. With ``wave`` threads at
    once, connections beyond the pool are opened and must be closed as they come back; each
    connection holds the database and -wal descriptors, and SQLite keeps a closed connection's
    database descriptor for reuse while other connections hold locks on the file, so the bound
    follows the peak concurrency (2 * wave + 4), never the number of threads. Closing the store
    releases everything.
    """
    before = open_fds()
    with SQLiteStore(tmp_path / "db.sqlite3", pool_size=POOL_SIZE) as store:
        store.insert(_record())
        _run_threads(300, wave, _get_and_attempt(store))
        grown = open_fds() - before
        record = store.get("alice")
    assert record is not None
    assert record.failures == 300, "every thread's attempt is charged"
    limit = POOL_SIZE + 4 if wave == 1 else 2 * wave + 4
    assert grown <= limit, f"{grown} descriptors left open by 300 threads (limit {limit})"
    assert open_fds() <= before, "close() must close every connection"


_LOW_LIMIT_SCRIPT = """
import resource, sys, threading
from totpcore import SQLiteStore, Status, UserRecord
from totpcore.stores import Limits

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256 if hard < 0 else min(256, hard), hard))
limits = Limits(free=10**6, base=1.0, cap=1.0, lockout=10**6)
store = SQLiteStore(sys.argv[1], pool_size=4)
store.insert(UserRecord("alice", Status.ACTIVE, b"k" * 20, 7))
errors = []

def work():
    try:
        store.get("alice")
        store.begin_attempt("alice", status=Status.ACTIVE, now=1.0, limits=limits)
    except BaseException as error:
        errors.append(error)

for _ in range(25):  # 200 threads, 8 at a time
    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
store.close()
if errors:
    sys.exit(f"{len(errors)} failures, first: {errors[0]!r}")
"""


def test_threads_under_a_low_descriptor_limit(tmp_path: Path) -> None:
    """200 short-lived threads under RLIMIT_NOFILE=256 (in a subprocess) never hit StoreError.

    With a connection kept per thread (0.1.0), about 128 threads exhaust the descriptors and
    SQLite fails with "unable to open database file".
    """
    source = str(Path(totpcore.__file__).resolve().parent.parent)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([source, *sys.path])}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _LOW_LIMIT_SCRIPT, str(tmp_path / "db.sqlite3")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@needs_proc
def test_pool_size_zero_keeps_nothing_open(tmp_path: Path) -> None:
    """With pool_size=0 every connection is closed after its operation: nothing stays open."""
    before = open_fds()
    store = SQLiteStore(tmp_path / "db.sqlite3", pool_size=0)
    assert store.insert(_record())
    assert store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN).allowed
    assert open_fds() <= before
    store.close()


def test_close_and_context_manager(tmp_path: Path) -> None:
    """Leaving the with block closes the store: later use is a StoreError; closing twice is fine."""
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as store:
        assert store.insert(_record())
    with pytest.raises(StoreError, match="the store is closed"):
        store.get("alice")
    with pytest.raises(StoreError, match="the store is closed"):
        store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN)
    with pytest.raises(StoreError, match="the store is closed"):
        store.set_meta("name", "value", expected=None)
    store.close()  # a second close is harmless
    with SQLiteStore(path) as reopened:
        assert reopened.get("alice") == _record()


@needs_proc
def test_no_resource_warning(tmp_path: Path) -> None:
    """Closed stores and stores dropped unclosed leave no connection for the garbage collector.

    Python 3.13 emits ResourceWarning for every sqlite3 connection collected while open; raised
    as an error inside a destructor, it reaches sys.unraisablehook, which is captured here. On
    older Pythons the descriptor count shows the same thing: every connection is closed.
    """
    before = open_fds()  # collects what earlier tests dropped, before listening for warnings
    unraisable: list[Any] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            closed = SQLiteStore(tmp_path / "closed.sqlite3", pool_size=2)
            closed.insert(_record())
            _run_threads(24, 8, _get_and_attempt(closed))  # opens more than the pool keeps
            closed.close()
            dropped = SQLiteStore(tmp_path / "dropped.sqlite3", pool_size=2)
            dropped.insert(_record())
            _run_threads(24, 8, _get_and_attempt(dropped))
            del closed, dropped  # the second one was never closed
            gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    after = open_fds()
    assert not unraisable, [str(event.exc_value) for event in unraisable]
    assert after <= before, "a connection was left open"


def test_failed_operation_rolls_back_and_releases_the_lock(tmp_path: Path) -> None:
    """An operation that fails inside its transaction changes nothing and holds no lock after.

    A connection returned to the pool still inside BEGIN IMMEDIATE would keep the write lock:
    the second store (0.5 s timeout) could then not write at all.
    """
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as store, SQLiteStore(path, timeout=0.5) as other:
        store.insert(_record(last_step=3))
        # Fails when the UPDATE binds the step, after the row was read and the rule applied.
        with pytest.raises(StoreError, match="SQLite integer"):
            store.mark_used(
                "alice", generation=7, step=2**64, drift=0, allow_equal=False, charged_at=NOW
            )
        # Fails in Python, after BEGIN IMMEDIATE, while converting the new record to a row.
        with pytest.raises(InvalidParameterError):
            store.replace(_record(recovery_hashes=("a,b",)), generation=7)
        assert store.get("alice") == _record(last_step=3)
        assert other.mark_used(
            "alice", generation=7, step=4, drift=0, allow_equal=False, charged_at=NOW
        )
        assert store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN).allowed


def test_concurrent_attempts_on_two_stores_are_all_charged(tmp_path: Path) -> None:
    """80 attempts from 16 threads on two store objects of one file are charged exactly 80 times.

    A read-then-write outside one immediate transaction loses charges when two interleave.
    """
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as first, SQLiteStore(path) as second:
        first.insert(_record())
        counter = iter(range(1_000_000))
        lock = threading.Lock()

        def work() -> None:
            for _ in range(5):
                with lock:
                    store = first if next(counter) % 2 else second
                assert store.begin_attempt(
                    "alice", status=Status.ACTIVE, now=NOW, limits=OPEN
                ).allowed

        _run_threads(16, 16, work)
        record = first.get("alice")
    assert record is not None
    assert (record.failures, len(record.failure_log)) == (80, 80)


# --- files ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("private_umask")
def test_new_files_are_private(tmp_path: Path) -> None:
    """The database, -wal and -shm files are created 0600 even under umask 0o022."""
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as store:
        store.insert(_record())
        # Checked while open: closing the last connection removes the -wal and -shm files.
        modes = {
            suffix: stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode)
            for suffix in ("", "-wal", "-shm")
        }
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


@pytest.mark.usefixtures("private_umask")
def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    """A database file the user created is used as it is, never chmod-ed."""
    path = tmp_path / "db.sqlite3"
    path.touch(mode=0o640)
    with SQLiteStore(path) as store:
        store.insert(_record())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_uncreatable_file_is_a_store_error(tmp_path: Path) -> None:
    """A database in a missing directory fails as StoreError, not OSError."""
    with pytest.raises(StoreError, match="cannot create"):
        SQLiteStore(tmp_path / "missing" / "db.sqlite3")


# --- schema --------------------------------------------------------------------------------


def _make_v1(path: Path, *, with_row: bool = True) -> None:
    """Write a schema-1 database as 0.1.0 left it, with one user when ``with_row``."""
    with closing(sqlite3.connect(path)) as raw:
        raw.execute(V1_SCHEMA)
        if with_row:
            raw.execute(
                "INSERT INTO totpcore_users VALUES (?,?,?,?,?,?,?,?,?,?)",
                ("alice", "active", b"\x01old", 7, 56_666_667, -1, 2, NOW + 0.5, None, "h1,h2"),
            )
        raw.execute("PRAGMA user_version = 1")
        raw.commit()


def _user_version(path: Path) -> int:
    """Return the schema version recorded in the file."""
    with closing(sqlite3.connect(path)) as raw:
        version: int = raw.execute("PRAGMA user_version").fetchone()[0]
    return version


def test_migrates_v1_to_v2(tmp_path: Path) -> None:
    """A 0.1.0 file is upgraded in place: SHA1/6/30, the failure run kept, legacy flag, v2.

    Opening it a second time changes nothing and fails nothing.
    """
    path = tmp_path / "v1.sqlite3"
    _make_v1(path)
    expected = _record(
        secret=b"\x01old",
        algorithm="SHA1",
        digits=6,
        period=30,
        last_step=56_666_667,
        drift=-1,
        last_failure_at=NOW + 0.5,
        failure_log=(NOW + 0.5, NOW + 0.5),  # 0.1.0's two consecutive failures
        recovery_hashes=("h1", "h2"),
    )
    for _ in range(2):
        with SQLiteStore(path) as store:
            assert store.get("alice") == expected
            assert store.get_meta("legacy_ciphertexts") == "possible"
        assert _user_version(path) == SCHEMA_VERSION == 2


@pytest.mark.parametrize("kind", ["empty-v1", "new-file"])
def test_no_legacy_flag_without_legacy_rows(tmp_path: Path, kind: str) -> None:
    """Neither a new file nor an empty 0.1.0 file can hold old ciphertexts: no flag is set."""
    path = tmp_path / "db.sqlite3"
    if kind == "empty-v1":
        _make_v1(path, with_row=False)
    with SQLiteStore(path) as store:
        store.insert(_record())  # written by this release, so not an old ciphertext
        assert store.get_meta("legacy_ciphertexts") is None
    assert _user_version(path) == SCHEMA_VERSION


@needs_proc
def test_refuses_newer_schema(tmp_path: Path) -> None:
    """A file with user_version 99 is refused with a StoreError, and no connection stays open."""
    path = tmp_path / "db.sqlite3"
    SQLiteStore(path).close()
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("PRAGMA user_version = 99")
    before = open_fds()
    with pytest.raises(StoreError, match="upgrade totpcore"):
        SQLiteStore(path)
    assert open_fds() <= before


@pytest.mark.parametrize("kind", ["foreign", "text"])
def test_refuses_files_that_are_not_totpcore_databases(tmp_path: Path, kind: str) -> None:
    """Another application's SQLite file, or a file that is not SQLite, is a StoreError."""
    path = tmp_path / "other.sqlite3"
    if kind == "foreign":
        with closing(sqlite3.connect(path)) as raw:
            raw.execute("CREATE TABLE invoices (id INTEGER)")
            raw.commit()
    else:
        path.write_bytes(b"not a database\n" * 200)
    with pytest.raises(StoreError):
        SQLiteStore(path)


def test_round_trips_every_field(tmp_path: Path) -> None:
    """Every UserRecord field comes back exactly, through a reopen, floats bit for bit."""
    path = tmp_path / "db.sqlite3"
    full = _record(
        "Zoë",
        status=Status.SETUP_PENDING,
        secret=bytes(range(256)),
        generation=2**62 - 1,
        algorithm="SHA512",
        digits=8,
        period=60,
        last_step=2**40 + 3,
        drift=-1440,
        last_failure_at=1700000000.123456,
        last_success_at=1699999999.5,
        locked_at=1700000001.5,
        failure_log=(1700000000.123456, 0.1, 1e-7, 1699999999.000001),
        recovery_hashes=("h1$a", "h2$b"),
    )
    empty = _record("bob", failure_log=(), recovery_hashes=())
    with SQLiteStore(path) as store:
        assert store.insert(full)
        assert store.insert(empty)
    with SQLiteStore(path) as store:
        got_full, got_empty = store.get("Zoë"), store.get("bob")
        attempt = store.begin_attempt("bob", status=Status.ACTIVE, now=NOW + 0.1, limits=OPEN)
        charged = store.get("bob")
    assert got_full == full
    assert got_full is not None
    assert [t.hex() for t in got_full.failure_log] == [t.hex() for t in full.failure_log]
    assert got_empty == empty
    assert attempt.record == charged
    assert charged is not None
    assert charged.failure_log == (NOW + 0.1,)


# --- processes -----------------------------------------------------------------------------


def _child_uses_store(store: SQLiteStore, sender: Any) -> None:
    """In a forked child: use the inherited store and report what happened."""
    before = open_fds()
    found = store.get("alice") is not None
    # A new connection means new descriptors: the parent's connection was not reused.
    opened_its_own = open_fds() > before
    allowed = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN).allowed
    inserted = store.insert(_record("bob"))
    store.close()
    sender.send((found, opened_its_own, allowed, inserted))
    sender.close()


@needs_proc
def test_store_survives_fork(tmp_path: Path) -> None:
    """A store used before fork works in the child with its own connections; the parent goes on."""
    store = SQLiteStore(tmp_path / "db.sqlite3")
    store.insert(_record())
    assert store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN).allowed
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_uses_store, args=(store, sender))
    child.start()
    sender.close()
    try:
        assert receiver.poll(60), "the child reported nothing"
        outcome = receiver.recv()
    finally:
        receiver.close()
        child.join(60)
    assert child.exitcode == 0
    assert outcome == (True, True, True, True)
    # The parent's pooled connection still works after the child used and closed its store.
    assert store.get("bob") == _record("bob")
    assert store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN).allowed
    record = store.get("alice")
    assert record is not None
    assert record.failures == 3
    store.close()


# --- meta ----------------------------------------------------------------------------------


def test_meta_compare_and_set_across_stores(tmp_path: Path) -> None:
    """set_meta writes only over the expected value (None: absent), as seen by every store."""
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as first, SQLiteStore(path) as second:
        assert first.get_meta("fingerprint") is None
        assert first.set_meta("fingerprint", "k1", expected=None)
        assert not second.set_meta("fingerprint", "k2", expected=None), "already present"
        assert second.get_meta("fingerprint") == "k1"
        assert not second.set_meta("fingerprint", "k2", expected="k0"), "stale expectation"
        assert second.set_meta("fingerprint", "k2", expected="k1")
        assert not first.set_meta("fingerprint", "k3", expected="k1"), "first read is stale"
        assert first.get_meta("fingerprint") == "k2"
        assert first.get_meta("other") is None


def test_meta_compare_and_set_has_one_winner(tmp_path: Path) -> None:
    """16 threads on two stores race to set an absent setting: exactly one succeeds."""
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as first, SQLiteStore(path) as second:
        wins: list[str] = []
        barrier = threading.Barrier(16)

        def work(value: str, store: SQLiteStore) -> Callable[[], object]:
            def run() -> None:
                barrier.wait()
                if store.set_meta("owner", value, expected=None):
                    wins.append(value)

            return run

        threads = [
            threading.Thread(target=work(f"v{i}", first if i % 2 else second)) for i in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1, wins
        assert first.get_meta("owner") == wins[0]


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(("synchronous", "level"), [("FULL", 2), ("NORMAL", 1), ("normal", 1)])
def test_connection_settings(
    tmp_path: Path, synchronous: str, level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections run in WAL mode with the chosen synchronous level (FULL unless opted out)."""
    opened: list[sqlite3.Connection] = []
    original = sqlite3.connect

    def recording(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = original(*args, **kwargs)
        opened.append(connection)
        return connection

    monkeypatch.setattr(sqlite3, "connect", recording)
    with SQLiteStore(tmp_path / "db.sqlite3", synchronous=synchronous) as store:
        store.get("alice")  # an operation on a pooled connection
        assert opened
        for connection in opened:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert connection.execute("PRAGMA synchronous").fetchone()[0] == level


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"pool_size": "4"}, TypeError),
        ({"pool_size": True}, TypeError),
        ({"pool_size": -1}, InvalidParameterError),
        ({"synchronous": 2}, TypeError),
        ({"synchronous": "OFF"}, InvalidParameterError),
        ({"synchronous": "FULL; DROP TABLE totpcore_users"}, InvalidParameterError),
        ({"timeout": 0}, InvalidParameterError),
    ],
)
def test_options_are_checked(
    tmp_path: Path, options: dict[str, Any], error: type[Exception]
) -> None:
    """Bad options are refused before any file is created."""
    path = tmp_path / "db.sqlite3"
    with pytest.raises(error):
        SQLiteStore(path, **options)
    assert not path.exists()


@pytest.mark.parametrize("path", [":memory:", ""])
def test_refuses_memory_and_empty_paths(path: str) -> None:
    """':memory:' or an empty path would give each connection its own empty database."""
    with pytest.raises(InvalidParameterError, match="MemoryStore"):
        SQLiteStore(path)


def test_path_and_repr(tmp_path: Path) -> None:
    """The path property and repr name the file, and nothing else."""
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as store:
        store.insert(_record())
        assert store.path == str(path)
        assert repr(store) == f"SQLiteStore({str(path)!r})"


# --- one durable commit per login --------------------------------------------------------


def test_a_login_is_one_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A login verify on SQLite is one transaction: one COMMIT, hence one fsync.

    Counted with SQLite's statement trace on every connection the store opens. Before the
    one-transaction check, a login issued two (the charge, then the compare-and-set).
    """
    from totpcore import TOTP, TwoFactor
    from totpcore.testing import FakeClock

    statements: list[str] = []
    original = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = original(*args, **kwargs)
        connection.set_trace_callback(statements.append)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced)
    clock = FakeClock()
    with SQLiteStore(tmp_path / "db.sqlite3") as store:
        service = TwoFactor(store, issuer="X", clock=clock)
        service.enable("alice")
        phone = TOTP.from_secret(service.begin_setup("alice").secret)
        assert service.complete_setup("alice", phone.generate(clock.now))
        for right in (True, False):
            clock.advance(30)
            code = phone.generate(clock.now) if right else "000000"
            statements.clear()
            service.verify("alice", code)
            commits = [s for s in statements if s.strip().upper() == "COMMIT"]
            begins = [s for s in statements if s.strip().upper().startswith("BEGIN")]
            assert (len(begins), len(commits)) == (1, 1), statements
