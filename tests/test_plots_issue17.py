"""Issue 17's plots: every figure is a pyplot figure, the path / CV / audit-budget plots say
what they show, caterpillar plots stay readable with 300 and 3,000 clusters, and the funnel
plot of flagged units (mio_glmer Poisson and binomial, mio_lmer)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import mixmio  # noqa: E402
from mixmio.inference.plots import plot_funnel  # noqa: E402


def _registered(fig) -> bool:
    return isinstance(fig, Figure) and fig.number in plt.get_fignums()


def _clusters(K: int, rows: int, strong: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(K), rows)
    gam = np.where(np.arange(K) < strong, 3.0, 0.0) * np.where(np.arange(K) % 2, 1, -1)
    return pd.DataFrame({"y": gam[g] + rng.normal(size=g.size), "school": g})


@pytest.fixture(scope="module")
def sleep():
    return mixmio.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def path(sleep):
    return mixmio.lmer_path("Reaction ~ Days + (1 | Subject)", sleep, k=[0, 2, 4, 8, 18])


@pytest.fixture(scope="module")
def cv(sleep):
    return mixmio.cv_lmer("Reaction ~ Days + (1 | Subject)", sleep, k=[0, 2, 4, 8, 18],
                          folds=3, cv="within", random_state=0)


@pytest.fixture(scope="module")
def hai_fit():
    hai = mixmio.datasets.load("ny_hai")
    ssi = hai[(hai.indicator == "SSI Hysterectomy")
              & ~hai.comparison.str.startswith("Not compared")]
    return mixmio.mio_glmer("observed ~ offset(np.log(predicted)) + (1 | hospital)", ssi,
                            k=4, family="poisson")


# -- path, CV curve, audit budget ------------------------------------------------------------
def test_path_plot_is_a_pyplot_figure(path):
    fig = path.plot()
    assert _registered(fig)
    ax = fig.axes[0]
    assert "Subject" in ax.get_ylabel()  # effect (1|Subject)
    assert ax.get_xlabel().startswith("k")
    n_lines = len([ln for ln in ax.get_lines() if len(ln.get_xdata()) == 5])
    assert n_lines == (path.effects() != 0).any(axis=1).sum() >= 1
    assert ax.get_title().endswith("Subject levels enter the path")


def test_audit_plot_is_a_pyplot_figure(path):
    fig = path.plot_audit()
    assert _registered(fig)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] == pytest.approx(1.02)
    assert ax.get_xlabel() == "Subject levels reviewed (path order)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["path ranking", "random order"]


def test_cv_plot_marks_min_and_1se(cv):
    fig = cv.plot()
    assert _registered(fig)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    chosen = {"min": f"min (k={cv.k_min}, chosen)", "1se": f"1 SE (k={cv.k_1se}, chosen)"}
    other = {"min": f"1 SE (k={cv.k_1se})", "1se": f"min (k={cv.k_min})"}
    assert chosen[cv.rule] in labels and other[cv.rule] in labels
    assert "Subject effects" in ax.get_xlabel()
    vlines = {float(ln.get_xdata()[0]) for ln in ax.get_lines()
              if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]}
    assert {float(cv.k_min), float(cv.k_1se)} <= vlines
    assert cv.k_1se <= cv.k_min
    assert "held-out" in ax.get_ylabel()


def test_plots_draw_on_a_given_axes(path, cv):
    fig, axes = plt.subplots(1, 3)
    assert path.plot(ax=axes[0]) is fig
    assert path.plot_audit(ax=axes[1]) is fig
    assert cv.plot(ax=axes[2]) is fig


# -- caterpillar plots with many clusters ------------------------------------------------------
@pytest.mark.parametrize("K", [300, 3000])
def test_effects_readable_with_many_clusters(K):
    fit = mixmio.mio_lmer("y ~ 1 + (1 | school)", _clusters(K, 3, 8), k=8)
    assert fit.status == "optimal"
    fig = fit.plot_effects()  # default: the selected ones, the zeros counted in the title
    assert _registered(fig)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "school"
    assert len(ax.get_yticklabels()) == 8
    assert f"{K - 8} of {K} school levels not shown" in ax.get_title()
    assert fig.get_size_inches()[1] <= 40
    for top in (3, 20):
        ax = fit.plot_effects(top=top, selected_only=False).axes[0]
        rows = len(ax.get_yticklabels())
        assert rows <= top + 1 and rows == top  # no empty row for the zeros
        assert f"{K - top} of {K} school levels not shown" in ax.get_title()
        drawn = {t.get_text() for t in ax.get_yticklabels()}
        assert drawn <= {str(v) for v in range(K)}
    ax = fit.plot_effects(top=5).axes[0]
    assert len(ax.get_yticklabels()) == 5
    assert "school" in ax.get_xlabel()


# -- funnel plots ------------------------------------------------------------------------------
def test_funnel_poisson_hospitals(hai_fit):
    fig = hai_fit.plot_funnel()
    assert _registered(fig)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "observed / expected, per hospital"
    assert ax.get_xscale() == "log" and "population model" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95% limits" in legend and "99.8% limits" in legend
    n_sel = len(hai_fit.selected)
    assert sum(int(s.split("(")[-1].rstrip(")")) for s in legend if s.startswith("selected")) \
        == n_sel
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == n_sel
    names = set(hai_fit.selected["level"])
    assert all(any(n.startswith(t.rstrip("…")) for n in names) for t in texts)
    assert f"{n_sel} of 122 hospital levels selected" in ax.get_title()
    # every hospital is a point: O/E under the intercept-only model (its total O = total E)
    pts = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(pts) == 122
    ssi_o = hai_fit.design.y.sum()
    e = pts[:, 0]
    assert e.sum() == pytest.approx(ssi_o, rel=1e-6)
    assert (pts[:, 1] * e).sum() == pytest.approx(ssi_o, rel=1e-6)


def test_funnel_limits_are_poisson_quantiles():
    from scipy.stats import poisson

    from mixmio.inference.plots import _count_limits

    e = np.array([2.0, 10.0, 50.0])
    hi = _count_limits(e, 0.975, None) * e
    lo = _count_limits(e, 0.025, None) * e
    # the interpolated limits lie between the integer quantile and the one below it
    assert np.all(hi <= poisson.ppf(0.975, e)) and np.all(hi >= poisson.ppf(0.975, e) - 1)
    assert np.all(lo <= poisson.ppf(0.025, e)) and np.all(lo >= poisson.ppf(0.025, e) - 1)
    wide = _count_limits(e, 0.999, None)
    assert np.all(wide >= hi / e) and np.all(np.diff(hi / e) < 0)  # the funnel narrows


def test_funnel_binomial_marks_the_strong_clusters():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(40), 5)
    n = rng.integers(5, 40, g.size)
    p = 1 / (1 + np.exp(1.5 - np.where(g < 3, 1.2, 0.0)[g]))
    df = pd.DataFrame({"y": rng.binomial(n, p) / n, "n": n, "g": g})
    fit = mixmio.mio_glmer("y ~ 1 + (1 | g)", df, k=3, family="binomial", weights="n")
    ax = plot_funnel(fit).axes[0]
    assert ax.get_ylabel() == "observed / expected, per g"
    assert sorted(t.get_text() for t in ax.texts) == sorted(fit.selected["level"].astype(str))
    assert "mio_glmer (binomial)" in ax.get_title()


def test_funnel_lmer_and_checks(sleep):
    fit = mixmio.mio_lmer("Reaction ~ Days + (Days | Subject)", sleep, k=3)
    fig = fit.plot_funnel(label=False)
    assert _registered(fig)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "mean residual for the intercept, per Subject"
    assert ax.get_xlabel() == "rows per Subject" and len(ax.texts) == 0
    pts = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(pts) == 18 and np.all(pts[:, 0] == 10)
    fig2, ax2 = plt.subplots()
    assert fit.plot_funnel(ax=ax2, levels=[0.9]) is fig2
    with pytest.raises(ValueError, match="levels"):
        fit.plot_funnel(levels=[1.5])
    slope = mixmio.mio_lmer("Reaction ~ Days + (0 + Days | Subject)", sleep, k=3)
    with pytest.raises(ValueError, match="random intercept"):
        slope.plot_funnel()
