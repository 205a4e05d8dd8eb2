"""King's holistic regression pipeline (King 2015, ch. 3.3).

Stage 1: split the rows 50/25/25 into training, validation and test sets (``random_state``);
standardise the training columns (zero mean, unit l2 norm, as King does); add the transformed
forms; compile the constraints (``CorrelationLimit(rho)`` by default) and compute ``k_max``.

Stage 2: solve for every ``k = 1..k_max`` and every Gamma of the robustness grid (``{0}`` plus
geometric values up to ``||X'y||_inf``) and score each model by validation R^2.  To run in
seconds rather than King's hours, the grid is solved by the constrained heuristic
(``grid_solver="heuristic"``; greedy + swaps, warm-started along the path over ``k``), and the
path over ``k`` for a Gamma stops after ``patience`` values of ``k`` without a better validation
R^2 (``patience=None``: every ``k``).  Pass ``grid_solver="auto"`` to solve every grid point
exactly (the subset engine, with ``time_limit`` each).

Stage 3: the ``top`` distinct supports by validation R^2 are re-solved exactly (``solver``) and
put through the bootstrap-and-cut loop (:class:`mixmio.Significance`): a model with a
coefficient whose bootstrap interval covers 0, or a condition number above ``max_condition``,
is cut off (``sum_S z <= |S| - 1``) and re-solved, at most ``max_rounds`` solves.  The finalists
are reported with validation and test R^2, condition numbers, maximum pairwise correlation and
bootstrap intervals.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio._runtime import user_stacklevel
from mixmio.problem import CapSet, Problem
from mixmio.problem.holistic.constraints import CorrelationLimit, Robust, Significance, robust_grid
from mixmio.results.summary import Summary, SummaryTable

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from mixmio.problem.holistic.constraints import Constraint

__all__ = ["holistic_regression", "HolisticResult", "HolisticModel",
           "HolisticSummary"]


@dataclass(frozen=True, eq=False)
class HolisticModel:
    """One finalist of :func:`holistic_regression` (coefficients on the original scale).

    Attributes: ``k`` and ``gamma`` (the grid point it came from), ``coef`` (every design
    column, zeros for the unselected ones), ``selected`` (column names), ``val_r2`` and
    ``test_r2`` (R^2 on the validation and test rows), ``condition`` and ``max_corr`` (of the
    selected training columns), ``intervals`` (bootstrap ``lower`` / ``upper`` per column in
    the model), ``status``, ``gap`` and ``solver`` of the final solve, ``rounds`` (the
    significance loop's rounds) and ``significant``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
    >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
    ...                                  top=2, B=20, random_state=0)
    >>> m = res.best
    >>> m.selected, m.status, m.significant
    (['a', 'b'], 'optimal', True)
    >>> m.coef.round(1).tolist()
    [-0.0, 1.9, -1.0, 0.0, 0.0]
    >>> list(m.intervals.columns)
    ['lower', 'upper']
    """

    k: int
    gamma: float
    coef: pd.Series
    selected: list
    val_r2: float
    test_r2: float
    condition: float
    max_corr: float
    intervals: pd.DataFrame
    status: str
    gap: float
    solver: str
    rounds: tuple = ()
    significant: bool = True
    design: object = field(default=None, repr=False)

    def predict(self, newdata: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predictions for a DataFrame (its columns are matched by name through the formula,
        offset included) or for a design-matrix array whose columns are ``coef.index``.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> res.best.predict(df.head(3)).round(1)
        array([ 0.3, -1.4, -0.1])
        """
        if isinstance(newdata, pd.DataFrame):
            if self.design is None:
                raise TypeError("this model has no design to read a DataFrame with; pass the "
                                f"design matrix with columns {list(self.coef.index)}")
            nd = self.design.transform(newdata)
            return nd.X.to_numpy(dtype=float) @ self.coef.to_numpy() + nd.offset
        X = np.asarray(newdata, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.coef.size:
            raise ValueError(f"a design-matrix array needs {self.coef.size} columns "
                             f"({list(self.coef.index)}), got shape {X.shape}; or pass a "
                             "DataFrame")
        return X @ self.coef.to_numpy()


@dataclass(frozen=True, eq=False)
class HolisticResult:
    """Top models of the holistic pipeline: ``models`` (best first), ``table`` (one row per
    model), ``grid`` (every grid point's validation R^2), ``k_max``, ``gammas``, ``summary()``,
    ``predict(newdata)`` (best model).

    Also: ``design`` (the training design), ``split_sizes`` (training, validation and test
    rows), ``constraints`` (all that applied, the default ``CorrelationLimit`` included) and
    ``time`` (seconds).

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
    >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
    ...                                  top=2, B=20, random_state=0)
    >>> len(res.models), res.k_max, res.split_sizes
    (2, 4, (60, 30, 30))
    >>> res.best.selected
    ['a', 'b']
    >>> res.grid.shape[0], len(res.gammas)
    (6, 2)
    """

    models: list
    grid: pd.DataFrame = field(repr=False)
    k_max: int
    gammas: np.ndarray
    design: object = field(repr=False)
    split_sizes: tuple
    constraints: tuple
    time: float

    @property
    def best(self) -> HolisticModel:
        """The first model: significant models first, then by validation R^2.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> res.best is res.models[0], res.best.selected
        (True, ['a', 'b'])
        """
        return self.models[0]

    @property
    def table(self) -> pd.DataFrame:
        """One row per model, best first: rank, k, gamma, number selected, validation and
        test R^2, condition number, maximum |correlation|, significant, status, gap, solver and
        the selected columns.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> res.table[["rank", "k", "selected", "significant", "status"]]
           rank  k  selected  significant   status
        0     1  3         2         True  optimal
        1     2  2         2         True  optimal
        """
        return pd.DataFrame([{
            "rank": i + 1, "k": m.k, "gamma": m.gamma, "selected": len(m.selected),
            "val_r2": m.val_r2, "test_r2": m.test_r2, "condition": m.condition,
            "max_corr": m.max_corr, "significant": m.significant, "status": m.status,
            "gap": m.gap, "solver": m.solver, "columns": ", ".join(m.selected)}
            for i, m in enumerate(self.models)])

    def predict(self, newdata: pd.DataFrame) -> np.ndarray:
        """Predictions of the best model (see :meth:`HolisticModel.predict`).

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> res.predict(df.head(3)).round(1)
        array([ 0.3, -1.4, -0.1])
        """
        return self.best.predict(newdata)

    def summary(self) -> HolisticSummary:
        """The report (also ``str(result)``): the split, ``k_max``, the grid, the
        constraints, the :attr:`table`, and each model's coefficients with their bootstrap
        intervals.

        Returns a :class:`HolisticSummary` (a :class:`~mixmio.results.summary.Summary`):
        ``print(res.summary())`` or ``str()`` gives the text, Jupyter shows HTML tables, and
        ``summary["models"]`` (the :attr:`table`) and ``summary["model 1"]``,
        ``summary["model 2"]``, ... (each finalist's ``coef``, ``lower``, ``upper``) are
        DataFrames of the values.

        Examples
        --------
        >>> import numpy as np, pandas as pd, mixmio
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
        >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
        >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
        ...                                  top=2, B=20, random_state=0)
        >>> s = res.summary()
        >>> print(str(s).splitlines()[0])
        Holistic regression: y ~ a + b + c + d
        >>> "Model 2: k=2" in str(s), list(s.tables)
        (True, ['models', 'model 1', 'model 2'])
        >>> s["model 1"].columns.tolist()
        ['coef', 'lower', 'upper']
        """
        return HolisticSummary(self)

    def __str__(self) -> str:
        return str(self.summary())


class HolisticSummary(Summary):
    """The summary of a :class:`HolisticResult` (see :meth:`HolisticResult.summary`).

    Tables: ``models`` (:attr:`HolisticResult.table`, one row per finalist) and ``model 1``,
    ``model 2``, ... (each finalist's coefficients and bootstrap interval, for the columns in
    the model).
    """

    def __init__(self, result: HolisticResult):
        super().__init__()
        self.result = result

    def _build(self) -> list:
        res = self.result
        out = [f"Holistic regression: {res.design.formula}",
               f"split train/validation/test = {res.split_sizes}; k_max = {res.k_max}; "
               f"{len(res.gammas)} Gamma value(s); {len(res.grid)} grid models; "
               f"{res.time:.2f} s",
               "Constraints: " + ", ".join(repr(c) for c in res.constraints)]
        table = res.table
        out.append(SummaryTable("models", table, rows=table.drop(columns=["columns"]),
                                headers="keys",
                                options={"tablefmt": "simple", "showindex": False,
                                         "floatfmt": ".4g"}))
        for i, m in enumerate(res.models):
            out.append(f"\nModel {i + 1}: k={m.k}, Gamma={m.gamma:.4g}, status {m.status} "
                       f"(gap {m.gap:.2e}), condition {m.condition:.3g}")
            iv = m.intervals
            rows = [[name, f"{m.coef[name]:.4f}", f"{iv.loc[name, 'lower']:.4f}",
                     f"{iv.loc[name, 'upper']:.4f}"] for name in iv.index]
            frame = pd.DataFrame({"coef": m.coef[iv.index], "lower": iv["lower"],
                                  "upper": iv["upper"]})
            out.append(SummaryTable(f"model {i + 1}", frame, rows=rows,
                                    headers=["", "coef", "lower", "upper"],
                                    options={"tablefmt": "simple"}))
        return out


def _response(design, df: pd.DataFrame) -> np.ndarray:
    from formulaic import Formula

    mm = Formula(f"{design.spec.response} ~ 1").get_model_matrix(df)
    return np.asarray(mm.lhs.iloc[:, 0], dtype=float) - 0.0


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    sst = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / sst if sst > 0 else float("nan")


def holistic_regression(formula: str, data: pd.DataFrame,
                        constraints: Sequence[Constraint] = (), *,
                        rho: float | None = 0.8, n_gamma: int = 10,
                        ks: Iterable[int] | None = None, top: int = 3,
                        significance: bool | Significance = True, B: int = 200,
                        grid_solver: str = "heuristic", solver: str = "auto",
                        time_limit: float | None = 10.0, patience: int | None = None,
                        split: Sequence[float] = (0.5, 0.25, 0.25),
                        random_state: int | np.random.Generator | None = None,
                        na_action: str = "drop") -> HolisticResult:
    """King's holistic regression pipeline (see module docstring).

    Splits the rows into training, validation and test sets, solves the best-subset problem
    on the training rows for every cap ``k`` and every robustness Gamma, ranks the models by
    validation R^2, and re-solves and bootstrap-tests the best ``top`` of them.

    Parameters
    ----------
    formula : a formula without random terms (``"y ~ x1 + x2 + f"``).
    data : DataFrame with the variables.
    constraints : holistic constraints, added to ``CorrelationLimit(rho)`` (``rho=None``: no
        correlation limit) and ``Robust`` (``Robust(gamma=x)`` fixes Gamma; default: the grid
        of ``n_gamma`` values).  A ``Significance`` here replaces ``significance``.
    rho : threshold of the default :class:`mixmio.CorrelationLimit` (ignored when
        ``constraints`` has one; ``None``: none).
    n_gamma : number of Gamma values in the robustness grid, 0 included (without a
        ``Robust`` constraint; ``Robust(n_grid=...)`` sets it otherwise).  ``n_gamma=1`` is
        Gamma = 0 only.
    ks : the caps to try (default ``1..k_max``); values outside ``1..k_max`` are skipped with
        a warning.
    top : number of distinct supports (by validation R^2) re-solved exactly, tested and
        reported.
    significance : True (the defaults of :class:`mixmio.Significance`, with ``B`` and
        ``random_state`` from here), a ``Significance`` object, or False.
    B : pairs-bootstrap replicates for each model's intervals when ``significance`` is off;
        with it on, the intervals are the significance test's own draws (``Significance.B`` of
        them, at its ``alpha``), so a model reported significant never has an interval
        covering 0.  The bootstrapped estimator is the reported one (penalised by the ridge
        and by Gamma).
    grid_solver : how the grid is solved: ``"heuristic"`` (default; greedy + swaps, warm
        started along the path over ``k``) or an exact solver name as for ``solver`` (e.g.
        ``"auto"``), each grid point then getting ``time_limit``.
    solver : solver of the ``top`` finalists' exact re-solves: ``"auto"`` (the exact subset
        engine when it applies, else CVXPY/SCIP), ``"subset"``, ``"SCIP"``, ``"GUROBI"``, ...
    time_limit : seconds per exact solve (default 10 s; ``None``: no limit).  A solve that
        reaches it returns its incumbent with status ``time_limit``.
    patience : stop the path over ``k`` for a Gamma after this many values of ``k`` without a
        better validation R^2 (default ``None``: try every ``k``).
    split : training, validation and test fractions, each in (0, 1), summing to 1.
    random_state : seed of the split, the heuristics and the bootstraps (``None``: not
        reproducible).
    na_action : ``"drop"`` rows with a missing value in a variable the formula uses, or
        ``"raise"``.

    Returns
    -------
    HolisticResult
        The finalists, best first (significant ones before the others), with the grid.

    Examples
    --------
    >>> import numpy as np, pandas as pd, mixmio
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    >>> df["y"] = 2 * df.a - df.b + rng.normal(size=120)
    >>> res = mixmio.holistic_regression("y ~ a + b + c + d", df, ks=[1, 2, 3], n_gamma=2,
    ...                                  top=2, B=20, random_state=0)
    >>> res.best.selected, res.best.significant
    (['a', 'b'], True)
    >>> res.split_sizes
    (60, 30, 30)
    """
    from mixmio._checks import as_frame, check_random_state, check_solve_args, check_split
    from mixmio.solvers import check_solver
    from mixmio.solvers.bnb.cd import single_thread

    # every argument checked before any solve (a bad solver was found after the whole grid)
    data = as_frame(data)
    check_solve_args(1e-4, time_limit)
    random_state = check_random_state(random_state)
    check_solver(solver)
    check_solver(grid_solver)
    for name, v, lo in (("n_gamma", n_gamma, 1), ("top", top, 1), ("B", B, 10)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(
            patience, (int, np.integer)) or patience < 1):
        raise ValueError(f"patience must be None or an integer >= 1, got {patience!r}")
    split = check_split(split)
    with single_thread():
        return _holistic(formula, data, constraints, rho, n_gamma, ks, top, significance, B,
                         grid_solver, solver, time_limit, patience, split, random_state,
                         na_action)


def _holistic(formula, data, constraints, rho, n_gamma, ks, top, significance, B, grid_solver,
              solver, time_limit, patience, split, random_state, na_action):
    from mixmio.design import build_design
    from mixmio.inference.significance import pairs_bootstrap, significance_loop
    from mixmio.problem.build import auto_ridge, build_lm_problem
    from mixmio.problem.holistic.compile import (
        apply_transforms,
        check_constraints,
        compile_constraints,
    )
    from mixmio.results.lm import condition_number, max_abs_corr
    from mixmio.solvers import solve
    from mixmio.solvers.subset.constrained import constrained_warm_start

    t0 = time.perf_counter()
    cons = list(check_constraints(constraints))
    if rho is not None and not any(isinstance(c, CorrelationLimit) for c in cons):
        cons.append(CorrelationLimit(rho))
    rob = next((c for c in cons if isinstance(c, Robust)), None)
    sig = next((c for c in cons if isinstance(c, Significance)), None)
    cons_nosolve = [c for c in cons if not isinstance(c, (Robust, Significance))]
    if sig is None and significance:
        sig = significance if isinstance(significance, Significance) else Significance(
            B=B, random_state=random_state)
    data = data.reset_index(drop=True)
    formula2, tmap = apply_transforms(formula, data, cons)
    data = data.loc[build_design(formula2, data, na_action=na_action).row_index]
    data = data.reset_index(drop=True)
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(len(data))
    n_tr = int(round(split[0] * len(data)))
    n_va = int(round(split[1] * len(data)))
    tr, va, te = perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]
    design = build_design(formula2, data.iloc[tr], na_action=na_action)
    base = build_lm_problem(design, None)
    sel = base.caps[0].index
    compiled = compile_constraints(cons_nosolve, design, fixed_selectable=sel, k_fixed=None,
                                   caps=base.caps, auto_groups=True, transforms=tmap,
                                   context="holistic_regression")
    k_max = int(compiled.k_max if compiled.k_max is not None else sel.size)
    # standardise the selectable training columns: zero mean (only with an intercept to
    # absorb it; centring a no-intercept model changes the model), unit l2 norm
    has_int = "Intercept" in design.X.columns
    X = base.X.copy()
    mean = X[:, sel].mean(axis=0) if has_int else np.zeros(sel.size)
    Xc = X[:, sel] - mean
    norm = np.sqrt(np.sum(Xc**2, axis=0))
    norm[norm == 0] = 1.0
    X[:, sel] = Xc / norm
    y = base.y
    ridge = auto_ridge(X, base.Z)
    std = Problem(X, base.Z, y, ridge, base.caps, base.penalized, constraints=compiled.rows)
    gram = std.gram
    free = np.setdiff1d(np.arange(base.p), sel)
    ycen = y - y.mean() if has_int else y
    if rob is not None and rob.gamma != "grid":
        gammas = np.array([float(rob.gamma)])
    else:
        gammas = robust_grid(X[:, sel], ycen, n_gamma if rob is None else rob.n_grid)
    Xva = design.transform(data.iloc[va]).X.to_numpy(dtype=float)
    Xte = design.transform(data.iloc[te]).X.to_numpy(dtype=float)
    yva, yte = _response(design, data.iloc[va]), _response(design, data.iloc[te])

    def to_original(w_std: np.ndarray) -> np.ndarray:
        beta = w_std[: base.p].copy()
        beta[sel] = w_std[sel] / norm
        if has_int:
            j0 = list(design.X.columns).index("Intercept")
            beta[j0] = w_std[j0] - float(beta[sel] @ mean)
        return beta

    def problem_for(k: int, gamma: float) -> Problem:
        l1 = None
        if gamma > 0:
            l1 = np.zeros(base.n_coef)
            l1[sel] = gamma
        pr = replace(std, caps=(CapSet("fixed effects", sel, int(k)),), l1=l1)
        pr.__dict__["gram"] = gram  # same data: share the cached Gram blocks
        return pr

    if ks is None:
        k_list = list(range(1, k_max + 1))
    else:
        k_list = sorted({int(k) for k in ks if 1 <= k <= k_max})
        out_of_range = sorted({int(k) for k in ks} - set(k_list))
        if not k_list:
            raise ValueError(f"every k in ks={list(ks)} is outside 1..k_max={k_max} (k_max is "
                             "the largest support the constraints allow on the training half)")
        if out_of_range:
            warnings.warn(f"ks {out_of_range} are outside 1..k_max={k_max} and are skipped",
                          stacklevel=user_stacklevel())
    grid_rows = []
    for gamma in gammas:
        prev_z = None
        best_val, since = -np.inf, 0
        for k in k_list:
            pr = problem_for(k, float(gamma))
            if grid_solver == "heuristic":
                if pr.is_plain:
                    from mixmio.solvers.heuristics import warm_start

                    sol = warm_start(pr, random_state=random_state)
                else:
                    sol = constrained_warm_start(pr, random_state=random_state,
                                                 n_starts=3 if prev_z is None else 1,
                                                 start=prev_z)
            else:
                sol = solve(pr, solver=grid_solver, time_limit=time_limit,
                            random_state=random_state)
            if sol.status == "infeasible" or not np.isfinite(sol.objective):
                continue
            prev_z = sol.info.get("z", sol.w != 0)
            beta = to_original(sol.w)
            val = _r2(yva, Xva @ beta)
            supp = tuple(int(j) for j in sel[np.asarray(prev_z)[sel]])
            grid_rows.append({"gamma": float(gamma), "k": k, "size": len(supp),
                              "val_r2": val, "objective": sol.objective,
                              "status": sol.status, "support": supp})
            if val > best_val + 1e-12:
                best_val, since = val, 0
            else:
                since += 1
                if patience is not None and since >= patience:
                    break
    grid = pd.DataFrame(grid_rows)
    if grid.empty:
        raise ValueError("no grid point produced a feasible model")
    order = grid.sort_values("val_r2", ascending=False)
    finalists, seen = [], set()
    for _, r in order.iterrows():
        if r["support"] in seen:
            continue
        seen.add(r["support"])
        finalists.append((int(r["k"]), float(r["gamma"])))
        if len(finalists) >= top:
            break
    cols = list(design.X.columns)
    models = []
    kw = dict(solver=solver, time_limit=time_limit, mip_gap=1e-4, warm_start=True,
              random_state=random_state, verbose=False)
    for k, gamma in finalists:
        pr = problem_for(k, gamma)
        draws = None
        if sig is not None:
            pr, sol, rounds, draws = significance_loop(pr, sig, kw, refit=False, names=cols)
        else:
            sol, rounds = solve(pr, **kw), []
        if sol.status == "infeasible" or not np.isfinite(sol.objective):
            continue
        beta = to_original(sol.w)
        S = sel[sol.w[sel] != 0]
        coef = pd.Series(beta, index=cols, name="estimate")
        cond, mc = condition_number(X, S), max_abs_corr(X, S)
        # intervals: pairs bootstrap of the reported (penalised) estimator on the support.
        # Under Significance they are the last round's own draws, so the test and the
        # intervals cannot disagree; otherwise B fresh draws seeded from random_state.
        keep = np.concatenate([free, S]).astype(int)
        if draws is None or not np.array_equal(draws[0], keep):
            draws = pairs_bootstrap(pr, S, int(B), np.random.default_rng(random_state),
                                    refit=False)
        est = np.empty_like(draws[1])
        for b, row in enumerate(draws[1]):
            wfull = np.zeros(base.n_coef)
            wfull[keep] = row
            est[b] = to_original(wfull)[keep]
        alpha = 0.05 if sig is None else sig.alpha
        iv = pd.DataFrame({"lower": np.quantile(est, alpha / 2, axis=0),
                           "upper": np.quantile(est, 1 - alpha / 2, axis=0)},
                          index=[cols[j] for j in keep])
        last = next((r for r in reversed(rounds) if np.isfinite(r["objective"])), None)
        significant = bool(last is None or (not last["insignificant"]
                                            and last["condition"] <= sig.max_condition))
        for r in rounds:
            r["columns"] = [cols[j] for j in r["support"]]
        models.append(HolisticModel(
            k=k, gamma=gamma, coef=coef, selected=[cols[j] for j in S],
            val_r2=_r2(yva, Xva @ beta), test_r2=_r2(yte, Xte @ beta), condition=cond,
            max_corr=mc, intervals=iv, status=sol.status, gap=sol.gap, solver=sol.solver,
            rounds=tuple(rounds), significant=significant, design=design))
    models.sort(key=lambda m: (not m.significant, -m.val_r2))
    return HolisticResult(models, grid, k_max, gammas, design, (tr.size, va.size, te.size),
                          tuple(cons), time.perf_counter() - t0)
