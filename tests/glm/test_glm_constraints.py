"""mio_glm with holistic constraints: exactness against a brute-force oracle over every feasible
support (both exact engines), early errors before any solve, the summary line."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio import (
    CorrelationLimit,
    Exclude,
    ForceInclude,
    GroupSparsity,
    JointClusterSelection,
    Robust,
    Significance,
    Transforms,
)
from mixmio.api.glm import mio_glm

sm = pytest.importorskip("statsmodels.api")

BASE = ["x0", "x1", "x2", "x3", "x4", "x5", "u"]
FORMULA = "y ~ " + " + ".join(BASE)
FORMS = {"I(u ** 2)": np.square, "np.sqrt(u)": np.sqrt, "np.log(u)": np.log}


def _data(seed: int = 2, n: int = 150) -> pd.DataFrame:
    """x0 and x5 (corr ~0.95) matter through their difference, x2 and x3 matter, x1 and x4
    are noise, the response is not monotone in u (u and u^2 together fit it)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 5)), columns=BASE[:5])
    df["x5"] = df.x0 + 0.3 * rng.normal(size=n)
    df["u"] = rng.uniform(0.1, 4.0, n)
    eta = 4 * (df.x5 - df.x0) + 0.8 * df.x2 - 1.0 * df.x3 + 4 * df.u - 1.2 * df.u ** 2 - 1.5
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df


DF = _data()


def _columns(df: pd.DataFrame, transforms: bool) -> dict[str, np.ndarray]:
    cols = {c: df[c].to_numpy(float) for c in BASE}
    if transforms:
        for name, f in FORMS.items():
            cols[name] = f(df["u"].to_numpy(float))
    return cols


def _nll(y: np.ndarray, X: np.ndarray) -> float:
    res = sm.Logit(y, X).fit(disp=0, method="newton", maxiter=100, tol=1e-12)
    return -float(res.llf)


_CACHE: dict = {}


def _oracle(k: int, *, force=(), exclude=(), group=(), rho=None, transforms=False
            ) -> dict[frozenset, float]:
    """Negative log-likelihood of every feasible support of at most k columns, each fitted by
    statsmodels; feasibility written out from the constraints' definitions."""
    key = (k, tuple(force), tuple(exclude), tuple(group), rho, transforms)
    if key in _CACHE:
        return _CACHE[key]
    cols = _columns(DF, transforms)
    names = list(cols)
    y = DF["y"].to_numpy(float)
    conflicts = []
    if rho is not None:
        R = np.corrcoef(np.column_stack([cols[c] for c in names]), rowvar=False)
        conflicts = [(names[i], names[j]) for i, j in zip(*np.nonzero(np.abs(R) > rho),
                                                          strict=True) if i < j]
    family = ["u", *FORMS] if transforms else []
    out = {}
    for r in range(k + 1):
        for S in itertools.combinations(names, r):
            s = set(S)
            if not set(force) <= s or s & set(exclude):
                continue
            if group and len(s & set(group)) not in (0, len(group)):
                continue
            if any(a in s and b in s for a, b in conflicts):
                continue
            if len(s & set(family)) > 1:
                continue
            X = np.column_stack([np.ones(len(y))] + [cols[c] for c in S])
            out[frozenset(S)] = _nll(y, X)
    _CACHE[key] = out
    return out


def _check(fit, table: dict[frozenset, float], force=(), exclude=()) -> None:
    best = min(table.values())
    S = frozenset(fit.selected)
    assert S in table, f"selected {sorted(S)} is not a feasible support"
    assert set(force) <= S and not S & set(exclude)
    assert fit.status == "optimal"
    assert fit.objective == pytest.approx(best, rel=1e-4)
    assert table[S] <= best * (1 + 2e-4)
    assert fit.best_bound <= best * (1 + 1e-9)        # a true lower bound


CASES = {
    "force": (3, dict(force=("x1",)), [ForceInclude("x1")]),
    "exclude": (3, dict(exclude=("x0", "x3")), [Exclude(["x0", "x3"])]),
    "group": (3, dict(group=("x2", "x4")), [GroupSparsity(["x2", "x4"])]),
    "correlation": (3, dict(rho=0.9), [CorrelationLimit(0.9)]),
    "transforms": (3, dict(transforms=True), [Transforms(["u"])]),
    "combined": (4, dict(force=("x1",), exclude=("x3",), group=("x2", "x4"), rho=0.9,
                         transforms=True),
                 [ForceInclude("x1"), Exclude("x3"), GroupSparsity(["x2", "x4"]),
                  CorrelationLimit(0.9), Transforms(["u"])]),
}


@pytest.mark.parametrize("solver", ["auto", "oa"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_brute_force_over_feasible_supports(case, solver):
    k, spec, cons = CASES[case]
    fit = mio_glm(FORMULA, DF, k=k, constraints=cons, solver=solver)
    table = _oracle(k, **spec)
    _check(fit, table, spec.get("force", ()), spec.get("exclude", ()))
    assert fit.constraints == tuple(cons)
    if solver == "auto":
        # the constraints bind: the unconstrained optimum is not feasible here
        free = mio_glm(FORMULA if not spec.get("transforms") else
                       FORMULA + " + I(u ** 2) + np.sqrt(u) + np.log(u)", DF, k=k)
        assert free.status == "optimal"   # also with the four collinear forms of u
        assert frozenset(free.selected) not in table
        assert free.objective < fit.objective


def test_heuristic_and_cold_start_only_offer_feasible_supports():
    k, spec, cons = CASES["combined"]
    table = _oracle(k, **spec)
    heur = mio_glm(FORMULA, DF, k=k, constraints=cons, solver="heuristic")
    assert frozenset(heur.selected) in table
    cold = mio_glm(FORMULA, DF, k=k, constraints=cons, warm_start=False)
    _check(cold, table, spec["force"], spec["exclude"])


def test_k_none_uses_k_max_and_forced_units_fill_the_cap():
    fit = mio_glm(FORMULA, DF, k=None, constraints=[CorrelationLimit(0.9)])
    assert fit.k == fit.k_max == len(BASE) - 1
    assert not {"x0", "x5"} <= set(fit.selected)
    # forcing k columns leaves one feasible support
    full = mio_glm(FORMULA, DF, k=2, constraints=[ForceInclude(["x1", "x4"])], solver="oa")
    assert sorted(full.selected) == ["x1", "x4"] and full.status == "optimal"
    assert full.objective == pytest.approx(min(_oracle(2, force=("x1", "x4")).values()),
                                           rel=1e-6)


@pytest.fixture
def no_solve(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the solver was called")

    monkeypatch.setattr("mixmio.api.glm.solve_glm", boom)


@pytest.mark.parametrize("cons, k, err, match", [
    ([ForceInclude(["x0", "x1", "x2"])], 2, ValueError, "count toward k"),
    ([ForceInclude("x1"), Exclude("x1")], 3, ValueError, "forced in and excluded"),
    ([ForceInclude("x2"), Exclude("x4"), GroupSparsity(["x2", "x4"])], 3, ValueError,
     "conflict through"),
    ([ForceInclude(["x0", "x5"]), CorrelationLimit(0.9)], 3, ValueError, "correlation"),
    ([Transforms(["u"]), ForceInclude(["u", "np.log(u)"])], 3, ValueError,
     "at most one form"),
    ([CorrelationLimit(0.9)], 7, ValueError, "exceeds k_max"),
    ([ForceInclude("nope")], 3, KeyError, "names no fixed-effect column"),
    ([Exclude("zz")], 3, KeyError, "names no fixed-effect column"),
    ([Robust(gamma=0.5)], 3, ValueError, r"Robust\(gamma=0.5\) is not supported by mio_glm"),
    ([Significance(B=20)], 3, ValueError, "Significance.* is not supported by mio_glm"),
    ([JointClusterSelection("g")], 3, ValueError,
     "JointClusterSelection.* is not supported by mio_glm: it ties random-effect"),
    ([ForceInclude(clusters={"g": ["a"]})], 3, ValueError, "clusters are random-effect"),
    (["x1"], 3, TypeError, "constraint objects"),
])
def test_bad_constraints_raise_before_any_solve(no_solve, cons, k, err, match):
    with pytest.raises(err, match=match):
        mio_glm(FORMULA, DF, k=k, constraints=cons)


def test_no_solve_fixture_bites(no_solve):
    with pytest.raises(AssertionError, match="solver was called"):
        mio_glm(FORMULA, DF, k=2, constraints=[ForceInclude("x1")])


def test_summary_lists_the_constraints_and_the_bootstrap_keeps_them():
    cons = [ForceInclude("x1"), CorrelationLimit(0.9)]
    fit = mixmio.mio_glm(FORMULA, DF, k=3, constraints=cons)
    text = str(fit.summary())
    assert "Constraints: ForceInclude(['x1']), CorrelationLimit(rho=0.9)" in text.splitlines()
    assert "Constraints:" not in str(mio_glm(FORMULA, DF, k=3).summary())
    assert fit.k_max is not None and f"k_max {fit.k_max} under the constraints" in text
    assert "k_max" not in str(mio_glm(FORMULA, DF, k=3).summary())
    assert fit.summary()["model"].loc["k (cap)", "value"] == 3  # the value stays the cap
    pr = fit.problem
    assert pr.rows and pr.forced  # both kinds of constraint are live in this fit
    boot = fit.bootstrap(B=12, random_state=0)
    assert boot.n_ok == 12
    assert boot.selection_frequency["x1"] == 1.0  # forced in every replicate
    draws = boot.draws[boot.ok]
    for ru, rc, rhs in pr.rows:  # every replicate's selection meets every packing row
        for w in draws:
            used = [float(c) for u, c in zip(ru, rc, strict=True)
                    if np.any(np.nan_to_num(w[pr.units[int(u)]]) != 0)]
            assert sum(used) <= rhs + 1e-9


def test_single_constraint_object_and_problem_rows():
    fit = mio_glm(FORMULA, DF, k=3, constraints=ForceInclude("x4"))
    assert "x4" in fit.selected
    pr = mio_glm(FORMULA, DF, k=3, constraints=[Exclude("x0"), GroupSparsity(["x2", "x4"]),
                                                CorrelationLimit(0.9)]).problem
    names = [[pr.names[j] for j in u] for u in pr.units]
    assert ["x2", "x4"] in names and not any("x0" in u for u in names)
    # x0 is out, so its correlation row with x5 is dropped as met by every selection
    assert pr.rows == () and pr.forced == ()
    assert pr.prune([], range(len(pr.units))) == tuple(range(len(pr.units)))
