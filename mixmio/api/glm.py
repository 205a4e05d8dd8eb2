"""Front door: :func:`mio_glm`, best-subset logistic regression with a certificate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixmio._checks import as_frame, check_bool, check_random_state, check_ridge, check_solve_args
from mixmio.problem.glm import GlmProblem
from mixmio.results.glm import MioGlmResult
from mixmio.solvers import solve_glm
from mixmio.solvers.engines import GLM_SOLVERS as SOLVERS

if TYPE_CHECKING:
    from mixmio.problem.holistic.constraints import Constraint

__all__ = ["mio_glm", "SUPPORTED_CONSTRAINTS"]

#: the holistic constraints mio_glm honours (they compile to forced-in / forced-out units and
#: packing rows "at most m of these units")
SUPPORTED_CONSTRAINTS = ("ForceInclude", "Exclude", "GroupSparsity", "CorrelationLimit",
                         "Transforms")


def mio_glm(formula: str, data: pd.DataFrame, k: int | None, *,
            constraints: Sequence[Constraint] | Constraint = (), family: str = "binomial",
            solver: str = "auto", time_limit: float | None = None, mip_gap: float = 1e-4,
            random_state: int | np.random.Generator | None = None, na_action: str = "drop",
            warm_start: bool = True,
            verbose: bool = False, ridge: float | str = 0.0) -> MioGlmResult:
    """Best-subset logistic regression: at most ``k`` selected columns, proven optimal.

    Minimises the logistic negative log-likelihood (+ ridge/2 ||beta_selectable||^2 when
    ``ridge`` > 0) subject to ``||beta_selectable||_0 <= k``.  The intercept is always in and
    does not count toward ``k``; a factor's dummies are selected together and count as their
    number (as in :func:`mixmio.mio_lm`).

    Parameters
    ----------
    formula : a formula without random terms (``"y ~ x1 + x2 + f"``).  The response is 0/1,
        boolean, or a two-level categorical / string column (its first level -- the first
        category, or the first in sorted order -- is 0, the other 1; ``fit.response_levels``
        and the summary state the mapping).
    data : DataFrame with the variables.
    k : the cap (``None``: every selectable column, i.e. the full logistic regression, or
        ``k_max`` when the constraints allow fewer).
    constraints : holistic constraints (:mod:`mixmio.holistic`), compiled as for
        :func:`mixmio.mio_lm`: ``ForceInclude`` / ``Exclude`` (columns or terms),
        ``GroupSparsity``, ``CorrelationLimit``, ``Transforms``.  Forced columns count toward
        ``k``; unknown names and contradictions raise before any solve, and so do ``Robust``,
        ``Significance`` and ``JointClusterSelection`` (not supported for logistic
        regression).  Every engine honours them exactly; ``fit.constraints`` and the summary
        list them, ``fit.k_max`` is the largest support they allow.
    family : ``"binomial"`` (logit link), the only family.
    solver : ``"auto"`` (= ``"bnb"``: exact branch and bound over supports with certified
        bounds from the fits, no big-M), ``"oa"`` (outer approximation with a HiGHS MILP
        master and proven coefficient bounds; slower), ``"heuristic"`` (discrete first-order
        method + swaps, status ``heuristic``, no certificate).  Open-source parts only.
    time_limit : seconds; when reached, the incumbent is returned with status ``time_limit``,
        its proven gap, and a RuntimeWarning (``None``: no limit).
    mip_gap : relative gap under which a fit is called ``optimal``.
    random_state : seed of the warm start's random restarts (the exact result does not depend
        on it; a heuristic or time-limited one may).
    na_action : ``"drop"`` (rows with a missing value in a variable the formula uses, counted
        in ``fit.design.n_dropped``) or ``"raise"``.
    warm_start : run the discrete first-order method and swap search for the first incumbent
        (otherwise one polished DFO step from the intercept-only fit).
    verbose : print the search's progress to stderr.
    ridge : 0 (default: the unpenalised MLE), ``"auto"`` (1e-4 x the median column sum of
        squares, as ``mio_lm``) or a number >= 0.  Needed when the classes are separated: an
        unpenalised fit on a separated design raises
        :class:`~mixmio.errors.SeparationError` before any solve.

    Returns a :class:`~mixmio.results.glm.MioGlmResult`; ``fit.status == "optimal"`` only when
    a proven lower bound meets the objective within ``mip_gap``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mixmio import mio_glm
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(300, 6)), columns=list("abcdef"))
    >>> eta = 1.5 * df.a - 1.0 * df.c + 0.2
    >>> df["y"] = (rng.random(300) < 1 / (1 + np.exp(-eta))).astype(int)
    >>> fit = mio_glm("y ~ a + b + c + d + e + f", df, k=2)
    >>> fit.selected, fit.status
    (['a', 'c'], 'optimal')
    >>> fit.predict(df.head(2)).round(3).tolist()  # probabilities
    [0.547, 0.943]
    >>> from mixmio import CorrelationLimit, ForceInclude
    >>> held = mio_glm("y ~ a + b + c + d + e + f", df, k=2,
    ...                constraints=[ForceInclude("b"), CorrelationLimit(0.9)])
    >>> held.selected, held.status
    (['a', 'b'], 'optimal')
    """
    data, random_state, cons = _check_glm_args(data, constraints, family, solver, time_limit,
                                               mip_gap, random_state, warm_start, verbose, ridge)
    design, levels, response, tmap = _glm_design(formula, data, cons, na_action)
    problem, k_max = _glm_problem_with_k_max(design, k, ridge, cons, tmap)
    solution = solve_glm(problem, solver=solver, time_limit=time_limit, mip_gap=mip_gap,
                         random_state=random_state, warm_start_=warm_start, verbose=verbose)
    return MioGlmResult.from_solution(design, problem, solution, mip_gap=mip_gap,
                                      response_levels=levels, response=response,
                                      constraints=cons, k_max=k_max)


def _check_glm_args(data, constraints, family, solver, time_limit, mip_gap, random_state,
                    warm_start, verbose, ridge) -> tuple:
    """mio_glm's arguments checked before any design is built: ``(data as a frame, random
    state, constraints as a tuple)``."""
    if family not in ("binomial", "logit"):
        raise ValueError(f"family must be 'binomial' (logistic regression), got {family!r}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")
    data = as_frame(data)
    check_solve_args(mip_gap, time_limit)
    random_state = check_random_state(random_state)
    check_bool("warm_start", warm_start)
    check_bool("verbose", verbose)
    check_ridge(ridge)
    return data, random_state, _check_glm_constraints(constraints)


def _glm_design(formula: str, data: pd.DataFrame, cons: tuple, na_action: str) -> tuple:
    """The design of a binary response (mapped to 0/1, both classes present, no random
    terms): ``(design, response levels, response name, transform map)``."""
    from mixmio.design import build_design

    data, levels, response = _binary_response(formula, data)
    tmap: dict = {}
    if cons:
        from mixmio.problem.holistic.compile import apply_transforms

        formula, tmap = apply_transforms(formula, data, cons)
    design = build_design(formula, data, na_action=na_action)
    if design.blocks:
        raise ValueError("mio_glm fits fixed effects only; the formula has random-effect "
                         f"terms {[b.label for b in design.blocks]}")
    y = design.y
    values = np.unique(y)
    if not np.all(np.isin(values, (0.0, 1.0))):
        shown = values[:6].tolist()
        raise ValueError(f"the response '{response}' must be binary: 0/1, boolean, or a "
                         f"two-level categorical; it has values {shown}"
                         + (" ..." if values.size > 6 else ""))
    if values.size < 2:
        raise ValueError(f"the response '{response}' has only the value {values[0]:g} (after "
                         "dropping missing rows): the intercept's MLE is infinite; both "
                         "classes must be present")
    return design, levels, response, tmap


#: why the constraints mio_glm refuses do not apply to it
_UNSUPPORTED = {
    "Robust": "its l1 term is King's robustness result for least squares (worst case over "
              "column perturbations of X); the logistic engines minimise the likelihood with "
              "an optional ridge only (use ridge= for shrinkage)",
    "Significance": "its bootstrap-and-cut loop is built on the least-squares fit (mio_lm, "
                    "holistic_regression); for a logistic fit use fit.bootstrap() or "
                    "fit.coef_table() and Exclude by hand",
    "JointClusterSelection": "it ties random-effect cluster deviations (mio_lmer), and "
                             "mio_glm fits fixed effects only",
}


def _check_glm_constraints(constraints) -> tuple:
    """The constraints as a tuple (checked as for mio_lm); the ones mio_glm does not support,
    and cluster selections, raise a ValueError naming the constraint and why."""
    from mixmio.problem.holistic.compile import check_constraints
    from mixmio.problem.holistic.constraints import Exclude, ForceInclude

    cons = check_constraints(constraints)
    for c in cons:
        why = _UNSUPPORTED.get(type(c).__name__)
        if why is not None:
            raise ValueError(f"{c!r} is not supported by mio_glm: {why}. Supported: "
                             f"{', '.join(SUPPORTED_CONSTRAINTS)}")
        if isinstance(c, (ForceInclude, Exclude)) and c.clusters:
            raise ValueError(f"{c!r}: clusters are random-effect levels (mio_lmer); mio_glm "
                             "fits fixed effects only, so name columns or terms")
    return cons


def _glm_problem_with_k_max(design, k, ridge, cons=(), tmap=None
                            ) -> tuple[GlmProblem, int | None]:
    """Caps and columns as ``mio_lm`` has them (k checked by ``build_lm_problem``), factor
    dummies grouped, the ridge resolved, and the constraints compiled by
    :func:`mixmio.problem.holistic.compile.compile_constraints` (the compilation ``mio_lm`` uses:
    unknown names, contradictions and a cap above ``k_max`` raise here, before any solve) and
    turned into units: equality rows merge columns into one unit, ``z >= 1`` rows force a unit
    in, ``z <= 0`` rows drop it, the other rows become packing rows on units.

    Returns ``(problem, k_max)`` (``k_max`` None without constraints)."""
    from mixmio.problem.build import build_lm_problem

    lm = build_lm_problem(design, k, ridge=ridge)  # checks k and resolves/checks the ridge
    cap = lm.caps[0]
    X = design.X.to_numpy(dtype=float)
    selectable = [int(j) for j in cap.index]
    names = tuple(str(c) for c in design.X.columns)
    always = np.array([j for j in range(X.shape[1]) if j not in set(selectable)], dtype=int)
    if cons:
        from mixmio.problem.holistic.compile import compile_constraints

        compiled = compile_constraints(cons, design, fixed_selectable=cap.index,
                                       k_fixed=None if k is None else int(cap.k),
                                       caps=lm.caps, auto_groups=True, transforms=tmap,
                                       context="mio_glm")
        kk = int(cap.k)
        if k is None and compiled.k_max is not None and compiled.k_max < kk:
            kk = int(compiled.k_max)  # no cap asked: the largest support the constraints allow
        row_units, forced, rows = _units_from_rows(replace(lm, constraints=compiled.rows))
        return GlmProblem(X, design.y.astype(float), np.asarray(design.offset, dtype=float),
                          row_units, always, kk, float(lm.ridge), names, forced, rows), \
            compiled.k_max
    grouped: set[int] = set()
    units: list[np.ndarray] = []
    ms = design.model_spec
    for idx in getattr(ms, "term_indices", {}).values():
        idx = [int(j) for j in idx]
        if len(idx) > 1 and all(j in selectable for j in idx):
            units.append(np.array(idx, dtype=int))
            grouped.update(idx)
    units += [np.array([j]) for j in selectable if j not in grouped]
    units.sort(key=lambda u: int(u[0]))
    return GlmProblem(X, design.y.astype(float), np.asarray(design.offset, dtype=float),
                      tuple(units), always, int(cap.k), float(lm.ridge), names), None


def _units_from_rows(problem) -> tuple:
    """(units, forced unit indices, packing rows) of the linear-model ``problem`` carrying the
    compiled rows, through :class:`~mixmio.solvers.subset.constrained.IndicatorStructure` (the units
    ``mio_lm``'s engines use): equality ties merge columns into units, fixings force a unit
    in or drop it (its columns stay at 0), and every other row must be a packing row
    ``sum_u a_u z_u <= b`` with a >= 0 on the remaining units (rows met by any selection, and
    repeats, are left out)."""
    from mixmio.solvers.subset.constrained import IndicatorStructure

    st = IndicatorStructure(problem)
    keep = np.flatnonzero(~st.excluded)
    new = np.full(st.n_units, -1)
    new[keep] = np.arange(keep.size)
    units = tuple(st.units[u] for u in keep)
    forced = tuple(int(new[u]) for u in np.flatnonzero(st.forced & ~st.excluded))
    prows, seen = [], set()
    n_rows = len(st.rows) - len(problem.caps)  # IndicatorStructure appends the caps
    for i, (idx, coef, sense, rhs, name) in enumerate(st.rows[:n_rows]):
        if idx.size == 1 and coef[0] > 0:
            continue  # a fixing: forced or excluded above
        if sense != "<=" or np.any(st.U[i] < 0):  # not produced by the supported constraints
            raise ValueError(f"{name}: mio_glm handles forced-in and forced-out columns, "
                             "groups and packing rows only")
        acc = st.U[i][keep]
        us = np.flatnonzero(acc)
        if acc.sum() <= rhs:
            continue  # every selection meets it
        key = (tuple(us), tuple(acc[us]), float(rhs))
        if key not in seen:
            seen.add(key)
            prows.append((us, acc[us].astype(float), float(rhs)))
    return units, forced, tuple(prows)


def _binary_response(formula: str, data) -> tuple[object, tuple | None, str]:
    """Map a boolean or two-level categorical response column to 0/1 (first level 0).

    Returns ``(data, levels, response name)``: ``levels`` is ``(level of 0, level of 1)``
    for a mapped categorical, None otherwise."""
    from mixmio.formula import parse_formula

    spec = parse_formula(formula)
    name = spec.response.strip().strip("`")
    if not isinstance(data, pd.DataFrame) or name not in data.columns:
        return data, None, name
    col = data[name]
    dt = col.dtype
    if pd.api.types.is_bool_dtype(dt):
        return data.assign(**{name: col.map({True: 1.0, False: 0.0}).astype(float)}), None, name
    if pd.api.types.is_numeric_dtype(dt):
        return data, None, name
    if isinstance(dt, pd.CategoricalDtype):
        seen = set(col.dropna().unique())
        levels = [c for c in dt.categories if c in seen]
    else:
        levels = sorted(col.dropna().unique(), key=str)
    if len(levels) != 2:
        raise ValueError(f"the response '{name}' must be binary: 0/1, boolean, or a two-level "
                         f"categorical; it has {len(levels)} level(s) {levels[:6]}")
    mapped = col.map({levels[0]: 0.0, levels[1]: 1.0}).astype(float)
    return data.assign(**{name: mapped}), (levels[0], levels[1]), name
