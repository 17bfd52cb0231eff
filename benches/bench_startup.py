"""Start-up benchmark: ``import totpcore`` against ``import pyotp``, and ``totpcore code``.

Run from a checkout with pyotp installed::

    python benches/bench_startup.py             # 40 runs of each command
    python benches/bench_startup.py --runs 100 --json

Start-up is measured in a fresh virtual environment (``python -m venv --without-pip``), so
that nothing a machine's global site-packages loads at every start (``.pth`` hooks, coverage
start-up, certificate patches) is counted. The environment gets the checkout's ``src`` on its
path through a ``.pth`` file, a copy of the installed pyotp (pure Python), and a ``totpcore``
console script like the one pip writes. Each command is run ``--runs`` times as a new process,
the commands taking turns (so a slow moment of the machine hits them all), like hyperfine
does; the report gives the median and the fastest wall-clock time, and the median minus the
median of ``python -c pass`` (the interpreter's own start-up).

Also reported: the modules each import loads, and ``-X importtime``'s cumulative time of the
top-level package (the median over ``--runs`` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import markdown

CHECKOUT = Path(__file__).resolve().parent.parent
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SCRIPT = """\
#!{python}
import sys
from totpcore.cli import run
if __name__ == "__main__":
    sys.exit(run())
"""


def make_venv(directory: Path) -> tuple[Path, Path]:
    """A bare venv with the checkout and pyotp on its path; return (python, totpcore script)."""
    import pyotp

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    site = Path(purelib)
    (site / "totpcore-checkout.pth").write_text(f"{CHECKOUT / 'src'}\n", encoding="utf-8")
    shutil.copytree(Path(pyotp.__file__).parent, site / "pyotp")
    script = directory / "bin" / "totpcore"
    script.write_text(SCRIPT.format(python=python), encoding="utf-8")
    script.chmod(0o755)
    return python, script


def commands(python: Path, script: Path) -> dict[str, list[str]]:
    """The timed command lines, the interpreter's bare start-up first."""
    return {
        "python -c pass": [str(python), "-c", "pass"],
        "python -c 'import totpcore'": [str(python), "-c", "import totpcore"],
        "python -c 'import pyotp'": [str(python), "-c", "import pyotp"],
        "python -c 'from totpcore import TOTP'": [
            str(python), "-c", "from totpcore import TOTP; TOTP",
        ],
        f"totpcore code --secret {SECRET[:8]}...": [str(script), "code", "--secret", SECRET],
        "global site-packages: python -c pass": [sys.executable, "-c", "pass"],
        "global site-packages: python -c 'import totpcore'": [
            sys.executable, "-c", "import totpcore",
        ],
    }  # fmt: skip


def time_commands(lines: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Wall-clock seconds of each command line, ``runs`` times each, taking turns."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    times: dict[str, list[float]] = {name: [] for name in lines}
    for name, line in lines.items():  # one warm-up run each (file cache, .pyc files)
        subprocess.run(line, env=environment, check=True, capture_output=True)
        del name
    for _ in range(runs):
        for name, line in lines.items():
            started = time.perf_counter()
            subprocess.run(line, env=environment, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - started)
    return times


def import_profile(python: Path, module: str, runs: int) -> dict[str, Any]:
    """Modules ``import module`` loads beyond a bare start, and its -X importtime cumulative."""
    probe = (
        "import sys; before = set(sys.modules); "
        f"import {module}; print(len(set(sys.modules) - before))"
    )
    loaded = int(subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                                check=True).stdout)  # fmt: skip
    cumulative = []
    for _ in range(runs):
        result = subprocess.run(
            [str(python), "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in result.stderr.splitlines():
            fields = [field.strip() for field in line.split("|")]
            if len(fields) == 3 and fields[2] == module:
                cumulative.append(int(fields[1]))
    return {"modules": loaded, "importtime_us": statistics.median(cumulative)}


def main(argv: list[str] | None = None) -> int:
    """Build the venv, time the commands, print Markdown tables (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="totpcore-startup-") as directory:
        python, script = make_venv(Path(directory) / "venv")
        times = time_commands(commands(python, script), args.runs)
        profiles = {name: import_profile(python, name, args.runs) for name in ("totpcore", "pyotp")}
    bare = statistics.median(times["python -c pass"])
    global_bare = statistics.median(times["global site-packages: python -c pass"])
    summary = {
        name: {
            "median_ms": statistics.median(values) * 1000,
            "min_ms": min(values) * 1000,
            "over_bare_ms": (
                statistics.median(values) - (global_bare if name.startswith("global") else bare)
            )
            * 1000,
        }
        for name, values in times.items()
    }
    targets = start_up_targets(times)
    if args.json:
        print(json.dumps({"commands": summary, "imports": profiles, "targets": targets}, indent=2))
        return 0
    version = sysconfig.get_python_version()
    print(f"Python {sys.version.split()[0]} ({version}), {args.runs} runs of each command\n")
    rows = [
        [
            f"`{name}`",
            f"{row['median_ms']:.1f}",
            f"{row['min_ms']:.1f}",
            f"{row['over_bare_ms']:+.1f}",
        ]
        for name, row in summary.items()
    ]
    headings = ["command", "median ms", "fastest ms", "median over `python -c pass`, ms"]
    print(markdown(headings, rows))
    print()
    rows = [
        [f"`import {name}`", str(row["modules"]), f"{row['importtime_us'] / 1000:.1f}"]
        for name, row in profiles.items()
    ]
    print(markdown(["import", "modules loaded", "-X importtime cumulative, ms"], rows))
    print()
    rows = [
        [row["what"], f"<= {row['target']:.2f}x", f"{row['ratio']:.2f}x", row["verdict"]]
        for row in targets
    ]
    print(markdown(["target", "target", "measured (median of paired runs)", ""], rows))
    return 0


def measure_targets(runs: int) -> list[dict[str, Any]]:
    """Build a fresh environment, time the commands ``runs`` times, return the targets."""
    with tempfile.TemporaryDirectory(prefix="totpcore-startup-") as directory:
        python, script = make_venv(Path(directory) / "venv")
        return start_up_targets(time_commands(commands(python, script), runs))


def start_up_targets(times: dict[str, list[float]]) -> list[dict[str, Any]]:
    """The start-up targets, each as the median ratio of runs made back to back.

    The commands take turns, so run ``i`` of one and run ``i`` of another met the same moment
    of the machine; the median of those paired ratios is steadier than a ratio of medians.
    """
    code = next(name for name in times if name.startswith("totpcore code"))
    pairs = [
        ("`import totpcore` vs `import pyotp`", "python -c 'import totpcore'",
         "python -c 'import pyotp'", 1.0),
        ("`totpcore code --secret ...` vs `python -c 'import totpcore'`", code,
         "python -c 'import totpcore'", 1.5),
    ]  # fmt: skip
    rows = []
    for what, contender, floor, target in pairs:
        paired = zip(times[contender], times[floor], strict=True)
        ratio = statistics.median(a / b for a, b in paired)
        verdict = "met" if ratio <= target else "over"
        rows.append({"what": what, "target": target, "ratio": ratio, "verdict": verdict})
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
