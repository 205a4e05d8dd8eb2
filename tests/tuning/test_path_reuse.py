"""What a path over k builds once and reuses per cap: the cap-only Problem (same arrays, new
caps), the disjoint refit's products (cached per data, invalidated by in-place edits), and
the engine's coefficients from the cluster sums."""

from dataclasses import replace

import numpy as np
import pytest

import mixmio
from mixmio.api._lmer import lmer_prepare, lmer_problem, lmer_settings
from mixmio.problem.build import build_problem
from mixmio.results import refit as R
from mixmio.solvers import solve
from mixmio.solvers.lmm import intercept as ie

SLEEP = "Reaction ~ Days + (1 | Subject)"


@pytest.fixture(scope="module")
def prepared(sleep):
    return lmer_prepare(SLEEP, sleep, "drop", ())


def test_cap_only_problem_equals_a_fresh_build(prepared):
    settings = lmer_settings()
    base = lmer_problem(prepared, 3, settings)
    for k in (0, 5, 18, {"1|Subject": 7}):
        fast = lmer_problem(prepared, k, settings, base=base)
        full = build_problem(prepared.design, k, ridge=base.ridge)
        assert fast.X is base.X and fast.Z is base.Z and fast.y is base.y
        assert fast.terms is base.terms and fast.ridge == full.ridge
        assert [(c.label, c.k) for c in fast.caps] == [(c.label, c.k) for c in full.caps]
        for a, b in zip(fast.caps, full.caps, strict=True):
            np.testing.assert_array_equal(a.index, b.index)
        np.testing.assert_array_equal(fast.penalized, full.penalized)
        assert fast.is_plain and not fast.sign_caps


def test_sign_caps_and_constraints_take_the_full_build(prepared):
    settings = lmer_settings()
    base = lmer_problem(prepared, 3, settings)
    signed = lmer_problem(prepared, {"1|Subject": (2, 1)}, settings, base=base)
    assert signed.sign_caps and [c.k for c in signed.caps] == [3]


def _uncached(problem, w, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(R, "_GRAMS", [])
        m.setattr(R, "_GRAMS_SIZE", 0)  # nothing remembered
        return R.refit_support(problem, w)


def test_refit_products_cached_per_data_and_rechecked(sleep, monkeypatch):
    path = mixmio.lmer_path(SLEEP, sleep, k=[2, 5, 9])
    problems = [f.problem for f in path.fits.values()]
    assert problems[0].X is problems[2].X  # one design: the refits share the products
    R._GRAMS.clear()
    for fit in path.fits.values():
        got = R.refit_support(fit.problem, fit.solution.w)
        np.testing.assert_allclose(got, _uncached(fit.problem, fit.solution.w, monkeypatch),
                                   rtol=1e-12, atol=1e-12)
    assert len(R._GRAMS) == 1
    # an in-place edit of y is seen (checksum), and the refit follows the new data
    prob = problems[1]
    w = path.fits[5].solution.w
    before = R.refit_support(prob, w)
    y0 = prob.y.copy()
    try:
        prob.y[:] = prob.y + 10.0
        after = R.refit_support(prob, w)
        np.testing.assert_allclose(after, _uncached(prob, w, monkeypatch), rtol=1e-12,
                                   atol=1e-9)
        assert not np.allclose(after, before)
    finally:
        prob.y[:] = y0


def test_engine_coefficients_from_cluster_sums(prepared):
    problem = lmer_problem(prepared, 4, lmer_settings())
    term = problem.terms[0]
    codes = np.asarray(term.codes, dtype=np.int64)
    for k in (0, 4, 18):
        p_k = replace(problem, caps=(replace(problem.caps[0], k=k),))
        sol = solve(p_k)
        st = ie.cached_stats(p_k.X, p_k.y, codes, term.n_levels, float(p_k.ridge), k)
        sel = np.asarray(sol.w)[p_k.p:] != 0
        beta, gamma = st.coefficients(sel)
        # the same from the rows: gamma_j = w_j * sum of the cluster's residuals
        res = p_k.y - p_k.X @ beta
        sums = np.bincount(codes, weights=res, minlength=term.n_levels)
        np.testing.assert_allclose(gamma, np.where(sel, sums * st.w, 0.0), rtol=1e-9,
                                   atol=1e-9 * np.abs(sums).max())
        np.testing.assert_allclose(np.concatenate([beta, gamma]), sol.w, rtol=1e-12,
                                   atol=1e-12)
