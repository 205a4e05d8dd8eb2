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


def make_intercept_frame(K: int, rows: int, p: int, frac: float = 0.1, effect: float = 2.0,
                         sigma: float = 1.0, random_state: int = 0) -> pd.DataFrame:
    """Random-intercept data: y, x1..x{p-1} ~ N(0, 1), cluster g with ``rows`` rows each;
    round(frac K) clusters deviate by +-effect*sigma; noise sd sigma."""
    import numpy as np

    rng = np.random.default_rng(random_state)
    g = np.repeat(np.arange(K), rows)
    n = g.size
    X = rng.normal(size=(n, p - 1))
    beta = rng.normal(size=p)
    gamma = np.zeros(K)
    dev = rng.choice(K, size=int(round(frac * K)), replace=False)
    gamma[dev] = effect * sigma * rng.choice([-1.0, 1.0], size=dev.size)
    y = beta[0] + X @ beta[1:] + gamma[g] + sigma * rng.normal(size=n)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(1, p)])
    df["g"] = g
    df["y"] = y
    return df


def intercept_formula(p: int) -> str:
    return "y ~ " + " + ".join(f"x{j}" for j in range(1, p)) + " + (1 | g)"
