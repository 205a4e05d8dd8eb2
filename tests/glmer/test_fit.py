"""mixmio.solvers.glmer.fit: exact support fits against the independent oracle and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest

from mixmio.solvers.glmer.fit import fit_lower_bound, fit_support
from tests.glmer._oracle import small_problem, support_minimum

CASES = [
    ("binomial", "y ~ x + (1 | g)", False, False),
    ("binomial", "y ~ x + x2 + (1 | g)", True, True),
    ("poisson", "y ~ x + (1 | g)", True, False),
    ("poisson", "y ~ 1 + (1 | g)", False, True),
    ("binomial", "y ~ x + (1 + x | g)", True, True),      # slopes: block-diagonal gamma block
    ("poisson", "y ~ x2 + (1 + x | g)", False, True),
]


@pytest.mark.parametrize("family,formula,offset,weights", CASES)
def test_fit_support_matches_oracle(family, formula, offset, weights):
    pr = small_problem(family, formula, 6, 7, 3, seed=3, offset=offset, weights=weights,
                       ridge=0.3)
    rng = np.random.default_rng(1)
    for _ in range(3):
        mask = rng.random(pr.m) < 0.5
        w, val, conv = fit_support(pr, mask)
        assert conv
        assert np.all(w[pr.p:][~mask] == 0)
        want, _ = support_minimum(pr, np.concatenate([np.ones(pr.p, bool), mask]))
        assert val == pytest.approx(want, rel=1e-10, abs=1e-10)
        assert pr.objective(w) == pytest.approx(want, rel=1e-10, abs=1e-10)
        lb = fit_lower_bound(pr, mask, w)
        assert want - 1e-8 * abs(want) <= want + 1e-12 and lb <= want
        assert lb >= want - 1e-7 * (1 + abs(want))
        # anywhere else the certified bound stays below the minimum
        lb2 = fit_lower_bound(pr, mask, 0.8 * w)
        assert lb2 <= want


def test_fit_support_start_and_deadline():
    pr = small_problem("poisson", "y ~ x + (1 | g)", 5, 6, 2, seed=0, ridge=0.5)
    mask = np.array([True, False, True, False, False])
    w, val, _ = fit_support(pr, mask)
    w2, val2, conv2 = fit_support(pr, mask, start=w)
    assert conv2 and val2 == pytest.approx(val, rel=1e-12)
    w3, val3, conv3 = fit_support(pr, mask, deadline=0.0)   # deadline already passed
    assert not conv3 and val3 == pytest.approx(pr.objective(w3), rel=1e-12)
    assert fit_lower_bound(pr, mask, w3) <= val


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_k0_is_statsmodels_glm(family):
    sm = pytest.importorskip("statsmodels.api")
    pr = small_problem(family, "y ~ x + x2 + (1 | g)", 8, 6, 0, seed=5, offset=True,
                       weights=True, ridge=1.0)
    w, val, conv = fit_support(pr, np.zeros(pr.m, dtype=bool))
    assert conv
    X = np.asarray(pr.X)
    if family == "binomial":
        endog = np.column_stack([pr.y, pr.weights - pr.y])
        res = sm.GLM(endog, X, family=sm.families.Binomial(), offset=pr.offset).fit(
            tol=1e-13)
    else:
        res = sm.GLM(pr.y, X, family=sm.families.Poisson(), offset=pr.offset,
                     var_weights=pr.weights).fit(tol=1e-13)
    assert val == pytest.approx(res.deviance / 2, rel=1e-9)
    assert w[: pr.p] == pytest.approx(res.params, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_all_clusters_tiny_ridge_is_dummy_glm(family):
    sm = pytest.importorskip("statsmodels.api")
    pr = small_problem(family, "y ~ x + (1 | g)", 6, 12, 6, seed=2, ridge=1e-7)
    w, val, conv = fit_support(pr, np.ones(pr.m, dtype=bool))
    assert conv
    D = np.column_stack([np.asarray(pr.X)[:, 1:], pr.Z.toarray()])   # x + one dummy each
    fam = sm.families.Binomial() if family == "binomial" else sm.families.Poisson()
    res = sm.GLM(pr.y, D, family=fam, offset=pr.offset).fit(tol=1e-13)
    assert val == pytest.approx(res.deviance / 2, rel=1e-5, abs=1e-6)
