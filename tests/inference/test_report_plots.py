"""Significance report renderings and plots."""

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

matplotlib.use("Agg")


def test_report_renderings(boot, fit):
    rep = boot.report()
    text = str(rep)
    assert text.startswith("Bootstrap significance report")
    assert "Flagged clusters" in text and "Stable fixed effects" in text
    sel_levels = set(fit.selected["level"])
    assert set(rep.clusters["level"]) >= sel_levels
    assert set(rep.clusters["direction"]) <= {"above", "below"}
    freq = rep.clusters["selection_frequency"].to_numpy()
    assert (np.diff(freq) <= 0).all()
    assert "Days" in set(rep.fixed["term"])
    md = rep.to_markdown()
    assert md.startswith("## Bootstrap significance report") and "| group" in md
    html = rep.to_html()
    assert html == rep._repr_html_() and "<table>" in html
    frame = rep.to_frame()
    assert set(frame["section"]) == {"flagged cluster", "stable fixed effect"}
    assert len(frame) == len(rep.clusters) + len(rep.fixed)
    assert "<table>" in boot._repr_html_()
    strict = boot.report(min_frequency=1.0).clusters
    assert (strict["selection_frequency"] == 1.0).all()
    with pytest.raises(ValueError, match="min_frequency"):
        boot.report(min_frequency=1.5)


def test_plots_return_figures(boot, fit):
    assert isinstance(fit.plot_effects(boot=boot), Figure)
    assert isinstance(fit.plot_effects(), Figure)
    assert isinstance(fit.with_bootstrap(boot).plot_effects(term="1|Subject"), Figure)
    assert isinstance(boot.plot_selection(), Figure)
    assert isinstance(boot.plot_effects(), Figure)
    st = fit.stability(B=4, random_state=0, progress=False)
    assert isinstance(st.plot_selection(), Figure)
    fig = fit.plot_effects(boot=boot)
    fig.canvas.draw()
