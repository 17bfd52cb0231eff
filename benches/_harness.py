"""Interleaved timing shared by the benchmarks: rounds, rotating order, per-round ratios."""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from typing import Any


def interleaved(
    functions: dict[str, Callable[[], Any]], *, rounds: int, number: int
) -> dict[str, dict[str, float]]:
    """Time every function once per round, in an order that rotates from round to round.

    Each round's times are divided by the first function's time in that same round (the
    floor), so a slow moment of the machine affects numerator and denominator alike. Returns,
    per function, the median ratio and the median nanoseconds per call.
    """
    names = list(functions)
    ratios: dict[str, list[float]] = {name: [] for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        order = names[shift:] + names[:shift]
        elapsed = {name: timeit.timeit(functions[name], number=number) for name in order}
        for name in names:
            ratios[name].append(elapsed[name] / elapsed[names[0]])
            times[name].append(elapsed[name] / number * 1e9)
    return {
        name: {"ratio": statistics.median(ratios[name]), "ns": statistics.median(times[name])}
        for name in names
    }


def table(results: dict[str, dict[str, dict[str, float]]], *, floor_label: str) -> str:
    """Format grouped results as a Markdown table."""
    lines = [
        f"| operation | implementation | ratio to {floor_label} (median) | µs per call (median) |",
        "|---|---|---:|---:|",
    ]
    for group, rows in results.items():
        for name, row in rows.items():
            lines.append(f"| {group} | {name} | {row['ratio']:.2f}x | {row['ns'] / 1000:.2f} |")
    return "\n".join(lines)
