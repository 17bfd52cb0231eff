"""Interleaved timing shared by the benchmarks: rounds, rotating order, per-round ratios.

The timing itself lives in :mod:`totpcore._bench`, which ``totpcore bench`` uses too, so that
the scripts here and the command a user runs measure the same way; this module adds the
Markdown tables the scripts print.
"""

from __future__ import annotations

from totpcore._bench import Timing, interleaved, percentiles

__all__ = ["Timing", "interleaved", "markdown", "percentiles", "table"]


def table(results: dict[str, dict[str, Timing]], *, floor_label: str) -> str:
    """Format grouped results as a Markdown table."""
    lines = [
        f"| operation | implementation | ratio to {floor_label} (median) | µs per call (median) |",
        "|---|---|---:|---:|",
    ]
    for group, rows in results.items():
        for name, row in rows.items():
            lines.append(f"| {group} | {name} | {row['ratio']:.2f}x | {row['ns'] / 1000:.2f} |")
    return "\n".join(lines)


def markdown(headings: list[str], rows: list[list[str]], *, right: int = 1) -> str:
    """A Markdown table; every column from ``right`` on is right-aligned (numbers)."""
    align = ["---" if index < right else "---:" for index in range(len(headings))]
    lines = ["| " + " | ".join(headings) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
