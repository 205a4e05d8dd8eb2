"""A perfect fit (objective ~ 0) is certified ``optimal`` (issue 18): the gap's denominator is
floored at GAP_FLOOR x the null objective, the analogue of a MIP solver's absolute gap
tolerance, so the rounding margins of a bound no longer leave such fits at ``gap_limit``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.solvers.solution import GAP_FLOOR, gap_scale, relative_gap


def test_relative_gap_floor():
    assert relative_gap(10.0, 9.0, scale=1e3) == pytest.approx(0.1)  # above the floor
    assert relative_gap(0.0, -1e-12, scale=1.0) == pytest.approx(1e-12 / GAP_FLOOR)
    assert relative_gap(0.0, -1e-12) == pytest.approx(1e-2)  # no scale: 1e-10 floor
    assert relative_gap(1.0, -np.inf, scale=1.0) == np.inf
    assert gap_scale(object()) == 0.0


def test_scale_invariance_of_the_floor():
    """Scaling y by c scales objective, bound and null objective by c^2: the gap is unchanged."""
    for c in (1e-6, 1e-3, 1.0, 1e4):
        s = c * c
        assert relative_gap(s * 1e-9, s * 1e-9 - s * 1e-13, scale=s * 50.0) == pytest.approx(
            relative_gap(1e-9, 1e-9 - 1e-13, scale=50.0))


def _exact_clr_frame():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 24)
    lab = np.arange(24) % 2
    y = np.where(lab == 0, 1.0 + 2.0 * x, -1.0 - 0.5 * x)  # two exact lines, no noise
    return pd.DataFrame({"x": x, "y": y})


def test_exact_clusterwise_fit_is_optimal():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no gap_limit warning
        fit = mixmio.mio_clr("y ~ x", _exact_clr_frame(), n_clusters=2, random_state=0)
    assert fit.objective < 1e-8
    assert fit.status == "optimal" and fit.gap <= 1e-4
    assert fit.best_bound <= fit.objective


def test_exact_glmer_fit_is_optimal():
    """Counts equal to their expectation (no noise): the deviance of the true support is 0
    up to the tiny ridge, and the fit is optimal, not gap_limit."""
    K, per = 6, 5
    g = np.repeat([f"h{j}" for j in range(K)], per)
    gam = np.zeros(K)
    gam[2] = 1.0
    mu = np.exp(0.5 + np.repeat(gam, per))
    mu = np.round(mu * 4) / 4  # with exposure 4 the counts 4 mu are integers
    df = pd.DataFrame({"y": mu * 4, "g": g, "e": np.full(K * per, 4.0)})
    fit = mixmio.mio_glmer("y ~ 1 + offset(np.log(e)) + (1 | g)", df, k=1, family="poisson",
                           ridge=1e-9)
    assert fit.objective < 1e-6
    assert fit.status == "optimal"
    assert fit.best_bound <= fit.objective


def test_perfect_lmer_fit_is_optimal():
    rng = np.random.default_rng(2)
    K, per = 8, 4
    g = np.repeat(np.arange(K), per)
    x = rng.normal(size=K * per)
    gam = np.zeros(K)
    gam[[1, 5]] = [3.0, -2.0]
    y = 1.0 + 0.5 * x + gam[g]  # no noise
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    fit = mixmio.mio_lmer("y ~ x + (1 | g)", df, k=2, ridge=1e-12)
    assert fit.objective < 1e-9
    assert fit.status == "optimal"
    assert sorted(fit.selected["level"].astype(int)) == [1, 5]
