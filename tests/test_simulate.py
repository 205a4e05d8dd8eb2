"""mixmio.simulate: the seed paper's data-generating process (METHODS section 8)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.simulate import SimulatedData, simulate


def test_same_seed_same_data_and_generator_accepted():
    a = simulate(5, 3, random_state=7)
    b = simulate(5, 3, random_state=7)
    c = simulate(5, 3, random_state=np.random.default_rng(7))
    for s, t, u in zip(a.sets, b.sets, c.sets, strict=True):
        pd.testing.assert_frame_equal(s, t)
        pd.testing.assert_frame_equal(s, u)
    pd.testing.assert_series_equal(a.gamma, b.gamma)
    pd.testing.assert_series_equal(a.beta, b.beta)
    d = simulate(5, 3, random_state=8)
    assert not np.allclose(a.train["y"], d.train["y"])


def test_shapes_columns_and_sets_are_independent_draws():
    sim = simulate(6, 4, rows_per_cluster=7, n_sets=3, random_state=0)
    assert isinstance(sim, SimulatedData) and len(sim.sets) == 3
    for frame in (sim.train, sim.validation, sim.test):
        assert list(frame.columns) == ["y", "x1", "x2", "x3", "x4", "cluster"]
        assert frame.shape == (42, 6)
        assert frame["cluster"].value_counts().sort_index().tolist() == [7] * 6
    assert not np.allclose(sim.train["x1"], sim.validation["x1"])
    assert list(sim.beta.index) == ["x1", "x2", "x3", "x4"]
    assert list(sim.gamma.index) == list(range(6))
    assert set(sim.beta) <= {-1.0, 0.0, 1.0}
    one = simulate(6, 4, n_sets=1, random_state=0)
    assert len(one.sets) == 1
    with pytest.raises(AttributeError, match="no validation set"):
        _ = one.validation


@pytest.mark.parametrize("K, zero_fraction, n_nonzero", [
    (10, 0.9, 1), (10, 0.7, 3), (10, 2 / 3, 4), (4, 0.9, 1), (14, 0.9, 2), (10, 0.0, 10),
    (10, 1.0, 0)])
def test_sparse_regime_zero_fraction_and_plus_minus_sigma(K, zero_fraction, n_nonzero):
    sim = simulate(K, 2, zero_fraction=zero_fraction, sigma_cluster=3.5, random_state=1)
    g = sim.gamma.to_numpy()
    assert int(np.sum(g != 0)) == n_nonzero  # ceil(K (1 - zero_fraction)), authors' code
    assert set(np.abs(g[g != 0])) <= {3.5}
    assert sim.zero_share == pytest.approx(1 - n_nonzero / K)


def test_signs_are_a_fair_coin_and_positions_vary():
    signs, first = [], []
    for seed in range(200):
        g = simulate(10, 1, zero_fraction=0.5, random_state=seed).gamma.to_numpy()
        signs.extend(np.sign(g[g != 0]))
        first.append(g[0] != 0)
    assert abs(np.mean(signs)) < 0.1           # 1,000 coins: sd of the mean ~ 0.03
    assert 0.35 < np.mean(first) < 0.65        # cluster 0 non-zero about half the time


def test_gaussian_regime_variance():
    g = np.concatenate([simulate(50, 1, regime="gaussian", sigma_gamma2=4.0,
                                 random_state=s).gamma.to_numpy() for s in range(40)])
    assert np.var(g) == pytest.approx(4.0, rel=0.1)  # 2,000 draws: se of var ~ 3%
    assert np.mean(g == 0) == 0


def test_confounding_x_scale_follows_the_cluster_effect():
    # x_iv = xi_iv gamma_c(i) + N(0, 1): within cluster k, var(x) = 1 + gamma_k^2; the
    # dependence is in the scale, so |x| correlates with |gamma| (linear corr is ~0 by design)
    sim = simulate(20, 5, rows_per_cluster=200, regime="gaussian", sigma_gamma2=4.0,
                   n_sets=1, random_state=3)
    tr = sim.train
    g = sim.gamma.to_numpy()[tr["cluster"].to_numpy()]
    x = tr[[f"x{v}" for v in range(1, 6)]].to_numpy()
    var_in = tr.groupby("cluster")[["x1", "x2", "x3", "x4", "x5"]].var().mean(axis=1)
    np.testing.assert_allclose(var_in, 1 + sim.gamma**2, rtol=0.25)
    assert np.corrcoef(np.abs(x[:, 0]), np.abs(g))[0, 1] > 0.3
    assert abs(np.corrcoef(x[:, 0], g)[0, 1]) < 0.1
    # y's mean: x' beta + gamma (no intercept)
    resid = tr["y"].to_numpy() - x @ sim.beta.to_numpy() - g
    assert abs(resid.mean()) < 0.05 and resid.std() == pytest.approx(math.sqrt(0.5), rel=0.05)


def test_mio_at_true_k_recovers_the_support():
    sim = simulate(12, 3, rows_per_cluster=30, zero_fraction=0.75, sigma_cluster=1.0,
                   noise_sd=0.3, n_sets=1, random_state=11)
    k = int(np.sum(sim.gamma != 0))
    assert k == 3
    fit = mixmio.mio_lmer("y ~ 0 + x1 + x2 + x3 + (1 | cluster)", sim.train, k=k)
    assert fit.status == "optimal"
    chosen = sorted(int(level) for level in fit.selected["level"])
    assert chosen == sorted(np.flatnonzero(sim.gamma.to_numpy()).tolist())
    np.testing.assert_allclose(fit.fixef[sim.beta.index], sim.beta, atol=0.1)


@pytest.mark.parametrize("kwargs, match", [
    ({"zero_fraction": -0.1}, "zero_fraction must be in \\[0, 1\\]"),
    ({"zero_fraction": 1.5}, "zero_fraction must be in \\[0, 1\\]"),
    ({"zero_fraction": float("nan")}, "zero_fraction"),
    ({"n_clusters": 0}, "n_clusters must be an integer >= 1"),
    ({"n_clusters": 2.5}, "n_clusters must be an integer >= 1"),
    ({"n_features": 0}, "n_features must be an integer >= 1"),
    ({"rows_per_cluster": 0}, "rows_per_cluster"),
    ({"n_sets": 0}, "n_sets"),
    ({"regime": "laplace"}, "regime must be one of"),
    ({"sigma_cluster": -1.0}, "sigma_cluster"),
    ({"sigma_gamma2": float("inf")}, "sigma_gamma2"),
    ({"noise_sd": -0.1}, "noise_sd"),
])
def test_argument_errors(kwargs, match):
    args = {"n_clusters": 4, "n_features": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate(args.pop("n_clusters"), args.pop("n_features"), **args)
