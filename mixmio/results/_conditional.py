"""statsmodels-style accessors of a mixed-model fit: ``params``, ``bse``, ``tvalues``,
``pvalues``, ``conf_int()``, ``nobs``, ``fittedvalues``, ``resid`` (issue 20).

Standard errors, tests and intervals are **conditional on the selected support**: they treat
the chosen clusters as known, as an OLS fit on [X | Z_S] would, and ignore that the support
was chosen from the same data.  The bootstrap (``fit.bootstrap()``) re-runs the selection; when
one is attached (``fit.with_bootstrap(boot)``), ``conf_int`` returns its intervals.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from mixmio.problem import Problem


class _StatsmodelsNames:
    """The shared accessors.  A fit supplies :meth:`_inference`: (estimates, standard errors,
    test statistics, p-values, degrees of freedom of the t reference or None for N(0, 1)),
    each a Series on the coefficient names; and, optionally, :meth:`_bootstrap_intervals`."""

    if TYPE_CHECKING:  # what the result classes supply (declared for the type checker only)
        design: Any

        @property
        def n_obs(self) -> int: ...

        @property
        def fitted(self) -> np.ndarray: ...

    def _inference(self):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _bootstrap_intervals(self, alpha: float) -> pd.DataFrame | None:
        return None

    @property
    def bse(self) -> pd.Series:
        """Standard errors of :attr:`params`, conditional on the selected support (NaN for
        coefficients that are not selected)."""
        return self._inference()[1].rename("bse")

    @property
    def tvalues(self) -> pd.Series:
        """params / bse: t (least squares) or Wald z (GLMs), conditional on the support."""
        return self._inference()[2].rename("tvalues")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of :attr:`tvalues`, conditional on the selected support: they
        ignore that the support was chosen from the data (the bootstrap re-runs the
        selection)."""
        return self._inference()[3].rename("pvalues")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Confidence intervals of :attr:`params` at level 1 - alpha, columns ``lower`` and
        ``upper``.

        With a bootstrap attached (``fit.with_bootstrap(boot)``, mio_lmer and mio_glmer) its
        intervals at level 1 - alpha are returned (from the same replicates; they re-run the
        selection);
        otherwise Wald intervals params +- q bse, q the 1 - alpha/2 quantile of t(df_resid)
        (least squares) or N(0, 1) (GLMs), conditional on the selected support.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.conf_int().round(1)
                   lower  upper
        Intercept  246.2  266.4
        Days         8.6   12.3
        """
        from scipy.stats import norm
        from scipy.stats import t as t_dist

        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        boot = self._bootstrap_intervals(float(alpha))
        if boot is not None:
            return boot
        est, se, _, _, df = self._inference()
        if df is None:
            q = norm.ppf(1 - alpha / 2)
        else:
            q = t_dist.ppf(1 - alpha / 2, df) if df > 0 else np.nan
        return pd.DataFrame({"lower": est - q * se, "upper": est + q * se})

    @property
    def nobs(self) -> int:
        """Number of rows used in the fit (after missing values were dropped)."""
        return int(self.n_obs)

    def _on_rows(self, values, name: str) -> pd.Series:
        values = np.asarray(values)
        index = getattr(self.design, "row_index", None)
        if index is None or len(index) != values.size:
            index = pd.RangeIndex(values.size)
        return pd.Series(values, index=index, name=name)

    @property
    def fittedvalues(self) -> pd.Series:
        """Fitted values (the mean: probabilities or rates for GLMs) on the data's row index."""
        return self._on_rows(self.fitted, "fittedvalues")

    @property
    def resid(self) -> pd.Series:
        """Response residuals y - fitted on the data's row index."""
        return self._on_rows(np.asarray(self.design.y) - np.asarray(self.fitted), "resid")


class ConditionalInferenceMixin(_StatsmodelsNames):
    """For mio_lmer (and mio_glmer, which overrides :attr:`fixef_table` with Wald z tests).
    Needs ``fixef``, ``w``, ``problem``, ``design``, ``refit``, ``n_obs``, ``df_resid``,
    ``fitted`` and ``bootstrap_result``."""

    if TYPE_CHECKING:  # supplied by MioLmerResult (declared for the type checker only)
        problem: Problem
        w: np.ndarray
        refit: bool
        bootstrap_result: Any

        @property
        def fixef(self) -> pd.Series: ...

        @property
        def df_resid(self) -> int: ...

    @cached_property
    def fixef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, t value and Pr(>|t|) of the fixed effects, conditional on the
        selected support.

        The covariance is that of the reported estimator on the support's columns
        D = [X | Z_S]: sigma^2 A^+ D'D A^+ with A = D'D, plus the ridge on gamma_S when the
        estimates are the penalised ones (``refit=False``; with the default unpenalised refit
        it is the OLS covariance sigma^2 (D'D)^+), sigma^2 = RSS / df_resid; t tests on
        df_resid degrees of freedom.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.fixef_table.round(2)
                   estimate  std_error  t_value  p_value
        Intercept    256.31       5.13    49.93      0.0
        Days          10.47       0.93    11.20      0.0
        """
        from scipy.stats import t as t_dist

        pr = self.problem
        p = pr.p
        S = np.flatnonzero(np.asarray(self.w[p:]) != 0)
        D = sp.hstack([sp.csc_matrix(pr.X), sp.csc_matrix(pr.Z)[:, S]], format="csc")
        G = (D.T @ D).toarray()
        A = G.copy()
        if not self.refit:
            A[p:, p:] += float(pr.ridge) * np.eye(S.size)
        r = pr.y - pr.X @ self.w[:p] - pr.Z @ self.w[p:]
        df = self.df_resid
        sigma2 = float(r @ r) / df if df > 0 else np.nan
        Ai = np.linalg.pinv(A, hermitian=True)
        se = np.sqrt(np.maximum(np.diag(sigma2 * (Ai @ G @ Ai))[:p], 0.0))
        est = self.fixef.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            tv = est / se
        pv = 2 * t_dist.sf(np.abs(tv), df) if df > 0 else np.full(p, np.nan)
        return pd.DataFrame({"estimate": est, "std_error": se, "t_value": tv, "p_value": pv},
                            index=self.fixef.index)

    @property
    def params(self) -> pd.Series:
        """The fixed-effect estimates (statsmodels' name for :attr:`fixef`)."""
        return self.fixef.rename("params")

    def _inference(self):
        t = self.fixef_table
        if "t_value" in t:
            return t["estimate"], t["std_error"], t["t_value"], t["p_value"], self.df_resid
        return t["estimate"], t["std_error"], t["z_value"], t["p_value"], None

    def _bootstrap_intervals(self, alpha: float) -> pd.DataFrame | None:
        boot = self.bootstrap_result
        if boot is None:
            return None
        iv = boot.intervals(level=1.0 - alpha)  # same replicates, the requested level
        t = iv[iv["kind"] == "fixed"].set_index("term")
        return pd.DataFrame({"lower": t["lower"].to_numpy(dtype=float),
                             "upper": t["upper"].to_numpy(dtype=float)},
                            index=self.fixef.index)


class CoefTableMixin(_StatsmodelsNames):
    """For mio_lm and mio_glm: read from their ``coef_table()`` (OLS t tests, or Wald z tests
    from the Fisher information, on the selected columns; unselected columns are exactly 0
    with NaN errors).  Needs ``coef``, ``coef_table()``, ``n_obs``, ``fitted``, ``design`` and,
    for t tests, ``df_resid``.

    Examples
    --------
    >>> import mixmio
    >>> df = mixmio.datasets.load("sleepstudy")
    >>> fit = mixmio.mio_lm("Reaction ~ Days", df, k=1)
    >>> fit.conf_int().round(1)
               lower  upper
    Intercept  238.4  264.4
    Days         8.0   12.9
    """

    if TYPE_CHECKING:  # supplied by MioLmResult / MioGlmResult (for the type checker only)
        @property
        def coef(self) -> pd.Series: ...

        def coef_table(self) -> pd.DataFrame: ...

    @property
    def params(self) -> pd.Series:
        """The coefficient estimates (unselected columns exactly 0)."""
        return self.coef.rename("params")

    def _inference(self):
        t = self.coef_table()
        if "t" in t:
            return (t["estimate"], t["std_err"], t["t"], t["p_value"],
                    getattr(self, "df_resid", 0))
        return t["estimate"], t["std_err"], t["z"], t["p_value"], None
