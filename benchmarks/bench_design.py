"""Design build time and peak memory: InstEval and a synthetic n = 10^6, K = 10^4 case.

Each case runs in a fresh subprocess so that peak RSS belongs to that case alone.
Writes benchmarks/results/design.md and design.csv.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from _common import write_tables

CASES = {
    "InstEval: y ~ service + (1 | s) + (1 | d)": "insteval",
    "synthetic n=1e6, K=1e4: y ~ x1 + x2 + (1 + x1 | g)": "synthetic",
}

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, "benchmarks")
import numpy as np, pandas as pd
from _common import load_insteval, timed
from mixmio import build_design
case = sys.argv[1]
if case == "insteval":
    data, formula = load_insteval(), "y ~ service + (1 | s) + (1 | d)"
else:
    rng = np.random.default_rng(0)
    n, K = 1_000_000, 10_000
    data = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                         "g": rng.integers(0, K, n)})
    data["y"] = data.x1 + rng.normal(size=n)
    formula = "y ~ x1 + x2 + (1 + x1 | g)"
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, d = timed(lambda: build_design(formula, data), repeats=3)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
z_bytes = d.Z.data.nbytes + d.Z.indices.nbytes + d.Z.indptr.nbytes
print(json.dumps(dict(n=d.n_obs, p=d.X.shape[1], z_cols=d.Z.shape[1], nnz=int(d.Z.nnz),
                      seconds=t, data_mib=base / 1024, peak_mib=peak / 1024,
                      z_mib=z_bytes / 2**20)))
"""


def main() -> None:
    rows = []
    for label, case in CASES.items():
        out = subprocess.run([sys.executable, "-c", CHILD, case], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append({"case": label, "n": r["n"], "p": r["p"], "Z columns": r["z_cols"],
                     "Z non-zeros": r["nnz"], "build s (median of 3)": round(r["seconds"], 3),
                     "Z MiB": round(r["z_mib"], 1),
                     "RSS before build MiB": round(r["data_mib"], 0),
                     "peak RSS MiB": round(r["peak_mib"], 0)})
    table = pd.DataFrame(rows)
    path = write_tables("design", table, "Design build time and memory",
                        "Peak RSS is the whole process (Python, libraries, the data frame and the "
                        "design); 'RSS before build' is after loading the data.")
    print(path.read_text())


if __name__ == "__main__":
    main()
