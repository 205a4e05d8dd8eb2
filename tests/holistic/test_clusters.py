"""Cluster-side constraints on mio_lmer: joint selection, asymmetric caps, forced/excluded
clusters -- respected and equal to brute force."""

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio import Exclude, ForceInclude, JointClusterSelection
from tests.oracles import brute_force


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(11)
    K, per = 6, 6
    g = np.repeat([f"h{i}" for i in range(K)], per)
    x = rng.normal(size=K * per)
    dev = {"h0": 3.0, "h1": -2.5, "h4": 2.0}
    y = 1 + x + np.array([dev.get(v, 0.0) for v in g]) + rng.normal(size=K * per)
    y = y + np.where(g == "h2", 1.5, 0.0) * x
    return pd.DataFrame({"y": y, "x": x, "g": g})


def _z(fit):
    z = fit.solution.z
    return (fit.solution.w != 0) if z is None else np.asarray(z, dtype=bool)


def test_joint_cluster_selection(clustered):
    fit = mixmio.mio_lmer("y ~ x + (1 + x | g)", clustered, k=2, refit=False,
                          constraints=[JointClusterSelection("g")])
    z = _z(fit)
    p = fit.problem.p
    assert np.array_equal(z[p:p + 6], z[p + 6:p + 12])
    assert fit.problem.is_feasible(fit.solution.w, z=z)
    best, _ = brute_force(fit.problem)
    assert fit.objective == pytest.approx(best, rel=1e-6)
    assert fit.status == "optimal"


def test_asymmetric_cap(clustered):
    fit = mixmio.mio_lmer("y ~ x + (1 | g)", clustered, k={"1|g": (2, 0)}, refit=False)
    est = fit.ranef.estimate
    assert (est > 0).sum() <= 2 and (est < 0).sum() == 0
    best, _ = brute_force(fit.problem)
    assert fit.objective == pytest.approx(best, rel=1e-5)
    assert fit.status == "optimal"
    refit = mixmio.mio_lmer("y ~ x + (1 | g)", clustered, k={"1|g": (1, 1)})
    e = refit.ranef.estimate
    assert (e > 0).sum() <= 1 and (e < 0).sum() <= 1


def test_forced_and_excluded_clusters(clustered):
    cons = [ForceInclude(clusters={"g": ["h3"]}), Exclude(clusters={"1|g": ["h0"]})]
    fit = mixmio.mio_lmer("y ~ x + (1 | g)", clustered, k=2, refit=False, constraints=cons)
    sel = set(fit.selected.level) | {lv for lv, zz in zip(
        fit.ranef.level, _z(fit)[fit.problem.p:], strict=True) if zz}
    assert "h3" in sel and "h0" not in set(fit.selected.level)
    best, _ = brute_force(fit.problem)
    assert fit.objective == pytest.approx(best, rel=1e-6)


def test_cluster_infeasible_raises_and_names(clustered):
    with pytest.raises(ValueError, match="ForceInclude"):
        mixmio.mio_lmer("y ~ x + (1 | g)", clustered, k=1,
                        constraints=[ForceInclude(clusters={"g": ["h1", "h2"]})])
    with pytest.raises(KeyError, match="not a level"):
        mixmio.mio_lmer("y ~ x + (1 | g)", clustered, k=1,
                        constraints=[ForceInclude(clusters={"g": ["nope"]})])
    with pytest.raises(ValueError, match="k_fixed"):
        mixmio.mio_lmer("y ~ x + (1 | g)", clustered, k=1, constraints=[Exclude(["x"])])
