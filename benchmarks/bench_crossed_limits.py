"""Crossed engine: does a longer time limit ever give a larger final gap? (issue 18)

The crossed engine ``(1 | a) + (1 | b)`` enumerates the maximal supports of the term with
fewer of them and bounds the other term by the intercept branch and bound.  It used to split
the time left evenly across the supports, so one slow sub-search "timed out" at its share and
set a weak global bound while most of the limit was unused; a longer limit could end with a
larger gap.  Now the weakest open support is searched again with a doubled budget while time
remains (``_engine_crossed._enumerate_supports``).

Families (random instances of ``tests/solvers/test_engine_crossed.make_crossed``):

- A: about 200 levels per term, caps 1 / 1, 800-3,000 rows, effects 0.3-1.5 sigma (the
  issue's family);
- B: 40 x 300 levels, caps 1 / 30, 5 rows per level of the large term, 10% of it deviating
  by 0.5 sigma (weak signal, small clusters in the branch-and-bound term);
- C: 30 x 30 levels, caps 3 / 3, 4 fixed columns: no enumeration, no cover (the relaxations
  that drop one cap; ``gap_limit`` when time is left).

Each instance runs at every limit in ``--limits`` with the current engine and, side by side,
with the previous engine (the even split, loaded from git ``--old-rev``).  Writes
``results/crossed_limits.{md,csv}``.  Run: ``python benchmarks/bench_crossed_limits.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
import mixmio.solvers.lmm.crossed as current  # noqa: E402
from _common import write_tables  # noqa: E402
from mixmio.solvers import solve_engine  # noqa: E402
from tests.solvers.test_engine_crossed import make_crossed  # noqa: E402


def instance(family: str, seed: int):
    rng = np.random.default_rng(seed)
    if family == "A":
        Ka, Kb = int(rng.integers(150, 250)), int(rng.integers(150, 250))
        return make_crossed(Ka, Kb, int(rng.integers(800, 3000)), 2, 1, 1,
                            effect=float(rng.uniform(0.3, 1.5)), seed=seed)
    if family == "B":
        return make_crossed(300, 40, 1500, 2, 30, 1, effect=0.5, frac=0.1, seed=seed)
    return make_crossed(30, 30, 400, 4, 3, 3, seed=seed)


def old_module(rev: str):
    """The crossed engine as of ``rev`` (a module object), or None if git cannot show it."""
    try:
        src = subprocess.run(["git", "show", f"{rev}:mixmio/solvers/lmm/crossed.py"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "_engine_crossed_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("mixmio.solvers._engine_crossed_old", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(pr, limit: float, module) -> dict:
    saved = current.solve_crossed
    current.solve_crossed = module.solve_crossed  # intercept_engine imports it at call time
    try:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sol = solve_engine(pr, time_limit=limit)
        return {"status": sol.status, "gap": float(sol.gap),
                "seconds": time.perf_counter() - t0}
    finally:
        current.solve_crossed = saved


def _n_optimal(statuses: pd.Series) -> int:
    return int((statuses == "optimal").sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", default="1,4,16")
    ap.add_argument("--seeds", type=int, default=20, help="instances per family")
    ap.add_argument("--families", default="A,B,C")
    ap.add_argument("--old-rev", default="fc0e399")
    args = ap.parse_args()
    limits = [float(v) for v in args.limits.split(",")]
    engines = {"current": current}
    old = old_module(args.old_rev)
    if old is not None:
        engines[f"even split ({args.old_rev})"] = old
    rows = []
    for fam in args.families.split(","):
        for seed in range(args.seeds):
            pr = instance(fam, seed)
            for name, mod in engines.items():
                row = {"family": fam, "seed": seed, "engine": name}
                for lim in limits:
                    r = run(pr, lim, mod)
                    row[f"status@{lim:g}"] = r["status"]
                    row[f"gap@{lim:g}"] = r["gap"]
                    row[f"s@{lim:g}"] = round(r["seconds"], 2)
                gaps = [row[f"gap@{lim:g}"] for lim in limits]
                row["gap grows with the limit"] = any(
                    b > a * (1 + 1e-6) + 1e-9 for a, b in zip(gaps, gaps[1:], strict=False))
                stops = [lim for lim in limits if row[f"status@{lim:g}"] == "time_limit"
                         and row[f"s@{lim:g}"] < 0.9 * lim]
                row["early time_limit stops"] = len(stops)
                rows.append(row)
                print(row, flush=True)
    df = pd.DataFrame(rows)
    summary = (df.groupby(["family", "engine"])
               .agg(instances=("seed", "size"),
                    gap_grows=("gap grows with the limit", "sum"),
                    early_stops=("early time_limit stops", "sum"),
                    **{f"optimal@{lim:g}": (f"status@{lim:g}", _n_optimal) for lim in limits},
                    **{f"max gap@{lim:g}": (f"gap@{lim:g}", "max") for lim in limits})
               .reset_index())
    notes = ("Instances where the final gap is larger at a longer limit (`gap_grows`) and runs "
             "that report `time_limit` before using 90% of the limit (`early_stops`, counted "
             "over all limits). Per-instance rows: `results/crossed_limits_runs.csv`. Command: "
             f"`python benchmarks/bench_crossed_limits.py {' '.join(sys.argv[1:])}`. The 2-core "
             "machine was shared with other jobs, so times are noisy.")
    df.to_csv(Path(__file__).parent / "results" / "crossed_limits_runs.csv", index=False)
    write_tables("crossed_limits", summary, "Crossed engine: final gap against the time limit "
                 "(issue 18)", notes)
    print(summary.to_string())


if __name__ == "__main__":
    main()
