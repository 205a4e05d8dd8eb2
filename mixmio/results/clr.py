"""MioClrResult: the value a mio_clr (clusterwise LAD regression) fit returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio.problem.clr import ClrProblem
from mixmio.results._certificate import CertificateMixin
from mixmio.results._methods import method
from mixmio.results.summary import Summary, SummaryTable, key_value_table
from mixmio.solvers.solution import Solution

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mixmio.design import Design


@dataclass(frozen=True, eq=False)
class MioClrResult(CertificateMixin):
    """A fitted clusterwise least-absolute-deviations regression.

    Clusters are numbered 0..K-1 by their first member in row order; ``-1`` marks a row
    flagged as an outlier (only with ``outlier_penalty``).  Estimates: ``labels_`` (alias
    ``clusters``; a Series indexed like the data; rows dropped for missing values are
    absent),
    ``outliers`` (boolean Series), ``coef`` (DataFrame cluster x term), ``sizes``,
    ``cluster_objective`` (sum of absolute residuals per cluster), ``fitted`` and
    ``residuals`` (to the row's own line; NaN for outliers).  Certificate: ``objective``
    (total absolute deviation + T x outliers), ``best_bound``, ``gap``, ``status``
    (``optimal`` only with a proven gap <= ``mip_gap``), ``solver``, ``solve_time``,
    ``big_m_kind`` (``"proven"``: the bound holds for the clusterwise problem as stated;
    ``"box"``: for the model with the coefficient box ``coef_box``).
    """

    design: Design = field(repr=False)
    problem: ClrProblem = field(repr=False)
    solution: Solution = field(repr=False)
    mip_gap: float

    @classmethod
    def from_solution(cls, design, problem: ClrProblem, solution: Solution, *,
                      mip_gap: float = 1e-4) -> MioClrResult:
        """Package a solved ClrProblem of ``design`` as a fit, warning when ``optimal`` holds
        for the coefficient box only (too many basic lines to prove a big-M)."""
        if solution.status == "optimal" and problem.big_m_kind == "box":
            import warnings

            assert problem.coef_box is not None  # the "box" kind is the box's big-M

            from mixmio._runtime import user_stacklevel

            warnings.warn("mio_clr: 'optimal' holds for the model with the stated coefficient "
                          f"box (|coefficient| <= {np.max(problem.coef_box):.4g}; too many "
                          "basic lines to prove a big-M), not for the unrestricted clusterwise "
                          "problem", RuntimeWarning, stacklevel=user_stacklevel())
        return cls(design, problem, solution, float(mip_gap))

    # ------------------------------------------------------------------ basics
    @property
    def formula(self) -> str:
        return self.design.formula

    @property
    def n_obs(self) -> int:
        return int(self.problem.n)

    @property
    def n_clusters(self) -> int:
        return int(self.problem.n_clusters)

    @property
    def outlier_penalty(self) -> float | None:
        return self.problem.outlier_penalty

    @property
    def min_size(self) -> int | None:
        return self.problem.min_size

    @property
    def big_m_kind(self) -> str:
        return self.problem.big_m_kind

    @property
    def coef_box(self) -> pd.Series | None:
        """Half-widths of the modelling box on the coefficients (None when the big-M is
        proven, i.e. no box is part of the model)."""
        if self.problem.coef_box is None:
            return None
        return pd.Series(self.problem.coef_box, index=self.terms, name="box")

    @property
    def terms(self) -> list[str]:
        return list(self.design.X.columns)

    @property
    def nodes(self) -> int | None:
        return self.solution.nodes

    # ------------------------------------------------------------------ estimates
    @property
    def _labels(self) -> np.ndarray:
        return np.asarray(self.solution.labels)

    @property
    def labels_(self) -> pd.Series:
        """Cluster of every row used in the fit (0..K-1; -1: outlier), indexed like the data."""
        return pd.Series(self._labels, index=self.design.row_index, name="cluster")

    @property
    def clusters(self) -> pd.Series:
        """Alias of :attr:`labels_`."""
        return self.labels_

    @property
    def outliers(self) -> pd.Series:
        """True for rows flagged as outliers (all False without ``outlier_penalty``)."""
        return pd.Series(self._labels < 0, index=self.design.row_index, name="outlier")

    @property
    def coef(self) -> pd.DataFrame:
        """Coefficients, one row per cluster (NaN for an empty cluster)."""
        C = np.array(self.solution.coef, dtype=float)
        C[self.sizes.to_numpy() == 0] = np.nan
        return pd.DataFrame(C, index=pd.RangeIndex(self.n_clusters, name="cluster"),
                            columns=self.terms)

    @property
    def sizes(self) -> pd.Series:
        """Rows per cluster."""
        return pd.Series(np.bincount(self._labels[self._labels >= 0],
                                     minlength=self.n_clusters),
                         index=pd.RangeIndex(self.n_clusters, name="cluster"), name="size")

    @property
    def cluster_objective(self) -> pd.Series:
        """Sum of absolute residuals of each cluster's members to its line."""
        return pd.Series(np.asarray(self.solution.lad, dtype=float),
                         index=pd.RangeIndex(self.n_clusters, name="cluster"), name="lad")

    @property
    def identified(self) -> pd.Series:
        """Whether each cluster's members determine its line (rank of their design = p);
        otherwise the line is one of many with the same fit."""
        X, lab = self.problem.X, self._labels
        ok = [bool(np.sum(lab == k) >= X.shape[1]
                   and np.linalg.matrix_rank(X[lab == k]) == X.shape[1])
              for k in range(self.n_clusters)]
        return pd.Series(ok, index=pd.RangeIndex(self.n_clusters, name="cluster"),
                         name="identified")

    @property
    def fitted(self) -> pd.Series:
        """Each row's prediction from its own cluster's line (NaN for outliers)."""
        P = self._predict_matrix(self.problem.X) + self.design.offset[:, None]
        lab = self._labels
        out = np.where(lab >= 0, P[np.arange(len(lab)), np.maximum(lab, 0)], np.nan)
        return pd.Series(out, index=self.design.row_index, name="fitted")

    @property
    def residuals(self) -> pd.Series:
        return pd.Series(self.design.y - self.fitted.to_numpy(), index=self.design.row_index,
                         name="residual")

    # statsmodels' names (issue 20)
    @property
    def params(self) -> pd.Series:
        """The coefficients as one Series indexed by (cluster, term)."""
        return self.coef.stack(future_stack=True).rename("params")

    @property
    def nobs(self) -> int:
        """Number of rows used in the fit."""
        return int(self.n_obs)

    @property
    def fittedvalues(self) -> pd.Series:
        """:attr:`fitted` (statsmodels' name)."""
        return self.fitted.rename("fittedvalues")

    @property
    def resid(self) -> pd.Series:
        """:attr:`residuals` (statsmodels' name)."""
        return self.residuals.rename("resid")

    @property
    def bse(self) -> pd.Series:
        """Not available: a clusterwise LAD fit has no classical standard errors (the
        assignment and the per-cluster L1 fits have no closed-form sampling distribution)."""
        raise NotImplementedError(
            "mio_clr has no standard errors: the clusters are chosen and each line is an L1 "
            "fit, so no classical formula applies; refit on resampled rows to gauge them")

    pvalues = bse
    tvalues = bse

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Not available (see :attr:`bse`)."""
        return self.bse

    def _predict_matrix(self, X: np.ndarray) -> np.ndarray:
        return X @ np.asarray(self.solution.coef, dtype=float).T

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predictions of every cluster's line (one column per cluster).

        The cluster of a new row is unknown (it is defined by the response), so each line's
        prediction is returned; ``newdata=None`` gives them for the training rows.
        """
        if newdata is None:
            X, off, index = self.problem.X, self.design.offset, self.design.row_index
        else:
            nd = self.design.transform(newdata)
            index = newdata.index if isinstance(newdata, pd.DataFrame) else None
            X, off = nd.X.to_numpy(dtype=float), nd.offset
        P = self._predict_matrix(X) + np.asarray(off)[:, None]
        P[:, self.sizes.to_numpy() == 0] = np.nan
        return pd.DataFrame(P, index=index,
                            columns=pd.RangeIndex(self.n_clusters, name="cluster"))

    def to_frame(self) -> pd.DataFrame:
        """One row per cluster: coefficients, size, LAD objective and identification."""
        return self.coef.join([self.sizes, self.cluster_objective, self.identified])

    # ------------------------------------------------------------------ plot
    def plot(self, x: str | None = None, ax: Axes | None = None) -> Figure:
        """Scatter of the response against the design column ``x`` coloured by cluster, with
        each cluster's fitted line; a Figure (the figure of ``ax`` when one is given).

        ``x`` defaults to the first non-intercept column (a ValueError lists them when ``x``
        is not one).  Every non-empty cluster ``k`` is one scatter collection (colour
        ``C<k>``) and one line; outliers are black crosses in their own collection.  The
        line of cluster ``k`` has slope ``coef.loc[k, x]``; with one covariate it is the
        fitted line itself, with several it is the fitted plane at the cluster members'
        means of the other columns (and of the offset), so the points scatter around it
        by the other columns' spread as well as the residuals.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(1)
        >>> x = rng.uniform(0, 10, 12)
        >>> y = np.where(np.arange(12) % 2 == 0, 1 + 2 * x, 25 - 2 * x) + rng.normal(0, .3, 12)
        >>> fit = mixmio.mio_clr("y ~ x", pd.DataFrame({"x": x, "y": y}), 2, random_state=0)
        >>> fig = fit.plot()
        >>> ax = fig.axes[0]
        >>> len(ax.collections), len(ax.lines), ax.get_xlabel()
        (2, 2, 'x')
        """
        plot_clusters = method("plot_clusters")

        return plot_clusters(self, x=x, ax=ax)

    # ------------------------------------------------------------------ text
    def _model_text(self) -> str:
        if self.big_m_kind == "box":
            assert self.coef_box is not None  # the "box" kind is the box's big-M
            box = ", ".join(f"|{t}| <= {b:.4g}" for t, b in self.coef_box.items())
            return ("the status and bound refer to the model with the coefficient box "
                    f"{box} (chosen from the warm start: too many p-subsets to prove a big-M)")
        if self.big_m_kind == "proven":
            return ("valid (max residual of every basic line, per row; max "
                    f"{self.problem.big_m.max():.4g}): the bound holds for the clusterwise "
                    "problem as stated")
        return "heuristic only: no bound"

    def _formulation_text(self) -> str:
        f = self.problem.formulation
        if f == "bigm":
            sb = "with" if self.problem.symmetry_breaking else "without"
            return f"(P1)/(P2) big-M, {sb} symmetry breaking"
        if f == "lines":
            assert self.problem.lines is not None  # the "lines" formulation keeps them
            return f"K basic lines of {self.problem.lines.shape[0]}"
        return "warm start only"

    def summary(self) -> ClrSummary:
        """Per-cluster coefficients, sizes and LAD objective, with the certificate.

        Returns a :class:`ClrSummary` (a :class:`~mixmio.results.summary.Summary`):
        ``print(fit.summary())`` or ``str()`` gives the text, Jupyter shows an HTML table, and
        ``summary["model"]`` (the header's label/value pairs) and ``summary["clusters"]`` (one
        row per cluster, as :meth:`to_frame`) are DataFrames of the values.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(1)
        >>> x = rng.uniform(0, 10, 12)
        >>> y = np.where(np.arange(12) % 2 == 0, 1 + 2 * x, 25 - 2 * x) + rng.normal(0, .3, 12)
        >>> fit = mixmio.mio_clr("y ~ x", pd.DataFrame({"x": x, "y": y}), 2, random_state=0)
        >>> s = fit.summary()
        >>> print(str(s).splitlines()[0])
        Model:            clusterwise LAD regression (mio_clr)  Formula:      y ~ x
        >>> s["clusters"]["size"].tolist(), s["model"].loc["Clusters", "value"]
        ([6, 6], 2)
        """
        return ClrSummary(self)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        return (f"MioClrResult(formula={self.formula!r}, n_clusters={self.n_clusters}, "
                f"sizes={self.sizes.tolist()}, outliers={int(self.outliers.sum())}, "
                f"objective={self.objective:.6g}, status={self.status!r}, "
                f"gap={self.gap:.3g})")


class ClrSummary(Summary):
    """The summary of a :class:`MioClrResult` (see :meth:`MioClrResult.summary`).

    Tables: ``model`` (the header's label/value pairs, one row per item, column ``value``)
    and ``clusters`` (coefficients, size, LAD objective and identification per cluster, as
    :meth:`MioClrResult.to_frame`).
    """

    def __init__(self, fit: MioClrResult):
        super().__init__()
        self.fit = fit

    def model_table(self) -> SummaryTable:
        f = self.fit
        d = f.design.n_dropped
        return key_value_table("model", [
            ("Model:", "clusterwise LAD regression (mio_clr)"), ("Formula:", f.formula),
            ("Observations:", f.n_obs,
             f"{f.n_obs}" + (f" ({d} dropped for missing values)" if d else "")),
            ("Clusters:", f.n_clusters),
            ("Outlier penalty:", f.outlier_penalty,
             "-" if f.outlier_penalty is None else f"{f.outlier_penalty:g}"),
            ("Outliers:", int(f.outliers.sum())),
            ("Min size:", f.min_size, "-" if f.min_size is None else f.min_size),
            ("Formulation:", f._formulation_text()),
            ("Objective:", f.objective, f"{f.objective:.6g}"),
            ("Best bound:", f.best_bound, f"{f.best_bound:.6g}"),
            ("Solver:", f.solver), ("Time (s):", f.solve_time, f"{f.solve_time:.3f}"),
        ])

    def cluster_table(self) -> SummaryTable:
        f = self.fit
        tab = f.to_frame()
        rows = []
        for k, r in tab.iterrows():
            rows.append([k] + [("" if np.isnan(r[t]) else f"{r[t]:.4f}") for t in f.terms]
                        + [int(r["size"]), f"{r['lad']:.4g}", "yes" if r["identified"] else "no"])
        return SummaryTable("clusters", tab, rows=rows,
                            headers=["cluster"] + f.terms + ["size", "LAD", "identified"],
                            options={"tablefmt": "simple", "disable_numparse": True})

    def _build(self) -> list:
        f = self.fit
        gap_txt = "inf" if not np.isfinite(f.gap) else f"{f.gap:.2e}"
        return [self.model_table(),
                f"Status: {f.status} (relative gap {gap_txt}; optimal means proven gap "
                f"<= {f.mip_gap:g})",
                f"Big-M: {f._model_text()}.",
                self.cluster_table()]
