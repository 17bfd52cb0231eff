"""The two service shells: one interface, one core, each refusing the other's stores.

TwoFactor (sync) and AsyncTwoFactor (asyncio) are thin shells over the sans-IO core. These
tests hold them to the same public interface, race the async shell in real event loops, keep
``import totpcore`` light, and check that verdicts are built in one module only.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import totpcore
from helpers import ServiceFactory, close_async_store
from totpcore import (
    TOTP,
    AsyncSQLiteStore,
    AsyncTwoFactor,
    Policy,
    Reason,
    Store,
    TwoFactor,
)
from totpcore.testing import FakeClock

T = TypeVar("T")

START = 1_700_000_010.0
DAY = 86_400.0
ROUNDS = 10
VERIFIES = 16
THREADS = 4
#: Generous free failures: each round leaves 15 losing attempts charged, and what is tested
#: here is the one-time use of a step, not the throttle or the 24-hour budget.
RACE = Policy(free_failures=50, lockout_failures=100, recovery_iterations=1_000)
SOURCE = Path(totpcore.__file__).parent


# --- one interface -------------------------------------------------------------------------


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """The public functions a class defines or inherits, by name."""
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def annotation_text(annotation: Any) -> str:
    """An annotation as text (they are strings already under postponed evaluation)."""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any, str]]:
    """Each parameter's name, kind, default and annotation (as text)."""
    return [
        (p.name, p.kind, p.default, annotation_text(p.annotation))
        for p in inspect.signature(function).parameters.values()
    ]


def test_both_shells_have_the_same_public_methods() -> None:
    """The same public method names; the async ones are coroutine functions, the sync ones not."""
    sync, asynchronous = public_methods(TwoFactor), public_methods(AsyncTwoFactor)
    assert set(sync) == set(asynchronous)
    assert {"verify", "verify_request", "enable", "rotate_key"} <= set(sync)
    for name in sync:
        assert not inspect.iscoroutinefunction(sync[name]), f"TwoFactor.{name} is a coroutine"
        assert inspect.iscoroutinefunction(asynchronous[name]), (
            f"AsyncTwoFactor.{name} is not a coroutine function"
        )


@pytest.mark.parametrize("name", sorted(public_methods(TwoFactor)))
def test_both_shells_take_the_same_parameters(name: str) -> None:
    """Each method has the same parameters (names, kinds, defaults, annotations) and result."""
    sync = getattr(TwoFactor, name)
    asynchronous = getattr(AsyncTwoFactor, name)
    assert parameters(sync) == parameters(asynchronous)
    assert annotation_text(inspect.signature(sync).return_annotation) == annotation_text(
        inspect.signature(asynchronous).return_annotation
    )


def test_both_constructors_take_the_same_options() -> None:
    """The constructors differ only in the kind of store they take."""
    sync = parameters(TwoFactor.__init__)
    asynchronous = parameters(AsyncTwoFactor.__init__)
    assert [p[:3] for p in sync] == [p[:3] for p in asynchronous]
    assert sync[2:] == asynchronous[2:]  # after self and store
    assert (sync[1][3], asynchronous[1][3]) == ("Store", "AsyncStore")


# --- each shell refuses the other's stores -------------------------------------------------


def test_each_shell_refuses_the_other_shells_stores(store: Store) -> None:
    """Each shell refuses the other's kind of store, at construction, naming the right shell.

    On every built-in store: TwoFactor refuses its async twin (pointing to AsyncTwoFactor) and
    AsyncTwoFactor the sync store (pointing to TwoFactor); nothing is read or awaited.
    """
    with ServiceFactory(store, "async") as factory:
        twin = factory.twin()
        with pytest.raises(TypeError, match="AsyncTwoFactor"):
            TwoFactor(twin, issuer="X")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="use TwoFactor"):
            AsyncTwoFactor(store, issuer="X")  # type: ignore[arg-type]


# --- concurrent verifies in real event loops -----------------------------------------------


async def enrol(service: AsyncTwoFactor, clock: FakeClock) -> TOTP:
    """Enable and set up 'alice'; return her phone."""
    await service.enable("alice")
    phone = TOTP.from_secret((await service.begin_setup("alice")).secret)
    assert await service.complete_setup("alice", phone.generate(clock.now))
    return phone


async def verify_together(service: AsyncTwoFactor, code: str, count: int) -> list[Reason]:
    """Verify ``code`` for 'alice' ``count`` times as concurrent tasks of the running loop."""
    verdicts = await asyncio.gather(*(service.verify("alice", code) for _ in range(count)))
    return [verdict.reason for verdict in verdicts]


def assert_one_winner(reasons: list[Reason], round_number: int) -> None:
    """Exactly one of the 16 verifies was ACCEPTED; every other one was REPLAYED."""
    assert len(reasons) == VERIFIES
    counts = Counter(reasons)
    assert counts[Reason.ACCEPTED] == 1, f"round {round_number}: {counts}"
    assert counts == {Reason.ACCEPTED: 1, Reason.REPLAYED: VERIFIES - 1}, counts


def test_concurrent_verifies_of_one_code_accept_once(store: Store) -> None:
    """16 verifies of one fresh code gathered in one loop: exactly one ACCEPTED, 10 rounds.

    On the async twin of each built-in store, new and empty. The clock moves a day per round,
    so each round has a new step and the 24-hour guessing budget is not what is tested.
    """
    clock = FakeClock(START)
    with ServiceFactory(store, "async") as factory:
        async_store = factory.twin()
        service = AsyncTwoFactor(async_store, issuer="X", policy=RACE, clock=clock)

        async def rounds() -> list[list[Reason]]:
            try:
                phone = await enrol(service, clock)
                results = []
                for _ in range(ROUNDS):
                    clock.advance(DAY)
                    code = phone.generate(clock.now)
                    results.append(await verify_together(service, code, VERIFIES))
                return results
            finally:
                await close_async_store(async_store)  # on this loop, which its connections use

        results = asyncio.run(rounds())
    assert len(results) == ROUNDS
    for round_number, reasons in enumerate(results):
        assert_one_winner(reasons, round_number)


async def released_together(
    service: AsyncTwoFactor, code: str, barrier: threading.Barrier
) -> list[Reason]:
    """In this thread's own loop, wait until every thread's loop runs, then verify 4 times."""
    await asyncio.to_thread(barrier.wait)
    return await verify_together(service, code, VERIFIES // THREADS)


def in_threads(count: int, action: Callable[[int], T]) -> list[T]:
    """Run ``action(i)`` in ``count`` threads; return the results, or raise the first error."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = action(index)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("stores", ["one store object", "a store per loop"])
def test_concurrent_verifies_from_four_event_loops(tmp_path: Path, stores: str) -> None:
    """4 threads, each with its own event loop, 4 verifies each: one ACCEPTED of 16, 10 rounds.

    All on one SQLite file, through one shared AsyncSQLiteStore or one per thread. Each
    thread's service starts up during the first round, so the start-up writes race as well.
    """
    path = tmp_path / "shared.sqlite3"
    clock = FakeClock(START)
    opened = [AsyncSQLiteStore(path) for _ in range(1 if stores == "one store object" else THREADS)]
    try:
        enroller = AsyncTwoFactor(opened[0], issuer="X", policy=RACE, clock=clock)
        phone = asyncio.run(enrol(enroller, clock))
        services = [
            AsyncTwoFactor(opened[i % len(opened)], issuer="X", policy=RACE, clock=clock)
            for i in range(THREADS)
        ]
        for round_number in range(ROUNDS):
            clock.advance(DAY)
            code = phone.generate(clock.now)
            barrier = threading.Barrier(THREADS, timeout=60)
            per_thread = in_threads(
                THREADS,
                lambda i, code=code, barrier=barrier: asyncio.run(  # type: ignore[misc]
                    released_together(services[i], code, barrier)
                ),
            )
            assert_one_winner(
                [reason for reasons in per_thread for reason in reasons], round_number
            )
        record = opened[0].sync.get("alice")
        assert record is not None
        assert record.last_step == phone.counter_at(clock.now)
    finally:
        for store in opened:
            store.close()


# --- a light import ------------------------------------------------------------------------


def script_imports(stderr: str) -> list[str]:
    """The modules ``-X importtime`` lists as imported by the ``-c`` script, after start-up.

    Each import is logged when it finishes, its own imports first and indented deeper, so
    everything start-up imports ends with the top-level ``site`` line; what follows is the
    script's.
    """
    names: list[str] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.endswith("imported package"):
            continue
        field = line.split("|", 2)[2]
        names.append(field.strip())
        if field == " site":  # start-up is over: drop what it imported
            names = []
    return names


@pytest.mark.parametrize(
    "use",
    [
        pytest.param("", id="import only"),
        pytest.param(
            "totpcore.TOTP, totpcore.Verdict, totpcore.TwoFactor, totpcore.MemoryStore",
            id="engine and sync service on MemoryStore",
        ),
    ],
)
def test_import_loads_no_asyncio_sqlite3_or_third_party_package(use: str) -> None:
    """``import totpcore`` loads only the standard library and totpcore: no asyncio, no sqlite3.

    Nor does using the engine and the sync service on a MemoryStore: the SQLite stores and
    the async shell's needs load only when asked for. Two records are checked: the modules
    ``-X importtime`` logs (it also logs imports that fail, such as ``copy``'s probe for
    Jython's ``org.python.core``, so only those then in ``sys.modules`` count), and the new
    entries of ``sys.modules`` (``importtime`` does not log a module loaded through
    ``importlib.import_module``, as the package's lazy attributes are).
    """
    script = (
        "import sys; before = set(sys.modules); import totpcore\n"
        f"{use}\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    new_modules = set(result.stdout.split())
    logged = set(script_imports(result.stderr)) & new_modules
    assert "totpcore" in logged  # the parse found the import
    if use:
        assert {"totpcore.otp", "totpcore.service", "totpcore.stores.memory"} <= new_modules
    allowed = set(sys.stdlib_module_names) | {"totpcore"}
    for kind, modules in (("logged by -X importtime", logged), ("in sys.modules", new_modules)):
        for forbidden in ("asyncio", "sqlite3", "_sqlite3"):
            assert forbidden not in modules, f"import totpcore loads {forbidden} ({kind})"
        outside = sorted(name for name in modules if name.partition(".")[0] not in allowed)
        assert outside == [], f"packages outside the standard library ({kind}): {outside}"


# --- one place for every verdict -----------------------------------------------------------


def called_name(function: ast.expr) -> str | None:
    """The name a call is made through: ``Verdict(...)`` and ``verdict.Verdict(...)`` alike."""
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return None


def test_verdicts_are_built_only_in_core_verdicts() -> None:
    """Every ``Verdict(...)`` call in the package is in ``_core/verdicts.py``, under that name.

    So a rule about what to answer exists once: the shells and the CLI may read a verdict's
    reason, never build one. Importing Verdict under another name would hide a call, so no
    module does that either.
    """
    builders: list[str] = []
    aliases: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        module = path.relative_to(SOURCE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called_name(node.func) == "Verdict":
                builders.append(f"{module}:{node.lineno}")
            if isinstance(node, ast.ImportFrom | ast.Import):
                aliases.extend(
                    f"{module}:{node.lineno}"
                    for alias in node.names
                    if alias.name.rpartition(".")[2] == "Verdict"
                    and alias.asname not in (None, "Verdict")
                )
    assert builders, "no Verdict(...) call found: the scan is broken"
    assert {entry.partition(":")[0] for entry in builders} == {"_core/verdicts.py"}, builders
    assert aliases == []


def test_testing_without_pytest_names_what_to_install() -> None:
    """Importing totpcore.testing where pytest is missing raises MissingDependencyError."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['pytest'] = None\n"
        "from totpcore.errors import MissingDependencyError\n"
        "try:\n"
        "    import totpcore.testing\n"
        "except MissingDependencyError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pip install pytest" in result.stdout
