"""Bootstrap schemes, intervals, statistics and failure accounting."""

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.inference import BootstrapResult
from mixmio.inference.bootstrap import coefficient_stats, interval_bounds
from mixmio.solvers.solution import Solution

B = 20
SCHEMES = [("residual", {}), ("residual", {"within_cluster": True}), ("cluster", {}),
           ("wild", {"weights": "rademacher"}), ("wild", {"weights": "mammen"}),
           ("parametric", {})]


def _check_table(boot, fit):
    t = boot.table
    assert len(t) == fit.problem.n_coef
    assert list(t["kind"]).count("fixed") == fit.problem.p
    fin = np.isfinite(t["lower"]) & np.isfinite(t["upper"])
    assert fin.iloc[: fit.problem.p].all()
    assert (t["lower"][fin] <= t["upper"][fin] + 1e-12).all()
    fx = t[t["kind"] == "fixed"]
    # the full-data estimate lies inside its interval, up to a couple of bootstrap SEs
    assert (fx["lower"] <= fx["estimate"] + 2 * fx["se"]).all()
    assert (fx["upper"] >= fx["estimate"] - 2 * fx["se"]).all()
    freq = t["selection_frequency"].dropna()
    assert ((freq >= 0) & (freq <= 1)).all()
    pv = t["p_value"].dropna()
    assert ((pv > 0) & (pv <= 1)).all()
    stab = t["sign_stability"].dropna()
    assert ((stab >= 0) & (stab <= 1)).all()


@pytest.mark.parametrize("scheme,kw", SCHEMES)
def test_every_scheme_runs_and_gives_sane_tables(fit, scheme, kw):
    boot = fit.bootstrap(B=B, scheme=scheme, random_state=3, progress=False, **kw)
    assert isinstance(boot, BootstrapResult)
    assert boot.n_ok == B and boot.failures.empty
    assert boot.draws.shape == (B, fit.problem.n_coef)
    _check_table(boot, fit)
    # the three clusters the fit selects are selected in most replicates
    sel = boot.table.iloc[fit.problem.p:][fit.ranef["estimate"].to_numpy() != 0]
    assert (sel["selection_frequency"] >= 0.5).all()
    if scheme == "parametric":
        assert any("Gaussian errors" in n for n in boot.notes)
        assert "Gaussian errors" in str(boot.report())
    else:
        assert not boot.notes


def test_cluster_scheme_counts_absent_clusters_as_missing(fit):
    boot = fit.bootstrap(B=B, scheme="cluster", random_state=11, progress=False)
    rnd = boot.draws[:, fit.problem.p:]
    assert np.isnan(rnd).any(), "some cluster must be absent from some replicate"
    assert np.isfinite(boot.draws[:, : fit.problem.p]).all()
    n_valid = boot.table["n_valid"].to_numpy()[fit.problem.p:]
    assert (n_valid < B).any() and (n_valid == np.isfinite(rnd).sum(axis=0)).all()


def test_cluster_scheme_with_crossed_factors_and_cluster_by():
    data = mixmio.datasets.load("penicillin")
    fit = mixmio.mio_lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data, k=3)
    boot = fit.bootstrap(B=4, scheme="cluster", cluster_by="sample", random_state=0,
                         progress=False)
    assert boot.n_ok == 4 and boot.options["cluster_by"] == "sample"
    with pytest.raises(ValueError, match="cluster_by"):
        fit.bootstrap(B=4, scheme="cluster", cluster_by="nope", progress=False)


@pytest.mark.parametrize("ci", ["percentile", "basic", "bca"])
def test_interval_kinds(fit, ci):
    boot = fit.bootstrap(B=B, ci=ci, random_state=5, progress=False)
    _check_table(boot, fit)
    if ci == "bca":
        assert boot.jackknife.shape == (18, fit.problem.n_coef)
        # the deleted cluster's own effect is missing from its jackknife fit
        assert np.isnan(np.diag(boot.jackknife[:, fit.problem.p:])).all()
    assert boot.intervals("percentile").shape[0] == fit.problem.n_coef


def test_interval_formulas_on_known_draws():
    rng = np.random.default_rng(0)
    draws = rng.normal(1.0, 2.0, size=(4000, 1))
    est = np.median(draws, axis=0)
    lo, hi = interval_bounds(draws, est, "percentile", 0.9)
    assert lo[0] == pytest.approx(np.quantile(draws, 0.05))
    blo, bhi = interval_bounds(draws, est, "basic", 0.9)
    assert blo[0] == pytest.approx(2 * est[0] - hi[0])
    assert bhi[0] == pytest.approx(2 * est[0] - lo[0])
    # estimate at the median (z0 = 0) and a constant jackknife (a = 0): bca is percentile
    jack = np.ones((30, 1))
    clo, chi = interval_bounds(draws, est, "bca", 0.9, jackknife=jack)
    assert clo[0] == pytest.approx(lo[0], abs=1e-2) and chi[0] == pytest.approx(hi[0], abs=1e-2)
    # a positive acceleration shifts both bca limits to the right
    jack = np.concatenate([np.zeros(29), [-5.0]])[:, None]
    alo, ahi = interval_bounds(draws, est, "bca", 0.9, jackknife=jack)
    assert alo[0] > clo[0] and ahi[0] > chi[0]
    with pytest.raises(ValueError, match="jackknife"):
        interval_bounds(draws, est, "bca", 0.9)


def test_pvalue_sign_stability_and_frequency_definitions():
    draws = np.array([[1.0, 0.0, np.nan], [2.0, -1.0, 1.0], [3.0, 0.0, -1.0],
                      [-1.0, 1.0, 2.0]])
    est = np.array([2.0, 0.5, 1.0])
    st = coefficient_stats(draws, est)
    assert st["selection_frequency"].tolist() == [1.0, 0.5, 1.0]
    assert st["sign_stability"].tolist() == [0.75, 0.5, pytest.approx(2 / 3)]
    # column 0: one draw <= 0 of four -> 2 * (1 + 1) / 5
    assert st["p_value"][0] == pytest.approx(0.8)
    assert st["n_valid"].tolist() == [4, 4, 3]


def test_argument_errors(fit):
    for kw, msg in [({"scheme": "jackknife"}, "scheme"), ({"ci": "studentized"}, "ci"),
                    ({"level": 1.5}, "level"), ({"B": 1}, "B"),
                    ({"weights": "normal", "scheme": "wild"}, "weights")]:
        with pytest.raises(ValueError, match=msg):
            fit.bootstrap(progress=False, **kw)


def test_bca_needs_three_clusters():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(size=20), "g": np.repeat(["a", "b"], 10)})
    fit = mixmio.mio_lmer("y ~ 1 + (1 | g)", df, k=1)
    with pytest.raises(ValueError, match="bca is defined"):
        fit.bootstrap(B=4, ci="bca", progress=False)


def test_failures_are_recorded_and_excluded(fit, monkeypatch):
    import mixmio.solvers as solvers

    real = solvers.solve
    calls = {"n": 0}

    def flaky(problem, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected failure")
        sol = real(problem, **kw)
        if calls["n"] == 5:
            return Solution(sol.w, sol.objective, sol.best_bound, "infeasible", sol.solver,
                            0.0, message="injected infeasible")
        return sol

    monkeypatch.setattr(solvers, "solve", flaky)
    boot = fit.bootstrap(B=8, random_state=2, progress=False, n_jobs=1)
    assert boot.n_ok == 6
    f = boot.failures
    assert f["replicate"].tolist() == [2, 4]
    assert "injected failure" in f["reason"][0] and f["status"][0] == "exception"
    assert "infeasible" in f["reason"][1]
    assert np.isnan(boot.draws[[2, 4]]).all()
    assert (boot.table["n_valid"].iloc[: fit.problem.p] == 6).all()
    assert "2 failed" in str(boot.report())
    # the excluded replicates do not change the statistics of the others
    monkeypatch.setattr(solvers, "solve", real)
    clean = fit.bootstrap(B=8, random_state=2, progress=False)
    keep = [0, 1, 3, 5, 6, 7]
    np.testing.assert_array_equal(boot.draws[keep], clean.draws[keep])


def test_summary_shows_bootstrap_only_when_attached(fit, boot):
    plain = str(fit.summary())
    assert "Boot.SE" not in plain and fit.bootstrap_result is None
    attached = fit.with_bootstrap(boot)
    text = str(attached.summary())
    assert "Boot.SE" in text and "Selected clusters (bootstrap)" in text and "97.5%" in text
    assert "Bootstrap: residual scheme" in text
    assert str(boot.fit.summary()) == text
    assert "Boot.SE" in attached._repr_html_()
    other = mixmio.mio_lmer("Reaction ~ 1 + (1 | Subject)", mixmio.datasets.load("sleepstudy"),
                            k=2)
    with pytest.raises(ValueError, match="not computed from this fit"):
        other.with_bootstrap(boot)


def test_fixed_cap_selection_frequency(sleep):
    df = sleep.assign(x=np.random.default_rng(0).normal(size=len(sleep)))
    fit = mixmio.mio_lmer("Reaction ~ Days + x + (1 | Subject)", df, k=3, k_fixed=1)
    boot = fit.bootstrap(B=6, random_state=0, progress=False)
    tab = boot.fixef_table()
    assert "Sel.freq" in tab.columns and tab.loc["Days", "Sel.freq"] == 1.0


def test_cluster_scheme_fixed_effect_absent_from_replicate_is_missing():
    """A factor level carried by one cluster: replicates without that cluster cannot estimate
    its coefficient, which must count as missing, not as a zero estimate."""
    import warnings

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(12), 10)
    df = pd.DataFrame({"y": rng.normal(size=120) + (g == 3) * 3.0, "x": rng.normal(size=120),
                       "g": g, "f": np.where(g == 0, "b", "a")})
    fit = mixmio.mio_lmer("y ~ x + f + (1 | g)", df, k=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = fit.bootstrap(B=30, scheme="cluster", random_state=0, progress=False)
    fixed = boot.table[boot.table.kind == "fixed"].set_index("term")
    assert fixed.loc["f[T.b]", "n_valid"] < boot.n_ok
    assert fixed.loc["x", "n_valid"] == boot.n_ok


def test_bca_keeps_the_reasons_of_failed_jackknife_fits(monkeypatch):
    import sys

    bmod = sys.modules["mixmio.inference.bootstrap"]  # the package exports a same-named function
    data = mixmio.datasets.load("sleepstudy")
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
    real = bmod.sub_problem
    left_out = fit.design.blocks[0].levels[4]

    def failing(ctx, rows, *args, **kwargs):
        if not np.any(ctx.unit_codes[rows] == 4):
            raise ArithmeticError("injected failure")
        return real(ctx, rows, *args, **kwargs)

    monkeypatch.setattr(bmod, "sub_problem", failing)
    boot = fit.bootstrap(B=20, ci="bca", random_state=0)
    assert boot.jackknife_failures == 1
    row = boot.jackknife_failed.iloc[0]
    assert row["left_out"] == str(left_out)
    assert row["status"] == "exception"
    assert "ArithmeticError: injected failure" in row["reason"]
    assert np.isnan(boot.jackknife[4]).all() and np.isfinite(boot.jackknife[3]).any()
    assert "1 jackknife fits failed (see .jackknife_failed)" in boot.describe()
    assert np.isfinite(boot.table["lower"]).all()


def test_bca_uses_percentile_for_coefficients_with_a_point_mass_at_zero():
    """A cluster unselected in many replicates got a BCa interval far from 0 (its bias
    correction is driven by the zeros) while its p-value said 0.93."""
    est = np.array([78.0, 10.0])
    draws = np.column_stack([np.r_[np.zeros(6), np.linspace(65, 92, 8)],
                             np.linspace(8.0, 12.0, 14)])
    jack = np.column_stack([np.linspace(70, 85, 18), np.linspace(9, 11, 18) ** 1.5])
    lo, hi = interval_bounds(draws, est, "bca", 0.9, jackknife=jack)
    plo, phi = interval_bounds(draws, est, "percentile", 0.9)
    assert lo[0] == plo[0] == 0.0 and hi[0] == phi[0]
    assert lo[1] != plo[1]  # a column without zeros keeps its BCa interval
    data = mixmio.datasets.load("sleepstudy")
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
    boot = fit.bootstrap(B=30, scheme="cluster", ci="bca", random_state=1)
    tab = boot.table
    freq_lt1 = tab["selection_frequency"] <= 0.9  # >= 10% zeros: below the 2.5% quantile
    assert freq_lt1.any()
    assert ((tab["lower"] <= 0) & (tab["upper"] >= 0))[freq_lt1].all()
    assert "point mass at 0" in boot.describe()
    assert "BCa endpoints are unstable with 30 replicates" in boot.describe()


def test_basic_intervals_use_percentile_for_a_point_mass_at_zero():
    est = np.array([63.75, 10.0])
    draws = np.column_stack([np.r_[np.zeros(5), np.linspace(20, 110, 15)],
                             np.linspace(8.0, 12.0, 20)])
    lo, hi = interval_bounds(draws, est, "basic", 0.95)
    plo, phi = interval_bounds(draws, est, "percentile", 0.95)
    assert lo[0] == plo[0] == 0.0 and hi[0] == phi[0]  # was [.., 2 * 63.75]
    assert lo[1] == pytest.approx(2 * 10.0 - phi[1])


def test_interval_labels_are_not_rounded_to_wrong_values():
    data = mixmio.datasets.load("sleepstudy")
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
    assert fit.bootstrap(B=10, level=0.999, random_state=0).interval_labels == ("0.05%",
                                                                                "99.95%")
    assert fit.bootstrap(B=10, level=0.975, random_state=0).interval_labels == ("1.25%",
                                                                                "98.75%")


def test_a_bootstrap_of_another_fit_is_refused():
    data = mixmio.datasets.load("sleepstudy")
    f3 = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
    f8 = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=8)
    b3 = f3.bootstrap(B=10, random_state=0)
    with pytest.raises(ValueError, match="not computed from this fit"):
        f8.with_bootstrap(b3)
    with pytest.raises(ValueError, match="not computed from this fit"):
        f8.plot_effects(boot=b3)
    assert f3.with_bootstrap(b3).bootstrap_result is b3
    # a Generator seeds the replicates through one draw: reproducible from its state
    g1 = f3.bootstrap(B=10, random_state=np.random.default_rng(0), progress=False)
    g2 = f3.bootstrap(B=10, random_state=np.random.default_rng(0), progress=False)
    np.testing.assert_array_equal(g1.draws, g2.draws)
    with pytest.raises(TypeError, match="random_state must be None"):
        f3.bootstrap(B=10, random_state=True)


def test_cluster_bootstrap_splits_copies_in_every_block_of_the_factor():
    """(x || g): a subject drawn twice is two subjects in the slope block too (the copies
    shared one slope)."""
    import sys

    bmod = sys.modules["mixmio.inference.bootstrap"]
    from mixmio.inference._tasks import make_context

    data = mixmio.datasets.load("sleepstudy")
    fit = mixmio.mio_lmer("Reaction ~ Days + (Days || Subject)", data,
                          k={"1|Subject": 3, "Days|Subject": 2})
    ctx = make_context(fit, unit_block=0, options={"scheme": "cluster"})
    pr, colmap = bmod._cluster_problem(ctx, np.random.default_rng(1))
    assert [t.n_levels for t in pr.terms] == [18, 18]
    # each new slope column maps back to the slope of the subject it copies
    p = ctx.p
    inter = colmap[p:p + 18] - p
    slope = colmap[p + 18:] - p - 18
    np.testing.assert_array_equal(inter, slope)
