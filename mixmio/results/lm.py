"""MioLmResult: the value a mio_lm (best-subset regression) fit returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..problem import Problem
from ..solvers.solution import Solution
from ._certificate import CertificateMixin


@dataclass(frozen=True, eq=False)
class MioLmResult(CertificateMixin):
    """A fitted best-subset (holistic) linear regression.

    Estimates: ``coef`` (a Series over every candidate column, zero when not selected),
    ``selected`` (names of the selected columns), ``fitted``, ``residuals``, ``sigma``,
    ``r_squared``.  Certificate: ``objective`` (1/2 RSS + ridge/2 ||beta_sel||^2 [+ Gamma
    ||beta||_1] of the selection), ``best_bound``, ``gap``, ``status`` (``optimal`` only with a
    proven gap <= ``mip_gap``), ``solver``, ``solve_time``.  Holistic extras: ``k_max`` (the
    largest support the constraints allow), ``constraints``, ``rounds`` (one record per
    significance round, with the cut it added).

    With ``refit=True`` the estimates are ordinary least squares on the selected columns;
    ``objective`` stays the penalised selection objective.

    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
    >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
    >>> fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=2)
    >>> fit.selected, fit.status
    (['a', 'c'], 'optimal')
    """

    design: object = field(repr=False)
    problem: Problem = field(repr=False)
    solution: Solution = field(repr=False)
    w: np.ndarray = field(repr=False)
    mip_gap: float
    refit: bool
    k_max: int | None = None
    constraints: tuple = ()
    rounds: tuple = ()
    compiled: object = field(default=None, repr=False)


    @property
    def gamma(self) -> float:
        return 0.0 if self.compiled is None else float(self.compiled.gamma)

    @property
    def k(self) -> int:
        return int(self.problem.caps[0].k)

    @property
    def formula(self) -> str:
        return self.design.formula

    @property
    def n_obs(self) -> int:
        return self.design.n_obs

    # estimates -----------------------------------------------------------------------------
    @property
    def coef(self) -> pd.Series:
        return pd.Series(self.w[: self.problem.p], index=list(self.design.X.columns),
                         name="estimate")

    @property
    def selected(self) -> list[str]:
        """Selected columns (the intercept excluded: it is always in)."""
        idx = self.problem.caps[0].index
        return [self.design.X.columns[j] for j in idx if self.w[j] != 0]

    @cached_property
    def fitted(self) -> np.ndarray:
        return self.problem.X @ self.w[: self.problem.p] + self.design.offset

    @property
    def residuals(self) -> np.ndarray:
        return self.design.y - self.fitted

    @property
    def df_resid(self) -> int:
        return max(1, self.n_obs - int(np.count_nonzero(self.w)))

    @property
    def sigma(self) -> float:
        r = self.residuals
        return float(np.sqrt(r @ r / self.df_resid))

    @property
    def r_squared(self) -> float:
        """1 - RSS/TSS; TSS about the mean with an intercept, about 0 without one (the
        uncentred R^2 of statsmodels and R's summary.lm for no-intercept models)."""
        y = self.design.y
        r = self.residuals
        centre = y.mean() if "Intercept" in self.design.X.columns else 0.0
        tss = float(np.sum((y - centre) ** 2))
        return 1.0 - float(r @ r) / tss if tss > 0 else float("nan")

    @cached_property
    def condition_number(self) -> float:
        """Condition number of the correlation matrix of the selected columns (King's
        measure of global multicollinearity; 1 with fewer than two columns)."""
        return condition_number(self.problem.X, self._selected_columns)

    @property
    def max_abs_corr(self) -> float:
        """Largest absolute pairwise correlation among the selected columns."""
        return max_abs_corr(self.problem.X, self._selected_columns)

    @property
    def _selected_columns(self) -> np.ndarray:
        idx = self.problem.caps[0].index
        return idx[self.w[idx] != 0]

    def predict(self, newdata: pd.DataFrame | None = None) -> np.ndarray:
        """Predictions for ``newdata`` (the training rows when None)."""
        if newdata is None:
            return self.fitted.copy()
        nd = self.design.transform(newdata)
        return nd.X.to_numpy(dtype=float) @ self.w[: self.problem.p] + nd.offset

    def coef_table(self) -> pd.DataFrame:
        """Estimates with classical OLS standard errors on the selected support.

        The errors are conditional on the selected support (no adjustment for selection);
        they are shown only for refit (OLS) estimates.
        """
        from scipy import stats

        pr = self.problem
        active = np.flatnonzero(self.w[: pr.p] != 0)
        names = list(self.design.X.columns)
        est = self.w[: pr.p]
        out = pd.DataFrame({"estimate": est}, index=names)
        out["std_err"] = np.nan
        out["t"] = np.nan
        out["p_value"] = np.nan
        if self.refit and active.size and self.df_resid > 0:
            Xa = pr.X[:, active]
            try:
                XtXi = np.linalg.inv(Xa.T @ Xa)
                se = self.sigma * np.sqrt(np.maximum(np.diag(XtXi), 0))
                out.loc[[names[j] for j in active], "std_err"] = se
                t = est[active] / se
                out.loc[[names[j] for j in active], "t"] = t
                out.loc[[names[j] for j in active], "p_value"] = 2 * stats.t.sf(
                    np.abs(t), self.df_resid)
            except np.linalg.LinAlgError:
                pass
        q = stats.t.ppf(0.975, max(self.df_resid, 1))
        out["ci_lower"] = out["estimate"] - q * out["std_err"]
        out["ci_upper"] = out["estimate"] + q * out["std_err"]
        out["selected"] = est != 0
        return out

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (every candidate column): estimate, standard error, t,
        p-value, 95% interval (conditional on the selected support; refit estimates only)
        and whether the column is selected."""
        return self.coef_table()

    def summary(self) -> str:
        """statsmodels-like text summary with the certificate (status, gap) line."""
        from tabulate import tabulate

        st = self.status
        gap = self.gap
        gap_txt = "inf" if not np.isfinite(gap) else f"{gap:.2e}"
        head = [
            ("Model:", "best-subset regression (mio_lm)", "Formula:", self.formula),
            ("Observations:", self.n_obs, "k (cap):", self.k),
            ("Selected:", len(self.selected), "k_max:", "-" if self.k_max is None
             else self.k_max),
            ("R-squared:", f"{self.r_squared:.4f}", "Sigma:", f"{self.sigma:.4g}"),
            ("Ridge:", f"{self.ridge:.4g}", "Gamma (l1):", f"{self.gamma:.4g}"),
            ("Objective:", f"{self.objective:.6g}", "Best bound:", f"{self.best_bound:.6g}"),
            ("Solver:", self.solver, "Time (s):", f"{self.solve_time:.3f}"),
        ]
        lines = [tabulate(head, tablefmt="plain")]
        lines.append(f"Status: {st} (relative gap {gap_txt}; optimal means proven gap <= "
                     f"{self.mip_gap:g})")
        if self.constraints:
            lines.append("Constraints: " + ", ".join(repr(c) for c in self.constraints))
        tab = self.coef_table()
        shown = tab[tab["selected"] | (tab.index == "Intercept")]
        rows = []
        for name, r in shown.iterrows():
            rows.append([name, f"{r.estimate:.4f}",
                         "" if np.isnan(r.std_err) else f"{r.std_err:.4f}",
                         "" if np.isnan(r.t) else f"{r.t:.3f}",
                         _format_p(r.p_value),
                         "" if np.isnan(r.ci_lower) else f"{r.ci_lower:.4f}",
                         "" if np.isnan(r.ci_upper) else f"{r.ci_upper:.4f}"])
        lines.append(tabulate(rows, headers=["", "coef", "std err", "t", "P>|t|", "[0.025",
                                             "0.975]"],
                              tablefmt="simple", disable_numparse=True,
                              colalign=("left",) + ("right",) * 6))
        n_zero = int((~tab["selected"] & (tab.index != "Intercept")).sum())
        lines.append(f"{n_zero} candidate column(s) not selected (coefficient 0).")
        if self.refit:
            lines.append("Estimates: least-squares refit on the selected columns; standard "
                         "errors are conditional on the selection.")
        for r in self.rounds:
            lines.append(f"Significance round {r['round']}: |S|={len(r['support'])}, "
                         f"condition={r['condition']:.3g}, insignificant={r['insignificant']}"
                         + (f", cut added: sum z over S <= {len(r['support']) - 1}"
                            if r.get("cut") else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"MioLmResult(formula={self.formula!r}, k={self.k}, selected={self.selected}, "
                f"status={self.status!r}, gap={self.gap:.3g})")


def _format_p(p: float) -> str:
    """p-values: 4 decimals, e-notation below 1e-4, and ``<2e-16`` (as R prints it) below
    machine precision, instead of a misleading 0."""
    if np.isnan(p):
        return ""
    if p < 2.2e-16:
        return "<2e-16"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.2e}"


def condition_number(X: np.ndarray, cols) -> float:
    """Condition number of the correlation matrix of columns ``cols`` of ``X`` (King's measure
    of global multicollinearity; 1 with fewer than two columns)."""
    S = np.asarray(cols, dtype=int)
    if S.size < 2:
        return 1.0
    return float(np.linalg.cond(np.corrcoef(X[:, S], rowvar=False)))


def max_abs_corr(X: np.ndarray, cols) -> float:
    """Largest absolute pairwise correlation among columns ``cols`` of ``X`` (0 with fewer
    than two columns)."""
    S = np.asarray(cols, dtype=int)
    if S.size < 2:
        return 0.0
    R = np.corrcoef(X[:, S], rowvar=False)
    return float(np.max(np.abs(R[np.triu_indices(S.size, 1)])))
