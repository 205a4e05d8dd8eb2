"""Solve times of mixmio.solvers.glmer.scip.solve_scip (not a test; run by hand):

    .venv/bin/python -m tests.glmer._bench_scip [repeats]

(a) NY HAI, SSI Hysterectomy 2016 (122 compared hospitals), Poisson, offset log(predicted),
    (1 | hospital), k = 4; (b) a slope model (1 + x | g), 50 clusters x 10 rows, caps 3 / 3,
    both families.  The ridge is mio_glmer's auto ridge.  Median of ``repeats`` solves.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

NY = (Path(__file__).resolve().parents[3] / "shared/data"
      / "NY_HAI_Beginning_2008_through2016_HemoSource.csv")


def _num(s):
    return pd.to_numeric(s.astype(str).str.replace(",", ""), errors="coerce")


def ny_problem(k: int = 4):
    from mixmio import build_design
    from mixmio.api._glmer import glmer_auto_ridge
    from mixmio.problem.build import build_problem
    from mixmio.problem.glmer import GlmmProblem

    raw = pd.read_csv(NY, encoding="utf-8-sig")
    d = raw[(raw["Indicator Name"] == "SSI Hysterectomy") & (raw["Year"] == 2016)
            & (raw["Facility ID"] != 0)]
    d = d[~d["Comparison Results"].astype(str).str.startswith("Not compared")]
    df = pd.DataFrame({"obs": _num(d["Infections Observed"]).to_numpy(float),
                       "pred": _num(d["Infections Predicted"]).to_numpy(float),
                       "hosp": d["Facility ID"].astype(str).to_numpy(),
                       "flag": d["Comparison Results"].astype(str).to_numpy()})
    design = build_design("obs ~ 1 + offset(np.log(pred)) + (1 | hosp)", df)
    X = design.X.to_numpy(float)
    w = np.ones(len(df))
    ridge = glmer_auto_ridge("poisson", X, design.Z, design.y, w, design.offset)
    base = build_problem(design, k, ridge=ridge)
    return GlmmProblem(base, "poisson", np.asarray(design.y, float), w,
                       np.asarray(design.offset, float)), df


def slope_problem(family: str, seed: int = 0):
    from mixmio.api._glmer import glmer_auto_ridge

    from ._oracle import small_problem

    pr = small_problem(family, "y ~ x + (1 + x | g)", 50, 10, {"1|g": 3, "x|g": 3}, seed)
    ridge = glmer_auto_ridge(family, pr.X, pr.Z, pr.y, pr.weights, pr.offset)
    return small_problem(family, "y ~ x + (1 + x | g)", 50, 10, {"1|g": 3, "x|g": 3}, seed,
                         ridge=ridge)


def main(repeats: int = 3, time_limit: float = 600.0) -> None:
    from mixmio.solvers.glmer.scip import solve_scip

    warnings.simplefilter("ignore")
    cases = [("NY HAI hysterectomy 2016, k=4", ny_problem()[0])]
    for fam in ("poisson", "binomial"):
        cases.append((f"(1 + x | g) 50x10 caps 3/3 {fam}", slope_problem(fam)))
    for name, pr in cases:
        times, sol = [], None
        for _ in range(repeats):
            t = time.perf_counter()
            sol = solve_scip(pr, time_limit=time_limit)
            times.append(time.perf_counter() - t)
        print(f"{name}: ridge {pr.ridge:.3g}, median {np.median(times):.2f} s "
              f"(runs {', '.join(f'{x:.2f}' for x in times)}), status {sol.status}, "
              f"gap {sol.gap:.2e}, objective {sol.objective:.6f}, nodes {sol.nodes}, "
              f"start {sol.info.get('start_value')}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3,
         float(sys.argv[2]) if len(sys.argv) > 2 else 600.0)
