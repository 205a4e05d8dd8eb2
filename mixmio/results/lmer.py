"""MioLmerResult: the value a mio_lmer fit returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixmio.errors import ArgumentError, DataError
from mixmio.problem import Problem
from mixmio.results._certificate import CertificateMixin, raise_if_no_solution
from mixmio.results._conditional import ConditionalInferenceMixin
from mixmio.results._methods import method
from mixmio.results._rows import on_newdata
from mixmio.solvers.solution import Solution

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mixmio.design import Design
    from mixmio.results.summary import LmerSummary


@dataclass(frozen=True, eq=False)
class MioLmerResult(ConditionalInferenceMixin, CertificateMixin):
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

    design: Design = field(repr=False)
    problem: Problem = field(repr=False)
    solution: Solution = field(repr=False)
    w: np.ndarray = field(repr=False)  # reported coefficients [beta; gamma]
    mip_gap: float
    refit: bool
    bootstrap_result: object = field(default=None, repr=False)
    cv_result: object = field(default=None, repr=False)  # CVResult when fitted with k="cv"

    @classmethod
    def from_solution(cls, design, problem: Problem, solution: Solution, *,
                      mip_gap: float = 1e-4, refit: bool = True) -> MioLmerResult:
        """Package a solved Problem of ``design`` as a fit (as lme4's ``mkMerMod``): refuse a
        solution that is not one (infeasible, or nothing found), and with ``refit`` report
        the unpenalised least-squares refit on the selected support."""
        raise_if_no_solution(solution)
        w = solution.w
        if refit:
            from mixmio.results.refit import refit_if_feasible
            from mixmio.solvers.bnb.cd import single_thread

            # O(n p) products and p x p algebra: a spinning BLAS worker only slows them down
            with single_thread():
                w = refit_if_feasible(problem, w, z=solution.z)
        return cls(design, problem, solution, w, mip_gap, refit)

    @property
    def k(self) -> dict[str, int]:
        """Cap per random-effect column label (the total; see ``sign_caps`` for asymmetric
        ones).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.k
        {'1|Subject': 3}
        """
        return {c.label: c.k for c in self.problem.caps if c.label != "fixed effects"}

    @property
    def sign_caps(self) -> dict[str, tuple[int, int]]:
        """Asymmetric caps as given, ``{label: (at most above, at most below)}``.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.sign_caps  # none: k=3 caps deviations of either sign
        {}
        """
        return {c.label: (c.k_pos, c.k_neg) for c in self.problem.sign_caps}

    @property
    def k_fixed(self) -> int | None:
        """The cap on the selectable fixed effects (``None``: every fixed effect is in).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.k_fixed is None
        True
        """
        return next((c.k for c in self.problem.caps if c.label == "fixed effects"), None)

    @property
    def formula(self) -> str:
        """The formula text of the fit.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.formula
        'Reaction ~ Days + (1 | Subject)'
        """
        return self.design.formula

    @property
    def n_obs(self) -> int:
        """Number of rows used in the fit (after dropping rows with missing values).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.n_obs
        180
        """
        return self.design.n_obs

    @property
    def n_groups(self) -> dict[str, int]:
        """Number of levels of every grouping factor.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.n_groups
        {'Subject': 18}
        """
        return {b.group: b.n_levels for b in self.design.blocks}

    # estimates -----------------------------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates, indexed by design column name.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.fixef.round(2)
        Intercept    256.31
        Days          10.47
        Name: estimate, dtype: float64
        """
        p = self.problem.p
        return pd.Series(self.w[:p], index=list(self.design.X.columns), name="estimate")

    @cached_property
    def ranef(self) -> pd.DataFrame:
        """Every cluster effect, one row per Z column: ``group``, ``level``, ``term``,
        ``estimate`` (0 for clusters that are not selected).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.ranef.shape
        (18, 4)
        >>> fit.ranef.head(2).round(1)
             group level       term  estimate
        0  Subject   308  Intercept       0.0
        1  Subject   309  Intercept     -88.2
        """
        zc = self.design.z_columns
        return pd.DataFrame({"group": zc["group"], "level": zc["level"], "term": zc["term"],
                             "estimate": self.w[self.problem.p:]})

    @property
    def selected(self) -> pd.DataFrame:
        """The rows of :attr:`ranef` with a non-zero estimate (the clusters that differ).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.selected.round(1)
             group level       term  estimate
        1  Subject   309  Intercept     -88.2
        2  Subject   310  Intercept     -72.4
        9  Subject   337  Intercept      72.3
        """
        r = self.ranef
        return r[r["estimate"] != 0]

    @cached_property
    def fitted(self) -> np.ndarray:
        """Fitted values of the training rows, ``X beta + Z gamma + offset``.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.fitted.shape, fit.fitted[:3].round(1).tolist()
        ((180,), [256.3, 266.8, 277.2])
        """
        pr = self.problem
        return pr.X @ self.w[: pr.p] + pr.Z @ self.w[pr.p:] + self.design.offset

    @property
    def residuals(self) -> np.ndarray:
        """Response minus :attr:`fitted` on the training rows.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.residuals[:3].round(1).tolist()
        [-6.7, -8.1, -26.4]
        """
        return self.design.y - self.fitted

    @cached_property
    def df_resid(self) -> int:
        """n minus the rank of the columns in the fit (aliased columns, e.g. an intercept
        and every cluster's dummy, count once, as in lme4 and statsmodels).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.df_resid  # 180 rows - (intercept, slope, 3 selected clusters)
        175
        """
        from mixmio.results.refit import support_rank

        return max(0, self.n_obs - support_rank(self.problem, self.w))

    @property
    def sigma(self) -> float:
        """Residual standard deviation, sqrt(RSS / df_resid); NaN when the fit leaves no
        residual degrees of freedom (e.g. one cluster per row, every cluster selected).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> round(fit.sigma, 2)
        36.02
        """
        if self.df_resid == 0:
            return float("nan")
        r = self.residuals
        return float(np.sqrt(r @ r / self.df_resid))

    @property
    def icc(self) -> pd.Series:
        """var(gamma) / (var(gamma) + residual_variance) per intercept column (zeros
        included; residual_variance = sigma^2 here).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fit.icc.round(3)
        1|Subject    0.433
        Name: icc, dtype: float64
        """
        out = {}
        p = self.problem.p
        for b in self.design.blocks:
            for j, lab in enumerate(b.labels):
                if b.columns[j] == "Intercept":
                    sl = b.column_slice(j)
                    v = float(np.var(self.w[p + sl.start: p + sl.stop]))
                    out[lab] = v / (v + self.residual_variance)
        return pd.Series(out, name="icc", dtype=float)

    @property
    def residual_variance(self) -> float:
        """sigma^2, the residual variance :attr:`icc` divides by (a GLMM fit uses its
        latent-scale one)."""
        return self.sigma ** 2

    # use -----------------------------------------------------------------------------------
    def predict(self, newdata: pd.DataFrame | None = None, new_levels: str | None = None, *,
                cluster_features: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                max_depth: int | None = None, random_state: int | None = 0) -> pd.Series:
        """Predictions for ``newdata`` (the training rows when None), a Series on its index.

        Rows of known clusters use their estimated effects.  A level of a grouping factor not
        seen in training gets, for that factor's terms, by ``new_levels``:

        - ``None`` (default): the population line x'beta (zero effect), with a warning;
        - ``"population"``: the same, without a warning;
        - ``"soft"``: ``sum_c pi_c(x) z(x)' gamma_c``, with ``pi(x)`` the class probabilities
          of a ``DecisionTreeClassifier`` (depth ``max_depth``, default ceil(log2 K)) trained
          on the training rows' fixed-effects columns (intercept excluded; factors as their
          dummy columns) to predict a row's cluster;
        - ``"hard"``: the effect of that tree's most probable cluster;
        - ``"features"``: a ``DecisionTreeRegressor`` from cluster-level features to the
          clusters' effects (one output per term column), trained on the training clusters;
          the features are the ``cluster_features`` columns (constant within every cluster,
          in the training data and within every new cluster of newdata) or, without them,
          the cluster means of the numeric fixed-effects columns;
        - ``"error"``: refuse them.

        With several grouping factors, each factor's rule applies to the rows whose level of
        that factor is new.  Rows with a missing value in a variable of the formula predict
        NaN when the fit used ``na_action="drop"`` and raise under ``"raise"``.  The tree used
        last is ``cluster_model_``; the classification tree is cached per design, so fits
        sharing one design (a path over k) train it once.

        Parameters
        ----------
        newdata : DataFrame (or dict of columns) with the formula's variables (the response
            is not needed).
        new_levels : ``None``, ``"population"``, ``"soft"``, ``"hard"``, ``"features"`` or
            ``"error"``.
        cluster_features : columns for ``"features"``: a list (for every grouping factor) or
            ``{grouping factor: columns}``.
        max_depth : depth of the trees (None: ceil(log2 K), K the factor's training clusters).
        random_state : the trees' seed (None: not reproducible).

        Examples
        --------
        >>> import mixmio
        >>> data = mixmio.datasets.load("sleepstudy")
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
        >>> new = data[data["Subject"].isin([308, 309])].groupby("Subject").head(1)
        >>> fit.predict(new).round(1)  # 308 is at the population line, 309 below it
        0     256.3
        10    168.1
        Name: prediction, dtype: float64
        >>> unseen = new.assign(Subject=999)
        >>> fit.predict(unseen, new_levels="population").round(1).tolist()
        [256.3, 256.3]
        >>> # every subject has Days 0-9, so pi = 1/18 each: the mean effect, 256.3 - 4.9
        >>> fit.predict(unseen, new_levels="soft").round(1).tolist()
        [251.4, 251.4]
        """
        from mixmio._checks import as_frame

        mode = _check_predict_args(new_levels, cluster_features, max_depth, random_state)
        design = self.design
        if newdata is None:
            return pd.Series(self.fitted, index=design.row_index, name="prediction")
        newdata = as_frame(newdata, "newdata")
        groups = list(dict.fromkeys(b.group for b in design.blocks))
        feats = _feature_columns(design, mode, cluster_features, groups, newdata)
        nd = _transform_newdata(design, newdata, mode, warn_unseen=new_levels is None)
        p = self.problem.p
        gamma = self.w[p:]
        pred = nd.X.to_numpy(dtype=float) @ self.w[:p] + nd.Z @ gamma + nd.offset
        if mode in ("soft", "hard", "features"):
            for g in groups:
                rows = nd.unseen_rows.get(g)
                if rows is None:
                    continue
                model = _add_new_level_effects(pred, design, gamma, nd, g, rows, mode,
                                               newdata, feats[g] or None, max_depth,
                                               random_state)
                object.__setattr__(self, "_cluster_model", model)
        return on_newdata(pred, nd, newdata)

    @property
    def cluster_model_(self) -> object | None:
        """The tree that :meth:`predict` used last for new clusters (a scikit-learn
        ``DecisionTreeClassifier`` for ``"soft"`` / ``"hard"``, ``DecisionTreeRegressor`` for
        ``"features"``); None before any such prediction.

        Examples
        --------
        >>> import mixmio
        >>> data = mixmio.datasets.load("sleepstudy")
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)", data, k=3)
        >>> fit.cluster_model_ is None
        True
        >>> _ = fit.predict(data.head(2).assign(Subject=999), new_levels="hard")
        >>> type(fit.cluster_model_).__name__, fit.cluster_model_.get_depth() <= 5
        ('DecisionTreeClassifier', True)
        """
        return self.__dict__.get("_cluster_model")

    def to_frame(self) -> pd.DataFrame:
        """All coefficients in one long table (fixed and random): ``kind``, ``group``,
        ``level``, ``term``, ``estimate`` and ``selected``.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> t = fit.to_frame()
        >>> t.shape, int(t["selected"].sum())
        ((20, 6), 5)
        """
        fx = pd.DataFrame({"kind": "fixed", "group": "", "level": "", "term": self.fixef.index,
                           "estimate": self.fixef.to_numpy()})
        rx = self.ranef.assign(kind="random")[["kind", "group", "level", "term", "estimate"]]
        out = pd.concat([fx, rx], ignore_index=True)
        out["selected"] = out["estimate"] != 0
        return out

    # inference -----------------------------------------------------------------------------
    def bootstrap(self, B: int = 500, scheme: str = "residual", ci: str = "percentile",
                  level: float = 0.95, n_jobs: int = 1,
                  random_state: int | Sequence[int] | None = None, progress: bool = True,
                  **kwargs: Any) -> Any:
        """Bootstrap with the selection re-run in every replicate; a ``BootstrapResult``.

        ``scheme``: ``"residual"`` (``within_cluster=``), ``"cluster"`` (``cluster_by=``),
        ``"wild"`` (``weights="rademacher" | "mammen"``) or ``"parametric"``; ``ci``:
        ``"percentile"``, ``"basic"`` or ``"bca"``.  See :mod:`mixmio.inference.bootstrap`.
        The fit itself is unchanged: ``fit.with_bootstrap(boot)`` (or ``boot.fit``) is the fit
        whose ``summary()`` shows the bootstrap columns.  Arguments as in
        :func:`mixmio.inference.bootstrap` (``kwargs``: ``within_cluster``, ``cluster_by``,
        ``weights``, ``solver``, ``time_limit``).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> boot.n_ok, boot.scheme
        (20, 'residual')
        >>> boot.report().clusters["level"].tolist()
        ['309', '310', '337']
        """
        bootstrap = method("bootstrap")

        return bootstrap(self, B=B, scheme=scheme, ci=ci, level=level, n_jobs=n_jobs,
                         random_state=random_state, progress=progress, **kwargs)

    def stability(self, B: int = 100, frac: float = 0.5, pairing: str = "complementary",
                  threshold: float = 0.6, scheme: str = "obs", n_jobs: int = 1,
                  random_state: int | Sequence[int] | None = None, progress: bool = True,
                  **kwargs: Any) -> Any:
        """Stability selection of the clusters; a ``StabilityResult`` (frequencies, flagged set,
        expected-false-flag bound).  See :mod:`mixmio.inference.stability`.

        Arguments as in :func:`mixmio.inference.stability` (``kwargs``: ``cluster_by``,
        ``solver``, ``time_limit``).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> st = fit.stability(B=20, random_state=1, progress=False)
        >>> st.n_ok, sorted(st.flagged["level"])
        (20, ['309', '310', '337'])
        """
        stability = method("stability")

        return stability(self, B=B, frac=frac, pairing=pairing, threshold=threshold,
                         scheme=scheme, n_jobs=n_jobs, random_state=random_state,
                         progress=progress, **kwargs)

    def plot_funnel(self, term: str | None = None, ax: Axes | None = None, **kwargs
                    ) -> Figure:
        """Funnel plot of a random intercept's clusters: each cluster's mean residual for the
        intercept against its size, with 95% / 99.8% limits ``0 +/- z sigma / sqrt(n)``, the
        selected clusters marked and labelled.  See
        :func:`mixmio.inference.plots.plot_funnel` (``levels=``, ``label=``).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fig = fit.plot_funnel()
        >>> fig.axes[0].get_ylabel()
        'mean residual for the intercept, per Subject'
        """
        plot_funnel = method("plot_funnel")

        return plot_funnel(self, term=term, ax=ax, **kwargs)

    def plot_effects(self, term: str | None = None, boot: Any = None,
                     ax: Axes | None = None, *, top: int | None = None,
                     selected_only: bool | None = None) -> Figure:
        """Caterpillar plot of a random-effect column's cluster effects (bootstrap intervals
        coloured by selection frequency when ``boot`` or an attached bootstrap is given).

        ``term`` is a random-effect column label (``"1|Subject"``; default the first); returns
        the Figure (the figure of ``ax`` when one is given).  ``top``: the ``top`` largest
        |effects| only; ``selected_only``: the selected clusters only (default: True above 60
        clusters, with the rest counted in the title).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> fig = fit.plot_effects("1|Subject")
        >>> type(fig).__name__, len(fig.axes)
        ('Figure', 1)
        """
        plot_effects = method("plot_effects")

        return plot_effects(self, term=term, boot=boot, ax=ax, top=top,
                            selected_only=selected_only)

    def with_bootstrap(self, boot: Any) -> MioLmerResult:
        """A copy of this fit with ``boot`` attached (its summary shows bootstrap columns).

        ``boot`` must come from this fit (``None`` gives a copy without a bootstrap).

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> boot = fit.bootstrap(B=20, random_state=1, progress=False)
        >>> fit2 = fit.with_bootstrap(boot)
        >>> fit2.bootstrap_result is boot, fit.bootstrap_result is None
        (True, True)
        """
        if boot is not None:
            check_boot_of(self, boot)
        return replace(self, bootstrap_result=boot)

    def summary(self) -> LmerSummary:
        """lme4-style summary; ``print`` it, or show it in Jupyter.

        With a bootstrap attached (:meth:`with_bootstrap`) it adds the bootstrap columns.

        Examples
        --------
        >>> import mixmio
        >>> fit = mixmio.mio_lmer("Reaction ~ Days + (1 | Subject)",
        ...                       mixmio.datasets.load("sleepstudy"), k=3)
        >>> lines = str(fit.summary()).splitlines()
        >>> lines[1]
        'Formula: Reaction ~ Days + (1 | Subject)'
        """
        from mixmio.results.summary import LmerSummary

        return LmerSummary(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        return (f"<MioLmerResult {self.formula!r}: status={self.status}, gap={self.gap:.2e}, "
                f"selected={len(self.selected)}>")


def _check_predict_args(new_levels, cluster_features, max_depth, random_state) -> str:
    """predict's new-level arguments checked; the rule's name."""
    from mixmio.results import newlevels as nl

    mode = nl.check_mode(new_levels)
    nl.check_tree_args(max_depth, random_state)
    if cluster_features is not None and mode != "features":
        raise ArgumentError("cluster_features is used by new_levels='features' only; got "
                            f"new_levels={new_levels!r}")
    return mode


def _transform_newdata(design, newdata: pd.DataFrame, mode: str, warn_unseen: bool):
    """``design.transform(newdata)`` (rows with missing values skipped under
    ``na_action="drop"``); unseen levels raise under ``mode="error"``."""
    missing = "skip" if getattr(design, "na_action", "drop") == "drop" else "raise"
    nd = design.transform(newdata, missing=missing, warn_unseen=warn_unseen)
    if nd.unseen and mode == "error":
        raise DataError(f"newdata has levels not seen in training: {nd.unseen}; pass "
                        "new_levels='population', 'soft', 'hard' or 'features' to "
                        "predict them")
    return nd


def _feature_columns(design, mode: str, cluster_features, groups: list[str],
                     newdata: pd.DataFrame) -> dict[str, list[str]]:
    """The cluster-level feature columns of every grouping factor for
    ``new_levels="features"`` (empty lists: the cluster means of the numeric fixed-effects
    columns)."""
    from mixmio.results import newlevels as nl

    feats: dict[str, list[str]] = {g: [] for g in groups}
    if mode == "features":
        if cluster_features is not None:
            feats = nl.check_cluster_features(design, cluster_features, groups, newdata)
        if any(not feats[g] for g in groups) and not nl.numeric_columns(design):
            raise ArgumentError(
                "new_levels='features' needs cluster-level features: the formula has no "
                "numeric fixed-effects column whose cluster means could serve; pass "
                "cluster_features=[...] (columns constant within clusters)")
    return feats


def _add_new_level_effects(pred: np.ndarray, design, gamma: np.ndarray, nd, g: str, rows,
                           mode: str, newdata: pd.DataFrame, feats, max_depth, random_state):
    """Add to ``pred[rows]`` (the rows of a level of ``g`` unseen in training) the effects of
    ``g``'s terms by the rule ``mode``; returns the tree used."""
    from mixmio.results import newlevels as nl

    own = [(i, b) for i, b in enumerate(design.blocks) if b.group == g]
    # Gamma of a block: (q, K), row j the term column j of every cluster
    G = [gamma[b.z_slice].reshape(b.q, b.n_levels) for _, b in own]
    if mode == "features":
        targets = np.hstack([Gb.T for Gb in G])  # K x (sum of q)
        eff, model = nl.feature_effects(design, targets, g, nd, rows, newdata, feats,
                                        max_depth, random_state)
        at = 0
        for i, b in own:
            pred[rows] += np.einsum("ij,ij->i", nd.term_values[i][rows], eff[:, at: at + b.q])
            at += b.q
        return model
    inv, P = nl.leaf_probabilities(design, g, nd.X.loc[rows], max_depth, random_state)
    model = nl.cluster_tree(design, g, max_depth, random_state)
    if mode == "hard":
        P = np.eye(P.shape[1])[np.argmax(P, axis=1)]
    for (i, _), Gb in zip(own, G, strict=True):
        # pi(x)' Gamma per leaf, then per row
        pred[rows] += np.einsum("ij,ij->i", nd.term_values[i][rows], (P @ Gb.T)[inv])
    return model


def check_boot_of(fit, boot) -> None:
    """Refuse a bootstrap computed from another fit (its estimates differ from the fit's):
    a summary or plot would mix two models."""
    est = np.asarray(getattr(boot, "estimate", None), dtype=float)
    if est.shape != fit.w.shape or not np.array_equal(est, fit.w) or (
            getattr(boot, "source_fit", None) is not None
            and boot.source_fit.n_obs != fit.n_obs):
        raise ValueError("this bootstrap was not computed from this fit (its estimates differ "
                         "from the fit's); run fit.bootstrap(...) on this fit")
