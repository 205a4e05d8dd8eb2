"""MioGlmerResult: the value a mio_glmer fit returns."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import norm

from mixmio.errors import ArgumentError
from mixmio.problem import family as fam
from mixmio.results._methods import method
from mixmio.results.lmer import MioLmerResult
from mixmio.results.summary import LmerSummary, _num, _table

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mixmio.design import Design
    from mixmio.problem.glmer import GlmmProblem
    from mixmio.solvers.solution import Solution

LINKS = {"binomial": "logit", "poisson": "log"}
RATIO = {"binomial": "odds_ratio", "poisson": "rate_ratio"}


@dataclass(frozen=True, eq=False)
class MioGlmerResult(MioLmerResult):
    """A fitted sparse generalised linear mixed model (:func:`mixmio.mio_glmer`).

    Estimates are the penalised fit of the selection (deviance / 2 + ridge / 2 ||gamma||^2
    on the selected support): ``fixef``, ``ranef`` and ``selected`` (with an ``odds_ratio``
    or ``rate_ratio`` column, exp(estimate)), ``fitted`` (response scale), ``residuals``
    (deviance residuals), ``deviance``, ``loglik``, ``aic``, ``bic``.  Certificate as in
    mio_lmer: ``objective``, ``best_bound``, ``gap``, ``status``, ``solver``.

    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 25)
    >>> df = pd.DataFrame({"y": rng.poisson(np.where(g < 2, 6.0, 2.0)), "g": g})
    >>> fit = mixmio.mio_glmer("y ~ 1 + (1 | g)", df, k=2, family="poisson")
    >>> fit.family, list(fit.selected.columns)
    ('poisson', ['group', 'level', 'term', 'estimate', 'rate_ratio'])
    """

    n_weight_dropped: int = 0
    weights_given: bool = False

    if TYPE_CHECKING:  # narrower than the base's field; no runtime (dataclass) effect
        problem: GlmmProblem  # type: ignore[assignment]  # base declares Problem

    @classmethod
    def from_solution(  # type: ignore[override]  # a GlmmProblem, never refit
            cls, design: Design, problem: GlmmProblem, solution: Solution, *,
            mip_gap: float = 1e-4, n_weight_dropped: int = 0, weights_given: bool = False
    ) -> MioGlmerResult:
        """Package a solved GlmmProblem of ``design`` as a fit: the estimates are the
        penalised fit of the selection (no refit)."""
        return cls(design, problem, solution, solution.w, mip_gap, False,
                   n_weight_dropped=n_weight_dropped, weights_given=weights_given)

    @property
    def family(self) -> str:
        """``"binomial"`` or ``"poisson"``."""
        return self.problem.family

    @property
    def link(self) -> str:
        """The canonical link: ``"logit"`` or ``"log"``."""
        return LINKS[self.family]

    @property
    def n_dropped(self) -> int:
        """Rows dropped for missing values (formula variables and weights)."""
        return int(self.design.n_dropped) + int(self.n_weight_dropped)

    @cached_property
    def ranef(self) -> pd.DataFrame:
        """Every cluster effect (0 when not selected) on the link scale, with its ratio
        exp(estimate): ``odds_ratio`` (binomial) or ``rate_ratio`` (poisson)."""
        out = super().ranef.copy()
        out[RATIO[self.family]] = np.exp(out["estimate"])
        return out

    @cached_property
    def linear_predictor(self) -> np.ndarray:
        """eta = X beta + Z gamma + offset on the training rows."""
        return self.problem.eta(self.w)

    @cached_property
    def fitted(self) -> np.ndarray:
        """Fitted means of the training rows: probabilities (binomial) or expected counts
        (poisson, offset included)."""
        return fam.mean(self.family, self.linear_predictor)

    @property
    def residuals(self) -> np.ndarray:
        """Deviance residuals sign(y - fitted) sqrt(unit deviance x weight), lme4's default
        for glmer fits."""
        pr = self.problem
        dev = 2.0 * fam.loss(self.family, self.linear_predictor, pr.y, pr.weights, pr.sat)
        return np.sign(self.design.y - self.fitted) * np.sqrt(dev)

    @property
    def sigma(self) -> float:
        """1: the binomial and Poisson families have no dispersion parameter (as lme4)."""
        return 1.0

    @property
    def residual_variance(self) -> float:
        """The latent-scale residual variance the ICC divides by: pi^2/3 (logit) or
        log(1 + 1/mean fitted count) (log; Nakagawa & Schielzeth 2010)."""
        if self.family == "binomial":
            return np.pi ** 2 / 3
        return float(np.log1p(1.0 / max(float(np.mean(self.fitted)), 1e-300)))

    @property
    def deviance(self) -> float:
        """2 x (saturated minus fitted log-likelihood), the ridge term excluded."""
        return self.problem.deviance(self.w)

    @cached_property
    def loglik(self) -> float:
        """Log-likelihood of the fitted means (binomial: with the binomial coefficients;
        poisson: with log y!, times the prior weights), as lme4's ``logLik``."""
        from scipy.stats import binom, poisson

        pr = self.problem
        mu = self.fitted
        if self.family == "binomial":
            return float(np.sum(binom.logpmf(pr.y, pr.weights, mu)))
        return float(np.sum(pr.weights * poisson.logpmf(pr.y, mu)))

    @property
    def df_model(self) -> int:
        """Fixed effects plus selected cluster effects: the parameters AIC and BIC count."""
        return int(self.problem.p + np.count_nonzero(self.w[self.problem.p:]))

    @property
    def aic(self) -> float:
        """-2 loglik + 2 df_model."""
        return -2.0 * self.loglik + 2.0 * self.df_model

    @property
    def bic(self) -> float:
        """-2 loglik + log(n) df_model."""
        return -2.0 * self.loglik + np.log(self.n_obs) * self.df_model

    @cached_property
    def fixef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value and Pr(>|z|) of the fixed effects.

        Standard errors come from the inverse of the penalised Hessian on the selected
        support, [X Z_S]' W [X Z_S] + ridge on gamma_S: they are conditional on the
        selection (they ignore that the support was chosen from the data; the bootstrap
        re-runs the selection)."""
        pr = self.problem
        p = pr.p
        S = np.flatnonzero(self.w[p:] != 0)
        D = sp.hstack([sp.csc_matrix(pr.X), pr.Z[:, S]], format="csc")
        _, h = fam.derivatives(self.family, self.linear_predictor, pr.y, pr.weights)
        H = (D.T @ D.multiply(h[:, None])).toarray()
        H[p:, p:] += pr.ridge * np.eye(S.size)
        try:
            cov = np.linalg.inv(H)
            se = np.sqrt(np.maximum(np.diag(cov)[:p], 0.0))
        except np.linalg.LinAlgError:
            se = np.full(p, np.nan)
        est = self.fixef.to_numpy()
        z = est / se
        return pd.DataFrame({"estimate": est, "std_error": se, "z_value": z,
                             "p_value": 2 * norm.sf(np.abs(z))}, index=self.fixef.index)

    @property
    def boundary_clusters(self) -> pd.DataFrame:
        """Clusters (of intercept terms) whose outcomes are all 0, or all at the trials
        (binomial): their maximum-likelihood effect is infinite, and only the ridge keeps
        the reported one finite.  Columns ``group``, ``level``, ``boundary`` ("all zero" /
        "all one")."""
        pr = self.problem
        rows = []
        for b in self.design.blocks:
            if "Intercept" not in b.columns:
                continue
            tot = np.bincount(b.codes, weights=pr.y, minlength=b.n_levels)
            cap = np.bincount(b.codes, weights=pr.weights, minlength=b.n_levels)
            for i in np.flatnonzero(tot <= 0):
                rows.append((b.group, str(b.levels[i]), "all zero"))
            if self.family == "binomial":
                for i in np.flatnonzero(tot >= cap):
                    rows.append((b.group, str(b.levels[i]), "all one"))
        return pd.DataFrame(rows, columns=["group", "level", "boundary"])

    def predict(self, newdata: pd.DataFrame | None = None, new_levels: str | None = None, *,
                type: str = "response",
                cluster_features: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                max_depth: int | None = None, random_state: int | None = 0) -> pd.Series:
        """Predictions for ``newdata`` (the training rows when None), a Series on its index.

        ``type="response"`` (default): probabilities (binomial) or expected counts (poisson,
        the offset included, so an exposure offset scales them); ``"link"``: the linear
        predictor.  New clusters follow ``new_levels`` as in
        :meth:`mixmio.results.lmer.MioLmerResult.predict`; the mixing of "soft" is on the
        link scale.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> g = np.repeat(np.arange(20), 25)
        >>> df = pd.DataFrame({"y": rng.poisson(np.where(g < 2, 6.0, 2.0)), "g": g})
        >>> fit = mixmio.mio_glmer("y ~ 1 + (1 | g)", df, k=2, family="poisson")
        >>> new = pd.DataFrame({"g": [0, 5]})
        >>> fit.predict(new).round(2).tolist()
        [6.44, 2.01]
        >>> np.allclose(np.exp(fit.predict(new, type="link")), fit.predict(new))
        True
        """
        if type not in ("response", "link"):
            raise ArgumentError(f"type must be 'response' or 'link', got {type!r}")
        if newdata is None:
            eta = pd.Series(self.linear_predictor, index=self.design.row_index,
                            name="prediction")
        else:
            eta = super().predict(newdata, new_levels, cluster_features=cluster_features,
                                  max_depth=max_depth, random_state=random_state)
        if type == "link":
            return eta
        return pd.Series(fam.mean(self.family, eta.to_numpy(dtype=float)), index=eta.index,
                         name="prediction")

    def bootstrap(self, B: int = 500, scheme: str = "parametric", ci: str = "percentile",
                  level: float = 0.95, n_jobs: int = 1,
                  random_state: int | Sequence[int] | None = None, progress: bool = True,
                  **kwargs: Any):
        """Bootstrap re-running the selection in every replicate: ``scheme="parametric"``
        (responses drawn from the fitted family, clusters fixed) or ``"cluster"`` (clusters
        drawn with replacement).  See :mod:`mixmio.inference.glmer`."""
        bootstrap_glmer = method("bootstrap_glmer")

        return bootstrap_glmer(self, B=B, scheme=scheme, ci=ci, level=level, n_jobs=n_jobs,
                               random_state=random_state, progress=progress, **kwargs)

    def stability(  # type: ignore[override]  # no row scheme: clusters' rows subsampled
            self, B: int = 100, frac: float = 0.5, pairing: str = "complementary",
            threshold: float = 0.6, n_jobs: int = 1,
            random_state: int | Sequence[int] | None = None, progress: bool = True,
            **kwargs: Any) -> Any:
        """Stability selection of the clusters over subsamples of the clusters' rows; see
        :mod:`mixmio.inference.glmer`."""
        stability_glmer = method("stability_glmer")

        return stability_glmer(self, B=B, frac=frac, pairing=pairing, threshold=threshold,
                               n_jobs=n_jobs, random_state=random_state, progress=progress,
                               **kwargs)

    def plot_funnel(self, term: str | None = None, ax=None, **kwargs):
        """Funnel plot of the clusters of a random intercept: observed / expected against
        the expected count under the population model (k = 0), with its 95% and 99.8%
        control limits, the selected clusters marked (red above, blue below) and labelled;
        the y axis names the grouping factor.  See
        :func:`mixmio.inference.plots.plot_funnel` (``levels=``, ``label=``).

        Examples
        --------
        >>> import mixmio
        >>> hai = mixmio.datasets.load("ny_hai")
        >>> ssi = hai[hai.indicator == "SSI Hysterectomy"]
        >>> fit = mixmio.mio_glmer("observed ~ offset(np.log(predicted)) + (1 | hospital)",
        ...                        ssi, k=4, family="poisson")
        >>> fig = fit.plot_funnel()
        >>> fig.axes[0].get_ylabel()
        'observed / expected, per hospital'
        """
        plot_funnel = method("plot_funnel")

        return plot_funnel(self, term=term, ax=ax, **kwargs)

    def summary(self) -> GlmerSummary:
        """lme4 glmer-style summary; ``print`` it, or show it in Jupyter."""
        return GlmerSummary(self)

    def __repr__(self) -> str:
        return (f"<MioGlmerResult {self.formula!r} ({self.family}): status={self.status}, "
                f"gap={self.gap:.2e}, selected={len(self.selected)}>")


class GlmerSummary(LmerSummary):
    """lme4 ``glmer``-style summary of a :class:`MioGlmerResult`: header (family, link,
    AIC, BIC, logLik, deviance, certificate), deviance residuals, random effects (selected
    clusters, caps, largest effects), fixed effects with Wald z tests."""

    def header(self) -> list[str]:
        f = self.fit
        groups = "; ".join(f"{g}: {k} levels" for g, k in f.n_groups.items())
        lines = [
            "Sparse generalized linear mixed model fit by mixed-integer optimization "
            "(l0 caps on clusters)",
            f" Family: {f.family}  ( {f.link} )",
            f"Formula: {f.formula}",
            f"   Data: {f.n_obs} observations"
            + (f" ({f.n_dropped} dropped for missing values)" if f.n_dropped else "")
            + f"; {groups}",
            "",
            f"     AIC      BIC   logLik deviance df.model\n"
            f"{f.aic:8.1f} {f.bic:8.1f} {f.loglik:8.1f} {f.deviance:8.1f} {f.df_model:8d}",
            "",
            f"Objective (deviance/2 + ridge): {f.objective:.6g}   ridge: {f.ridge:.3g}   "
            "estimates: penalised fit on the support",
            *self.certificate_lines(),
        ]
        bd = f.boundary_clusters
        if len(bd):
            shown = ", ".join(f"{r.level} ({r.boundary})" for r in bd.head(5).itertuples())
            more = f" and {len(bd) - 5} more" if len(bd) > 5 else ""
            lines.append(f"NOTE: {len(bd)} cluster(s) with all outcomes at a boundary: "
                         f"{shown}{more}; if selected, only the ridge keeps their effect "
                         "finite (the maximum-likelihood effect is infinite).")
        return lines

    def residual_table(self):
        r = self.fit.residuals
        q = np.quantile(r, [0, 0.25, 0.5, 0.75, 1])
        headers = ["Min", "1Q", "Median", "3Q", "Max"]
        return _table("residuals", pd.DataFrame([q], columns=headers, index=["deviance"]),
                      headers, [[f"{v:.4f}" for v in q]], "Deviance residuals:")

    def random_table(self):
        t = super().random_table()
        keep = [i for i, r in enumerate(t.rows) if r[0] != "Residual"]
        frame = t.frame.iloc[keep].reset_index(drop=True)
        return _table("random", frame, t.headers, [t.rows[i] for i in keep],
                      "Random effects (link scale):")

    def fixed_table(self):
        f = self.fit
        ft = f.fixef_table
        headers = ["", "Estimate", "Std. Error", "z value", "Pr(>|z|)"]
        rows = [[name, _num(r.estimate), _num(r.std_error), f"{r.z_value:.2f}",
                 _pvalue(r.p_value)] for name, r in ft.iterrows()]
        title = (f"Number of obs: {f.n_obs}, groups: "
                 + ", ".join(f"{g}, {k}" for g, k in f.n_groups.items())
                 + "\n\nFixed effects (Wald tests conditional on the selected support):")
        return _table("fixed", ft, headers, rows, title)


def _pvalue(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    return "<2e-16" if p < 2e-16 else f"{p:.3g}"
