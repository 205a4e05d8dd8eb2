"""Front door: :func:`mio_glm`, best-subset logistic regression with a certificate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .engine import SOLVERS, solve_glm
from .problem import GlmProblem
from .result import MioGlmResult

__all__ = ["mio_glm"]


def mio_glm(formula: str, data: pd.DataFrame, k: int | None, *, family: str = "binomial",
            solver: str = "auto", time_limit: float | None = None, mip_gap: float = 1e-4,
            random_state: int | None = None, na_action: str = "drop", warm_start: bool = True,
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
    k : the cap (``None``: every selectable column, i.e. the full logistic regression).
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
        :class:`~mixmio.glm.SeparationError` before any solve.

    Returns a :class:`~mixmio.glm.MioGlmResult`; ``fit.status == "optimal"`` only when a proven
    lower bound meets the objective within ``mip_gap``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mixmio.glm import mio_glm
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(300, 6)), columns=list("abcdef"))
    >>> eta = 1.5 * df.a - 1.0 * df.c + 0.2
    >>> df["y"] = (rng.random(300) < 1 / (1 + np.exp(-eta))).astype(int)
    >>> fit = mio_glm("y ~ a + b + c + d + e + f", df, k=2)
    >>> fit.selected, fit.status
    (['a', 'c'], 'optimal')
    >>> fit.predict(df.head(2)).round(3).tolist()  # probabilities
    [0.547, 0.943]
    """
    from ..api import _check_solve_args
    from ..design import build_design
    from ..inference._tasks import check_seed

    if family not in ("binomial", "logit"):
        raise ValueError(f"family must be 'binomial' (logistic regression), got {family!r}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")
    _check_solve_args(mip_gap, time_limit)
    check_seed(random_state)
    if not isinstance(warm_start, bool | np.bool_):
        raise ValueError(f"warm_start must be True or False, got {warm_start!r}")
    data, levels, response = _binary_response(formula, data)
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
    problem = _glm_problem(design, k, ridge)
    solution = solve_glm(problem, solver=solver, time_limit=time_limit, mip_gap=mip_gap,
                         random_state=random_state, warm_start_=warm_start, verbose=verbose)
    return MioGlmResult(design, problem, solution, mip_gap, levels, response)


def _glm_problem(design, k, ridge) -> GlmProblem:
    """Caps and columns as ``mio_lm`` has them (k checked by ``build_lm_problem``), factor
    dummies grouped, and the ridge resolved."""
    from ..problem.build import build_lm_problem

    lm = build_lm_problem(design, k, ridge=ridge)  # checks k and resolves/checks the ridge
    cap = lm.caps[0]
    X = design.X.to_numpy(dtype=float)
    selectable = [int(j) for j in cap.index]
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
    always = np.array([j for j in range(X.shape[1]) if j not in set(selectable)], dtype=int)
    return GlmProblem(X, design.y.astype(float), np.asarray(design.offset, dtype=float),
                      tuple(units), always, int(cap.k), float(lm.ridge),
                      tuple(str(c) for c in design.X.columns))


def _binary_response(formula: str, data) -> tuple[object, tuple | None, str]:
    """Map a boolean or two-level categorical response column to 0/1 (first level 0).

    Returns ``(data, levels, response name)``: ``levels`` is ``(level of 0, level of 1)``
    for a mapped categorical, None otherwise."""
    from ..formula import parse_formula

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
