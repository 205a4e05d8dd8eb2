"""Plots of best-subset bootstraps (``plot_selection``) and clusterwise regressions (``plot``)."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import mixmio
from mixmio.inference.plots import DIMMED, HIGHLIGHT, OUTLIER_COLOR, frequency_bars

matplotlib.use("Agg")


# -- best-subset bootstrap -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def subset_boot():
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(80, 5)), columns=["a", "b", "c", "d", "e"])
    # c is weak: selected in some replicates only
    df["y"] = 2 * df.a - 1.2 * df.b + 0.25 * df.c + rng.normal(size=80)
    fit = mixmio.mio_lm("y ~ a + b + c + d + e", df, k=3)
    return fit.bootstrap(B=20, random_state=2)


def _bars(ax):
    names = [t.get_text() for t in ax.get_yticklabels()]
    widths = [p.get_width() for p in ax.patches]
    ys = [p.get_y() + p.get_height() / 2 for p in ax.patches]
    return names, widths, ys


def test_subset_bars_match_table(subset_boot):
    t = subset_boot.table
    fig = subset_boot.plot_selection()
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    names, widths, ys = _bars(ax)
    cand = t[~t["always_in"]]
    assert "Intercept" not in names and "Intercept" in t.index
    assert sorted(names) == sorted(cand.index)
    # bars top to bottom: most frequent first (ties in design order)
    order = np.argsort(-cand["selection_frequency"].to_numpy(), kind="stable")
    assert names == list(cand.index[order])
    assert widths == pytest.approx(cand["selection_frequency"].to_numpy()[order])
    assert np.all(np.diff(ys) < 0)  # drawn from the top down
    assert list(ax.get_yticks()) == pytest.approx(ys)
    # the frequencies are not all equal, so the order is informative
    assert len(set(widths)) > 1


def test_subset_highlight_is_full_data_selection(subset_boot):
    t = subset_boot.table
    ax = subset_boot.plot_selection().axes[0]
    names, _, _ = _bars(ax)
    blue = {n for n, p in zip(names, ax.patches, strict=True)
            if p.get_facecolor() == to_rgba(HIGHLIGHT)}
    gray = {n for n, p in zip(names, ax.patches, strict=True)
            if p.get_facecolor() == to_rgba(DIMMED)}
    selected = set(t.index[t["selected"] & ~t["always_in"]])
    assert blue == selected == {"a", "b", "c"}
    assert gray == set(t.index[~t["selected"] & ~t["always_in"]])


def test_subset_threshold_line_and_ax(subset_boot):
    from matplotlib.figure import Figure as F

    fig = F()
    ax = fig.add_subplot()
    assert subset_boot.plot_selection(ax=ax, min_frequency=0.8) is fig
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [0.8, 0.8]
    for bad in (1.5, -0.1, "0.5", True):
        with pytest.raises(ValueError, match="min_frequency"):
            subset_boot.plot_selection(min_frequency=bad)
    fig.canvas.draw()


def test_frequency_bars_checks_lengths():
    with pytest.raises(ValueError, match="names"):
        frequency_bars(["a"], [0.1, 0.2])
    with pytest.raises(ValueError, match="highlight"):
        frequency_bars(["a", "b"], [0.1, 0.2], highlight=[True])


# -- clusterwise regression ---------------------------------------------------------------------
def _line_slope_intercept(line):
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    slope = (y[1] - y[0]) / (x[1] - x[0])
    return slope, y[0] - slope * x[0]


def _cluster_collections(ax):
    return {c.get_label(): c for c in ax.collections}


@pytest.fixture(scope="module")
def clr_fit():
    rng = np.random.default_rng(1)
    n = 16
    x = rng.uniform(0, 10, n)
    y = np.where(np.arange(n) % 2 == 0, 1 + 2 * x, 25 - 2 * x) + rng.normal(0, 0.3, n)
    y[[3, 8]] += [40.0, -40.0]  # two gross outliers
    return mixmio.mio_clr("y ~ x", pd.DataFrame({"x": x, "y": y}), 2, outlier_penalty=5.0,
                          random_state=0)


def test_clr_scatter_and_lines(clr_fit):
    fit = clr_fit
    lab = fit.labels_.to_numpy()
    assert (lab == -1).sum() == 2 and fit.sizes.tolist() == [7, 7]
    fig = fit.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"
    cols = _cluster_collections(ax)
    assert len(ax.collections) == fit.n_clusters + 1
    x = fit.design.X["x"].to_numpy()
    y = fit.design.y
    for k in range(fit.n_clusters):
        c = cols[f"cluster {k} (n={(lab == k).sum()})"]
        pts = np.asarray(c.get_offsets())
        assert pts.shape == ((lab == k).sum(), 2)
        assert pts[:, 0] == pytest.approx(x[lab == k]) and pts[:, 1] == pytest.approx(y[lab == k])
    out = cols["outlier (n=2)"]
    assert np.asarray(out.get_offsets())[:, 0] == pytest.approx(x[lab == -1])
    assert out.get_facecolor()[0] == pytest.approx(to_rgba(OUTLIER_COLOR))
    assert out.get_facecolor()[0] != pytest.approx(cols["cluster 0 (n=7)"].get_facecolor()[0])
    assert len(ax.lines) == fit.n_clusters
    for k, line in enumerate(ax.lines):
        slope, icpt = _line_slope_intercept(line)
        assert slope == pytest.approx(fit.coef.loc[k, "x"])
        assert icpt == pytest.approx(fit.coef.loc[k, "Intercept"])
        assert to_rgba(line.get_color()) == pytest.approx(
            tuple(cols[f"cluster {k} (n=7)"].get_facecolor()[0]))
    fig.canvas.draw()


def test_clr_several_covariates_and_bad_x():
    rng = np.random.default_rng(4)
    n = 14
    df = pd.DataFrame({"x": rng.uniform(0, 10, n), "z": rng.uniform(-1, 1, n)})
    g = np.arange(n) % 2
    df["y"] = np.where(g == 0, 1 + 2 * df.x + 3 * df.z, 20 - df.x - 2 * df.z) \
        + rng.normal(0, 0.2, n)
    fit = mixmio.mio_clr("y ~ x + z", df, 2, random_state=0)
    lab = fit.labels_.to_numpy()
    for xname in ("x", "z"):
        ax = fit.plot(x=xname).axes[0]
        assert ax.get_xlabel() == xname
        assert len(ax.collections) == 2 and len(ax.lines) == 2
        other = "z" if xname == "x" else "x"
        for k, line in enumerate(ax.lines):
            slope, icpt = _line_slope_intercept(line)
            b = fit.coef.loc[k]
            assert slope == pytest.approx(b[xname])
            assert icpt == pytest.approx(b["Intercept"] + b[other] * df[other][lab == k].mean())
    assert fit.plot().axes[0].get_xlabel() == "x"  # default: first non-intercept column
    with pytest.raises(ValueError, match=r"\['x', 'z'\].*'w'"):
        fit.plot(x="w")
    with pytest.raises(ValueError, match="non-intercept"):
        fit.plot(x="Intercept")
    only = mixmio.mio_clr("y ~ 1", df, 2, random_state=0)
    with pytest.raises(ValueError, match="no covariate"):
        only.plot()
