"""Optional dependencies (pyproject's extras): without one, the feature that needs it raises
MissingDependencyError naming the pip command, and everything else still runs.  The modules are
hidden here (sys.modules[name] = None makes ``import name`` fail); ``make check-core`` runs the
same checks in a venv that really lacks them (tests/core_only.py)."""

import importlib
import sys

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.errors import MissingDependencyError
from mixmio.solvers import engines


@pytest.fixture
def hide(monkeypatch):
    def hide(*modules):
        for m in list(sys.modules):
            if any(m == h or m.startswith(h + ".") for h in modules):
                monkeypatch.delitem(sys.modules, m)
        for h in modules:
            monkeypatch.setitem(sys.modules, h, None)
        engines._cvxpy_miqp.cache_clear()

    yield hide
    engines._cvxpy_miqp.cache_clear()


@pytest.fixture(scope="module")
def sleep():
    return mixmio.datasets.load("sleepstudy")


def test_named_cvxpy_solver_without_the_scip_extra(hide, sleep):
    hide("cvxpy", "pyscipopt")
    with pytest.raises(MissingDependencyError, match=r"pip install 'mixmio\[scip\]'"):
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=2, solver="SCIP")
    with pytest.raises(MissingDependencyError, match=r"pip install 'mixmio\[gurobi\]'"):
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=2, solver="GUROBI")


def test_default_fits_need_no_extra(hide, sleep):
    hide("cvxpy", "pyscipopt", "gurobipy", "sklearn")
    fit = mixmio.mio_lmer("Reaction ~ Days + (Days | Subject)", sleep, k=2)
    assert fit.status == "optimal" and fit.solver.startswith("mixmio-bnb")
    assert mixmio.mio_lm("Reaction ~ Days", sleep, k=1).status == "optimal"


def test_a_preference_is_not_a_limitation(hide):
    # small crossed models prefer a MIQP solver; without one the crossed engine takes them
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 6, 120), rng.integers(0, 5, 120)
    d = pd.DataFrame({"a": a, "b": b, "x": rng.normal(size=120)})
    d["y"] = d.x + np.where(a == 0, 3.0, 0.0) + rng.normal(size=120)
    with_scip = mixmio.mio_lmer("y ~ x + (1 | a) + (1 | b)", d, k=1)
    assert not with_scip.solver.startswith("mixmio")  # the preference, with SCIP installed
    hide("cvxpy", "pyscipopt")
    fit = mixmio.mio_lmer("y ~ x + (1 | a) + (1 | b)", d, k=1)
    assert fit.solver.startswith("mixmio-bnb")
    assert fit.status == with_scip.status == "optimal"
    assert fit.objective == pytest.approx(with_scip.objective, rel=1e-4)


def test_model_only_cvxpy_solves_names_the_extra(hide, sleep):
    hide("cvxpy", "pyscipopt")
    # a cap on the fixed effects beside the cluster cap: no engine of mixmio's covers it
    with pytest.raises(MissingDependencyError, match=r"pip install 'mixmio\[scip\]'"):
        mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=2, k_fixed=1)


def test_estimator_and_trees_name_the_sklearn_extra(hide, sleep, monkeypatch):
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=2)
    hide("sklearn")
    # a fresh import of the estimator's module (monkeypatch puts the loaded one back after)
    monkeypatch.delitem(sys.modules, "mixmio.sklearn", raising=False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'mixmio\[sklearn\]'"):
        importlib.import_module("mixmio.sklearn")
    new = sleep.assign(Subject="new")
    with pytest.raises(MissingDependencyError, match=r"pip install 'mixmio\[sklearn\]'"):
        fit.predict(new, new_levels="soft")
    assert np.isfinite(fit.predict(new, new_levels="population")).all()


def test_glmer_beyond_the_engine_names_the_scip_extra(hide):
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"g": np.repeat(np.arange(8), 15), "x": rng.normal(size=120)})
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-d.x)))
    hide("pyscipopt")
    with pytest.raises(MissingDependencyError, match=r"pip install 'mixmio\[scip\]'"):
        mixmio.mio_glmer("y ~ x + (x | g)", d, k=2)
