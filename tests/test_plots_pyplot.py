"""Figures are registered with pyplot and stay readable with many clusters (issue 17)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import mixmio  # noqa: E402


@pytest.fixture(scope="module")
def many():
    rng = np.random.default_rng(0)
    K = 300
    g = np.repeat(np.arange(K), 4)
    gam = np.where(np.arange(K) < 5, 3.0, 0.0)
    df = pd.DataFrame({"y": gam[g] + rng.normal(size=g.size), "school": g})
    return mixmio.mio_lmer("y ~ 1 + (1 | school)", df, k=5)


def test_figures_are_pyplot_figures(many):
    fig = many.plot_effects()
    assert fig.number in plt.get_fignums()
    path = mixmio.lmer_path("Reaction ~ Days + (1 | Subject)",
                            mixmio.datasets.load("sleepstudy"), k=[0, 3])
    assert path.plot().number in plt.get_fignums()


def test_many_clusters_show_the_selected_ones(many):
    fig = many.plot_effects()
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == 5
    assert ax.get_ylabel() == "school"
    assert "295 of 300 school levels not shown (295 of them at exactly 0)" in ax.get_title()


def test_top_and_selected_only(many):
    ax = many.plot_effects(top=3).axes[0]
    assert len(ax.get_yticklabels()) == 3
    ax = many.plot_effects(selected_only=False).axes[0]
    assert len(ax.get_yticklabels()) == 300 and "not shown" not in ax.get_title()
    with pytest.raises(TypeError):
        many.plot_effects(selected_only="yes")
    with pytest.raises(ValueError):
        many.plot_effects(top=0)


def test_few_clusters_show_all():
    fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", mixmio.datasets.load("sleepstudy"),
                          k=3)
    ax = fit.plot_effects().axes[0]
    assert len(ax.get_yticklabels()) == 18 and ax.get_ylabel() == "Subject"
