"""Holistic constraints on mio_lm: every constraint holds, optimum equals brute force,
infeasible combinations raise before solving, k_max, transforms, OLS/intercept-only edges."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import mixmio
from mixmio import (
    CorrelationLimit,
    Exclude,
    ForceInclude,
    GroupSparsity,
    Robust,
    Significance,
    Transforms,
)
from tests.holistic.conftest import FORMULA
from tests.oracles import brute_force


def _z(fit):
    z = fit.solution.z
    return (fit.solution.w != 0) if z is None else np.asarray(z, dtype=bool)


def _check(fit, k):
    pr = fit.problem
    z = _z(fit)
    assert pr.is_feasible(fit.solution.w, z=z)
    assert np.count_nonzero(z[pr.caps[0].index]) <= k
    best, _ = brute_force(pr)
    assert fit.objective == pytest.approx(best, rel=1e-6, abs=1e-8)
    assert fit.status == "optimal"


CASES = [
    ([GroupSparsity(["a", "d"])], 3),
    ([CorrelationLimit(0.8)], 4),
    ([ForceInclude(["e"])], 3),
    ([Exclude(["a", "c"])], 3),
    ([Transforms(["pos"])], 4),
    ([Robust(3.0)], 4),
    ([CorrelationLimit(0.8), ForceInclude(["d"]), Exclude("a"), Transforms(["pos"])], 4),
]


@pytest.mark.parametrize("cons, k", CASES, ids=[repr(c) for c, _ in CASES])
def test_constraints_hold_and_match_brute_force(small_df, cons, k):
    fit = mixmio.mio_lm(FORMULA, small_df, k=k, constraints=cons, refit=False)
    _check(fit, k)
    sel = set(fit.selected)
    cols = list(fit.coef.index)
    for c in cons:
        if isinstance(c, GroupSparsity):
            assert len(sel & set(c.columns)) in (0, len(c.columns))
        if isinstance(c, ForceInclude):
            assert set(c.columns) <= sel
        if isinstance(c, Exclude):
            assert not (set(c.columns) & sel)
        if isinstance(c, CorrelationLimit):
            assert fit.max_abs_corr <= c.rho
        if isinstance(c, Transforms):
            forms = [x for x in cols if "pos" in x]
            assert len(forms) == 4 and len(sel & set(forms)) <= 1
    # factor dummies are grouped automatically
    fq = {"f[T.q]", "f[T.r]"}
    assert len(sel & fq) in (0, 2)


@pytest.mark.parametrize("cons, k", [CASES[1], CASES[5], CASES[6]], ids=["corr", "robust", "mix"])
def test_cvxpy_backend_honours_constraints(small_df, cons, k):
    fit = mixmio.mio_lm(FORMULA, small_df, k=k, constraints=cons, refit=False, solver="SCIP")
    assert fit.solver == "cvxpy-SCIP"
    _check(fit, k)


def test_heuristic_is_feasible(small_df):
    cons = [CorrelationLimit(0.8), ForceInclude(["d"]), Exclude("a"), Transforms(["pos"])]
    fit = mixmio.mio_lm(FORMULA, small_df, k=4, constraints=cons, refit=False,
                        solver="heuristic")
    assert fit.status == "heuristic"
    assert fit.problem.is_feasible(fit.solution.w, z=_z(fit))


def test_auto_routes_constraints_and_names_engine(small_df):
    fit = mixmio.mio_lm(FORMULA, small_df, k=3, constraints=[CorrelationLimit(0.8)])
    assert fit.solver == "subset-bnb"
    fit = mixmio.mio_lmer("y ~ a + (1 | f)", small_df, k=1, k_fixed=1,
                          constraints=[ForceInclude(["a"])])
    assert fit.solver.startswith("cvxpy-")


@pytest.mark.parametrize("cons, k, words", [
    ([ForceInclude(["a", "b", "c", "d", "e"])], 3, ["ForceInclude", "k=3"]),
    ([ForceInclude(["a"]), Exclude(["a"])], 3, ["ForceInclude(['a'])", "Exclude(['a'])"]),
    ([CorrelationLimit(0.8), ForceInclude(["b", "b2"])], 3,
     ["CorrelationLimit(rho=0.8)", "ForceInclude", "'b'", "'b2'"]),
    ([CorrelationLimit(0.8)], 9, ["k_max=8", "CorrelationLimit"]),
    ([GroupSparsity(["a", "b"]), ForceInclude(["a"]), Exclude(["b"])], 3,
     ["GroupSparsity", "ForceInclude", "Exclude"]),
    ([Transforms(["pos"]), ForceInclude(["pos", "np.sqrt(pos)"])], 3, ["Transforms", "pos"]),
])
def test_infeasible_raise_before_solving(small_df, monkeypatch, cons, k, words):
    import mixmio.solvers as solvers

    def boom(*a, **kw):
        raise AssertionError("solve was called")

    monkeypatch.setattr(solvers, "solve", boom)
    with pytest.raises(ValueError) as exc:
        mixmio.mio_lm(FORMULA, small_df, k=k, constraints=cons)
    for w in words:
        assert w in str(exc.value)


def test_k_max_is_maximum_independent_set(small_df):
    import itertools

    fit = mixmio.mio_lm(FORMULA, small_df, k=2, constraints=[CorrelationLimit(0.5)])
    cols = [c for c in fit.coef.index if c != "Intercept"]
    X = fit.problem.X[:, 1:]
    R = np.corrcoef(X, rowvar=False)
    groups = [["f[T.q]", "f[T.r]"]] + [[c] for c in cols if not c.startswith("f[")]
    best = 0
    for r in range(len(groups) + 1):
        for combo in itertools.combinations(groups, r):
            # pairs inside one group (the factor's dummies) are exempt
            ok = all(abs(R[cols.index(a), cols.index(b)]) <= 0.5
                     for g1, g2 in itertools.combinations(combo, 2) for a in g1 for b in g2)
            if ok:
                best = max(best, sum(len(g) for g in combo))
    assert fit.k_max == best
    assert "k_max" in fit.summary()


def test_transforms_refuse_negatives_and_use_offset_for_zeros(small_df):
    with pytest.raises(ValueError, match="negative values"):
        mixmio.mio_lm(FORMULA, small_df, k=2, constraints=[Transforms(["a"])])
    fit = mixmio.mio_lm(FORMULA, small_df, k=2, constraints=[Transforms(["pos"])])
    assert "np.log(pos + 1e-05)" in fit.coef.index  # pos has zeros
    new = small_df.iloc[:5]
    np.testing.assert_allclose(fit.predict(new), fit.fitted[:5], rtol=1e-10)


def test_k_p_is_ols_and_k0_intercept_only(small_df):
    formula = "y ~ a + b + c + d + e + b2 + pos"
    fit = mixmio.mio_lm(formula, small_df, k=7)
    ols = smf.ols(formula, small_df).fit()
    np.testing.assert_allclose(fit.coef.to_numpy(), ols.params.to_numpy(), rtol=1e-7)
    assert fit.status == "optimal"
    fit0 = mixmio.mio_lm(formula, small_df, k=0)
    assert fit0.selected == [] and fit0.coef["Intercept"] == pytest.approx(small_df.y.mean())
    assert (fit0.coef.drop("Intercept") == 0).all()


def test_result_api(small_df):
    fit = mixmio.mio_lm(FORMULA, small_df, k=3)
    assert isinstance(fit.coef, pd.Series) and len(fit.coef) == 10
    assert fit.objective >= fit.best_bound - 1e-9 and fit.gap <= 1e-4
    assert fit.ridge > 0
    s = fit.summary()
    assert "Status: optimal" in s and "coef" in s
    np.testing.assert_allclose(fit.predict(small_df), fit.fitted)


def test_significance_records_rounds_and_cuts(small_df):
    fit = mixmio.mio_lm(FORMULA, small_df, k=7,
                        constraints=[Significance(B=50, random_state=0, max_rounds=3)])
    assert 1 <= len(fit.rounds) <= 3
    cuts = [c for c in fit.problem.constraints if c.name.startswith("Significance cut")]
    assert len(cuts) == sum(r["cut"] for r in fit.rounds)
    for cut, r in zip(cuts, fit.rounds, strict=False):
        assert sorted(cut.index.tolist()) == sorted(r["support"])
        assert cut.rhs == len(r["support"]) - 1
    # the final support is none of the cut ones
    last = set(fit.rounds[-1]["support"])
    assert all(set(c.index.tolist()) != last for c in cuts)


def test_constraint_objects_are_public():
    for name in ["GroupSparsity", "CorrelationLimit", "ForceInclude", "Exclude", "Transforms",
                 "Robust", "Significance", "JointClusterSelection"]:
        assert hasattr(mixmio, name)
    with pytest.raises(ValueError):
        CorrelationLimit(1.5)
    with pytest.raises(TypeError):
        mixmio.mio_lm("y ~ a", pd.DataFrame({"y": [1.0, 2, 3], "a": [1.0, 0, 2]}), k=1,
                      constraints=["not a constraint"])


def test_unproven_feasibility_check_warns_and_claims_nothing(small_df, monkeypatch):
    """When the exact feasibility MILP stops unproven, the check says so (it used to pass
    silently) and no k_max is inferred from its incumbent."""
    import mixmio.problem.holistic.compile as comp

    monkeypatch.setattr(comp, "max_support", lambda index, rows, extra=(): (1, False))
    with pytest.warns(RuntimeWarning, match="without a proof"):
        fit = mixmio.mio_lm("y ~ a + b + b2", small_df, k=2,
                            constraints=[mixmio.CorrelationLimit(0.8)])
    assert fit.k_max == 3  # all selectable columns: nothing inferred from an unproven MILP


def test_correlation_limit_exempts_pairs_inside_a_factor():
    """A rare baseline makes a factor's dummies strongly (negatively) correlated; the limit
    used to forbid the auto-grouped factor outright (and only for one choice of baseline)."""
    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame({"b": rng.normal(size=n), "c": rng.normal(size=n),
                       "g": rng.choice(list("pqr"), n, p=[0.04, 0.48, 0.48])})
    df["y"] = df.b + 2 * (df.g == "q") + 0.5 * rng.normal(size=n)
    fit = mixmio.mio_lm("y ~ b + c + g", df, k=3, constraints=[CorrelationLimit(0.8)])
    assert set(fit.selected) == {"b", "g[T.q]", "g[T.r]"}
    assert fit.k_max == 4 and fit.compiled.conflicts == []


def test_constraint_arguments_accept_numpy_numbers_and_single_objects():
    import mixmio as m

    assert m.CorrelationLimit(np.float32(0.5)).rho == pytest.approx(0.5)
    assert m.Robust(gamma=np.float64(1.0)).gamma == 1.0
    for bad in (lambda: m.Robust(gamma=True), lambda: m.CorrelationLimit(True)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError, match="integers"):
        m.Significance(B=20.5)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(100, 3)), columns=list("xzw"))
    df["y"] = df.x * df.z + rng.normal(size=100)
    fit = m.mio_lm("y ~ x*z + w", df, k=1, constraints=ForceInclude(["z:x"]))  # no list
    assert fit.selected == ["x:z"]


def test_k_none_means_the_largest_support_the_constraints_allow():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(100, 4)), columns=list("abcd"))
    df["y"] = df.a + rng.normal(size=100)
    fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=None, constraints=[Exclude(["d"])])
    assert fit.k == fit.k_max == 3 and fit.selected == ["a", "b", "c"]
    with pytest.raises(ValueError, match="exceeds k_max"):
        mixmio.mio_lm("y ~ a + b + c + d", df, k=4, constraints=[Exclude(["d"])])


def test_transforms_leave_out_forms_that_duplicate_others_on_the_data():
    """For a 0/1 variable every form is affine in it: the forms made X rank deficient and the
    error named columns the user never wrote. Now they are left out with a warning."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"b": rng.integers(0, 2, 100).astype(float), "x": rng.normal(size=100),
                       "t": rng.integers(0, 3, 100).astype(float)})
    df["y"] = df.b + df.x + rng.normal(size=100)
    with pytest.warns(UserWarning, match=r"I\(b \*\* 2\), np.sqrt\(b\), np.log\(b \+ 1e-05\) "
                      r"are an affine function .* \(2 distinct values\)"):
        fit = mixmio.mio_lm("y ~ b + x", df, k=2, constraints=[Transforms(["b"])])
    assert sorted(fit.selected) == ["b", "x"]
    with pytest.warns(UserWarning, match=r"3 distinct values"):
        fit = mixmio.mio_lm("y ~ t + x", df, k=2, constraints=[Transforms(["t"])])
    assert list(fit.coef.index) == ["Intercept", "t", "x", "I(t ** 2)"]


def test_no_intercept_r_squared_is_uncentred_like_statsmodels():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(5, 1, 80), "b": rng.normal(-3, 1, 80)})
    df["y"] = 2 * df.a + 1 + rng.normal(size=80)
    fit = mixmio.mio_lm("y ~ 0 + a + b", df, k=2)
    ref = smf.ols("y ~ 0 + a + b", df).fit()
    assert fit.r_squared == pytest.approx(ref.rsquared, rel=1e-6)
    fit1 = mixmio.mio_lm("y ~ a + b", df, k=2)
    assert fit1.r_squared == pytest.approx(smf.ols("y ~ a + b", df).fit().rsquared, rel=1e-6)
    assert "<2e-16" in fit.summary()  # tiny p-values print as R does, not as 0


def test_transforms_pruning_uses_the_rows_the_design_keeps():
    """Rows dropped for a missing response must not count: they added a 4th value of x, no
    form was pruned, and X was rank deficient on the kept rows."""
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"x": rng.choice([1.0, 2.0, 3.0], size=n), "b": rng.normal(size=n)})
    df["y"] = df.x + df.b + rng.normal(size=n)
    df = pd.concat([df, pd.DataFrame({"x": [4.0, 4.0], "b": [0.0, 0.1], "y": [np.nan] * 2})],
                   ignore_index=True)
    with pytest.warns(UserWarning, match=r"3 distinct values") as rec:
        fit = mixmio.mio_lm("y ~ x + b", df, k=2, constraints=[Transforms(["x"])])
    assert {r.filename for r in rec if "distinct" in str(r.message)} == {__file__}
    assert fit.design.n_dropped == 2 and fit.status == "optimal"


def test_lm_intervals_match_statsmodels():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(5, 1, 80), "b": rng.normal(-3, 1, 80)})
    df["y"] = 2 * df.a + 1 + rng.normal(size=80)
    fit = mixmio.mio_lm("y ~ a + b", df, k=2)
    ref = smf.ols("y ~ a + b", df).fit().conf_int()
    tab = fit.to_frame()
    np.testing.assert_allclose(tab[["ci_lower", "ci_upper"]].to_numpy(), ref.to_numpy(),
                               rtol=1e-8)
    assert "[0.025" in fit.summary()


def test_transforms_formula_lists_each_form_once():
    """Regression: the transformed variable appeared twice in fit.formula ("u + u + ...")."""
    import numpy as np
    import pandas as pd

    import mixmio
    from mixmio import Transforms

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"u": rng.uniform(1, 3, 80), "a": rng.normal(size=80)})
    df["y"] = df.a + np.log(df.u) + 0.1 * rng.normal(size=80)
    for f in ("y ~ a + u", "y ~ a"):
        fit = mixmio.mio_lm(f, df, k=2, constraints=[Transforms(["u"])])
        assert fit.formula == "y ~ a + u + I(u ** 2) + np.sqrt(u) + np.log(u)"
