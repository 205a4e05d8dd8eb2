"""MioLmerResult: the value a mio_lmer fit returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from mixmio._warnings import user_stacklevel

from ..problem import Problem
from ..solvers.solution import Solution
from ._certificate import CertificateMixin


@dataclass(frozen=True, eq=False)
class MioLmerResult(CertificateMixin):
    """A fitted sparse mixed model.

    Estimates: ``fixef`` (Series), ``ranef`` (long DataFrame: group, level, term, estimate),
    ``selected`` (its non-zero rows), ``fitted``, ``residuals``, ``sigma``, ``icc``.
    Certificate: ``objective`` (the penalised selection objective), ``best_bound``, ``gap``,
    ``status`` (``optimal`` only with a proven gap <= ``mip_gap``), ``solver``, ``solve_time``.
    With ``refit=True`` the estimates are the unpenalised least-squares refit on the selected
    support; ``objective`` stays the penalised one of the selection.

    >>> import mixmio
    >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
    ...                       mixmio.datasets.load("sleepstudy"), k=3)
    >>> fit.status, len(fit.selected)
    ('optimal', 3)
    """

    design: object = field(repr=False)
    problem: Problem = field(repr=False)
    solution: Solution = field(repr=False)
    w: np.ndarray = field(repr=False)  # reported coefficients [beta; gamma]
    mip_gap: float
    refit: bool
    bootstrap_result: object = field(default=None, repr=False)


    @property
    def k(self) -> dict[str, int]:
        """Cap per random-effect column label (the total; see ``sign_caps`` for asymmetric
        ones)."""
        return {c.label: c.k for c in self.problem.caps if c.label != "fixed effects"}

    @property
    def sign_caps(self) -> dict[str, tuple[int, int]]:
        """Asymmetric caps as given, ``{label: (at most above, at most below)}``."""
        return {c.label: (c.k_pos, c.k_neg) for c in self.problem.sign_caps}

    @property
    def k_fixed(self) -> int | None:
        return next((c.k for c in self.problem.caps if c.label == "fixed effects"), None)

    @property
    def formula(self) -> str:
        return self.design.formula

    @property
    def n_obs(self) -> int:
        return self.design.n_obs

    @property
    def n_groups(self) -> dict[str, int]:
        return {b.group: b.n_levels for b in self.design.blocks}

    # estimates -----------------------------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        p = self.problem.p
        return pd.Series(self.w[:p], index=list(self.design.X.columns), name="estimate")

    @cached_property
    def ranef(self) -> pd.DataFrame:
        zc = self.design.z_columns
        return pd.DataFrame({"group": zc["group"], "level": zc["level"], "term": zc["term"],
                             "estimate": self.w[self.problem.p:]})

    @property
    def selected(self) -> pd.DataFrame:
        r = self.ranef
        return r[r["estimate"] != 0]

    @cached_property
    def fitted(self) -> np.ndarray:
        pr = self.problem
        return pr.X @ self.w[: pr.p] + pr.Z @ self.w[pr.p:] + self.design.offset

    @property
    def residuals(self) -> np.ndarray:
        return self.design.y - self.fitted

    @cached_property
    def df_resid(self) -> int:
        """n minus the rank of the columns in the fit (aliased columns, e.g. an intercept
        and every cluster's dummy, count once, as in lme4 and statsmodels)."""
        from ..solvers.refit import support_rank

        return max(0, self.n_obs - support_rank(self.problem, self.w))

    @property
    def sigma(self) -> float:
        """Residual standard deviation, sqrt(RSS / df_resid); NaN when the fit leaves no
        residual degrees of freedom (e.g. one cluster per row, every cluster selected)."""
        if self.df_resid == 0:
            return float("nan")
        r = self.residuals
        return float(np.sqrt(r @ r / self.df_resid))

    @property
    def icc(self) -> pd.Series:
        """var(gamma) / (var(gamma) + sigma^2) per intercept column (zeros included)."""
        out = {}
        p = self.problem.p
        for b in self.design.blocks:
            for j, lab in enumerate(b.labels):
                if b.columns[j] == "Intercept":
                    sl = b.column_slice(j)
                    v = float(np.var(self.w[p + sl.start: p + sl.stop]))
                    out[lab] = v / (v + self.sigma**2)
        return pd.Series(out, name="icc", dtype=float)

    # use -----------------------------------------------------------------------------------
    def predict(self, newdata: pd.DataFrame | None = None, new_levels: str = "population"
                ) -> np.ndarray:
        """Predictions for ``newdata`` (the training rows when None).

        ``new_levels="population"`` predicts x'beta (zero cluster effect) for levels not seen
        in training, with a warning; ``"error"`` refuses them.
        """
        if new_levels not in ("population", "error"):
            raise ValueError("new_levels must be 'population' or 'error', "
                             f"got {new_levels!r}")
        if newdata is None:
            return self.fitted.copy()
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            nd = self.design.transform(newdata)
        if nd.unseen and new_levels == "error":
            raise ValueError(f"newdata has levels not seen in training: {nd.unseen}; pass "
                             "new_levels='population' to predict them at the population level")
        for w in caught:
            warnings.warn(w.message, w.category, stacklevel=user_stacklevel())
        p = self.problem.p
        return nd.X.to_numpy(dtype=float) @ self.w[:p] + nd.Z @ self.w[p:] + nd.offset

    def to_frame(self) -> pd.DataFrame:
        """All coefficients in one long table (fixed and random)."""
        fx = pd.DataFrame({"kind": "fixed", "group": "", "level": "", "term": self.fixef.index,
                           "estimate": self.fixef.to_numpy()})
        rx = self.ranef.assign(kind="random")[["kind", "group", "level", "term", "estimate"]]
        out = pd.concat([fx, rx], ignore_index=True)
        out["selected"] = out["estimate"] != 0
        return out

    # inference -----------------------------------------------------------------------------
    def bootstrap(self, B: int = 500, scheme: str = "residual", ci: str = "percentile",
                  level: float = 0.95, n_jobs=1, random_state=None, progress: bool = True,
                  **kwargs):
        """Bootstrap with the selection re-run in every replicate; a ``BootstrapResult``.

        ``scheme``: ``"residual"`` (``within_cluster=``), ``"cluster"`` (``cluster_by=``),
        ``"wild"`` (``weights="rademacher" | "mammen"``) or ``"parametric"``; ``ci``:
        ``"percentile"``, ``"basic"`` or ``"bca"``.  See :mod:`mixmio.inference.bootstrap`.
        The fit itself is unchanged: ``fit.with_bootstrap(boot)`` (or ``boot.fit``) is the fit
        whose ``summary()`` shows the bootstrap columns.
        """
        from ..inference.bootstrap import bootstrap

        return bootstrap(self, B=B, scheme=scheme, ci=ci, level=level, n_jobs=n_jobs,
                         random_state=random_state, progress=progress, **kwargs)

    def stability(self, B: int = 100, frac: float = 0.5, pairing: str = "complementary",
                  threshold: float = 0.6, scheme: str = "obs", n_jobs=1, random_state=None,
                  progress: bool = True, **kwargs):
        """Stability selection of the clusters; a ``StabilityResult`` (frequencies, flagged set,
        expected-false-flag bound).  See :mod:`mixmio.inference.stability`."""
        from ..inference.stability import stability

        return stability(self, B=B, frac=frac, pairing=pairing, threshold=threshold,
                         scheme=scheme, n_jobs=n_jobs, random_state=random_state,
                         progress=progress, **kwargs)

    def plot_effects(self, term: str | None = None, boot=None, ax=None):
        """Caterpillar plot of a random-effect column's cluster effects (bootstrap intervals
        coloured by selection frequency when ``boot`` or an attached bootstrap is given)."""
        from ..inference.plots import plot_effects

        return plot_effects(self, term=term, boot=boot, ax=ax)

    def with_bootstrap(self, boot) -> MioLmerResult:
        """A copy of this fit with ``boot`` attached (its summary shows bootstrap columns)."""
        if boot is not None and np.shape(getattr(boot, "estimate", None)) != self.w.shape:
            raise ValueError("this bootstrap was not computed from this fit (coefficient "
                             "layouts differ)")
        return replace(self, bootstrap_result=boot)

    def summary(self):
        """lme4-style summary; ``print`` it, or show it in Jupyter."""
        from .summary import LmerSummary

        return LmerSummary(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        return (f"<MioLmerResult {self.formula!r}: status={self.status}, gap={self.gap:.2e}, "
                f"selected={len(self.selected)}>")
