"""MioGlmResult: the value a :func:`mixmio.mio_glm` fit returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import expit

from mixmio.problem.glm import GlmProblem
from mixmio.results._certificate import CertificateMixin
from mixmio.results._conditional import CoefTableMixin
from mixmio.results._methods import method
from mixmio.results._rows import on_newdata
from mixmio.results.summary import Summary, SummaryTable, key_value_table
from mixmio.solvers.glm.logistic import fisher_se, fit_support, nll
from mixmio.solvers.solution import Solution

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mixmio.design import Design


__all__ = ["MioGlmResult", "GlmSummary"]


@dataclass(frozen=True, eq=False)
class MioGlmResult(CoefTableMixin, CertificateMixin):
    """A fitted best-subset logistic regression.

    Estimates: ``coef`` / ``params`` (a Series over every candidate column, zero when not
    selected), ``selected`` (the selected columns; the intercept is always in and not
    listed), ``fitted`` (probabilities), ``predict``.  Likelihood: ``loglik``, ``deviance``,
    ``null_deviance``, ``aic``, ``bic``.  Certificate: ``objective`` (the negative
    log-likelihood, + ridge/2 ||beta_sel||^2 with a ridge), ``best_bound``, ``gap``,
    ``status`` (``optimal`` only with a proven gap <= ``mip_gap``), ``solver``,
    ``solve_time``.  ``response_levels`` is ``(level coded 0, level coded 1)`` when the
    response was a two-level categorical.  Holistic extras: ``constraints`` (the constraint
    objects given) and ``k_max`` (the largest support they allow; None without constraints).

    The estimates are the exact (penalised, with a ridge) maximum-likelihood fit on the
    selected support; standard errors come from its Fisher information and are conditional on
    the selection.
    """

    design: Design = field(repr=False)
    problem: GlmProblem = field(repr=False)
    solution: Solution = field(repr=False)
    mip_gap: float
    response_levels: tuple | None = None
    response: str = "y"
    constraints: tuple = ()
    k_max: int | None = None

    @classmethod
    def from_solution(cls, design, problem: GlmProblem, solution: Solution, *,
                      mip_gap: float = 1e-4, response_levels: tuple | None = None,
                      response: str = "y", constraints: tuple = (),
                      k_max: int | None = None) -> MioGlmResult:
        """Package a solved GlmProblem of ``design`` as a fit (as lme4's ``mkMerMod``)."""
        return cls(design, problem, solution, mip_gap, response_levels, response,
                   constraints, k_max)

    # basics --------------------------------------------------------------------------------
    @property
    def formula(self) -> str:
        """The formula text."""
        return self.design.formula

    @property
    def n_obs(self) -> int:
        """Rows used (after dropping rows with missing values)."""
        return self.design.n_obs

    @property
    def k(self) -> int:
        """The cap on the selected columns."""
        return int(self.problem.k)

    @property
    def family(self) -> str:
        """``"binomial"`` (logit link)."""
        return "binomial"

    @property
    def w(self) -> np.ndarray:
        """The coefficient vector (numpy)."""
        return self.solution.w

    # estimates -----------------------------------------------------------------------------
    @property
    def coef(self) -> pd.Series:
        """Coefficients of every candidate column (0 when not selected)."""
        return pd.Series(self.w[: self.problem.p], index=list(self.design.X.columns),
                         name="estimate")

    @property
    def params(self) -> pd.Series:
        """Alias of :attr:`coef` (statsmodels' name)."""
        return self.coef

    @property
    def _support_columns(self) -> np.ndarray:
        units: np.ndarray | list[int] = (self.solution.support
                                         if self.solution.support is not None else [])
        return self.problem.columns_of(units)

    @property
    def selected(self) -> list[str]:
        """Selected columns (the intercept excluded: it is always in)."""
        always = set(self.problem.always.tolist())
        return [self.problem.names[j] for j in self._support_columns if j not in always]

    @property
    def linear_predictor(self) -> np.ndarray:
        """X beta + offset on the training rows."""
        return self.problem.X @ self.w + self.problem.offset

    @cached_property
    def fitted(self) -> np.ndarray:
        """Fitted probabilities on the training rows."""
        return expit(self.linear_predictor)

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "response"
                ) -> pd.Series:
        """Predictions for ``newdata`` (the training rows when None), a Series on its index:
        probabilities (``type="response"``) or the linear predictor (``type="link"``); rows
        with a missing value give NaN under ``na_action="drop"``."""
        if type not in ("response", "link"):
            raise ValueError(f"type must be 'response' or 'link', got {type!r}")
        if newdata is None:
            eta = self.linear_predictor
            out = expit(eta) if type == "response" else eta
            return pd.Series(out, index=self.design.row_index, name="prediction")
        from mixmio._checks import as_frame

        newdata = as_frame(newdata, "newdata")
        missing = "skip" if getattr(self.design, "na_action", "drop") == "drop" else "raise"
        nd = self.design.transform(newdata, missing=missing)
        eta = nd.X.to_numpy(dtype=float) @ self.w + nd.offset
        return on_newdata(expit(eta) if type == "response" else eta, nd, newdata)

    # likelihood ----------------------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """Log-likelihood of the reported estimates (unpenalised)."""
        return -nll(self.linear_predictor, self.problem.y)

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (the saturated model of 0/1 data has log-likelihood 0)."""
        return -2.0 * self.loglik

    @cached_property
    def null_deviance(self) -> float:
        """Deviance of the model with the always-in columns only (the intercept)."""
        pr = self.problem
        _, val, _ = fit_support(pr.always, pr.X, pr.y, pr.offset, 0.0, pr.penalized)
        return 2.0 * val

    @property
    def df_model(self) -> int:
        """Number of estimated coefficients (intercept included)."""
        return int(self._support_columns.size)

    @property
    def aic(self) -> float:
        """deviance + 2 df_model."""
        return self.deviance + 2.0 * self.df_model

    @property
    def bic(self) -> float:
        """deviance + log(n) df_model."""
        return self.deviance + np.log(self.n_obs) * self.df_model

    @property
    def pseudo_r_squared(self) -> float:
        """McFadden's 1 - deviance / null deviance."""
        return 1.0 - self.deviance / self.null_deviance if self.null_deviance > 0 else np.nan

    # tables --------------------------------------------------------------------------------
    def coef_table(self) -> pd.DataFrame:
        """Estimate, standard error (Fisher information of the fit on the selected columns,
        penalised with a ridge), z, p-value, 95% Wald interval, selected; zero rows for
        unselected columns carry NaN errors."""
        from scipy import stats

        pr = self.problem
        cols = self._support_columns
        names = list(self.design.X.columns)
        est = self.w[: pr.p]
        se = np.full(pr.p, np.nan)
        se[cols] = fisher_se(self.w, cols, pr.X, pr.offset, pr.ridge, pr.penalized)
        out = pd.DataFrame({"estimate": est, "std_err": se}, index=names)
        out["z"] = out["estimate"] / out["std_err"]
        out["p_value"] = 2 * stats.norm.sf(np.abs(out["z"]))
        q = stats.norm.ppf(0.975)
        out["ci_lower"] = out["estimate"] - q * out["std_err"]
        out["ci_upper"] = out["estimate"] + q * out["std_err"]
        sel = np.zeros(pr.p, dtype=bool)
        sel[cols] = True
        sel[pr.always] = False
        out["selected"] = sel
        return out

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table of :meth:`coef_table` (every candidate column)."""
        return self.coef_table()

    def summary(self) -> GlmSummary:
        """statsmodels-GLM-like summary with the certificate lines.

        Returns a :class:`GlmSummary` (a :class:`~mixmio.results.summary.Summary`):
        ``print(fit.summary())`` or ``str()`` gives the text, Jupyter shows an HTML table, and
        ``summary["model"]`` / ``summary["coef"]`` are the tables as DataFrames.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = (rng.random(200) < 1 / (1 + np.exp(-2 * df.a))).astype(int)
        >>> fit = mixmio.mio_glm("y ~ a + b + c + d", df, k=1)
        >>> s = fit.summary()
        >>> "Status: optimal" in str(s)
        True
        >>> bool((s["coef"]["estimate"] == fit.coef[["Intercept", "a"]]).all())
        True
        """
        return GlmSummary(self)

    def bootstrap(self, B: int = 500, scheme: str = "pairs", ci: str = "percentile",
                  level: float = 0.95, n_jobs: int = 1,
                  random_state: int | Sequence[int] | None = None, progress: bool = True,
                  time_limit: float | None = None, *, solver: str | None = None
                  ) -> Any:
        """Pairs bootstrap of the fit, re-running the best-subset selection in every
        replicate: how stable is the selection, and how uncertain are the estimates once
        selection is included?

        Every replicate draws rows with replacement and solves the same problem (same ``k``,
        ridge, ``mip_gap`` and engine).  Replicates whose response has one class only (status
        ``degenerate``) or whose classes are separated (status ``separation``, without a
        ridge) are failures: recorded in ``.failures`` with the reason, excluded from the
        statistics, never raised.  The fit is unchanged.

        Parameters
        ----------
        B : number of replicates (an integer >= 2).
        scheme : ``"pairs"`` (the only scheme for logistic regression).
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
        solver : ``"auto"``, ``"bnb"``, ``"oa"`` or ``"heuristic"``; None: the engine that
            solved this fit.

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
        >>> df = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
        >>> df["y"] = (rng.random(200) < 1 / (1 + np.exp(-2 * df.a))).astype(int)
        >>> fit = mixmio.mio_glm("y ~ a + b + c + d", df, k=1)
        >>> boot = fit.bootstrap(B=20, random_state=1)
        >>> boot.n_ok, boot.selection_frequency[["a", "b", "c", "d"]].tolist()
        (20, [1.0, 0.0, 0.0, 0.0])
        """
        subset_bootstrap = method("subset_bootstrap")

        return subset_bootstrap(self, B=B, scheme=scheme, ci=ci, level=level, n_jobs=n_jobs,
                                random_state=random_state, progress=progress,
                                time_limit=time_limit, solver=solver)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        return (f"MioGlmResult(formula={self.formula!r}, k={self.k}, "
                f"selected={self.selected}, status={self.status!r}, gap={self.gap:.3g})")


class GlmSummary(Summary):
    """The summary of a :class:`MioGlmResult` (a :class:`~mixmio.results.summary.Summary`):
    ``str()`` / ``print`` the text, ``_repr_html_`` for Jupyter.

    Tables: ``model`` (the header's label/value pairs: formula, likelihood, certificate; one
    row per item, column ``value``) and ``coef`` (intercept and selected columns: estimate,
    std_err, z, p_value, ci_lower, ci_upper, as in :meth:`MioGlmResult.coef_table`).

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    >>> df["y"] = (rng.random(200) < 1 / (1 + np.exp(-2 * df.a))).astype(int)
    >>> s = mixmio.mio_glm("y ~ a + b + c + d", df, k=1).summary()
    >>> print(str(s).splitlines()[0])
    Model:               best-subset logistic regression (mio_glm)  Formula:    y ~ a + b + c + d
    >>> list(s.tables), list(s["coef"].index)
    (['model', 'coef'], ['Intercept', 'a'])
    """

    HEADERS = ["", "coef", "std err", "z", "P>|z|", "[0.025", "0.975]"]

    def __init__(self, fit: MioGlmResult):
        super().__init__()
        self.fit = fit

    def _items(self) -> list[tuple]:
        """(label, value, shown) of the header, two to a line."""
        f = self.fit
        resp = f.response
        if f.response_levels is not None:
            lv0, lv1 = f.response_levels
            resp = f"{f.response} ({lv1!r} = 1, {lv0!r} = 0)"
        dropped = f.design.n_dropped
        n_cand = len(f.problem.names) - f.problem.always.size
        return [
            ("Model:", "best-subset logistic regression (mio_glm)"), ("Formula:", f.formula),
            ("Family:", "Binomial (link: logit)"), ("Response:", resp),
            ("Observations:", f.n_obs,
             f"{f.n_obs}" + (f" ({dropped} dropped, NA)" if dropped else "")),
            ("k (cap):", f.k, f"{f.k}" + ("" if f.k_max is None else
                                          f" (k_max {f.k_max} under the constraints)")),
            ("Selected:", len(f.selected), f"{len(f.selected)} of {n_cand} candidate columns"),
            ("Df model:", f.df_model),
            ("Log-likelihood:", f.loglik, f"{f.loglik:.4f}"),
            ("Deviance:", f.deviance, f"{f.deviance:.4f}"),
            ("Null deviance:", f.null_deviance, f"{f.null_deviance:.4f}"),
            ("AIC:", f.aic, f"{f.aic:.4f}"),
            ("Pseudo R-sq (McF.):", f.pseudo_r_squared, f"{f.pseudo_r_squared:.4f}"),
            ("BIC:", f.bic, f"{f.bic:.4f}"),
            ("Ridge:", f.ridge, f"{f.ridge:.4g}"), ("Objective:", f.objective,
                                                    f"{f.objective:.6f}"),
            ("Best bound:", f.best_bound, f"{f.best_bound:.6f}"), ("Gap:", f.gap, _gap(f.gap)),
            ("Solver:", f.solver), ("Time (s):", f.solve_time, f"{f.solve_time:.3f}"),
        ]

    def header(self) -> list[tuple]:
        """Model, likelihood and certificate lines (label, value pairs)."""
        rows = self.model_table().rows
        assert rows is not None  # key_value_table always sets them
        return [tuple(r) for r in rows]

    def model_table(self) -> SummaryTable:
        """The header as a table (``model``)."""
        return key_value_table("model", self._items(),
                               options={"tablefmt": "plain", "disable_numparse": True})

    def _shown(self) -> pd.DataFrame:
        tab = self.fit.coef_table()
        return tab[tab["selected"] | np.isin(np.arange(len(tab)), self.fit.problem.always)]

    def rows(self) -> list[list[str]]:
        """Coefficient rows of the intercept and the selected columns."""
        out = []
        for name, r in self._shown().iterrows():
            out.append([name, f"{r.estimate:.4f}", _num(r.std_err), _num(r.z, 3),
                        _pval(r.p_value), _num(r.ci_lower), _num(r.ci_upper)])
        return out

    def coef_table(self) -> SummaryTable:
        """The coefficient table (``coef``)."""
        return SummaryTable("coef", self._shown().drop(columns="selected"), rows=self.rows(),
                            headers=self.HEADERS,
                            options={"tablefmt": "simple", "disable_numparse": True,
                                     "colalign": ("left",) + ("right",) * 6})

    def notes(self) -> list[str]:
        """Status line, the constraints (when given), a note when not proven optimal, the
        unselected count and the estimator."""
        f = self.fit
        tab = f.coef_table()
        n_zero = int((~tab["selected"]).sum()) - f.problem.always.size
        lines = [f"Status: {f.status} (relative gap {_gap(f.gap)}; optimal means proven gap "
                 f"<= {f.mip_gap:g})"]
        if f.constraints:
            lines.append("Constraints: " + ", ".join(repr(c) for c in f.constraints))
        if f.status != "optimal":
            lines.append(f"NOTE: not proven optimal ({f.status}): {f.solution.message}")
        lines.append(f"{n_zero} candidate column(s) not selected (coefficient 0).")
        lines.append("Estimates: " + ("maximum likelihood" if f.ridge == 0 else
                                      f"ridge-penalised likelihood (ridge {f.ridge:.4g})")
                     + " on the selected columns; standard errors from its Fisher information"
                     + (" (penalised)" if f.ridge else "")
                     + ", conditional on the selection.")
        return lines

    def _build(self) -> list:
        return [self.model_table(), self.coef_table(), *self.notes()]


def _num(v: float, digits: int = 4) -> str:
    return "" if not np.isfinite(v) else f"{v:.{digits}f}"


def _pval(p: float) -> str:
    if not np.isfinite(p):
        return ""
    if p < 2.2e-16:
        return "<2e-16"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.2e}"


def _gap(g: float) -> str:
    return "inf" if not np.isfinite(g) else f"{g:.2e}"
