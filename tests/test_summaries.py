"""Every front door's ``summary()`` is a Summary: the text, the HTML, and the tables as
DataFrames whose values are the fit's."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.results.summary import Summary, SummaryTable, key_value_table


# fits (module scope: each is solved once) --------------------------------------------------
@pytest.fixture(scope="module")
def lmer_fit():
    return mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
                           mixmio.datasets.load("sleepstudy"), k=3)


@pytest.fixture(scope="module")
def lm_fit():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(100, 5)), columns=list("abcde"))
    df["y"] = 2 * df.a - df.c + rng.normal(size=100)
    return mixmio.mio_lm("y ~ a + b + c + d + e", df, k=2)


@pytest.fixture(scope="module")
def glm_fit():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(200, 5)), columns=list("abcde"))
    eta = 1.5 * df.a - df.d + 0.3
    df["y"] = np.where(rng.random(200) < 1 / (1 + np.exp(-eta)), "yes", "no")
    return mixmio.mio_glm("y ~ a + b + c + d + e", df, k=2)


@pytest.fixture(scope="module")
def clr_fit():
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 10, 12)
    g = np.arange(12) % 2
    df = pd.DataFrame({"x": x, "y": np.where(g == 0, 1 + 2 * x, 25 - 2 * x)
                       + rng.normal(0, 0.3, 12)})
    return mixmio.mio_clr("y ~ x", df, 2, random_state=0)


@pytest.fixture(scope="module")
def holistic_res():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    df["y"] = 2 * df.a - df.b + rng.normal(size=120)
    return mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2, top=2,
                                      B=20, random_state=0)


FRONT_DOORS = {
    # fixture, key text, table names
    "mio_lmer": ("lmer_fit", ["Formula: Reaction ~ Days + (1 | Subject)", "Scaled residuals:",
                              "Random effects (spread of the selected deviations):",
                              "Cluster selection (l0 caps):", "Std. Error", "t value",
                              "status: optimal",
                              "Fixed effects (Std. Error and t value conditional"],
                 ["residuals", "random", "selection", "fixed"]),
    "mio_lm": ("lm_fit", ["best-subset regression (mio_lm)", "Status: optimal", "R-squared:",
                          "P>|t|", "candidate column(s) not selected"], ["model", "coef"]),
    "mio_glm": ("glm_fit", ["best-subset logistic regression (mio_glm)", "Status: optimal",
                            "Deviance:", "P>|z|", "('yes' = 1, 'no' = 0)"], ["model", "coef"]),
    "mio_clr": ("clr_fit", ["clusterwise LAD regression (mio_clr)", "Status: optimal",
                            "Big-M:", "identified"], ["model", "clusters"]),
    "holistic_regression": ("holistic_res", ["Holistic regression: y ~ a + b + c + d",
                                             "Constraints: CorrelationLimit", "val_r2",
                                             "Model 1: k=", "Model 2: k="],
                            ["models", "model 1", "model 2"]),
}


@pytest.mark.parametrize("door", list(FRONT_DOORS))
def test_every_front_door_returns_a_summary(door, request):
    fixture, words, names = FRONT_DOORS[door]
    fit = request.getfixturevalue(fixture)
    s = fit.summary()
    assert isinstance(s, Summary)
    text = str(s)
    for w in words:
        assert w in text, w
    assert repr(s) == text == s.as_text()
    if door != "mio_lmer":  # the result prints as its summary
        assert str(fit) == text
    assert words[0] in s and "no such text" not in s  # ``in`` tests the text, as on a str
    assert list(s.tables) == names
    assert all(isinstance(t, pd.DataFrame) and len(t) for t in s.tables.values())
    for i, name in enumerate(names):
        assert s[name] is s.tables[name] and s[i] is s.tables[name]
    with pytest.raises(KeyError, match="no table 'nope'.*tables: "):
        s["nope"]
    html = s._repr_html_()
    assert html.startswith("<div class='mixmio-summary'>") and html.endswith("</div>")
    assert html.count("<table>") == len(names) and s.as_html() == html
    md = s.to_markdown()
    assert md.count("|:") + md.count("|-") >= len(names)  # a pipe-table rule per table


def test_lmer_tables_are_the_fit(lmer_fit):
    fit = lmer_fit
    s = fit.summary()
    pd.testing.assert_series_equal(s["fixed"]["estimate"], fit.fixef, check_names=False)
    q = np.quantile(fit.residuals / fit.sigma, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(s["residuals"].to_numpy().ravel(), q)
    sel = s["selection"].set_index("group")
    assert sel.loc["Subject", "selected"] == len(fit.selected) == 3
    assert sel.loc["Subject", "levels"] == 18 and sel.loc["Subject", "cap"] == 3
    ran = s["random"].set_index("group")
    dev = fit.ranef["estimate"].to_numpy()
    dev = dev[dev != 0]
    assert ran.loc["Subject", "variance"] == pytest.approx(np.var(dev, ddof=1))
    assert ran.loc["Residual", "std_dev"] == pytest.approx(fit.sigma)
    assert ran.loc["Residual", "variance"] == pytest.approx(fit.sigma ** 2)
    # lme4's width: the random-effects block is Groups, Name, Variance, Std.Dev.
    block = str(s).split("Random effects")[1].split("\n\n")[0].splitlines()[1:]
    assert block[0].split() == ["Groups", "Name", "Variance", "Std.Dev."]
    assert max(map(len, block)) <= 50
    # the text shows the table's values
    line = next(ln for ln in str(s).splitlines() if ln.startswith("Days"))
    assert f"{fit.fixef['Days']:.4g}" in line


def test_lmer_bootstrap_table(lmer_fit):
    boot = lmer_fit.bootstrap(B=20, random_state=1, progress=False)
    s = lmer_fit.with_bootstrap(boot).summary()
    assert list(s.tables) == ["residuals", "random", "selection", "bootstrap", "fixed"]
    want = boot.ranef_table(selected_only=True)
    got = s["bootstrap"]
    np.testing.assert_allclose(got["estimate"], want["estimate"])
    np.testing.assert_allclose(got["se"], want["se"])
    np.testing.assert_allclose(got["selection_frequency"], want["selection_frequency"])
    extra = boot.fixef_table()
    for col in extra.columns:
        assert col in s["fixed"].columns
    assert "Selected clusters (bootstrap):" in str(s) and "Boot.SE" in s._repr_html_()


def test_lm_tables_are_the_fit(lm_fit):
    fit = lm_fit
    s = fit.summary()
    coef = s["coef"]
    assert list(coef.index) == ["Intercept", *fit.selected]
    pd.testing.assert_series_equal(coef["estimate"], fit.coef[coef.index])
    full = fit.coef_table().loc[coef.index]
    pd.testing.assert_frame_equal(coef, full.drop(columns="selected"))
    model = s["model"]["value"]
    assert model["R-squared"] == fit.r_squared and model["Sigma"] == fit.sigma
    assert model["Observations"] == fit.n_obs == 100 and model["k (cap)"] == 2
    assert model["Objective"] == fit.objective and model["Best bound"] == fit.best_bound
    assert model["Solver"] == fit.solver and model["Formula"] == fit.formula
    # the text rows are the table's values, formatted
    for name, r in coef.iterrows():
        line = next(ln for ln in str(s).splitlines() if ln.split()[:1] == [name])
        assert f"{r.estimate:.4f}" in line and f"{r.std_err:.4f}" in line
    assert f"R-squared:     {fit.r_squared:.4f}" in str(s)


def test_glm_tables_are_the_fit(glm_fit):
    fit = glm_fit
    s = fit.summary()
    coef = s["coef"]
    assert list(coef.index) == ["Intercept", *fit.selected]
    pd.testing.assert_series_equal(coef["estimate"], fit.coef[coef.index])
    np.testing.assert_allclose(coef["std_err"], fit.coef_table().loc[coef.index, "std_err"])
    assert list(coef.columns) == ["estimate", "std_err", "z", "p_value", "ci_lower",
                                  "ci_upper"]
    model = s["model"]["value"]
    for label, attr in [("AIC", "aic"), ("BIC", "bic"), ("Deviance", "deviance"),
                        ("Log-likelihood", "loglik"), ("Null deviance", "null_deviance"),
                        ("Df model", "df_model"), ("Gap", "gap"), ("k (cap)", "k")]:
        assert model[label] == getattr(fit, attr), label
    assert model["Response"] == "y ('yes' = 1, 'no' = 0)"
    assert f"{fit.aic:.4f}" in str(s)
    # GlmSummary's old pieces still work
    assert s.header()[0][0] == "Model:" and s.rows()[0][0] == "Intercept"
    assert s.notes()[0].startswith("Status: optimal")


def test_clr_tables_are_the_fit(clr_fit):
    fit = clr_fit
    s = fit.summary()
    pd.testing.assert_frame_equal(s["clusters"], fit.to_frame())
    assert s["clusters"]["size"].sum() == fit.n_obs
    model = s["model"]["value"]
    assert model["Clusters"] == fit.n_clusters == 2 and model["Outliers"] == 0
    assert model["Outlier penalty"] is None and model["Min size"] is None
    assert model["Objective"] == fit.objective
    for k, r in s["clusters"].iterrows():
        line = next(ln for ln in str(s).splitlines() if ln.split()[:1] == [str(k)])
        assert f"{r['x']:.4f}" in line and f"{r['Intercept']:.4f}" in line


def test_holistic_tables_are_the_result(holistic_res):
    res = holistic_res
    s = res.summary()
    pd.testing.assert_frame_equal(s["models"], res.table)
    assert "columns" not in str(s).splitlines()[3]  # the text table drops the column list
    for i, m in enumerate(res.models):
        t = s[f"model {i + 1}"]
        assert list(t.index) == list(m.intervals.index)
        pd.testing.assert_series_equal(t["coef"], m.coef[t.index], check_names=False)
        pd.testing.assert_frame_equal(t[["lower", "upper"]], m.intervals)
    assert str(res) == str(s)


def test_text_is_unchanged_in_shape(lm_fit, clr_fit, glm_fit):
    """The header tables print as before (two label/value pairs a line), then the status."""
    for fit in (lm_fit, clr_fit, glm_fit):
        lines = str(fit.summary()).splitlines()
        assert lines[0].startswith("Model:") and re.search(r"\s{2}Formula:\s+", lines[0])
        assert not str(fit.summary()).endswith("\n")
    assert str(lm_fit.summary()).splitlines()[7].startswith("Status: optimal")
    assert str(clr_fit.summary()).splitlines()[6].startswith("Status: optimal")


def test_lmer_text_ends_with_one_newline(lmer_fit):
    text = str(lmer_fit.summary())
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_summary_base():
    t = pd.DataFrame({"estimate": [1.5, -0.25], "p": [0.01, 0.5]}, index=["a", "b|c"])
    s = Summary(["Title line", "", SummaryTable(
        "coef", t, rows=[["a", "1.50", "0.01"], ["b|c", "-0.25", "0.50"]],
        headers=["", "coef", "P>|z|"], title="Coefficients:",
        options={"disable_numparse": True}), "a note & <more>",
        key_value_table("info", [("N:", 10), ("Solver:", "x", "x-solver"), ("Gap:", 0.0)])])
    text = str(s)
    assert text.splitlines()[:3] == ["Title line", "", "Coefficients:"]
    assert "P>|z|" in text and "a note & <more>" in text
    assert text.splitlines()[-2:] == ["N:    10  Solver:  x-solver", "Gap:   0"]  # 2 a line
    assert s["info"]["value"].tolist() == [10, "x", 0.0]
    assert list(s["info"].index) == ["N", "Solver", "Gap"]
    assert s[0] is t and s[-1] is s["info"]
    html = s._repr_html_()
    assert "<p><b>Coefficients:</b></p>" in html and "a note &amp; &lt;more&gt;" in html
    assert "P&gt;|z|" in html and html.count("<table>") == 2
    assert "<pre></pre>" not in html  # blank lines make no empty blocks
    md = s.to_markdown()
    assert "P>\\|z\\|" in md and "b\\|c" in md and "**Coefficients:**" in md
    assert "```\na note & <more>\n```" in md
    with pytest.raises(IndexError):
        s[5]
    assert not Summary([]).tables and str(Summary([])) == ""

    class Ends(Summary):
        trailing_newline = True

        def _build(self):
            return ["x", "", ""]

    assert str(Ends()) == "x\n"


def test_summary_warns_nothing(lm_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm_fit.summary()._repr_html_()
        lm_fit.summary().to_markdown()
