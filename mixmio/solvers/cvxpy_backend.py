"""MIQP backend through CVXPY (any installed CVXPY mixed-integer solver that takes quadratics).

The model is built from the Gram blocks, never from the n residuals::

    minimise   1/2 ||R w||^2 - c'w + y'y/2            (R'R = H = G + ridge*diag(penalized))
    subject to -M_j z_j <= w_j <= M_j z_j,  sum_{j in cap} z_j <= k    (formulation="bigm")

``R`` is a sparse factor with one row per coefficient (block Cholesky: the capped block of H is
block-diagonal for nested random effects, so R has about m*(block size) + m*p + p^2 non-zeros).
QP-capable solvers (Gurobi) receive ``quad_form(w, H)`` instead.  With ``formulation=
"perspective"`` the ridge of penalised capped coefficients moves into rotated cones
``w_j^2 <= s_j z_j`` (objective ``ridge/2 sum s_j``), which needs no M.

Big-M bounds are always *valid* (derived from the warm start's objective U):
  * ridge/2 w_j^2 <= U for a penalised coefficient, so |w_j| <= sqrt(2U/ridge);
  * with H positive definite and w_rel the unconstrained minimiser (value F_rel),
    1/2 (w-w_rel)'H(w-w_rel) <= U - F_rel, so |w_j - w_rel_j| <= sqrt(2 (U - F_rel) [H^-1]_jj).
Capped coefficients with neither bound (unpenalised and H singular) get a heuristic bound (10 x
the largest warm-start |w|), enlarged and re-solved while active at the solution.  Afterwards
the bounds are proven from the solution's objective; when the proven bounds are wider than the
box solved, the model is solved once more inside them.  A result still resting on a bound that
cannot be proven is returned with status "heuristic" and the trivial bound 0.

Status (:func:`mixmio.solvers.solution.certified_status`): "optimal" only when the relative
gap computed from the solver's best bound (read from SCIP/Gurobi, plus the constant term) is
within ``mip_gap`` -- the solver's own status string is never taken as a proof.  Otherwise:
"time_limit" (with a warning and the gap) when the solver stopped on time; "gap_limit" (with a
warning) when the solver reports optimality (or, for other solvers, an inaccurate optimum) but
the proven gap is larger or its bound cannot be read (a solver other than SCIP/Gurobi: no
certificate); "error" (with a warning) when the solver failed or stopped for another reason;
"infeasible" when it proved the constraints infeasible; "heuristic" when the big-M bounds could
not be proven.  The solver is asked for half of ``mip_gap`` (an absolute gap from a lower bound
of the optimum), so a finished solve proves ``mip_gap`` despite rounding.

Holistic parts (``Problem.constraints``, ``sign_caps``, ``l1``): every linear row becomes a row
on the indicators z; a sign cap adds sign indicators u, v with ``w_j <= M_j u_j``,
``-w_j <= M_j v_j``, ``u_j + v_j <= z_j``, ``sum u <= k_pos``, ``sum v <= k_neg``; the l1 term
enters the objective as ``sum l1_j |w_j|``.  The big-M bounds stay valid (every objective term is
non-negative and the smooth part alone is bounded by U).  The polish after the solve keeps the
solver's indicators and signs (and the l1 term), so the returned w satisfies every constraint.

Solvers: "SCIP" works through CVXPY's conic interface (the quadratic objective becomes a
second-order cone); CVXPY does not pass warm starts to SCIP.  "GUROBI" goes through CVXPY's QP
interface and receives the warm start as MIP start; the pip licence refuses models with a
quadratic term and more than 200 variables, in which case we fall back to SCIP with a warning.
"HIGHS" and "SCIPY" are MILP-only in CVXPY (no quadratic objective with integers): rejected.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from mixmio._runtime import user_stacklevel
from mixmio.problem import Problem
from mixmio.solvers import dfo
from mixmio.solvers.heuristics import polish, warm_start
from mixmio.solvers.solution import Solution, certified_status, gap_scale, relative_gap

__all__ = ["solve_cvxpy", "miqp_solvers", "valid_big_m"]

#: CVXPY solvers that accept integer variables together with a quadratic objective (or SOC)
_MIQP_CAPABLE = ("SCIP", "GUROBI", "MOSEK", "CPLEX", "XPRESS", "COPT", "KNITRO", "ECOS_BB")
_QP_PATH = ("GUROBI", "CPLEX", "XPRESS", "COPT")  # MIQP through CVXPY's QP interface


def miqp_solvers() -> list[str]:
    """Installed CVXPY solvers that can take a mixed-integer quadratic (or SOC) model."""
    import cvxpy as cp

    installed = set(cp.installed_solvers())
    return [s for s in _MIQP_CAPABLE if s in installed]


def _check_solver(solver: str) -> str:
    import cvxpy as cp

    name = str(solver).upper()
    avail = miqp_solvers()
    if name not in avail:
        from cvxpy.reductions.solvers.defines import INSTALLED_MI_SOLVERS

        raise ValueError(
            f"solver {solver!r} is not an installed mixed-integer quadratic solver. "
            f"Installed MIQP-capable CVXPY solvers: {avail}; installed mixed-integer solvers "
            f"(MILP only unless listed before): {list(INSTALLED_MI_SOLVERS)}; "
            f"all installed: {cp.installed_solvers()}"
        )
    return name


# ---------------------------------------------------------------------------------------------
# shared model data: factor, bounds
# ---------------------------------------------------------------------------------------------
def _psd_factor(A: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """F with F'F = A for a symmetric PSD A (eigen-decomposition, tiny eigenvalues dropped)."""
    if A.size == 0:
        return np.zeros((0, A.shape[0]))
    lam, V = np.linalg.eigh(0.5 * (A + A.T))
    keep = lam > tol * max(1.0, float(np.max(np.abs(lam))))
    return (np.sqrt(lam[keep])[:, None]) * V[:, keep].T


def sparse_factor(Q: sp.spmatrix, first: np.ndarray, max_block: int = 200) -> sp.csr_matrix:
    """Sparse R with R'R = Q (Q symmetric PSD).

    Block Cholesky with the coefficients ``first`` eliminated first: when Q restricted to them
    splits into small connected blocks (nested random effects) the factor stays sparse.  Falls
    back to a dense eigen factor when the blocks are large or singular.
    """
    Q = sp.csc_matrix(Q)
    n = Q.shape[0]
    first = np.asarray(first, dtype=int)
    rest = np.setdiff1d(np.arange(n), first)
    if first.size:
        Qff = Q[first][:, first].tocsr()
        ncomp, labels = connected_components(Qff != 0, directed=False)
        sizes = np.bincount(labels, minlength=ncomp)
        if sizes.max() <= max_block:
            rows, cols, vals = [], [], []
            ok = True
            order = np.argsort(labels, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(sizes)])
            for b in range(ncomp):
                idx = order[bounds[b]:bounds[b + 1]]
                B = Qff[idx][:, idx].toarray()
                try:
                    Lb = np.linalg.cholesky(B)
                except np.linalg.LinAlgError:
                    ok = False
                    break
                if np.min(np.abs(np.diag(Lb))) <= 1e-10 * np.sqrt(np.max(np.diag(B))):
                    ok = False
                    break
                ii, jj = np.nonzero(np.tril(Lb))
                rows.append(idx[ii])
                cols.append(idx[jj])
                vals.append(Lb[ii, jj])
            if ok:
                nf = first.size
                Lff = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                            np.concatenate(cols))), shape=(nf, nf))
                top_blocks = [sp.csc_matrix(Lff.T)]
                if rest.size:
                    W = Q[rest][:, first].toarray()  # (nr x nf)
                    # L_rf = W Lff^{-T}  <=>  Lff L_rf' = W'
                    Lrf_T = spla.spsolve_triangular(Lff.tocsr(), W.T, lower=True)
                    Lrf_T = np.asarray(Lrf_T).reshape(nf, rest.size)
                    S = Q[rest][:, rest].toarray() - Lrf_T.T @ Lrf_T
                    Fr = _psd_factor(S)
                    top_blocks.append(sp.csc_matrix(Lrf_T))
                perm_cols = np.concatenate([first, rest])
                upper = sp.hstack(top_blocks, format="csr")
                if rest.size:
                    lower = sp.hstack([sp.csr_matrix((Fr.shape[0], nf)), sp.csr_matrix(Fr)],
                                      format="csr")
                    Rp = sp.vstack([upper, lower], format="csr")
                else:
                    Rp = upper
                # columns of Rp are in order perm_cols; put them back in natural order
                inv = np.empty(n, dtype=int)
                inv[perm_cols] = np.arange(n)
                R = Rp[:, inv]
                R.eliminate_zeros()
                return R.tocsr()
    return sp.csr_matrix(_psd_factor(Q.toarray()))


def valid_big_m(problem: Problem, U: float, w_warm: np.ndarray | None = None):
    """Big-M bounds for the capped coefficients from a feasible objective value ``U``.

    Returns ``(M, verified, F_rel)``: M over ``problem.capped``; ``verified`` (bool mask) says
    which bounds are proven valid; ``F_rel`` is the relaxation value (a lower bound on the
    optimum) or ``-inf`` when it could not be computed.
    """
    q = dfo.quad(problem)
    cap = q.capped
    pen = np.asarray(problem.penalized, dtype=bool)[cap]
    U = float(U)
    slackU = U + 1e-9 * abs(U) + 1e-12
    M = np.full(cap.size, np.inf)
    if problem.ridge > 0:
        M[pen] = np.sqrt(2.0 * slackU / problem.ridge)
    F_rel = -np.inf
    if q.n_coef <= 2500:
        try:
            cf = sla.cho_factor(q.H, check_finite=False)
            w_rel = sla.cho_solve(cf, q.c, check_finite=False)
            F_rel = 0.5 * q.yy - 0.5 * float(q.c @ w_rel)
            E = np.zeros((q.n_coef, cap.size))
            E[cap, np.arange(cap.size)] = 1.0
            hinv = np.einsum("ij,ij->j", E, sla.cho_solve(cf, E, check_finite=False))
            if np.all(np.isfinite(hinv)) and np.all(hinv > 0):
                room = max(slackU - F_rel, 0.0) + 1e-9 * abs(U) + 1e-12
                Me = np.abs(w_rel[cap]) + np.sqrt(2.0 * room * hinv)
                M = np.minimum(M, Me * (1 + 1e-7) + 1e-9)
            else:
                F_rel = -np.inf
        except (np.linalg.LinAlgError, ValueError):
            F_rel = -np.inf
    verified = np.isfinite(M)
    if not np.all(verified):
        base = 1.0 if w_warm is None or not np.any(w_warm) else float(np.max(np.abs(w_warm)))
        M[~verified] = 10.0 * base
    return M, verified, F_rel


def _model_data(problem: Problem, formulation: str):
    """(R, Hq, cvec, const, persp_idx): objective 1/2||Rw||^2 - c'w + const [+ ridge/2 sum s]."""
    q = dfo.quad(problem)
    G, c, yy = problem.gram
    pen = np.asarray(problem.penalized, dtype=bool)
    if formulation == "perspective":
        persp = np.zeros(q.n_coef, dtype=bool)
        persp[q.capped] = True
        persp &= pen
        ridge_mask = pen & ~persp
    else:
        persp = np.zeros(q.n_coef, dtype=bool)
        ridge_mask = pen
    Hq = (G + sp.diags(problem.ridge * ridge_mask.astype(float))).tocsc()
    return Hq, np.asarray(c, dtype=float), 0.5 * float(yy), np.flatnonzero(persp)


# ---------------------------------------------------------------------------------------------
# the CVXPY model
# ---------------------------------------------------------------------------------------------
def _build(problem: Problem, Hq, c, const, persp_idx, M, solver: str, warm_w, warm_z=None):
    import cvxpy as cp

    q = dfo.quad(problem)
    n_coef = q.n_coef
    cap = q.capped
    w = cp.Variable(n_coef, name="w")
    z = cp.Variable(cap.size, boolean=True, name="z") if cap.size else None
    if solver in _QP_PATH:
        quad = 0.5 * cp.quad_form(w, cp.psd_wrap(Hq))
    else:
        R = sparse_factor(Hq, cap)
        quad = 0.5 * cp.sum_squares(R @ w)
    obj = quad - c @ w + const
    cons = []
    s = None
    if cap.size:
        assert z is not None  # made whenever cap.size
        pos = q.cap_pos
        in_persp = np.zeros(n_coef, dtype=bool)
        in_persp[persp_idx] = True
        bigm_loc = np.flatnonzero(~in_persp[cap])
        if bigm_loc.size:
            Mb = M[bigm_loc]
            wc = w[cap[bigm_loc]]
            zb = z[bigm_loc]
            cons += [wc <= cp.multiply(Mb, zb), -wc <= cp.multiply(Mb, zb)]
        if persp_idx.size:
            loc = pos[persp_idx]
            s = cp.Variable(persp_idx.size, nonneg=True, name="s")
            wp, zp = w[persp_idx], z[loc]
            cons.append(cp.SOC(s + zp, cp.vstack([2 * wp, s - zp]), axis=0))
            # valid bounds also for perspective coefficients: help the solver, never cut optima
            Mp = M[loc]
            fin = np.isfinite(Mp)
            if np.any(fin):
                cons += [wp[fin] <= cp.multiply(Mp[fin], zp[fin]),
                         -wp[fin] <= cp.multiply(Mp[fin], zp[fin])]
            obj = obj + 0.5 * problem.ridge * cp.sum(s)
        for capset in problem.caps:
            if capset.k < len(capset.index):
                cons.append(cp.sum(z[pos[np.asarray(capset.index, dtype=int)]]) <= capset.k)
        for row in problem.constraints:
            expr = row.coef @ z[pos[row.index]]
            if row.sense == "<=":
                cons.append(expr <= row.rhs)
            elif row.sense == ">=":
                cons.append(expr >= row.rhs)
            else:
                cons.append(expr == row.rhs)
    signs = []
    for sc in problem.sign_caps:
        assert z is not None  # sign caps sit on capped coefficients (z[loc] below)
        idx = np.asarray(sc.index, dtype=int)
        loc = q.cap_pos[idx]
        Ms = M[loc]
        u = cp.Variable(idx.size, boolean=True)
        v = cp.Variable(idx.size, boolean=True)
        cons += [w[idx] <= cp.multiply(Ms, u), -w[idx] <= cp.multiply(Ms, v),
                 u + v <= z[loc], cp.sum(u) <= sc.k_pos, cp.sum(v) <= sc.k_neg]
        signs.append((idx, u, v))
    if problem.l1 is not None:
        l1 = np.asarray(problem.l1, dtype=float)
        on = np.flatnonzero(l1 > 0)
        if on.size:
            obj = obj + l1[on] @ cp.abs(w[on])
    prob = cp.Problem(cp.Minimize(obj), cons)
    if warm_w is not None and np.all(np.isfinite(warm_w)):
        w.value = warm_w
        if z is not None:
            zw = (warm_w[cap] != 0) if warm_z is None else np.asarray(warm_z, bool)[cap]
            z.value = zw.astype(float)
        if s is not None:
            s.value = warm_w[persp_idx] ** 2
        for idx, u, v in signs:
            u.value = (warm_w[idx] > 0).astype(float)
            v.value = (warm_w[idx] < 0).astype(float)
    prob._mixmio_signs = signs  # type: ignore[attr-defined]  # read back by the solve
    return prob, w, z


def _solver_opts(solver: str, time_limit, mip_gap: float, absgap: float | None):
    if solver == "SCIP":
        # the solver's objective lacks the constant y'y/2, so its relative gap is not ours:
        # steer it by an absolute gap mip_gap * (lower bound of the optimum) instead
        params = {"limits/gap": 0.0}
        if absgap is not None and absgap > 0:
            params["limits/absgap"] = float(absgap)
        if time_limit is not None:
            params["limits/time"] = float(time_limit)
        return {"scip_params": params}
    if solver == "GUROBI":
        from mixmio._runtime import gurobi_env

        opts = {"MIPGap": 1e-9, "env": gurobi_env()}  # the env keeps the licence line quiet
        if absgap is not None and absgap > 0:
            opts["MIPGapAbs"] = float(absgap)
        if time_limit is not None:
            opts["TimeLimit"] = float(time_limit)
        return opts
    if solver == "MOSEK":
        opts = {"mosek_params": {"MSK_DPAR_MIO_TOL_REL_GAP": 0.5 * float(mip_gap)}}
        if time_limit is not None:
            opts["mosek_params"]["MSK_DPAR_MIO_MAX_TIME"] = float(time_limit)
        return opts
    return {}


#: lines SCIP's LP solver (SoPlex) writes straight to file descriptor 2 whatever the verbosity
_SOLVER_NOISE = ("without GMP - using",)


@contextlib.contextmanager
def drop_solver_noise(active: bool = True):
    """Capture what is written to file descriptor 2 during the solve and re-emit it without
    SoPlex's tolerance notices. SoPlex writes them from C++ even when verbose=False (78
    lines on one Pastes fit). Python warnings raised meanwhile are kept and re-emitted in
    order. A no-op when stderr has no file descriptor (notebooks, pytest capture) and outside
    the main thread: swapping fd 2 from two threads at once could leave it pointing at a
    closed temporary file."""
    import threading

    try:
        main = threading.current_thread() is threading.main_thread()
        fd = sys.stderr.fileno() if active and main else -1
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd != 2:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
            kept = [ln for ln in text.splitlines(keepends=True)
                    if not any(noise in ln for noise in _SOLVER_NOISE)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


_GUROBI_FULL: bool | None = None  # cached result of the licence probe


def gurobi_full_licence() -> bool:
    """True when gurobipy can solve a quadratic model with more than 200 variables (probe once)."""
    global _GUROBI_FULL
    if _GUROBI_FULL is None:
        try:
            import gurobipy as gp

            with gp.Env(empty=True) as env:
                env.setParam("OutputFlag", 0)
                env.start()
                with gp.Model(env=env) as mdl:
                    x = mdl.addVars(201, lb=-1.0, ub=1.0)
                    mdl.setObjective(gp.quicksum(x[i] * x[i] for i in range(201)))
                    mdl.optimize()
            _GUROBI_FULL = True
        except Exception:  # noqa: BLE001 - any licence/import error means "not usable"
            _GUROBI_FULL = False
    return _GUROBI_FULL


def _is_size_limited(exc: BaseException) -> bool:
    txt = str(exc).lower()
    return ("size-limited" in txt or "10010" in txt or "model too large" in txt
            or "license" in txt and "limit" in txt)


#: outcomes of a solve, from the solver's own status
_COMPLETE, _TIMED_OUT, _INFEASIBLE, _INACCURATE, _FAILED = (
    "complete", "time_limit", "infeasible", "inaccurate", "failed")


def _finite_bound(value, infinity: float = 1e20) -> float | None:
    """A solver's bound as a float, or None when it is missing, NaN or (+/-) the solver's
    infinity: such a value proves nothing."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and abs(v) < infinity else None


def _read_outcome(prob, solver: str):
    """(outcome, bound_without_offset, primal_without_offset, nodes, raw_status) from the
    solver's statistics.  ``outcome``: ``complete`` (the solver claims its search finished:
    optimal or its gap limit), ``time_limit``, ``infeasible``, ``inaccurate`` (an optimum
    flagged inaccurate by CVXPY, solvers other than SCIP/Gurobi) or ``failed`` (any other
    stop).  The bound is None when the solver has none to give."""
    import cvxpy as cp

    stats = prob.solver_stats
    model = getattr(stats, "extra_stats", None)
    raw = prob.status
    bound, nodes, primal = None, None, None
    if solver == "SCIP" and model is not None:
        mdl = model.get("model") if isinstance(model, dict) else model
        if mdl is not None:
            st = mdl.getStatus()
            raw = st
            outcome = {"optimal": _COMPLETE, "gaplimit": _COMPLETE, "timelimit": _TIMED_OUT,
                       "infeasible": _INFEASIBLE, "inforunbd": _INFEASIBLE}.get(st, _FAILED)
            inf = float(mdl.infinity())
            bound = _finite_bound(mdl.getDualbound(), inf)
            primal = _finite_bound(mdl.getPrimalbound(), inf) if mdl.getNSols() > 0 else None
            nodes = int(mdl.getNNodes())
            return outcome, bound, primal, nodes, raw
    if solver == "GUROBI" and model is not None:
        st = int(model.Status)
        raw = f"gurobi status {st}"
        # 2 OPTIMAL, 9 TIME_LIMIT, 3 INFEASIBLE, 4 INF_OR_UNBD; 13 SUBOPTIMAL and the rest fail
        outcome = {2: _COMPLETE, 9: _TIMED_OUT, 3: _INFEASIBLE, 4: _INFEASIBLE}.get(st, _FAILED)
        try:
            bound = _finite_bound(model.ObjBound, 1e100)
            primal = _finite_bound(model.ObjVal, 1e100)
        except Exception:  # noqa: BLE001 - attribute unavailable
            bound = None
        nodes = int(getattr(model, "NodeCount", 0))
        return outcome, bound, primal, nodes, raw
    # other solvers: CVXPY's status only, no bound
    infeasible = (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE,
                  getattr(cp, "INFEASIBLE_OR_UNBOUNDED", cp.INFEASIBLE))
    outcome = {cp.OPTIMAL: _COMPLETE, cp.OPTIMAL_INACCURATE: _INACCURATE,
               cp.USER_LIMIT: _TIMED_OUT}.get(prob.status, _FAILED)
    if prob.status in infeasible:
        outcome = _INFEASIBLE
    return outcome, bound, primal, nodes, raw


def _status_of(outcome: str, gap: float, mip_gap: float, name: str, raw,
               has_bound: bool) -> tuple[str, str]:
    """The certified status of a solve that returned a solution (see the module docstring)."""
    if outcome == _TIMED_OUT:
        return certified_status(gap, mip_gap, True, name)
    if outcome in (_COMPLETE, _INACCURATE):
        if not has_bound:
            reason = f"{name} reported {raw} but gives no bound to check: no certificate"
        else:
            reason = f"{name} reported {raw}"
        return certified_status(gap, mip_gap, False, name, reason=reason)
    return certified_status(gap, mip_gap, False, name, failure=f"{name} stopped with status {raw}")


def _warm_bound(warm: Solution) -> float:
    """The bound a warm start proves by itself: its own when it was certified, else the
    trivial bound 0 (the objective is non-negative)."""
    bound = warm.best_bound if warm.status == "optimal" else min(warm.best_bound, 0.0)
    return float(min(bound, warm.objective))


def _warm_returned(problem: Problem, warm: Solution, name: str, t0: float, info: dict,
                   mip_gap: float, *, timed_out: bool, failure: str, message,
                   nodes: int | None = None) -> Solution:
    """The warm start returned when the solver gave no point: its own bound and gap, status
    ``time_limit`` when the clock stopped the solver, else ``error`` (``failure`` says why)
    unless the warm start is itself within ``mip_gap``; ``message(msg)`` words the note."""
    bound_w = _warm_bound(warm)
    gap_w = relative_gap(warm.objective, bound_w, gap_scale(problem))
    info.update(mip_gap=mip_gap)
    if timed_out:
        status, msg = certified_status(gap_w, mip_gap, True, name)
    else:
        status, msg = certified_status(gap_w, mip_gap, False, name, failure=failure)
    return Solution(w=warm.w, objective=warm.objective, best_bound=bound_w, status=status,
                    solver=f"cvxpy-{name}", solve_time=time.perf_counter() - t0, nodes=nodes,
                    message=message(msg), info=info, timed_out=timed_out,
                    gap_scale=gap_scale(problem))


def _proved_infeasible(outcome, prob) -> bool:
    """The solver proved the model infeasible.  Gurobi's status 4 (and CVXPY's
    infeasible_or_unbounded) means infeasible here: the objective is a sum of squares plus
    non-negative penalties, bounded below."""
    import cvxpy as cp

    return outcome == _INFEASIBLE or prob.status in (
        cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE,
        getattr(cp, "INFEASIBLE_OR_UNBOUNDED", cp.INFEASIBLE))


def solve_cvxpy(problem: Problem, solver: str = "SCIP", time_limit: float | None = None,
                mip_gap: float = 1e-4, warm: Solution | None = None, formulation: str = "bigm",
                verbose: bool = False, random_state=None) -> Solution:
    """Solve the capped ridge least-squares MIQP with a CVXPY mixed-integer solver.

    ``warm``: a feasible Solution (default: :func:`warm_start`); its objective gives the valid
    big-M bounds and it is passed as MIP start where CVXPY forwards starts (Gurobi).  The
    returned ``w`` is the solver's support re-fitted exactly (:func:`polish`), which can only
    lower the objective; ``best_bound`` is the solver's dual bound (plus the constant term).
    """
    t0 = time.perf_counter()
    name = _check_solver(solver)
    _check_args(problem, formulation)
    if warm is None:
        warm = warm_start(problem, random_state=random_state)
    q = dfo.quad(problem)
    warm_ok = warm.status != "infeasible" and np.isfinite(warm.objective)
    U = min(float(warm.objective), problem.objective(warm.w)) if warm_ok else np.inf
    M, verified, F_rel = valid_big_m(problem, U, warm.w if warm_ok else None)
    Hq, c, const, persp_idx = _model_data(problem, formulation)
    # half the allowed gap, absolute, from a lower bound of the optimum: F_rel <= optimum <= the
    # objective, so the solver's finished search proves mip_gap with room for rounding
    absgap = 0.5 * mip_gap * F_rel if np.isfinite(F_rel) and F_rel > 0 else None
    info: dict = {"formulation": formulation, "bigM_max": float(np.max(M)) if M.size else 0.0,
                  "bigM_verified": bool(np.all(verified)), "warm_objective": U}
    messages = []
    attempts = 0
    while True:
        attempts += 1
        remaining = _remaining(time_limit, t0)
        prob, w, z = _build(problem, Hq, c, const, persp_idx, M, name,
                            warm.w if warm_ok else None, warm.z)
        opts = _solver_opts(name, remaining, mip_gap, absgap)
        t_solve = time.perf_counter()
        try:
            _run(prob, name, verbose, opts)
        except Exception as exc:  # noqa: BLE001 - solver-specific errors
            if name == "GUROBI" and "SCIP" in miqp_solvers() and (
                    _is_size_limited(exc) or not gurobi_full_licence()):
                return _scip_fallback(problem, time_limit, t0, mip_gap, warm, formulation,
                                      verbose)
            # CVXPY raises when SCIP stops on time without a solution: the clock tells
            clock = remaining is not None and time.perf_counter() - t_solve >= 0.95 * remaining
            text = f"{type(exc).__name__}: {exc}"
            return _warm_returned(
                problem, warm, name, t0, info, mip_gap, timed_out=clock,
                failure=f"{name} failed: {text}",
                message=lambda msg, text=text, clock=clock: (
                    f"{name} hit the time limit before finding a solution ({text}); "
                    f"returning the warm start; {msg}") if clock else text)
        outcome, bound_raw, primal_raw, nodes, raw = _read_outcome(prob, name)
        if w.value is None:
            if _proved_infeasible(outcome, prob):
                return Solution(w=np.zeros(q.n_coef), objective=np.inf, best_bound=np.inf,
                                status="infeasible", solver=f"cvxpy-{name}",
                                solve_time=time.perf_counter() - t0, nodes=nodes,
                                message="the solver proved the constraints infeasible",
                                info=info, gap_scale=gap_scale(problem))
            timed_out = outcome == _TIMED_OUT
            return _warm_returned(
                problem, warm, name, t0, info, mip_gap, timed_out=timed_out, nodes=nodes,
                failure=f"{name} returned no solution (status {raw})",
                message=lambda msg, raw=raw, timed_out=timed_out: f"solver status {raw}; " + (
                    f"{name} hit the time limit before finding a solution; returning the "
                    f"warm start; {msg}" if timed_out else msg))
        wv = np.asarray(w.value, dtype=float).ravel()
        zval, on = _read_point(z, q)
        # bound verification for heuristic M
        M2 = _enlarged_m(wv, q, M, verified, attempts)
        if M2 is not None:
            M = M2
            messages.append("heuristic big-M active: enlarged and re-solved")
            continue
        break
    return _polished(problem, name, prob, (outcome, bound_raw, primal_raw, nodes, raw), q, wv,
                     zval, on, warm, warm_ok, M, verified, info, messages, attempts, t0,
                     time_limit, mip_gap, formulation, verbose)


def _polished(problem, name, prob, res, q, wv, zval, on, warm, warm_ok, M, verified, info,
              messages, attempts, t0, time_limit, mip_gap, formulation, verbose) -> Solution:
    """The Solution of :func:`solve_cvxpy` from the solver's point: its support polished (or
    the warm start when better), the big-M box proven or re-solved, the certified status."""
    outcome, bound_raw, primal_raw, nodes, raw = res
    offset = _offset(prob, primal_raw)
    sign_vec = _sign_vector(problem, prob, q, on)
    w_pol, obj_pol = polish(problem, on, signs=sign_vec)
    z_out = on.copy()
    if problem.constraints:
        z_out[q.capped] = zval > 0.5
    if not problem.is_feasible(w_pol, z=z_out):  # cannot happen: z obeys the rows
        w_pol, obj_pol = wv, problem.objective(wv)
    if warm_ok and obj_pol > warm.objective:  # solver ended worse than its start
        w_pol, obj_pol = warm.w, warm.objective
        z_out = warm.z if warm.z is not None else warm.w != 0
    box_proven = bool(np.all(verified))
    if not box_proven:
        # bounds guessed from a start without a finite objective: prove them now from this
        # solution's objective, or re-solve once inside bounds that are proven
        M2, ver2, _ = valid_big_m(problem, obj_pol, w_pol)
        if np.all(ver2) and np.all(M2 <= M * (1 + 1e-12)):
            box_proven = True  # the box solved contains every optimum
            info["bigM_verified"] = True
        elif np.all(ver2) and np.isfinite(obj_pol):
            rest = None if time_limit is None else max(
                0.01, float(time_limit) - (time.perf_counter() - t0))
            start = Solution(w=w_pol, objective=obj_pol, best_bound=0.0, status="heuristic",
                             solver=f"cvxpy-{name}", solve_time=0.0, z=z_out)
            return solve_cvxpy(problem, name, rest, mip_gap, start, formulation, verbose)
    bound = -np.inf  # no certificate unless the solver's bound can be read
    if bound_raw is not None and offset is not None and np.isfinite(bound_raw + offset):
        bound = bound_raw + offset
    bound = min(bound, obj_pol)
    gap = relative_gap(obj_pol, bound, gap_scale(problem))
    if not box_proven:
        status = "heuristic"
        bound = 0.0  # the trivial bound: the objective is non-negative
        messages.append("big-M bounds could not be proven (no ridge and a singular Gram): "
                        "no certificate")
    else:
        status, msg = _status_of(outcome, gap, mip_gap, name, raw, np.isfinite(bound))
        messages.append(msg)
    info["mip_gap"] = mip_gap
    info.update({"attempts": attempts, "raw_status": str(raw), "solver_objective":
                 None if prob.value is None else float(prob.value)})
    return Solution(w=w_pol, objective=obj_pol, best_bound=float(bound), status=status,
                    solver=f"cvxpy-{name}", solve_time=time.perf_counter() - t0, nodes=nodes,
                    message="; ".join(messages), info=info, z=z_out,
                    timed_out=outcome == _TIMED_OUT, gap_scale=gap_scale(problem))


def _check_args(problem: Problem, formulation: str) -> None:
    if formulation not in ("bigm", "perspective"):
        raise ValueError("formulation must be 'bigm' or 'perspective'")
    for capset in problem.caps:
        if capset.k < 0 or capset.k > len(capset.index):
            raise ValueError(f"cap {capset.label!r}: k={capset.k} outside [0, {len(capset.index)}]")


def _remaining(time_limit, t0: float):
    """Seconds left of ``time_limit`` (at least 0.01), None without a limit."""
    remaining = None
    if time_limit is not None:
        remaining = max(0.01, float(time_limit) - (time.perf_counter() - t0))
    return remaining


def _run(prob, name: str, verbose: bool, opts: dict) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        with drop_solver_noise(active=not verbose):
            prob.solve(solver=name, warm_start=True, verbose=verbose, **opts)


def _scip_fallback(problem, time_limit, t0, mip_gap, warm, formulation, verbose) -> Solution:
    # CVXPY hides GurobiError 10010 behind a generic SolverError: a failure with a
    # size-limited licence is treated as the licence refusing the model
    warnings.warn("Gurobi failed (size-limited licence: quadratic models are limited "
                  "to 200 variables); falling back to SCIP",
                  stacklevel=user_stacklevel())
    rest = None if time_limit is None else max(
        0.01, float(time_limit) - (time.perf_counter() - t0))
    sol = solve_cvxpy(problem, "SCIP", rest, mip_gap, warm, formulation, verbose)
    return _replace(sol, message="Gurobi size-limited licence: solved by SCIP. "
                    + sol.message)


def _read_point(z, q):
    """(rounded indicator values, which capped coefficients are on: indicator (rounded) and
    non-negligible value)."""
    on = np.zeros(q.n_coef, dtype=bool)
    zval = np.round(np.asarray(z.value).ravel()) if z is not None else np.zeros(0)
    on[q.capped] = zval > 0.5
    return zval, on


def _enlarged_m(wv, q, M, verified, attempts):
    """Bound verification for heuristic M: the enlarged bounds when an unverified one is
    active at the solution (at most 6 attempts), else None."""
    if not np.all(verified):
        active = np.abs(wv[q.capped]) >= (1 - 1e-6) * M
        if np.any(active & ~verified) and attempts < 6:
            return np.where(verified, M, 4.0 * M)
    return None


def _offset(prob, primal_raw):
    """The offset between CVXPY's objective and the solver's internal objective, or None."""
    offset = None
    if prob.value is not None and np.isfinite(prob.value) and primal_raw is not None:
        offset = float(prob.value) - primal_raw
    return offset


def _sign_vector(problem, prob, q, on):
    """The signs (+1, -1, 0) the solver chose for the sign-capped coefficients (None without
    sign caps); switches off in ``on`` those with neither sign."""
    sign_vec = None
    if problem.sign_caps:
        sign_vec = np.zeros(q.n_coef)
        for idx, u, v in prob._mixmio_signs:
            uv = np.round(np.asarray(u.value).ravel())
            vv = np.round(np.asarray(v.value).ravel())
            sign_vec[idx] = np.where(uv > 0.5, 1.0, np.where(vv > 0.5, -1.0, 0.0))
            on[idx] &= (uv > 0.5) | (vv > 0.5)
    return sign_vec


def _replace(sol: Solution, **kw) -> Solution:
    from dataclasses import replace

    return replace(sol, **kw)
