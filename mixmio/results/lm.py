"""MioLmResult: the value a mio_lm (best-subset regression) fit returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixmio.problem import Problem
from mixmio.results._certificate import CertificateMixin, raise_if_no_solution
from mixmio.results._conditional import CoefTableMixin
from mixmio.results._methods import method
from mixmio.results._rows import on_newdata
from mixmio.results.summary import Summary, SummaryTable, key_value_table
from mixmio.solvers.solution import Solution

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mixmio.design import Design
    from mixmio.problem.holistic.compile import Compiled


@dataclass(frozen=True, eq=False)
class MioLmResult(CoefTableMixin, CertificateMixin):
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

    design: Design = field(repr=False)
    problem: Problem = field(repr=False)
    solution: Solution = field(repr=False)
    w: np.ndarray = field(repr=False)
    mip_gap: float
    refit: bool
    k_max: int | None = None
    constraints: tuple = ()
    rounds: tuple = ()
    compiled: Compiled | None = field(default=None, repr=False)

    @classmethod
    def from_solution(cls, design, problem: Problem, solution: Solution, *,
                      mip_gap: float = 1e-4, refit: bool = True, constraints: tuple = (),
                      rounds: Sequence[dict] = (), compiled=None) -> MioLmResult:
        """Package a solved Problem of ``design`` as a fit (as lme4's ``mkMerMod``): refuse a
        solution that is not one, name the columns of the significance ``rounds``, refit by
        least squares on the support with ``refit``, and warn when a forced-in column's
        estimate is exactly 0.  ``compiled``: the compiled constraints (``k_max``, ``gamma``)."""
        raise_if_no_solution(solution)
        names = list(design.X.columns)
        for r in rounds:
            r["columns"] = [names[j] for j in r["support"]]
        w = solution.w
        if refit:
            from mixmio.results.refit import refit_if_feasible

            w = refit_if_feasible(problem, w, z=solution.z)
        gamma = 0.0 if compiled is None else compiled.gamma
        shrunk = [names[j] for j in sorted(forced_columns(problem))
                  if j < len(names) and w[j] == 0]
        if shrunk:
            import warnings

            from mixmio._runtime import user_stacklevel

            warnings.warn(f"forced-in column(s) {shrunk} have estimate exactly 0"
                          + (f" (the l1 penalty of Robust(gamma={gamma:g}) shrinks them "
                             "to 0)" if gamma > 0 else ""), stacklevel=user_stacklevel())
        return cls(design, problem, solution, w, mip_gap, bool(refit),
                   None if compiled is None else compiled.k_max, constraints, tuple(rounds),
                   compiled)

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

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.Series:
        """Predictions for ``newdata`` (the training rows when None), a Series on its index;
        rows with a missing value give NaN under ``na_action="drop"``, as in statsmodels."""
        design = self.design
        if newdata is None:
            return pd.Series(self.fitted.copy(), index=design.row_index, name="prediction")
        from mixmio._checks import as_frame

        newdata = as_frame(newdata, "newdata")
        missing = "skip" if getattr(design, "na_action", "drop") == "drop" else "raise"
        nd = design.transform(newdata, missing=missing)
        pred = nd.X.to_numpy(dtype=float) @ self.w[: self.problem.p] + nd.offset
        return on_newdata(pred, nd, newdata)

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

    def summary(self) -> LmSummary:
        """statsmodels-like summary with the certificate (status, gap) line.

        Returns an :class:`LmSummary` (a :class:`~mixmio.results.summary.Summary`):
        ``print(fit.summary())`` or ``str()`` gives the text, Jupyter shows an HTML table, and
        ``summary["model"]`` (the header's label/value pairs) and ``summary["coef"]`` (the
        intercept and the selected columns: estimate, std_err, t, p_value, ci_lower,
        ci_upper) are DataFrames of the values.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
        >>> fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=2)
        >>> s = fit.summary()
        >>> print(str(s).splitlines()[0])
        Model:         best-subset regression (mio_lm)  Formula:     y ~ a + b + c + d
        >>> list(s["coef"].index), s["model"].loc["R-squared", "value"] == fit.r_squared
        (['Intercept', 'a', 'c'], True)
        """
        return LmSummary(self)

    def bootstrap(self, B: int = 500, scheme: str = "pairs", ci: str = "percentile",
                  level: float = 0.95, n_jobs: int = 1,
                  random_state: int | Sequence[int] | None = None, progress: bool = True,
                  time_limit: float | None = None, *, solver: str | None = None
                  ) -> Any:
        """Bootstrap the fit, re-running the best-subset selection in every replicate: how
        stable is the selection, and how uncertain are the estimates once selection is
        included?

        Every replicate solves the same problem (same ``k``, constraints, ridge, ``mip_gap``,
        engine and refit rule; ``Significance`` rounds re-run) on resampled data.  Failed
        replicates are recorded in ``.failures``, never raised.  The fit is unchanged.

        Parameters
        ----------
        B : number of replicates (an integer >= 2).
        scheme : ``"pairs"`` (rows drawn with replacement; selection uncertainty included) or
            ``"residual"`` (rows fixed, ``fitted + resampled residuals``).
        ci : ``"percentile"`` or ``"basic"`` intervals.
        level : interval coverage in (0, 1).
        n_jobs : joblib workers (``-1``: all cores); results do not depend on it.
        random_state : None, an int or a sequence of ints (seeds
            ``numpy.random.SeedSequence``; replicate ``b`` uses ``spawn(B)[b]``, see
            :func:`mixmio.inference.subset_bootstrap.resample_indices`).
        progress : show a progress bar (default True, as for every mixmio bootstrap): a widget
            in Jupyter, text on a terminal's stderr, nothing when stderr is a pipe or a file.
        time_limit : seconds per replicate; None: the fit's limit when it stopped on one (its
            solve time), else none.
        solver : the replicates' engine; None: the one that solved this fit.

        Returns
        -------
        SubsetBootstrapResult
            ``table`` / ``to_frame()`` (estimate, bootstrap SE, interval, selection
            frequency, sign stability per column), ``subset_frequencies()``, ``report()``,
            ``failures`` and ``status_counts``.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = 2 * df.a - df.c + rng.normal(size=100)
        >>> fit = mixmio.mio_lm("y ~ a + b + c + d", df, k=2)
        >>> boot = fit.bootstrap(B=20, random_state=1)
        >>> boot.n_ok, boot.selection_frequency[["a", "b", "c", "d"]].tolist()
        (20, [1.0, 0.0, 1.0, 0.0])
        >>> t = boot.table
        >>> bool(t.loc["a", "lower"] < fit.coef["a"] < t.loc["a", "upper"])
        True
        """
        subset_bootstrap = method("subset_bootstrap")

        return subset_bootstrap(self, B=B, scheme=scheme, ci=ci, level=level, n_jobs=n_jobs,
                                random_state=random_state, progress=progress,
                                time_limit=time_limit, solver=solver)

    def __str__(self) -> str:
        return str(self.summary())

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


def forced_columns(problem) -> set[int]:
    """Indicator indices forced to 1 (single-index ``>= 1`` rows) and those tied to them by
    equality rows (groups)."""
    from mixmio.problem.holistic.compile import closure

    seeds = {int(c.index[0]) for c in problem.constraints
             if c.sense == ">=" and c.index.size == 1 and c.coef[0] > 0 and c.rhs >= c.coef[0]}
    return closure(problem.constraints, seeds) if seeds else set()


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


class LmSummary(Summary):
    """The summary of a :class:`MioLmResult` (see :meth:`MioLmResult.summary`).

    Tables: ``model`` (the header's label/value pairs, one row per item, column ``value``)
    and ``coef`` (the intercept and the selected columns, as in
    :meth:`MioLmResult.coef_table`).
    """

    HEADERS = ["", "coef", "std err", "t", "P>|t|", "[0.025", "0.975]"]

    def __init__(self, fit: MioLmResult):
        super().__init__()
        self.fit = fit

    def model_table(self) -> SummaryTable:
        f = self.fit
        return key_value_table("model", [
            ("Model:", "best-subset regression (mio_lm)"), ("Formula:", f.formula),
            ("Observations:", f.n_obs), ("k (cap):", f.k),
            ("Selected:", len(f.selected)),
            ("k_max:", f.k_max, "-" if f.k_max is None else f.k_max),
            ("R-squared:", f.r_squared, f"{f.r_squared:.4f}"),
            ("Sigma:", f.sigma, f"{f.sigma:.4g}"),
            ("Ridge:", f.ridge, f"{f.ridge:.4g}"), ("Gamma (l1):", f.gamma, f"{f.gamma:.4g}"),
            ("Objective:", f.objective, f"{f.objective:.6g}"),
            ("Best bound:", f.best_bound, f"{f.best_bound:.6g}"),
            ("Solver:", f.solver), ("Time (s):", f.solve_time, f"{f.solve_time:.3f}"),
        ])

    def coef_table(self, tab: pd.DataFrame) -> SummaryTable:
        shown = tab[tab["selected"] | (tab.index == "Intercept")]
        rows = []
        for name, r in shown.iterrows():
            rows.append([name, f"{r.estimate:.4f}",
                         "" if np.isnan(r.std_err) else f"{r.std_err:.4f}",
                         "" if np.isnan(r.t) else f"{r.t:.3f}",
                         _format_p(r.p_value),
                         "" if np.isnan(r.ci_lower) else f"{r.ci_lower:.4f}",
                         "" if np.isnan(r.ci_upper) else f"{r.ci_upper:.4f}"])
        return SummaryTable("coef", shown.drop(columns="selected"), rows=rows,
                            headers=self.HEADERS,
                            options={"tablefmt": "simple", "disable_numparse": True,
                                     "colalign": ("left",) + ("right",) * 6})

    def _build(self) -> list:
        f = self.fit
        gap_txt = "inf" if not np.isfinite(f.gap) else f"{f.gap:.2e}"
        out = [self.model_table(),
               f"Status: {f.status} (relative gap {gap_txt}; optimal means proven gap <= "
               f"{f.mip_gap:g})"]
        if f.constraints:
            out.append("Constraints: " + ", ".join(repr(c) for c in f.constraints))
        tab = f.coef_table()
        out.append(self.coef_table(tab))
        n_zero = int((~tab["selected"] & (tab.index != "Intercept")).sum())
        out.append(f"{n_zero} candidate column(s) not selected (coefficient 0).")
        if f.refit:
            out.append("Estimates: least-squares refit on the selected columns; standard "
                       "errors are conditional on the selection.")
        for r in f.rounds:
            out.append(f"Significance round {r['round']}: |S|={len(r['support'])}, "
                       f"condition={r['condition']:.3g}, insignificant={r['insignificant']}"
                       + (f", cut added: sum z over S <= {len(r['support']) - 1}"
                          if r.get("cut") else ""))
        return out
