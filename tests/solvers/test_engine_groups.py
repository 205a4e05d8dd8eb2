"""The grouped-hard-directions path of the random-intercept engine (``_engine_groups``):
exactness against brute-force enumeration of supports, and the one-group trimmed problem
against an independent minimisation."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from mixmio.solvers import solve_engine
from mixmio.solvers.lmm.groups import (
    GroupBnB,
    _knapsack,
    detect,
    free_range,
    group_trim,
    group_trim_lin,
)
from mixmio.solvers.lmm.stats import build_stats
from tests.solvers.test_intercept_engine import brute_force, build, check_against_oracle


def grouped_problem(seed, K=8, n_groups=3, p_soft=1, k=3, effect=1.5, sizes=None):
    """Intercept + a cluster-level factor with ``n_groups`` levels (+ group shifts in y),
    ``p_soft`` row-level covariates whose cluster means differ."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 9, size=K) if sizes is None else np.asarray(sizes)
    codes = np.repeat(np.arange(K), sizes)
    n = codes.size
    grp = np.arange(K) % n_groups
    rng.shuffle(grp)
    dummies = np.column_stack([np.zeros(n)] + [(grp == g).astype(float)[codes]
                                               for g in range(1, n_groups)])[:, 1:]
    soft = rng.normal(size=(n, p_soft)) + 0.5 * rng.normal(size=(K, p_soft))[codes]
    X = np.column_stack([np.ones(n), soft, dummies])
    gamma = effect * (rng.random(K) < 0.4) * rng.choice([-1.0, 1.0], size=K)
    y = X @ rng.normal(size=X.shape[1]) + gamma[codes] + rng.normal(size=n)
    return build(X, codes, y, K, k)


@pytest.fixture(autouse=True)
def _no_enumeration(monkeypatch):
    """Test the grouped branch and bound's own certificate (no enumeration fallback)."""
    import mixmio.solvers.lmm.intercept as ie

    monkeypatch.setattr(ie, "ENUM_SECONDS", -1.0)


def check_grouped(pr, mip_gap):
    """Certified within mip_gap, the bound valid against the brute-force optimum."""
    fb, _ = brute_force(pr)
    sol = solve_engine(pr, mip_gap=mip_gap, time_limit=60)
    assert sol.solver == "mixmio-bnb+groups" and sol.status == "optimal"
    assert sol.best_bound <= fb * (1 + 1e-9) + 1e-12  # a valid lower bound
    assert sol.objective <= fb * (1 + mip_gap) + 1e-12  # within the certified gap
    assert sol.objective >= fb * (1 - 1e-9) - 1e-12
    assert pr.is_feasible(sol.w)
    return sol


@pytest.mark.parametrize("seed", range(6))
def test_grouped_path_matches_brute_force(seed):
    """Certified at 1e-6 (the linearised bound makes the node bound second order in the
    box width; with the interval bound alone two soft columns needed 1e-4)."""
    rng = np.random.default_rng(900 + seed)
    K = int(rng.integers(5, 10))
    p_soft = int(rng.integers(0, 3))
    pr = grouped_problem(seed, K=K, n_groups=int(rng.integers(2, 4)), p_soft=p_soft,
                         k=int(rng.integers(1, K)), effect=float(rng.uniform(0.3, 2.5)))
    st = build_stats(pr.X, pr.y, pr.terms[0].codes, K, float(pr.ridge), pr.caps[0].k)
    assert detect(st) is not None
    check_grouped(pr, 1e-6)


@pytest.mark.parametrize("seed", range(2))
def test_grouped_path_with_three_bisected_coordinates(seed):
    """Three soft columns, or two and a free column (MAX_SOFT = 3)."""
    pr = grouped_problem(40 + seed, K=8, n_groups=2, p_soft=3 - seed, k=2)
    if seed:
        pr = with_free_column(pr, seed)
    st = build_stats(pr.X, pr.y, pr.terms[0].codes, 8, float(pr.ridge), 2)
    gr = detect(st)
    assert gr is not None and gr.M.shape[1] == 3 and gr.n_free == seed
    check_grouped(pr, 1e-6)


def test_grouped_path_without_soft_columns_is_exact_at_the_root():
    pr = grouped_problem(11, K=9, n_groups=3, p_soft=0, k=4)
    sol = check_grouped(pr, 1e-9)
    assert sol.nodes == 1


def with_free_column(pr, seed, n_free=1):
    """``pr`` plus ``n_free`` continuous cluster-level covariates that also move y."""
    rng = np.random.default_rng(seed)
    codes = pr.terms[0].codes
    K = pr.terms[0].n_levels
    Xc = rng.normal(size=(K, n_free))[codes]
    y = pr.y + Xc @ rng.normal(size=n_free)
    return build(np.column_stack([pr.X, Xc]), codes, y, K, pr.caps[0].k)


@pytest.mark.parametrize("seed", range(6))
def test_grouped_path_with_a_continuous_cluster_level_covariate(seed):
    """One continuous cluster-level column besides the categorical ones: bisected as a free
    coordinate from the start box of ``free_range``; certified against brute force."""
    rng = np.random.default_rng(700 + seed)
    K = int(rng.integers(8, 12))
    p_soft = int(rng.integers(0, 2))
    ng = int(rng.integers(2, 4))
    # k below the number of within-group pairs, else free_range has no finite box
    pr = with_free_column(grouped_problem(seed, K=K, n_groups=ng, p_soft=p_soft,
                                          k=int(rng.integers(1, K // 2 - ng + 1)),
                                          effect=float(rng.uniform(0.3, 2.5))), seed)
    st = build_stats(pr.X, pr.y, pr.terms[0].codes, K, float(pr.ridge), pr.caps[0].k)
    gr = detect(st)
    assert gr is not None and gr.n_free == 1
    check_grouped(pr, 1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_free_range_holds_every_good_support(seed):
    """Every support whose objective is within the budget has its optimal coefficient of the
    free column inside the start box (brute force over supports, each refit exactly)."""
    rng = np.random.default_rng(40 + seed)
    K = 9
    pr = with_free_column(grouped_problem(seed, K=K, n_groups=2, p_soft=1, k=2), seed)
    k = pr.caps[0].k
    codes = pr.terms[0].codes
    st = build_stats(pr.X, pr.y, codes, K, float(pr.ridge), k)
    gr = detect(st)
    fb, _ = brute_force(pr)
    budget_U = fb * (1 + float(rng.uniform(0.0, 0.3)))
    lo, hi = free_range(gr, k, budget_U - gr.Wmin)
    col = gr.hard[np.argmax([np.unique(np.round(st.D[:, j] / st.n_k, 9)).size
                             for j in gr.hard])]
    inside = 0
    for r in range(k + 1):
        for S in itertools.combinations(range(K), r):
            sel = np.zeros(K, dtype=bool)
            sel[list(S)] = True
            f, b = st.f_support(sel)
            if f <= budget_U:
                assert lo <= b[col] <= hi
                inside += 1
    assert inside >= 1


def test_grouped_path_not_taken_for_two_free_columns_or_a_single_group(monkeypatch):
    import mixmio.solvers.lmm.intercept as ie

    monkeypatch.setattr(ie, "ENUM_SECONDS", 30.0)  # the generic path, as users get it
    two = with_free_column(grouped_problem(3, K=9, n_groups=2, p_soft=1, k=3), 0, n_free=2)
    one_group = with_free_column(grouped_problem(4, K=9, n_groups=1, p_soft=1, k=3), 1)
    for pr in (two, one_group):
        st = build_stats(pr.X, pr.y, pr.terms[0].codes, 9, float(pr.ridge), 3)
        assert detect(st) is None
        sol = solve_engine(pr, mip_gap=1e-9)
        assert sol.solver in ("mixmio-bnb", "mixmio-bnb+enum")
        check_against_oracle(pr, sol, same_support=False)
    # detected, but k is not below the number of within-group pairs (3 groups of 2): no
    # finite start box for the free coordinate, so the generic path runs
    few = with_free_column(grouped_problem(1, K=6, n_groups=3, p_soft=1, k=3,
                                           sizes=[4, 5, 6, 4, 5, 6]), 2)
    st = build_stats(few.X, few.y, few.terms[0].codes, 6, float(few.ridge), 3)
    gr = detect(st)
    assert gr is not None and gr.n_free == 1 and free_range(gr, 3, 1e9) is None
    sol = solve_engine(few, mip_gap=1e-9)
    assert sol.solver in ("mixmio-bnb", "mixmio-bnb+enum")
    check_against_oracle(few, sol, same_support=False)


def _trim_oracle(lo, hi, v, e, kk):
    """min over |S| = kk and t of the one-group objective, by enumerating S and minimising
    the convex function of t for each."""
    best = np.inf
    a, b = float(lo.min()), float(hi.max())
    for S in itertools.combinations(range(lo.size), kk):
        keep = np.ones(lo.size, bool)
        keep[list(S)] = False

        def f(t, keep=keep):
            d = np.maximum(np.maximum(lo - t, t - hi), 0.0)
            return 0.5 * float(np.sum(e * d * d) + np.sum((v * d * d)[keep]))

        r = minimize_scalar(f, bounds=(a - 1, b + 1), method="bounded",
                            options={"xatol": 1e-12})
        best = min(best, r.fun, f(a), f(b))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_group_trim_against_enumeration(seed):
    rng = np.random.default_rng(seed)
    N = int(rng.integers(2, 8))
    mid = rng.normal(size=N)
    half = 0.0 if seed % 2 == 0 else rng.uniform(0, 0.4, size=N)  # points, then intervals
    lo, hi = mid - half, mid + half
    v = rng.uniform(0.5, 20, size=N)
    e = rng.uniform(0.0, 0.05, size=N)
    L, order = group_trim(lo, hi, v, e, N)
    for kk in range(N + 1):
        ref = _trim_oracle(lo, hi, v, e, kk)
        assert L[kk] <= ref + 1e-9 * max(1.0, ref)  # a valid lower bound ...
        assert L[kk] >= ref - 1e-7 * max(1.0, ref)  # ... and exact
        # the returned order's first kk entries achieve it
        S = order[kk][:kk]
        assert len(set(S.tolist())) == kk


def test_group_trim_budget_only_drops_points_above_it():
    rng = np.random.default_rng(4)
    N = 7
    lo = rng.normal(size=N)
    hi = lo + rng.uniform(0, 0.3, size=N)
    v, e = rng.uniform(1, 10, size=N), np.full(N, 0.01)
    full, _ = group_trim(lo, hi, v, e, 3)
    for budget in (0.0, 0.5, 2.0, 10.0, 1e6):
        cut, _ = group_trim(lo, hi, v, e, 3, budget=budget)
        for kk in range(4):
            if full[kk] <= budget:
                assert cut[kk] == pytest.approx(full[kk], rel=1e-12, abs=1e-12)
            else:
                assert cut[kk] >= full[kk] - 1e-12  # inf, or a value above the budget


def test_knapsack_against_enumeration():
    rng = np.random.default_rng(1)
    Ls = [np.sort(rng.uniform(0, 10, size=s))[::-1] for s in (3, 5, 2)]
    for k in range(0, 8):
        val, ks = _knapsack(Ls, k)
        ref = min(sum(L[i] for L, i in zip(Ls, c, strict=True))
                  for c in itertools.product(*(range(L.size) for L in Ls)) if sum(c) <= k)
        assert val == pytest.approx(ref)
        assert sum(ks) <= k and val == pytest.approx(sum(L[i] for L, i in zip(Ls, ks,
                                                                               strict=True)))


def test_exam_school_gender_is_certified():
    """The shipped example that needed enumeration (k <= 6) or timed out (k > 6)."""
    import mixmio

    ex = mixmio.datasets.load("exam")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fit = mixmio.mio_lmer("normexam ~ standLRT + schgend + (1 | school)", ex, k=10)
    assert fit.status == "optimal" and fit.solver == "mixmio-bnb+groups"
    assert fit.gap <= 1e-4


def _lin_oracle(a, mu2, v, e, kk):
    """min over |S| <= kk and t of the relaxed one-group objective, by enumerating S (the
    minimum over t of a sum of quadratics is closed form)."""
    best = np.inf
    for r in range(kk + 1):
        for S in itertools.combinations(range(a.size), r):
            c = (e + v).copy()
            c[list(S)] = e[list(S)]
            t = float((c * a).sum() / c.sum()) if c.sum() > 0 else 0.0
            best = min(best, 0.5 * float((c * ((a - t) ** 2 - mu2)).sum()))
    return best


@pytest.mark.parametrize("seed", range(8))
def test_group_trim_lin_against_enumeration(seed):
    rng = np.random.default_rng(300 + seed)
    N = int(rng.integers(1, 8))
    a = 2 * rng.normal(size=N)
    mu2 = (rng.uniform(0, 1, size=N) * (rng.random(N) < 0.7)) ** 2
    v = rng.uniform(0.2, 10, size=N)
    e = rng.uniform(0, 0.1, size=N) * (seed % 2)
    kmax = int(rng.integers(0, N + 1))
    L = group_trim_lin(a, mu2, v, e, kmax)
    for kk in range(kmax + 1):
        assert L[kk] == pytest.approx(_lin_oracle(a, mu2, v, e, kk), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_linearised_bound_is_below_the_objective_on_its_box(seed):
    """On random boxes, the linearised bound never exceeds the exact reduced objective at
    any sampled point of the box (the objective at a point: Wmin + ||u||^2/2 + the exact
    trimmed problem at that point)."""
    rng = np.random.default_rng(60 + seed)
    pr = grouped_problem(seed, K=10, n_groups=2, p_soft=2, k=3)
    if seed % 2:
        pr = with_free_column(grouped_problem(seed, K=10, n_groups=2, p_soft=1, k=3), seed)
    st = build_stats(pr.X, pr.y, pr.terms[0].codes, 10, float(pr.ridge), 3)
    gr = detect(st)
    bnb = GroupBnB(st, gr, 3)
    d = gr.M.shape[1]
    for _ in range(10):
        c = rng.normal(size=d) * 0.5
        h = rng.uniform(0.001, 0.5, size=d)
        lo, hi = c - h, c + h
        lin = bnb.linearised(lo, hi)
        z = lo + (hi - lo) * rng.random((300, d))
        z = np.vstack([z, lo, hi, c])
        vals = []
        for zz in z:
            m = gr.m0 - gr.M @ zz
            G, _ = bnb.trimmed(m, m)
            vals.append(gr.Wmin + 0.5 * float(zz[: bnb.ps] @ zz[: bnb.ps]) + G)
        assert lin <= min(vals) + 1e-9 * abs(min(vals))
        # and tight on tiny boxes (second order): within 1e-3 of the value at the centre
        tiny = bnb.linearised(c - 1e-4, c + 1e-4)
        m = gr.m0 - gr.M @ c
        Gc, _ = bnb.trimmed(m, m)
        fc = gr.Wmin + 0.5 * float(c[: bnb.ps] @ c[: bnb.ps]) + Gc
        assert fc - 1e-3 * abs(fc) <= tiny <= fc + 1e-9 * abs(fc)
