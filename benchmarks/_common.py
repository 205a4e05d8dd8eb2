"""Shared helpers for benchmark scripts: timing medians and writing result tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).parent / "data"


def timed(fn, repeats: int = 3):
    """(median seconds, last result) over ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
           f"Python {platform.python_version()}"


def write_tables(name: str, table: pd.DataFrame, title: str, notes: str = "") -> Path:
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / f"{name}.csv", index=False)
    md = RESULTS / f"{name}.md"
    shown = table.map(lambda v: v.replace("|", "\\|") if isinstance(v, str) else v)
    md.write_text(f"# {title}\n\nMachine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.\n\n"
                  + shown.to_markdown(index=False) + "\n" + (f"\n{notes}\n" if notes else ""))
    return md


def load_insteval() -> pd.DataFrame:
    return pd.read_csv(DATA / "InstEval.csv.gz")
