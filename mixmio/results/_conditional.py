"""statsmodels-style accessors of a mixed-model fit: ``params``, ``bse``, ``tvalues``,
``pvalues``, ``conf_int()``, ``nobs``, ``fittedvalues``, ``resid`` (issue 20).

Standard errors, tests and intervals are **conditional on the selected support**: they treat
the chosen clusters as known, as an OLS fit on [X | Z_S] would, and ignore that the support
was chosen from the same data.  The bootstrap (``fit.bootstrap()``) re-runs the selection; when
one is attached (``fit.with_bootstrap(boot)``), ``conf_int`` returns its intervals.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp


class ConditionalInferenceMixin:
    """Needs ``fixef`` (Series), ``w``, ``problem``, ``design``, ``n_obs``, ``df_resid``,
    ``fitted``, ``residuals`` and ``bootstrap_result``; subclasses may override
    :attr:`fixef_table` (``mio_glmer`` uses Wald z tests)."""

    @cached_property
    def fixef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, t value and Pr(>|t|) of the fixed effects, conditional on the
        selected support.

        The covariance is that of the ridge estimator on the support's columns D = [X | Z_S],
        sigma^2 A^-1 D'D A^-1 with A = D'D + ridge on gamma_S (the OLS covariance when the
        ridge is 0), sigma^2 = RSS / df_resid; t tests on df_resid degrees of freedom.

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
        A[p:, p:] += float(pr.ridge) * np.eye(S.size)
        r = pr.y - pr.X @ self.w[:p] - pr.Z @ self.w[p:]
        df = self.df_resid
        sigma2 = float(r @ r) / df if df > 0 else np.nan
        try:
            Ai = np.linalg.pinv(A, hermitian=True)
            cov = sigma2 * (Ai @ G @ Ai)
            se = np.sqrt(np.maximum(np.diag(cov)[:p], 0.0))
        except np.linalg.LinAlgError:  # pragma: no cover - pinv of a symmetric matrix
            se = np.full(p, np.nan)
        est = self.fixef.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            tv = est / se
        pv = 2 * t_dist.sf(np.abs(tv), df) if df > 0 else np.full(p, np.nan)
        return pd.DataFrame({"estimate": est, "std_error": se, "t_value": tv, "p_value": pv},
                            index=self.fixef.index)

    # ------------------------------------------------------------------ statsmodels names
    @property
    def params(self) -> pd.Series:
        """The fixed-effect estimates (statsmodels' name for :attr:`fixef`)."""
        return self.fixef.rename("params")

    @property
    def bse(self) -> pd.Series:
        """Standard errors of :attr:`params`, conditional on the selected support
        (:attr:`fixef_table`)."""
        return self.fixef_table["std_error"].rename("bse")

    @property
    def tvalues(self) -> pd.Series:
        """params / bse (t for mio_lmer, Wald z for mio_glmer), conditional on the support."""
        col = "t_value" if "t_value" in self.fixef_table else "z_value"
        return self.fixef_table[col].rename("tvalues")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of :attr:`tvalues`, conditional on the selected support: they
        ignore that the support was chosen from the data (use the bootstrap for that)."""
        return self.fixef_table["p_value"].rename("pvalues")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Confidence intervals of :attr:`params`, columns ``lower`` and ``upper``.

        With a bootstrap attached (``fit.with_bootstrap(boot)``), its intervals at its own
        level are returned (they re-run the selection); otherwise Wald intervals
        params +- q * bse, q the 1 - alpha/2 quantile of t(df_resid) (mio_lmer) or N(0, 1)
        (mio_glmer), conditional on the selected support.

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
        boot = getattr(self, "bootstrap_result", None)
        if boot is not None:
            t = boot.table[boot.table["kind"] == "fixed"].set_index("term")
            return pd.DataFrame({"lower": t["lower"].to_numpy(dtype=float),
                                 "upper": t["upper"].to_numpy(dtype=float)},
                                index=self.fixef.index)
        se = self.bse.to_numpy()
        if "t_value" in self.fixef_table:
            q = t_dist.ppf(1 - alpha / 2, self.df_resid) if self.df_resid > 0 else np.nan
        else:
            q = norm.ppf(1 - alpha / 2)
        est = self.fixef.to_numpy()
        return pd.DataFrame({"lower": est - q * se, "upper": est + q * se},
                            index=self.fixef.index)

    @property
    def nobs(self) -> int:
        """Number of rows used in the fit (after missing values were dropped)."""
        return int(self.n_obs)

    @property
    def fittedvalues(self) -> pd.Series:
        """:attr:`fitted` as a Series on the data's row index (rows used in the fit)."""
        return pd.Series(np.asarray(self.fitted), index=self.design.row_index,
                         name="fittedvalues")

    @property
    def resid(self) -> pd.Series:
        """:attr:`residuals` as a Series on the data's row index (rows used in the fit)."""
        return pd.Series(np.asarray(self.residuals), index=self.design.row_index,
                         name="resid")


class CoefTableMixin:
    """The same accessors for ``mio_lm`` and ``mio_glm`` fits, read from their
    ``coef_table()`` (OLS t tests, or Wald z tests from the Fisher information, on the
    selected columns; unselected columns are exactly 0 with NaN errors).  Needs ``coef``,
    ``coef_table()``, ``n_obs``, ``fitted``, ``design`` and, for t intervals, ``df_resid``."""

    @property
    def params(self) -> pd.Series:
        """The coefficient estimates (unselected columns exactly 0)."""
        return self.coef.rename("params")

    @property
    def bse(self) -> pd.Series:
        """Standard errors, conditional on the selected columns (NaN for unselected ones)."""
        return self.coef_table()["std_err"].rename("bse")

    @property
    def tvalues(self) -> pd.Series:
        """params / bse (t for mio_lm, Wald z for mio_glm), conditional on the selection."""
        t = self.coef_table()
        return t["t" if "t" in t else "z"].rename("tvalues")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values, conditional on the selected columns (they ignore that the
        columns were chosen from the data; the bootstrap re-runs the selection)."""
        return self.coef_table()["p_value"].rename("pvalues")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals params +- q bse (q from t(df_resid) for mio_lm, N(0, 1) for
        mio_glm), columns ``lower`` and ``upper``; conditional on the selected columns.

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
        from scipy.stats import norm
        from scipy.stats import t as t_dist

        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        t = self.coef_table()
        if "t" in t:
            df = getattr(self, "df_resid", 0)
            q = t_dist.ppf(1 - alpha / 2, df) if df > 0 else np.nan
        else:
            q = norm.ppf(1 - alpha / 2)
        est, se = t["estimate"].to_numpy(), t["std_err"].to_numpy()
        return pd.DataFrame({"lower": est - q * se, "upper": est + q * se}, index=t.index)

    @property
    def nobs(self) -> int:
        """Number of rows used in the fit."""
        return int(self.n_obs)

    def _on_rows(self, values, name: str) -> pd.Series:
        index = getattr(self.design, "row_index", None)
        values = np.asarray(values)
        if index is None or len(index) != values.size:
            index = pd.RangeIndex(values.size)
        return pd.Series(values, index=index, name=name)

    @property
    def fittedvalues(self) -> pd.Series:
        """Fitted values (the mean: probabilities for mio_glm) on the data's row index."""
        return self._on_rows(self.fitted, "fittedvalues")

    @property
    def resid(self) -> pd.Series:
        """Response residuals y - fitted on the data's row index."""
        return self._on_rows(np.asarray(self.design.y) - np.asarray(self.fitted), "resid")
