"""No solver banner reaches stdout (issue 17): HiGHS's banner from mio_glm / mio_clr and
Gurobi's licence line are silenced at the source (mixmio._runtime)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import warnings
    import numpy as np, pandas as pd, mixmio
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
    which = {which!r}
    if which == "glm":
        df["y"] = (df.a + rng.normal(size=60) > 0).astype(int)
        mixmio.mio_glm("y ~ a + b + c", df, k=1)
    elif which == "clr":
        df["y"] = df.a * np.where(rng.random(60) < .5, 1, -1) + rng.normal(size=60) * .1
        mixmio.mio_clr("y ~ a", df, n_clusters=2)
    else:
        d = mixmio.datasets.load("sleepstudy")
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", d, k=3, solver="GUROBI")
""")


@pytest.mark.parametrize("which", ["glm", "clr", "gurobi"])
def test_nothing_on_stdout(which):
    if which == "gurobi":
        from mixmio.solvers import installed_solvers

        if "GUROBI" not in installed_solvers():
            pytest.skip("gurobipy not usable here")
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(which=which)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == ""
