"""mio_glm: exactness against enumeration, agreement with statsmodels, honest statuses,
early errors."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from mixmio.api.glm import mio_glm
from mixmio.results.glm import MioGlmResult
from mixmio.solvers.glm.logistic import SeparationError

sm = pytest.importorskip("statsmodels.api")


def _data(n: int, p: int, seed: int, k_true: int = 3, scale: float = 1.0,
          factor: bool = False) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.zeros(p)
    beta[rng.choice(p, k_true, replace=False)] = rng.choice([-1.0, 1.0], k_true) * scale
    eta = X @ beta + 0.3
    cols = [f"x{j}" for j in range(p)]
    df = pd.DataFrame(X, columns=cols)
    if factor:
        df["g"] = rng.choice(["a", "b", "c"], n)
        eta = eta + np.where(df["g"] == "c", 0.8, 0.0)
        cols = cols + ["g"]
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df, "y ~ " + " + ".join(cols)


def _sm_nll(y: np.ndarray, X: np.ndarray) -> float:
    """Negative log-likelihood of statsmodels' Logit MLE on the columns of X (the oracle)."""
    res = sm.Logit(y, X).fit(disp=0, method="newton", maxiter=100, tol=1e-12)
    return -float(res.llf)


def _brute_force(df: pd.DataFrame, k: int) -> tuple[float, set[str]]:
    """Enumerate every support of at most k columns (a factor's dummies as one unit of
    their number) and fit each with statsmodels."""
    y = df["y"].to_numpy(float)
    units = {c: df[[c]].to_numpy(float) for c in df.columns if c.startswith("x")}
    if "g" in df.columns:
        units["g"] = np.column_stack([(df["g"] == "b"), (df["g"] == "c")]).astype(float)
    best, best_set = np.inf, set()
    names = list(units)
    for r in range(k + 1):
        for S in itertools.combinations(names, r):
            if sum(units[u].shape[1] for u in S) > k:
                continue
            X = np.column_stack([np.ones(len(y))] + [units[u] for u in S])
            v = _sm_nll(y, X)
            if v < best:
                best, best_set = v, set(S)
    return best, best_set


def _units(fit: MioGlmResult) -> set[str]:
    return {"g" if s.startswith("g[") else s for s in fit.selected}


@pytest.mark.parametrize("solver", ["auto", "oa"])
@pytest.mark.parametrize("seed,p,k,factor", [(0, 6, 2, False), (1, 7, 3, False),
                                             (2, 8, 3, False), (3, 8, 4, False),
                                             (4, 6, 3, True)])
def test_matches_brute_force(seed, p, k, factor, solver):
    df, formula = _data(120, p, seed, scale=0.8, factor=factor)
    fit = mio_glm(formula, df, k=k, solver=solver, mip_gap=1e-6)
    best, best_set = _brute_force(df, k)
    assert fit.status == "optimal"
    assert fit.objective == pytest.approx(best, rel=1e-6)
    assert fit.best_bound <= best + 1e-6 * abs(best)   # the certificate is a true lower bound
    assert _units(fit) == best_set
    assert fit.gap <= 1e-6


def test_full_model_equals_statsmodels():
    df, formula = _data(200, 6, 11)
    fit = mio_glm(formula, df, k=6)
    X = np.column_stack([np.ones(len(df)), df[[f"x{j}" for j in range(6)]].to_numpy()])
    ref = sm.Logit(df["y"].to_numpy(float), X).fit(disp=0, method="newton", tol=1e-12)
    assert fit.status == "optimal"
    np.testing.assert_allclose(fit.params.to_numpy(), ref.params, rtol=1e-6, atol=1e-8)
    tab = fit.to_frame()
    np.testing.assert_allclose(tab["std_err"].to_numpy(), ref.bse, rtol=1e-5)
    np.testing.assert_allclose(tab["p_value"].to_numpy(), ref.pvalues, rtol=1e-4, atol=1e-12)
    assert fit.loglik == pytest.approx(ref.llf, rel=1e-9)
    assert fit.aic == pytest.approx(ref.aic, rel=1e-9)
    assert fit.null_deviance == pytest.approx(-2 * ref.llnull, rel=1e-9)
    np.testing.assert_allclose(fit.predict(df.head(5)), ref.predict(X[:5]), rtol=1e-6)


def test_k_none_is_full_model_and_offset_matches_statsmodels():
    df, _ = _data(150, 3, 12)
    df["o"] = np.linspace(-0.5, 0.5, len(df))
    fit = mio_glm("y ~ x0 + x1 + x2 + offset(o)", df, k=None)
    X = np.column_stack([np.ones(len(df)), df[["x0", "x1", "x2"]].to_numpy()])
    ref = sm.GLM(df["y"].to_numpy(float), X, family=sm.families.Binomial(),
                 offset=df["o"].to_numpy()).fit(tol=1e-12)
    np.testing.assert_allclose(fit.params.to_numpy(), ref.params, rtol=1e-6)
    assert fit.deviance == pytest.approx(ref.deviance, rel=1e-8)


def test_k_zero_is_intercept_only_closed_form():
    df, formula = _data(90, 5, 13)
    fit = mio_glm(formula, df, k=0)
    ybar = df["y"].mean()
    assert fit.status == "optimal" and fit.selected == []
    assert fit.params["Intercept"] == pytest.approx(np.log(ybar / (1 - ybar)), abs=1e-8)
    n1 = df["y"].sum()
    n0 = len(df) - n1
    assert fit.objective == pytest.approx(-(n1 * np.log(ybar) + n0 * np.log(1 - ybar)),
                                          rel=1e-10)
    assert (fit.params.drop("Intercept") == 0).all()


def test_time_limit_is_honest():
    df, formula = _data(400, 40, 5, k_true=8, scale=0.3)
    with pytest.warns(RuntimeWarning, match="time limit"):
        fit = mio_glm(formula, df, k=8, time_limit=0.05, random_state=0)
    assert fit.status == "time_limit"
    assert fit.gap > fit.mip_gap
    assert fit.best_bound < fit.objective
    assert len(fit.selected) <= 8
    assert "time_limit" in str(fit.summary()) and "NOTE: not proven optimal" in str(
        fit.summary())


def test_heuristic_is_labelled():
    df, formula = _data(150, 8, 6)
    fit = mio_glm(formula, df, k=3, solver="heuristic", random_state=1)
    exact = mio_glm(formula, df, k=3)
    assert fit.status == "heuristic" and fit.best_bound == 0.0 and fit.solver == "heuristic"
    assert fit.objective >= exact.objective - 1e-9
    assert exact.best_bound <= fit.objective


def test_warm_start_off_gives_same_optimum():
    df, formula = _data(150, 8, 7)
    a = mio_glm(formula, df, k=3, warm_start=False)
    b = mio_glm(formula, df, k=3)
    assert a.status == b.status == "optimal"
    assert a.objective == pytest.approx(b.objective, rel=1e-8)


def test_response_encodings_and_result_api():
    df, formula = _data(150, 4, 8)
    df["yes"] = np.where(df["y"] == 1, "yes", "no")
    df["flag"] = df["y"].astype(bool)
    df["cat"] = pd.Categorical(np.where(df["y"] == 1, "sick", "well"),
                               categories=["well", "sick"])
    rhs = formula.split("~")[1]
    ref = mio_glm(formula, df, k=2)
    for resp, levels in [("yes", ("no", "yes")), ("flag", None), ("cat", ("well", "sick"))]:
        fit = mio_glm(f"{resp} ~{rhs}", df, k=2)
        assert fit.response_levels == levels
        np.testing.assert_allclose(fit.params, ref.params, rtol=1e-6, atol=1e-8)
    text = str(mio_glm(f"cat ~{rhs}", df, k=2).summary())
    assert "'sick' = 1, 'well' = 0" in text
    for token in ("coef", "std err", "P>|z|", "[0.025", "Deviance:", "AIC:", "Log-likelihood:",
                  "Status: optimal", "Best bound:", "Solver:", "Time (s):"):
        assert token in text
    assert "MioGlmResult(" in repr(ref) and "status='optimal'" in repr(ref)
    eta = ref.predict(df.head(3), type="link")
    np.testing.assert_allclose(ref.predict(df.head(3)), 1 / (1 + np.exp(-eta)))
    assert set(ref.to_frame().columns) >= {"estimate", "std_err", "z", "p_value", "ci_lower",
                                           "ci_upper", "selected"}
    assert ref.coef is not None and list(ref.params.index)[0] == "Intercept"


def test_na_handling():
    df, formula = _data(100, 4, 9)
    df.loc[[3, 7], "x1"] = np.nan
    fit = mio_glm(formula, df, k=2)
    assert fit.design.n_dropped == 2 and fit.n_obs == 98
    with pytest.raises(ValueError, match="missing values"):
        mio_glm(formula, df, k=2, na_action="raise")


def test_errors_before_any_solve():
    df, formula = _data(60, 4, 10)
    rhs = formula.split("~")[1]
    bad = df.assign(y=df["y"] * 2)
    with pytest.raises(ValueError, match="must be binary"):
        mio_glm(formula, bad, k=2)
    with pytest.raises(ValueError, match="3 level"):
        mio_glm(f"t ~{rhs}", df.assign(t=np.resize(["a", "b", "c"], len(df))), k=2)
    with pytest.raises(ValueError, match="both classes"):
        mio_glm(formula, df.assign(y=1), k=2)
    with pytest.raises(ValueError, match="outside 0..4"):
        mio_glm(formula, df, k=5)
    with pytest.raises(ValueError, match="outside 0..4"):
        mio_glm(formula, df, k=-1)
    with pytest.raises(TypeError, match="k must be an integer"):
        mio_glm(formula, df, k=1.5)
    with pytest.raises(KeyError, match="not in the data"):
        mio_glm("y ~ x0 + nope", df, k=1)
    with pytest.raises(ValueError, match="solver"):
        mio_glm(formula, df, k=1, solver="cplex")
    with pytest.raises(ValueError, match="family"):
        mio_glm(formula, df, k=1, family="poisson")
    with pytest.raises(ValueError, match="random-effect"):
        mio_glm("y ~ x0 + (1 | x1)", df, k=1)
    with pytest.raises(ValueError, match="ridge"):
        mio_glm(formula, df, k=1, ridge=-1.0)
    with pytest.raises(ValueError, match="time_limit"):
        mio_glm(formula, df, k=1, time_limit=0)


def test_separation_is_detected_and_ridge_fixes_it():
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    df["y"] = (df["a"] > 0).astype(int)             # a separates the classes
    with pytest.raises(SeparationError, match="separated") as err:
        mio_glm("y ~ a + b + c", df, k=1)
    assert "a" in err.value.columns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = mio_glm("y ~ a + b + c", df, k=1, ridge="auto")
    assert fit.status == "optimal" and fit.selected == ["a"] and fit.ridge > 0
    assert "ridge-penalised" in str(fit.summary())


def test_ridge_matches_penalised_enumeration():
    from scipy.optimize import minimize

    df, formula = _data(80, 6, 14, scale=0.8)
    ridge = 2.0
    fit = mio_glm(formula, df, k=2, ridge=ridge, mip_gap=1e-7)
    y = df["y"].to_numpy(float)
    names = [f"x{j}" for j in range(6)]

    def penalised(S):
        X = np.column_stack([np.ones(len(y))] + [df[c].to_numpy() for c in S])

        def f(b):
            eta = X @ b
            return np.sum(np.logaddexp(0, eta) - y * eta) + 0.5 * ridge * np.sum(b[1:] ** 2)

        return minimize(f, np.zeros(X.shape[1]), method="BFGS", options={"gtol": 1e-10}).fun

    vals = {S: penalised(S) for r in range(3) for S in itertools.combinations(names, r)}
    best = min(vals, key=vals.get)
    assert fit.status == "optimal" and fit.ridge == ridge
    assert fit.objective == pytest.approx(vals[best], rel=1e-7)
    assert set(fit.selected) == set(best)


def test_oa_time_limit_is_honest():
    df, formula = _data(400, 40, 5, k_true=8, scale=0.3)
    with pytest.warns(RuntimeWarning, match="time limit"):
        fit = mio_glm(formula, df, k=8, solver="oa", time_limit=0.3, random_state=0)
    assert fit.status == "time_limit" and fit.solver == "mixmio-oa-highs"
    assert fit.best_bound < fit.objective and fit.gap > fit.mip_gap


def test_coefficient_bounds_contain_every_support_fit_below_the_incumbent():
    """The big-M of the OA master holds every beta with F(beta) <= U: check it on the exact
    fits of all supports (any size) whose value is below the incumbent."""
    from mixmio.api.glm import _glm_problem_with_k_max
    from mixmio.solvers.glm.bounds import coefficient_bounds
    from mixmio.solvers.glm.logistic import fit_support

    df, formula = _data(100, 6, 15, scale=1.0)
    fit = mio_glm(formula, df, k=2)
    pr = _glm_problem_with_k_max(fit.design, 2, 0.0)[0]
    U = fit.objective + 3.0   # a looser incumbent: more supports qualify
    lo, hi = coefficient_bounds(pr, U)
    inside = 0
    for r in range(len(pr.units) + 1):
        for S in itertools.combinations(range(len(pr.units)), r):
            beta, val, ok = fit_support(pr.columns_of(S), pr.X, pr.y, pr.offset, 0.0,
                                        pr.penalized)
            if ok and val <= U:
                inside += 1
                assert np.all(beta >= lo) and np.all(beta <= hi)
    assert inside >= 5
    assert np.all(lo <= 0) and np.all(hi >= 0) and np.all(np.isfinite(lo + hi))
