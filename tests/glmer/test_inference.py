"""Bootstrap and stability selection of mio_glmer fits (mixmio/inference/glmer.py).

Small data (10 clusters x 20 rows, cluster c0 deviating strongly), B ~ 20.  Replicates are
checked against an independent route: the replicate's data rebuilt by hand and fitted through
the mio_glmer front door.  The replicates here are solved by the seeded heuristic (fast and
deterministic, so the machinery is tested, not the search); the fits themselves, and
test_engine_replicates, use the exact engine."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.errors import ArgumentError
from mixmio.inference._tasks import seeds_of
from mixmio.inference.bootstrap import cluster_rows
from mixmio.inference.glmer import (
    _context,
    _solve,
    bootstrap_glmer,
    parametric_response,
    stability_glmer,
)

matplotlib.use("Agg")

K, M = 10, 20
SOLVER = "heuristic"  # per-replicate solver (see the module docstring)
FORMULA = {"poisson": "y ~ x + offset(off) + (1 | g)",
           "binomial": "prop ~ x + offset(off) + (1 | g)"}


def _data(family: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = K * M
    g = np.repeat(np.arange(K), M)
    x = rng.normal(size=n)
    off = rng.uniform(-0.3, 0.3, size=n)
    eta = 0.3 * x + off + np.where(g == 0, 1.5, 0.0)
    df = pd.DataFrame({"x": x, "off": off, "g": [f"c{c}" for c in g]})
    if family == "poisson":
        df["y"] = rng.poisson(np.exp(0.2 + eta))
    else:
        trials = rng.integers(1, 6, size=n)
        succ = rng.binomial(trials, 1 / (1 + np.exp(-(eta - 0.5))))
        df["prop"], df["trials"] = succ / trials, trials
    return df


def _fit(family: str, df: pd.DataFrame, k: int = 1, **kw):
    if family == "binomial":
        kw.setdefault("weights", "trials")
    return mixmio.mio_glmer(FORMULA[family], df, k=k, family=family, **kw)


@pytest.fixture(scope="module", params=["poisson", "binomial"])
def case(request):
    family = request.param
    df = _data(family)
    fit = _fit(family, df)
    assert fit.status == "optimal" and list(fit.selected["level"]) == ["c0"]
    return family, df, fit


@pytest.fixture(scope="module", params=["parametric", "cluster"])
def boot_case(request, case):
    family, df, fit = case
    boot = fit.bootstrap(B=20, scheme=request.param, random_state=1, progress=False,
                         solver=SOLVER)
    return family, df, fit, boot


def _random_rows(boot):
    t = boot.table
    return t[t["kind"] == "random"].set_index("level")


# -- both schemes, both families ---------------------------------------------------------------
def test_scheme_runs_and_accounts(boot_case):
    family, _, fit, boot = boot_case
    assert boot.B == 20 and boot.n_ok == 20 and len(boot.failures) == 0
    assert boot.draws.shape == (20, fit.problem.n_coef)
    assert boot.options["family"] == family
    assert set(boot.statuses) == {SOLVER}
    text = boot.describe()
    assert f"{boot.scheme} scheme" in text and "B = 20 (20 ok, 0 failed)" in text
    if boot.scheme == "parametric":
        law = "binomial(trials" if family == "binomial" else "Poisson(fitted mean"
        assert law in text and "NOTE: parametric scheme: assumes the fitted" in text
    else:
        assert "clusters of g resampled" in text


def test_strong_cluster_interval_contains_estimate(boot_case):
    _, _, fit, boot = boot_case
    r = _random_rows(boot).loc["c0"]
    est = float(fit.ranef.set_index("level").loc["c0", "estimate"])
    assert r["estimate"] == pytest.approx(est)
    assert r["lower"] <= est <= r["upper"]
    assert r["lower"] > 0  # strongly above the population line in every replicate
    assert r["selection_frequency"] == 1.0


def test_summary_and_report(boot_case):
    _, _, fit, boot = boot_case
    text = str(fit.with_bootstrap(boot).summary())
    assert "Selected clusters (bootstrap)" in text and "Boot.SE" in text
    assert boot.describe().split("\n")[0] in text
    assert fit.bootstrap_result is None  # the fit is unchanged
    rep = boot.report()
    assert "c0" in rep.clusters["level"].tolist()
    assert "Flagged clusters" in str(rep)
    assert type(boot.plot_selection()).__name__ == "Figure"


# -- the replicates' data, rebuilt independently -----------------------------------------------
def _replicate_rng(boot, b: int):
    return seeds_of(np.random.SeedSequence(boot.random_state).spawn(boot.B)[b])[0]


def _refit(family, df, fit):
    return _fit(family, df, k=fit.k["1|g"], ridge=fit.ridge, solver=SOLVER)


def _assert_same_fit(w_rep, w_ref):
    assert np.array_equal(w_rep != 0, w_ref != 0)
    np.testing.assert_allclose(w_rep, w_ref, rtol=1e-4, atol=1e-5)


def test_parametric_response_follows_family(case):
    family, df, fit = case
    ctx = _context(fit, 0, "auto", None, {"scheme": "parametric"})
    rng = np.random.default_rng(5)
    draws = np.vstack([parametric_response(ctx, rng) for _ in range(300)])
    assert np.all(draws == np.round(draws)) and np.all(draws >= 0)
    mean = fit.fitted  # probabilities (binomial) or expected counts (poisson)
    if family == "binomial":
        trials = df["trials"].to_numpy()
        assert np.all(draws <= trials) and np.any(draws > 1)
        mean = trials * mean
    # the draws' mean per row is the fitted mean (300 draws: within 5 standard errors)
    sd = np.sqrt(np.var(draws, axis=0) + 1e-12) / np.sqrt(300)
    assert np.mean(np.abs(draws.mean(axis=0) - mean) <= 5 * sd + 1e-9) > 0.99


def test_parametric_replicate_is_the_fit_on_the_drawn_response(case):
    family, df, fit = case
    boot = bootstrap_glmer(fit, B=3, random_state=11, progress=False, solver=SOLVER)
    ctx = _context(fit, 0, "auto", None, boot.options)
    for b in range(boot.B):
        ystar = parametric_response(ctx, _replicate_rng(boot, b))
        d = df.copy()
        if family == "binomial":
            d["prop"] = ystar / d["trials"]
        else:
            d["y"] = ystar
        _assert_same_fit(boot.draws[b], np.asarray(_refit(family, d, fit).w))


def test_cluster_replicate_is_the_fit_on_the_drawn_clusters(case):
    family, df, fit = case
    boot = bootstrap_glmer(fit, B=3, scheme="cluster", random_state=12, progress=False,
                           solver=SOLVER)
    ctx = _context(fit, 0, "auto", None, boot.options)
    levels = list(fit.design.blocks[0].levels)
    for b in range(boot.B):
        rows, block_codes = cluster_rows(ctx, _replicate_rng(boot, b))
        copy, orig = block_codes[0]
        d = df.iloc[rows].reset_index(drop=True)  # responses, trials and offsets of the drawn rows
        d["g"] = [f"d{c:02d}" for c in copy]  # each draw a new cluster
        ref = _refit(family, d, fit)
        gam = ref.ranef.set_index("level")["estimate"]
        expect = np.full(K, np.nan)
        for c, o in enumerate(orig):  # a cluster drawn twice: the copy with the larger |effect|
            v = float(gam[f"d{c:02d}"])
            if np.isnan(expect[o]) or abs(v) > abs(expect[o]):
                expect[o] = v
        w = np.concatenate([np.asarray(ref.fixef), expect])
        order = [levels.index(f"c{j}") for j in range(K)]  # design order of the levels
        w_rep = np.concatenate([boot.draws[b][:2], boot.draws[b][2:][order]])
        present = np.isfinite(w)
        assert np.array_equal(present, np.isfinite(w_rep))
        _assert_same_fit(w_rep[present], w[present])


# -- reproducibility, parallel execution, failures ---------------------------------------------
def test_reproducible_and_n_jobs_invariant():
    df = _data("poisson", seed=3)
    fit = _fit("poisson", df)
    kw = {"B": 6, "random_state": 4, "progress": False, "solver": SOLVER}
    a = bootstrap_glmer(fit, scheme="cluster", **kw)
    b = bootstrap_glmer(fit, scheme="cluster", n_jobs=2, **kw)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert a.statuses == b.statuses
    p1 = bootstrap_glmer(fit, **kw)
    p2 = bootstrap_glmer(fit, n_jobs=2, **kw)
    np.testing.assert_array_equal(p1.draws, p2.draws)
    s1 = stability_glmer(fit, **kw)
    s2 = stability_glmer(fit, n_jobs=2, **kw)
    np.testing.assert_array_equal(s1.selected, s2.selected)
    c = bootstrap_glmer(fit, scheme="cluster", **dict(kw, random_state=5))
    assert not np.array_equal(np.nan_to_num(a.draws), np.nan_to_num(c.draws))


def test_engine_replicates():
    """Replicates through solver='auto' (the exact engine): certified statuses (or an honest
    time limit), the same selections for n_jobs = 1 and 2.  (The engine's inner warm-start
    heuristic is not seeded, so estimates are compared to rounding, not bit for bit.)"""
    df = _data("poisson", seed=3)
    fit = _fit("poisson", df)
    kw = {"B": 4, "random_state": 4, "progress": False, "time_limit": 10.0}
    e1 = bootstrap_glmer(fit, **kw)
    e2 = bootstrap_glmer(fit, n_jobs=2, **kw)
    assert e1.n_ok == 4 and set(e1.statuses) <= {"optimal", "time_limit", "gap_limit"}
    np.testing.assert_array_equal(e1.draws != 0, e2.draws != 0)
    np.testing.assert_allclose(e1.draws, e2.draws, rtol=1e-6, atol=1e-8)


def test_separated_replicates_are_counted_not_dropped():
    rng = np.random.default_rng(2)
    n = K * M
    g = np.repeat(np.arange(K), M)
    x = np.zeros(n)
    x[[5, 45, 85]] = 1.0  # three rows with x = 1, in three clusters
    y = rng.binomial(1, np.where(g == 0, 0.8, 0.3)).astype(float)
    y[[5, 45, 85]] = [1.0, 0.0, 1.0]  # mixed in the data: no separation in the fit
    df = pd.DataFrame({"y": y, "x": x, "g": [f"c{c}" for c in g]})
    fit = mixmio.mio_glmer("y ~ x + (1 | g)", df, k=1, family="binomial")
    boot = bootstrap_glmer(fit, B=20, random_state=0, progress=False, solver=SOLVER)
    fail = boot.failures
    # P(the three drawn outcomes agree) is about 1/4: some replicates separate on x
    assert len(fail) > 0 and boot.n_ok + len(fail) == boot.B
    assert set(fail["status"]) == {"separation"}
    assert fail["reason"].str.contains("separate").all()
    assert np.all(np.isnan(boot.draws[~boot.ok]))
    assert (boot.table["n_valid"] == boot.n_ok).all()
    assert f"{len(fail)} failed" in boot.describe()
    ctx = _context(fit, 0, "auto", None, boot.options)
    out = _solve(ctx, ctx.problem, None, np.where(x > 0, 1.0, y), None, 0)
    assert out.w is None and out.status == "separation"


def test_bca_runs_the_cluster_jackknife():
    df = _data("poisson", seed=1)
    fit = _fit("poisson", df)
    boot = bootstrap_glmer(fit, B=10, ci="bca", random_state=2, progress=False, solver=SOLVER)
    assert boot.jackknife.shape == (K, fit.problem.n_coef) and boot.jackknife_failures == 0
    assert f"{K}-cluster jackknife" in boot.describe()
    assert np.isnan(boot.jackknife[np.arange(K), 2 + np.arange(K)]).all()  # left-out cluster
    r = _random_rows(boot).loc["c0"]
    assert r["lower"] <= r["estimate"] <= r["upper"]


# -- stability selection ------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_stability_flags_the_strong_cluster(family):
    df = _data(family, seed=4)
    fit = _fit(family, df, k=2)
    st = fit.stability(B=10, random_state=3, progress=False, solver=SOLVER)
    assert st.n_ok == 10 and st.n_candidates == K
    f = st.frequencies.set_index("level")["frequency"]
    assert f["c0"] == 1.0
    assert f.drop("c0").max() <= 0.5  # null clusters rarely
    assert st.flagged["level"].tolist() == ["c0"]
    assert st.q == pytest.approx(2.0)  # the cap is used in every half
    assert st.bound == pytest.approx(st.q ** 2 / ((2 * 0.6 - 1) * K))
    assert "complementary pairs (obs)" in st.describe()
    assert type(st.plot_selection()).__name__ == "Figure"
    strat = stability_glmer(fit, B=2, scheme="cluster_strat", random_state=3, progress=False,
                            solver=SOLVER)
    assert strat.n_ok == 2 and strat.frequencies.set_index("level")["frequency"]["c0"] == 1.0


# -- argument checks (before any replicate) -----------------------------------------------------
def test_argument_errors():
    df = _data("poisson", seed=0)
    fit = _fit("poisson", df)
    with pytest.raises(ValueError, match="scheme must be one of"):
        bootstrap_glmer(fit, B=4, scheme="residual")
    with pytest.raises(ValueError, match="B must be"):
        bootstrap_glmer(fit, B=1)
    with pytest.raises(ValueError, match="ci must be"):
        bootstrap_glmer(fit, B=4, ci="normal")
    with pytest.raises(ArgumentError, match="solver"):
        bootstrap_glmer(fit, B=4, solver="gurobi-ish")
    with pytest.raises(ValueError, match="cluster_by"):
        bootstrap_glmer(fit, B=4, cluster_by="h")
    with pytest.raises(ValueError, match="even B"):
        stability_glmer(fit, B=5)
    with pytest.raises(ValueError, match="frac must be 0.5"):
        stability_glmer(fit, B=4, frac=0.3)
    d = pd.DataFrame({"prop": [0.4, 0.0, 0.8, 1 / 3] * 10, "trials": [2.5, 2.0, 2.5, 3.0] * 10,
                      "g": np.repeat(np.arange(8), 5)})
    bfit = mixmio.mio_glmer("prop ~ 1 + (1 | g)", d, k=1, family="binomial", weights="trials")
    with pytest.raises(ArgumentError, match="whole numbers"):
        bootstrap_glmer(bfit, B=4)
