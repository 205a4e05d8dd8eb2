"""Constraint objects + design -> linear rows on the indicators (``Problem.constraints``).

Every row is a :class:`mixmio.problem.LinearConstraint` over coefficient positions in
``w = [beta; gamma]`` and carries the name of the user constraint that produced it:

=========================  ===============================================================
GroupSparsity(cols)        ``z_a - z_b == 0`` for consecutive columns of the group
CorrelationLimit(rho)      ``z_i + z_j <= 1`` for every selectable pair with ``|corr| > rho``
ForceInclude / Exclude     ``z_j >= 1`` / ``z_j <= 0`` (columns, or every column of a cluster)
Transforms(vars)           ``sum_{forms of x} z <= 1``
JointClusterSelection(t)   ``z_{col 0, level} - z_{col j, level} == 0`` for every level
Robust(gamma)              no row: an l1 weight vector (gamma on the selectable fixed effects)
Significance(...)          no row up front: cuts ``sum_S z <= |S| - 1`` added after solves
=========================  ===============================================================

Infeasible combinations raise ``ValueError`` *before* any solve, naming the constraints
involved; ``k_max`` (the largest support the rows allow, by an exact HiGHS MILP) is computed
whenever selectable fixed effects carry rows, and a cap above it is refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mixmio._runtime import user_stacklevel
from mixmio.problem import LinearConstraint
from mixmio.problem.holistic.constraints import (
    Constraint,
    CorrelationLimit,
    Exclude,
    ForceInclude,
    GroupSparsity,
    JointClusterSelection,
    Robust,
    Significance,
    Transforms,
)

__all__ = ["Compiled", "apply_transforms", "compile_constraints", "max_support"]


@dataclass
class Compiled:
    """What the constraints compile to (see module docstring)."""

    rows: tuple = ()
    l1: np.ndarray | None = None
    gamma: float = 0.0
    k_max: int | None = None
    significance: Significance | None = None
    groups: list = field(default_factory=list)  # (name, [column names])
    conflicts: list = field(default_factory=list)  # (col_i, col_j, corr)
    transforms: dict = field(default_factory=dict)  # variable -> [column names]
    user: tuple = ()


def check_constraints(constraints) -> tuple[Constraint, ...]:
    if isinstance(constraints, Constraint):
        constraints = (constraints,)  # one constraint given without a list
    cons = tuple(constraints or ())
    for c in cons:
        if not isinstance(c, Constraint):
            raise TypeError(f"constraints must be mixmio constraint objects (GroupSparsity, "
                            f"CorrelationLimit, ...), got {c!r}")
    for kind in (CorrelationLimit, Robust, Significance):
        same = [c for c in cons if isinstance(c, kind)]
        if len(same) > 1:
            raise ValueError(f"give at most one {kind.__name__}, got {same}")
    return cons


# ---------------------------------------------------------------------------------------------
# transforms: new formula terms before the design is built
# ---------------------------------------------------------------------------------------------
def apply_transforms(formula: str, data: pd.DataFrame, constraints
                     ) -> tuple[str, dict[str, list[str]]]:
    """The formula with the transformed forms appended, and ``{variable: [expressions]}``
    (the variable itself first)."""
    exprs: dict[str, list[str]] = {}
    kept = _complete_rows(formula, data, constraints)
    for c in constraints:
        if not isinstance(c, Transforms):
            continue
        for v in c.variables:
            if v not in data.columns:
                raise KeyError(f"{c!r}: '{v}' is not a column of the data")
            x = pd.to_numeric(data[v], errors="coerce")
            if data[v].notna().any() and x[data[v].notna()].isna().any():
                raise TypeError(f"{c!r}: '{v}' is not numeric")
            xv = x.dropna().to_numpy(dtype=float)
            if np.any(xv < 0):
                raise ValueError(f"{c!r}: '{v}' has negative values (minimum {xv.min():.4g}); "
                                 "sqrt and log need x >= 0. Shift the variable first "
                                 "(e.g. x - min(x)) or leave it out of Transforms.")
            forms = [v]
            values = [xv]
            for f in c.forms:
                if f == "square":
                    forms.append(f"I({v} ** 2)")
                    values.append(xv**2)
                elif f == "sqrt":
                    forms.append(f"np.sqrt({v})")
                    values.append(np.sqrt(xv))
                else:
                    pos = bool(np.all(xv > 0))
                    forms.append(f"np.log({v})" if pos else f"np.log({v} + 1e-05)")
                    values.append(np.log(xv if pos else xv + 1e-5))
            if v in exprs:
                raise ValueError(f"'{v}' appears in Transforms twice")
            on_kept = kept[x.notna().to_numpy()]  # the rows of xv the design will keep
            keep = _independent_forms([val[on_kept] for val in values])
            dropped = [forms[j] for j in range(len(forms)) if j not in keep]
            if dropped:
                warnings.warn(
                    f"{c!r}: on this data {', '.join(dropped)} "
                    f"{'is' if len(dropped) == 1 else 'are'} an affine function of the other "
                    f"forms of '{v}' ({np.unique(xv[on_kept]).size} distinct values), so "
                    f"{'it is' if len(dropped) == 1 else 'they are'} left out",
                    stacklevel=user_stacklevel())
            exprs[v] = [forms[j] for j in keep]
    if not exprs:
        return formula, {}
    # the variable itself is usually in the formula already: do not list it twice
    present = {t.strip() for t in formula.split("~", 1)[-1].split("+")}
    extra = " + ".join(e for forms in exprs.values() for e in forms if e not in present)
    return (f"{formula} + {extra}" if extra else formula), exprs


def _complete_rows(formula: str, data: pd.DataFrame, constraints) -> np.ndarray:
    """Rows the design will keep under na_action='drop' (complete in every variable the
    formula and the Transforms read); all rows when the formula cannot be read yet (the
    design stage then raises its own error)."""
    from mixmio.design._materialize import required_columns
    from mixmio.formula import parse_formula

    names = {v for c in constraints if isinstance(c, Transforms) for v in c.variables}
    try:
        names |= set(required_columns(parse_formula(formula)))
    except Exception:  # noqa: BLE001 - reported by the design stage with a proper message
        return np.ones(len(data), dtype=bool)
    from mixmio.design._checks import missing_rows

    return ~missing_rows(data, [n for n in names if n in data.columns])[0]


def _independent_forms(values: list[np.ndarray]) -> list[int]:
    """Indices of the forms (``values[0]`` is the variable itself, always kept) that add rank
    to [1, earlier kept forms]; a variable with m distinct values has at most m - 1."""
    if not values or values[0].size == 0:
        return list(range(len(values)))
    u, first = np.unique(values[0], return_index=True)
    cols = [np.ones(u.size)]
    keep = []
    for j, val in enumerate(values):
        col = val[first]
        col = (col - col.mean()) / (np.linalg.norm(col - col.mean()) or 1.0)
        trial = np.column_stack([*cols, col])
        sv = np.linalg.svd(trial, compute_uv=False)
        if j == 0 or int(np.sum(sv > 1e-8 * sv[0])) == trial.shape[1]:
            cols.append(col)
            keep.append(j)
    return keep


# ---------------------------------------------------------------------------------------------
# name resolution
# ---------------------------------------------------------------------------------------------
def _norm(s: str) -> str:
    return "".join(str(s).split())


def _ikey(s: str) -> str:
    """Order-free key of an interaction name: ``z:x`` and ``x:z`` are the same term."""
    from mixmio.formula._scan import split_names

    return ":".join(sorted(split_names(_norm(s), ":")))


def _term_columns(design) -> dict[str, list[int]]:
    ms = design.model_spec
    out = {}
    if ms is not None and hasattr(ms, "term_indices"):
        for term, idx in ms.term_indices.items():
            out[_norm(str(term))] = list(idx)
    return out


def _fixed_columns(names, design, who) -> list[int]:
    cols = list(design.X.columns)
    terms = _term_columns(design)
    by_norm = {_norm(c): i for i, c in enumerate(cols)}
    by_key = {_ikey(c): i for i, c in enumerate(cols)}
    terms_by_key = {_ikey(t): idx for t, idx in terms.items()}
    out = []
    for nm in names:
        if nm in cols:
            out.append(cols.index(nm))
        elif _norm(nm) in by_norm:
            out.append(by_norm[_norm(nm)])
        elif _norm(nm) in terms:
            out.extend(terms[_norm(nm)])
        elif _ikey(nm) in by_key:
            out.append(by_key[_ikey(nm)])
        elif _ikey(nm) in terms_by_key:
            out.extend(terms_by_key[_ikey(nm)])
        else:
            raise KeyError(f"{who}: '{nm}' names no fixed-effect column or term; the columns "
                           f"are {cols}")
    return sorted(set(out))


def _cluster_positions(clusters, design, p: int, who) -> list[int]:
    """w positions of the named clusters (all capped columns of a factor, or one label)."""
    out = []
    for key, levels in clusters:
        blocks = [(b, list(range(b.q))) for b in design.blocks if b.group == key]
        if not blocks:
            hit = [(b, [b.labels.index(key)]) for b in design.blocks if key in b.labels]
            blocks = hit
        if not blocks:
            raise KeyError(f"{who}: '{key}' names no grouping factor or random-effect column; "
                           f"factors: {sorted({b.group for b in design.blocks})}, columns: "
                           f"{design.column_labels}")
        for b, js in blocks:
            lv = [str(v) for v in b.levels]
            for level in levels:
                if level not in lv:
                    raise KeyError(f"{who}: '{level}' is not a level of '{b.group}' "
                                   f"(levels e.g. {lv[:5]})")
                li = lv.index(level)
                for j in js:
                    out.append(p + b.column_slice(j).start + li)
    return sorted(set(out))


def _term_block(term: str, design, who):
    hits = [b for b in design.blocks if _norm(b.label) == _norm(term)]
    if not hits:
        hits = [b for b in design.blocks if b.group == term]
        if len(hits) > 1:
            raise ValueError(f"{who}: factor '{term}' has several terms "
                             f"{[b.label for b in hits]}; name one")
    if not hits:
        raise KeyError(f"{who}: '{term}' names no random term; terms: "
                       f"{[b.label for b in design.blocks]}")
    return hits[0]


# ---------------------------------------------------------------------------------------------
# MILP helpers (HiGHS through scipy)
# ---------------------------------------------------------------------------------------------
def _row_matrix(rows, pos: dict[int, int], n: int):
    data, ri, ci, lo, hi = [], [], [], [], []
    for r, row in enumerate(rows):
        for j, a in zip(row.index, row.coef, strict=True):
            ri.append(r)
            ci.append(pos[int(j)])
            data.append(a)
        lo.append(row.rhs if row.sense in (">=", "==") else -np.inf)
        hi.append(row.rhs if row.sense in ("<=", "==") else np.inf)
    A = sp.csr_matrix((data, (ri, ci)), shape=(len(rows), n))
    return A, np.array(lo, dtype=float), np.array(hi, dtype=float)


def _warn_unproven(names) -> None:
    import warnings

    warnings.warn(f"the exact feasibility check of the constraints {names} stopped at its 60 s "
                  "limit without a proof; a contradiction, if any, will only show at the solve",
                  RuntimeWarning, stacklevel=user_stacklevel())


def max_support(index: np.ndarray, rows, extra=()) -> tuple[int | None, bool]:
    """(largest number of ``index`` indicators that can be 1 under ``rows`` + ``extra``,
    solved) by an exact HiGHS MILP; ``(None, True)`` when the rows are infeasible."""
    from scipy.optimize import Bounds, milp
    from scipy.optimize import LinearConstraint as LC

    index = np.asarray(index, dtype=int)
    allrows = list(rows) + list(extra)
    touched = set(int(j) for row in allrows for j in row.index) | set(index.tolist())
    order = sorted(touched)
    pos = {j: i for i, j in enumerate(order)}
    n = len(order)
    if n == 0:
        return 0, True
    c = np.zeros(n)
    c[[pos[int(j)] for j in index]] = -1.0
    cons = []
    if allrows:
        A, lo, hi = _row_matrix(allrows, pos, n)
        cons.append(LC(A, lo, hi))
    res = milp(c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1),
               options={"time_limit": 60})
    if res.status == 2:  # infeasible
        return None, True
    if res.x is None:
        return None, False
    return int(round(-res.fun)), res.status == 0


# ---------------------------------------------------------------------------------------------
# compilation
# ---------------------------------------------------------------------------------------------
class _Compiling:
    """What the sections of :func:`compile_constraints` share: the checked constraints, the
    design's columns, the selectable fixed effects and the rows compiled so far."""

    def __init__(self, cons, design, fixed_selectable, out):
        self.cons, self.design, self.out = cons, design, out
        self.p = design.X.shape[1]
        self.cols = list(design.X.columns)
        self.sel = None if fixed_selectable is None else np.asarray(fixed_selectable, dtype=int)
        self.sel_set = set() if self.sel is None else set(self.sel.tolist())
        self.rows: list[LinearConstraint] = []

    def need_fixed(self, c, idx):
        cols = self.cols
        idx = [i for i in idx if not (cols[i] == "Intercept")]
        if idx and self.sel is None:
            raise ValueError(f"{c!r} constrains fixed effects, which can be selected only when "
                             "k_fixed is set; pass k_fixed (e.g. the number of fixed effects "
                             "for no cap)")
        bad = [cols[i] for i in idx if i not in self.sel_set]
        if bad:
            raise ValueError(f"{c!r}: column(s) {bad} carry no selection indicator")
        return idx


def compile_constraints(constraints, design, *, fixed_selectable, k_fixed, caps=(),
                        auto_groups: bool = True, transforms: dict | None = None,
                        context: str = "mio_lm") -> Compiled:
    """Compile constraint objects for ``design``.

    ``fixed_selectable``: X column indices that carry an indicator (None: none do, as in
    mio_lmer without ``k_fixed``); ``k_fixed``: their cap; ``caps``: the Problem's CapSets (for
    the pre-solve feasibility check); ``transforms``: from :func:`apply_transforms`.
    """
    cons = check_constraints(constraints)
    out = Compiled(user=cons, transforms=dict(transforms or {}))
    cx = _Compiling(cons, design, fixed_selectable, out)
    group_specs = _group_rows(cx, auto_groups)
    _joint_rows(cx)
    forced, excluded = _force_rows(cx)
    families = _transform_rows(cx)
    conflict_pairs = _correlation_rows(cx)
    _robust(cx)
    out.significance = next((c for c in cons if isinstance(c, Significance)), None)
    out.rows = tuple(cx.rows)

    _check_feasible(out, design, cons, forced, excluded, group_specs, conflict_pairs,
                    families, cx.sel, k_fixed, caps, cx.cols)
    return out


def _group_rows(cx: _Compiling, auto_groups: bool):
    """Groups (explicit and automatic factor dummies): equality rows tying each group's
    columns; returns the (name, columns) specs."""
    cols, sel_set, design = cx.cols, cx.sel_set, cx.design
    group_specs = []
    for c in cx.cons:
        if isinstance(c, GroupSparsity):
            idx = _fixed_columns(c.columns, design, repr(c))
            if any(cols[i] == "Intercept" for i in idx):
                raise ValueError(f"{c!r}: the intercept is always in and cannot be grouped")
            group_specs.append((repr(c), cx.need_fixed(c, idx)))
    if auto_groups and cx.sel is not None:
        explicit = {tuple(g) for _, g in group_specs}
        for term, idx in _term_columns(design).items():
            if len(idx) > 1 and all(i in sel_set for i in idx) and tuple(idx) not in explicit:
                group_specs.append((f"GroupSparsity(['{term}']) [factor dummies, automatic]",
                                    list(idx)))
    for name, idx in group_specs:
        cx.out.groups.append((name, [cols[i] for i in idx]))
        for a, b in zip(idx[:-1], idx[1:], strict=True):
            cx.rows.append(LinearConstraint(np.array([a, b]), np.array([1.0, -1.0]), "==", 0.0,
                                            name))
    return group_specs


def _joint_rows(cx: _Compiling):
    """Joint cluster selection: equality rows tying a term's columns level by level."""
    p = cx.p
    for c in cx.cons:
        if isinstance(c, JointClusterSelection):
            b = _term_block(c.term, cx.design, repr(c))
            if b.q < 2:
                continue
            base = p + b.column_slice(0).start
            for j in range(1, b.q):
                other = p + b.column_slice(j).start
                for lv in range(b.n_levels):
                    cx.rows.append(LinearConstraint(np.array([base + lv, other + lv]),
                                                    np.array([1.0, -1.0]), "==", 0.0, repr(c)))


def _force_rows(cx: _Compiling):
    """Forced / excluded coefficients: single-index rows; returns the (forced, excluded)
    dicts of index -> the constraints naming it."""
    cols, design, p = cx.cols, cx.design, cx.p
    forced: dict[int, list] = {}
    excluded: dict[int, list] = {}
    for c in cx.cons:
        if isinstance(c, (ForceInclude, Exclude)):
            idx = _fixed_columns(c.columns, design, repr(c)) if c.columns else []
            if isinstance(c, Exclude) and any(cols[i] == "Intercept" for i in idx):
                raise ValueError(f"{c!r}: the intercept is always in; remove it in the formula "
                                 "('- 1') instead")
            idx = cx.need_fixed(c, idx)
            idx += _cluster_positions(c.clusters, design, p, repr(c)) if c.clusters else []
            target = forced if isinstance(c, ForceInclude) else excluded
            for j in idx:
                target.setdefault(j, []).append(c)
                if isinstance(c, ForceInclude):
                    cx.rows.append(LinearConstraint(np.array([j]), np.array([1.0]), ">=", 1.0,
                                                    repr(c)))
                else:
                    cx.rows.append(LinearConstraint(np.array([j]), np.array([1.0]), "<=", 0.0,
                                                    repr(c)))
    return forced, excluded


def _transform_rows(cx: _Compiling):
    """Transforms: at most one form of each variable; returns the (name, variable, columns)
    families."""
    out, cols = cx.out, cx.cols
    families = []
    for c in cx.cons:
        if isinstance(c, Transforms):
            for v in c.variables:
                idx = _fixed_columns(out.transforms.get(v, [v]), cx.design, repr(c))
                idx = cx.need_fixed(c, idx)
                out.transforms[v] = [cols[i] for i in idx]
                families.append((repr(c), v, idx))
                if len(idx) > 1:
                    cx.rows.append(LinearConstraint(np.array(idx), np.ones(len(idx)), "<=",
                                                    1.0, repr(c)))
    return families


def _correlation_rows(cx: _Compiling):
    """CorrelationLimit: at most one of each pair of selectable columns correlated above the
    limit (unless tied in one group); returns the (i, j, r) pairs."""
    sel, cols, rows = cx.sel, cx.cols, cx.rows
    climit = next((c for c in cx.cons if isinstance(c, CorrelationLimit)), None)
    conflict_pairs = []
    if climit is not None:
        if sel is None:
            raise ValueError(f"{climit!r} limits correlated fixed effects, which can be selected "
                             "only when k_fixed is set; pass k_fixed")
        Xs = cx.design.X.to_numpy(dtype=float)[:, sel]
        sd = Xs.std(axis=0)
        okc = sd > 0
        R = np.zeros((sel.size, sel.size))
        if okc.sum() > 1:
            R[np.ix_(okc, okc)] = np.corrcoef(Xs[:, okc], rowvar=False)
        iu, ju = np.nonzero(np.triu(np.abs(R) > climit.rho, k=1))
        tied: dict[int, set[int]] = {}
        for a, b in zip(iu, ju, strict=True):
            i, j = int(sel[a]), int(sel[b])
            if i not in tied:
                tied[i] = closure(rows, {i})
            if j in tied[i]:
                continue  # one group (a factor's dummies): they enter together by construction
            conflict_pairs.append((i, j, float(R[a, b])))
            cx.out.conflicts.append((cols[i], cols[j], float(R[a, b])))
            rows.append(LinearConstraint(np.array([i, j]), np.ones(2), "<=", 1.0, repr(climit)))
    return conflict_pairs


def _robust(cx: _Compiling):
    """Robust: the l1 penalty on the selectable fixed effects."""
    out, sel = cx.out, cx.sel
    rob = next((c for c in cx.cons if isinstance(c, Robust)), None)
    if rob is not None:
        if rob.gamma == "grid":
            raise ValueError(f"{rob!r}: a grid is tuned by mixmio.holistic_regression; give "
                             "mio_lm a number (Robust(gamma=0.5))")
        if sel is None:
            raise ValueError(f"{rob!r} penalises the selectable fixed effects; pass k_fixed")
        out.gamma = float(rob.gamma)
        if out.gamma > 0:
            n_coef = cx.p + cx.design.Z.shape[1]
            l1 = np.zeros(n_coef)
            l1[sel] = out.gamma
            out.l1 = l1


def closure(rows, seeds: set[int]) -> set[int]:
    """Indices tied to ``seeds`` by equality pairs."""
    adj: dict[int, set[int]] = {}
    for r in rows:
        if r.sense == "==" and r.index.size == 2 and r.rhs == 0:
            a, b = int(r.index[0]), int(r.index[1])
            adj.setdefault(a, set()).add(b)
            adj.setdefault(b, set()).add(a)
    out, stack = set(seeds), list(seeds)
    while stack:
        a = stack.pop()
        for b in adj.get(a, ()):
            if b not in out:
                out.add(b)
                stack.append(b)
    return out


def _check_feasible(out, design, cons, forced, excluded, group_specs, conflict_pairs,
                    families, sel, k_fixed, caps, cols):
    p = design.X.shape[1]
    _check_forced(design, cons, out.rows, forced, excluded, group_specs, conflict_pairs,
                  families, caps, cols)
    climit = next((c for c in cons if isinstance(c, CorrelationLimit)), None)
    # k_max over the selectable fixed effects
    fixed_rows = [r for r in out.rows if np.all(r.index < p)]
    if sel is not None and fixed_rows:
        _check_k_max(out, sel, fixed_rows, climit, k_fixed)
    elif sel is not None:
        out.k_max = int(sel.size)
    # full system with the caps (all indicators)
    if out.rows:
        from mixmio.problem import LinearConstraint as LCn

        cap_rows = [LCn(np.asarray(c.index), np.ones(len(c.index)), "<=", float(c.k), c.label)
                    for c in caps]
        res, solved = max_support(np.zeros(0, dtype=int), out.rows, cap_rows)
        if not solved:
            _warn_unproven(sorted({r.name for r in out.rows}))
        if res is None and solved:
            names = sorted({r.name for r in out.rows})
            capd = ", ".join(f"{c.label} <= {c.k}" for c in caps)
            raise ValueError(f"the constraints {names} cannot all hold together with the caps "
                             f"({capd})")


def _check_forced(design, cons, rows, forced, excluded, group_specs, conflict_pairs, families,
                  caps, cols):
    """The forced / excluded coefficients (with what the rows tie to them) against each
    other, the caps, the correlation limit and the transform families."""
    p = design.X.shape[1]
    zc = design.z_columns

    def label(j):
        if j < p:
            return cols[j]
        r = zc.iloc[j - p]
        return f"{r['label']}:{r['level']}"

    # force and exclude of the same coefficient
    both = sorted(set(forced) & set(excluded))
    if both:
        j = both[0]
        raise ValueError(f"{forced[j][0]!r} and {excluded[j][0]!r} both name '{label(j)}': it "
                         "cannot be forced in and excluded")
    fclose = closure(rows, set(forced))
    eclose = closure(rows, set(excluded))
    clash = sorted(fclose & eclose)
    if clash:
        gnames = [n for n, idx in group_specs if clash[0] in idx] or ["a JointClusterSelection"]
        fnames = sorted({repr(c) for v in forced.values() for c in v})
        enames = sorted({repr(c) for v in excluded.values() for c in v})
        raise ValueError(f"{', '.join(fnames)} and {', '.join(enames)} conflict through "
                         f"{gnames[0]}: '{label(clash[0])}' is tied to both a forced and an "
                         "excluded column")
    fnames = sorted({repr(c) for v in forced.values() for c in v})
    # forced count against caps
    for cap in caps:
        idx = set(np.asarray(cap.index).tolist())
        nf = len(fclose & idx)
        if nf > cap.k:
            k_name = "k" if cap.label == "fixed effects" else f"the cap on '{cap.label}'"
            extra = " (with their groups)" if len(fclose & idx) > len(set(forced) & idx) else ""
            raise ValueError(f"{', '.join(fnames)} force(s) {nf} column(s){extra} in "
                             f"'{cap.label}' but {k_name}={cap.k}: forced columns count "
                             "toward k")
    # forced pairs above the correlation limit
    climit = next((c for c in cons if isinstance(c, CorrelationLimit)), None)
    for i, j, r in conflict_pairs:
        if i in fclose and j in fclose:
            raise ValueError(f"{', '.join(fnames)} force(s) '{cols[i]}' and '{cols[j]}', whose "
                             f"correlation {r:+.3f} exceeds {climit!r}: at most one of them "
                             "may be selected")
    for name, v, idx in families:
        both_in = [cols[i] for i in idx if i in fclose]
        if len(both_in) > 1:
            raise ValueError(f"{', '.join(fnames)} force(s) {both_in}, but {name} allows at "
                             f"most one form of '{v}'")


def _check_k_max(out, sel, fixed_rows, climit, k_fixed):
    """k_max, the largest support of the selectable fixed effects the rows on them allow
    (stored in ``out.k_max``), against the correlation limit and k_fixed."""
    kmax, solved = max_support(sel, fixed_rows)
    names = sorted({r.name for r in fixed_rows})
    if kmax is None and solved:
        raise ValueError(f"the constraints {names} admit no selection of the fixed effects")
    if not solved:  # an unproven k_max could refuse a valid k: use no bound instead
        _warn_unproven(names)
        kmax = None
    out.k_max = kmax if kmax is not None else int(sel.size)
    kmax = out.k_max
    if climit is not None and kmax == 0:
        raise ValueError(f"{climit!r}: no selectable column satisfies the constraints "
                         f"(k_max = 0); constraints: {names}")
    if k_fixed is not None and k_fixed > kmax:
        raise ValueError(f"k={k_fixed} exceeds k_max={kmax}, the largest support that "
                         f"satisfies {names}; use k <= {kmax}")
