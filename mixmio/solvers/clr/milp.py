"""Two exact MILPs for clusterwise LAD, solved by HiGHS (open source) or Gurobi.

``"bigm"``: (P1)/(P2) of seed 003 with the proven per-row big-M.  Column order: coefficients
``a`` (K x p), ``e+`` and ``e-`` (n x K each), ``zeta`` (n x K), then ``eta`` (n, only with an
outlier penalty).  The warm start's labels are its first incumbent.

``"lines"``: the argument that makes the big-M valid (:mod:`mixmio.problem.clr`) says some
optimal solution uses only *basic* lines ``X_B^{-1} y_B``.  So the problem is a K-median
problem over the m candidate basic lines with costs ``c_il = |y_i - x_i'a_l|``::

    min  sum_il c_il x_il  [+ T sum_i eta_i]
    s.t. sum_l x_il [+ eta_i] = 1,   x_il <= o_l,   sum_l o_l <= K,
         [sum_i x_il >= c o_l,  o_l in {0..K},  sum_l o_l = K   with min_size c]

with ``o_l`` the number of clusters using line l.  No big-M, no cluster symmetry, and a
strong LP relaxation (often integral at the root); its size is n x m, so it is used when the
lines are few (``formulation="auto"``).  Every feasible point gives clusters whose LAD
objective is at most its cost, and the optimal basic solution is feasible, so its optimum
and dual bound are those of the clusterwise problem.

Both backends return the raw status, objective, bound, node count and the decoded
assignment; :mod:`mixmio.solvers.clr.solve` turns that into an honest ``Solution``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from mixmio import _runtime
from mixmio.errors import GurobiLicenceError  # noqa: F401  (defined in mixmio.errors)
from mixmio.problem.clr import ClrProblem, symmetry_rows

#: integrality / feasibility tolerance: with M_i up to 1e4-1e5 the default 1e-6 would let a
#: "zero" indicator relax a residual by M_i * 1e-6
TOL = 1e-9


@dataclass
class MilpModel:
    """Arrays of the MILP: ``c'x`` with ``row_lo <= A x <= row_hi``, ``lb <= x <= ub``."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    integer: np.ndarray

    @property
    def n_vars(self) -> int:
        return self.c.size

    @property
    def n_rows(self) -> int:
        return self.A.shape[0]


@dataclass
class MilpOutcome:
    """What a backend reports: ``status`` in {optimal, time_limit, infeasible, error}."""

    status: str
    objective: float
    bound: float
    nodes: int | None
    labels: np.ndarray | None
    message: str = ""


def _offsets(pr: ClrProblem) -> tuple[int, int, int, int, int]:
    n, p, K = pr.n, pr.p, pr.n_clusters
    o_ep = K * p
    o_em = o_ep + n * K
    o_z = o_em + n * K
    o_eta = o_z + n * K
    total = o_eta + (n if pr.outlier_penalty is not None else 0)
    return o_ep, o_em, o_z, o_eta, total


def build_model(pr: ClrProblem) -> MilpModel:
    """The MILP arrays of a :class:`ClrProblem` (big-M rows with its per-row ``M_i``)."""
    n, p, K = pr.n, pr.p, pr.n_clusters
    X, y, M = pr.X, pr.y, pr.big_m
    o_ep, o_em, o_z, o_eta, N = _offsets(pr)
    outl = pr.outlier_penalty is not None
    c = np.zeros(N)
    c[o_ep:o_z] = 1.0
    if pr.outlier_penalty is not None:  # outl
        c[o_eta:] = float(pr.outlier_penalty)
    lb = np.zeros(N)
    ub = np.full(N, np.inf)
    if pr.coef_box is None:
        lb[:o_ep] = -np.inf
    else:
        box = np.tile(np.asarray(pr.coef_box, dtype=float), K)
        lb[:o_ep], ub[:o_ep] = -box, box
    ub[o_z:] = 1.0
    integer = np.zeros(N, dtype=bool)
    integer[o_z:] = True

    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0
    # assignment: sum_k zeta_ik (+ eta_i) = 1
    for i in range(n):
        idx = [o_z + i * K + k for k in range(K)] + ([o_eta + i] if outl else [])
        rows += [r] * len(idx)
        cols += idx
        vals += [1.0] * len(idx)
        lo.append(1.0)
        hi.append(1.0)
        r += 1
    # big-M: x_i'a_k - y_i + e+ - e- in [-M_i (1 - zeta), M_i (1 - zeta)], one row per side
    ii, kk = np.divmod(np.arange(n * K), K)
    for sign in (1.0, -1.0):
        base = r + np.arange(n * K)
        rr = np.repeat(base, p + 3)
        cc = np.column_stack([kk[:, None] * p + np.arange(p)[None, :],
                              o_ep + ii * K + kk, o_em + ii * K + kk, o_z + ii * K + kk])
        vv = np.column_stack([X[ii], np.ones(n * K), -np.ones(n * K), sign * M[ii]])
        rows += rr.tolist()
        cols += cc.ravel().tolist()
        vals += vv.ravel().tolist()
        if sign > 0:   # x'a + e+ - e- + M zeta <= y + M
            lo += [-np.inf] * (n * K)
            hi += (y[ii] + M[ii]).tolist()
        else:          # x'a + e+ - e- - M zeta >= y - M
            lo += (y[ii] - M[ii]).tolist()
            hi += [np.inf] * (n * K)
        r += n * K
    if pr.min_size is not None:
        for k in range(K):
            rows += [r] * n
            cols += [o_z + i * K + k for i in range(n)]
            vals += [1.0] * n
            lo.append(float(pr.min_size))
            hi.append(np.inf)
            r += 1
    if pr.symmetry_breaking and K > 1:
        for idx, coef in symmetry_rows(n, K):
            rows += [r] * len(idx)
            cols += [o_z + j for j in idx]
            vals += coef
            lo.append(-np.inf)
            hi.append(0.0)
            r += 1
    A = sp.csr_matrix((vals, (rows, cols)), shape=(r, N))
    A.eliminate_zeros()   # x = 0 or M_i = 0 entries
    return MilpModel(c, A, np.asarray(lo), np.asarray(hi), lb, ub, integer)


def start_vector(pr: ClrProblem, labels: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """A feasible MILP point from labels and coefficients (excess over M_i paid by e)."""
    K = pr.n_clusters
    o_ep, o_em, o_z, o_eta, N = _offsets(pr)
    x = np.zeros(N)
    x[:o_ep] = coef.ravel()
    R = pr.y[:, None] - pr.X @ coef.T          # n x K residuals y - x'a
    member = labels[:, None] == np.arange(K)[None, :]
    # members: e+ - e- = y - x'a exactly; non-members: only the excess over M_i
    excess = np.where(member, R, np.sign(R) * np.maximum(np.abs(R) - pr.big_m[:, None], 0))
    x[o_ep:o_em] = np.maximum(excess, 0).ravel()
    x[o_em:o_z] = np.maximum(-excess, 0).ravel()
    x[o_z:o_eta] = member.astype(float).ravel()
    if pr.outlier_penalty is not None:
        x[o_eta:] = (labels < 0).astype(float)
    return x


def labels_from(pr: ClrProblem, x: np.ndarray) -> np.ndarray:
    """Rows' clusters from a MILP point (-1 for outliers)."""
    n, K = pr.n, pr.n_clusters
    _, _, o_z, o_eta, _ = _offsets(pr)
    Z = np.asarray(x[o_z:o_eta]).reshape(n, K)
    lab = np.argmax(Z, axis=1)
    if pr.outlier_penalty is not None:
        eta = np.asarray(x[o_eta:o_eta + n])
        lab = np.where(eta > 0.5, -1, lab)
    return lab


def line_costs(pr: ClrProblem) -> np.ndarray:
    """n x m absolute residuals of every row to every candidate line."""
    assert pr.lines is not None  # the lines formulation carries its candidate lines
    return np.abs(pr.y[:, None] - pr.X @ pr.lines.T)


def build_lines_model(pr: ClrProblem) -> MilpModel:
    """The K-median MILP over the candidate basic lines ``pr.lines`` (see module doc)."""
    n, K = pr.n, pr.n_clusters
    C = line_costs(pr)
    m = C.shape[1]
    outl = pr.outlier_penalty is not None
    exact_sizes = pr.min_size is not None
    N = m + n * m + (n if outl else 0)
    c = np.concatenate([np.zeros(m), C.ravel(),
                        np.full(n if outl else 0, float(pr.outlier_penalty or 0.0))])
    lb = np.zeros(N)
    ub = np.ones(N)
    ub[:m] = K if exact_sizes else 1
    # only o is integer: for integral o the rest is a transportation problem (integral
    # vertices), so the optimum and bound are those of the integer model
    integer = np.zeros(N, dtype=bool)
    integer[:m] = True
    blocks, lo, hi = [], [], []
    # assignment rows
    per_row = sp.kron(sp.eye(n), np.ones((1, m)), format="csr")
    E = sp.eye(n, format="csr") if outl else sp.csr_matrix((n, 0))
    blocks.append(sp.hstack([sp.csr_matrix((n, m)), per_row, E]))
    lo += [1.0] * n
    hi += [1.0] * n
    # x_il - o_l <= 0
    link = sp.hstack([-sp.kron(np.ones((n, 1)), sp.eye(m)), sp.eye(n * m),
                      sp.csr_matrix((n * m, N - m - n * m))])
    blocks.append(link)
    lo += [-np.inf] * (n * m)
    hi += [0.0] * (n * m)
    # number of clusters
    blocks.append(sp.hstack([np.ones((1, m)), sp.csr_matrix((1, N - m))]))
    lo.append(float(K) if exact_sizes else -np.inf)
    hi.append(float(K))
    if pr.min_size is not None:   # exact_sizes: sum_i x_il - c o_l >= 0
        S = sp.hstack([-float(pr.min_size) * sp.eye(m), sp.kron(np.ones((1, n)), sp.eye(m)),
                       sp.csr_matrix((m, N - m - n * m))])
        blocks.append(S)
        lo += [0.0] * m
        hi += [np.inf] * m
    A = sp.vstack(blocks, format="csr")
    return MilpModel(c, A, np.asarray(lo), np.asarray(hi), lb, ub, integer)


def labels_from_lines(pr: ClrProblem, x: np.ndarray) -> np.ndarray:
    """Rows' clusters from a point of the lines model: the opened lines (line l ``o_l``
    times) get the rows by the exact assignment step (nearest line, outliers above T,
    sizes >= min_size by a transportation LP, whose vertices are integral); -1 for
    outliers.  For optimal ``o`` this costs what the MILP reports."""
    from mixmio.solvers.clr.heuristic import assign

    assert pr.lines is not None  # the lines formulation carries its candidate lines
    m = pr.lines.shape[0]
    o = np.maximum(np.rint(np.asarray(x)[:m]).astype(int), 0)
    chosen = np.repeat(np.arange(m), o)[: pr.n_clusters]
    if chosen.size == 0:  # pragma: no cover - sum o = 0 only when every row is an outlier
        return np.full(pr.n, -1)
    R = np.abs(pr.y[:, None] - pr.X @ pr.lines[chosen].T)
    return assign(R, pr.outlier_penalty, pr.min_size)


def solve_highs(pr: ClrProblem, model: MilpModel, start: np.ndarray | None,
                time_limit: float | None, mip_gap: float, verbose: bool,
                decode: Callable[[ClrProblem, np.ndarray], np.ndarray] = labels_from,
                highs_options: Mapping[str, object] | None = None) -> MilpOutcome:
    """Solve with HiGHS through highspy (warm start via ``setSolution``).

    ``highs_options``: extra HiGHS options set after mixmio's own, for this solve only
    (experiments, e.g. ``{"mip_detect_symmetry": False}``); an option HiGHS refuses raises
    ValueError."""
    import highspy

    h = _runtime.highs()
    if verbose:
        h.setOptionValue("output_flag", True)
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = model.n_vars
    lp.num_row_ = model.n_rows
    lp.col_cost_ = model.c
    lp.col_lower_ = np.where(np.isfinite(model.lb), model.lb, -inf)
    lp.col_upper_ = np.where(np.isfinite(model.ub), model.ub, inf)
    lp.row_lower_ = np.where(np.isfinite(model.row_lo), model.row_lo, -inf)
    lp.row_upper_ = np.where(np.isfinite(model.row_hi), model.row_hi, inf)
    A = model.A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous
                       for b in model.integer]
    h.passModel(lp)
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    h.setOptionValue("mip_abs_gap", 0.0)
    h.setOptionValue("mip_feasibility_tolerance", TOL)
    h.setOptionValue("primal_feasibility_tolerance", TOL)
    h.setOptionValue("random_seed", 0)
    for key, value in (highs_options or {}).items():
        if h.setOptionValue(key, value) != highspy.HighsStatus.kOk:
            raise ValueError(f"HiGHS refused the option {key}={value!r}")
    if time_limit is not None:
        h.setOptionValue("time_limit", float(max(time_limit, 1e-3)))
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = start.tolist()
        h.setSolution(sol)
    h.run()
    st = h.getModelStatus()
    info = h.getInfo()
    MS = highspy.HighsModelStatus
    has_x = info.primal_solution_status == 2  # kSolutionStatusFeasible
    labels = decode(pr, np.asarray(h.getSolution().col_value)) if has_x else None
    obj = float(info.objective_function_value) if has_x else np.inf
    bound = float(info.mip_dual_bound)
    nodes = int(info.mip_node_count)
    if st == MS.kOptimal:
        status = "optimal"
    elif st in (MS.kTimeLimit, MS.kInterrupt, MS.kIterationLimit, MS.kSolutionLimit):
        status = "time_limit"
    elif st == MS.kInfeasible:
        status = "infeasible"
    else:
        status = "error"
    return MilpOutcome(status, obj, bound, nodes, labels, f"HiGHS: {h.modelStatusToString(st)}")


#: the pip wheel's size-limited licence: at most this many variables and linear constraints
GUROBI_PIP_LIMIT = 2000


def bigm_size(n: int, p: int, K: int, outliers: bool, min_size: bool, sb: bool
              ) -> tuple[int, int]:
    """(variables, constraints) of the (P1)/(P2) model, known before any solve."""
    n_vars = K * p + 3 * n * K + (n if outliers else 0)
    n_rows = n + 2 * n * K + (K if min_size else 0) + (n * (K - 1) if sb and K > 1 else 0)
    return n_vars, n_rows


def gurobi_size_limited() -> bool:
    """Whether the installed Gurobi licence refuses models above the pip wheel's limit
    (a 20 ms probe with GUROBI_PIP_LIMIT + 1 variables)."""
    import gurobipy as gp

    try:
        with gp.Env(empty=True) as env:
            env.setParam("OutputFlag", 0)
            env.start()
            with gp.Model(env=env) as m:
                m.addMVar(GUROBI_PIP_LIMIT + 1)
                m.optimize()
    except gp.GurobiError as exc:
        return getattr(exc, "errno", None) == 10010
    return False


def licence_message(n_vars: int, n_rows: int) -> str:
    return (f"Gurobi refused the model (GurobiError 10010, size-limited licence: the pip "
            f"wheel's licence allows at most 2,000 variables and 2,000 linear constraints; "
            f"this model has {n_vars} variables and {n_rows} constraints). Use "
            "solver='auto' (HiGHS, open source) or a full Gurobi licence.")


def solve_gurobi(pr: ClrProblem, model: MilpModel, start: np.ndarray | None,
                 time_limit: float | None, mip_gap: float, verbose: bool,
                 decode: Callable[[ClrProblem, np.ndarray], np.ndarray] = labels_from
                 ) -> MilpOutcome:
    """Solve with Gurobi (optional).  A size-limited licence raises
    :class:`GurobiLicenceError` naming the limit and the model's size."""
    import gurobipy as gp

    t0 = time.perf_counter()
    try:
        with gp.Env(empty=True) as env:
            env.setParam("OutputFlag", 1 if verbose else 0)
            env.start()
            with gp.Model(env=env) as m:
                vtype = np.where(model.integer, gp.GRB.INTEGER, gp.GRB.CONTINUOUS)
                x = m.addMVar(model.n_vars, lb=model.lb, ub=model.ub, vtype=vtype)
                m.setObjective(model.c @ x, gp.GRB.MINIMIZE)
                A = model.A
                eq = model.row_lo == model.row_hi
                up = np.isfinite(model.row_hi) & ~eq
                lo = np.isfinite(model.row_lo) & ~eq
                for mask, sense, rhs in ((eq, "=", model.row_hi), (up, "<", model.row_hi),
                                         (lo, ">", model.row_lo)):
                    if mask.any():
                        m.addMConstr(A[mask], x, sense, rhs[mask])
                m.Params.MIPGap = float(mip_gap)
                m.Params.MIPGapAbs = 0.0
                m.Params.IntFeasTol = TOL
                m.Params.FeasibilityTol = TOL
                if time_limit is not None:
                    m.Params.TimeLimit = float(max(time_limit, 1e-3))
                if start is not None:
                    x.Start = start  # type: ignore[assignment]  # gurobipy stubs: MVar.Start float
                m.optimize()
                GRB = gp.GRB
                has_x = m.SolCount > 0
                labels = decode(pr, np.asarray(x.X)) if has_x else None  # MVar.X: an array
                obj = float(m.ObjVal) if has_x else np.inf
                bound = float(m.ObjBound) if m.Status in (GRB.OPTIMAL, GRB.TIME_LIMIT,
                                                          GRB.INTERRUPTED) else 0.0
                status = {GRB.OPTIMAL: "optimal", GRB.TIME_LIMIT: "time_limit",
                          GRB.INTERRUPTED: "time_limit", GRB.INFEASIBLE: "infeasible"
                          }.get(m.Status, "error")
                return MilpOutcome(status, obj, bound, int(m.NodeCount), labels,
                                   f"Gurobi status {m.Status}")
    except gp.GurobiError as exc:
        if getattr(exc, "errno", None) == 10010:
            raise GurobiLicenceError(licence_message(model.n_vars, model.n_rows)) from exc
        return MilpOutcome("error", np.inf, 0.0, None, None,
                           f"GurobiError {getattr(exc, 'errno', '')}: {exc} "
                           f"after {time.perf_counter() - t0:.2f} s")
