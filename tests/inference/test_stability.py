"""Stability selection: frequencies, flagged set, bound, and refusals before any solve."""

import numpy as np
import pytest


def test_stability_obs_and_stratified(fit):
    for scheme in ("obs", "cluster_strat"):
        st = fit.stability(B=10, scheme=scheme, random_state=4, progress=False)
        f = st.frequencies
        assert len(f) == fit.problem.m and st.n_ok == 10
        assert ((f["frequency"] >= 0) & (f["frequency"] <= 1)).all()
        assert st.q == pytest.approx(st.selected.sum(axis=1).mean())
        assert st.q <= 3
        assert st.bound == pytest.approx(st.q**2 / ((2 * 0.6 - 1) * 18))
        assert set(st.flagged["level"]) == set(f.loc[f["frequency"] >= 0.6, "level"])
        assert (np.diff(st.flagged["frequency"].to_numpy()) <= 0).all()
        assert "E[false flags] <=" in str(st) and "<table" in st._repr_html_()


def test_complementary_halves_are_disjoint(fit):
    from mixmio.inference._tasks import make_context
    from mixmio.inference.stability import _halves

    for scheme in ("obs", "cluster_strat"):
        ctx = make_context(fit, options={"scheme": scheme})
        a, b = _halves(ctx, np.random.default_rng(0))
        assert len(np.intersect1d(a, b)) == 0 and len(a) == len(b) == fit.n_obs // 2


@pytest.mark.parametrize("kw,msg", [
    ({"frac": 0.4}, "frac must be 0.5"),
    ({"B": 9}, "even B"),
    ({"threshold": 0.5}, r"threshold must be in \(0.5, 1\]"),
    ({"threshold": 1.2}, "threshold"),
    ({"pairing": "triples"}, "pairing"),
    ({"scheme": "rows"}, "scheme"),
    ({"frac": 0.5, "pairing": "none", "threshold": 0.3}, "threshold"),
])
def test_refuses_settings_where_the_bound_fails_before_solving(fit, monkeypatch, kw, msg):
    import mixmio.solvers as solvers

    def boom(*a, **k):
        raise AssertionError("solve must not be called")

    monkeypatch.setattr(solvers, "solve", boom)
    with pytest.raises(ValueError, match=msg):
        fit.stability(progress=False, **kw)


def test_independent_half_samples(fit):
    st = fit.stability(B=5, pairing="none", random_state=1, progress=False)
    assert st.n_ok == 5 and st.pairing == "none"


def test_one_row_per_cluster_is_refused_before_any_solve():
    """With one row per cluster a half-sample holds each cluster at most frac of the time, so
    no frequency can reach a threshold above frac: a clear error, not an empty report."""
    import numpy as np
    import pandas as pd

    import mixmio

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": np.arange(40), "x": rng.normal(size=40)})
    df["y"] = df.x + np.where(df.g < 3, 3.0, 0.0) + rng.normal(size=40)
    fit = mixmio.mio_lmer("y ~ x + (1 | g)", df, k=3)
    with pytest.raises(ValueError, match="every cluster has one row"):
        fit.stability(B=4, progress=False)
